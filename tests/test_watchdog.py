"""Never blind: overdue checks, downtime gaps and drifting selections are reported."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import Daemon
from onwatch.alerting.notification import Event, Notification
from onwatch.config import Check, load_config
from onwatch.daemon.watchdog import Watchdog, expected_by
from onwatch.store import CheckHistory, open_store
from receivers import HttpReceiver
from records import make_run
from suites import make_project

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
Sent = list[tuple[Notification, list[str]]]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def watchdog(tmp_path: Path, clock: Clock, sent: Sent) -> Watchdog:
    path = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1m", "timeout": "30s", "notify": ["hook"]}},
        suites=("many",),
        channels={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    )
    return Watchdog(load_config(path), notify=lambda n, c: sent.append((n, c)), clock=clock)


def test_a_check_without_a_completed_run_past_interval_plus_grace_is_overdue_once(
    tmp_path: Path,
) -> None:
    clock, sent = Clock(), []
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


def test_expected_by_follows_cron_slots() -> None:
    check = Check(tests=["t"], cron="0 * * * *", timeout=60, grace=300)
    assert expected_by(check, T0 + timedelta(minutes=10)) == T0 + timedelta(hours=1, minutes=5)


def test_slots_missed_while_down_are_recorded_and_notified_once(tmp_path: Path) -> None:
    clock, sent = Clock(), []
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


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def test_a_restart_after_downtime_records_the_gap_and_alerts_once(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    config = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "1"}}},
        settings={"max_jitter": "1ms", "notify": ["hook"]},
        suites=("many",),
        channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 2)
        daemon.stop()
    time.sleep(3.5)
    with Daemon(config) as daemon:
        [gap] = receiver.wait_for(1, timeout=20)
        daemon.wait_for(lambda d: len(d.runs()) >= 1)
        daemon.stop()
    body = gap.json()
    assert body["event"] == "monitor.degraded" and body["details"]["problem"] == "gap"
    assert body["details"]["missed"]["api"] >= 2
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        down = db.execute("select count(*) from skipped_slots where reason = 'down'").fetchone()
    assert down[0] == body["details"]["missed"]["api"]
    assert [r.json()["event"] for r in receiver.received] == ["monitor.degraded"]


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
        [overdue] = receiver.wait_for(1, timeout=20)
        daemon.stop()
    body = overdue.json()
    assert body["event"] == "check.overdue" and body["check"] == "slow"
    assert body["summary"].startswith("slow is overdue")


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


def test_status_shows_a_check_overdue_when_its_last_run_is_too_old(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {
            # A 2 s timeout: a pytest start-up on a busy machine can take a second by itself.
            "fast": {"tests": ["many"], "every": "2s", "timeout": "2s", "grace": "1s"},
            "slow": {"tests": ["many"], "every": "1h"},
        },
        suites=("many",),
    )

    def onwatch(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MANY_TESTS": "1"}
        return subprocess.run(
            [sys.executable, "-m", "onwatch", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
        )

    assert onwatch("once").returncode == 0
    time.sleep(3.5)
    checks = {c["name"]: c for c in json.loads(onwatch("status", "--json").stdout)["checks"]}
    assert checks["fast"]["overdue"] is True and checks["slow"]["overdue"] is False
    assert "(overdue)" in onwatch("status").stdout
