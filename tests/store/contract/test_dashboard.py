"""The contract of ``DashboardReads``: the bounded reads behind the pages and the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta

from onwatch.model import Artifact, Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.store import HourRow, PollRecord, RunPoint, RunRow, Store
from records import T0, make_run


def result(nodeid: str, outcome: Outcome, *, final: bool = True, attempt: int = 1) -> TestResult:
    return TestResult(
        nodeid=nodeid, outcome=outcome, phase="call", duration=0.5, final=final, attempt=attempt
    )


def upstream(minute: int, status: RunStatus = RunStatus.FAILED) -> Run:
    """Return a run of an upstream release: listed, but out of rates and charts."""
    detail = {"upstream": {"package": "requests", "version": "2.33.0"}}
    return make_run(minute=minute, status=status, trigger=Trigger.UPSTREAM, trigger_detail=detail)


def test_pass_rates_cover_each_window(store: Store) -> None:
    now = T0 + timedelta(days=10)
    for hours_ago, status in [(1, "passed"), (2, "failed"), (30, "passed"), (24 * 8, "failed")]:
        store.runs.save_run(
            make_run(started_at=now - timedelta(hours=hours_ago), status=RunStatus(status))
        )

    rates = store.dashboard.pass_rates(
        ["api", "never"], now, [timedelta(hours=24), timedelta(days=7), timedelta(days=30)]
    )

    assert rates == {"api": [(2, 1), (3, 2), (4, 2)], "never": [(0, 0), (0, 0), (0, 0)]}


def test_recent_runs_are_the_latest_per_check_oldest_first(store: Store) -> None:
    for minute in range(8):
        store.runs.save_run(make_run(minute=minute, results=(result("t::a", Outcome.PASSED),)))
    store.runs.save_run(make_run(check="web", minute=3))

    recent = store.dashboard.recent_points(["api", "web", "idle"], 5)

    assert [r.started_at.minute for r in recent["api"]] == [3, 4, 5, 6, 7]
    assert recent["api"][0].status == "passed"
    assert len(recent["web"]) == 1
    assert recent["idle"] == []


def test_final_results_leave_out_earlier_attempts(store: Store) -> None:
    run = make_run(
        status=RunStatus.PASSED,
        results=(
            result("t::a", Outcome.FAILED, final=False),
            result("t::a", Outcome.FLAKY, attempt=2),
            result("t::b", Outcome.PASSED),
        ),
    )
    store.runs.save_run(run)

    found = store.dashboard.final_results([run.id])

    assert sorted((r.nodeid, r.outcome.value) for _, r in found) == [
        ("t::a", "flaky"),
        ("t::b", "passed"),
    ]


def test_test_results_are_one_tests_final_results_in_the_range(store: Store) -> None:
    for minute in range(6):
        outcome = Outcome.FAILED if minute % 2 else Outcome.PASSED
        store.runs.save_run(make_run(minute=minute, results=(result("t::a", outcome),)))

    rows = store.dashboard.test_results(
        "api", "t::a", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=5)
    )

    assert [(r.started_at.minute, r.result.outcome.value) for r in rows] == [
        (4, "passed"),
        (3, "failed"),
        (2, "passed"),
        (1, "failed"),
    ]


def test_a_run_saved_twice_is_counted_once(store: Store) -> None:
    run = make_run(minute=5)
    assert store.runs.save_run(run)
    assert not store.runs.save_run(run)  # a spool replay of a run already stored

    assert store.dashboard.hours("api", T0, T0 + timedelta(hours=1)) == [HourRow(T0, 1, 1, 1.0)]
    assert store.dashboard.pass_rates(["api"], T0, [timedelta(hours=1)]) == {"api": [(1, 1)]}


def test_hours_count_each_run_in_the_hour_it_started(store: Store) -> None:
    store.runs.save_run(make_run(minute=5, duration=2.0))
    store.runs.save_run(make_run(minute=50, status=RunStatus.FAILED, duration=3.0))
    store.runs.save_run(make_run(minute=65, duration=1.0))
    store.runs.save_run(make_run(minute=130, duration=1.0))
    store.runs.save_run(make_run(check="web", minute=10))
    store.runs.save_run(upstream(minute=20))

    # From the hour of since (12:00, though since is 12:30) to before until (14:00).
    got = store.dashboard.hours("api", T0 + timedelta(minutes=30), T0 + timedelta(hours=2))

    assert [(h.hour, h.runs, h.passed, round(h.duration_sum, 3)) for h in got] == [
        (T0, 2, 1, 5.0),
        (T0 + timedelta(hours=1), 1, 1, 1.0),
    ]
    assert got[0].hour.tzinfo is UTC


def test_pass_rates_leave_out_upstream_runs(store: Store) -> None:
    store.runs.save_run(make_run(minute=1))
    store.runs.save_run(upstream(minute=2))

    rates = store.dashboard.pass_rates(["api"], T0 + timedelta(minutes=30), [timedelta(hours=1)])

    assert rates == {"api": [(1, 1)]}
    assert store.dashboard.pass_rates([], T0, [timedelta(hours=1)]) == {}
    assert store.dashboard.pass_rates(["api"], T0, []) == {}


def test_recent_points_and_durations_leave_out_upstream_runs(store: Store) -> None:
    watched = make_run(minute=1, duration=2.5)
    store.runs.save_run(watched)
    store.runs.save_run(upstream(minute=2))

    points = store.dashboard.recent_points(["api"], 10)
    durations = store.dashboard.durations("api", T0, T0 + timedelta(hours=1))

    assert points == {"api": [RunPoint(watched.id, "passed", watched.started_at, 2.5)]}
    assert durations == [(watched.started_at, 2.5)]


def test_durations_are_the_latest_in_the_range_oldest_first(store: Store) -> None:
    for minute in range(6):
        store.runs.save_run(make_run(minute=minute, duration=float(minute + 1)))

    got = store.dashboard.durations(
        "api", T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), limit=3
    )

    assert got == [(T0 + timedelta(minutes=m), float(m + 1)) for m in (2, 3, 4)]
    assert store.dashboard.durations("idle", T0, T0 + timedelta(hours=1)) == []


def test_runs_are_rows_newest_first_with_their_outcome_counts(store: Store) -> None:
    failed = make_run(
        minute=1,
        status=RunStatus.FAILED,
        results=(result("t::a", Outcome.FAILED), result("t::b", Outcome.PASSED)),
    )
    failed = replace(failed, error="1 of 2 tests failed")
    release = upstream(minute=2)
    passed = make_run(minute=0)
    for run in (passed, failed, release, make_run(check="web", minute=3)):
        store.runs.save_run(run)

    rows = store.dashboard.runs("api")

    assert [r.id for r in rows] == [release.id, failed.id, passed.id]
    assert rows[1] == RunRow(
        id=failed.id,
        check="api",
        status=RunStatus.FAILED,
        trigger=Trigger.MANUAL,
        started_at=failed.started_at,
        finished_at=failed.finished_at,
        duration=1.0,
        error="1 of 2 tests failed",
        collected=2,
        counts={"failed": 1, "passed": 1},
    )
    assert rows[0].trigger is Trigger.UPSTREAM
    assert [r.id for r in store.dashboard.runs("api", status="failed")] == [
        release.id,
        failed.id,
    ]
    assert [r.id for r in store.dashboard.runs(limit=1, offset=1)] == [release.id]
    window = store.dashboard.runs(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [r.id for r in window] == [release.id, failed.id]


def test_brief_results_leave_out_tracebacks_output_and_artifacts(store: Store) -> None:
    shot = Artifact(kind="screenshot", name="shot.png", size=10, sha256="ab" * 32)
    full = TestResult(
        nodeid="t::a",
        outcome=Outcome.FAILED,
        phase="call",
        duration=0.5,
        exception="AssertionError",
        message="boom",
        traceback="Traceback: ...",
        output="captured",
        properties=(("step", "login"),),
        category="product",
        artifacts=(shot,),
    )
    run = make_run(status=RunStatus.FAILED, results=(full,))
    store.runs.save_run(run)
    brief = replace(full, traceback=None, output=None, artifacts=())

    assert store.dashboard.final_results([run.id]) == [(run.id, brief)]
    assert store.dashboard.final_results([]) == []
    [row] = store.dashboard.test_results("api", "t::a", brief=True)
    assert (row.run_id, row.started_at, row.result) == (run.id, run.started_at, brief)
    [row] = store.dashboard.test_results("api", "t::a")
    assert row.result == full


def test_runs_and_test_results_can_leave_out_upstream_runs(store: Store) -> None:
    watched = make_run(minute=1, results=(result("t::a", Outcome.PASSED),))
    release = replace(upstream(minute=2), results=(result("t::a", Outcome.FAILED),))
    store.runs.save_run(watched)
    store.runs.save_run(release)

    rows = store.dashboard.runs("api", monitoring_only=True)
    history = store.dashboard.test_results("api", "t::a", monitoring_only=True)

    assert [r.id for r in rows] == [watched.id]
    assert [r.run_id for r in history] == [watched.id]
    assert [r.run_id for r in store.dashboard.test_results("api", "t::a")] == [
        release.id,
        watched.id,
    ]


def test_upstream_runs_are_the_latest_of_the_checks_without_results(store: Store) -> None:
    older = replace(upstream(minute=1), results=(result("t::a", Outcome.FAILED),))
    newer = upstream(minute=3)
    other = replace(upstream(minute=2), check="web")
    for run in (make_run(minute=4), older, newer, other, replace(upstream(5), check="cli")):
        store.runs.save_run(run)

    found = store.dashboard.upstream_runs(["api", "web"])

    assert [r.id for r in found] == [newer.id, other.id, older.id]
    assert found[2].results == ()
    assert found[2].trigger_detail == {"upstream": {"package": "requests", "version": "2.33.0"}}
    assert [r.id for r in store.dashboard.upstream_runs(["api", "web"], limit=1)] == [newer.id]
    assert store.dashboard.upstream_runs([]) == []


def test_latest_releases_are_what_the_last_good_poll_saw(store: Store) -> None:
    def poll(minute: int, ok: bool, latest: str | None) -> PollRecord:
        at = T0 + timedelta(minutes=minute)
        return PollRecord("deps", "requests", at, ok, latest=latest)

    store.upstream.record_poll(poll(1, True, "2.32.0"))
    store.upstream.record_poll(poll(2, True, "2.33.0"))
    store.upstream.record_poll(poll(3, False, None))
    store.upstream.record_poll(replace(poll(4, True, "9.0"), watch="other"))

    found = store.dashboard.latest_releases("deps", ["requests", "idna"])

    assert found == {"requests": "2.33.0", "idna": None}
