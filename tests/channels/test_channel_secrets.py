"""Channel URLs and headers that name secrets (``${NAME}``), through ``onwatch notify test``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from receivers import Behaviour, HttpReceiver

pytestmark = pytest.mark.e2e

TOKEN = "hook-T0ken/with+odd=chars"


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def write_config(folder: Path, url: str, secrets: str = 'HOOK = "env:HOOK_TOKEN"') -> Path:
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    config = folder / "onwatch.toml"
    config.write_text(
        f"[onwatch]\nsecrets = {{ {secrets} }}\n\n"
        '[checks.api]\ntests = ["tests"]\nevery = "5m"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{url}"\n'
        'headers = { Authorization = "Bearer ${HOOK}" }\n'
    )
    return config


def notify_test(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "HOOK_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "notify", "test", "hook"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_it_fills_the_url_and_headers_with_the_secret_at_send_time(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    receiver.behaviour = Behaviour()
    before = len(receiver.received)
    config = write_config(tmp_path, f"{receiver.url}/hooks/${{HOOK}}")
    done = notify_test(config, HOOK_TOKEN=TOKEN)
    assert done.returncode == 0, done.stderr
    request = receiver.wait_for(before + 1)[-1]
    assert request.path == f"/hooks/{TOKEN}"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    # The secret lives in the environment only: the config file never held it.
    assert TOKEN not in config.read_text()


def test_a_secret_that_cannot_be_looked_up_fails_the_delivery_naming_it(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    before = len(receiver.received)
    config = write_config(tmp_path, f"{receiver.url}/hooks/${{HOOK}}")
    done = notify_test(config)
    assert done.returncode == 1
    assert "hook: NOT sent (temporary error)" in done.stderr
    assert "secret HOOK" in done.stderr and "HOOK_TOKEN is not set" in done.stderr
    assert len(receiver.received) == before


def test_a_refusal_that_quotes_the_url_is_masked(tmp_path: Path, receiver: HttpReceiver) -> None:
    receiver.behaviour = Behaviour(status=403, body=f"forbidden: /hooks/{TOKEN}".encode())
    try:
        config = write_config(tmp_path, f"{receiver.url}/hooks/${{HOOK}}")
        done = notify_test(config, HOOK_TOKEN=TOKEN)
    finally:
        receiver.behaviour = Behaviour()
    assert done.returncode == 1 and "403" in done.stderr
    assert TOKEN not in done.stderr and TOKEN not in done.stdout


def test_an_unknown_secret_name_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/hooks/${HOOKS}")
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{config}:10: notify.hook.url" in done.stderr
    assert "${HOOKS} names no secret of [onwatch] secrets (known: HOOK)" in done.stderr
