"""Validation of the configuration file: errors that say where and how (models: config_models).

Only loaded when a config file is new or changed (``onwatch.config`` caches what it returns),
so that a command run every minute from cron does not pay for pydantic each time. Every key is
documented in docs/configuration.md; a test fails when a field is missing there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from onwatch.config.locate import did_you_mean, explain, problem, read_toml
from onwatch.config.models import (
    CHECK_NAME,
    BrowserModel,
    ChannelModel,
    CheckModel,
    SettingsModel,
    SilenceModel,
    WatchModel,
)
from onwatch.config.records import BROWSER_FIX, CONFIG_FILE, PYPROJECT_FILE
from onwatch.errors import ConfigError

__all__ = [
    "BrowserModel",
    "ChannelModel",
    "CheckModel",
    "SettingsModel",
    "SilenceModel",
    "WatchModel",
    "validate",
]
TABLES = ("checks", "notify", "silences", "browser", "watch")
Table = TypeVar("Table", bound=BaseModel)


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
        settings_data = {k: v for k, v in data.items() if k not in TABLES}
        settings_loc = root
    else:
        unknown = [k for k in data if k not in ("onwatch", *TABLES)]
        problems = [
            problem(
                path,
                text,
                (key,),
                f"unknown table {key!r}; known tables: [onwatch], [checks.NAME], "
                "[notify.NAME], [[silences]], [browser], [watch.NAME]"
                + did_you_mean(key, ["onwatch", *TABLES]),
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
        problems += explain(exc, path, text, settings_loc, SettingsModel)
    checks: dict[str, CheckModel] = {}
    raw_checks = data.get("checks", {})
    checks_loc = (*root, "checks")
    if not isinstance(raw_checks, dict):
        problems.append(problem(path, text, checks_loc, "must be a table of [checks.NAME]"))
        raw_checks = {}
    for name, raw in raw_checks.items():
        loc = (*checks_loc, name)
        if not CHECK_NAME.match(name):
            problems.append(
                problem(
                    path,
                    text,
                    loc,
                    f"{name!r} is not a usable check name; use letters, "
                    "digits, '-', '_' and '.', starting with a letter or digit",
                )
            )
            continue
        if not isinstance(raw, dict):
            problems.append(problem(path, text, loc, "must be a table: [checks.NAME] with tests"))
            continue
        try:
            check = CheckModel.model_validate(raw)
        except ValidationError as exc:
            problems += explain(exc, path, text, loc, CheckModel)
            continue
        problems += _missing_test_paths(check, base_dir, path, text, loc)
        checks[name] = check
    channels = _channels(data.get("notify", {}), (*root, "notify"), path, text, problems)
    browser = _browser(data.get("browser", {}), (*root, "browser"), path, text, problems)
    silences = _silences(data.get("silences", []), (*root, "silences"), path, text, problems)
    # A channel that failed validation is reported already: it is not "unknown" as well.
    raw_notify = data.get("notify", {})
    declared = set(raw_notify) if isinstance(raw_notify, dict) else set()
    if settings is not None:
        problems += _unknown_channels(
            settings.notify, declared, (*settings_loc, "notify"), path, text
        )
    for name, check in checks.items():
        loc = (*checks_loc, name, "notify")
        problems += _unknown_channels(check.notify or [], declared, loc, path, text)
    declared_secrets = settings.secrets if settings is not None else {}
    watches = _named_tables(
        data.get("watch", {}), (*root, "watch"), WatchModel, path, text, problems
    )
    for name, watch in watches.items():
        problems += _watch_problems(
            watch,
            known_checks=list(checks),
            skipped=set(raw_checks) - set(checks),
            secrets=declared_secrets,
            base_dir=base_dir,
            path=path,
            text=text,
            loc=(*root, "watch", name),
        )
    from onwatch.alerting.channels.secret import placeholders

    for name, channel in channels.items():
        loc = (*root, "notify", name, "url")
        problems += _unknown_secrets(
            placeholders(channel.model_dump()), declared_secrets, loc, path, text
        )
    if settings is not None:
        names = _url_placeholders(settings.database)
        problems += _unknown_secrets(
            names, declared_secrets, (*settings_loc, "database"), path, text
        )
    for index, silence in enumerate(silences):
        for name in silence.checks:
            if name not in checks:
                loc = (*root, "silences", str(index), "checks")
                known = ", ".join(sorted(checks)) or "none"
                problems.append(
                    problem(path, text, loc, f"no check named {name!r} (known: {known})")
                )
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return {
        "settings": settings.model_dump(mode="json"),
        "checks": {name: check.model_dump(mode="json") for name, check in checks.items()},
        "channels": {name: channel.model_dump(mode="json") for name, channel in channels.items()},
        "silences": [silence.model_dump(mode="json") for silence in silences],
        "browser": browser.model_dump(mode="json"),
        "watches": {name: watch.model_dump(mode="json") for name, watch in watches.items()},
    }


def _url_placeholders(url: str) -> list[str]:
    from onwatch.secrets import placeholders

    return placeholders(url)


def _named_tables(
    raw: object,
    loc: tuple[str, ...],
    model: type[Table],
    path: Path,
    text: str,
    problems: list[str],
) -> dict[str, Table]:
    """Validate the ``[KIND.NAME]`` tables at ``loc``; report each problem, return the good."""
    kind = loc[-1]
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, f"must be a table of [{kind}.NAME]"))
        return {}
    found = {}
    for name, table in raw.items():
        where = (*loc, name)
        if not CHECK_NAME.match(name) or not isinstance(table, dict):
            problems.append(
                problem(path, text, where, f"must be a [{kind}.NAME] table with a usable name")
            )
            continue
        try:
            found[name] = model.model_validate(table)
        except ValidationError as exc:
            problems += explain(exc, path, text, where, model)
    return found


def _watch_problems(
    watch: WatchModel,
    *,
    known_checks: list[str],
    skipped: set[str],
    secrets: dict[str, str],
    base_dir: Path,
    path: Path,
    text: str,
    loc: tuple[str, ...],
) -> list[str]:
    """Return what is wrong with a valid watch table in the context of the whole file."""
    problems = []
    known = ", ".join(sorted(known_checks)) or "none"
    for index, name in enumerate(watch.checks):
        # A check that failed validation is reported already: not "unknown" as well.
        if name not in known_checks and name not in skipped:
            message = f"checks[{index}]: no check named {name!r} (known: {known})"
            problems.append(problem(path, text, (*loc, "checks"), message))
    problems += _missing_requirements(watch, base_dir, path, text, loc)
    names = _url_placeholders(watch.index)
    return problems + _unknown_secrets(names, secrets, (*loc, "index"), path, text)


def _missing_requirements(
    watch: WatchModel, base_dir: Path, path: Path, text: str, loc: tuple[str, ...]
) -> list[str]:
    if watch.requirements is None:
        return []
    target = base_dir / re.sub(r"\[[^\]]*\]$", "", watch.requirements)
    if target.is_file():
        return []
    return [
        problem(
            path,
            text,
            (*loc, "requirements"),
            f"{watch.requirements!r}: no such file in {base_dir}; name a requirements file or "
            'a pyproject with extras, e.g. "pyproject.toml[test]"',
        )
    ]


def _browser(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> BrowserModel:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table: [browser] with executable"))
        return BrowserModel()
    try:
        browser = BrowserModel.model_validate(raw)
    except ValidationError as exc:
        problems += explain(exc, path, text, loc, BrowserModel)
        return BrowserModel()
    if browser.executable is not None:
        target = path.parent / browser.executable
        if not (target.is_file() and os.access(target, os.X_OK)):
            state = "is not an executable file" if target.exists() else "does not exist"
            problems.append(
                problem(
                    path,
                    text,
                    (*loc, "executable"),
                    f"{browser.executable!r} {state}; {BROWSER_FIX}",
                )
            )
    return browser


def _channels(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> dict[str, ChannelModel]:
    channels = {}
    for name, channel in _named_tables(raw, loc, ChannelModel, path, text, problems).items():
        where = (*loc, name)
        if channel.type == "apprise":
            from onwatch.alerting.channels import build_channel

            try:
                build_channel(name, channel.model_dump())
            except ValueError as exc:
                problems.append(problem(path, text, (*where, "url"), str(exc)))
                continue
        channels[name] = channel
    return channels


def _silences(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> list[SilenceModel]:
    if not isinstance(raw, list):
        problems.append(problem(path, text, loc, "must be an array of tables: [[silences]]"))
        return []
    silences = []
    for index, table in enumerate(raw):
        try:
            silences.append(SilenceModel.model_validate(table))
        except ValidationError as exc:
            problems += explain(exc, path, text, (*loc, str(index)), SilenceModel)
    return silences


def _unknown_secrets(
    names: list[str],
    secrets: dict[str, str],
    loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    """Report each ``${NAME}`` that names no secret of [onwatch] secrets."""
    known = ", ".join(sorted(secrets)) or "none"
    return [
        problem(
            path,
            text,
            loc,
            f"${{{name}}} names no secret of [onwatch] secrets (known: {known}); declare it "
            f'there, e.g. {name} = "env:{name}"',
        )
        for name in names
        if name not in secrets
    ]


def _unknown_channels(
    names: list[str],
    channels: set[str],
    loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    known = ", ".join(sorted(channels)) or "none; add a [notify.NAME] table"
    return [
        problem(path, text, loc, f"no channel named {name!r} (known: {known})")
        for name in names
        if name not in channels
    ]


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
                problem(
                    path,
                    text,
                    (*loc, "tests"),
                    f"tests[{index}] {arg!r} does not exist in {base_dir}; paths are relative "
                    "to the config file's folder",
                )
            )
    return problems
