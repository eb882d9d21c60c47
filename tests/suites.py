"""Build throwaway projects from the fixture suites: a copy of the tests and an onwatch.toml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def toml_value(value: Any) -> str:
    """Render a Python value as TOML (strings, numbers, booleans, lists, flat tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


# Tests run checks every second on a busy machine, whose runs often outlast their interval: the
# overload rule would rightly fire and add a monitor.degraded to the notifications they count.
# It is off in the projects tests write; the tests of the rule turn it on (tests/faults).
QUIET_OVERLOAD = {"overload_skipped": 1.0, "overload_lateness": "1h"}


def make_project(
    root: Path,
    checks: dict[str, dict[str, Any]],
    settings: dict[str, Any] | None = None,
    suites: tuple[str, ...] = (),
    channels: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Copy ``suites`` from tests/fixtures into ``root`` and write onwatch.toml; return its path."""
    root.mkdir(parents=True, exist_ok=True)
    for suite in suites:
        shutil.copytree(FIXTURES / suite, root / suite, dirs_exist_ok=True)
    lines = ["[onwatch]"]
    # A free port for /healthz and /metrics, so that tests never fight over 8787.
    settings = {"listen": "127.0.0.1:0", **QUIET_OVERLOAD, **(settings or {})}
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    for name, check in checks.items():
        lines.append(f"\n[checks.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in check.items()]
    for name, channel in (channels or {}).items():
        lines.append(f"\n[notify.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in channel.items()]
    path = root / "onwatch.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
