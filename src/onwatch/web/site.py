"""What the pages and the API share: the ``Site`` (config, store, auth, trigger) and its reads.

A ``Site`` is built once per app by ``create_app`` and passed to the routers; nothing here is
module-level state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from urllib.parse import quote

from markupsafe import Markup

from onwatch.artifacts import ArtifactStore
from onwatch.config import Config
from onwatch.model import CheckStatus, RunStatus, utcnow
from onwatch.state.service import StateService
from onwatch.store import DashboardReads, Incidents, RunPoint, Store, hour_of
from onwatch.web import charts
from onwatch.web.auth import Auth
from onwatch.web.charts import fmt_seconds

__all__ = ["CheckRow", "Overview", "Site", "StartRun"]

STRIP_RUNS = 50
RATE_WINDOWS = (timedelta(hours=24), timedelta(days=7), timedelta(days=30))


# Starts a manual run of the named check and returns a line saying so; raises TriggerRefused.
StartRun = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One check on the overview."""

    status: CheckStatus
    rates: list[tuple[int, int]]  # (runs, passed) per RATE_WINDOWS
    strip: Markup  # the latest runs, oldest first, each linked to its run
    sparkline: Markup  # their durations

    @property
    def state(self) -> str:
        """Return the colour class of the row: the latest status, "none" before any run."""
        if self.status.last_status is None:
            return "none"
        return self.status.last_status.value


@dataclass(frozen=True, slots=True)
class _Drawn:
    """A check's overview charts and pass rates, valid while ``key`` holds."""

    key: tuple[datetime | None, datetime]  # the check's latest run, the current hour
    rates: list[tuple[int, int]]
    strip: Markup
    sparkline: Markup


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the overview page and its counts show."""

    rows: list[CheckRow]
    now: datetime

    def count(self, what: str) -> int:
        """Return how many checks are passing, failing, overdue or silenced."""
        if what == "passing":
            return sum(1 for r in self.rows if r.status.last_status is RunStatus.PASSED)
        if what == "failing":
            return sum(
                1
                for r in self.rows
                if r.status.last_status is not None and r.status.last_status is not RunStatus.PASSED
            )
        if what == "overdue":
            return sum(1 for r in self.rows if r.status.overdue)
        if what == "silenced":
            return sum(1 for r in self.rows if r.status.silenced_until is not None)
        raise ValueError(what)


@dataclass
class Site:
    """The installation a web app shows."""

    config: Config
    store: Store
    auth: Auth
    trigger: StartRun | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    _drawn: dict[str, _Drawn] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def dashboard(self) -> DashboardReads:
        """Return the dashboard reads."""
        return self.store.dashboard

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """Return the store of files captured from tests."""
        return ArtifactStore(self.config.artifacts_dir)

    @cached_property
    def sensitive_checks(self) -> list[str]:
        """Return the names of the sensitive checks."""
        return [name for name, check in self.config.checks.items() if check.sensitive]

    def sensitive_file(self, sha256: str) -> bool:
        """Tell whether a result of a sensitive check lists the stored file ``sha256``."""
        return self.store.artifacts.lists(self.sensitive_checks, sha256)

    @property
    def incidents(self) -> Incidents:
        """Return the incidents and silences."""
        return self.store.incidents

    @cached_property
    def state(self) -> StateService:
        """Return the reads of each check's, channel's and watch's present state."""
        return StateService(self.config, self.store, clock=self.clock)

    def statuses(self, names: list[str] | None = None) -> list[CheckStatus]:
        """Return every configured check's status (or the named ones'), as ``onwatch status``."""
        return self.state.statuses(names)

    def overview(self) -> Overview:
        """Return the overview: each check's status, pass rates and latest runs.

        A check's charts and pass rates change only when it runs, and as the hour turns (the
        rollup is hourly): they are drawn again then, not on every refresh of the page.
        """
        now = self.clock()
        statuses = self.statuses()
        hour = hour_of(now)
        with self._lock:
            drawn = dict(self._drawn)
        last = {s.name: s.last_run_at for s in statuses}
        # Runs since the last drawing redraw the charts; the hour turning only moves the rates.
        ran = [n for n in last if n not in drawn or drawn[n].key[0] != last[n]]
        aged = [n for n in last if n in ran or drawn[n].key[1] != hour]
        if aged:
            rates = self.dashboard.pass_rates(aged, now, RATE_WINDOWS)
            recent = self.dashboard.recent_points(ran, STRIP_RUNS) if ran else {}
            for name in aged:
                if name in ran:
                    strip, spark = _run_charts(name, recent.get(name, []))
                else:
                    strip, spark = drawn[name].strip, drawn[name].sparkline
                drawn[name] = _Drawn((last[name], hour), rates.get(name, _NO_RATES), strip, spark)
            with self._lock:
                self._drawn = drawn
        rows = [
            CheckRow(s, drawn[s.name].rates, drawn[s.name].strip, drawn[s.name].sparkline)
            for s in statuses
        ]
        return Overview(rows, now)

    def silence(self, check: str | None, seconds: float, reason: str) -> datetime:
        """Add a run-time silence from now; return when it ends."""
        now = self.clock()
        ends = now + timedelta(seconds=seconds)
        self.incidents.add_silence(check, now, ends, reason)
        return ends

    def has_check(self, name: str) -> bool:
        """Tell whether ``name`` is a configured check."""
        return name in self.config.checks

    def is_sensitive(self, name: str) -> bool:
        """Tell whether the check ``name`` is configured ``sensitive`` (web/redaction.py)."""
        check = self.config.checks.get(name)
        return check is not None and check.sensitive


_NO_RATES = [(0, 0)] * len(RATE_WINDOWS)


def _run_charts(name: str, points: list[RunPoint]) -> tuple[Markup, Markup]:
    """Draw a check's strip of latest runs and the sparkline of their durations."""
    from onwatch.web.views import utc

    titles = [f"{utc(p.started_at)} — {p.status}, {fmt_seconds(p.duration)}" for p in points]
    strip = charts.strip(
        [
            charts.Cell(p.status, t, f"/runs/{quote(p.id, safe='')}")
            for p, t in zip(points, titles, strict=True)
        ],
        label=f"latest runs of {name}",
    )
    spark = charts.sparkline(
        [p.duration for p in points],
        [f"{utc(p.started_at)}: {fmt_seconds(p.duration)}, {p.status}" for p in points],
        label=f"run durations of {name}",
    )
    return strip, spark
