"""The contract of ``Upstream``: releases handled, first sightings, polls and baselines."""

from __future__ import annotations

from datetime import UTC, timedelta

from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.store import PollRecord, PollSummary, Store
from records import T0, make_run


def poll(minute: int, ok: bool, error: str | None = None, package: str = "requests") -> PollRecord:
    return PollRecord(
        watch="deps",
        package=package,
        polled_at=T0 + timedelta(minutes=minute),
        ok=ok,
        kind=None if ok else "unreachable",
        error=error,
        latest="2.33.0" if ok else None,
        new_versions=["2.33.0"] if ok else [],
    )


def run_on(version: str, minute: int, check: str = "api") -> Run:
    """Return an upstream run of ``check`` on requests ``version``."""
    result = TestResult("t::a", Outcome.PASSED, "call", 0.1)
    return make_run(
        check=check,
        minute=minute,
        results=(result,),
        trigger=Trigger.UPSTREAM,
        trigger_detail={"upstream": {"package": "requests", "version": version}},
    )


def test_it_remembers_the_last_version_handled_per_watch_and_package(store: Store) -> None:
    assert store.upstream.last_version("deps", "requests") is None

    store.upstream.set_last_version("deps", "requests", "2.32.0", T0)
    store.upstream.set_last_version("deps", "requests", "2.33.0", T0 + timedelta(hours=1))
    store.upstream.set_last_version("other", "requests", "1.0", T0)

    assert store.upstream.last_version("deps", "requests") == "2.33.0"
    assert store.upstream.last_version("other", "requests") == "1.0"
    assert store.upstream.last_version("deps", "urllib3") is None


def test_a_release_keeps_the_time_it_was_first_seen(store: Store) -> None:
    first = store.upstream.first_seen("deps", "requests", ["2.32.0", "2.32.0"], T0)
    later = T0 + timedelta(hours=1)
    second = store.upstream.first_seen("deps", "requests", ["2.33.0", "2.32.0"], later)

    assert first == {"2.32.0": T0}
    assert second == {"2.33.0": later, "2.32.0": T0}
    assert second["2.32.0"].tzinfo is UTC
    assert store.upstream.first_seen("other", "requests", ["2.32.0"], later) == {"2.32.0": later}


def test_summaries_count_failed_polls_since_the_last_good_one(store: Store) -> None:
    store.upstream.set_last_version("deps", "requests", "2.33.0", T0)
    for record in (
        poll(0, False, "refused"),
        poll(1, True),
        poll(2, False, "timeout"),
        poll(3, False, "HTTP 503"),
        poll(4, True, package="urllib3"),
    ):
        store.upstream.record_poll(record)

    got = store.upstream.summaries("deps", ["requests", "urllib3", "idna"])

    assert got == [
        PollSummary(
            watch="deps",
            package="requests",
            version="2.33.0",
            last_poll_at=T0 + timedelta(minutes=3),
            last_ok_at=T0 + timedelta(minutes=1),
            failures=2,
            last_error="HTTP 503",
            last_kind="unreachable",
            state="polls-failing",
            reason="HTTP 503",
        ),
        PollSummary(
            "deps", "urllib3", None, T0 + timedelta(minutes=4), T0 + timedelta(minutes=4), 0, None
        ),
        PollSummary("deps", "idna", None, None, None, 0, None),
    ]


def test_summaries_count_every_poll_of_a_package_that_never_answered(store: Store) -> None:
    for minute in range(3):
        store.upstream.record_poll(poll(minute, False, f"refused {minute}"))

    [got] = store.upstream.summaries("deps", ["requests"])

    assert (got.failures, got.last_ok_at, got.last_error) == (3, None, "refused 2")


def test_the_streak_before_a_recovery_counts_the_failures_just_before_it(store: Store) -> None:
    assert store.upstream.streak_before_last_ok("deps", "requests") == (0, None)
    for record in (poll(0, False), poll(1, True), poll(2, False), poll(3, False)):
        store.upstream.record_poll(record)
    assert store.upstream.streak_before_last_ok("deps", "requests") == (0, None)  # still failing

    store.upstream.record_poll(poll(4, True))

    assert store.upstream.streak_before_last_ok("deps", "requests") == (
        2,
        T0 + timedelta(minutes=4),
    )
    assert store.upstream.streak_before_last_ok("deps", "requests", limit=2) == (
        1,
        T0 + timedelta(minutes=4),
    )


def test_the_baseline_is_the_latest_upstream_run_on_that_version_with_its_results(
    store: Store,
) -> None:
    older = run_on("2.32.0", minute=0)
    latest = run_on("2.32.0", minute=5)
    for run in (
        older,
        latest,
        run_on("2.33.0", minute=10),
        run_on("2.32.0", minute=15, check="web"),
        make_run(minute=20, status=RunStatus.FAILED),  # a scheduled run is no baseline
    ):
        store.runs.save_run(run)

    got = store.upstream.baseline_run("api", "requests", "2.32.0")

    assert got == latest
    assert got is not None and len(got.results) == 1
    assert store.upstream.baseline_run("api", "requests", "2.31.0") is None
    assert store.upstream.baseline_run("api", "urllib3", "2.32.0") is None


def test_the_baseline_is_never_a_run_that_did_not_execute_the_suite(store: Store) -> None:
    good = run_on("2.32.0", minute=0)
    store.runs.save_run(good)
    errored = make_run(
        minute=5,
        status=RunStatus.ERROR,
        trigger=Trigger.UPSTREAM,
        trigger_detail={"upstream": {"package": "requests", "version": "2.32.0"}},
    )
    store.runs.save_run(errored)

    assert store.upstream.baseline_run("api", "requests", "2.32.0") == good


def test_a_watch_state_is_kept_per_watch_and_package(store: Store) -> None:
    assert store.upstream.watch_state("deps", "requests") == {}
    first = {"baseline": "2.32.0", "state": "cannot-install", "failing": {"2.33.0": {}}}
    store.upstream.set_watch_state("deps", "requests", first, T0)
    store.upstream.set_watch_state("deps", "urllib3", {"state": "ok"}, T0)
    assert store.upstream.watch_state("deps", "requests") == first
    store.upstream.set_watch_state("deps", "requests", {"state": "ok"}, T0 + timedelta(hours=1))
    assert store.upstream.watch_state("deps", "requests") == {"state": "ok"}

    [summary] = store.upstream.summaries("deps", ["requests"])
    assert (summary.state, summary.baseline) == ("ok", None)
