"""``onwatch token`` and ``onwatch serve`` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from needs import free_port
from onwatch.state.feed import REFRESH_SECONDS
from onwatch.web.auth import hash_token
from suites import make_project

pytestmark = pytest.mark.e2e


def onwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_token_prints_a_new_token_and_the_line_that_lets_it_in(tmp_path: Path) -> None:
    done = onwatch("token", "--role", "admin", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    token = re.search(r"^token: (\S+)$", done.stdout, re.M)
    assert token is not None
    assert len(token.group(1)) >= 40
    assert f'admin_tokens = ["{hash_token(token.group(1))}"]' in done.stdout
    again = onwatch("token", cwd=tmp_path)
    assert "read_tokens = [" in again.stdout
    assert token.group(1) not in again.stdout  # a new one each time


def start_serve(config: Path, address: str) -> subprocess.Popen[str]:
    """Start `onwatch serve` on ``address`` and return it once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "onwatch", "-c", str(config), "serve", "--listen", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://{address}/healthz", timeout=2)
            return server
        except httpx.TransportError:
            if server.poll() is not None:
                raise AssertionError(server.communicate()) from None
            assert time.monotonic() < deadline, "onwatch serve did not answer"
            time.sleep(0.1)


def stop_serve(server: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop `onwatch serve` as systemd does; return what it printed."""
    server.send_signal(signal.SIGTERM)
    return server.communicate(timeout=30)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(address: str) -> Samples:
    """Return every sample of /metrics, keyed by name and sorted labels."""
    text = httpx.get(f"http://{address}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def finished_at(done: subprocess.CompletedProcess[str]) -> dict[str, float]:
    """Return when each run printed by `onwatch once --json` finished, in epoch seconds."""
    runs = json.loads(done.stdout)["runs"]
    return {run["check"]: datetime.fromisoformat(run["finished_at"]).timestamp() for run in runs}


def test_serve_shows_the_stored_runs_and_their_metrics_and_follows_new_ones(
    tmp_path: Path,
) -> None:
    make_project(
        tmp_path,
        {
            "good": {"tests": ["many"], "every": "1h", "env": {"MANY_TESTS": "2"}},
            "bad": {"tests": ["outcomes"], "keyword": "test_fails or test_passes", "every": "1h"},
        },
        suites=("many", "outcomes"),
    )
    first = onwatch("once", "--json", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    address = f"127.0.0.1:{free_port()}"
    server = start_serve(tmp_path / "onwatch.toml", address)
    try:
        page = httpx.get(f"http://{address}/", timeout=5)
        assert page.status_code == 200
        assert 'data-check="good"' in page.text
        failed = next(run for run in json.loads(first.stdout)["runs"] if run["check"] == "bad")
        run = httpx.get(f"http://{address}/api/v1/runs/{failed['id']}", timeout=5)
        assert run.json()["status"] == "failed"
        # No scheduler here: /healthz reports the database only.
        assert httpx.get(f"http://{address}/healthz", timeout=5).status_code == 200

        samples = scrape(address)
        good, bad = (("check", "good"),), (("check", "bad"),)
        ran = finished_at(first)
        last_run = "onwatch_check_last_run_timestamp_seconds"
        assert samples[(last_run, good)] == pytest.approx(ran["good"], abs=1e-3)
        assert samples[(last_run, bad)] == pytest.approx(ran["bad"], abs=1e-3)
        assert samples[("onwatch_check_up", good)] == 1
        assert samples[("onwatch_check_up", bad)] == 0
        assert samples[("onwatch_check_last_status", (*bad, ("status", "failed")))] == 1
        assert samples[("onwatch_check_last_status", (*bad, ("status", "passed")))] == 0
        assert samples[("onwatch_check_consecutive_failures", bad)] == 1
        assert samples[("onwatch_check_incident_open", bad)] == 0
        assert samples[("onwatch_check_overdue", good)] == 0
        outcomes = {
            dict(labels)["test"]: dict(labels)["outcome"]
            for (name, labels) in samples
            if name == "onwatch_test_last_outcome" and dict(labels)["check"] == "good"
        }
        assert outcomes == {
            "many/test_many.py::test_trivial[0]": "passed",
            "many/test_many.py::test_trivial[1]": "passed",
        }

        # Recorded by another process while serve runs: it shows after a refresh.
        second = onwatch("once", "--json", "good", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        again = finished_at(second)["good"]
        deadline = time.monotonic() + REFRESH_SECONDS + 15
        while scrape(address)[(last_run, good)] != pytest.approx(again, abs=1e-3):
            assert time.monotonic() < deadline, "serve's /metrics did not follow the database"
            time.sleep(0.2)
    finally:
        out, err = stop_serve(server)
    assert server.returncode == 0, err
    assert f"dashboard at http://{address}/" in out
