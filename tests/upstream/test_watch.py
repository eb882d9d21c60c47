"""The upstream watch end to end: a real pypiserver, real venvs, real runs, a real webhook.

``demo-lib`` 1.0 greets with ``greet(name)``; 1.1 breaks that API (``greet(name, greeting)``);
1.2rc1 is a pre-release. The watched check's suite calls ``greet("bob")``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import Daemon
from receivers import HttpReceiver
from upstream.indexes import Shelf, start_pypiserver, watch_check

pytestmark = pytest.mark.e2e

GREET = {
    "1.0": "def greet(name):\n    return 'hello ' + name\n",
    "1.1": "def greet(name, greeting):\n    return greeting + ' ' + name\n",
    "1.2rc1": "def greet(name, greeting='hello'):\n    return greeting + ' ' + name\n",
}
SUITE = """\
import demo_lib


def test_greets_by_name():
    assert demo_lib.greet("bob") == "hello bob"


def test_needs_nothing_of_the_library():
    assert demo_lib.__name__ == "demo_lib"
"""


def publish(shelf: Shelf, package: str, version: str) -> None:
    module = package.replace("-", "_")
    shelf.publish(package, version, modules={f"{module}/__init__.py": GREET[version]})


def project(root: Path, package: str, index: str, hook: str, **watch: Any) -> Path:
    """Write a project whose check imports ``package`` and a watch on it; return the config."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    module = package.replace("-", "_")
    (root / "tests" / "test_greet.py").write_text(SUITE.replace("demo_lib", module))
    settings = {"alert_after": 2, "every": "1h", **watch}
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    config = root / "onwatch.toml"
    config.write_text(
        '[onwatch]\nlisten = "127.0.0.1:0"\nnotify = ["hook"]\n\n'
        '[checks.greeting]\ntests = ["tests"]\nevery = "1h"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{hook}/hook"\n\n'
        f'[watch.libs]\npackages = ["{package}"]\nchecks = ["greeting"]\n'
        f'index = "{index}/"\n{lines}\n'
    )
    return config


def status(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def events(receiver: HttpReceiver) -> list[str]:
    return [r.json()["event"] for r in receiver.received]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def test_a_breaking_release_is_tested_reported_and_alerted_once(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    package = "demo-lib"
    # An index of its own: it is stopped part way, and no other test publishes into it.
    shelf = Shelf(tmp_path / "packages")
    shelf.folder.mkdir()
    home = tmp_path / "index"
    home.mkdir()
    server = start_pypiserver(shelf.folder, home)
    server.wait_until_ready()
    try:
        publish(shelf, package, "1.0")
        config = project(tmp_path / "project", package, server.url, receiver.url)

        # First poll: 1.0 is the baseline, tested so that later releases have a comparison.
        code, report = watch_check(config)
        assert code == 0
        assert report["packages"] == [
            {
                "package": package,
                "previous": None,
                "latest": "1.0",
                "new": ["1.0"],
                "error": None,
                "waiting": [],
                "baseline": "1.0",
                "state": "ok",
            }
        ]
        [run] = report["runs"]
        assert (run["check"], run["status"], run["trigger"]) == ("greeting", "passed", "upstream")
        assert run["upstream"] == {"package": package, "version": "1.0"}
        assert run["trigger_detail"]["dependencies"][package] == "1.0"
        assert "pytest" in run["trigger_detail"]["dependencies"]
        assert report["breakages"] == []

        # 1.1 breaks the API; 1.2rc1 is a pre-release and waits unless asked for.
        publish(shelf, package, "1.1")
        publish(shelf, package, "1.2rc1")
        code, report = watch_check(config)
        assert code == 1
        [polled] = report["packages"]
        assert (polled["previous"], polled["latest"], polled["new"]) == ("1.0", "1.2rc1", ["1.1"])
        [run] = report["runs"]
        assert run["status"] == "failed" and run["upstream"]["version"] == "1.1"
        assert run["trigger_detail"]["previous"] == "1.0"
        [broken] = report["breakages"]
        assert broken["summary"] == "demo-lib 1.1 breaks: 1 test (greeting)"
        [test] = broken["tests"]
        assert test["nodeid"] == "tests/test_greet.py::test_greets_by_name"
        assert len(test["fingerprint"]) == 12 and "greeting" in test["message"]
        alert = receiver.wait_for(1)[0].json()
        assert alert["event"] == "upstream.breaks"
        assert alert["summary"] == "demo-lib 1.1 breaks: 1 test (greeting)"
        assert alert["details"]["fingerprints"] == [test["fingerprint"]]

        # Nothing new: no run, and no second alert.
        code, report = watch_check(config)
        assert code == 0 and report["runs"] == [] and report["packages"][0]["new"] == []
        assert events(receiver) == ["upstream.breaks"]

        # Upstream runs never colour the check's own status: it has not run in production.
        [check] = status(config)["checks"]
        assert check["last_status"] is None and check["consecutive_failures"] == 0

        # With pre-releases on, 1.2rc1 is tested; it fixed the API again, so nothing breaks.
        config = project(tmp_path / "project", package, server.url, receiver.url, prereleases=True)
        code, report = watch_check(config)
        assert code == 0 and report["packages"][0]["new"] == ["1.2rc1"]
        assert report["runs"][0]["status"] == "passed" and report["breakages"] == []
    finally:
        server.stop()

    # The index is gone: each poll fails and says why; the second in a row alerts, once.
    code, report = watch_check(config)
    assert code == 1
    [polled] = report["packages"]
    assert "cannot reach the index" in polled["error"] and polled["new"] == []
    assert events(receiver) == ["upstream.breaks"]
    watch_check(config)
    watch_check(config)
    alert = receiver.wait_for(2)[1].json()
    assert alert["event"] == "upstream.poll_failing"
    assert events(receiver) == ["upstream.breaks", "upstream.poll_failing"]
    [watched] = status(config)["watches"]
    assert watched["version"] == "1.2rc1" and watched["failures"] == 3
    assert watched["last_ok_at"] is not None and "cannot reach" in watched["last_error"]


def test_onwatch_run_polls_its_watches_and_records_the_baseline(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str, receiver: HttpReceiver
) -> None:
    package = "demo-lib-daemon"
    publish(shelf, package, "1.0")
    config = project(tmp_path, package, pypiserver_url, receiver.url)
    daemon = Daemon(config)
    try:
        daemon.wait_for(
            lambda d: any(line.get("message") == "upstream run finished" for line in d.lines()),
            timeout=60,
        )
        metrics = httpx.get(f"{daemon.served_url()}/metrics", timeout=5).text
    finally:
        daemon.stop()
    labels = f'{{package="{package}",watch="libs"}}'
    assert f"onwatch_upstream_poll_failures{labels} 0.0" in metrics
    assert f"onwatch_upstream_last_success_timestamp_seconds{labels}" in metrics
    states = {
        line.split("state=")[1].split('"')[1]: line.rsplit(" ", 1)[1]
        for line in metrics.splitlines()
        if line.startswith("onwatch_upstream_state{") and f'package="{package}"' in line
    }
    assert states == {
        "ok": "1.0",
        "breaks": "0.0",
        "cannot-install": "0.0",
        "baseline-failing": "0.0",
        "polls-failing": "0.0",
    }
    [line] = [x for x in daemon.lines() if x.get("message") == "upstream run finished"]
    assert (line["package"], line["version"], line["status"]) == (package, "1.0", "passed")
    [watched] = status(config)["watches"]
    assert watched["version"] == "1.0" and watched["failures"] == 0


def test_an_environment_is_built_once_per_dependency_set(
    tmp_path: Path, shelf: Shelf, pypiserver_url: str
) -> None:
    from onwatch.upstream.venv import Environments

    package = "demo-lib-cached"
    publish(shelf, package, "1.0")
    environments = Environments(tmp_path / "environments")
    first = environments.ensure(f"{pypiserver_url}/", [], [f"{package}==1.0"])
    again = environments.ensure(f"{pypiserver_url}/", [], [f"{package}==1.0"])
    assert (first.reused, again.reused) == (False, True) and first.path == again.path
    imported = subprocess.run(
        [first.python, "-c", "import demo_lib_cached, onwatch; print(demo_lib_cached.greet('x'))"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    # The release comes from the environment, onwatch (the runner) from onwatch's own.
    assert imported.stdout.strip() == "hello x", imported.stderr
