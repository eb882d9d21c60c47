"""Verdicts other than "breaks": a release that cannot be installed, a baseline that cannot be
trusted, an index that cannot be polled. Real pypiservers, real pip, real runs, real webhooks.

Each test asserts the exit status of ``onwatch watch check``, the alerts received (count and
text), and the baseline after every step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from needs import free_port
from receivers import HttpReceiver
from upstream.indexes import Pypiserver, Shelf, start_pypiserver, watch_check

pytestmark = pytest.mark.e2e

GREET = {
    "1.0": "def greet(name):\n    return 'hello ' + name\n",
    "1.1": "def greet(name, greeting):\n    return greeting + ' ' + name\n",
    "1.2": "def greet(name, greeting='hello'):\n    return greeting + ' ' + name\n",
}
SUITE = """\
import {module}


def test_greets_by_name():
    assert {module}.greet("bob") == "hello bob"


def test_needs_nothing_of_the_library():
    assert {module}.__name__ == "{module}"
"""
USER, PASSWORD = "alice", "right-password-42"


def publish(shelf: Shelf, package: str, version: str) -> None:
    module = package.replace("-", "_")
    shelf.publish(package, version, modules={f"{module}/__init__.py": GREET[version]})


def project(
    root: Path, packages: list[str], index: str, hook: str, *, onwatch: str = "", **watch: Any
) -> Path:
    """Write a project whose check imports the first package, and a watch of ``packages``."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    module = packages[0].replace("-", "_")
    (root / "tests" / "test_greet.py").write_text(SUITE.format(module=module))
    settings = {"alert_after": 2, "every": "1h", **watch}
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    config = root / "onwatch.toml"
    config.write_text(
        f'[onwatch]\nlisten = "127.0.0.1:0"\nnotify = ["hook"]\n{onwatch}\n\n'
        '[checks.greeting]\ntests = ["tests"]\nevery = "1h"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{hook}/hook"\n\n'
        f'[watch.libs]\npackages = {json.dumps(packages)}\nchecks = ["greeting"]\n'
        f'index = "{index}"\n{lines}\n'
    )
    return config


def watched(config: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)["watches"]
    return found


def alerts(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.received]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


@pytest.fixture
def own_shelf(tmp_path: Path) -> Shelf:
    shelf = Shelf(tmp_path / "packages")
    shelf.folder.mkdir()
    return shelf


@contextmanager
def pypiserver(shelf: Shelf, home: Path, **options: Any) -> Iterator[Pypiserver]:
    home.mkdir()
    server = start_pypiserver(shelf.folder, home, **options)
    server.wait_until_ready()
    try:
        yield server
    finally:
        server.stop()


def test_a_release_whose_download_is_refused_is_told_once_retried_then_judged(
    tmp_path: Path, own_shelf: Shelf, receiver: HttpReceiver
) -> None:
    """Fault: the index lists releases but refuses their downloads (a revoked credential)."""
    package = "refused-lib"
    htpasswd = tmp_path / "htpasswd"
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    htpasswd.write_text(f"{USER}:{{SHA}}{digest}\n")
    with pypiserver(
        own_shelf, tmp_path / "index", htpasswd=htpasswd, authenticate="download"
    ) as server:
        root = tmp_path / "project"
        root.mkdir()
        secret = root / "index-password"
        secret.write_text(PASSWORD)
        index = server.url.replace("http://", f"http://{USER}:${{INDEX_PASSWORD}}@") + "/"
        config = project(
            root,
            [package],
            index,
            receiver.url,
            onwatch='secrets = { INDEX_PASSWORD = "file:index-password" }',
        )
        publish(own_shelf, package, "1.0")
        code, report = watch_check(config)
        assert code == 0 and report["packages"][0]["baseline"] == "1.0"

        # The credential is revoked, and 1.1 (which breaks the API) is published.
        secret.write_text("wrong-password-0")
        publish(own_shelf, package, "1.1")
        code, report = watch_check(config)
        assert code == 1
        [polled] = report["packages"]
        assert (polled["new"], polled["baseline"], polled["state"]) == (
            ["1.1"],
            "1.0",
            "cannot-install",
        )
        assert report["runs"] == [] and report["breakages"] == []
        [problem] = report["problems"]
        assert (problem["version"], problem["kind"]) == ("1.1", "install")
        [alert] = receiver.wait_for(1)
        told = alert.json()
        assert told["event"] == "upstream.install_failed"
        prefix = f"{package} 1.1 cannot be installed from {index}: "
        assert told["summary"].startswith(prefix), told["summary"]
        # The installer's own reason (pip's or uv's): the index answers 403 to the wrong password.
        assert "403" in told["summary"]
        assert "wrong-password-0" not in json.dumps(told)
        assert told["details"]["version"] == "1.1" and told["details"]["index"] == index

        # Every call tries again; nothing more is told, and the baseline stays.
        code, report = watch_check(config)
        assert code == 1 and report["packages"][0]["new"] == ["1.1"]
        assert report["packages"][0]["baseline"] == "1.0" and report["runs"] == []
        assert [a["event"] for a in alerts(receiver)] == ["upstream.install_failed"]
        [watch] = watched(config)
        assert (watch["state"], watch["baseline"], watch["version"]) == (
            "cannot-install",
            "1.0",
            "1.0",
        )
        assert watch["reason"].startswith("1.1: ")

        # The credential works again: 1.1 is tested and judged against 1.0.
        secret.write_text(PASSWORD)
        code, report = watch_check(config)
        assert code == 1
        [run] = report["runs"]
        assert run["upstream"]["version"] == "1.1" and run["status"] == "failed"
        [broken] = report["breakages"]
        assert broken["summary"] == f"{package} 1.1 breaks: 1 test (greeting)"
        assert broken["previous"] == "1.0"
        told_now = [a.json()["event"] for a in receiver.wait_for(3)]
        assert told_now == [
            "upstream.install_failed",
            "upstream.install_recovered",
            "upstream.breaks",
        ]
        recovered = alerts(receiver)[1]
        assert recovered["summary"] == (
            f"{package} 1.1 installs from {index} now (after 2 failed attempts); tested and judged"
        )
        assert report["packages"][0]["baseline"] == "1.1"
        assert report["packages"][0]["state"] == "breaks"

        # Nothing new afterwards: exit 0, nothing more told.
        code, report = watch_check(config)
        assert code == 0 and report["runs"] == [] and report["problems"] == []
        assert len(alerts(receiver)) == 3


def test_an_unbuildable_baseline_alerts_once_and_says_when_it_is_fixed(
    tmp_path: Path, own_shelf: Shelf, receiver: HttpReceiver
) -> None:
    """Fault: the product's pinned requirements conflict, so no environment can be built."""
    package = "pinned-lib"
    publish(own_shelf, package, "1.0")
    own_shelf.publish("pinned-base", "1.0")
    own_shelf.publish("pinned-base", "2.0")
    own_shelf.publish("pinned-plugin", "1.0", requires=["pinned-base>=2"])
    with pypiserver(own_shelf, tmp_path / "index") as server:
        root = tmp_path / "project"
        root.mkdir()
        requirements = root / "requirements.txt"
        requirements.write_text("pinned-base==1.0\npinned-plugin==1.0\n")
        index = server.url + "/"
        config = project(root, [package], index, receiver.url, requirements="requirements.txt")

        code, report = watch_check(config)
        assert code == 1  # installing failed
        [polled] = report["packages"]
        assert (polled["baseline"], polled["state"]) == (None, "baseline-failing")
        assert report["runs"] == [] and report["breakages"] == []
        [problem] = report["problems"]
        assert (problem["version"], problem["kind"]) == ("1.0", "baseline-install")
        [alert] = receiver.wait_for(1)
        told = alert.json()
        assert told["event"] == "upstream.baseline_failed"
        prefix = f"watch libs: the baseline {package} 1.0 cannot be installed from {index}: "
        assert told["summary"].startswith(prefix), told["summary"]
        assert "pinned-base" in told["summary"]

        # Still unbuildable: tried again, not told again; status says so.
        code, report = watch_check(config)
        assert code == 1 and report["packages"][0]["baseline"] is None
        assert [a["event"] for a in alerts(receiver)] == ["upstream.baseline_failed"]
        [watch] = watched(config)
        assert (watch["state"], watch["baseline"], watch["version"]) == (
            "baseline-failing",
            None,
            None,
        )
        assert "cannot be installed" in watch["reason"]

        # The pins are fixed: the baseline is built, passes, and that is told.
        requirements.write_text("pinned-base==2.0\npinned-plugin==1.0\n")
        code, report = watch_check(config)
        assert code == 0
        [run] = report["runs"]
        assert (
            run["status"] == "passed"
            and run["trigger_detail"]["dependencies"]["pinned-base"] == "2.0"
        )
        assert report["packages"][0]["baseline"] == "1.0"
        assert [a.json()["event"] for a in receiver.wait_for(2)] == [
            "upstream.baseline_failed",
            "upstream.baseline_recovered",
        ]
        assert alerts(receiver)[1]["summary"] == f"watch libs: the baseline {package} 1.0 passes"
        [watch] = watched(config)
        assert (watch["state"], watch["baseline"]) == ("ok", "1.0")


def test_a_baseline_whose_tests_fail_is_told_once_and_new_failures_still_reported(
    tmp_path: Path, own_shelf: Shelf, receiver: HttpReceiver
) -> None:
    """Fault: the product's suite already fails on the release it uses."""
    package = "failing-lib"
    publish(own_shelf, package, "1.1")  # the API the suite does not expect: 1 test fails
    with pypiserver(own_shelf, tmp_path / "index") as server:
        root = tmp_path / "project"
        config = project(root, [package], server.url + "/", receiver.url)
        code, report = watch_check(config)
        assert code == 0  # nothing new broke: reported and alerted, not a failed poll
        assert report["packages"][0]["baseline"] == "1.1"
        [problem] = report["problems"]
        assert problem["kind"] == "baseline"
        [alert] = receiver.wait_for(1)
        assert alert.json()["summary"] == (
            f"watch libs: the baseline {package} 1.1 fails 1 test on its own (greeting); "
            "they are left out of comparisons"
        )

        # 1.2 fixes the API: no breakage, the baseline passes again and that is told.
        publish(own_shelf, package, "1.2")
        code, report = watch_check(config)
        assert code == 0 and report["breakages"] == []
        assert report["packages"][0]["baseline"] == "1.2"
        assert [a.json()["event"] for a in receiver.wait_for(2)] == [
            "upstream.baseline_failed",
            "upstream.baseline_recovered",
        ]


class _Answer:
    """What the test server on a fixed port answers: a status and an HTML body."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body.encode()


@contextmanager
def answering(port: int, answer: _Answer) -> Iterator[None]:
    """Serve ``answer`` to every GET on 127.0.0.1:``port`` while the block runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


EMPTY_PAGE = (
    '<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0">'
    "</head><body></body></html>"
)


def test_four_packages_on_one_dead_index_give_one_alert_and_a_new_reason_is_told(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    """Fault: the index is unreachable, then refuses the credentials, then works again."""
    packages = ["dead-a", "dead-b", "dead-c", "dead-d"]
    port = free_port()
    index = f"http://127.0.0.1:{port}/simple/"
    config = project(tmp_path, packages, index, receiver.url)

    code, report = watch_check(config)
    assert code == 1 and [p["state"] for p in report["packages"]] == ["polls-failing"] * 4
    assert alerts(receiver) == []
    code, _ = watch_check(config)  # the second failure in a row: alert_after = 2
    code, _ = watch_check(config)
    [alert] = receiver.wait_for(1)
    told = alert.json()
    assert told["event"] == "upstream.poll_failing"
    assert told["details"]["packages"] == packages and told["details"]["kind"] == "unreachable"
    assert told["summary"].startswith(
        f"watch libs: 2 polls of {index} failed in a row (dead-a, dead-b, dead-c, dead-d); "
        "new releases go untested: "
    )
    [watch, *_] = watched(config)
    assert (watch["state"], watch["failures"]) == ("polls-failing", 3)

    # The index answers again, but refuses us: the new reason is told, once.
    with answering(port, _Answer(401, "no")):
        watch_check(config)
        watch_check(config)
    changed = receiver.wait_for(2)[1].json()
    assert changed["event"] == "upstream.poll_failing"
    assert changed["details"]["changed_from"] == "unreachable"
    assert changed["summary"].startswith(
        f"watch libs: polls of {index} still fail (dead-a, dead-b, dead-c, dead-d), "
        "now auth instead of unreachable: "
    )

    # It works: one notice for the four.
    with answering(port, _Answer(200, EMPTY_PAGE)):
        code, report = watch_check(config)
        assert code == 0 and [p["error"] for p in report["packages"]] == [None] * 4
        watch_check(config)
    back = receiver.wait_for(3)[2].json()
    assert back["event"] == "upstream.poll_recovered"
    assert back["summary"] == (
        f"watch libs: polls of {index} work again (dead-a, dead-b, dead-c, dead-d)"
    )
    assert len(alerts(receiver)) == 3


def test_the_daemon_retries_a_release_that_cannot_be_installed_after_1_2_4_then_6_polls() -> None:
    """Fault: a release keeps failing to install; the retries thin out to one in six polls."""
    from datetime import UTC, datetime, timedelta

    from onwatch.upstream.verdicts import PackageState

    every = 3600.0
    state = PackageState(baseline="1.0")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    tried: list[int] = []
    told = 0
    for poll in range(30):
        now = start + timedelta(seconds=poll * every)
        if state.retry_due("1.1", now):
            tried.append(poll)
            told += state.install_failed("1.1", "HTTP error 403", now, every)
        # What the store keeps survives a restart of the daemon.
        state = PackageState.from_json(state.to_json())
    assert tried == [0, 1, 3, 7, 13, 19, 25]
    assert told == 1 and state.failing["1.1"].attempts == 7
    assert state.state == "cannot-install" and state.reason == "1.1: HTTP error 403"


def test_the_daemon_waits_out_its_backoff_before_installing_a_release_again(
    tmp_path: Path, own_shelf: Shelf, receiver: HttpReceiver
) -> None:
    """Fault: the index refuses every download; the daemon's polls retry 1.1 ever less often."""
    from datetime import UTC, datetime

    from onwatch.config import load_config
    from onwatch.runner.execute import Runner
    from onwatch.store import open_store
    from onwatch.store.recorder import Recorder
    from onwatch.store.spool import Spool
    from onwatch.upstream.wiring import build_watcher
    from waiting import FakeClock

    package = "backoff-lib"
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{{SHA}}not-a-digest\n")
    publish(own_shelf, package, "1.1")
    with pypiserver(
        own_shelf, tmp_path / "index", htpasswd=htpasswd, authenticate="download"
    ) as server:
        config = load_config(project(tmp_path / "p", [package], server.url + "/", receiver.url))
        store = open_store(config.database_url)
        store.ensure_schema()
        try:
            # 1.0 was handled before the index started refusing downloads.
            clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
            store.upstream.set_last_version("libs", package, "1.0", clock())
            told: list[str] = []
            runner = Runner(config)
            recorder = Recorder(store, Spool(tmp_path / "spool"))
            watcher = build_watcher(
                config, runner, recorder, store, lambda n, _channels: told.append(n.event.value)
            )
            watcher.clock = clock
            every = config.watches["libs"].every
            tried = []
            for poll in range(8):
                report = watcher.check("libs", backoff=True)
                [polled] = report.packages
                assert polled.new + polled.waiting == ["1.1"] and polled.baseline == "1.0"
                if polled.new:
                    tried.append(poll)
                clock.advance(every)
            attempts = store.upstream.watch_state("libs", package)["failing"]["1.1"]["attempts"]
        finally:
            store.close()
    assert tried == [0, 1, 3, 7] and attempts == 4
    assert told == ["upstream.install_failed"]


def test_each_alert_and_its_recovery_share_a_series_and_alertmanager_labels() -> None:
    """Fault: an alert that its recovery cannot close would stay firing in Alertmanager."""
    from datetime import UTC, datetime

    from onwatch.channels.alertmanager import labels
    from onwatch.upstream import verdicts

    at = datetime(2026, 12, 1, tzinfo=UTC)
    index = "https://pkgs.example.com/simple/"
    pairs = [
        (
            verdicts.install_failed("libs", index, "urllib3", "2.0.3", "HTTP error 403"),
            verdicts.install_recovered("libs", index, "urllib3", "2.0.3", 2),
        ),
        (
            verdicts.baseline_failed("libs", "urllib3", "2.0.2", "does not run", at),
            verdicts.baseline_recovered("libs", "urllib3", "2.0.4"),
        ),
        (
            verdicts.polls_failing("libs", index, ["a", "b"], 3, "unreachable", "refused", "never"),
            verdicts.polls_recovered("libs", index, ["b"], at),
        ),
    ]
    for failed, recovered in pairs:
        assert failed.series is not None and failed.series == recovered.series
        assert labels(failed)["alertname"] == labels(recovered)["alertname"]
        assert labels(failed) == labels(recovered)
    assert pairs[0][0].summary == (
        "urllib3 2.0.3 cannot be installed from https://pkgs.example.com/simple/: HTTP error 403"
    )
