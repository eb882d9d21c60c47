"""Plain records shared by every part of onwatch: outcomes, test results, runs, and the state
that the store keeps for alerting and the scheduler (incidents, run facts, silence windows, a
check's history).

Nothing here does I/O. ``Run.to_json`` is the documented JSON contract of
``onwatch once --json`` (see docs/json.md); ``Run.from_json`` reads it back (the spool uses it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote


class Outcome(StrEnum):
    """What happened to one test in one attempt."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # setup or teardown failed, or the test could not be collected
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    TIMEOUT = "timeout"  # in flight when the run was killed at its timeout
    FLAKY = "flaky"  # failed, then passed on a retry

    @property
    def is_bad(self) -> bool:
        """Tell whether this outcome makes its run fail."""
        return self in BAD_OUTCOMES


BAD_OUTCOMES = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT})


class RunStatus(StrEnum):
    """How a whole run of one check ended."""

    PASSED = "passed"
    FAILED = "failed"  # at least one test failed
    ERROR = "error"  # the run itself went wrong: collection error, nothing collected, crash
    TIMEOUT = "timeout"  # the run hit its timeout and was killed


class Trigger(StrEnum):
    """Why a run happened."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    UPSTREAM = "upstream"  # a new release of a watched package, tested in its own environment


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Return ``value`` in UTC as ISO 8601 text (``2026-11-24T10:05:03+00:00``), None for None."""
    return None if value is None else as_utc(value).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    """Return the UTC datetime that ISO 8601 text stands for, None for None."""
    return None if value is None else as_utc(datetime.fromisoformat(value))


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file captured from a test (a screenshot, page HTML, a console log, a trace).

    ``sha256`` names the file in the artifact store; it is "" while the file still lies where
    the test wrote it (``source``), before the runner stores it.
    """

    kind: str  # screenshot, html, console, trace
    name: str
    size: int
    sha256: str = ""
    source: str = ""  # where the test process wrote it; not part of the JSON

    @property
    def url(self) -> str:
        """Return the path the web server serves the file at."""
        return f"/artifacts/{self.sha256}/{quote(self.name, safe='')}"

    def to_json(self) -> dict[str, Any]:
        """Return this artifact in the documented JSON shape."""
        return {
            "kind": self.kind,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "url": self.url if self.sha256 else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        """Read an artifact back from its JSON shape."""
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            size=int(data.get("size", 0)),
            sha256=str(data.get("sha256") or ""),
        )


@dataclass(frozen=True, slots=True)
class TestResult:
    """One attempt of one test, as pytest reported it."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    nodeid: str
    outcome: Outcome
    phase: str  # collect, setup, call or teardown: where the outcome was decided
    duration: float
    attempt: int = 1
    exception: str | None = None  # the exception's type name
    message: str | None = None  # the first lines of the error
    traceback: str | None = None
    output: str | None = None  # captured stdout/stderr/log of a test that did not pass
    properties: tuple[tuple[str, Any], ...] = ()  # record_property()
    final: bool = True  # False when a later attempt of the same test exists
    # Why a failed, errored or timed-out attempt went wrong (analysis.categorize); else None.
    category: str | None = None
    artifacts: tuple[Artifact, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return this result in the documented JSON shape."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome.value,
            "phase": self.phase,
            "duration": round(self.duration, 6),
            "attempt": self.attempt,
            "final": self.final,
            "exception": self.exception,
            "message": self.message,
            "traceback": self.traceback,
            "output": self.output,
            "properties": [[name, value] for name, value in self.properties],
            "category": self.category,
            "artifacts": [a.to_json() for a in self.artifacts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        """Read a result back from its JSON shape."""
        return cls(
            nodeid=data["nodeid"],
            outcome=Outcome(data["outcome"]),
            phase=data["phase"],
            duration=float(data["duration"]),
            attempt=int(data.get("attempt", 1)),
            exception=data.get("exception"),
            message=data.get("message"),
            traceback=data.get("traceback"),
            output=data.get("output"),
            properties=tuple((str(n), v) for n, v in data.get("properties") or ()),
            final=bool(data.get("final", True)),
            category=data.get("category"),
            artifacts=tuple(Artifact.from_json(a) for a in data.get("artifacts") or ()),
        )


# trigger_detail["interrupted"] = "stop": onwatch was stopped (SIGINT, SIGTERM, Ctrl-C, a
# reload) while the run was in flight, and killed its tests.
INTERRUPTED = "interrupted"
BY_STOP = "stop"


@dataclass(frozen=True, slots=True)
class Run:
    """One run of one check: every attempt of every test, and how the run ended."""

    id: str
    check: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    collected: int | None = None
    results: tuple[TestResult, ...] = ()
    error: str | None = None
    trigger: Trigger = Trigger.MANUAL
    scheduled_for: datetime | None = None
    host: str = ""
    version: str = ""
    config_digest: str = ""
    trigger_detail: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def stopped(self) -> bool:
        """Tell whether a normal stop of onwatch cut this run short.

        Such a run says nothing about the product: it never counts toward ``alert_after``.
        """
        return self.trigger_detail.get(INTERRUPTED) == BY_STOP

    def as_stopped(self) -> Run:
        """Return a copy marked as cut short by a normal stop of onwatch."""
        return replace(self, trigger_detail={**self.trigger_detail, INTERRUPTED: BY_STOP})

    def final_results(self) -> list[TestResult]:
        """Return the last attempt of each test."""
        return [r for r in self.results if r.final]

    def counts(self) -> dict[str, int]:
        """Count final outcomes, every outcome present with 0 when absent."""
        counted = Counter(r.outcome.value for r in self.final_results())
        return {outcome.value: counted.get(outcome.value, 0) for outcome in Outcome}

    def with_results(self, results: tuple[TestResult, ...]) -> Run:
        """Return a copy with other results."""
        return replace(self, results=results)

    def to_json(self) -> dict[str, Any]:
        """Return this run in the documented JSON shape of ``onwatch once --json``."""
        return {
            "id": self.id,
            "check": self.check,
            "status": self.status.value,
            "error": self.error,
            "trigger": self.trigger.value,
            "scheduled_for": iso(self.scheduled_for),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration": round(self.duration, 6),
            "collected": self.collected,
            "counts": self.counts(),
            "host": self.host,
            "version": self.version,
            "config_digest": self.config_digest,
            "trigger_detail": self.trigger_detail,
            "upstream": self.trigger_detail.get("upstream"),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """Read a run back from its JSON shape."""
        started = parse_iso(data["started_at"])
        finished = parse_iso(data["finished_at"])
        assert started is not None and finished is not None
        return cls(
            id=data["id"],
            check=data["check"],
            status=RunStatus(data["status"]),
            started_at=started,
            finished_at=finished,
            collected=data.get("collected"),
            results=tuple(TestResult.from_json(r) for r in data.get("results") or ()),
            error=data.get("error"),
            trigger=Trigger(data.get("trigger", Trigger.MANUAL.value)),
            scheduled_for=parse_iso(data.get("scheduled_for")),
            host=data.get("host", ""),
            version=data.get("version", ""),
            config_digest=data.get("config_digest", ""),
            trigger_detail=dict(data.get("trigger_detail") or {}),
        )


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """What ``onwatch status`` shows for one check."""

    name: str
    last_status: RunStatus | None
    last_run_at: datetime | None
    pass_rate_24h: float | None  # passed runs / runs in the last 24 h; None without runs
    consecutive_failures: int
    next_run_at: datetime | None
    runs_24h: int = 0
    incident: dict[str, Any] | None = None  # the open incident: opened_at, failing_runs, ...
    silenced_until: datetime | None = None
    overdue: bool = False  # no completed run within interval + grace

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of one check in ``onwatch status --json``."""
        return {
            "name": self.name,
            "last_status": None if self.last_status is None else self.last_status.value,
            "last_run_at": iso(self.last_run_at),
            "pass_rate_24h": None if self.pass_rate_24h is None else round(self.pass_rate_24h, 4),
            "runs_24h": self.runs_24h,
            "consecutive_failures": self.consecutive_failures,
            "next_run_at": iso(self.next_run_at),
            "incident": self.incident,
            "silenced_until": iso(self.silenced_until),
            "overdue": self.overdue,
        }


# -- what the store keeps for alerting and the scheduler ------------------------------------------
#
# The alerting rules (alerting/rules.py) and the store both speak of these; they live here so
# that the store needs nothing of alerting.

# Statuses that make a run count as failing for alerting.
FAILING_STATUSES = frozenset({RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT})


@dataclass(frozen=True)
class FailingTest:
    """A test that failed in the run behind a notification."""

    nodeid: str
    message: str  # the first line of its error


@dataclass(frozen=True)
class RunFacts:
    """What the alerting rules need to know of one run."""

    id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    flaky: int = 0  # tests that passed only on a retry
    summary: str = ""  # what went wrong, one line (empty for a passing run)
    failing_tests: tuple[FailingTest, ...] = ()
    category: str | None = None
    stopped: bool = False  # cut short by a normal stop of onwatch: neither fails nor passes

    @property
    def failing(self) -> bool:
        """Tell whether this run counts as failing."""
        return self.status in FAILING_STATUSES and not self.stopped


@dataclass(frozen=True)
class Incident:
    """A check's outage, from its first failing run to its recovery."""

    check: str
    opened_at: datetime
    opened_run_id: str
    last_run_id: str
    failing_runs: int
    summary: str
    flaky_runs: int = 0
    category: str | None = None
    # Shown in notifications; not stored, so an incident read back from the store has none.
    failing_tests: tuple[FailingTest, ...] = ()
    id: int | None = None
    resolved_at: datetime | None = None
    resolved_run_id: str | None = None
    notified_at: datetime | None = None  # None while a silence holds the opening back
    last_reminder_at: datetime | None = None

    @property
    def open(self) -> bool:
        """Tell whether the incident is still open."""
        return self.resolved_at is None


@dataclass(frozen=True)
class Window:
    """A silence in force: whom it covers, until when, and why."""

    check: str | None  # None covers every check
    ends_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CheckHistory:
    """What the scheduler and the status page need to know about one check's past."""

    last_status: RunStatus | None = None
    last_run_at: datetime | None = None  # finished_at of the latest run
    # The latest slot that was run on schedule or deliberately skipped: the scheduler resumes
    # from it after a restart instead of replaying or forgetting slots.
    last_slot: datetime | None = None
    runs_24h: int = 0
    passed_24h: int = 0
    consecutive_failures: int = 0  # latest runs, newest first, not passed; 0 after a pass
    # When ``onwatch run`` first scheduled the check as it is configured now (or its first run
    # was stored): what its first run is late against (``state.overdue``).
    registered_at: datetime | None = None
