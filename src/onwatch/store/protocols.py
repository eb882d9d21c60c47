"""The storage seam: one narrow Protocol per noun, and the ``Store`` that holds one of each.

Consumers are typed against these, never against an implementation: ``SqlStore`` (sql.py, on
SQLite or PostgreSQL) and ``MemoryStore`` (memory/, for tests) both satisfy them and pass the
same contract tests (tests/store/contract/).

Every method raises ``onwatch.errors.StoreError`` when the database cannot be reached or
written, never a driver's exception. Datetimes come back timezone-aware in UTC. Runs of an
upstream release (``Trigger.UPSTREAM``) say nothing about the monitored system: they are left
out of a check's history, its alerting facts, its pass rates and its charts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from onwatch.model import CheckHistory, Incident, Run, RunFacts, TestResult, Window
from onwatch.store.records import (
    ChannelState,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    HourRow,
    PollRecord,
    PollSummary,
    RunPoint,
    RunRow,
    TestRow,
)

__all__ = [
    "ArtifactIndex",
    "DashboardReads",
    "Deliveries",
    "Incidents",
    "Runs",
    "Store",
    "Upstream",
]


class Runs(Protocol):
    """Checks, runs with their results, and skipped slots."""

    def upsert_check(self, name: str, config_digest: str, schedule: str) -> None:
        """Create a check's row, or update its digest and schedule."""
        ...

    def save_run(self, run: Run) -> bool:
        """Store a run and all its results at once; False if its id is already stored."""
        ...

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why ("overlap", "down")."""
        ...

    def skipped_slots(self, check: str, limit: int = 100) -> list[tuple[datetime, str]]:
        """Return a check's skipped slots and their reasons, newest first."""
        ...

    def get_run(self, run_id: str) -> Run | None:
        """Return a run with all its results (by attempt, then as recorded), or None."""
        ...

    def list_runs(
        self,
        check: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        monitoring_only: bool = False,
    ) -> list[Run]:
        """Return runs newest first, without their results; since <= started_at < until.

        ``monitoring_only`` leaves out the runs of upstream releases.
        """
        ...

    def history(self, names: list[str], now: datetime) -> dict[str, CheckHistory]:
        """Return the history of each named check, an empty one for checks never run."""
        ...

    def test_history(self, check: str, nodeid: str, limit: int = 100) -> list[TestResult]:
        """Return every attempt of one test in one check, newest first."""
        ...

    def recent_facts(self, check: str, limit: int) -> list[RunFacts]:
        """Return the check's latest runs, newest first, as the alerting rules see them."""
        ...

    def collected_counts(self, check: str, limit: int = 10) -> list[int]:
        """Return how many tests the check's latest runs that tested collected, newest first.

        Runs that tested are those that passed or failed; an error or a timeout says nothing
        about the selection.
        """
        ...


class Incidents(Protocol):
    """Incidents of checks and the silences added at run time."""

    def open_incident(self, check: str) -> Incident | None:
        """Return the check's open incident, if any."""
        ...

    def open_incidents(self) -> list[Incident]:
        """Return every open incident, oldest first."""
        ...

    def open_by_check(self, checks: list[str]) -> dict[str, Incident]:
        """Return the open incident of each named check that has one."""
        ...

    def incidents(self, check: str | None = None, limit: int = 100) -> list[Incident]:
        """Return incidents newest first, of one check or all."""
        ...

    def save(self, incident: Incident) -> Incident:
        """Insert a new incident (id None) or update a known one; return it with its id.

        Its ``failing_tests`` are for the notification at hand and are not kept.
        """
        ...

    def add_silence(
        self, check: str | None, starts_at: datetime, ends_at: datetime, reason: str
    ) -> None:
        """Store a silence of one check (None: every check) from ``starts_at`` to ``ends_at``."""
        ...

    def active_silences(self, now: datetime) -> list[Window]:
        """Return the stored silences in force at ``now``: starts_at <= now < ends_at."""
        ...


class Deliveries(Protocol):
    """The outbox: deliveries, their attempts, and the health of each channel.

    A delivery is pending until it is sent or given up on (failed). While one process sends it,
    the delivery is *claimed*: its ``next_attempt_at`` is pushed past the send's longest
    duration, so that a second process on the same database does not pick it up too, and a
    process that dies mid-send leaves it to be tried again once the claim runs out.

    Deliveries that share a ``series`` (an incident's notifications) on one channel leave in the
    order they were added: a delivery is not due while an earlier one of its series and channel
    is pending. Sent or given up on, the earlier one holds nothing back any more.
    """

    def add(
        self,
        key: str,
        channel: str,
        event: str,
        check: str | None,
        payload: dict[str, Any],
        now: datetime,
        *,
        series: str | None = None,
    ) -> bool:
        """Store a pending delivery, due at ``now``; False if one with ``key`` already exists."""
        ...

    def due(
        self, now: datetime, *, channels: Collection[str] | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Return pending deliveries due at ``now`` (of ``channels`` if given), oldest first.

        A delivery that waits for an earlier one of its series is not returned.
        """
        ...

    def claim(self, ids: Iterable[int], *, now: datetime, until: datetime) -> list[int]:
        """Reserve due deliveries for a send until ``until``; return the ids this call got."""
        ...

    def pending_for(self, channel: str) -> list[Delivery]:
        """Return a channel's pending deliveries, oldest first."""
        ...

    def next_due_by_channel(self) -> dict[str, datetime]:
        """Return, per channel with deliveries that may leave, when the earliest of them is due.

        A delivery waiting for an earlier one of its series does not count.
        """
        ...

    def record_attempt(
        self,
        delivery_id: int,
        *,
        at: datetime,
        duration: float,
        ok: bool,
        permanent: bool,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Store one attempt and move its delivery on: sent, failed, or due again later.

        ``next_attempt_at`` None means there is no further attempt: the delivery fails.
        """
        ...

    def get(self, delivery_id: int) -> Delivery | None:
        """Return one delivery, or None."""
        ...

    def deliveries(
        self, limit: int = 100, *, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Return deliveries newest first, optionally only those with ``status``."""
        ...

    def attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        """Return every attempt of a delivery, first first."""
        ...

    def channel_states(self) -> list[ChannelState]:
        """Return the health of every channel that was ever tried, by name."""
        ...

    def update_channel(
        self, channel: str, *, ok: bool, error: str | None, at: datetime
    ) -> ChannelState:
        """Record the outcome of a send on a channel and return its new state.

        A failure counts one more in a row and keeps when the episode began; a success ends it
        and keeps the last error for the record.
        """
        ...


class DashboardReads(Protocol):
    """The bounded reads behind the pages and the JSON API."""

    def pass_rates(
        self, checks: Sequence[str], now: datetime, windows: Sequence[timedelta]
    ) -> dict[str, list[tuple[int, int]]]:
        """Return (runs, passed) per check for each window ending ``now``.

        A window counts whole hours: it starts at the hour that ``now - window`` falls in.
        """
        ...

    def recent_points(self, checks: Sequence[str], limit: int) -> dict[str, list[RunPoint]]:
        """Return the latest ``limit`` runs of each check as chart points, oldest first."""
        ...

    def runs(
        self,
        check: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        monitoring_only: bool = False,
    ) -> list[RunRow]:
        """Return runs newest first, upstream ones included unless ``monitoring_only``;
        since <= started_at < until."""
        ...

    def hours(self, check: str, since: datetime, until: datetime) -> list[HourRow]:
        """Return the check's runs per hour from the hour of ``since`` to ``until``, oldest
        first; hours without runs are left out."""
        ...

    def durations(
        self, check: str, since: datetime, until: datetime, limit: int = 20_000
    ) -> list[tuple[datetime, float]]:
        """Return (started_at, duration) of the check's latest runs in the range, oldest
        first."""
        ...

    def final_results(self, run_ids: Sequence[str]) -> list[tuple[str, TestResult]]:
        """Return (run id, final result) of the given runs, without tracebacks, output and
        artifacts."""
        ...

    def test_results(
        self,
        check: str,
        nodeid: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 5000,
        brief: bool = False,
        monitoring_only: bool = False,
    ) -> list[TestRow]:
        """Return the final results of one test, newest first; ``brief`` leaves out tracebacks,
        output and artifacts, which charts do not show; ``monitoring_only`` leaves out the
        results of upstream runs."""
        ...

    def upstream_runs(self, checks: Sequence[str], limit: int = 200) -> list[Run]:
        """Return the latest ``limit`` upstream runs of the checks, newest first, without
        their results."""
        ...

    def latest_releases(self, watch: str, packages: Sequence[str]) -> dict[str, str | None]:
        """Return the newest release each package's latest successful poll of ``watch`` saw
        (None before any)."""
        ...


class Upstream(Protocol):
    """The upstream watch's state: last handled release per package, first sightings, polls."""

    def last_version(self, watch: str, package: str) -> str | None:
        """Return the last release of ``package`` that ``watch`` handled, if any."""
        ...

    def set_last_version(self, watch: str, package: str, version: str, at: datetime) -> None:
        """Remember ``version`` as the last release of ``package`` handled by ``watch``."""
        ...

    def first_seen(
        self, watch: str, package: str, versions: Iterable[str], at: datetime
    ) -> dict[str, datetime]:
        """Return when each version was first seen, recording ``at`` for the new ones."""
        ...

    def record_poll(self, poll: PollRecord) -> None:
        """Store one poll's outcome."""
        ...

    def summaries(self, watch: str, packages: list[str], limit: int = 1000) -> list[PollSummary]:
        """Return each package's last poll, last successful poll and failures in a row."""
        ...

    def streak_before_last_ok(
        self, watch: str, package: str, limit: int = 1000
    ) -> tuple[int, datetime | None]:
        """Return how many polls failed in a row just before the latest one, if it passed, and
        when that one was; (0, None) when the latest poll failed or there is none."""
        ...

    def baseline_run(self, check: str, package: str, version: str) -> Run | None:
        """Return the latest upstream run of ``check`` on ``package`` ``version`` that executed
        the suite (not errored, tests collected), results in."""
        ...

    def watch_state(self, watch: str, package: str) -> dict[str, Any]:
        """Return the package's watch state as last saved (empty when never saved)."""
        ...

    def set_watch_state(self, watch: str, package: str, data: dict[str, Any], at: datetime) -> None:
        """Save the package's watch state (a JSON object)."""
        ...


class ArtifactIndex(Protocol):
    """Which stored files the results of given checks list."""

    def lists(self, checks: Sequence[str], sha256: str) -> bool:
        """Tell whether any result of one of ``checks`` lists the file ``sha256``."""
        ...


class Store(Protocol):
    """What ``open_store`` returns: one instance of each noun, built once, and the database."""

    @property
    def url(self) -> str:
        """The database's URL, without its password."""
        ...

    @property
    def runs(self) -> Runs:
        """Checks, runs and results, skipped slots."""
        ...

    @property
    def incidents(self) -> Incidents:
        """Incidents and run-time silences."""
        ...

    @property
    def outbox(self) -> Deliveries:
        """Deliveries of notifications and channel health."""
        ...

    @property
    def dashboard(self) -> DashboardReads:
        """Reads for the pages and the API."""
        ...

    @property
    def upstream(self) -> Upstream:
        """The upstream watch's state."""
        ...

    @property
    def artifacts(self) -> ArtifactIndex:
        """Which results list which stored files."""
        ...

    def ensure_schema(self) -> None:
        """Bring the database to the newest schema; cheap when it is already there."""
        ...

    def ping(self) -> bool:
        """Return whether the database answers."""
        ...

    def close(self) -> None:
        """Release the database connections."""
        ...
