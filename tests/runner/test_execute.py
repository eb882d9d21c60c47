"""Running checks as real pytest subprocesses over fixture suites that cover every outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from onwatch.config import load_config
from onwatch.model import Outcome, Run, RunStatus, TestResult
from onwatch.runner.execute import Runner
from suites import make_project
from waiting import wait_until


def run_check(root: Path, suite: str, **check: object) -> Run:
    path = make_project(root, {"c": {"tests": [suite], "every": "1m", **check}}, suites=(suite,))
    config = load_config(path)
    return Runner(config).execute("c", config.checks["c"])


def finals(run: Run) -> dict[str, TestResult]:
    return {r.nodeid.split("::")[-1]: r for r in run.final_results()}


@pytest.fixture(scope="module")
def outcomes_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("outcomes")
    return run_check(
        root,
        "outcomes",
        markers="monitor",
        retries=1,
        env={"FLAKY_STATE": str(root / "flaky-state")},
    )


@pytest.mark.e2e
def test_it_records_every_pytest_outcome(outcomes_run: Run) -> None:
    outcomes = {name: r.outcome for name, r in finals(outcomes_run).items()}
    assert outcomes == {
        "test_passes": Outcome.PASSED,
        "test_fails": Outcome.FAILED,
        "test_setup_error": Outcome.ERROR,
        "test_teardown_error": Outcome.ERROR,
        "test_skipped": Outcome.SKIPPED,
        "test_xfails": Outcome.XFAILED,
        "test_xpasses": Outcome.XPASSED,
        "test_flaky": Outcome.FLAKY,
        "test_param[1]": Outcome.PASSED,
        "test_param[2]": Outcome.PASSED,
        "test_uses_the_team_plugin": Outcome.PASSED,
    }
    assert outcomes_run.status is RunStatus.FAILED
    assert outcomes_run.collected == 11  # test_unmarked is deselected by -m monitor


@pytest.mark.e2e
def test_it_records_phase_error_type_message_and_output(outcomes_run: Run) -> None:
    by_name = finals(outcomes_run)
    fails = by_name["test_fails"]
    assert fails.phase == "call"
    assert fails.exception == "AssertionError"
    assert fails.message.startswith("AssertionError: arithmetic is broken")
    assert "assert (1 + 1) == 3" in fails.traceback
    assert "some output before failing" in fails.output
    setup = by_name["test_setup_error"]
    assert (setup.phase, setup.exception) == ("setup", "RuntimeError")
    assert "fixture could not connect" in setup.message
    assert by_name["test_teardown_error"].phase == "teardown"
    assert by_name["test_skipped"].message == "Skipped: not today"
    assert by_name["test_passes"].properties == (("latency_ms", 12),)


@pytest.mark.e2e
def test_it_retries_only_failed_tests_and_keeps_every_attempt(outcomes_run: Run) -> None:
    attempts: dict[str, list[tuple[int, Outcome, bool]]] = {}
    for r in outcomes_run.results:
        attempts.setdefault(r.nodeid.split("::")[-1], []).append((r.attempt, r.outcome, r.final))
    assert attempts["test_passes"] == [(1, Outcome.PASSED, True)]
    assert attempts["test_flaky"] == [(1, Outcome.FAILED, False), (2, Outcome.FLAKY, True)]
    assert attempts["test_fails"] == [(1, Outcome.FAILED, False), (2, Outcome.FAILED, True)]
    assert attempts["test_xfails"] == [(1, Outcome.XFAILED, True)]


@pytest.mark.e2e
def test_it_kills_the_whole_process_tree_on_timeout(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    started = time.monotonic()
    run = run_check(tmp_path, "hang", timeout="3s", env={"CHILD_PIDS_FILE": str(pids_file)})
    assert time.monotonic() - started < 10
    assert run.status is RunStatus.TIMEOUT
    assert run.error and "timeout of 3s" in run.error and "test_hangs" in run.error
    outcomes = {name: r.outcome for name, r in finals(run).items()}
    assert outcomes == {"test_quick": Outcome.PASSED, "test_hangs": Outcome.TIMEOUT}
    for pid in map(int, pids_file.read_text().split()):
        assert not _alive(pid), f"process {pid} outlived the run"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.e2e
def test_a_test_that_kills_pytest_is_a_run_error_that_keeps_earlier_results(
    tmp_path: Path,
) -> None:
    run = run_check(tmp_path, "selfkill")
    assert run.status is RunStatus.ERROR
    assert "killed by SIGKILL" in run.error
    assert "test_kills_its_process" in run.error
    by_name = finals(run)
    assert by_name["test_before"].outcome is Outcome.PASSED
    assert by_name["test_kills_its_process"].outcome is Outcome.ERROR


@pytest.mark.e2e
def test_a_conftest_import_error_is_a_run_error_naming_the_module(tmp_path: Path) -> None:
    run = run_check(tmp_path, "broken_conftest")
    assert run.status is RunStatus.ERROR
    assert "module_that_does_not_exist" in run.error


@pytest.mark.e2e
def test_a_collection_error_is_a_run_error_not_a_green_run(tmp_path: Path) -> None:
    run = run_check(tmp_path, "importerror")
    assert run.status is RunStatus.ERROR
    assert run.error.startswith("collection failed")
    assert "no_such_package" in run.error
    [result] = run.results
    assert (result.outcome, result.phase) == (Outcome.ERROR, "collect")


@pytest.mark.e2e
def test_an_empty_selection_is_a_run_error(tmp_path: Path) -> None:
    run = run_check(tmp_path, "outcomes", keyword="nothing_matches_this")
    assert run.status is RunStatus.ERROR
    assert run.collected == 0
    assert "collected no tests" in run.error


@pytest.mark.e2e
def test_the_check_env_reaches_the_tests_and_the_run_records_where_it_ran(tmp_path: Path) -> None:
    run = run_check(tmp_path, "slow", env={"SLOW_SECONDS": "0"})
    assert run.status is RunStatus.PASSED
    assert run.duration < 3  # the suite sleeps 3 s unless SLOW_SECONDS says otherwise
    assert run.host and run.version and len(run.config_digest) == 16


@pytest.mark.e2e
def test_the_timeout_covers_retries(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_check(tmp_path, "slow", retries=3, timeout="2s", env={"SLOW_SECONDS": "5"})
    assert time.monotonic() - started < 8
    assert run.status is RunStatus.TIMEOUT


@pytest.mark.e2e
def test_it_recovers_a_run_left_in_flight_by_a_dead_onwatch(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    path = make_project(
        tmp_path,
        {"c": {"tests": ["hang"], "every": "1m", "env": {"CHILD_PIDS_FILE": str(pids_file)}}},
        suites=("hang",),
    )
    script = (
        "import sys; from pathlib import Path; from onwatch.config import load_config;"
        "from onwatch.runner.execute import Runner;"
        "c = load_config(Path(sys.argv[1])); Runner(c).execute('c', c.checks['c'])"
    )
    owner = subprocess.Popen([sys.executable, "-c", script, str(path), "onwatch"])
    inflight = tmp_path / ".onwatch" / "inflight"

    def hanging() -> bool:
        events = b"".join(p.read_bytes() for p in inflight.glob("*.events"))
        return b"test_hangs" in events and pids_file.exists()

    try:
        wait_until(hanging, "the hanging test started", timeout=20)
    except AssertionError:
        owner.kill()
        raise
    os.kill(owner.pid, signal.SIGKILL)  # onwatch dies; its pytest process lives on
    owner.wait()
    [run] = Runner(load_config(path)).recover()
    assert run.status is RunStatus.ERROR
    assert run.error.startswith("interrupted")
    outcomes = {name: r.outcome for name, r in finals(run).items()}
    assert outcomes == {"test_quick": Outcome.PASSED, "test_hangs": Outcome.ERROR}
    pytest_pids = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path / "hang") in " ".join(p.info["cmdline"] or [])
    ]
    assert pytest_pids == [], "the orphaned pytest process was not killed"
    for pid in map(int, pids_file.read_text().split()):
        assert not _alive(pid), f"process {pid} started by the orphaned run outlived it"


@pytest.mark.e2e
def test_a_run_that_cannot_start_is_an_error_run_not_a_crash(tmp_path: Path) -> None:
    import dataclasses

    config = load_config(make_project(tmp_path, {"c": {"tests": ["."], "every": "1m"}}))
    settings = dataclasses.replace(config.settings, state_dir=str(tmp_path / "state"))
    gone = dataclasses.replace(config, base_dir=tmp_path / "gone", settings=settings)
    run = Runner(gone).execute("c", config.checks["c"])
    assert run.status is RunStatus.ERROR
    assert run.error is not None and run.error.startswith("onwatch could not start the run")
    assert "gone" in run.error


def _never_a_pid() -> int:
    """Return a process id no process can have: the kernel hands out ids below pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def _leave_in_flight(root: Path, events: bytes | None) -> tuple[Runner, str]:
    """Write the files a dead onwatch leaves for a run it had started; return a runner."""
    import json
    import uuid

    config = load_config(make_project(root, {"c": {"tests": ["."], "every": "1m"}}))
    inflight = config.state_dir / "inflight"
    inflight.mkdir(parents=True)
    run_id = str(uuid.uuid4())
    meta = {
        "id": run_id,
        "check": "c",
        "trigger": "schedule",
        "scheduled_for": "2026-03-01T10:00:00+00:00",
        "started_at": "2026-03-01T10:00:01+00:00",
        "config_digest": "0123456789abcdef",
        "timeout": 60,
        "selection": ".",
        "pid": _never_a_pid(),
        "detail": {},
    }
    (inflight / f"{run_id}.json").write_text(json.dumps(meta))
    if events is not None:
        (inflight / f"{run_id}.1.events").write_bytes(events)
    return Runner(config), run_id


def test_a_recovered_run_keeps_the_tests_its_truncated_events_file_holds(tmp_path: Path) -> None:
    dead = _never_a_pid()
    events = (
        f'{{"event":"start","pid":{dead},"attempt":1,"rootdir":"{tmp_path}"}}\n'
        '{"event":"collected","count":2}\n'
        '{"event":"begin","nodeid":"test_a.py::test_one"}\n'
        '{"event":"result","nodeid":"test_a.py::test_one","outcome":"passed","phase":"call",'
        '"duration":0.5,"attempt":1}\n'
        '{"event":"begin","nodeid":"test_a.py::test_two"}\n'
        '{"event":"result","nodeid":"test_a.py::te'  # the writer died here
    ).encode()
    runner, run_id = _leave_in_flight(tmp_path, events)
    [run] = runner.recover()
    assert (run.id, run.check, run.status) == (run_id, "c", RunStatus.ERROR)
    assert run.error == (
        "interrupted: onwatch stopped while running test_a.py::test_two (1 of 2 tests finished)"
    )
    outcomes = {r.nodeid: r.outcome for r in run.final_results()}
    assert outcomes == {"test_a.py::test_one": Outcome.PASSED, "test_a.py::test_two": Outcome.ERROR}
    assert run.scheduled_for is not None and run.collected == 2


def test_a_recovered_run_without_an_events_file_is_interrupted_with_no_results(
    tmp_path: Path,
) -> None:
    runner, run_id = _leave_in_flight(tmp_path, None)
    [run] = runner.recover()
    assert (run.id, run.status, run.error) == (
        run_id,
        RunStatus.ERROR,
        "interrupted: onwatch stopped",
    )
    assert (run.collected, run.results) == (None, ())
