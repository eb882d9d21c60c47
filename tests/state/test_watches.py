"""What a watched package's state is, and how an upstream run's failures split against its
baseline (``state/watches.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.state.watches import (
    BASELINE_FAILING,
    BREAKS,
    CANNOT_INSTALL,
    OK,
    POLLS_FAILING,
    UNTESTED,
    PackageView,
    ReleaseRun,
    ReleaseTested,
    _releases,
    _state,
    compared,
    lines_tested,
    release_of,
)
from onwatch.store import PollSummary
from records import T0, make_run

POLL = PollSummary("deps", "lib", "2.0", T0, T0, 0, None)


def result(nodeid: str, outcome: Outcome) -> TestResult:
    return TestResult(nodeid=nodeid, outcome=outcome, phase="call", duration=0.1)


def release(
    version: str, previous: str | None, minute: int, *failing: str, status: RunStatus | None = None
) -> Run:
    results = tuple(
        result(name, Outcome.FAILED if name in failing else Outcome.PASSED) for name in "abc"
    )
    detail = {"watch": "deps", "upstream": {"package": "lib", "version": version}}
    run = make_run(
        minute=minute,
        status=status or (RunStatus.FAILED if failing else RunStatus.PASSED),
        results=results,
        trigger=Trigger.UPSTREAM,
        trigger_detail={**detail, "previous": previous},
    )
    return run


def judged(*runs: Run) -> list[tuple[str, list[ReleaseRun]]]:
    """Return the runs (newest first) grouped by release, each against its baseline."""
    newest = sorted(runs, key=lambda run: run.started_at, reverse=True)
    pairs = [(run, release_of(run)) for run in newest]
    return _releases(
        [(run, tested) for run, tested in pairs if tested is not None],
        {run.id: list(run.results) for run in runs},
    )


def test_a_failure_is_new_only_when_the_baseline_passed_it() -> None:
    found = judged(release("1.0", None, 0, "a"), release("1.1", "1.0", 5, "a", "b"))

    assert [(v, r.new, r.known) for v, [r] in found] == [
        ("1.1", ("b",), ("a",)),
        ("1.0", (), ("a",)),
    ]
    assert _state(POLL, found) == BREAKS


def test_without_a_run_of_the_previous_release_every_failure_is_new() -> None:
    run = release("1.1", "1.0", 5, "a")
    tested = release_of(run)
    assert tested is not None

    found = compared(run, tested, run.results, None, [])

    assert (found.new, found.known, found.broke) == (("a",), (), True)


def test_the_same_failures_as_a_failing_baseline_say_baseline_failing_not_breaks() -> None:
    found = judged(release("1.0", None, 0, "a"), release("1.1", "1.0", 5, "a"))

    assert _state(POLL, found) == BASELINE_FAILING
    assert _state(POLL, judged(release("1.0", None, 0, "a"))) == BASELINE_FAILING


def test_a_run_that_errors_where_its_baseline_passed_breaks() -> None:
    errored = replace(release("1.1", "1.0", 5, status=RunStatus.ERROR), results=(), error="boom")

    assert _state(POLL, judged(release("1.0", None, 0), errored)) == BREAKS


def test_an_environment_that_cannot_be_built_is_cannot_install_not_a_breakage() -> None:
    refused = replace(
        release("1.1", "1.0", 5, status=RunStatus.ERROR),
        results=(),
        error="cannot build the environment of lib 1.1: No matching distribution found",
    )
    found = judged(release("1.0", None, 0), refused)

    assert _state(POLL, found) == CANNOT_INSTALL
    assert not found[0][1][0].broke
    said = release("1.1", "1.0", 5, status=RunStatus.ERROR)
    detail = {**said.trigger_detail, "verdict": "install_failed"}
    said = replace(said, results=(), trigger_detail=detail)
    assert _state(POLL, judged(release("1.0", None, 0), said)) == CANNOT_INSTALL


def test_failing_polls_outrank_everything_and_nothing_tested_is_said() -> None:
    found = judged(release("1.0", None, 0), release("1.1", "1.0", 5, "b"))

    assert _state(replace(POLL, failures=2), found) == POLLS_FAILING
    assert _state(POLL, []) == UNTESTED
    assert _state(POLL, judged(release("1.0", None, 0), release("1.1", "1.0", 5))) == OK


def test_a_run_without_a_release_in_its_detail_is_no_release_run() -> None:
    assert release_of(make_run(trigger=Trigger.UPSTREAM, trigger_detail={})) is None
    assert release_of(release("1.0", None, 0)) == ReleaseTested("deps", "lib", "1.0", None)


def test_the_baseline_is_the_latest_earlier_run_of_the_same_check() -> None:
    old = release("1.0", None, 0, "a")
    retested = release("1.0", None, 3)
    later = replace(release("1.1", "1.0", 5, "a"), started_at=T0 + timedelta(minutes=5))

    found = judged(old, retested, later)

    assert found[0][1][0].baseline_id == retested.id
    assert found[0][1][0].new == ("a",)


def test_the_latest_tested_release_is_told_per_line() -> None:
    versions = ["2.0.3", "1.26.18", "1.26.17", "2.0.2", "not-a-version"]

    assert lines_tested("1.26.16", versions) == [("1.26", "1.26.18"), ("latest", "2.0.3")]
    assert lines_tested("2.0.2", versions) == [("2.0", "2.0.3")]
    assert lines_tested("3.1", versions) == [("latest", "2.0.3")]
    assert lines_tested(None, []) == []


def test_the_pinned_lines_last_release_names_the_line_shown() -> None:
    releases = judged(
        release("1.26.17", "1.26.16", 0),
        release("2.0.0", "1.26.17", 1),
        release("1.26.18", "1.26.17", 2),
    )
    view = PackageView("deps", "lib", "2.0.0", "2.0.0", OK, POLL, releases)
    assert view.latest_tested == [("2.0", "2.0.0")]  # the latest line's baseline alone
    view = replace(view, on_pinned_line="1.26.18")
    assert view.latest_tested == [("1.26", "1.26.18"), ("latest", "2.0.0")]


def test_the_watchers_own_verdict_comes_before_the_runs() -> None:
    """A release the watcher cannot install leaves no run: its saved state still shows; the
    worse of the watcher's verdict and the runs' is shown."""
    assert _state(replace(POLL, state="cannot-install", reason="1.1: 403"), []) == CANNOT_INSTALL
    assert _state(replace(POLL, state="baseline-failing"), []) == BASELINE_FAILING
    passing = judged(release("2.0", "1.0", 0))
    assert _state(replace(POLL, state="breaks"), passing) == BREAKS
    assert _state(POLL, passing) == OK  # "ok" is left to the runs
    broken = judged(release("1.0", None, 0), release("1.1", "1.0", 5, "a"))
    assert _state(replace(POLL, state="baseline-failing"), broken) == BREAKS
