"""Validation of the configuration file: pydantic models, and errors that say where and how.

Only loaded when a config file is new or changed (``onwatch.config`` caches what it returns),
so that a command run every minute from cron does not pay for pydantic each time. Every key is
documented in docs/configuration.md; a test fails when a field is missing there.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from onwatch.config import BROWSER_FIX
from onwatch.config_errors import did_you_mean, explain, problem, read_toml
from onwatch.durations import parse_duration
from onwatch.errors import ConfigError


def _check_cron(value: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is not a cron expression; write five fields "
            '(minute hour day month weekday), e.g. "*/5 * * * *"'
        )
    return value


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'{value!r} is not a time zone; use an IANA name such as "UTC" or "Europe/Paris"'
        ) from None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
CronExpression = Annotated[str, AfterValidator(_check_cron)]
TimeZone = Annotated[str, AfterValidator(_check_timezone)]
CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TABLES = ("checks", "notify", "silences", "browser", "watch")
CONFIG_FILE = "onwatch.toml"
PYPROJECT_FILE = "pyproject.toml"


class SettingsModel(BaseModel):
    """The ``[onwatch]`` table: settings of the whole installation."""

    model_config = ConfigDict(extra="forbid")

    database: str = Field(
        default="sqlite:///onwatch.db",
        description="SQLAlchemy URL of the results database; a relative SQLite path is relative "
        "to the config file's folder. PostgreSQL: postgresql://user:${DB_PASS}@host/db, the "
        "password a secret of [onwatch] secrets.",
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
    notify: list[str] = Field(
        default_factory=list,
        description="Channels ([notify.NAME]) of checks that name none of their own.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8787",
        description="Address of onwatch's web pages, for the run links in notifications.",
    )
    listen: str = Field(
        default="127.0.0.1:8787",
        description='HOST:PORT where `onwatch run` serves /healthz and /metrics; "" turns it off.',
    )

    read_tokens: list[str] = Field(
        default_factory=list,
        description='Hashes ("sha256:HEX", made by `onwatch token`) of tokens that may read the '
        "web pages and the API.",
    )
    admin_tokens: list[str] = Field(
        default_factory=list,
        description="Hashes of tokens that may also trigger runs and add silences.",
    )
    artifacts_dir: str = Field(
        default="artifacts",
        description="Folder of the files captured from browser tests (screenshots, page HTML, "
        "console logs, traces), stored by content; relative to the config file's folder.",
    )
    keep_artifacts: Duration = Field(
        default=14 * 86400.0,
        description="Artifact files older than this are deleted; results keep their entries.",
    )
    artifacts_max_size: ByteSize = Field(
        default=ByteSize(2 * 1024**3),
        description='Cap of the artifacts folder, e.g. "500MB", "2GiB": the oldest files go first.',
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description='Secrets given to the tests as environment variables: NAME = "env:VAR", '
        '"file:PATH" or "cmd:COMMAND", looked up at each run and masked in all output. '
        "Every check gets them; a check's own secrets win.",
    )
    metrics_test_limit: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="At most this many tests get per-test series on /metrics (0: none).",
    )

    @field_validator("read_tokens", "admin_tokens")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", item):
                raise ValueError(
                    f"{item[:12]!r}... is not a token hash: store the sha256:HEX line that "
                    "`onwatch token` prints, never the token itself"
                )
        return value

    @field_validator("secrets")
    @classmethod
    def _valid_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        return _secret_references(value)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}", value):
            raise ValueError(
                f'{value!r} is not HOST:PORT, e.g. 127.0.0.1:8787; "" turns the server off'
            )
        return value

    @field_validator("categories")
    @classmethod
    def _compiles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from onwatch.analysis.categorize import Patterns

        Patterns.compile(value)  # raises ValueError naming each bad expression
        return value

    heartbeat_url: str | None = Field(
        default=None, description="Pinged by `onwatch run` while it works (dead man's switch)."
    )
    heartbeat_method: Literal["GET", "POST"] = Field(
        default="POST", description="GET, or POST with a JSON status body."
    )
    heartbeat_every: Duration = Field(default=60.0, description="How often to ping at most.")
    categories: dict[Literal["credentials", "network", "timeout", "test-code"], list[str]] = Field(
        default_factory=dict,
        description="Extra regular expressions that put a failure in a category.",
    )


def _variable_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(
                f"{name!r} is not an environment variable name; use letters, digits and _"
            )
    return value


def _secret_references(value: dict[str, str]) -> dict[str, str]:
    from onwatch.secrets import reference_problem

    _variable_names(value)
    problems = [f"{name}: {why}" for name, ref in value.items() if (why := reference_problem(ref))]
    if problems:
        raise ValueError("; ".join(problems))
    return value


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
    cron: CronExpression | None = Field(
        default=None, description='Run on a cron schedule, e.g. "0 * * * *".'
    )
    timezone: TimeZone = Field(default="UTC", description="Time zone of the cron expression.")
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
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description='Secrets given to the tests as environment variables: NAME = "env:VAR", '
        '"file:PATH" or "cmd:COMMAND", looked up at each run and masked in all output; '
        "added to [onwatch] secrets.",
    )
    sensitive: bool = Field(
        default=False,
        description="Read-only tokens see outcomes but no messages, tracebacks, output, "
        "properties or artifacts of this check's tests.",
    )
    screenshots: bool = Field(
        default=True,
        description="false: browser tests keep no screenshots (they cannot be masked), and "
        "traces record no screenshots.",
    )
    enabled: bool = Field(default=True, description="false keeps the check out of `onwatch run`.")
    notify: list[str] | None = Field(
        default=None, description="Channels to notify; default: [onwatch] notify."
    )
    alert_after: int = Field(
        default=2, ge=1, le=1000, description="Failing runs in a row that open an incident."
    )
    recover_after: int = Field(
        default=1, ge=1, le=1000, description="Passing runs in a row that resolve it."
    )
    remind_every: Duration | None = Field(
        default=None, description="Remind while an incident stays open; default: never."
    )
    grace: Duration | None = Field(
        default=None,
        description="How late a run may complete before the check is overdue; default: its "
        "timeout + 1 minute.",
    )
    artifacts: Literal["on-failure", "always", "off"] = Field(
        default="on-failure",
        description="When to keep screenshots, page HTML and console logs of browser tests.",
    )
    tracing: bool = Field(
        default=False, description="Record a Playwright trace (zip) of each browser test."
    )
    browser: bool = Field(
        default=False,
        description="This check drives a browser: a run without Chromium is a run error.",
    )
    min_collected_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A run collecting fewer tests than this share of its recent runs is an "
        "error; 0 turns it off.",
    )

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        return _variable_names(value)

    @field_validator("secrets")
    @classmethod
    def _valid_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        return _secret_references(value)

    @model_validator(mode="after")
    def _env_or_secret(self) -> CheckModel:
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(
                f"{', '.join(both)} is in both env and secrets; keep it in secrets only"
            )
        return self

    @model_validator(mode="after")
    def _one_schedule(self) -> CheckModel:
        if (self.every is None) == (self.cron is None):
            raise ValueError('give exactly one schedule: every = "5m" or cron = "*/5 * * * *"')
        return self


class BrowserModel(BaseModel):
    """The ``[browser]`` table: the Chromium that browser tests drive."""

    model_config = ConfigDict(extra="forbid")

    executable: str | None = Field(
        default=None,
        min_length=1,
        description="Path of the Chromium binary, relative to the config file's folder; "
        "default: the first of chromium, chromium-browser, google-chrome on PATH.",
    )


class WatchModel(BaseModel):
    """A ``[watch.NAME]`` table: packages whose new releases re-run some checks."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(
        min_length=1, description='Distribution names on the index, e.g. ["django"].'
    )
    checks: list[str] = Field(min_length=1, description="Checks to run against each new release.")
    index: str = Field(
        default="https://pypi.org/simple/",
        description="Simple repository API (PEP 503 HTML or PEP 691 JSON) to poll.",
    )
    every: Duration = Field(default=3600.0, description="How often to poll the index.")
    prereleases: bool = Field(default=False, description="Also test pre-releases (1.2rc1).")
    min_age: Duration = Field(
        default=0.0, description="Wait this long after a release is published before testing it."
    )
    requirements: str | None = Field(
        default=None,
        description='What else the tests need: a requirements file ("requirements.txt") or '
        'a pyproject with extras ("pyproject.toml[test]"), relative to the config folder.',
    )
    alert_after: int = Field(
        default=3, ge=1, le=1000, description="Failed polls in a row that send an alert."
    )

    @field_validator("packages")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
                raise ValueError(f"{name!r} is not a package name (letters, digits, . _ -)")
        return value

    @field_validator("index")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL of a simple index")
        return value


class ChannelModel(BaseModel):
    """A ``[notify.NAME]`` table: where notifications go."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["apprise", "webhook", "alertmanager"] = Field(
        default="apprise", description="apprise (mail, chat, paging…), webhook or alertmanager."
    )
    url: str = Field(
        min_length=1,
        description="Apprise URL, webhook URL or Alertmanager URL; ${NAME} stands for a secret "
        "of [onwatch] secrets.",
    )
    timeout: Duration = Field(default=10.0, description="Limit of one delivery attempt.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers (webhook, alertmanager); values may hold ${NAME}.",
    )
    group_window: Duration = Field(
        default=60.0,
        description="apprise: notifications within this window after one is sent go out "
        "together as one message.",
    )
    hold: Duration = Field(
        default=86400.0,
        description="alertmanager: how long a firing alert stays active unless refreshed or "
        "resolved.",
    )

    @model_validator(mode="after")
    def _known_url(self) -> ChannelModel:
        if self.type in ("webhook", "alertmanager") and not self.url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                f"a {self.type} url starts with http:// or https:// (got {self.url!r})"
            )
        return self


class SilenceModel(BaseModel):
    """A ``[[silences]]`` entry: a maintenance window when alerts are held."""

    model_config = ConfigDict(extra="forbid")

    checks: list[str] = Field(default_factory=list, description="Checks silenced; empty: all.")
    start: datetime | None = Field(default=None, description="One-off window: its start.")
    end: datetime | None = Field(default=None, description="One-off window: its end.")
    cron: CronExpression | None = Field(
        default=None, description="Recurring window: when it starts."
    )
    duration: Duration | None = Field(default=None, description="Recurring window: its length.")
    timezone: TimeZone = Field(default="UTC", description="Time zone of a recurring window's cron.")
    reason: str = Field(default="", description="Shown in status and logs.")

    @model_validator(mode="after")
    def _one_kind(self) -> SilenceModel:
        one_off = self.start is not None or self.end is not None
        recurring = self.cron is not None or self.duration is not None
        if one_off == recurring:
            raise ValueError(
                "give start and end (a one-off window) or cron and duration (a recurring one), "
                'e.g. cron = "0 2 * * SUN", duration = "2h"'
            )
        if one_off and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("a one-off window needs a start and a later end, with time zones")
        if recurring and (self.cron is None or self.duration is None):
            raise ValueError("a recurring window needs both cron and duration")
        for moment in (self.start, self.end):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("write times with their zone, e.g. 2026-12-01T22:00:00Z")
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
    watches = _watches(data.get("watch", {}), (*root, "watch"), path, text, problems)
    for name, watch in watches.items():
        for index, check_name in enumerate(watch.checks):
            if check_name not in checks and check_name not in raw_checks:
                known = ", ".join(sorted(checks)) or "none"
                loc = (*root, "watch", name, "checks")
                problems.append(
                    problem(
                        path,
                        text,
                        loc,
                        f"checks[{index}]: no check named {check_name!r} (known: {known})",
                    )
                )
        problems += _missing_requirements(watch, base_dir, path, text, (*root, "watch", name))
        unknown = [n for n in _url_placeholders(watch.index) if n not in declared_secrets]
        if unknown:
            known = ", ".join(sorted(declared_secrets)) or "none"
            problems.append(
                problem(
                    path,
                    text,
                    (*root, "watch", name, "index"),
                    f"${{{unknown[0]}}} names no secret of [onwatch] secrets (known: {known})",
                )
            )
    for name, channel in channels.items():
        loc = (*root, "notify", name, "url")
        problems += _unknown_secrets(channel, declared_secrets, loc, path, text)
    if settings is not None:
        unknown = [n for n in _url_placeholders(settings.database) if n not in declared_secrets]
        if unknown:
            known = ", ".join(sorted(declared_secrets)) or "none"
            problems.append(
                problem(
                    path,
                    text,
                    (*settings_loc, "database"),
                    f"${{{unknown[0]}}} names no secret of [onwatch] secrets (known: {known})",
                )
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


def _watches(
    raw: object, loc: tuple[str, ...], path: Path, text: str, problems: list[str]
) -> dict[str, WatchModel]:
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table of [watch.NAME]"))
        return {}
    watches = {}
    for name, table in raw.items():
        where = (*loc, name)
        if not CHECK_NAME.match(name) or not isinstance(table, dict):
            problems.append(
                problem(path, text, where, "must be a [watch.NAME] table with a usable name")
            )
            continue
        try:
            watches[name] = WatchModel.model_validate(table)
        except ValidationError as exc:
            problems += explain(exc, path, text, where, WatchModel)
    return watches


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
    if not isinstance(raw, dict):
        problems.append(problem(path, text, loc, "must be a table of [notify.NAME]"))
        return {}
    channels = {}
    for name, table in raw.items():
        where = (*loc, name)
        if not CHECK_NAME.match(name) or not isinstance(table, dict):
            problems.append(
                problem(path, text, where, "must be a [notify.NAME] table with a usable name")
            )
            continue
        try:
            channel = ChannelModel.model_validate(table)
        except ValidationError as exc:
            problems += explain(exc, path, text, where, ChannelModel)
            continue
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
    channel: ChannelModel,
    secrets: dict[str, str],
    loc: tuple[str, ...],
    path: Path,
    text: str,
) -> list[str]:
    from onwatch.alerting.channels.secret import placeholders

    known = ", ".join(sorted(secrets)) or "none"
    return [
        problem(
            path,
            text,
            loc,
            f"${{{name}}} names no secret of [onwatch] secrets (known: {known}); declare it "
            f'there, e.g. {name} = "env:{name}"',
        )
        for name in placeholders(channel.model_dump())
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
