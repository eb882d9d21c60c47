"""Alerting end to end: a real daemon, real failing runs, a real webhook receiver.

One smoke test per path: an incident opened and resolved, and one held by a silence. What the
engine decides (thresholds, reminders, silences, restarts, database outages) is tested with
fakes in test_engine.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import Daemon
from receivers import HttpReceiver
from suites import make_project

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def project(root: Path, receiver: HttpReceiver, **check: object) -> Path:
    return make_project(
        root,
        {
            "shop": {
                "tests": ["switch"],
                "every": "1s",
                "env": {"SWITCH_FILE": str(root / "broken")},
                "notify": ["hook"],
                **check,
            }
        },
        settings={"max_jitter": "1ms", "base_url": "https://onwatch.example.com"},
        suites=("switch",),
        channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
    )


def events(receiver: HttpReceiver) -> list[str]:
    return [r.json()["event"] for r in receiver.received]


def test_an_outage_is_notified_once_when_it_opens_and_once_when_it_ends(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    config = project(tmp_path, receiver)
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 1)
        (tmp_path / "broken").write_text("payment provider answered 502")
        [opened] = receiver.wait_for(1, timeout=20)
        daemon.wait_for(lambda d: sum(r["status"] == "failed" for r in d.runs()) >= 4)
        (tmp_path / "broken").unlink()
        resolved = receiver.wait_for(2, timeout=20)[1]
        daemon.stop()
    body = opened.json()
    assert body["version"] == 1 and body["event"] == "incident.opened"
    assert body["check"] == "shop" and body["failing_runs"] == 2
    assert body["summary"] == "shop is failing: 1 of 2 tests failed"
    assert body["failing_tests"] == [
        {
            "nodeid": "switch/test_switch.py::test_switched",
            "message": "AssertionError: payment provider answered 502",
        }
    ]
    assert body["run_url"] == f"https://onwatch.example.com/runs/{body['run_id']}"
    assert opened.headers["idempotency-key"] == body["key"]
    after = resolved.json()
    assert after["event"] == "incident.resolved" and after["key"] != body["key"]
    assert after["outage_seconds"] > 2 and after["summary"].startswith("shop recovered after")
    assert events(receiver) == ["incident.opened", "incident.resolved"]  # no storm


def test_a_silenced_check_is_recorded_but_notified_only_when_the_silence_ends(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    config = project(tmp_path, receiver, alert_after=1)
    silence = subprocess.run(
        [
            sys.executable,
            "-m",
            "onwatch",
            "-c",
            str(config),
            "silence",
            "shop",
            "--for",
            "7s",
            "--reason",
            "deploying",
        ],
        capture_output=True,
        text=True,
    )
    assert silence.returncode == 0, silence.stderr
    assert "silenced shop until" in silence.stdout and "deploying" in silence.stdout
    (tmp_path / "broken").write_text("maintenance page")
    started = time.monotonic()
    with Daemon(config) as daemon:
        # The first failing run opens the incident; the silence (7 s, longer than a slow
        # start-up and a run take) holds its alert back.
        daemon.wait_for(lambda d: sum(r["status"] == "failed" for r in d.runs()) >= 1)
        assert receiver.received == []  # the incident is open, its alert held
        [opened] = receiver.wait_for(1, timeout=20)
        daemon.stop()
    assert opened.at - started >= 6.5
    assert opened.json()["event"] == "incident.opened"


def test_notify_test_sends_a_message_and_reports_a_refusal(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    config = project(tmp_path, receiver)

    def notify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onwatch", "-c", str(config), "notify", "test", "hook"],
            capture_output=True,
            text=True,
        )

    done = notify()
    assert done.returncode == 0 and done.stdout.strip() == "hook: sent"
    assert events(receiver) == ["test"]
    receiver.behaviour.status = 400
    refused = notify()
    assert refused.returncode == 1
    assert "hook: NOT sent (permanent error)" in refused.stderr and "400" in refused.stderr
