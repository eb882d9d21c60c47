"""What a configuration names on disk: test paths, the browser, requirements files.

Checked at every load, cached or not: the config file may be unchanged while what it names is
gone (a test folder renamed, Chromium uninstalled). The checks read the validated tables as
``load`` caches them (plain JSON), so they cost a few ``stat`` calls and no pydantic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from onwatch.config.locate import problem
from onwatch.config.records import BROWSER_FIX, PYPROJECT_FILE


def root_of(path: Path) -> tuple[str, ...]:
    """Return the key path of onwatch's tables in ``path``: ``tool.onwatch`` in a pyproject."""
    return ("tool", "onwatch") if path.name == PYPROJECT_FILE else ()


def missing_files(data: Mapping[str, Any], path: Path, text: str) -> list[str]:
    """Return one located problem per file or folder the validated ``data`` names and lacks.

    ``data`` may hold only the valid keys of a table that failed validation: a key it lacks is
    not checked.
    """
    root = root_of(path)
    base_dir = path.parent
    problems: list[str] = []
    for name, check in data["checks"].items():
        loc = (*root, "checks", name, "tests")
        problems += [problem(path, text, loc, why) for why in _missing_tests(check, base_dir)]
    executable = data["browser"].get("executable")
    if isinstance(executable, str):
        why = _not_executable(executable, base_dir)
        if why:
            problems.append(problem(path, text, (*root, "browser", "executable"), why))
    for name, watch in data["watches"].items():
        requirements = watch.get("requirements")
        why = _missing_requirements(
            requirements if isinstance(requirements, str) else None, base_dir
        )
        if why:
            problems.append(problem(path, text, (*root, "watch", name, "requirements"), why))
    return problems


def _missing_tests(check: Mapping[str, Any], base_dir: Path) -> list[str]:
    problems = []
    tests = check.get("tests")
    for index, arg in enumerate(tests if isinstance(tests, list) else []):
        if not isinstance(arg, str) or arg.startswith("-"):
            continue
        if not (base_dir / arg.split("::", 1)[0]).exists():
            problems.append(
                f"tests[{index}] {arg!r} does not exist in {base_dir}; paths are relative to "
                "the config file's folder"
            )
    return problems


def _not_executable(executable: str, base_dir: Path) -> str | None:
    target = base_dir / executable
    if target.is_file() and os.access(target, os.X_OK):
        return None
    state = "is not an executable file" if target.exists() else "does not exist"
    return f"{executable!r} {state}; {BROWSER_FIX}"


def _missing_requirements(requirements: str | None, base_dir: Path) -> str | None:
    if requirements is None or (base_dir / re.sub(r"\[[^\]]*\]$", "", requirements)).is_file():
        return None
    return (
        f"{requirements!r}: no such file in {base_dir}; name a requirements file or a pyproject "
        'with extras, e.g. "pyproject.toml[test]"'
    )
