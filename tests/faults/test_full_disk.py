"""A full disk: the database and the state folder on one small tmpfs, filled to the last byte.

Runs go on being executed (their events and output in memory), are held in memory while
neither the database nor the spool can be written, ``monitor.degraded`` reaches the channels,
``/healthz`` answers 503 saying so, and every run executed reaches the database within seconds
of space returning. No failed write leaves a ``*.tmp`` file behind.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from daemon import Daemon
from faults.conftest import healthz
from onwatch.config import load_config
from onwatch.model import RunStatus
from onwatch.runner.execute import Runner
from onwatch.store import open_store
from receivers import HttpReceiver
from suites import make_project
from waiting import wait_until

if TYPE_CHECKING:
    from faults.conftest import Tmpfs

pytestmark = pytest.mark.e2e

SUITE = "def test_it_answers():\n    assert True\n"


def project(root: Path, disk: Path, hook: str | None = None) -> Path:
    """Write a project whose database and state folder are on ``disk``, one check every 1 s."""
    (root / "suite").mkdir(parents=True)
    (root / "suite" / "test_app.py").write_text(SUITE)
    check: dict[str, Any] = {"tests": ["suite"], "every": "1s", "timeout": "30s"}
    channels = None
    if hook is not None:
        check["notify"] = ["hook"]
        channels = {"hook": {"type": "webhook", "url": hook}}
    settings = {
        "database": f"sqlite:///{disk / 'onwatch.db'}",
        "state_dir": str(disk / ".onwatch"),
        "max_jitter": "1ms",
        "drain_timeout": "20s",
    }
    return make_project(root, {"api": check}, settings, channels=channels)


def leftovers(disk: Path) -> list[str]:
    """Return the temporary files that failed writes left on the disk."""
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*.tmp"))


def stored_ids(database: Path) -> set[str]:
    """Return the ids of the runs in the database, read as another process would."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM runs")}


def executed(daemon: Daemon) -> list[str]:
    """Return the ids of the runs the daemon has finished, in order."""
    return [line["run_id"] for line in daemon.runs()]


def back_to_normal(line: dict[str, Any]) -> bool:
    """Tell whether a log line says that every run reaches the database again."""
    return str(line.get("message")).startswith("recording back to normal")


def test_a_run_whose_in_flight_folder_is_on_a_full_disk_runs_in_memory(
    tmp_path: Path, tmpfs: Tmpfs, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault: the state folder's disk is full before the run starts."""
    config = load_config(project(tmp_path / "project", tmpfs.path))
    runner = Runner(config)
    runner.inflight.mkdir(parents=True)
    tmpfs.fill()

    with caplog.at_level(logging.WARNING, logger="onwatch.runner"):
        run = runner.execute("api", config.checks["api"])

    assert run.status is RunStatus.PASSED, run.error
    assert [r.nodeid for r in run.final_results()] == ["suite/test_app.py::test_it_answers"]
    assert "cannot be recovered if onwatch crashes" in caplog.text
    assert list(runner.inflight.iterdir()) == []
    assert leftovers(tmpfs.path) == []


FILLING = """import os


def test_a_fills_the_disk():
    fd = os.open(os.environ["FILL_PATH"], os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(65536))
    except OSError:
        pass
    finally:
        os.close(fd)


def test_b_passes_after():
    print("y" * 200_000)


def test_c_fails_after():
    assert False, "x" * 5000
"""


def test_a_disk_that_fills_during_a_run_costs_it_none_of_its_results(
    tmp_path: Path, tmpfs: Tmpfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault: the disk holding the run's event file fills up while its tests run."""
    config = load_config(project(tmp_path / "project", tmpfs.path))
    (tmp_path / "project" / "suite" / "test_app.py").write_text(FILLING)
    monkeypatch.setenv("FILL_PATH", str(tmpfs.path / "fill"))

    run = Runner(config).execute("api", config.checks["api"])

    outcomes = {r.nodeid.rpartition("::")[2]: r.outcome.value for r in run.final_results()}
    assert outcomes == {
        "test_a_fills_the_disk": "passed",
        "test_b_passes_after": "passed",
        "test_c_fails_after": "failed",
    }
    assert run.status is RunStatus.FAILED, run.error


def test_once_on_a_full_disk_runs_the_check_and_says_the_run_is_not_kept(
    tmp_path: Path, tmpfs: Tmpfs
) -> None:
    """Fault: `onwatch once` with its database and state folder on a disk already full."""
    config = project(tmp_path / "project", tmpfs.path)
    made = open_store(f"sqlite:///{tmpfs.path / 'onwatch.db'}")
    made.ensure_schema()
    made.close()
    tmpfs.keep_full()

    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "-c", str(config), "once", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "passed"
    assert run["recorded"] == "in memory"
    assert "could be written neither to the database nor to" in done.stderr
    assert leftovers(tmpfs.path) == []


def test_runs_go_on_through_a_full_disk_and_all_reach_the_database_once_space_returns(
    tmp_path: Path, tmpfs: Tmpfs
) -> None:
    """Fault: the disk holding the database and the state folder fills up under `onwatch run`."""
    database = tmpfs.path / "onwatch.db"
    with HttpReceiver() as receiver:
        config = project(tmp_path / "project", tmpfs.path, f"{receiver.url}/hook")
        with Daemon(config) as daemon:
            url = daemon.served_url()
            daemon.wait_for(lambda d: len(executed(d)) >= 1 and stored_ids(database))
            tmpfs.keep_full()
            before = len(executed(daemon))

            degraded = degraded_by(receiver, "disk_full")
            daemon.wait_for(lambda d: len(executed(d)) >= before + 5, timeout=60)
            status, body = healthz(url)
            held_leftovers = leftovers(tmpfs.path)

            tmpfs.free()
            freed = time.monotonic()
            ran = executed(daemon)
            wait_until(
                lambda: set(ran) <= stored_ids(database),
                "every run executed while the disk was full is in the database",
                timeout=10,
            )
            written_after = time.monotonic() - freed
            daemon.wait_for(lambda d: any(back_to_normal(line) for line in d.lines()), timeout=10)
            recovered = notified(receiver, "monitor.recovered", timeout=10)
            assert daemon.stop() == 0
        final = executed(daemon)

    details = degraded["details"]
    assert "disk_full" in recovered["details"]["problems"]
    assert details["in_memory"] >= 1
    assert status == 503
    assert body["database"].startswith("in memory: ")
    assert body["recording"]["to"] == "memory"
    assert body["recording"]["problem"] == "disk_full"
    assert any("held in memory" in problem for problem in body["problems"])
    assert held_leftovers == []
    assert leftovers(tmpfs.path) == []
    assert len(ran) >= before + 5
    assert written_after < 10
    assert set(final) <= stored_ids(database)
    print(
        f"runs recorded / executed: {len(set(final) & stored_ids(database))}/{len(final)}; "
        f"{len(ran) - before} executed while full; all written {written_after:.1f} s after "
        "space returned"
    )


def degraded_by(receiver: HttpReceiver, problem: str, timeout: float = 60) -> Any:
    """Wait for the monitor.degraded notification whose details.problem is ``problem``."""
    return notified(receiver, "monitor.degraded", problem, timeout)


def notified(
    receiver: HttpReceiver, event: str, problem: str | None = None, timeout: float = 60
) -> Any:
    """Wait for the first ``event`` notification (with ``details.problem``, if given)."""
    found: list[Any] = []

    def arrived() -> bool:
        with receiver.lock:
            bodies = [r.json() for r in receiver.received]
        found[:] = [
            b
            for b in bodies
            if b.get("event") == event
            and (problem is None or b["details"].get("problem") == problem)
        ]
        return bool(found)

    wait_until(arrived, f"{event} with problem {problem}", timeout=timeout)
    return found[0]
