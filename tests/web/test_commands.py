"""``onwatch token`` and ``onwatch serve`` as a user runs them: real subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from needs import free_port
from onwatch.web.auth import hash_token
from web.conftest import make_config, seed


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


def test_serve_shows_the_stored_history_until_sigterm(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    history = seed(config, datetime.now(UTC))
    address = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "onwatch", "-c", str(config.path), "serve", "--listen", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://{address}/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "onwatch serve did not answer"
                time.sleep(0.1)
        assert page.status_code == 200
        assert 'data-check="api"' in page.text
        run = httpx.get(f"http://{address}/api/v1/runs/{history.api_runs[-1].id}", timeout=5)
        assert run.json()["status"] == "failed"
        # No scheduler here: a run cannot be triggered, and /healthz reports the database only.
        assert httpx.get(f"http://{address}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"dashboard at http://{address}/" in out
