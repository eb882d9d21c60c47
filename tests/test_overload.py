"""The overload monitor on a fake clock, its figures on /metrics, and the skipped-slot writer.

Time stands still until a test moves it; the monitor is told of each slot as the scheduler
tells it, so a window of minutes is tested in no time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from onwatch.channels.notification import Event, Notification
from onwatch.daemon.overload import OverloadMonitor
from onwatch.daemon.skips import SkipLog
from onwatch.errors import StoreError
from onwatch.state.health import Health
from onwatch.web.metrics import build_registry
from waiting import FakeClock, wait_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Time(FakeClock):
    """Wall and monotonic time that move together, only when told."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.mono = 500.0

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> datetime:
        self.mono += seconds
        return super().advance(seconds)


def monitor(time: Time, sent: list[Notification], health: Health | None = None) -> OverloadMonitor:
    return OverloadMonitor(
        skipped_share=0.2,
        lateness=10.0,
        window=300.0,
        notify=sent.append,
        load=None if health is None else health.load,
        clock=time,
        monotonic=time.monotonic,
    )


def slots(m: OverloadMonitor, time: Time, started: int, skipped: int, late: float = 0.5) -> None:
    """Report one second's slots, then move the clock on by a second and judge."""
    for _ in range(started):
        m.started(late)
    for _ in range(skipped):
        m.skipped("api")
    time.advance(1.0)
    m.evaluate()


def test_more_than_a_fifth_of_the_slots_skipped_is_one_overload_then_one_recovery() -> None:
    time, sent = Time(), []
    m = monitor(time, sent)
    for _ in range(60):
        slots(m, time, started=8, skipped=2)  # 20 %: not more than the threshold
    assert sent == []
    for _ in range(60):
        slots(m, time, started=6, skipped=4)  # the window's share climbs past 20 %
    [degraded] = sent
    assert degraded.event is Event.MONITOR_DEGRADED
    assert degraded.details["problem"] == "overloaded"
    assert degraded.details["skipped_share"] > 0.2
    share = degraded.details["skipped"] / degraded.details["slots"]
    assert round(share, 3) == degraded.details["skipped_share"]
    assert "slots were skipped" in degraded.summary
    for _ in range(600):
        slots(m, time, started=10, skipped=0)
    [_, recovered] = sent
    assert recovered.event is Event.MONITOR_RECOVERED
    assert recovered.details["problem"] == "overloaded"
    assert recovered.details["since"] == degraded.details["since"]
    assert recovered.key != degraded.key


def test_a_p95_start_lateness_over_the_limit_is_an_overload() -> None:
    time, sent = Time(), []
    m = monitor(time, sent)
    for _ in range(10):
        slots(m, time, started=19, skipped=0, late=1.0)
        slots(m, time, started=1, skipped=0, late=30.0)  # 2.5 %: below the 95th percentile
    assert sent == []
    for _ in range(30):
        slots(m, time, started=10, skipped=0, late=12.0)
    [degraded] = sent
    assert degraded.details["lateness_p95_seconds"] > 10.0
    assert degraded.details["skipped"] == 0


def test_an_overload_that_goes_on_is_told_once() -> None:
    time, sent = Time(), []
    m = monitor(time, sent)
    for _ in range(900):  # fifteen minutes, three windows
        slots(m, time, started=1, skipped=1)
    assert [n.event for n in sent] == [Event.MONITOR_DEGRADED]


def test_a_window_with_too_few_slots_is_not_judged() -> None:
    time, sent = Time(), []
    m = monitor(time, sent)
    for _ in range(4):
        m.skipped("api")
    time.advance(1.0)
    m.evaluate()
    assert sent == []


def test_slots_older_than_the_window_are_forgotten() -> None:
    time, sent = Time(), []
    m = monitor(time, sent)
    slots(m, time, started=0, skipped=50)
    assert m.figures().skipped == 50
    time.advance(300.0)
    assert m.figures().slots == 0


def metric_samples(health: Health) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(build_registry(health, ["api"])).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_show_the_overload_the_share_the_lateness_and_the_skipped_slots() -> None:
    time, sent, health = Time(), [], Health(["api"])
    m = monitor(time, sent, health)
    before = metric_samples(health)
    assert before[("onwatch_overloaded", ())] == 0
    for _ in range(10):
        slots(m, time, started=1, skipped=1, late=2.0)
    after = metric_samples(health)
    assert after[("onwatch_overloaded", ())] == 1
    assert after[("onwatch_scheduler_skipped_share", ())] == 0.5
    assert after[("onwatch_scheduler_start_lateness_seconds", ())] == 2.0
    assert after[("onwatch_skipped_slots_total", (("check", "api"), ("reason", "overlap")))] == 10


class LockedRuns:
    """The store's skipped slots, behind a database that can be locked."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, datetime, str]] = []
        self.locked = threading.Event()
        self.attempts = 0

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        self.attempts += 1
        if self.locked.is_set():
            raise StoreError("cannot record a skipped slot: database is locked")
        self.rows.append((check, scheduled_for, reason))


def test_skipped_slots_queued_while_the_database_is_locked_are_all_written_in_order() -> None:
    runs = LockedRuns()
    runs.locked.set()
    skips = SkipLog(runs, retry=0.01)
    skips.start()
    try:
        expected = [("api", T0 + timedelta(seconds=i), "overlap") for i in range(200)]
        for row in expected:
            skips.record_skipped_slot(*row)  # returns at once, locked or not
        wait_until(lambda: runs.attempts >= 3, "the writer tried the locked database")
        assert runs.rows == [] and skips.pending() == 200
        runs.locked.clear()
        wait_until(lambda: not skips.pending(), "the queued rows are written")
        assert runs.rows == expected
    finally:
        skips.stop(timeout=5)


def test_beyond_its_limit_the_queue_drops_the_oldest_rows_and_counts_them() -> None:
    runs = LockedRuns()
    runs.locked.set()
    skips = SkipLog(runs, limit=5)  # not started: nothing is written meanwhile
    for i in range(8):
        skips.record_skipped_slot("api", T0 + timedelta(seconds=i), "overlap")
    assert skips.dropped == 3
    runs.locked.clear()
    skips.stop(timeout=5)
    assert [row[1] for row in runs.rows] == [T0 + timedelta(seconds=i) for i in range(3, 8)]


def test_rows_still_queued_at_a_stop_are_kept_on_disk_and_written_after_the_next_start(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "skipped-slots.json"
    runs = LockedRuns()
    runs.locked.set()
    before = SkipLog(runs, retry=0.01, spill=spill)
    before.start()
    expected = [("api", T0 + timedelta(seconds=i), "overlap") for i in range(3)]
    for row in expected:
        before.record_skipped_slot(*row)
    wait_until(lambda: runs.attempts >= 1, "the writer tried the locked database")
    before.stop(timeout=5)  # the database is still locked
    assert spill.exists() and runs.rows == []
    runs.locked.clear()
    after = SkipLog(runs, spill=spill)
    after.record_skipped_slot("api", T0 + timedelta(seconds=3), "overlap")  # a new one
    after.start()
    try:
        wait_until(lambda: not after.pending(), "the kept rows are written")
    finally:
        after.stop(timeout=5)
    assert runs.rows == [*expected, ("api", T0 + timedelta(seconds=3), "overlap")]
    assert not spill.exists()
