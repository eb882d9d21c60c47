"""Small truths of the upstream watch, each with real processes: ``onwatch watch check`` runs,
a real webhook receiver and, where a release is needed, a real pypiserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receivers import HttpReceiver

pytestmark = pytest.mark.e2e

SUITE = """\
import demo_lib


def test_greets_by_name():
    assert demo_lib.greet("bob") == "hello bob"
"""


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def write_project(root: Path, hook: str, watch: str, onwatch: str = "") -> Path:
    """Write a project with one check on ``demo_lib`` and the watch ``libs``; return the config."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "test_greet.py").write_text(SUITE)
    config = root / "onwatch.toml"
    config.write_text(
        f'[onwatch]\nlisten = "127.0.0.1:0"\nnotify = ["hook"]\n{onwatch}\n'
        '[checks.greeting]\ntests = ["tests"]\nevery = "1h"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{hook}/hook"\n\n'
        '[watch.libs]\npackages = ["demo-lib"]\nchecks = ["greeting"]\nevery = "1h"\n'
        f"{watch}\n"
    )
    return config


def watch_check(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "watch", "check", "libs", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_missing_index_secret_is_named_and_alerts_after_alert_after(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    """Fault: the environment variables holding the index's and a mirror's passwords are unset."""
    config = write_project(
        tmp_path,
        receiver.url,
        'index = "http://user:${INDEX_TOKEN}@127.0.0.1:9/simple/"\n'
        'extra_indexes = ["http://user:${MIRROR_TOKEN}@127.0.0.1:9/mirror/"]\n'
        "alert_after = 2\n",
        'secrets = { INDEX_TOKEN = "env:SMALL_TRUTHS_INDEX", '
        'MIRROR_TOKEN = "env:SMALL_TRUTHS_MIRROR" }\n',
    )
    unset = ("SMALL_TRUTHS_INDEX", "SMALL_TRUTHS_MIRROR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    code, report = watch_check(config, env)
    assert code == 1
    [polled] = report["packages"]
    assert polled["state"] == "polls-failing" and polled["new"] == []
    assert "${INDEX_TOKEN}" in polled["error"] and "SMALL_TRUTHS_INDEX" in polled["error"]
    assert "${MIRROR_TOKEN}" in polled["error"] and "SMALL_TRUTHS_MIRROR" in polled["error"]
    assert report["runs"] == [] and receiver.received == []

    # The second failed poll in a row reaches alert_after: one alert that names the secrets.
    watch_check(config, env)
    [alert] = [r.json() for r in receiver.wait_for(1)]
    assert alert["event"] == "upstream.poll_failing"
    assert "${INDEX_TOKEN}" in json.dumps(alert) and "${MIRROR_TOKEN}" in json.dumps(alert)

    # With the index's secret set, only the mirror's is named.
    env["SMALL_TRUTHS_INDEX"] = "s3cret-index-token"
    code, report = watch_check(config, env)
    [polled] = report["packages"]
    assert "${MIRROR_TOKEN}" in polled["error"] and "${INDEX_TOKEN}" not in polled["error"]
