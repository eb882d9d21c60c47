"""What ``onwatch run`` knows about itself now: an in-memory summary for /healthz and /metrics.

The daemon writes to one ``Health`` as things happen (each scheduler cycle, each recorded run,
each heartbeat, each change of where runs are recorded); the web side reads ``snapshot()`` on
every scrape. ``feed.py`` seeds it from the database: once at the start of ``onwatch run``,
every few seconds in ``onwatch serve``. Keeping this in memory means a scrape never touches the
database, so metrics stay available while the database is down, which is exactly when they
matter. Every method takes a lock: writers are the scheduler loop, the run threads, the
heartbeat thread and the feed; readers are the web server's threads.

Timestamps are wall-clock seconds since the epoch (what Prometheus compares with ``time()``);
the age of the last scheduler tick is measured on the monotonic clock, so a wall-clock jump
neither hides a stuck scheduler nor fakes one.

Per test, only the latest final outcome is kept. A run that ran the whole selection (passed or
failed) replaces its check's tests, so tests removed from a suite disappear; a run that stopped
part way (error, timeout) only updates the tests it reached. Each check's tests are held in a
mapping replaced on write, so a snapshot shares them instead of copying thousands of entries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from onwatch.model import Run, RunStatus
from onwatch.state.load import Load
from onwatch.store.recorder import Recording

# Runs that went through the whole selection: their tests are the check's tests from now on.
_COMPLETE = frozenset({RunStatus.PASSED, RunStatus.FAILED})


@dataclass(frozen=True, slots=True)
class TestState:
    """One test's latest final attempt: its outcome, how long it took, when its run finished."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    outcome: str
    duration: float
    finished_at: float


_NO_TESTS: Mapping[str, TestState] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CheckState:
    """One check as last seen: None where nothing is known yet."""

    last_run_at: float | None = None
    last_success_at: float | None = None
    last_status: str | None = None
    last_duration: float | None = None
    overdue: bool = False
    consecutive_failures: int = 0  # latest runs not passed, newest first; 0 after a pass
    incident_open: bool = False
    runs_total: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    results_total: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    tests: Mapping[str, TestState] = field(default_factory=lambda: _NO_TESTS)


@dataclass(frozen=True, slots=True)
class PollState:
    """One watched package's polls: the last one, the last good one, failures in a row."""

    last_poll_at: float
    last_ok_at: float | None
    failures: int
    state: str = "ok"  # the watch's verdict state: ok, breaks, cannot-install, baseline-failing


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A consistent copy of a ``Health`` at one moment."""

    started_at: float
    last_tick_at: float | None
    checks: Mapping[str, CheckState]
    heartbeat_failures_total: int
    heartbeat_last_ok_at: float | None
    # (watch, package) -> its polls, for the upstream watch's series
    polls: Mapping[tuple[str, str], PollState] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def runs_total(self) -> Mapping[str, Mapping[str, int]]:
        """Return the runs recorded since start, per check and status."""
        return {name: state.runs_total for name, state in self.checks.items()}

    @property
    def results_total(self) -> Mapping[str, Mapping[str, int]]:
        """Return the final results recorded since start, per check and outcome."""
        return {name: state.results_total for name, state in self.checks.items()}


class Health:
    """The daemon's thread-safe summary of itself, updated as it works and read per scrape."""

    def __init__(
        self,
        checks: Iterable[str] = (),
        *,
        started_at: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        # Configured checks are known from the start, so their overdue gauge exists at once.
        self.checks: tuple[str, ...] = tuple(checks)
        self._checks: dict[str, CheckState] = {name: CheckState() for name in self.checks}
        self._runs: dict[str, dict[str, int]] = {name: {} for name in self.checks}
        self._results: dict[str, dict[str, int]] = {name: {} for name in self.checks}
        self._started_at = time.time() if started_at is None else started_at
        # Until the first tick, age is counted from start: a scheduler that never gets going
        # must turn /healthz red too.
        self._last_tick_mono = monotonic()
        self._last_tick_at: float | None = None
        self._heartbeat_failures = 0
        self._heartbeat_last_ok_at: float | None = None
        self._polls: dict[tuple[str, str], PollState] = {}
        # Skipped slots, start lateness and overload, as the scheduler reports them.
        self.load = Load()
        # Where runs go, as the recorder last said; None where no recorder reports (serve).
        self._recording: Recording | None = None
        # Bumped by every change to what the checks' series show (not by ticks or heartbeats),
        # so /metrics can reuse the text it rendered while nothing changed.
        self._version = 0

    @property
    def version(self) -> int:
        """Return a number that changes whenever a check's state, tests or counters change."""
        with self._lock:
            return self._version

    # -- writers -----------------------------------------------------------------------------

    def tick(self, now_wall: float) -> None:
        """Note that the scheduler loop completed a cycle at ``now_wall`` (epoch seconds)."""
        mono = self._monotonic()
        with self._lock:
            self._last_tick_at = now_wall
            self._last_tick_mono = mono

    def record(self, run: Run) -> None:
        """Count a finished run and its final results; make it the latest unless a newer is known.

        Only the newest run moves the check's last status, its consecutive failures and its
        tests: a run recovered at start may be older than what the database said.
        """
        finished_at = run.finished_at.timestamp()
        finals = run.final_results()
        with self._lock:
            self._version += 1
            counted = self._results.setdefault(run.check, {})
            for result in finals:
                counted[result.outcome.value] = counted.get(result.outcome.value, 0) + 1
            newest = self._count_run(
                run.check,
                finished_at,
                run.status.value,
                run.duration,
                passed=run.status is RunStatus.PASSED,
            )
            if not newest:
                return
            state = self._checks[run.check]
            tests = {} if run.status in _COMPLETE else dict(state.tests)
            for result in finals:
                tests[result.nodeid] = TestState(result.outcome.value, result.duration, finished_at)
            self._checks[run.check] = replace(state, tests=MappingProxyType(tests))

    def _count_run(
        self, check: str, finished_at: float, status: str, duration: float, *, passed: bool
    ) -> bool:
        """Count a run and return whether it became the check's latest; the lock is held."""
        runs = self._runs.setdefault(check, {})
        runs[status] = runs.get(status, 0) + 1
        state = self._checks.get(check, CheckState())
        newest = state.last_run_at is None or finished_at >= state.last_run_at
        if newest:
            state = replace(
                state,
                last_run_at=finished_at,
                last_status=status,
                last_duration=duration,
                consecutive_failures=0 if passed else state.consecutive_failures + 1,
            )
        if passed:
            state = replace(state, last_success_at=_latest(state.last_success_at, finished_at))
        self._checks[check] = state
        return newest

    def set_overdue(self, check: str, overdue: bool) -> None:
        """Mark whether a check's expected run is later than its grace allows."""
        with self._lock:
            state = self._checks.get(check, CheckState())
            if state.overdue != overdue:
                self._version += 1
            self._checks[check] = replace(state, overdue=overdue)

    def set_incident(self, check: str, open: bool) -> None:
        """Mark whether the check has an open incident."""
        with self._lock:
            state = self._checks.get(check, CheckState())
            if state.incident_open != open:
                self._version += 1
            self._checks[check] = replace(state, incident_open=open)

    def record_poll(self, watch: str, package: str, ok: bool, at: float) -> None:
        """Note one poll of a watched package's index, at ``at`` (epoch seconds)."""
        with self._lock:
            before = self._polls.get((watch, package))
            last_ok = at if ok else (before.last_ok_at if before else None)
            failures = 0 if ok else (before.failures if before else 0) + 1
            state = before.state if before else "ok"
            self._polls[(watch, package)] = PollState(at, last_ok, failures, state)
            self._version += 1

    def set_watch_state(self, watch: str, package: str, state: str) -> None:
        """Note a watched package's state after a poll (its polls are noted first)."""
        with self._lock:
            before = self._polls.get((watch, package))
            if before is not None and before.state != state:
                self._polls[(watch, package)] = replace(before, state=state)
                self._version += 1

    def seed_poll(self, watch: str, package: str, state: PollState) -> None:
        """Take what the database knows of a package's polls, unless a newer poll is known."""
        with self._lock:
            before = self._polls.get((watch, package))
            if before is None or state.last_poll_at > before.last_poll_at:
                self._polls[(watch, package)] = state
                self._version += 1

    def set_recording(self, state: Recording) -> None:
        """Note where runs go now: the database, the spool, memory; what waits and was lost."""
        with self._lock:
            self._recording = state

    def heartbeat_failed(self) -> None:
        """Count one heartbeat ping that did not get a 2xx answer."""
        with self._lock:
            self._heartbeat_failures += 1

    def heartbeat_ok(self) -> None:
        """Note a heartbeat ping that got a 2xx answer."""
        now = time.time()
        with self._lock:
            self._heartbeat_last_ok_at = now

    def seed(
        self,
        check: str,
        last_run_at: float | None,
        last_success_at: float | None,
        *,
        last_status: str | None = None,
        consecutive_failures: int | None = None,
    ) -> None:
        """Take what the database knows of a check; never replace anything newer."""
        with self._lock:
            before = state = self._checks.get(check, CheckState())
            if last_run_at is not None and (
                state.last_run_at is None or last_run_at > state.last_run_at
            ):
                state = replace(
                    state, last_run_at=last_run_at, last_status=last_status, last_duration=None
                )
                if consecutive_failures is not None:
                    state = replace(state, consecutive_failures=consecutive_failures)
            if last_success_at is not None:
                state = replace(
                    state, last_success_at=_latest(state.last_success_at, last_success_at)
                )
            self._store(check, before, state)

    def seed_latest(self, run: Run) -> None:
        """Take a check's tests and last duration from its latest stored run.

        Nothing newer is replaced: not a later run, nor tests a later run left. Like
        ``record``, a run that stopped part way only updates the tests it reached.
        """
        finished_at = run.finished_at.timestamp()
        finals = run.final_results()
        with self._lock:
            before = state = self._checks.get(run.check, CheckState())
            if state.last_run_at is not None and state.last_run_at > finished_at:
                return
            if state.last_run_at == finished_at and state.last_duration is None:
                state = replace(state, last_duration=run.duration)
            if not state.tests or finished_at > max(t.finished_at for t in state.tests.values()):
                tests = {} if run.status in _COMPLETE else dict(state.tests)
                for result in finals:
                    tests[result.nodeid] = TestState(
                        result.outcome.value, result.duration, finished_at
                    )
                state = replace(state, tests=MappingProxyType(tests))
            self._store(run.check, before, state)

    def _store(self, check: str, before: CheckState, state: CheckState) -> None:
        """Keep a check's new state; the lock is held. Only a change moves ``version``."""
        if state != before or check not in self._checks:
            self._checks[check] = state
            self._version += 1

    # -- readers -----------------------------------------------------------------------------

    def last_tick_age(self) -> float:
        """Return the seconds since the scheduler's last cycle (since start if none yet)."""
        now = self._monotonic()
        with self._lock:
            return max(0.0, now - self._last_tick_mono)

    def pulse(self) -> tuple[float | None, int]:
        """Return when the scheduler last ticked (epoch seconds) and the heartbeat failures."""
        with self._lock:
            return self._last_tick_at, self._heartbeat_failures

    def recording(self) -> Recording | None:
        """Return where runs go now, or None when nothing records runs in this process."""
        with self._lock:
            return self._recording

    def snapshot(self) -> HealthSnapshot:
        """Return a consistent, immutable copy of everything known."""
        with self._lock:
            checks = {
                name: replace(
                    state,
                    runs_total=MappingProxyType(dict(self._runs.get(name, {}))),
                    results_total=MappingProxyType(dict(self._results.get(name, {}))),
                )
                for name, state in self._checks.items()
            }
            return HealthSnapshot(
                started_at=self._started_at,
                last_tick_at=self._last_tick_at,
                checks=MappingProxyType(checks),
                heartbeat_failures_total=self._heartbeat_failures,
                heartbeat_last_ok_at=self._heartbeat_last_ok_at,
                polls=MappingProxyType(dict(self._polls)),
            )


@dataclass(frozen=True, slots=True)
class WriteHealth:
    """What /healthz says about recording: the ``database`` word, the problem, the details."""

    database: str  # "ok", "spooling", "in memory: N runs" (", dropped: N")
    problem: str | None  # one sentence for /healthz's problems; None while runs are stored
    details: Mapping[str, object]


def write_health(recording: Recording) -> WriteHealth:
    """Judge the recorder's state: runs not reaching the database make /healthz fail.

    Spooled runs are safe on disk, but the alerts about checks wait for the database, so a
    spool in use is a problem too, only a milder one to read.
    """
    details: dict[str, object] = {
        "to": "database",
        "spooled": recording.spooled,
        "in_memory": recording.in_memory,
        "dropped": recording.dropped,
    }
    if recording.problem is None:
        return WriteHealth("ok", None, MappingProxyType(details))
    details["problem"] = recording.problem
    details["since"] = recording.since.isoformat() if recording.since else None
    details["error"] = recording.error
    if recording.in_memory or recording.dropped_now:
        details["to"] = "memory"
        database = f"in memory: {recording.in_memory} runs"
        if recording.dropped_now:
            database += f", dropped: {recording.dropped_now}"
        problem = (
            f"neither the database nor the spool can be written ({recording.problem}: "
            f"{recording.error}): {recording.in_memory} run(s) held in memory, "
            f"{recording.dropped_now} dropped"
        )
        return WriteHealth(database, problem, MappingProxyType(details))
    details["to"] = "spool"
    problem = (
        f"runs are not reaching the database ({recording.error}): "
        f"{recording.spooled} waiting in the spool"
    )
    return WriteHealth("spooling", problem, MappingProxyType(details))


def _latest(current: float | None, new: float) -> float:
    return new if current is None else max(current, new)
