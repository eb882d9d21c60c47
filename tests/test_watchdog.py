"""Never blind: overdue checks, downtime gaps and drifting selections are reported."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import Daemon
from onwatch.channels.notification import Event, Notification
from onwatch.config import load_config
from onwatch.daemon.watchdog import DatabaseAlarm, Watchdog
from onwatch.model import utcnow
from onwatch.store import CheckHistory, open_store
from onwatch.store.recorder import Recording
from receivers import HttpReceiver
from recording import Hook
from records import make_run
from suites import make_project
from waiting import FakeClock

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
Sent = list[tuple[Notification, list[str]]]


def watchdog_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1m", "timeout": "30s", "notify": ["hook"]}},
        suites=("many",),
        channels={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    )


def watchdog(tmp_path: Path, clock: FakeClock, sent: Sent) -> Watchdog:
    path = watchdog_project(tmp_path)
    return Watchdog(load_config(path), notify=lambda n, c: sent.append((n, c)), clock=clock)


def test_a_check_without_a_completed_run_past_interval_plus_grace_is_overdue_once(
    tmp_path: Path,
) -> None:
    clock, sent = FakeClock(T0), []
    dog = watchdog(tmp_path, clock, sent)
    # Interval 1m, grace = timeout 30s + 1m: due by 10:02:30.
    clock.now = T0 + timedelta(minutes=2, seconds=29)
    assert dog.check() == []
    clock.now = T0 + timedelta(minutes=2, seconds=31)
    assert dog.check() == ["api"]
    assert dog.check() == []  # once per episode
    [(notification, channels)] = sent
    assert notification.event is Event.CHECK_OVERDUE and channels == ["hook"]
    assert notification.summary.startswith("api is overdue: no run completed by 10:02:30 UTC")
    dog.on_run(replace(make_run(check="api"), finished_at=clock.now))
    clock.now += timedelta(minutes=2)
    assert dog.check() == []  # a run completed: back on time


def test_slots_missed_while_down_are_recorded_and_notified_once(tmp_path: Path) -> None:
    clock, sent = FakeClock(T0), []
    dog = watchdog(tmp_path, clock, sent)
    store = open_store(f"sqlite:///{tmp_path / 'gap.db'}")
    store.ensure_schema()
    try:
        clock.now = T0 + timedelta(minutes=10, seconds=5)
        history = {"api": CheckHistory(last_slot=T0, last_run_at=T0 + timedelta(seconds=2))}
        assert dog.record_gap(store.runs, history) == 9  # 10:01 ... 10:09; 10:10 runs at once
        assert len(store.runs.skipped_slots("api")) == 9
        assert {reason for _, reason in store.runs.skipped_slots("api")} == {"down"}
    finally:
        store.close()
    [(notification, channels)] = sent
    assert notification.event is Event.MONITOR_DEGRADED
    assert notification.details["problem"] == "gap" and channels == ["hook"]
    assert "9 scheduled runs of 1 check missed" in notification.summary


def alarm(tmp_path: Path, clock: Callable[[], datetime]) -> tuple[DatabaseAlarm, Hook]:
    hook = Hook()
    config = load_config(watchdog_project(tmp_path))
    return DatabaseAlarm(config, {"hook": hook}, clock=clock), hook


def sent_by(hook: Hook) -> list[Notification]:
    """Return what the alarm has sent once every thread it started is done."""
    for thread in threading.enumerate():
        if thread.name == "onwatch-db-alarm":
            thread.join(timeout=10)
    with hook.lock:
        return list(hook.sent)


STORED = Recording(last_write_ok=True)
SPOOLING = Recording(problem="database", error="database is locked", spooled=1)


def test_the_database_alarm_goes_out_once_an_outage_stamped_with_its_clock(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    db_alarm, hook = alarm(tmp_path, clock)
    db_alarm.on_recording(STORED)
    clock.now = T0 + timedelta(minutes=1)
    db_alarm.on_recording(SPOOLING)
    clock.now = T0 + timedelta(minutes=2)
    db_alarm.on_recording(replace(SPOOLING, spooled=2))  # the same outage: nobody is told again
    [first] = sent_by(hook)
    assert first.event is Event.MONITOR_DEGRADED
    assert first.details == {
        "problem": "database",
        "since": "2026-11-24T10:01:00+00:00",
        "error": "database is locked",
        "spooled": 1,
        "in_memory": 0,
        "dropped": 0,
    }
    assert first.key == "monitor.database|2026-11-24T10:01:00+00:00"
    db_alarm.on_recording(STORED)
    assert db_alarm.failing_since is None
    clock.now = T0 + timedelta(minutes=5)
    db_alarm.on_recording(SPOOLING)  # a new outage
    told = [(n.event, n.details["since"]) for n in sent_by(hook)]
    assert told == [
        (Event.MONITOR_DEGRADED, "2026-11-24T10:01:00+00:00"),
        (Event.MONITOR_RECOVERED, "2026-11-24T10:01:00+00:00"),
        (Event.MONITOR_DEGRADED, "2026-11-24T10:05:00+00:00"),
    ]
    recovered = sent_by(hook)[1]
    assert recovered.details["problem"] == "database" and recovered.severity == "info"
    assert recovered.key == "monitor.recording.ended|2026-11-24T10:01:00+00:00"


def test_the_alarm_is_raised_again_when_runs_can_only_be_held_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_alarm, hook = alarm(tmp_path, FakeClock(T0))
    db_alarm.on_recording(SPOOLING)
    full = Recording(problem="disk_full", error="spool: [Errno 28] No space", in_memory=3)
    db_alarm.on_recording(full)
    db_alarm.on_recording(replace(full, in_memory=4))  # no new problem: told already
    dropping = replace(full, in_memory=10_000, dropped=2, dropped_now=2)
    db_alarm.on_recording(dropping)
    db_alarm.on_recording(replace(dropping, dropped=3, dropped_now=3))
    with caplog.at_level(logging.INFO, logger="onwatch.watchdog"):
        db_alarm.on_recording(replace(STORED, dropped=3))  # the count lasts past the episode

    spooled, held, lost, recovered = sent_by(hook)
    assert recovered.event is Event.MONITOR_RECOVERED
    assert recovered.details["problems"] == ["database", "disk_full"]
    assert "3 run(s) were dropped" in recovered.summary
    assert lost.details["dropped"] == 2
    assert "2 dropped" in lost.summary
    assert (spooled.details["problem"], spooled.severity) == ("database", "warning")
    assert (held.details["problem"], held.severity) == ("disk_full", "critical")
    assert held.details["in_memory"] == 3
    assert "3 run(s) held in memory" in held.summary
    assert "recording back to normal" in caplog.text


def test_runs_spooled_from_many_threads_at_once_raise_one_alarm_per_outage(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)

    def yielding_clock() -> datetime:
        time.sleep(0)  # let other threads in between the check and the set, as a real one may
        return clock()

    db_alarm, hook = alarm(tmp_path, yielding_clock)
    threads, outages = 16, 5
    for outage in range(outages):
        clock.now = T0 + timedelta(minutes=outage)
        start = threading.Barrier(threads)

        def spool(start: threading.Barrier = start) -> None:
            start.wait()
            for _ in range(50):
                db_alarm.on_recording(SPOOLING)

        workers = [threading.Thread(target=spool) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        db_alarm.on_recording(STORED)
    sent = [n for n in sent_by(hook) if n.event is Event.MONITOR_DEGRADED]
    assert [n.details["since"] for n in sent] == [
        (T0 + timedelta(minutes=outage)).isoformat() for outage in range(outages)
    ]
    assert len(sent_by(hook)) == 2 * outages  # and one recovery notice each


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


@pytest.mark.e2e
def test_a_hung_check_is_reported_overdue_by_the_daemon(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    config = make_project(
        tmp_path,
        {
            "slow": {
                "tests": ["slow"],
                "every": "1s",
                "timeout": "30s",
                "grace": "1s",
                "env": {"SLOW_SECONDS": "20"},
                "notify": ["hook"],
            }
        },
        settings={"max_jitter": "1ms", "drain_timeout": "1s"},
        suites=("slow",),
        channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
    )
    with Daemon(config) as daemon:
        # Every slot of the hung check is skipped: that is an overload too, told on its own.
        overdue = receiver.wait_for_event("check.overdue", timeout=20)
        daemon.stop()
    body = overdue.json()
    assert body["check"] == "slow"
    assert body["summary"].startswith("slow is overdue")


@pytest.mark.e2e
def test_a_run_whose_tests_were_all_skipped_is_an_error(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"skips": {"tests": ["outcomes"], "keyword": "test_skipped", "every": "1m"}},
        suites=("outcomes",),
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "error" and "every test was skipped (1 of 1)" in run["error"]


@pytest.mark.e2e
def test_status_shows_a_check_overdue_when_its_last_run_is_too_old(tmp_path: Path) -> None:
    path = make_project(
        tmp_path,
        {
            "fast": {"tests": ["many"], "every": "1m", "timeout": "30s", "grace": "1m"},
            "slow": {"tests": ["many"], "every": "1h"},
        },
        suites=("many",),
    )
    # The history says how old the last runs are: no need to wait for one to grow old.
    store = open_store(load_config(path).database_url)
    try:
        store.ensure_schema()
        now = utcnow()
        store.runs.save_run(make_run(check="fast", started_at=now - timedelta(minutes=3)))
        store.runs.save_run(make_run(check="slow", started_at=now - timedelta(minutes=3)))
    finally:
        store.close()

    def onwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onwatch", *args], cwd=tmp_path, capture_output=True, text=True
        )

    # fast was due by 1m + 30s + 1m after its last run ended; slow not for an hour.
    checks = {c["name"]: c for c in json.loads(onwatch("status", "--json").stdout)["checks"]}
    assert checks["fast"]["overdue"] is True and checks["slow"]["overdue"] is False
    assert "(overdue)" in onwatch("status").stdout


def test_after_a_restart_a_late_check_is_overdue_at_once_but_told_only_if_still_late(
    tmp_path: Path,
) -> None:
    clock, sent = FakeClock(T0), []
    marked: list[tuple[str, bool]] = []
    path = watchdog_project(tmp_path)
    dog = Watchdog(
        load_config(path),
        notify=lambda n, c: sent.append((n, c)),
        clock=clock,
        on_overdue=lambda name, late: marked.append((name, late)),
    )
    # Its last run ended an hour before this start: late on every surface at once...
    dog.seed({"api": CheckHistory(last_run_at=T0 - timedelta(hours=1), registered_at=T0)})
    assert dog.check() == [] and marked == [("api", True)]
    # ...told only when the catch-up run had its interval plus grace and did not complete.
    clock.now = T0 + timedelta(minutes=2, seconds=31)
    assert dog.check() == ["api"] and len(sent) == 1
    assert sent[0][0].summary.endswith("last run completed 2026-11-24 09:00:00 UTC")
    dog.on_run(replace(make_run(check="api"), finished_at=clock.now))
    assert marked[-1] == ("api", False)


def test_a_catch_up_run_that_completes_in_time_clears_the_overdue_check_untold(
    tmp_path: Path,
) -> None:
    clock, sent = FakeClock(T0), []
    dog = watchdog(tmp_path, clock, sent)
    dog.seed({"api": CheckHistory(last_run_at=T0 - timedelta(hours=1), registered_at=T0)})
    dog.check()
    assert dog.overdue
    dog.on_run(replace(make_run(check="api"), finished_at=T0 + timedelta(seconds=20)))
    clock.now = T0 + timedelta(minutes=2, seconds=31)
    assert dog.check() == [] and sent == [] and not dog.overdue
