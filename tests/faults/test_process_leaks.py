"""No process outlives its run: daemons and background children of a test are killed with it.

Each test writes a suite whose test starts a daemon the classic way (``setsid`` between two
forks, so it belongs to no process of the run any more) and a plain background
``subprocess.Popen`` child it never waits for, then runs it with a real ``onwatch once``. Both
carry a marker from the check's ``env``; once ``onwatch once`` has returned, no process with that
marker may be left running, whether the run finished, timed out or was interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

MARKER_ENV = "LEAK_MARKER"
STARTED = 2  # processes each test of the suite leaves behind

SUITE = """
import os
import subprocess
import time


def leave_processes_behind():
    child = os.fork()
    if child == 0:  # the classic daemon: new session, fork again, the middle one exits
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "600"])
        os._exit(0)
    os.waitpid(child, 0)
    subprocess.Popen(["sleep", "600"])  # never waited for


def test_leaves_processes_behind():
    leave_processes_behind()
    time.sleep(float(os.environ.get("HANG_SECONDS", "0")))
"""


def marked(marker: str) -> list[str]:
    """Return the running processes (zombies aside) whose environment carries ``marker``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.Error:
            continue
    return found


def leaky_project(root: Path, marker: str, **check: object) -> None:
    make_project(
        root,
        {
            "leaky": {
                "tests": ["test_leaky.py"],
                "every": "1m",
                "env": {MARKER_ENV: marker, **check.pop("env", {})},  # type: ignore[dict-item]
                **check,
            }
        },
    )
    (root / "test_leaky.py").write_text(SUITE)


def once(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def marker() -> Iterator[str]:
    """A marker of this test's processes; whatever survives is killed afterwards."""
    value = uuid.uuid4().hex
    yield value
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == value:
                proc.kill()
        except psutil.Error:
            continue


def test_it_kills_a_daemon_and_a_background_child_when_the_run_finishes(
    tmp_path: Path, marker: str
) -> None:
    """Fault: a passing test leaves a setsid double-forked daemon and a Popen child running."""
    leaky_project(tmp_path, marker)
    with once(tmp_path) as process:
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert marked(marker) == []  # leftover processes: 0 of 2
    [run] = json.loads(out)["runs"]
    assert run["status"] == "passed"
    # The run says what onwatch had to kill: both sleeps, nothing else.
    assert run["error"].startswith("onwatch killed 2 processes the tests left running:")
    assert run["error"].count("sleep 600") == 2
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        [(stored,)] = db.execute("select error from runs").fetchall()
    assert stored == run["error"]


def test_it_kills_what_a_test_left_behind_when_the_run_times_out(
    tmp_path: Path, marker: str
) -> None:
    """Fault: the test starts a daemon and a Popen child, then hangs past the check's timeout."""
    leaky_project(tmp_path, marker, timeout="3s", env={"HANG_SECONDS": "600"})
    with once(tmp_path) as process:
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert marked(marker) == []  # leftover processes: 0 of 2
    [run] = json.loads(out)["runs"]
    assert run["status"] == "timeout"
    first, _, note = run["error"].partition("\n\n")
    assert first.startswith("run exceeded its timeout of 3s")  # the alert's line comes first
    # The child was killed with the test's process tree; the daemon had left the tree.
    assert note.startswith("onwatch killed 1 process the tests left running:")
    assert note.count("sleep 600") == 1


def test_it_kills_what_a_test_left_behind_when_onwatch_is_interrupted(
    tmp_path: Path, marker: str
) -> None:
    """Fault: Ctrl-C (SIGINT) reaches onwatch once while the leaking test hangs."""
    leaky_project(tmp_path, marker, env={"HANG_SECONDS": "600"})
    with once(tmp_path) as process:
        # Both sleeps and the hanging pytest process carry the marker.
        wait_until(lambda: len(marked(marker)) >= STARTED + 1, "the test started", timeout=30)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert marked(marker) == []  # leftover processes: 0 of 3
    [run] = json.loads(out)["runs"]
    assert run["error"].startswith("interrupted")
    # The child was killed with the test's process tree; the daemon had left the tree.
    assert run["error"].count("sleep 600") == 1


def test_a_sweep_with_nothing_left_behind_kills_nothing() -> None:
    """Fault: none; a sweep after a clean run, or a full scan, must leave every process alone.

    What the sweep costs is measured in bench/process_sweep.py.
    """
    from onwatch.runner.sweep import sweep

    before = set(psutil.pids())
    assert sweep(str(uuid.uuid4()), time.time()) == []
    assert sweep(str(uuid.uuid4())) == []
    assert before - set(psutil.pids()) <= _exited(before)


def _exited(pids: set[int]) -> set[int]:
    """Return the pids of ``pids`` that are gone now (exited by themselves, not swept)."""
    return {pid for pid in pids if not psutil.pid_exists(pid)}


def test_a_sweep_leaves_processes_of_other_runs_alone(tmp_path: Path) -> None:
    """Fault: a process of another run (another run id) is alive while a run is swept."""
    from onwatch.runner import RUN_ID_ENV
    from onwatch.runner.sweep import sweep

    since = time.time()
    other = subprocess.Popen(["sleep", "600"], env={**os.environ, RUN_ID_ENV: "another-run"})
    try:
        assert sweep("this-run", since) == []
        assert other.poll() is None
        assert sweep("another-run", since) == [f"pid {other.pid}: sleep 600"]
        assert other.wait(timeout=5) == -signal.SIGTERM
    finally:
        other.kill()
        other.wait()


def test_a_sweep_kills_a_child_that_was_given_an_empty_environment() -> None:
    """Fault: a marked process starts a child with ``env -i``, which carries no run id."""
    from onwatch.runner import RUN_ID_ENV
    from onwatch.runner.sweep import sweep

    since = time.time()
    parent = subprocess.Popen(
        ["sh", "-c", "env -i sleep 600 & wait"], env={**os.environ, RUN_ID_ENV: "bare-child"}
    )
    try:

        def bare_child() -> bool:
            # Until ``env -i`` has run ``sleep``, the forked child still has the shell's
            # environment: wait for the exec.
            children = psutil.Process(parent.pid).children()
            try:
                return len(children) == 1 and children[0].environ() == {}
            except psutil.Error:
                return False

        wait_until(bare_child, "the bare child started with an empty environment")
        [child] = psutil.Process(parent.pid).children()
        killed = sweep("bare-child", since)
        assert sorted(killed) == sorted(
            [f"pid {parent.pid}: sh -c env -i sleep 600 & wait", f"pid {child.pid}: sleep 600"]
        )
        parent.wait(timeout=5)
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait()


def test_the_next_onwatch_kills_what_a_run_of_a_killed_onwatch_left_behind(
    tmp_path: Path, marker: str
) -> None:
    """Fault: ``onwatch once`` is SIGKILLed while the leaking test hangs; its processes live on."""
    leaky_project(tmp_path, marker, env={"HANG_SECONDS": "600"})
    with once(tmp_path) as process:
        wait_until(lambda: len(marked(marker)) >= STARTED + 1, "the test started", timeout=30)
        process.kill()
        process.communicate(timeout=30)
    assert len(marked(marker)) == STARTED + 1  # pytest, the daemon and the child outlived it
    (tmp_path / "test_quick.py").write_text("def test_quick():\n    pass\n")
    with open(tmp_path / "onwatch.toml", "a") as config:
        config.write('\n[checks.quick]\ntests = ["test_quick.py"]\nevery = "1m"\n')
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert marked(marker) == []  # leftover processes: 0 of 3
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        [(error,)] = db.execute("""select error from runs where "check" = 'leaky'""").fetchall()
    assert error.startswith("interrupted")
    assert error.count("sleep 600") == 1  # the daemon; the child died with pytest's tree


def test_validate_kills_a_daemon_a_conftest_starts_while_collecting(
    tmp_path: Path, marker: str
) -> None:
    """Fault: a conftest starts a setsid double-forked daemon at import, during collection."""
    leaky_project(tmp_path, marker)
    (tmp_path / "conftest.py").write_text(
        SUITE.replace("def test_", "def unused_") + ("\nleave_processes_behind()\n")
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert marked(marker) == []  # leftover processes: 0 of 2
