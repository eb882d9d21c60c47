"""``onwatch run`` as a real long-running process on checks due every second."""

from __future__ import annotations

import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from daemon import Daemon
from suites import make_project

pytestmark = pytest.mark.e2e


def stored_runs(root: Path) -> list[tuple[str, str, str, str, str, str | None]]:
    with sqlite3.connect(root / "onwatch.db") as db:
        return list(
            db.execute(
                'select "check", status, trigger, scheduled_for, started_at, error from runs '
                "order by started_at"
            )
        )


def in_flight(root: Path, text: str) -> bool:
    """Tell whether a run in flight has begun the test named ``text``."""
    inflight = root / ".onwatch" / "inflight"
    return any(text in p.read_text() for p in inflight.glob("*.events"))


def test_it_runs_checks_on_schedule_logs_each_run_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {
            "good": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "3"}},
            "crashing": {"tests": ["selfkill"], "every": "1s"},
        },
        suites=("many", "selfkill"),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(
            lambda d: (
                sum(r["check"] == "good" for r in d.runs()) >= 3
                and any(r["check"] == "crashing" for r in d.runs())
            )
        )
        assert daemon.stop() == 0
        logged = daemon.runs()
    good = [r for r in logged if r["check"] == "good"]
    assert all(r["status"] == "passed" and r["passed"] == 3 for r in good)
    crashing = [r for r in logged if r["check"] == "crashing"]
    assert crashing and all(r["status"] == "error" for r in crashing)
    assert "killed by SIGKILL" in crashing[0]["error"]
    runs = stored_runs(tmp_path)
    assert len(runs) == len(logged)  # one log line per recorded run
    assert {r[2] for r in runs} == {"schedule"}
    slots = sorted(datetime.fromisoformat(r[3]) for r in runs if r[0] == "good")
    gaps = [(b - a).total_seconds() for a, b in zip(slots, slots[1:], strict=False)]
    # On the 1 s grid; a slot may be skipped, never doubled, when the machine is very busy.
    assert all(gap >= 0.99 and abs(gap - round(gap)) < 0.01 for gap in gaps), gaps


def test_a_check_still_running_is_not_started_twice_and_the_slot_is_recorded(
    tmp_path: Path,
) -> None:
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1s", "env": {"SLOW_SECONDS": "2.5"}}},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 2)
        daemon.stop()
        warnings = [line for line in daemon.lines() if "slot skipped" in line.get("message", "")]
    assert warnings
    runs = stored_runs(tmp_path)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later[4] > earlier[4]
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        skipped = db.execute("select reason from skipped_slots").fetchall()
    assert skipped and {r[0] for r in skipped} == {"overlap"}


def test_sigterm_lets_a_run_in_flight_finish_and_records_it(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1h", "env": {"SLOW_SECONDS": "2"}}},
        settings={"drain_timeout": "20s", "max_jitter": "1ms"},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: in_flight(tmp_path, "test_slow"))
        assert daemon.stop() == 0
    [run] = stored_runs(tmp_path)
    assert run[1] == "passed"


def test_a_run_still_going_after_the_drain_timeout_is_recorded_as_interrupted(
    tmp_path: Path,
) -> None:
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1h", "env": {"SLOW_SECONDS": "60"}}},
        settings={"drain_timeout": "1s", "max_jitter": "1ms"},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: in_flight(tmp_path, "test_slow"))
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 15
    [run] = stored_runs(tmp_path)
    assert run[1] == "error" and run[5].startswith("interrupted")
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        results = dict(db.execute("select nodeid, outcome from results"))
    assert results == {
        "slow/test_slow.py::test_first": "passed",
        "slow/test_slow.py::test_slow": "error",
    }


def test_a_second_signal_kills_runs_at_once(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1h", "env": {"SLOW_SECONDS": "60"}}},
        settings={"drain_timeout": "5m", "max_jitter": "1ms"},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: in_flight(tmp_path, "test_slow"))
        daemon.process.send_signal(signal.SIGINT)
        daemon.wait_for(lambda d: any("then stopping" in str(x.get("message")) for x in d.lines()))
        started = time.monotonic()
        assert daemon.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 10
    [run] = stored_runs(tmp_path)
    assert run[1] == "error" and run[5].startswith("interrupted")


def test_a_restart_resumes_the_schedule_without_running_again(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"hourly": {"tests": ["many"], "every": "1h", "env": {"MANY_TESTS": "1"}}},
        settings={"max_jitter": "1ms"},
        suites=("many",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) == 1)
        daemon.stop()
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: any(x.get("message") == "onwatch started" for x in d.lines()))
        time.sleep(1.5)  # a wrongly scheduled run would start at once (no jitter)
        daemon.stop()
        assert daemon.runs() == []
    assert len(stored_runs(tmp_path)) == 1


def test_text_logs_give_one_key_value_line_per_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = make_project(
        tmp_path,
        {"good": {"tests": ["many"], "every": "1h", "env": {"MANY_TESTS": "2"}}},
        settings={"max_jitter": "1ms"},
        suites=("many",),
    )
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "-c", str(config), "run"],
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if "run finished" in line:
                break
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert " INFO run finished check=good status=passed tests=2 passed=2 duration=" in line
