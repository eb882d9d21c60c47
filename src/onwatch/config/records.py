"""The configuration as the rest of onwatch uses it: plain frozen records, no pydantic.

Every value comes from the validated tables (``load``), so no record repeats a default: the
keys, their defaults and their docs are defined once, in ``models``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from onwatch.durations import format_duration
from onwatch.errors import ConfigError

CONFIG_FILE = "onwatch.toml"
PYPROJECT_FILE = "pyproject.toml"
CACHE_ENV = "ONWATCH_CACHE_DIR"
BROWSER_FIX = "apt-get install chromium, or set [browser] executable to the Chromium binary"
# Looked up on PATH in this order when [browser] names no executable: Debian's first.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Settings:
    """The ``[onwatch]`` table, as validated by ``models.SettingsModel``."""

    database: str
    state_dir: str
    max_parallel: int
    drain_timeout: float
    max_jitter: float
    overload_skipped: float
    overload_lateness: float
    overload_window: float
    notify: list[str]
    base_url: str
    listen: str
    allowed_hosts: list[str]
    heartbeat_url: str | None
    heartbeat_method: str
    heartbeat_every: float
    categories: dict[str, list[str]]
    artifacts_dir: str
    keep_artifacts: float
    artifacts_max_size: int
    read_tokens: list[str]
    admin_tokens: list[str]
    metrics_test_limit: int
    secrets: dict[str, str]


@dataclass(frozen=True)
class Check:
    """A ``[checks.NAME]`` table, as validated by ``models.CheckModel``."""

    tests: list[str]
    markers: str
    keyword: str
    every: float | None
    cron: str | None
    timezone: str
    timeout: float
    retries: int
    env: dict[str, str]
    pytest_args: list[str]
    enabled: bool
    artifacts: str
    tracing: bool
    notify: list[str] | None
    alert_after: int
    recover_after: int
    remind_every: float | None
    grace: float | None
    min_collected_ratio: float
    browser: bool
    secrets: dict[str, str]
    sensitive: bool
    screenshots: bool
    kind: str  # how it is collected and run: a name in onwatch.runner.registry

    @property
    def grace_seconds(self) -> float:
        """Return how late a run may complete before the check counts as overdue."""
        return self.grace if self.grace is not None else self.timeout + 60.0

    @property
    def schedule(self) -> str:
        """Return the schedule in words, e.g. ``every 5m`` or ``cron 0 * * * * (UTC)``."""
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"cron {self.cron} ({self.timezone})"

    def digest(self) -> str:
        """Return a stable hash of this check's settings, stored with every run."""
        import hashlib
        from dataclasses import asdict

        fields = asdict(self)
        if fields["kind"] == "pytest":
            del fields["kind"]  # the digest of a check written before kinds existed stays
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def pytest_selection(self) -> list[str]:
        """Return the pytest arguments that select this check's tests."""
        args = list(self.tests)
        if self.markers:
            args += ["-m", self.markers]
        if self.keyword:
            args += ["-k", self.keyword]
        return args + list(self.pytest_args)


@dataclass(frozen=True)
class Silence:
    """A ``[[silences]]`` window, as validated by ``models.SilenceModel``."""

    checks: list[str]  # empty: every check
    start: datetime | None
    end: datetime | None
    cron: str | None
    duration: float | None
    timezone: str
    reason: str


@dataclass(frozen=True)
class Watch:
    """A ``[watch.NAME]`` table, as validated by ``models.WatchModel``."""

    packages: list[str]
    checks: list[str]
    index: str
    every: float
    prereleases: bool
    min_age: float
    requirements: str | None
    alert_after: int
    extra_indexes: list[str] = field(default_factory=list)
    installer: str = "auto"  # "auto", "uv" or "pip"
    lines: list[str] = field(default_factory=lambda: ["pinned", "latest"])
    busy_wait: float = 60.0


@dataclass(frozen=True)
class Config:
    """A loaded configuration, with the paths it was found at."""

    path: Path
    base_dir: Path
    settings: Settings
    checks: dict[str, Check]
    # [notify.NAME] tables as their kind's model validated them, for channels.build_channel
    channels: dict[str, dict[str, Any]]
    silences: list[Silence]
    # [browser] executable as written, relative to base_dir; None: look for one on PATH
    browser: str | None
    watches: dict[str, Watch]

    @property
    def browser_executable(self) -> str | None:
        """Return the Chromium that browser tests drive: the configured one, else one on PATH."""
        if self.browser is not None:
            return str((self.base_dir / self.browser).resolve())
        return find_browser()

    def secrets_of(self, check: str) -> dict[str, str]:
        """Return the secret references a check's tests get: global ones, then its own."""
        own = self.checks[check].secrets if check in self.checks else {}
        return {**self.settings.secrets, **own}

    def all_secrets(self) -> list[tuple[str, str]]:
        """Return every ``(NAME, reference)`` of the configuration, each once."""
        found = dict.fromkeys(self.settings.secrets.items())
        for check in self.checks.values():
            found.update(dict.fromkeys(check.secrets.items()))
        return list(found)

    def channels_of(self, check: str) -> list[str]:
        """Return the channels a check notifies: its own list, else the default one."""
        own = self.checks[check].notify if check in self.checks else None
        return list(own) if own is not None else list(self.settings.notify)

    @property
    def database_url(self) -> str:
        """Return the database URL with a relative SQLite path made absolute."""
        url = self.settings.database
        if "${" in url:
            url = self._with_secrets(url, "[onwatch] database")
        return resolve_database_url(url, self.base_dir)

    def _with_secrets(self, text: str, where: str) -> str:
        """Fill each ``${NAME}`` of ``text`` with the value of that ``[onwatch] secrets`` entry."""
        from onwatch.errors import SecretError
        from onwatch.secrets import fill, placeholders, resolve

        names = placeholders(text)
        try:
            values = resolve({n: self.settings.secrets[n] for n in names}, self.base_dir)
        except SecretError as exc:
            raise ConfigError([f"{self.path}: {where}: {p}" for p in exc.problems]) from None
        return fill(text, values)

    @property
    def artifacts_dir(self) -> Path:
        """Return the folder of stored artifact files."""
        return (self.base_dir / self.settings.artifacts_dir).resolve()

    @property
    def state_dir(self) -> Path:
        """Return the absolute state folder."""
        return (self.base_dir / self.settings.state_dir).resolve()

    def select(self, names: list[str]) -> dict[str, Check]:
        """Return the named checks (all when ``names`` is empty), or fail naming the unknown."""
        if not names:
            return dict(self.checks)
        unknown = [n for n in names if n not in self.checks]
        if unknown:
            known = ", ".join(sorted(self.checks)) or "none"
            raise ConfigError(
                [f"{self.path}: no check named {', '.join(map(repr, unknown))} (known: {known})"]
            )
        return {n: self.checks[n] for n in names}


def find_browser() -> str | None:
    """Return the Chromium executable on PATH, if any (Debian's, then others)."""
    import shutil

    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def resolve_database_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path absolute against ``base_dir``; leave other URLs alone."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base_dir / url[len(prefix) :]).resolve())
    return url
