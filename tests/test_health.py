"""The daemon's in-memory summary: what each recorded run changes, and what start-up seeds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from onwatch.alerting.rules import Incident
from onwatch.config import load_config
from onwatch.daemon.watchdog import Watchdog
from onwatch.daemon.wiring import _look_back
from onwatch.model import Outcome, RunStatus, TestResult, utcnow
from onwatch.state.health import Health, TestState
from onwatch.store.sql import SqlStore
from records import T0, make_run
from suites import make_project


def result(
    name: str, outcome: Outcome, duration: float = 0.5, *, attempt: int = 1, final: bool = True
) -> TestResult:
    return TestResult(
        nodeid=node(name),
        outcome=outcome,
        phase="call",
        duration=duration,
        attempt=attempt,
        final=final,
    )


def node(name: str) -> str:
    return f"tests/test_api.py::{name}"


def test_it_counts_final_results_by_outcome_and_not_earlier_attempts() -> None:
    health = Health(["api"])
    run = make_run(
        status=RunStatus.FAILED,
        results=(
            result("test_a", Outcome.PASSED),
            result("test_b", Outcome.FAILED, final=False),
            result("test_b", Outcome.FAILED, attempt=2),
            result("test_c", Outcome.FLAKY),
        ),
    )
    health.record(run)
    health.record(make_run(minute=1, results=(result("test_a", Outcome.PASSED),)))
    totals = health.snapshot().checks["api"].results_total
    assert dict(totals) == {"passed": 2, "failed": 1, "flaky": 1}
    assert dict(health.snapshot().checks["api"].runs_total) == {"failed": 1, "passed": 1}


def test_it_counts_runs_that_did_not_pass_in_a_row_until_one_passes() -> None:
    health = Health(["api"])
    statuses = [RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT]
    for minute, status in enumerate(statuses):
        health.record(make_run(status=status, minute=minute))
    assert health.snapshot().checks["api"].consecutive_failures == 3
    health.record(make_run(minute=3))
    assert health.snapshot().checks["api"].consecutive_failures == 0
    health.record(make_run(status=RunStatus.FAILED, minute=4))
    assert health.snapshot().checks["api"].consecutive_failures == 1


def test_it_keeps_each_tests_latest_outcome_duration_and_run_finish() -> None:
    health = Health(["api"])
    run = make_run(
        status=RunStatus.FAILED,
        duration=3.0,
        results=(
            result("test_a", Outcome.PASSED, 0.25),
            result("test_b", Outcome.FAILED, 1.0, final=False),
            result("test_b", Outcome.PASSED, 2.0, attempt=2),
        ),
    )
    health.record(run)
    finished = run.finished_at.timestamp()
    assert dict(health.snapshot().checks["api"].tests) == {
        node("test_a"): TestState("passed", 0.25, finished),
        node("test_b"): TestState("passed", 2.0, finished),
    }


def test_a_complete_run_replaces_the_checks_tests_so_removed_tests_go() -> None:
    health = Health(["api"])
    first = (result("test_a", Outcome.PASSED), result("test_old", Outcome.PASSED))
    health.record(make_run(results=first))
    health.record(make_run(minute=1, status=RunStatus.FAILED, results=first[:1]))
    assert set(health.snapshot().checks["api"].tests) == {node("test_a")}


def test_a_run_that_stopped_part_way_keeps_the_tests_it_did_not_reach() -> None:
    health = Health(["api"])
    both = (result("test_a", Outcome.PASSED), result("test_b", Outcome.PASSED))
    health.record(make_run(results=both))
    health.record(
        make_run(minute=1, status=RunStatus.TIMEOUT, results=(result("test_a", Outcome.TIMEOUT),))
    )
    tests = health.snapshot().checks["api"].tests
    assert tests[node("test_a")].outcome == "timeout"
    assert tests[node("test_b")].outcome == "passed"
    health.record(make_run(minute=2, status=RunStatus.ERROR))  # nothing collected
    assert set(health.snapshot().checks["api"].tests) == {node("test_a"), node("test_b")}


def test_an_older_run_recorded_late_is_counted_but_does_not_become_the_latest() -> None:
    health = Health(["api"])
    health.record(make_run(minute=5, results=(result("test_a", Outcome.PASSED),)))
    late = make_run(minute=1, status=RunStatus.FAILED, results=(result("test_a", Outcome.FAILED),))
    health.record(late)
    state = health.snapshot().checks["api"]
    assert state.last_status == "passed"
    assert state.consecutive_failures == 0
    assert state.tests[node("test_a")].outcome == "passed"
    assert dict(state.results_total) == {"passed": 1, "failed": 1}
    assert dict(state.runs_total) == {"passed": 1, "failed": 1}


def test_it_starts_from_the_stored_failures_tests_and_duration() -> None:
    health = Health(["api"])
    latest = make_run(
        status=RunStatus.FAILED, duration=7.5, results=(result("test_a", Outcome.FAILED),)
    )
    finished = latest.finished_at.timestamp()
    health.seed("api", finished, None, last_status="failed", consecutive_failures=4)
    health.seed_latest(latest)
    state = health.snapshot().checks["api"]
    assert state.consecutive_failures == 4
    assert state.last_duration == 7.5
    assert state.tests == {node("test_a"): TestState("failed", 0.5, finished)}
    health.record(make_run(status=RunStatus.ERROR, started_at=T0 + timedelta(hours=1)))
    assert health.snapshot().checks["api"].consecutive_failures == 5


def test_seeding_never_replaces_what_a_newer_run_recorded() -> None:
    health = Health(["api"])
    newer = make_run(minute=10, results=(result("test_a", Outcome.PASSED),))
    health.record(newer)
    older = make_run(status=RunStatus.FAILED, results=(result("test_a", Outcome.FAILED),))
    health.seed("api", older.finished_at.timestamp(), None, consecutive_failures=9)
    health.seed_latest(older)
    state = health.snapshot().checks["api"]
    assert state.consecutive_failures == 0
    assert state.tests[node("test_a")].outcome == "passed"
    assert state.last_duration == newer.duration


def test_a_newer_stored_run_replaces_the_tests_or_updates_those_it_reached() -> None:
    health = Health(["api"])
    first = make_run(results=(result("test_a", Outcome.PASSED), result("test_b", Outcome.PASSED)))
    health.seed_latest(first)
    stopped = make_run(
        minute=5, status=RunStatus.TIMEOUT, results=(result("test_a", Outcome.TIMEOUT),)
    )
    health.seed("api", stopped.finished_at.timestamp(), None, last_status="timeout")
    health.seed_latest(stopped)
    tests = health.snapshot().checks["api"].tests
    assert {name: test.outcome for name, test in tests.items()} == {
        node("test_a"): "timeout",
        node("test_b"): "passed",
    }
    whole = make_run(minute=10, results=(result("test_c", Outcome.PASSED),))
    health.seed_latest(whole)
    assert list(health.snapshot().checks["api"].tests) == [node("test_c")]
    version = health.version
    health.seed_latest(whole)  # the same run again: nothing for /metrics to render anew
    assert health.version == version


def test_it_tracks_whether_a_check_has_an_open_incident() -> None:
    health = Health(["api", "web"])
    assert not health.snapshot().checks["api"].incident_open
    health.set_incident("api", True)
    assert health.snapshot().checks["api"].incident_open
    assert not health.snapshot().checks["web"].incident_open
    health.set_incident("api", False)
    assert not health.snapshot().checks["api"].incident_open


def test_a_snapshot_stays_as_it_was_when_health_moves_on() -> None:
    health = Health(["api"])
    health.record(make_run(results=(result("test_a", Outcome.PASSED),)))
    before = health.snapshot()
    health.record(
        make_run(minute=1, status=RunStatus.FAILED, results=(result("test_a", Outcome.FAILED),))
    )
    assert before.checks["api"].tests[node("test_a")].outcome == "passed"
    assert dict(before.checks["api"].results_total) == {"passed": 1}
    assert before.checks["api"].consecutive_failures == 0


def test_failed_and_error_runs_in_a_row_count_as_consecutive_failures() -> None:
    health = Health(["api"])
    health.record(make_run(status=RunStatus.FAILED))
    health.record(make_run(minute=1, status=RunStatus.ERROR))
    assert health.snapshot().checks["api"].consecutive_failures == 2
    health.record(make_run(minute=2))
    assert health.snapshot().checks["api"].consecutive_failures == 0


def test_the_daemon_starts_from_the_stored_failures_tests_and_incidents(tmp_path: Path) -> None:
    config = load_config(
        make_project(
            tmp_path,
            {"api": {"tests": ["many"], "every": "1h"}, "web": {"tests": ["many"], "every": "1h"}},
            suites=("many",),
            settings={"database": "sqlite:///onwatch.db"},
        )
    )
    store = SqlStore(config.database_url)
    store.ensure_schema()
    store.runs.save_run(make_run(results=(result("test_a", Outcome.PASSED),)))
    for minute in (1, 2, 3):
        failing = make_run(
            minute=minute,
            status=RunStatus.FAILED,
            duration=2.5,
            results=(result("test_a", Outcome.FAILED), result("test_b", Outcome.PASSED)),
        )
        store.runs.save_run(failing)
    store.incidents.save(
        Incident("api", failing.started_at, failing.id, failing.id, 3, "api is failing")
    )
    health = Health(["api", "web"])
    try:
        watchdog = Watchdog(config, notify=lambda *a: None)
        _look_back(config, store, watchdog, health, store.runs, utcnow())
    finally:
        store.close()

    api = health.snapshot().checks["api"]
    assert api.last_status == "failed"
    assert api.last_duration == 2.5
    assert api.consecutive_failures == 3
    assert api.incident_open
    assert {name: test.outcome for name, test in api.tests.items()} == {
        node("test_a"): "failed",
        node("test_b"): "passed",
    }
    web = health.snapshot().checks["web"]
    assert (web.last_status, web.consecutive_failures, web.incident_open) == (None, 0, False)
    assert not web.tests
