"""The records the store's nouns return, and the hour a run is counted in. Plain Python, no SQL.

Records that alerting shares with the store (``Incident``, ``RunFacts``, ``Window``,
``CheckHistory``) live in ``onwatch.model``; these are the store's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from onwatch.model import RunStatus, TestResult, Trigger, as_utc

__all__ = [
    "BASELINE_SEARCH",
    "ChannelState",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "HourRow",
    "PollRecord",
    "PollSummary",
    "RunPoint",
    "RunRow",
    "TestRow",
    "WATCH_STATES",
    "hour_of",
    "pinned_line",
]

# How many recent upstream runs of a check are searched for a baseline; a watch adds one or
# two per release, so this reaches back a long way.
BASELINE_SEARCH = 200


def pinned_line(package: str) -> str:
    """Return the key under which the last release of ``package``'s pinned line is kept
    (``Upstream.last_version``); the package's own name keeps the latest line's."""
    return f"{package}@pinned"


def hour_of(moment: datetime) -> datetime:
    """Return the UTC hour that ``moment`` falls in: the unit of the pass-rate rollup."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


# -- dashboard reads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as lists show it: no results, but its outcome counts."""

    id: str
    check: str
    status: RunStatus
    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    duration: float
    error: str | None
    collected: int | None
    counts: dict[str, int] = field(default_factory=dict)  # the outcomes counted at least once

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of a run in a list."""
        return {
            "id": self.id,
            "check": self.check,
            "status": self.status.value,
            "trigger": self.trigger.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": round(self.duration, 6),
            "error": self.error,
            "collected": self.collected,
            "counts": self.counts,
        }


class RunPoint(NamedTuple):
    """A run as a point of a chart."""

    id: str
    status: str
    started_at: datetime
    duration: float


@dataclass(frozen=True, slots=True)
class HourRow:
    """One check's runs in one hour."""

    hour: datetime
    runs: int
    passed: int
    duration_sum: float


@dataclass(frozen=True, slots=True)
class TestRow:
    """One final result of one test, with the run it belongs to."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    run_id: str
    started_at: datetime
    result: TestResult


# -- the outbox -----------------------------------------------------------------------------------


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"  # waiting for its next attempt (or being sent)
    SENT = "sent"
    FAILED = "failed"  # refused permanently, or out of attempts


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification for one channel, as stored in the outbox."""

    id: int
    key: str
    channel: str
    event: str
    check: str | None
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None
    # Deliveries of one series on one channel are sent in the order they were added.
    series: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try to send a delivery."""

    delivery_id: int
    attempted_at: datetime
    duration: float  # seconds
    ok: bool
    permanent: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class ChannelState:
    """The health of one notification channel."""

    channel: str
    consecutive_failures: int
    failing_since: datetime | None
    last_error: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None


# -- the upstream watch ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollRecord:
    """One poll of one package."""

    watch: str
    package: str
    polled_at: datetime
    ok: bool
    kind: str | None = None
    error: str | None = None
    latest: str | None = None
    new_versions: list[str] = field(default_factory=list)


# What a watched package's state can be: every one but ok leaves new releases untested
# (cannot-install, baseline-failing, polls-failing) or says the last one broke something.
WATCH_STATES = ("ok", "breaks", "cannot-install", "baseline-failing", "polls-failing")


@dataclass(frozen=True, slots=True)
class PollSummary:
    """What status shows of one watched package."""

    watch: str
    package: str
    version: str | None  # the last release handled
    last_poll_at: datetime | None
    last_ok_at: datetime | None  # the last successful poll
    failures: int  # failed polls in a row, up to the last
    last_error: str | None
    last_kind: str | None = None  # the last failed poll's kind (unreachable, auth...)
    state: str = "ok"  # ok, breaks, cannot-install, baseline-failing, polls-failing
    reason: str | None = None  # why the state is not ok
    baseline: str | None = None  # the release new ones are compared with
