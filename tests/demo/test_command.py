"""``onwatch demo``: the demo app monitored by the demo suite, green, then red when broken."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from onwatch.cli.demo import missing_for_journeys

pytestmark = pytest.mark.e2e


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", "demo", "--dir", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_once_is_green_on_a_healthy_app(tmp_path: Path) -> None:
    done = demo("--once", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^api: PASSED — \d+ passed", done.stdout, re.M)
    assert re.search(r"^money: PASSED — \d+ passed", done.stdout, re.M)
    journeys = missing_for_journeys() is None  # without a browser their check is disabled
    assert bool(re.search(r"^journeys: PASSED — 5 passed", done.stdout, re.M)) == journeys
    with sqlite3.connect(tmp_path / "demo" / "onwatch.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == (3 if journeys else 2)


def test_demo_once_is_red_with_the_broken_feature_named(tmp_path: Path) -> None:
    done = demo("--once", "--faults", "deposit=broken", cwd=tmp_path)
    assert done.returncode == 1
    assert re.search(r"^money: FAILED", done.stdout, re.M)
    failing = set(re.findall(r"✗ (\S+) failed", done.stdout))
    money = {nodeid for nodeid in failing if nodeid.startswith("test_money.py::")}
    journeys = {"test_journeys.py::test_a_deposit_shows_in_the_balance"}
    assert money and failing - money == (journeys if missing_for_journeys() is None else set())


def test_demo_faults_are_validated(tmp_path: Path) -> None:
    done = demo("--once", "--faults", "coffee=broken", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("onwatch: --faults:")


def test_the_demo_daemon_turns_red_when_a_feature_is_broken_while_it_runs(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    process = start_demo(tmp_path, log_path)
    try:
        url = _wait_for(log_path, r"demo app is up at (http://127\.0\.0\.1:\d+)")
        _wait_for(log_path, r'"check": "money", "status": "passed"')
        httpx.put(f"{url}/admin/faults", json={"deposit": "broken"}, timeout=5).raise_for_status()
        _wait_for(log_path, r'"check": "money", "status": "failed"')
        # Two failing runs in a row open an incident: the demo's inbox receives the alert.
        inbox = _inbox_once(url, "incident.opened")
        opened = [n for n in inbox if n["event"] == "incident.opened"]
        assert [n["check"] for n in opened] == ["money"]
        assert opened[0]["summary"].startswith("money is failing")
        assert opened[0]["category"] == "product"  # the run's category reaches the alert
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    runs = [
        json.loads(line) for line in log_path.read_text().splitlines() if '"run finished"' in line
    ]
    assert [r["status"] for r in runs if r["check"] == "money"][-1] == "failed"


def start_demo(root: Path, log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `onwatch demo` as a daemon in ``root``, logging JSON lines to ``log_path``."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onwatch",
                "demo",
                "--dir",
                "demo",
                "--log-format",
                "json",
                "--listen",
                "127.0.0.1:0",
                *args,
            ],
            cwd=root,
            stderr=log,
        )


def _inbox_once(url: str, event: str, timeout: float = 60) -> list[dict[str, object]]:
    """Wait until the demo app's inbox holds a notification of ``event``; return the inbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inbox = httpx.get(f"{url}/admin/inbox", timeout=5).json()["notifications"]
        if any(n["event"] == event for n in inbox):
            return list(inbox)
        time.sleep(0.2)
    raise AssertionError(f"no {event} reached the demo inbox in {timeout:g}s")


def _wait_for(path: Path, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text())
        if found:
            return found.group(1) if found.groups() else found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} never appeared in:\n{path.read_text()}")
