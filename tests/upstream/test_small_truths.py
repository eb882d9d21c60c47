"""Small truths of the upstream watch, each with real processes: ``onwatch watch check`` runs,
a real webhook receiver and, where a release is needed, a real pypiserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from receivers import HttpReceiver
from upstream.indexes import Shelf, watch_check
from waiting import wait_until

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


def write_project(
    root: Path, hook: str, watch: str, onwatch: str = "", package: str = "demo-lib"
) -> Path:
    """Write a project with one check on ``demo_lib`` and the watch ``libs``; return the config."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "test_greet.py").write_text(SUITE)
    config = root / "onwatch.toml"
    config.write_text(
        f'[onwatch]\nlisten = "127.0.0.1:0"\nnotify = ["hook"]\n{onwatch}\n'
        '[checks.greeting]\ntests = ["tests"]\nevery = "1h"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{hook}/hook"\n\n'
        f'[watch.libs]\npackages = ["{package}"]\nchecks = ["greeting"]\nevery = "1h"\n'
        f"{watch}\n"
    )
    return config


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "onwatch", "-c", str(config), "watch", "check", "libs", "--json"]


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


GATED = """\
import pathlib
import time

import gated_lib


def test_waits_at_the_gate():
    pathlib.Path({started!r}).write_text("started")
    deadline = time.monotonic() + 120
    while not pathlib.Path({gate!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gated_lib.__name__ == "gated_lib"
"""


def test_one_poll_of_a_watch_at_a_time_across_processes(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: `onwatch watch check` is started twice while a first one is testing a release."""
    shelf.publish("gated-lib", "1.0")
    started, gate = tmp_path / "started", tmp_path / "gate"
    root = tmp_path / "project"
    watch = f'index = "{pypiserver_url}/"\n'
    config = write_project(root, receiver.url, watch + 'busy_wait = "2m"\n', package="gated-lib")
    suite = GATED.format(started=str(started), gate=str(gate))
    (root / "tests" / "test_greet.py").write_text(suite)
    impatient = root / "impatient.toml"  # same folder, so the same state_dir and database
    impatient.write_text(config.read_text().replace('busy_wait = "2m"', 'busy_wait = "10ms"'))

    first = subprocess.Popen(command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    waiting: subprocess.Popen[bytes] | None = None
    try:
        wait_until(
            lambda: started.exists() or first.poll() is not None,
            "the first poll testing gated-lib 1.0",
            timeout=120,
        )
        assert first.poll() is None, first.communicate()

        # A second poll that may not wait gives up, says why, and records nothing.
        done = subprocess.run(command(impatient), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stdout == ""
        assert f"being tested by another onwatch process (pid {first.pid})" in done.stderr

        # A third one waits for the lock (it has the lock file open), then finds nothing new.
        waiting = subprocess.Popen(command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lock = str(root / ".onwatch" / "watch-locks" / "libs.lock")
        wait_until(
            lambda: lock in [f.path for f in psutil.Process(waiting.pid).open_files()],
            "the third poll waiting on the watch's lock",
            timeout=30,
        )
        gate.write_text("open")
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        tested = json.loads(out)
        [run] = tested["runs"]
        assert run["status"] == "passed" and run["upstream"]["version"] == "1.0"

        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        after = json.loads(out)
        assert after["runs"] == [] and after["packages"][0]["new"] == []
        assert after["packages"][0]["previous"] == "1.0"
    finally:
        gate.write_text("open")
        for process in (first, waiting):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert receiver.received == []


CONFTEST = """\
from conf_lib import greet
"""
GREETS = """\
def test_greets():
    from conf_lib import greet

    assert greet("bob") == "hello bob"
"""


def test_a_release_that_breaks_collection_is_a_breakage_with_a_fingerprint(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: a new release removes what the suite's conftest.py imports, so nothing collects."""
    shelf.publish(
        "conf-lib",
        "1.0",
        modules={"conf_lib/__init__.py": "def greet(n):\n    return 'hello ' + n\n"},
    )
    root = tmp_path / "project"
    config = write_project(root, receiver.url, f'index = "{pypiserver_url}/"\n', package="conf-lib")
    (root / "tests" / "test_greet.py").write_text(GREETS)
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    code, report = watch_check(config)
    assert code == 0 and report["runs"][0]["status"] == "passed"

    shelf.publish(
        "conf-lib", "2.0", modules={"conf_lib/__init__.py": "def hello(n):\n    return n\n"}
    )
    code, report = watch_check(config)
    assert code == 1
    [run] = report["runs"]
    assert run["status"] == "error" and run["results"] == []
    [broken] = report["breakages"]
    assert broken["summary"] == "conf-lib 2.0 breaks: 1 test (greeting)"
    [test] = broken["tests"]
    assert test["nodeid"] == "<collection>" and len(test["fingerprint"]) == 12
    assert "cannot import name 'greet'" in test["message"]
    [alert] = [r.json() for r in receiver.wait_for(1)]
    assert alert["event"] == "upstream.breaks"
    assert alert["details"]["fingerprints"] == [test["fingerprint"]]


PRE = """\
def test_greets():
    from pre_lib import greet

    assert greet("bob") == "hello bob"


def test_imports():
    import pre_lib

    assert pre_lib.__name__ == "pre_lib"
"""
GOOD = "def greet(n):\n    return 'hello ' + n\n"
BAD = "def greet(n, greeting):\n    return greeting + ' ' + n\n"


def test_a_final_release_that_still_breaks_what_its_pre_release_broke_is_told(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    """Fault: 2.0rc1 breaks a test and the final 2.0 ships with the same breakage."""
    shelf.publish("pre-lib", "1.0", modules={"pre_lib/__init__.py": GOOD})
    root = tmp_path / "project"
    watch = f'index = "{pypiserver_url}/"\nprereleases = true\n'
    config = write_project(root, receiver.url, watch, package="pre-lib")
    (root / "tests" / "test_greet.py").write_text(PRE)
    code, report = watch_check(config)
    assert code == 0 and report["runs"][0]["status"] == "passed"

    shelf.publish("pre-lib", "2.0rc1", modules={"pre_lib/__init__.py": BAD})
    code, report = watch_check(config)
    [broken] = report["breakages"]
    assert broken["summary"] == "pre-lib 2.0rc1 breaks: 1 test (greeting)"
    assert broken["still_as"] is None
    first = broken["tests"][0]

    shelf.publish("pre-lib", "2.0", modules={"pre_lib/__init__.py": BAD})
    code, report = watch_check(config)
    assert code == 1
    [broken] = report["breakages"]
    assert broken["summary"] == "pre-lib 2.0 still breaks: 1 test (greeting), as 2.0rc1 did"
    assert (broken["version"], broken["previous"], broken["still_as"]) == ("2.0", "1.0", "2.0rc1")
    assert broken["tests"] == [first]
    alerts = [r.json() for r in receiver.wait_for(2)]
    assert [(a["event"], a["details"]["version"]) for a in alerts] == [
        ("upstream.breaks", "2.0rc1"),
        ("upstream.breaks", "2.0"),
    ]
    assert alerts[1]["summary"] == broken["summary"]
    assert alerts[1]["details"]["still_as"] == "2.0rc1"

    # A final release that fixes it again breaks nothing and tells nothing more.
    shelf.publish("pre-lib", "2.0.1", modules={"pre_lib/__init__.py": GOOD})
    code, report = watch_check(config)
    assert code == 0 and report["breakages"] == []
    assert len(receiver.received) == 2
