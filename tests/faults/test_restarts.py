"""Restarts tell the truth: what a killed or stopped onwatch leaves is recorded as it happened.

Real ``onwatch`` processes are killed with SIGKILL or stopped with SIGTERM while their pytest
runs; the next process, or the same one, records what the tests did.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from daemon import Daemon
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

# The process hangs after its last test: in sessionfinish before the plugin writes the end of
# the session, or in unconfigure after it. onwatch is killed meanwhile.
ENDS_TESTS = """
import os


def test_one():
    pass


def test_two():
    assert os.environ.get("OUTCOME", "pass") == "pass"
"""
HANGING_CONFTEST = """
import os
import time

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    if os.environ.get("HANG") == "sessionfinish":
        time.sleep(120)


def pytest_unconfigure(config):
    if os.environ.get("HANG") == "unconfigure":
        time.sleep(120)
"""


def _project(tmp_path: Path, outcome: str, hang: str) -> None:
    make_project(
        tmp_path,
        {
            "ends": {
                "tests": ["ends"],
                "every": "1h",
                "env": {"OUTCOME": outcome, "HANG": hang},
            },
            "other": {"tests": ["many"], "every": "1h"},
        },
        suites=("many",),
    )
    (tmp_path / "ends").mkdir()
    (tmp_path / "ends" / "conftest.py").write_text(HANGING_CONFTEST)
    (tmp_path / "ends" / "test_ends.py").write_text(ENDS_TESTS)


def _onwatch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _events(tmp_path: Path) -> list[dict[str, Any]]:
    found = []
    for path in (tmp_path / ".onwatch" / "inflight").glob("*.events"):
        for line in path.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _pytest_left(tmp_path: Path) -> list[int]:
    left = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.info["cwd"] == str(tmp_path) and "pytest" in cmdline:
                left.append(process.pid)
        except psutil.Error:
            continue
    return left


@pytest.mark.parametrize("hang", ["sessionfinish", "unconfigure"])
@pytest.mark.parametrize(("outcome", "status"), [("pass", "passed"), ("fail", "failed")])
def test_a_run_whose_tests_all_finished_before_sigkill_keeps_its_real_outcome(
    tmp_path: Path, hang: str, outcome: str, status: str
) -> None:
    """Fault: onwatch is killed with SIGKILL after every test of a run reported, while pytest
    is still ending its session (before or after it wrote that the session finished)."""
    _project(tmp_path, outcome, hang)
    # The database exists before the kill: this test is about the run, not a half-made schema.
    assert _onwatch(tmp_path, "once", "other").returncode == 0
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "ends"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        finished = "finished" if hang == "unconfigure" else "result"
        wait_until(
            lambda: (
                sum(e.get("event") == finished for e in _events(tmp_path))
                >= (1 if hang == "unconfigure" else 2)
            ),
            "every test reported",
            timeout=30,
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert _pytest_left(tmp_path)  # the orphaned pytest still hangs in its last hook

    # The next onwatch process recovers the run that was left in flight.
    done = _onwatch(tmp_path, "once", "other")
    assert done.returncode == 0 and "spool" not in done.stderr, done.stderr
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        [(run_status, error, collected)] = db.execute(
            "select status, error, collected from runs where \"check\" = 'ends'"
        ).fetchall()
        outcomes = dict(
            db.execute("select nodeid, outcome from results where \"check\" = 'ends'").fetchall()
        )
    assert (run_status, error, collected) == (status, None, 2)
    assert outcomes == {
        "ends/test_ends.py::test_one": "passed",
        "ends/test_ends.py::test_two": "passed" if outcome == "pass" else "failed",
    }
    assert _pytest_left(tmp_path) == []


def test_a_run_killed_mid_test_by_sigkill_is_still_recorded_as_interrupted(
    tmp_path: Path,
) -> None:
    """Fault: onwatch is killed with SIGKILL while a test is still running."""
    make_project(
        tmp_path,
        {
            "slow": {"tests": ["slow"], "every": "1h", "env": {"SLOW_SECONDS": "60"}},
            "other": {"tests": ["many"], "every": "1h"},
        },
        suites=("slow", "many"),
    )
    assert _onwatch(tmp_path, "once", "other").returncode == 0
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "slow"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        wait_until(
            lambda: any(e.get("nodeid", "").endswith("test_slow") for e in _events(tmp_path)),
            "the slow test started",
            timeout=30,
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert _onwatch(tmp_path, "once", "other").returncode == 0
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        [(run_status, error)] = db.execute(
            "select status, error from runs where \"check\" = 'slow'"
        ).fetchall()
    assert run_status == "error" and error.startswith("interrupted")
    assert _pytest_left(tmp_path) == []


RESTARTS = 3


def test_routine_restarts_with_runs_in_flight_open_no_incident(tmp_path: Path) -> None:
    """Fault: onwatch is stopped with SIGTERM (drain cut short) and with two SIGINTs, again and
    again, each time while a run is in flight."""
    config = make_project(
        tmp_path,
        {
            "slow": {
                "tests": ["slow"],
                "every": "2s",  # overdue at each start: the catch-up run starts at once
                "alert_after": 1,
                "env": {"SLOW_SECONDS": "60"},
            }
        },
        settings={"drain_timeout": "1s", "max_jitter": "1ms"},
        suites=("slow",),
    )
    stops = [signal.SIGTERM, signal.SIGINT, signal.SIGTERM][:RESTARTS]
    for number in stops:
        with Daemon(config) as daemon:
            wait_until(
                lambda: any(
                    e.get("event") == "begin" and e["nodeid"].endswith("test_slow")
                    for e in _events(tmp_path)
                ),
                "the slow test started",
                timeout=30,
            )
            daemon.process.send_signal(number)
            if number == signal.SIGINT:
                daemon.process.send_signal(number)  # a second one kills at once
            assert daemon.stop(timeout=30) == 0
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        runs = db.execute("select status, error, trigger_detail from runs").fetchall()
        incidents = db.execute("select count(*) from incidents").fetchone()[0]
    assert len(runs) == RESTARTS
    for run_status, error, detail in runs:
        assert run_status == "error" and error.startswith("interrupted")
        assert json.loads(detail) == {"interrupted": "stop"}
    assert incidents == 0
    assert _pytest_left(tmp_path) == []
    assert os.listdir(tmp_path / ".onwatch" / "inflight") == []


def _overdue_everywhere(tmp_path: Path, url: str) -> dict[str, dict[str, bool]]:
    """Return whether each check is overdue, as each surface shows it."""
    api = httpx.get(f"{url}/api/v1/checks", timeout=10).json()["checks"]
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    status = json.loads(_onwatch(tmp_path, "status", "--json").stdout)["checks"]
    seen: dict[str, dict[str, bool]] = {
        "api": {c["name"]: c["overdue"] for c in api},
        "status": {c["name"]: c["overdue"] for c in status},
        "metrics": {
            name: value == "1.0"
            for name, value in re.findall(
                r'^onwatch_check_overdue\{check="([^"]+)"\} (\S+)$', metrics, re.M
            )
        },
    }
    page = {}
    for name in seen["api"]:
        html = httpx.get(f"{url}/checks/{name}", timeout=10).text
        page[name] = '<span class="tag o-timeout">overdue</span>' in html
    seen["check page"] = page
    overview = httpx.get(f"{url}/", timeout=10).text
    count = re.search(r'id="count-overdue"><b>(\d+)</b>', overview)
    assert count is not None
    seen["overview count"] = {"count": int(count.group(1)) == sum(page.values())}
    return seen


def test_a_check_that_never_completed_a_run_is_overdue_on_every_surface(
    tmp_path: Path,
) -> None:
    """Fault: a check's first run hangs, so it never completes one; its deadline passes."""
    config = make_project(
        tmp_path,
        {
            "hung": {
                "tests": ["slow"],
                "every": "2s",
                "timeout": "60s",
                "grace": "1s",
                "env": {"SLOW_SECONDS": "60"},
            },
            "fine": {"tests": ["many"], "every": "1h"},
        },
        settings={"max_jitter": "1ms", "drain_timeout": "1s"},
        suites=("slow", "many"),
    )
    with Daemon(config) as daemon:
        url = daemon.served_url()
        daemon.wait_for(lambda d: any(line.get("check") == "fine" for line in d.runs()))
        # The watchdog looks every few seconds; the readers compute it at each request.
        wait_until(
            lambda: (
                'onwatch_check_overdue{check="hung"} 1.0'
                in __import__("httpx").get(f"{url}/metrics", timeout=10).text
            ),
            "the watchdog marked hung overdue",
            timeout=30,
        )
        seen = _overdue_everywhere(tmp_path, url)
        assert daemon.stop() == 0
    expected = {"hung": True, "fine": False}
    assert seen == {
        "api": expected,
        "status": expected,
        "metrics": expected,
        "check page": expected,
        "overview count": {"count": True},
    }


def test_a_run_stopped_after_its_last_test_keeps_its_real_outcome(tmp_path: Path) -> None:
    """Fault: Ctrl-C reaches `onwatch once` after every test reported, while pytest hangs
    in its last hook."""
    _project(tmp_path, "fail", "sessionfinish")
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "ends", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        wait_until(
            lambda: sum(e.get("event") == "result" for e in _events(tmp_path)) >= 2,
            "every test reported",
            timeout=30,
        )
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    [run] = json.loads(out)["runs"]
    assert (run["status"], run["error"], run["collected"]) == ("failed", None, 2)
    assert run["trigger_detail"] == {}
    assert _pytest_left(tmp_path) == []
