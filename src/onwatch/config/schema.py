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
    ``browser``, ``watches``) with defaults filled in and durations in seconds. The problems of
    every kind come in one error: the schema's, the references' (channels, checks, secrets a
    table names) and the files' (paths that do not exist). A table with a bad key still has
    the references and paths of its good keys checked, so a user fixes the file once.
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
    # What each table says, as far as it is valid: the references and paths are checked on it.
    seen = Partial()
    settings = None
    if isinstance(settings_data, dict):
        settings = _validated(
            SettingsModel, settings_data, settings_loc, path, text, problems, seen, "settings"
        )
    else:
        problems.append(problem(path, text, settings_loc, "must be a table: [onwatch]"))
    raw_checks = data.get("checks", {})
    checks = _checks(raw_checks, (*root, "checks"), path, text, problems, seen)
    channels = _channels(data.get("notify", {}), (*root, "notify"), path, text, problems, seen)
    browser = _browser(data.get("browser", {}), (*root, "browser"), path, text, problems, seen)
    silences = _silences(data.get("silences", []), (*root, "silences"), path, text, problems, seen)
    watches = _named_tables(
        data.get("watch", {}), (*root, "watch"), WatchModel, path, text, problems, seen
    )
    problems += _references(seen, settings_data, root, settings_loc, path, text)
    valid = {
        "settings": settings.model_dump(mode="json") if settings is not None else {},
        "checks": {name: check.model_dump(mode="json") for name, check in checks.items()},
        "channels": channels,
        "silences": [silence.model_dump(mode="json") for silence in silences],
        "browser": browser.model_dump(mode="json"),
        "watches": {name: watch.model_dump(mode="json") for name, watch in watches.items()},
    }
    problems += missing_files(seen.as_data(), path, text)
    if problems:
        raise ConfigError(sorted(problems, key=_line_of))
    return valid


class Partial:
    """The keys of each table that are valid, whether or not the whole table is.

    A table that passed holds all its keys with defaults; one that failed holds the keys that
    caused no problem, as written. A check with an unusable name is here with no keys (it is
    declared: naming it is no second problem); other tables without a usable name are not.
    """

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.browser: dict[str, Any] = {}
        self.silences: dict[str, dict[str, Any]] = {}
        self.watches: dict[str, dict[str, Any]] = {}

    def keep(self, table: str, name: str, keys: dict[str, Any]) -> None:
        """Record the valid ``keys`` of the table ``name`` of kind ``table``."""
        if table in ("settings", "browser"):
            setattr(self, table, keys)
            return
        getattr(self, table)[name] = keys

    def as_data(self) -> dict[str, Any]:
        """Return what ``files.missing_files`` reads: the tables, valid keys only."""
        return {"checks": self.checks, "browser": self.browser, "watches": self.watches}


def _references(
    seen: Partial,
    raw_settings: object,
    root: tuple[str, ...],
    settings_loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    """Report every channel, check and secret a table names that the file does not declare."""
    problems: list[str] = []
    declared = set(seen.channels)
    channels_seen = _strings(seen.settings.get("notify"))
    problems += _unknown_channels(channels_seen, declared, (*settings_loc, "notify"), path, text)
    for name, check in seen.checks.items():
        loc = (*root, "checks", name, "notify")
        problems += _unknown_channels(_strings(check.get("notify")), declared, loc, path, text)
    # A check that failed validation is reported already: not "unknown" as well.
    known_checks = sorted(seen.checks)
    secrets = seen.settings.get("secrets", {})
    if (
        isinstance(raw_settings, dict)
        and "secrets" in raw_settings
        and "secrets" not in seen.settings
    ):
        secrets = None  # reported already: every ${NAME} would be "unknown" as well
    for name, watch in seen.watches.items():
        loc = (*root, "watch", name)
        named = _strings(watch.get("checks"))
        problems += _unknown_checks(named, known_checks, path, text, loc)
        index = watch.get("index")
        if isinstance(index, str):
            problems += _unknown_secrets(placeholders(index), secrets, (*loc, "index"), path, text)
        for url in _strings(watch.get("extra_indexes")):
            where = (*loc, "extra_indexes")
            problems += _unknown_secrets(placeholders(url), secrets, where, path, text)
    for name, table in seen.channels.items():
        for key, value in table.items():
            names = channel_placeholders({key: value})
            loc = (*root, "notify", name, key)
            problems += _unknown_secrets(names, secrets, loc, path, text)
    database = seen.settings.get("database")
    if isinstance(database, str):
        loc = (*settings_loc, "database")
        problems += _unknown_secrets(placeholders(database), secrets, loc, path, text)
    for index, silence in seen.silences.items():
        for name in _strings(silence.get("checks")):
            if name not in seen.checks:
                loc = (*root, "silences", index, "checks")
                known = ", ".join(sorted(seen.checks)) or "none"
                problems.append(
                    problem(path, text, loc, f"no check named {name!r} (known: {known})")
                )
    return problems


def _strings(value: object) -> list[str]:
    """Return ``value`` if it is a list of strings (as a valid key holds), else nothing."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return []


def _line_of(found: str) -> int:
    """Sort key of a problem line: its line in the file (problems without one first)."""
    where = found.split(": ", 1)[0]
    line = where.rpartition(":")[2]
    return int(line) if line.isdigit() else 0


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
    raw: object,
    loc: tuple[str, ...],
    path: Path,
    text: str,
    problems: list[str],
    seen: Partial,
) -> dict[str, CheckModel]:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table of [checks.NAME]"))
        return {}
    checks = {}
    for name, table in raw.items():
        where = (*loc, name)
        if not CHECK_NAME.match(name) or not isinstance(table, dict):
            seen.keep("checks", name, {})  # reported here: not "unknown" as well
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
        valid = _validated(CheckModel, table, where, path, text, problems, seen, "checks")
        if valid is not None:
            checks[name] = valid
    return checks


def _named_tables(
    raw: object,
    loc: tuple[str, ...],
    model: type[Table],
    path: Path,
    text: str,
    problems: list[str],
    seen: Partial,
) -> dict[str, Table]:
    """Validate the ``[KIND.NAME]`` tables at ``loc``; report each problem, return the good."""
    found = {}
    for name, table in _tables(raw, loc, path, text, problems).items():
        valid = _validated(model, table, (*loc, name), path, text, problems, seen, "watches")
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
    seen: Partial,
    kind: str,
) -> Table | None:
    """Validate one table: report its problems, keep its valid keys in ``seen`` as ``kind``."""
    try:
        valid = model.model_validate(table)
    except ValidationError as exc:
        problems += explain(exc, path, text, loc, model)
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        good = {k: v for k, v in table.items() if k in model.model_fields and k not in bad}
        seen.keep(kind, loc[-1], good)
        return None
    seen.keep(kind, loc[-1], valid.model_dump(mode="json"))
    return valid


def _channels(
    raw: object,
    loc: tuple[str, ...],
    path: Path,
    text: str,
    problems: list[str],
    seen: Partial,
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
            seen.keep("channels", name, {})  # declared: not "unknown" as well
            continue
        model = KINDS[kind].settings
        settings = _validated(model, table, where, path, text, problems, seen, "channels")
        if settings is not None:
            channels[name] = settings.model_dump(mode="json")
    return channels


def _browser(
    raw: object,
    loc: tuple[str, ...],
    path: Path,
    text: str,
    problems: list[str],
    seen: Partial,
) -> BrowserModel:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table: [browser] with executable"))
        return BrowserModel()
    valid = _validated(BrowserModel, raw, loc, path, text, problems, seen, "browser")
    return valid or BrowserModel()


def _silences(
    raw: object,
    loc: tuple[str, ...],
    path: Path,
    text: str,
    problems: list[str],
    seen: Partial,
) -> list[SilenceModel]:
    if not isinstance(raw, list):
        problems.append(problem(path, text, loc, "must be an array of tables: [[silences]]"))
        return []
    found = []
    for index, table in enumerate(raw):
        where = (*loc, str(index))
        if not isinstance(table, dict):
            problems.append(problem(path, text, where, "must be a table: [[silences]]"))
            continue
        found.append(_validated(SilenceModel, table, where, path, text, problems, seen, "silences"))
    return [silence for silence in found if silence is not None]


def _unknown_checks(
    named: list[str],
    known_checks: list[str],
    path: Path,
    text: str,
    loc: tuple[str, ...],
) -> list[str]:
    """Report each check a watch names that the file does not declare."""
    problems = []
    known = ", ".join(sorted(known_checks)) or "none"
    for index, name in enumerate(named):
        if name not in known_checks:
            message = f"checks[{index}]: no check named {name!r} (known: {known})"
            problems.append(problem(path, text, (*loc, "checks"), message))
    return problems


def _unknown_secrets(
    names: list[str],
    secrets: dict[str, str] | None,
    loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    """Report each ``${NAME}`` of ``names`` that names no secret of [onwatch] secrets."""
    if secrets is None:
        return []
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
