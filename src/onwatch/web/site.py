"""What the pages and the API share: the ``Site`` (config, store, auth, trigger) and its reads.

A ``Site`` is built once per app by ``create_app`` and passed to the routers; nothing here is
module-level state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from onwatch.config import Config
from onwatch.errors import TriggerRefused
from onwatch.model import CheckStatus, RunStatus, utcnow
from onwatch.store.dashboard import DashboardStore, RunRow
from onwatch.store.incidents import IncidentStore
from onwatch.store.sql import SqlStore
from onwatch.web.auth import Auth

__all__ = ["CheckRow", "Overview", "Site", "TriggerRefused"]

STRIP_RUNS = 50
RATE_WINDOWS = (timedelta(hours=24), timedelta(days=7), timedelta(days=30))


# Starts a manual run of the named check and returns a line saying so; raises TriggerRefused.
Trigger = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One check on the overview."""

    status: CheckStatus
    rates: list[tuple[int, int]]  # (runs, passed) per RATE_WINDOWS
    recent: list[RunRow]  # oldest first

    @property
    def state(self) -> str:
        """Return the colour class of the row: the latest status, "none" before any run."""
        if self.status.last_status is None:
            return "none"
        return self.status.last_status.value


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
    store: SqlStore
    auth: Auth
    trigger: Trigger | None = None
    clock: Callable[[], datetime] = field(default=utcnow)

    @cached_property
    def dashboard(self) -> DashboardStore:
        """Return the dashboard reads."""
        return DashboardStore(self.store)

    @cached_property
    def incidents(self) -> IncidentStore:
        """Return the incident and silence store."""
        return IncidentStore(self.store)

    def statuses(self) -> list[CheckStatus]:
        """Return every configured check's status, as ``onwatch status`` shows it."""
        from onwatch.commands import check_statuses

        return check_statuses(self.config, self.store)

    def overview(self) -> Overview:
        """Return the overview: each check's status, pass rates and latest runs."""
        now = self.clock()
        statuses = self.statuses()
        names = [s.name for s in statuses]
        rates = self.dashboard.pass_rates(names, now, RATE_WINDOWS)
        recent = self.dashboard.recent_runs(names, STRIP_RUNS)
        rows = [
            CheckRow(s, rates.get(s.name, [(0, 0)] * len(RATE_WINDOWS)), recent.get(s.name, []))
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


def incident_json(incident: Any) -> dict[str, Any]:
    """Return the documented JSON shape of an incident."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": incident.id,
        "check": incident.check,
        "opened_at": iso(incident.opened_at),
        "resolved_at": iso(incident.resolved_at),
        "open": incident.open,
        "failing_runs": incident.failing_runs,
        "flaky_runs": incident.flaky_runs,
        "category": incident.category,
        "summary": incident.summary,
        "opened_run_id": incident.opened_run_id,
        "last_run_id": incident.last_run_id,
        "resolved_run_id": incident.resolved_run_id,
        "notified": incident.notified_at is not None,
    }
