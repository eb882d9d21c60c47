"""Watching the watcher: /healthz, /metrics and the heartbeat of a real daemon."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon import Daemon
from receivers import HttpReceiver
from suites import make_project

pytestmark = pytest.mark.e2e


def served_url(daemon: Daemon) -> str:
    return daemon.served_url()


def test_the_daemon_serves_healthz_and_metrics(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "2"}}},
        settings={"max_jitter": "1ms"},
        suites=("many",),
    )
    with Daemon(config) as daemon:
        url = served_url(daemon)
        daemon.wait_for(lambda d: len(d.runs()) >= 1)
        health = httpx.get(f"{url}/healthz", timeout=5)
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        daemon.stop()
    assert health.status_code == 200 and health.json()["status"] == "ok"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    assert samples[("onwatch_up", ())] == 1
    assert samples[("onwatch_scheduler_last_tick_timestamp_seconds", ())] > time.time() - 30
    last_run = samples[("onwatch_check_last_run_timestamp_seconds", (("check", "api"),))]
    assert time.time() - 60 < last_run <= time.time()
    assert samples[("onwatch_check_up", (("check", "api"),))] == 1


def test_heartbeat_pings_stop_when_the_daemon_is_frozen_and_resume_after(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as receiver:
        config = make_project(
            tmp_path,
            {"api": {"tests": ["many"], "every": "1h", "env": {"MANY_TESTS": "1"}}},
            settings={"heartbeat_url": f"{receiver.url}/ping/secret-uuid", "heartbeat_every": "1s"},
            suites=("many",),
        )
        with Daemon(config) as daemon:
            receiver.wait_for(2, timeout=20)
            os.kill(daemon.process.pid, signal.SIGSTOP)
            try:
                # A window of about two pings (the loop pings at most once a second): the one
                # thing a test cannot wait for is nothing happening.
                time.sleep(0.2)  # a ping already on its way may still land
                frozen = len(receiver.received)
                time.sleep(2)
                assert len(receiver.received) == frozen  # a frozen onwatch pings no more
            finally:
                os.kill(daemon.process.pid, signal.SIGCONT)
            receiver.wait_for(frozen + 1, timeout=10)
            daemon.stop()
        body = receiver.received[0].json()
        assert body["status"] in ("ok", "degraded") and body["checks"] == 1
        assert receiver.received[0].method == "POST"
