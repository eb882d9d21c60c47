"""What ``onwatch run`` knows about itself now: an in-memory summary for /healthz and /metrics.

The daemon writes to one ``Health`` as things happen (each scheduler cycle, each recorded run,
each heartbeat); the web side reads ``snapshot()`` on every scrape. Keeping this in memory means
a scrape never touches the database, so metrics stay available while the database is down,
which is exactly when they matter. Every method takes a lock: writers are the scheduler loop,
the run threads and the heartbeat thread; readers are the web server's threads.

Timestamps are wall-clock seconds since the epoch (what Prometheus compares with ``time()``);
the age of the last scheduler tick is measured on the monotonic clock, so a wall-clock jump
neither hides a stuck scheduler nor fakes one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class CheckState:
    """One check as last seen: None where nothing is known yet."""

    last_run_at: float | None = None
    last_success_at: float | None = None
    last_status: str | None = None
    last_duration: float | None = None
    overdue: bool = False
    runs_total: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A consistent copy of a ``Health`` at one moment."""

    started_at: float
    last_tick_at: float | None
    checks: Mapping[str, CheckState]
    heartbeat_failures_total: int
    heartbeat_last_ok_at: float | None

    @property
    def runs_total(self) -> Mapping[str, Mapping[str, int]]:
        """Return the runs recorded since start, per check and status."""
        return {name: state.runs_total for name, state in self.checks.items()}


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
        self._started_at = time.time() if started_at is None else started_at
        # Until the first tick, age is counted from start: a scheduler that never gets going
        # must turn /healthz red too.
        self._last_tick_mono = monotonic()
        self._last_tick_at: float | None = None
        self._heartbeat_failures = 0
        self._heartbeat_last_ok_at: float | None = None

    # -- writers -----------------------------------------------------------------------------

    def tick(self, now_wall: float) -> None:
        """Note that the scheduler loop completed a cycle at ``now_wall`` (epoch seconds)."""
        mono = self._monotonic()
        with self._lock:
            self._last_tick_at = now_wall
            self._last_tick_mono = mono

    def record_run(
        self, check: str, finished_at: float, passed: bool, duration: float, status: str
    ) -> None:
        """Count a finished run and make it the check's latest unless a newer one is known."""
        with self._lock:
            runs = self._runs.setdefault(check, {})
            runs[status] = runs.get(status, 0) + 1
            state = self._checks.get(check, CheckState())
            if state.last_run_at is None or finished_at >= state.last_run_at:
                # A run recovered at start may be older than what the database said.
                state = replace(
                    state, last_run_at=finished_at, last_status=status, last_duration=duration
                )
            if passed:
                state = replace(state, last_success_at=_latest(state.last_success_at, finished_at))
            self._checks[check] = state

    def set_overdue(self, check: str, overdue: bool) -> None:
        """Mark whether a check's expected run is later than its grace allows."""
        with self._lock:
            self._checks[check] = replace(self._checks.get(check, CheckState()), overdue=overdue)

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
    ) -> None:
        """Start from what the database knows of a check; never replace anything newer."""
        with self._lock:
            state = self._checks.get(check, CheckState())
            if last_run_at is not None and (
                state.last_run_at is None or last_run_at > state.last_run_at
            ):
                state = replace(
                    state, last_run_at=last_run_at, last_status=last_status, last_duration=None
                )
            if last_success_at is not None:
                state = replace(
                    state, last_success_at=_latest(state.last_success_at, last_success_at)
                )
            self._checks[check] = state

    # -- readers -----------------------------------------------------------------------------

    def last_tick_age(self) -> float:
        """Return the seconds since the scheduler's last cycle (since start if none yet)."""
        now = self._monotonic()
        with self._lock:
            return max(0.0, now - self._last_tick_mono)

    def snapshot(self) -> HealthSnapshot:
        """Return a consistent, immutable copy of everything known."""
        with self._lock:
            checks = {
                name: replace(state, runs_total=MappingProxyType(dict(self._runs.get(name, {}))))
                for name, state in self._checks.items()
            }
            return HealthSnapshot(
                started_at=self._started_at,
                last_tick_at=self._last_tick_at,
                checks=MappingProxyType(checks),
                heartbeat_failures_total=self._heartbeat_failures,
                heartbeat_last_ok_at=self._heartbeat_last_ok_at,
            )


def _latest(current: float | None, new: float) -> float:
    return new if current is None else max(current, new)
