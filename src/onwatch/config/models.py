"""The pydantic models of ``onwatch.toml``: the one definition of every key, its default and doc.

One model per table; ``schema`` validates a file with them and reports problems with their line,
and the records of ``records`` get every value from what they return: no default is written
twice. ``[notify.NAME]`` tables are the channels' own models (``channels.registry``).
Every field is documented in docs/configuration.md, and a test fails when one is missing there.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from onwatch.durations import Duration, Interval, Timeout


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


CronExpression = Annotated[str, AfterValidator(_check_cron)]
TimeZone = Annotated[str, AfterValidator(_check_timezone)]
# A host name; a leading "*." allows every name under a domain, and "*" alone any host.
_HOST_NAME = re.compile(r"\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
CHECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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
    drain_timeout: Timeout = Field(
        default=30.0,
        description="On SIGINT/SIGTERM, how long `onwatch run` lets runs in flight finish before "
        "it kills them and records them as interrupted.",
    )
    max_jitter: Duration = Field(
        default=10.0,
        description="Upper bound of the small, stable per-check delay that spreads checks due at "
        "the same moment (never more than 10% of a check's interval).",
    )
    overload_skipped: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="onwatch is overloaded when more than this share of the slots in "
        "overload_window were skipped because the check's previous run was still going.",
    )
    overload_lateness: Duration = Field(
        default=10.0,
        description="onwatch is overloaded when the 95th percentile of how late runs start after "
        "their slot (jitter aside) exceeds this, over overload_window.",
    )
    overload_window: Duration = Field(
        default=300.0,
        description="The sliding window over which skipped slots and start lateness are judged.",
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
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the web server also answers, besides loopback names and "
        'addresses and the hosts of listen and base_url, e.g. ["onwatch.example.com"] behind a '
        'proxy; "*.example.com" allows every name under example.com. Any other Host gets 400.',
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
    heartbeat_url: str | None = Field(
        default=None, description="Pinged by `onwatch run` while it works (dead man's switch)."
    )
    heartbeat_method: Literal["GET", "POST"] = Field(
        default="POST", description="GET, or POST with a JSON status body."
    )
    heartbeat_every: Interval = Field(default=60.0, description="How often to ping at most.")
    categories: dict[Literal["credentials", "network", "timeout", "test-code"], list[str]] = Field(
        default_factory=dict,
        description="Extra regular expressions that put a failure in a category.",
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

    @field_validator("database")
    @classmethod
    def _kept_database(cls, value: str) -> str:
        # open_store also takes "memory://", for tests: from a config it would lose every run.
        scheme = value.partition(":")[0].partition("+")[0].lower()
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                f"{value.partition(':')[0]!r} is not a database onwatch keeps runs in: use "
                '"sqlite:///onwatch.db" or "postgresql://USER:${DB_PASS}@HOST/DB"'
            )
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):\d{1,5}", value):
            raise ValueError(
                f'{value!r} is not HOST:PORT, e.g. 127.0.0.1:8787; "" turns the server off'
            )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not (
                _HOST_NAME.fullmatch(entry)
                or _is_address(entry.removeprefix("[").removesuffix("]"))
            ):
                raise ValueError(
                    f"{entry!r} is not a host name or address: write the name alone, without "
                    'scheme, port or path, e.g. "onwatch.example.com", "*.example.com" or '
                    '"192.0.2.10"'
                )
        return value

    @field_validator("categories")
    @classmethod
    def _compiles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from onwatch.analysis.categorize import Patterns

        Patterns.compile(value)  # raises ValueError naming each bad expression
        return value


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
    kind: Literal["pytest"] = Field(
        default="pytest", description="How the check's tests are collected and run."
    )
    markers: str = Field(default="", description="pytest -m expression.")
    keyword: str = Field(default="", description="pytest -k expression.")
    every: Interval | None = Field(
        default=None, description='Run every so often, e.g. "5m" (1s to 365d).'
    )
    cron: CronExpression | None = Field(
        default=None, description='Run on a cron schedule, e.g. "0 * * * *".'
    )
    timezone: TimeZone = Field(default="UTC", description="Time zone of the cron expression.")
    timeout: Timeout = Field(
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
    remind_every: Interval | None = Field(
        default=None, description="Remind while an incident stays open; default: never."
    )
    grace: Interval | None = Field(
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
    every: Interval = Field(default=3600.0, description="How often to poll the index.")
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
    extra_indexes: list[str] = Field(
        default_factory=list,
        description="More simple indexes that installs may take dependencies from (the watched "
        "packages' releases are still polled on `index`); `${NAME}` secrets allowed.",
    )
    busy_wait: Duration = Field(
        default=60.0,
        description="How long a poll waits while another onwatch process polls this watch "
        "(`onwatch run` and `onwatch watch check` on one state_dir) before giving up.",
    )
    installer: Literal["auto", "uv", "pip"] = Field(
        default="auto",
        description='What builds release environments: "uv", "pip", or "auto" (uv when it is '
        "on PATH or next to onwatch's Python, else pip).",
    )
    lines: list[Literal["pinned", "latest"]] = Field(
        default=["pinned", "latest"],
        min_length=1,
        description='Version lines to follow: "pinned" (releases sharing the major.minor of the '
        'version `requirements` pins, e.g. 1.26.x) and "latest" (every newer release).',
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

    @field_validator("extra_indexes")
    @classmethod
    def _https(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL of a simple index")
        return value


class SilenceModel(BaseModel):
    """A ``[[silences]]`` entry: a maintenance window when alerts are held."""

    model_config = ConfigDict(extra="forbid")

    checks: list[str] = Field(default_factory=list, description="Checks silenced; empty: all.")
    start: datetime | None = Field(default=None, description="One-off window: its start.")
    end: datetime | None = Field(default=None, description="One-off window: its end.")
    cron: CronExpression | None = Field(
        default=None, description="Recurring window: when it starts."
    )
    duration: Interval | None = Field(default=None, description="Recurring window: its length.")
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
