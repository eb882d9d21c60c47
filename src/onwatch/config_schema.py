"""Validation of the configuration file: pydantic models, and errors that say where and how.

Only loaded when a config file is new or changed (``onwatch.config`` caches what it returns),
so that a command run every minute from cron does not pay for pydantic each time. Every key is
documented in docs/configuration.md; a test fails when a field is missing there.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from onwatch.durations import parse_duration
from onwatch.errors import ConfigError

Duration = Annotated[float, BeforeValidator(parse_duration)]
CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CONFIG_FILE = "onwatch.toml"
PYPROJECT_FILE = "pyproject.toml"


class SettingsModel(BaseModel):
    """The ``[onwatch]`` table: settings of the whole installation."""

    model_config = ConfigDict(extra="forbid")

    database: str = Field(
        default="sqlite:///onwatch.db",
        description="SQLAlchemy URL of the results database; a relative SQLite path is relative "
        "to the config file's folder. PostgreSQL: postgresql://user:pass@host/db.",
    )
    state_dir: str = Field(
        default=".onwatch",
        description="Folder for runs in flight and the spool of runs waiting for the database; "
        "relative to the config file's folder.",
    )
    max_parallel: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=256,
        description="How many checks may run at the same time (default: the number of CPUs).",
    )
    drain_timeout: Duration = Field(
        default=30.0,
        description="On SIGINT/SIGTERM, how long `onwatch run` lets runs in flight finish before "
        "it kills them and records them as interrupted.",
    )
    max_jitter: Duration = Field(
        default=10.0,
        description="Upper bound of the small, stable per-check delay that spreads checks due at "
        "the same moment (never more than 10% of a check's interval).",
    )


class CheckModel(BaseModel):
    """A ``[checks.NAME]`` table: a selection of tests and when to run it."""

    model_config = ConfigDict(extra="forbid")

    tests: list[str] = Field(
        min_length=1,
        description="pytest arguments: paths or node ids, relative to the config file's folder.",
    )
    markers: str = Field(default="", description="pytest -m expression.")
    keyword: str = Field(default="", description="pytest -k expression.")
    every: Duration | None = Field(default=None, description='Run every so often, e.g. "5m".')
    cron: str | None = Field(default=None, description='Run on a cron schedule, e.g. "0 * * * *".')
    timezone: str = Field(default="UTC", description="Time zone of the cron expression.")
    timeout: Duration = Field(
        default=300.0,
        description="Wall-clock limit of a whole run, retries included; the run is then killed.",
    )
    retries: int = Field(default=0, ge=0, le=10, description="Re-run failed tests this many times.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables given to the tests."
    )
    pytest_args: list[str] = Field(
        default_factory=list, description="Extra arguments passed to pytest as they are."
    )
    enabled: bool = Field(default=True, description="false keeps the check out of `onwatch run`.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression; write five fields "
                '(minute hour day month weekday), e.g. "*/5 * * * *"'
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'{value!r} is not a time zone; use an IANA name such as "UTC" or "Europe/Paris"'
            ) from None
        return value

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(
                    f"{name!r} is not an environment variable name; use letters, digits and _"
                )
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> CheckModel:
        if (self.every is None) == (self.cron is None):
            raise ValueError('give exactly one schedule: every = "5m" or cron = "*/5 * * * *"')
        return self


def validate(path: Path) -> dict[str, Any]:
    """Read and validate the config at ``path``, reporting every problem at once.

    Returns ``{"settings": {...}, "checks": {name: {...}}}`` with defaults filled in and
    durations in seconds.
    """
    data = read_toml(path)
    text = path.read_text(encoding="utf-8")
    root: tuple[str, ...] = ()
    settings_loc: tuple[str, ...]
    problems: list[str] = []
    if path.name == PYPROJECT_FILE:
        root = ("tool", "onwatch")
        data = data.get("tool", {}).get("onwatch")
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: no [tool.onwatch] table; add one or use {CONFIG_FILE}"])
        settings_data = {k: v for k, v in data.items() if k != "checks"}
        settings_loc = root
    else:
        unknown = [k for k in data if k not in ("onwatch", "checks")]
        problems = [
            _problem(
                path,
                text,
                (key,),
                f"unknown table {key!r}; known tables: [onwatch], "
                "[checks.NAME]" + _did_you_mean(key, ["onwatch", "checks"]),
            )
            for key in unknown
        ]
        settings_data = data.get("onwatch", {})
        settings_loc = ("onwatch",)
    base_dir = path.parent
    settings: SettingsModel | None = None
    try:
        settings = SettingsModel.model_validate(settings_data)
    except ValidationError as exc:
        problems += _explain(exc, path, text, settings_loc, SettingsModel)
    checks: dict[str, CheckModel] = {}
    raw_checks = data.get("checks", {})
    checks_loc = (*root, "checks")
    if not isinstance(raw_checks, dict):
        problems.append(_problem(path, text, checks_loc, "must be a table of [checks.NAME]"))
        raw_checks = {}
    for name, raw in raw_checks.items():
        loc = (*checks_loc, name)
        if not CHECK_NAME.match(name):
            problems.append(
                _problem(
                    path,
                    text,
                    loc,
                    f"{name!r} is not a usable check name; use letters, "
                    "digits, '-', '_' and '.', starting with a letter or digit",
                )
            )
            continue
        if not isinstance(raw, dict):
            problems.append(_problem(path, text, loc, "must be a table: [checks.NAME] with tests"))
            continue
        try:
            check = CheckModel.model_validate(raw)
        except ValidationError as exc:
            problems += _explain(exc, path, text, loc, CheckModel)
            continue
        problems += _missing_test_paths(check, base_dir, path, text, loc)
        checks[name] = check
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return {
        "settings": settings.model_dump(mode="json"),
        "checks": {name: check.model_dump(mode="json") for name, check in checks.items()},
    }


def _missing_test_paths(
    check: CheckModel, base_dir: Path, path: Path, text: str, loc: tuple[str, ...]
) -> list[str]:
    problems = []
    for index, arg in enumerate(check.tests):
        if arg.startswith("-"):
            continue
        target = base_dir / arg.split("::", 1)[0]
        if not target.exists():
            problems.append(
                _problem(
                    path,
                    text,
                    (*loc, "tests"),
                    f"tests[{index}] {arg!r} does not exist in {base_dir}; paths are relative "
                    "to the config file's folder",
                )
            )
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(
            [
                f"{where}: invalid TOML: {reason}; fix the syntax (strings need quotes, "
                'e.g. every = "5m")'
            ]
        ) from None


def _explain(
    exc: ValidationError,
    path: Path,
    text: str,
    prefix: tuple[str, ...],
    model: type[BaseModel],
) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = (*prefix, *(str(part) for part in error["loc"]))
        kind = error["type"]
        field = str(error["loc"][0]) if error["loc"] else ""
        if kind == "extra_forbidden":
            known = sorted(model.model_fields)
            message = f"unknown key {field!r}{_did_you_mean(field, known)}; known keys: " + (
                ", ".join(known)
            )
        elif kind == "missing":
            message = f"required key {field!r} is missing; add it (see docs/configuration.md)"
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        else:
            message = f"{error['msg'].lower()} (got {error.get('input')!r})"
        problems.append(_problem(path, text, loc, message))
    return problems


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problem(path: Path, text: str, loc: tuple[str, ...], message: str) -> str:
    line = locate(text, loc)
    where = f"{path}:{line}" if line else str(path)
    keypath = ".".join(_quote_key(part) for part in loc)
    return f"{where}: {keypath}: {message}"


def _quote_key(part: str) -> str:
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', text)
    return [a or b or c for a, b, c in parts]


def locate(text: str, loc: tuple[str, ...]) -> int | None:
    """Return the 1-based line in TOML ``text`` that best matches the key path ``loc``."""
    lines = text.splitlines()
    table: list[str] = []
    best: tuple[int, int] | None = None  # (matched depth, line number)
    header = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")
    assignment = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.\-"\' ]+?)\s*=')
    for number, line in enumerate(lines, start=1):
        found = header.match(line)
        if found:
            table = _split_key(found.group(1))
            key_path = table
        else:
            found = assignment.match(line)
            if not found:
                continue
            key_path = table + _split_key(found.group(1))
        depth = 0
        for want, have in zip(loc, key_path, strict=False):
            if want != have:
                break
            depth += 1
        matched = depth == len(key_path) or depth == len(loc)
        if matched and depth > 0 and (best is None or depth > best[0]):
            best = (depth, number)
    return None if best is None else best[1]
