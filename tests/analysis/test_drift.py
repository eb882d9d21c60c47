"""Selection drift: runs that test nothing, or far less than usual, are errors."""

from __future__ import annotations

from dataclasses import replace

from onwatch.analysis.drift import with_drift
from onwatch.model import Outcome, RunStatus, TestResult
from records import make_run, passed_results


def skipped(count: int) -> tuple[TestResult, ...]:
    return tuple(
        TestResult(nodeid=f"t.py::test_{i}", outcome=Outcome.SKIPPED, phase="setup", duration=0)
        for i in range(count)
    )


def test_a_run_whose_tests_were_all_skipped_is_an_error() -> None:
    run = with_drift(make_run(results=skipped(4)), [], 0.5)
    assert run.status is RunStatus.ERROR
    assert run.error is not None and "every test was skipped (4 of 4)" in run.error


def test_a_run_collecting_under_half_its_usual_count_is_an_error() -> None:
    run = make_run(results=passed_results(4))
    assert run.collected == 4
    drifted = with_drift(run, [10, 11, 10, 12], 0.5)
    assert drifted.status is RunStatus.ERROR
    assert drifted.error is not None and "collected 4 tests" in drifted.error
    assert "median of 10.5" in drifted.error


def test_normal_variation_short_history_and_a_zero_ratio_leave_a_run_alone() -> None:
    run = make_run(results=passed_results(4))
    assert with_drift(run, [6, 7, 6], 0.5) is run
    assert with_drift(run, [100, 100], 0.5) is run  # too little history to judge
    assert with_drift(run, [100, 100, 100], 0) is run  # turned off


def test_a_run_that_already_errored_keeps_its_own_reason() -> None:
    run = replace(make_run(results=skipped(2)), status=RunStatus.TIMEOUT, error="timed out")
    assert with_drift(run, [], 0.5) is run
