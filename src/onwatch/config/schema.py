"""Validation of the configuration file: errors that say where and how (the models: ``models``).

Only loaded when a config file is new or changed (``load`` caches what it returns), so that a
command run every minute from cron does not pay for pydantic each time. ``[notify.NAME]``
tables are validated by the model of their kind, found through the channel registry. Every key
is documented in docs/configuration.md; a test fails when a field is missing there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from onwatch.channels.registry import DEFAULT, KINDS
from onwatch.channels.secret import placeholders as channel_placeholders
from onwatch.config.files import missing_files, root_of
from onwatch.config.locate import did_you_mean, explain, problem, read_toml
from onwatch.config.models import (
    CHECK_NAME,
    BrowserModel,
    CheckModel,
    SettingsModel,
    SilenceModel,
    WatchModel,
)
from onwatch.config.records import CONFIG_FILE
from onwatch.errors import ConfigError
from onwatch.secrets import placeholders

TABLES = ("checks", "notify", "silences", "browser", "watch")
Table = TypeVar("Table", bound=BaseModel)


def validate(path: Path, text: str) -> dict[str, Any]:
    """Validate ``text``, the config at ``path``, reporting every problem at once.

    Returns the tables as plain JSON (``settings``, ``checks``, ``channels``, ``silences``,
    ``browser``, ``watches``) with defaults filled in and durations in seconds.
    """
    data = read_toml(path, text)
    root = root_of(path)
    problems: list[str] = []
    if root:
        data = data.get("tool", {}).get("onwatch")
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: no [tool.onwatch] table; add one or use {CONFIG_FILE}"])
        settings_data = {k: v for k, v in data.items() if k not in TABLES}
        settings_loc = root
    else:
        problems += _unknown_tables(data, path, text)
        settings_data = data.get("onwatch", {})
        settings_loc = ("onwatch",)
    settings: SettingsModel | None = None
    try:
        settings = SettingsModel.model_validate(settings_data)
    except ValidationError as exc:
        problems += explain(exc, path, text, settings_loc, SettingsModel)
    raw_checks = data.get("checks", {})
    checks = _checks(raw_checks, (*root, "checks"), path, text, problems)
    channels = _channels(data.get("notify", {}), (*root, "notify"), path, text, problems)
    browser = _browser(data.get("browser", {}), (*root, "browser"), path, text, problems)
    silences = _silences(data.get("silences", []), (*root, "silences"), path, text, problems)
    watches = _named_tables(
        data.get("watch", {}), (*root, "watch"), WatchModel, path, text, problems
    )
    # A channel or check that failed validation is reported already: not "unknown" as well.
    raw_notify = data.get("notify", {})
    declared = set(raw_notify) if isinstance(raw_notify, dict) else set()
    skipped = set(raw_checks) - set(checks) if isinstance(raw_checks, dict) else set()
    if settings is not None:
        problems += _unknown_channels(
            settings.notify, declared, (*settings_loc, "notify"), path, text
        )
    for name, check in checks.items():
        loc = (*root, "checks", name, "notify")
        problems += _unknown_channels(check.notify or [], declared, loc, path, text)
    secrets = settings.secrets if settings is not None else {}
    for name, watch in watches.items():
        loc = (*root, "watch", name)
        problems += _unknown_checks(watch, list(checks), skipped, path, text, loc)
        names = placeholders(watch.index)
        problems += _unknown_secrets(names, secrets, (*loc, "index"), path, text)
    for name, table in channels.items():
        for key, value in table.items():
            names = channel_placeholders({key: value})
            loc = (*root, "notify", name, key)
            problems += _unknown_secrets(names, secrets, loc, path, text)
    if settings is not None:
        names = placeholders(settings.database)
        problems += _unknown_secrets(names, secrets, (*settings_loc, "database"), path, text)
    for index, silence in enumerate(silences):
        for name in silence.checks:
            if name not in checks:
                loc = (*root, "silences", str(index), "checks")
                known = ", ".join(sorted(checks)) or "none"
                problems.append(
                    problem(path, text, loc, f"no check named {name!r} (known: {known})")
                )
    valid = {
        "settings": settings.model_dump(mode="json") if settings is not None else {},
        "checks": {name: check.model_dump(mode="json") for name, check in checks.items()},
        "channels": channels,
        "silences": [silence.model_dump(mode="json") for silence in silences],
        "browser": browser.model_dump(mode="json"),
        "watches": {name: watch.model_dump(mode="json") for name, watch in watches.items()},
    }
    problems += missing_files(valid, path, text)
    if problems:
        raise ConfigError(problems)
    return valid


def _unknown_tables(data: dict[str, Any], path: Path, text: str) -> list[str]:
    known = ["onwatch", *TABLES]
    return [
        problem(
            path,
            text,
            (key,),
            f"unknown table {key!r}; known tables: [onwatch], [checks.NAME], "
            "[notify.NAME], [[silences]], [browser], [watch.NAME]" + did_you_mean(key, known),
        )
        for key in data
        if key not in known
    ]


def _checks(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> dict[str, CheckModel]:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table of [checks.NAME]"))
        return {}
    checks = {}
    for name, table in raw.items():
        where = (*loc, name)
        if not CHECK_NAME.match(name):
            problems.append(
                problem(
                    path,
                    text,
                    where,
                    f"{name!r} is not a usable check name; use letters, "
                    "digits, '-', '_' and '.', starting with a letter or digit",
                )
            )
            continue
        if not isinstance(table, dict):
            problems.append(problem(path, text, where, "must be a table: [checks.NAME] with tests"))
            continue
        try:
            checks[name] = CheckModel.model_validate(table)
        except ValidationError as exc:
            problems += explain(exc, path, text, where, CheckModel)
    return checks


def _named_tables(
    raw: object,
    loc: tuple[str, ...],
    model: type[Table],
    path: Path,
    text: str,
    problems: list[str],
) -> dict[str, Table]:
    """Validate the ``[KIND.NAME]`` tables at ``loc``; report each problem, return the good."""
    found = {}
    for name, table in _tables(raw, loc, path, text, problems).items():
        valid = _validated(model, table, (*loc, name), path, text, problems)
        if valid is not None:
            found[name] = valid
    return found


def _tables(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Return the ``[KIND.NAME]`` tables at ``loc`` that have a usable name; report the others."""
    kind = loc[-1]
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, f"must be a table of [{kind}.NAME]"))
        return {}
    found = {}
    for name, table in raw.items():
        if not CHECK_NAME.match(name) or not isinstance(table, dict):
            problems.append(
                problem(
                    path, text, (*loc, name), f"must be a [{kind}.NAME] table with a usable name"
                )
            )
            continue
        found[name] = table
    return found


def _validated(
    model: type[Table],
    table: dict[str, Any],
    loc: tuple[str, ...],
    path: Path,
    text: str,
    problems: list[str],
) -> Table | None:
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        problems += explain(exc, path, text, loc, model)
        return None


def _channels(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Validate each ``[notify.NAME]`` table with the model of the kind its ``type`` names."""
    channels = {}
    for name, table in _tables(raw, loc, path, text, problems).items():
        where = (*loc, name)
        kind = table.get("type", DEFAULT)
        if not isinstance(kind, str) or kind not in KINDS:
            message = (
                f"unknown channel type {kind!r}{did_you_mean(str(kind), list(KINDS))}; "
                f"known types: {', '.join(sorted(KINDS))}"
            )
            problems.append(problem(path, text, (*where, "type"), message))
            continue
        settings = _validated(KINDS[kind].settings, table, where, path, text, problems)
        if settings is not None:
            channels[name] = settings.model_dump(mode="json")
    return channels


def _browser(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> BrowserModel:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table: [browser] with executable"))
        return BrowserModel()
    return _validated(BrowserModel, raw, loc, path, text, problems) or BrowserModel()


def _silences(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> list[SilenceModel]:
    if not isinstance(raw, list):
        problems.append(problem(path, text, loc, "must be an array of tables: [[silences]]"))
        return []
    found = [
        _validated(SilenceModel, table, (*loc, str(index)), path, text, problems)
        for index, table in enumerate(raw)
    ]
    return [silence for silence in found if silence is not None]


def _unknown_checks(
    watch: WatchModel,
    known_checks: list[str],
    skipped: set[str],
    path: Path,
    text: str,
    loc: tuple[str, ...],
) -> list[str]:
    """Report each check a watch names that the file does not declare."""
    problems = []
    known = ", ".join(sorted(known_checks)) or "none"
    for index, name in enumerate(watch.checks):
        # A check that failed validation is reported already: not "unknown" as well.
        if name not in known_checks and name not in skipped:
            message = f"checks[{index}]: no check named {name!r} (known: {known})"
            problems.append(problem(path, text, (*loc, "checks"), message))
    return problems


def _unknown_secrets(
    names: list[str],
    secrets: dict[str, str],
    loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    """Report each ``${NAME}`` of ``names`` that names no secret of [onwatch] secrets."""
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
