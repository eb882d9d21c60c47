"""What each check, incident, channel and watch looks like now, read from the store.

``onwatch status``, the web (pages and ``/api/v1/checks``) and the metrics feed (``feed.py``)
all read these records, so each surface shows the same state. ``StateService`` is the one place
that asks the store about the present; the functions below it only shape records as JSON, in
the documented shapes of docs/json.md and docs/api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from onwatch.config import Config
from onwatch.model import CheckStatus, iso, utcnow
from onwatch.schedule import next_slot
from onwatch.state.overdue import is_overdue

if TYPE_CHECKING:
    from onwatch.model import Incident, Run
    from onwatch.store import ChannelState, PollSummary, Store

__all__ = [
    "StateService",
    "Summary",
    "channel_json",
    "incident_brief",
    "incident_json",
    "watch_json",
]


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything ``onwatch status`` shows: checks, channels' health, spooled runs, watches."""

    checks: list[CheckStatus]
    channels: list[ChannelState]
    spooled: int
    watches: list[PollSummary]

    def to_json(self) -> dict[str, Any]:
        """Return the documented shape of ``onwatch status --json`` and ``GET /api/v1/checks``."""
        return {
            "checks": [status.to_json() for status in self.checks],
            "channels": [channel_json(state) for state in self.channels],
            "spooled": self.spooled,
            "watches": [watch_json(summary) for summary in self.watches],
        }


class StateService:
    """Reads the present state of an installation from its store; every read goes through here.

    Holds no state of its own beyond what it is given: build one wherever it is needed.
    """

    def __init__(
        self, config: Config, store: Store, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def summary(self) -> Summary:
        """Return the statuses of every configured check, the channels, spool and watches."""
        return Summary(self.statuses(), self.channels(), self.spooled(), self.watches())

    def statuses(self, names: list[str] | None = None) -> list[CheckStatus]:
        """Return the status of every configured check (or of the named ones), in config order."""
        from onwatch.alerting.silences import active_windows, silenced

        now = self.clock()
        chosen = {n: c for n, c in self.config.checks.items() if names is None or n in names}
        history = self.store.runs.history(list(chosen), now)
        incidents = self.store.incidents
        open_incidents = incidents.open_by_check(list(chosen))
        windows = [*active_windows(self.config.silences, now), *incidents.active_silences(now)]
        statuses = []
        for name, check in chosen.items():
            past = history[name]
            statuses.append(
                CheckStatus(
                    name=name,
                    last_status=past.last_status,
                    last_run_at=past.last_run_at,
                    pass_rate_24h=past.passed_24h / past.runs_24h if past.runs_24h else None,
                    runs_24h=past.runs_24h,
                    consecutive_failures=past.consecutive_failures,
                    next_run_at=max(next_slot(check, past.last_slot, now), now)
                    if check.enabled
                    else None,
                    incident=incident_brief(open_incidents.get(name)),
                    silenced_until=getattr(silenced(name, windows), "ends_at", None),
                    overdue=is_overdue(check, past.last_run_at, past.registered_at, now),
                )
            )
        return statuses

    def latest_run(self, check: str) -> Run | None:
        """Return the check's latest monitoring run with all its results, or None before any;
        runs of upstream releases say nothing about the monitored system."""
        for latest in self.store.runs.list_runs(check, limit=1, monitoring_only=True):
            return self.store.runs.get_run(latest.id)
        return None

    def channels(self) -> list[ChannelState]:
        """Return the health of every notification channel that has sent or tried to."""
        return self.store.outbox.channel_states()

    def watches(self) -> list[PollSummary]:
        """Return each watched package's last release tested and its polls, in config order."""
        if not self.config.watches:
            return []
        upstream = self.store.upstream
        found = []
        for name, watch in self.config.watches.items():
            found.extend(upstream.summaries(name, watch.packages))
        return found

    def spooled(self) -> int:
        """Return how many runs wait on disk for the database."""
        from onwatch.store.spool import Spool

        return len(Spool(self.config.state_dir / "spool"))


def incident_brief(incident: Incident | None) -> dict[str, Any] | None:
    """Return the open incident of a check as ``onwatch status --json`` shows it."""
    if incident is None:
        return None
    return {
        "id": incident.id,
        "opened_at": incident.opened_at.isoformat(),
        "failing_runs": incident.failing_runs,
        "summary": incident.summary,
        "notified": incident.notified_at is not None,
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    """Return the documented JSON shape of an incident (``GET /api/v1/incidents``)."""
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


def channel_json(state: ChannelState) -> dict[str, Any]:
    """Return the documented JSON shape of a channel's health."""
    return {
        "name": state.channel,
        "failing": state.consecutive_failures > 0,
        "consecutive_failures": state.consecutive_failures,
        "failing_since": iso(state.failing_since),
        "last_error": state.last_error,
        "last_attempt_at": iso(state.last_attempt_at),
        "last_success_at": iso(state.last_success_at),
    }


def watch_json(summary: PollSummary) -> dict[str, Any]:
    """Return the documented JSON shape of one watched package."""
    return {
        "watch": summary.watch,
        "package": summary.package,
        "version": summary.version,
        "last_poll_at": iso(summary.last_poll_at),
        "last_ok_at": iso(summary.last_ok_at),
        "failures": summary.failures,
        "last_error": summary.last_error,
        "state": summary.state,
        "reason": summary.reason,
        "baseline": summary.baseline,
    }
