"""The scheduler on a fake clock: slots, jitter, overlap, catch-up, drain, manual runs, recording.

Time stands still until a test moves it (``Time``), and the test goes round the loop itself
(``Scheduler.cycle``), so nothing here waits for a real second. Runs go through ``FakeRunner``
(the scheduler's side of ``Runner``: no pytest process), are recorded by the real ``Recorder``
into the in-memory store, and spool to a real folder while that store is down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from onwatch.config import Check
from onwatch.daemon.overload import OverloadMonitor
from onwatch.daemon.scheduler import REPLAY_EVERY, Scheduler
from onwatch.errors import StoreError, TriggerRefused
from onwatch.logs import TextFormatter
from onwatch.model import Run, RunStatus, TestResult, Trigger
from onwatch.store import open_store
from onwatch.store.memory import MemoryStore
from onwatch.store.recorder import Recorder
from onwatch.store.spool import Spool
from recording import Records, logged
from records import make_config, make_run, passed_results
from waiting import FakeClock, wait_until

T0 = datetime(2026, 3, 2, 9, 2, 30, tzinfo=UTC)  # a Monday, between two five-minute slots
MINUTE = 60.0
INTERRUPTED = "interrupted: onwatch stopped"


class Time(FakeClock):
    """The wall clock and the monotonic one: both stand still until a test moves them."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.mono = 1000.0

    def monotonic(self) -> float:
        """Return the monotonic time, in seconds."""
        return self.mono

    def advance(self, seconds: float) -> datetime:
        """Move both clocks on by ``seconds``."""
        self.mono += seconds
        return super().advance(seconds)


@dataclass
class Call:
    """One ``execute`` the scheduler asked for."""

    check: str
    trigger: Trigger
    scheduled_for: datetime | None
    started_at: datetime


@dataclass
class FakeRunner:
    """The scheduler's side of ``Runner``: each run ends at once unless its check is held.

    A held run goes on, like a slow pytest process, until the test releases it or onwatch kills
    it (``kill``); a killed run ends as the real runner ends it, interrupted.
    """

    time: Time
    kill: threading.Event
    held: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    failing: dict[str, Exception] = field(default_factory=dict)
    results: dict[str, tuple[TestResult, ...]] = field(default_factory=dict)
    left_in_flight: list[Run] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    most_at_once: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recover(self) -> list[Run]:
        """Return the runs a dead onwatch left in flight."""
        return list(self.left_in_flight)

    def execute(
        self,
        name: str,
        check: Check,
        *,
        trigger: Trigger = Trigger.MANUAL,
        scheduled_for: datetime | None = None,
    ) -> Run:
        """Run ``name``: at once, or when released or killed if it is held."""
        started = self.time()
        with self.lock:
            self.calls.append(Call(name, trigger, scheduled_for, started))
            self.running[name] = self.running.get(name, 0) + 1
            self.most_at_once[name] = max(self.most_at_once.get(name, 0), self.running[name])
        try:
            if name in self.failing:
                raise self.failing[name]
            status, error = RunStatus.PASSED, None
            if name in self.held:
                while not self.release.is_set():
                    if self.kill.wait(0.005):
                        status, error = RunStatus.ERROR, INTERRUPTED
                        break
            return Run(
                id=str(uuid.uuid4()),
                check=name,
                status=status,
                started_at=started,
                finished_at=self.time(),
                collected=len(self.results.get(name, ())),
                results=self.results.get(name, ()),
                error=error,
                trigger=trigger,
                scheduled_for=scheduled_for,
                config_digest=check.digest(),
            )
        finally:
            with self.lock:
                self.running[name] -= 1

    def discard(self, run_id: str) -> None:
        """Forget a recorded run's files (here: remember that it was asked to)."""
        self.discarded.append(run_id)

    def slots(self, check: str) -> list[datetime | None]:
        """Return the slots the runs of ``check`` were started for, in order."""
        return [c.scheduled_for for c in self.calls if c.check == check]


@dataclass
class Rig:
    """A scheduler with its fake runner, in-memory store, spool and clocks."""

    scheduler: Scheduler
    runner: FakeRunner
    store: MemoryStore
    spool: Spool
    time: Time
    stopping: threading.Event
    kill: threading.Event
    recorded: list[tuple[Run, str]]

    def cycle(self) -> None:
        """Go once round the loop and wait until the runs it started that can end are kept."""
        self.scheduler.cycle()
        self.settle()

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, then go round the loop."""
        self.time.advance(seconds)
        self.cycle()

    def settle(self) -> None:
        """Wait until every run in flight, except the held ones, is recorded."""

        def quiet() -> bool:
            return all(
                slot.running is None
                or slot.running.done()
                or (name in self.runner.held and not self.runner.release.is_set())
                for name, slot in self.scheduler.slots.items()
            )

        wait_until(quiet, "the runs started are recorded")
        if self.store.ping():
            skips = self.scheduler.skips
            wait_until(lambda: not skips.pending(), "the skipped slots are written")

    def stored(self, check: str) -> list[Run]:
        """Return the stored runs of ``check``, oldest first."""
        return self.store.runs.list_runs(check)[::-1]


MakeRig = Callable[..., Rig]


def build_rig(
    tmp_path: Path,
    checks: dict[str, dict[str, Any]],
    *,
    jitter: float = 0.0,
    drain_timeout: float = 30.0,
    store: MemoryStore | None = None,
    **callbacks: Any,
) -> Rig:
    """Return a scheduler of these checks, not started yet."""
    config = make_config(checks, max_parallel=4)
    # No jitter unless asked, so that a slot starts exactly on time; the schema refuses 0.
    settings = replace(config.settings, max_jitter=jitter, drain_timeout=drain_timeout)
    config = replace(config, settings=settings)
    store = store if store is not None else memory_store()
    time = Time(T0)
    stopping, kill = threading.Event(), threading.Event()
    runner = FakeRunner(time, kill)
    spool = Spool(tmp_path / "spool")
    recorded: list[tuple[Run, str]] = []
    on_recorded = callbacks.pop("on_recorded", None)

    def keep(run: Run, where: str) -> None:
        recorded.append((run, where))
        if on_recorded is not None:
            on_recorded(run, where)

    scheduler = Scheduler(
        config,
        runner,  # type: ignore[arg-type]  # the seam: recover, execute and discard
        Recorder(store, spool, on_kept=runner.discard),  # as `onwatch run` wires it
        store.runs,
        stopping=stopping,
        kill=kill,
        on_recorded=keep,
        clock=time,
        monotonic=time.monotonic,
        **callbacks,
    )
    return Rig(scheduler, runner, store, spool, time, stopping, kill, recorded)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[MakeRig]:
    """Yield a function that builds a rig; every run still going is killed when the test ends."""
    built: list[Rig] = []

    def make(checks: dict[str, dict[str, Any]], **options: Any) -> Rig:
        rig = build_rig(tmp_path, checks, **options)
        built.append(rig)
        return rig

    yield make
    for rig in built:
        rig.kill.set()
        rig.scheduler.executor.shutdown(wait=True)
        rig.scheduler.skips.stop(timeout=5)


def memory_store() -> MemoryStore:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    return store


def scheduled(check: str, slot: datetime) -> Run:
    """Return a run of ``check`` that a scheduler recorded for ``slot``."""
    return make_run(check=check, started_at=slot, trigger=Trigger.SCHEDULE, scheduled_for=slot)


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the fields a log line carries beside its message."""
    found: dict[str, Any] = getattr(record, "fields", {})
    return found


@pytest.fixture
def logs() -> Iterator[Records]:
    with logged("onwatch") as records:
        yield records


EVERY_MINUTE = {"api": {"tests": ["t"], "every": "1m"}}


# -- slots ---------------------------------------------------------------------------------------


def test_an_interval_check_never_run_runs_at_once_then_once_per_interval(make_rig: MakeRig) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.scheduler.start()
    rig.cycle()
    assert rig.runner.slots("api") == [T0]
    rig.advance(MINUTE - 1)
    assert rig.runner.slots("api") == [T0]
    rig.advance(1)
    rig.advance(MINUTE)
    assert rig.runner.slots("api") == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert {c.trigger for c in rig.runner.calls} == {Trigger.SCHEDULE}
    assert [r.scheduled_for for r in rig.stored("api")] == rig.runner.slots("api")
    assert [where for _, where in rig.recorded] == ["stored"] * 3
    assert len(rig.runner.discarded) == 3  # each run's files go once it is kept


def test_an_interval_check_keeps_its_rhythm_when_the_wall_clock_jumps(make_rig: MakeRig) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.scheduler.start()
    rig.cycle()
    rig.time.now -= timedelta(hours=1)  # NTP sets the wall clock back an hour
    rig.advance(MINUTE)
    assert rig.runner.slots("api") == [T0, T0 + timedelta(minutes=1)]
    rig.time.now += timedelta(hours=3)  # and then two hours ahead
    rig.advance(MINUTE / 2)
    assert len(rig.runner.calls) == 2  # not early: the interval is measured, not read off a wall
    rig.advance(MINUTE / 2)
    assert rig.runner.slots("api")[-1] == T0 + timedelta(minutes=2)


def test_a_cron_check_waits_for_each_of_its_slots(make_rig: MakeRig) -> None:
    rig = make_rig({"api": {"tests": ["t"], "cron": "*/5 * * * *"}})
    rig.scheduler.start()
    rig.cycle()
    rig.advance(149)  # 09:04:59
    assert rig.runner.calls == []
    rig.advance(1)
    rig.advance(5 * MINUTE)
    assert rig.runner.slots("api") == [T0 + timedelta(seconds=150), T0 + timedelta(seconds=450)]


def test_a_cron_check_follows_its_time_zone(make_rig: MakeRig) -> None:
    paris = {"api": {"tests": ["t"], "cron": "0 9 * * *", "timezone": "Europe/Paris"}}
    rig = make_rig(paris)
    rig.scheduler.start()
    next_nine = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Paris, winter time
    rig.advance((next_nine - T0).total_seconds() - 1)
    assert rig.runner.calls == []
    rig.advance(1)
    assert rig.runner.slots("api") == [next_nine]


# -- jitter --------------------------------------------------------------------------------------


def first_start(rig: Rig, step: float = 0.25, limit: float = 20.0) -> float:
    """Go round the loop every ``step`` seconds; return how long the first run took to start."""
    rig.scheduler.start()
    waited = 0.0
    rig.cycle()
    while not rig.runner.calls:
        assert waited < limit, "no run started"
        waited += step
        rig.advance(step)
    return waited


def test_jitter_delays_each_check_by_a_stable_amount_within_its_bounds(make_rig: MakeRig) -> None:
    ten_minutes = {"api": {"tests": ["t"], "every": "10m"}}
    delay = first_start(make_rig(ten_minutes, jitter=10.0))
    again = first_start(make_rig(ten_minutes, jitter=10.0))
    other = first_start(make_rig({"web": {"tests": ["t"], "every": "10m"}}, jitter=10.0))
    short = first_start(make_rig({"api": {"tests": ["t"], "every": "20s"}}, jitter=10.0))
    assert 0 < delay <= 10 and delay == again  # at most max_jitter, the same at every start
    assert 0 < other <= 10 and other != delay  # checks due together start apart
    assert 0 < short <= 2  # and never more than a tenth of the interval


def test_jitter_moves_when_a_slot_starts_not_the_slot_recorded(make_rig: MakeRig) -> None:
    rig = make_rig({"api": {"tests": ["t"], "every": "10m"}}, jitter=10.0)
    delay = first_start(rig)
    rig.advance(10 * MINUTE - 0.25)
    assert len(rig.runner.calls) == 1
    rig.advance(0.25)
    [first, second] = rig.runner.calls
    assert first.started_at == T0 + timedelta(seconds=delay)  # every slot keeps the offset
    assert second.started_at == first.started_at + timedelta(minutes=10)
    assert rig.runner.slots("api") == [T0, T0 + timedelta(minutes=10)]


# -- overlap -------------------------------------------------------------------------------------


def test_a_check_still_running_is_not_started_again_and_its_slot_is_recorded_as_skipped(
    make_rig: MakeRig, logs: Records
) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    rig.advance(MINUTE)
    rig.advance(MINUTE)
    assert rig.runner.slots("api") == [T0]
    rig.runner.release.set()
    rig.settle()
    rig.advance(MINUTE)
    assert rig.runner.slots("api") == [T0, T0 + timedelta(minutes=3)]
    assert rig.runner.most_at_once["api"] == 1
    assert rig.store.runs.skipped_slots("api") == [
        (T0 + timedelta(minutes=2), "overlap"),
        (T0 + timedelta(minutes=1), "overlap"),
    ]
    [warning, _] = logs.named("previous run still going; slot skipped")
    assert warning.levelno == logging.WARNING
    assert fields(warning) == {
        "check": "api",
        "scheduled_for": (T0 + timedelta(minutes=1)).isoformat(),
        "skipped": 1,
    }


def test_a_slot_skipped_while_the_database_is_down_is_kept_and_written_when_it_is_back(
    make_rig: MakeRig, logs: Records
) -> None:
    rig = make_rig({**EVERY_MINUTE, "web": {"tests": ["t"], "every": "1m"}})
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    rig.store.set_down(True)
    for _ in range(3):
        rig.advance(MINUTE)
    wait_until(
        lambda: any(m.startswith("could not record a skipped slot") for m in logs.messages()),
        "the outage is logged",
    )
    assert rig.runner.slots("web")[:4] == [T0 + timedelta(minutes=i) for i in range(4)]
    assert rig.scheduler.skips.pending() == 3
    rig.store.set_down(False)
    rig.runner.release.set()
    rig.settle()
    assert rig.store.runs.skipped_slots("api") == [
        (T0 + timedelta(minutes=i), "overlap") for i in (3, 2, 1)
    ]


class LockedStore(MemoryStore):
    """A store whose skipped-slot writes wait, as SQLite does on a database held locked."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def hold(self) -> None:
        """Make each skipped-slot write wait until ``release`` is set, then fail."""
        store = self
        plain = self.runs.record_skipped_slot

        def locked(check: str, scheduled_for: datetime, reason: str) -> None:
            if not store.release.wait(10):
                raise StoreError("cannot record a skipped slot: database is locked")
            plain(check, scheduled_for, reason)

        self.runs.record_skipped_slot = locked  # type: ignore[method-assign]


def test_the_loop_never_waits_on_a_locked_database_to_record_a_skipped_slot(
    make_rig: MakeRig,
) -> None:
    store = LockedStore()
    store.hold()
    rig = make_rig({"api": {"tests": ["t"], "every": "1s"}}, store=store)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.scheduler.cycle()
    started = time.monotonic()
    for _ in range(20):
        rig.time.advance(1.0)
        rig.scheduler.cycle()  # each skips a slot
    assert time.monotonic() - started < 1.0  # not 20 waits on the lock
    store.release.set()
    rig.runner.release.set()
    rig.settle()
    assert len(store.runs.skipped_slots("api")) == 20


def test_slots_the_loop_went_round_too_late_for_are_recorded_and_count_as_skipped(
    make_rig: MakeRig,
) -> None:
    sent: list[Any] = []
    overload = OverloadMonitor(
        skipped_share=0.2, lateness=10.0, window=300.0, notify=sent.append, monotonic=time.monotonic
    )
    rig = make_rig(EVERY_MINUTE, overload=overload)
    rig.scheduler.start()
    rig.cycle()
    rig.advance(3.5 * MINUTE)  # the machine stalled the loop for three and a half minutes
    assert rig.runner.slots("api") == [T0, T0 + timedelta(minutes=1)]  # one late run
    assert rig.store.runs.skipped_slots("api") == [
        (T0 + timedelta(minutes=3), "late"),
        (T0 + timedelta(minutes=2), "late"),
    ]
    assert overload.figures().skipped == 2
    rig.advance(0.5 * MINUTE)
    assert rig.runner.slots("api")[-1] == T0 + timedelta(minutes=4)  # back on the grid


def test_skip_warnings_are_at_most_one_line_per_check_a_minute_with_a_count(
    make_rig: MakeRig, logs: Records
) -> None:
    rig = make_rig({"api": {"tests": ["t"], "every": "1s"}})
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    for _ in range(125):
        rig.advance(1.0)
    warnings = logs.named("previous run still going; slot skipped")
    assert [fields(w)["skipped"] for w in warnings] == [1, 60, 60]
    rig.runner.release.set()
    rig.settle()


# -- catch-up after a restart ---------------------------------------------------------------------


def test_a_restart_resumes_from_the_last_recorded_slot(make_rig: MakeRig) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=2)))
    rig = make_rig({"api": {"tests": ["t"], "every": "5m"}}, store=store)
    rig.scheduler.start()
    rig.cycle()
    rig.advance(3 * MINUTE - 1)
    assert rig.runner.calls == []  # it ran two minutes ago: not again now
    rig.advance(1)
    assert rig.runner.slots("api") == [T0 + timedelta(minutes=3)]


def test_after_a_long_outage_the_missed_slots_give_one_run_then_the_grid_goes_on(
    make_rig: MakeRig,
) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=62)))
    rig = make_rig({"api": {"tests": ["t"], "every": "5m"}}, store=store)
    rig.scheduler.start()
    rig.cycle()
    assert rig.runner.slots("api") == [T0 - timedelta(minutes=2)]  # the latest missed slot only
    rig.advance(3 * MINUTE - 1)
    assert len(rig.runner.calls) == 1
    rig.advance(1)
    rig.advance(5 * MINUTE)
    assert rig.runner.slots("api") == [
        T0 - timedelta(minutes=2),
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=8),
    ]
    # Each on time: a run starts when its slot says it did.
    assert [c.started_at for c in rig.runner.calls[1:]] == rig.runner.slots("api")[1:]


class SlowStore(MemoryStore):
    """A store whose history takes ``seconds`` to read, as a large or busy database's does."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.time: Time | None = None
        plain = self.runs.history

        def slow(names: list[str], now: datetime) -> dict[str, Any]:
            if self.time is not None:
                self.time.advance(seconds)
            return plain(names, now)

        self.runs.history = slow  # type: ignore[method-assign]


def test_a_slow_start_shifts_no_later_slot(make_rig: MakeRig) -> None:
    store = SlowStore(seconds=14.0)
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=12)))  # missed two slots
    store.runs.save_run(scheduled("web", T0 - timedelta(minutes=2)))  # missed none
    five_minutes = {"tests": ["t"], "every": "5m"}
    rig = make_rig({"api": five_minutes, "web": five_minutes}, store=store)
    store.time = rig.time
    rig.scheduler.start()
    rig.cycle()
    assert rig.runner.slots("api") == [T0 - timedelta(minutes=2)]  # the catch-up run
    rig.advance(3 * MINUTE - 14)
    for _ in range(2):
        rig.advance(5 * MINUTE)
    later = rig.runner.calls[1:]
    expected = [T0 + timedelta(minutes=m) for m in (3, 8, 13)]
    assert rig.runner.slots("api")[1:] == rig.runner.slots("web") == expected
    # Each starts on its slot, not 14 s (the slow start) after it.
    assert [c.started_at for c in later] == [c.scheduled_for for c in later]


def test_checks_that_missed_slots_while_down_still_start_apart(make_rig: MakeRig) -> None:
    five_minutes = {"api": {"tests": ["t"], "every": "5m"}}
    fresh = first_start(make_rig(five_minutes, jitter=10.0))
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=62)))
    rig = make_rig(five_minutes, jitter=10.0, store=store)
    late = first_start(rig)
    assert late == fresh > 0  # a catch-up run keeps its check's jitter
    rig.advance(3 * MINUTE)
    [_, second] = rig.runner.calls
    assert second.scheduled_for == T0 + timedelta(minutes=3)
    assert second.started_at == T0 + timedelta(minutes=3, seconds=late)


def test_a_cron_check_that_missed_slots_while_down_runs_once_then_on_its_next_slot(
    make_rig: MakeRig,
) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", datetime(2026, 3, 2, 6, 0, tzinfo=UTC)))
    rig = make_rig({"api": {"tests": ["t"], "cron": "0 * * * *"}}, store=store)
    rig.scheduler.start()
    rig.cycle()
    nine, ten = datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert rig.runner.slots("api") == [nine]
    rig.advance((ten - T0).total_seconds() - 1)
    assert len(rig.runner.calls) == 1
    rig.advance(1)
    assert rig.runner.slots("api") == [nine, ten]


def test_a_slot_recorded_as_skipped_counts_as_the_last_slot(make_rig: MakeRig) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=7)))
    store.runs.record_skipped_slot("api", T0 - timedelta(minutes=2), "overlap")
    rig = make_rig({"api": {"tests": ["t"], "every": "5m"}}, store=store)
    rig.scheduler.start()
    rig.cycle()
    assert rig.runner.calls == []
    rig.advance(3 * MINUTE)
    assert rig.runner.slots("api") == [T0 + timedelta(minutes=3)]


def test_checks_are_scheduled_from_scratch_when_the_database_cannot_be_read_at_start(
    make_rig: MakeRig, logs: Records
) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(minutes=2)))
    store.set_down(True)
    rig = make_rig({"api": {"tests": ["t"], "every": "5m"}}, store=store)
    rig.scheduler.start()
    rig.cycle()
    assert rig.runner.slots("api") == [T0]
    assert any(m.startswith("database unreachable at start") for m in logs.messages())
    assert [where for _, where in rig.recorded] == ["spooled"]


# -- stopping ------------------------------------------------------------------------------------


def test_stopping_lets_a_run_in_flight_finish_within_the_drain_timeout(make_rig: MakeRig) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    rig.stopping.set()
    threading.Timer(0.05, rig.runner.release.set).start()  # it ends while the drain waits
    rig.scheduler.drain()
    [(run, where)] = rig.recorded
    assert (run.status, where) == (RunStatus.PASSED, "stored")
    assert not rig.kill.is_set()


def test_a_run_still_going_after_the_drain_timeout_is_killed_and_recorded_as_interrupted(
    make_rig: MakeRig, logs: Records
) -> None:
    rig = make_rig(EVERY_MINUTE, drain_timeout=0.05)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    rig.stopping.set()
    rig.scheduler.drain()
    assert rig.kill.is_set()
    [(run, where)] = rig.recorded
    assert (run.status, run.error, where) == (RunStatus.ERROR, INTERRUPTED, "stored")
    assert rig.stored("api")[0].error == INTERRUPTED
    assert "stopping: killing runs still in flight" in logs.messages(logging.WARNING)


def test_a_kill_during_the_drain_ends_it_without_waiting_for_the_drain_timeout(
    make_rig: MakeRig,
) -> None:
    rig = make_rig(EVERY_MINUTE, drain_timeout=300.0)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    rig.stopping.set()
    threading.Timer(0.05, rig.kill.set).start()  # a second SIGTERM while the drain waits
    rig.scheduler.drain()
    [(run, _)] = rig.recorded
    assert run.error == INTERRUPTED


def test_run_schedules_until_stopped_then_drains(make_rig: MakeRig) -> None:
    rig = make_rig(EVERY_MINUTE, drain_timeout=0.05)
    rig.runner.held.add("api")
    loop = threading.Thread(target=rig.scheduler.run)
    loop.start()
    wait_until(lambda: rig.runner.calls, "the first slot started")
    rig.stopping.set()
    loop.join(10)
    assert not loop.is_alive()
    [(run, _)] = rig.recorded
    assert run.error == INTERRUPTED
    with pytest.raises(RuntimeError):  # the pool is shut: nothing can start after a stop
        rig.scheduler.executor.submit(print)


# -- manual runs ---------------------------------------------------------------------------------


def test_run_now_starts_a_manual_run_at_once(make_rig: MakeRig) -> None:
    rig = make_rig({"api": {"tests": ["t"], "every": "1h"}})
    rig.scheduler.start()
    rig.cycle()
    rig.time.advance(MINUTE)
    assert rig.scheduler.run_now("api") == "a run of api has started"
    rig.settle()
    [_, manual] = rig.runner.calls
    assert (manual.trigger, manual.scheduled_for) == (Trigger.MANUAL, None)
    assert rig.stored("api")[-1].trigger is Trigger.MANUAL
    rig.advance(59 * MINUTE)
    assert rig.runner.slots("api")[-1] == T0 + timedelta(hours=1)  # the schedule is unchanged


def test_run_now_is_refused_while_the_check_runs_and_for_a_check_it_cannot_run(
    make_rig: MakeRig,
) -> None:
    checks = {**EVERY_MINUTE, "off": {"tests": ["t"], "every": "1m", "enabled": False}}
    rig = make_rig(checks)
    with pytest.raises(TriggerRefused, match="starting") as starting:
        rig.scheduler.run_now("api")
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.cycle()
    with pytest.raises(TriggerRefused, match="api is running now") as running:
        rig.scheduler.run_now("api")
    with pytest.raises(TriggerRefused, match="'off' is not enabled") as disabled:
        rig.scheduler.run_now("off")
    with pytest.raises(TriggerRefused, match="'nope' is not enabled") as unknown:
        rig.scheduler.run_now("nope")
    rig.stopping.set()
    with pytest.raises(TriggerRefused, match="stopping") as stopping:
        rig.scheduler.run_now("api")
    statuses = [e.value.status for e in (starting, running, disabled, unknown, stopping)]
    assert statuses == [503, 409, 409, 409, 503]
    assert len(rig.runner.calls) == 1
    rig.runner.release.set()
    rig.scheduler.drain()


def test_a_slot_due_while_a_manual_run_goes_on_is_skipped(make_rig: MakeRig) -> None:
    store = memory_store()
    store.runs.save_run(scheduled("api", T0 - timedelta(seconds=30)))
    rig = make_rig(EVERY_MINUTE, store=store)
    rig.runner.held.add("api")
    rig.scheduler.start()
    rig.scheduler.run_now("api")
    rig.advance(30)
    assert [c.trigger for c in rig.runner.calls] == [Trigger.MANUAL]
    assert rig.store.runs.skipped_slots("api") == [(T0 + timedelta(seconds=30), "overlap")]
    rig.runner.release.set()
    rig.settle()


# -- recording -----------------------------------------------------------------------------------


def test_runs_finished_while_the_database_is_down_are_spooled_then_stored_when_it_is_back(
    make_rig: MakeRig, logs: Records
) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.scheduler.start()
    rig.cycle()
    rig.store.set_down(True)
    rig.advance(MINUTE)
    rig.advance(MINUTE)
    assert [where for _, where in rig.recorded] == ["stored", "spooled", "spooled"]
    assert len(rig.spool) == 2
    spooled = [fields(r).get("recorded") for r in logs.named("run finished")]
    assert spooled == [None, "spooled", "spooled"]  # said only when it is not "stored"
    rig.store.set_down(False)
    rig.advance(REPLAY_EVERY)  # the loop replays the spool every few seconds
    assert len(rig.spool) == 0
    assert [r.scheduled_for for r in rig.stored("api")] == rig.runner.slots("api")
    assert len(rig.runner.discarded) == 3  # spooled runs are kept: their files can go


def test_a_run_that_can_be_neither_stored_nor_spooled_is_held_in_memory_and_stays_in_flight(
    make_rig: MakeRig,
) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.spool.directory.write_text("a file where the spool folder should be")
    rig.store.set_down(True)
    rig.scheduler.start()
    rig.cycle()
    rig.advance(MINUTE)
    assert len(rig.runner.calls) == 2
    assert [where for _, where in rig.recorded] == ["in memory", "in memory"]
    assert rig.runner.discarded == []  # its files stay for the next start to recover
    rig.store.set_down(False)
    rig.spool.directory.unlink()
    rig.advance(MINUTE)
    assert len(rig.stored("api")) == 3
    assert len(rig.runner.discarded) == 3  # once a disk or the database has them


def test_a_runner_that_fails_gives_a_run_error_and_the_other_checks_run(make_rig: MakeRig) -> None:
    rig = make_rig({**EVERY_MINUTE, "web": {"tests": ["t"], "every": "1m"}})
    rig.runner.failing["api"] = RuntimeError("no such interpreter")
    rig.scheduler.start()
    rig.cycle()
    [api] = rig.stored("api")
    assert (api.status, api.error) == (
        RunStatus.ERROR,
        "onwatch could not run the check: RuntimeError: no such interpreter",
    )
    assert (api.trigger, api.scheduled_for, api.started_at, api.finished_at) == (
        Trigger.SCHEDULE,
        T0,
        T0,
        T0,
    )
    [web] = rig.stored("web")
    assert web.status is RunStatus.PASSED


def test_a_failing_review_or_follow_up_loses_no_run(make_rig: MakeRig) -> None:
    def review(run: Run) -> Run:
        raise ValueError("drift detection broke")

    def on_recorded(run: Run, where: str) -> None:
        raise ValueError("alerting broke")

    rig = make_rig(EVERY_MINUTE, review=review, on_recorded=on_recorded)
    rig.scheduler.start()
    rig.cycle()
    rig.advance(MINUTE)
    assert len(rig.stored("api")) == 2 and len(rig.recorded) == 2


def test_a_review_may_turn_a_run_into_an_error_before_it_is_kept(make_rig: MakeRig) -> None:
    def review(run: Run) -> Run:
        return replace(run, status=RunStatus.ERROR, error="every test was skipped (3 of 3)")

    rig = make_rig(EVERY_MINUTE, review=review)
    rig.scheduler.start()
    rig.cycle()
    [run] = rig.stored("api")
    assert (run.status, run.error) == (RunStatus.ERROR, "every test was skipped (3 of 3)")


def test_runs_left_in_flight_by_a_dead_onwatch_are_recorded_before_the_first_slot(
    make_rig: MakeRig,
) -> None:
    rig = make_rig({"api": {"tests": ["t"], "every": "1h"}})
    dead = replace(make_run(check="api", status=RunStatus.ERROR), error="interrupted: killed")
    rig.runner.left_in_flight.append(dead)
    rig.scheduler.start()
    assert [run.id for run, _ in rig.recorded] == [dead.id]
    assert rig.runner.discarded == [dead.id] and rig.runner.calls == []
    rig.cycle()
    assert rig.runner.slots("api") == [T0]


def test_each_run_is_logged_in_one_key_value_line(make_rig: MakeRig, logs: Records) -> None:
    rig = make_rig(EVERY_MINUTE)
    rig.runner.results["api"] = passed_results(2)
    rig.scheduler.start()
    rig.cycle()
    [record] = logs.named("run finished")
    [(run, _)] = rig.recorded
    assert fields(record) == {
        "check": "api",
        "status": "passed",
        "tests": 2,
        "passed": 2,
        "duration": "0.00s",
        "run_id": run.id,
    }
    line = TextFormatter().format(record)
    assert (
        " INFO run finished check=api status=passed tests=2 passed=2 duration=0.00s"
        f" run_id={run.id}" in line
    )


def test_the_loop_calls_on_cycle_each_pass_and_on_tick_every_few_seconds(make_rig: MakeRig) -> None:
    cycles: list[float] = []
    ticks: list[float] = []
    rig = make_rig({"api": {"tests": ["t"], "every": "1h"}})
    rig.scheduler.on_cycle = lambda: cycles.append(rig.time.mono)
    rig.scheduler.on_tick = lambda: ticks.append(rig.time.mono)
    rig.scheduler.start()
    start = rig.time.mono
    for _ in range(12):
        rig.advance(1)
    assert len(cycles) == 12
    assert [t - start for t in ticks] == [REPLAY_EVERY, 2 * REPLAY_EVERY]
    assert rig.scheduler.last_tick == rig.time.mono
    rig.scheduler.drain()
