"""Overload with a real ``onwatch run``: more checks due every second than two cores can run."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from daemon import Daemon
from receivers import HttpReceiver
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

CHECKS = 10


def overloaded_gauge(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("onwatch_overloaded "):
                return float(line.split()[1])
    raise AssertionError("onwatch_overloaded is not on /metrics")


def test_an_overloaded_scheduler_says_so_once_through_the_channels_and_on_metrics(
    tmp_path: Path,
) -> None:
    """Fault: ten checks due every second on two workers, far more than the machine can run."""
    with HttpReceiver() as receiver:
        config = make_project(
            tmp_path,
            {
                f"c{i}": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "1"}}
                for i in range(CHECKS)
            },
            settings={
                "max_jitter": "1ms",
                "max_parallel": 2,
                "overload_window": "10s",
                "overload_skipped": 0.2,  # the defaults, which the projects of tests turn off
                "overload_lateness": "10s",
                "notify": ["hook"],
            },
            suites=("many",),
            channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
        )
        started = time.monotonic()
        with Daemon(config) as daemon:
            url = daemon.served_url()
            degraded = receiver.wait_for_event("monitor.degraded", timeout=30)
            detected = degraded.at - started
            wait_until(lambda: overloaded_gauge(url) == 1.0, "the gauge shows the overload")
            # Still overloaded a few seconds on: the episode is told once, not at every pass.
            wait_until(lambda: time.monotonic() > degraded.at + 3, "three seconds pass", 5)
            assert overloaded_gauge(url) == 1.0
            assert daemon.stop() == 0
        bodies = [r.json() for r in receiver.received]
    told = [b for b in bodies if b["details"].get("problem") == "overloaded"]
    print(f"overload detected within {detected:.1f} s of the start; told {len(told)} time(s)")
    [body] = told
    assert body["event"] == "monitor.degraded"
    details = body["details"]
    assert details["skipped_share"] > 0.2 or details["lateness_p95_seconds"] > 10
    assert details["slots"] >= 5 and details["window_seconds"] == 10
    assert "cannot keep up" in body["summary"]
