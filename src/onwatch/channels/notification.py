"""What a notification says, independent of the channel that carries it.

``Notification.payload()`` is the versioned webhook contract (docs/webhooks.md): fields are added
over time, never renamed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from onwatch.model import FailingTest as FailingTest  # re-exported: notifications list them
from onwatch.model import iso, parse_iso

PAYLOAD_VERSION = 1


class Event(StrEnum):
    """Why a notification is sent."""

    INCIDENT_OPENED = "incident.opened"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_REMINDER = "incident.reminder"
    CHECK_OVERDUE = "check.overdue"
    CHANNEL_FAILING = "channel.failing"
    MONITOR_DEGRADED = "monitor.degraded"  # onwatch's own trouble: downtime, database failing
    MONITOR_RECOVERED = "monitor.recovered"  # such a trouble that lasts (overload) has ended
    UPSTREAM_BREAKS = "upstream.breaks"  # a new release of a watched package fails tests
    UPSTREAM_POLL_FAILING = "upstream.poll_failing"  # the index cannot be polled
    UPSTREAM_POLL_RECOVERED = "upstream.poll_recovered"
    UPSTREAM_INSTALL_FAILED = "upstream.install_failed"  # a release cannot be installed
    UPSTREAM_INSTALL_RECOVERED = "upstream.install_recovered"  # ... now it can, and was tested
    UPSTREAM_BASELINE_FAILED = "upstream.baseline_failed"  # the baseline cannot be trusted
    UPSTREAM_BASELINE_RECOVERED = "upstream.baseline_recovered"
    TEST = "test"


@dataclass(frozen=True)
class Notification:
    """One event about one check (or about onwatch itself), ready to be rendered and sent."""

    event: Event
    key: str  # unique per transition: with the channel's name, the delivery's idempotency key
    summary: str  # one line that says it all, e.g. "checkout is failing: 2 tests failed"
    check: str | None = None
    category: str | None = None  # product, credentials, network, timeout, test-code
    failing_tests: tuple[FailingTest, ...] = ()
    run_id: str | None = None
    run_url: str | None = None
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    failing_runs: int = 0  # how many runs in a row failed
    flaky_runs: int = 0
    severity: str = "critical"  # critical for incidents; warning for onwatch's own troubles
    details: dict[str, Any] = field(default_factory=dict)
    incident_id: int | None = None  # the incident an incident.* event is about

    @property
    def series(self) -> str | None:
        """Return what orders this notification: on a channel, a series leaves in order.

        An incident's opened, reminders and resolved are one series; so are a watch's
        poll_failing and poll_recovered for one index, install_failed and install_recovered
        for one release, baseline_failed and baseline_recovered for one package.
        """
        if self.incident_id is not None:
            return f"incident.{self.incident_id}"
        watch = self.details.get("watch")
        if self.event in (Event.UPSTREAM_POLL_FAILING, Event.UPSTREAM_POLL_RECOVERED):
            where = self.details.get("index") or self.details.get("package")
            return f"upstream.poll|{watch}|{where}"
        package = self.details.get("package")
        if self.event in (Event.UPSTREAM_INSTALL_FAILED, Event.UPSTREAM_INSTALL_RECOVERED):
            return f"upstream.install|{watch}|{package}|{self.details.get('version')}"
        if self.event in (Event.UPSTREAM_BASELINE_FAILED, Event.UPSTREAM_BASELINE_RECOVERED):
            return f"upstream.baseline|{watch}|{package}"
        return None

    @property
    def outage_seconds(self) -> float | None:
        """Return how long the incident lasted, once it is resolved."""
        if self.opened_at is None or self.resolved_at is None:
            return None
        return (self.resolved_at - self.opened_at).total_seconds()

    def payload(self) -> dict[str, Any]:
        """Return the versioned JSON body of the webhook contract."""
        return {
            "version": PAYLOAD_VERSION,
            "event": self.event.value,
            "key": self.key,
            "check": self.check,
            "category": self.category,
            "severity": self.severity,
            "summary": self.summary,
            "failing_tests": [
                {"nodeid": t.nodeid, "message": t.message} for t in self.failing_tests
            ],
            "failing_runs": self.failing_runs,
            "flaky_runs": self.flaky_runs,
            "run_id": self.run_id,
            "run_url": self.run_url,
            "opened_at": iso(self.opened_at),
            "resolved_at": iso(self.resolved_at),
            "outage_seconds": self.outage_seconds,
            "details": self.details,
            "incident_id": self.incident_id,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Notification:
        """Read a notification back from its payload (the outbox stores payloads)."""
        return cls(
            event=Event(data["event"]),
            key=data["key"],
            summary=data["summary"],
            check=data.get("check"),
            category=data.get("category"),
            failing_tests=tuple(
                FailingTest(t["nodeid"], t["message"]) for t in data.get("failing_tests") or ()
            ),
            run_id=data.get("run_id"),
            run_url=data.get("run_url"),
            opened_at=parse_iso(data.get("opened_at")),
            resolved_at=parse_iso(data.get("resolved_at")),
            failing_runs=int(data.get("failing_runs") or 0),
            flaky_runs=int(data.get("flaky_runs") or 0),
            severity=data.get("severity") or "critical",
            details=dict(data.get("details") or {}),
            incident_id=data.get("incident_id"),
        )
