"""The dashboard's reads and the check_hours rollup, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, select

from onwatch.model import Outcome, RunStatus, TestResult
from onwatch.store import open_store
from onwatch.store.rows import run_row
from onwatch.store.schema import check_hours, runs
from onwatch.store.sql import SqlStore
from records import T0, make_run
from store.migrating import migrate


def result(nodeid: str, outcome: Outcome, *, final: bool = True, attempt: int = 1) -> TestResult:
    return TestResult(
        nodeid=nodeid, outcome=outcome, phase="call", duration=0.5, final=final, attempt=attempt
    )


def rollup(store: SqlStore) -> dict[tuple[str, int], tuple[int, int, float]]:
    with store.database.engine.connect() as conn:
        rows = conn.execute(select(check_hours)).all()
    return {
        (row.check, int((row.hour - T0).total_seconds() // 3600)): (
            row.runs,
            row.passed,
            round(row.duration_sum, 3),
        )
        for row in rows
    }


def test_it_counts_each_stored_run_in_its_hour(store: SqlStore) -> None:
    store.runs.save_run(make_run(minute=5, duration=2.0))
    store.runs.save_run(make_run(minute=50, status=RunStatus.FAILED, duration=3.0))
    store.runs.save_run(make_run(minute=65, duration=1.0))
    store.runs.save_run(make_run(check="web", minute=10))

    assert rollup(store) == {
        ("api", 0): (2, 1, 5.0),
        ("api", 1): (1, 1, 1.0),
        ("web", 0): (1, 1, 1.0),
    }


def test_a_run_saved_twice_is_counted_once(store: SqlStore) -> None:
    run = make_run(minute=5)
    assert store.runs.save_run(run)
    assert not store.runs.save_run(run)  # a spool replay of a run already stored

    assert rollup(store) == {("api", 0): (1, 1, 1.0)}


def test_pass_rates_cover_each_window(store: SqlStore) -> None:
    now = T0 + timedelta(days=10)
    for hours_ago, status in [(1, "passed"), (2, "failed"), (30, "passed"), (24 * 8, "failed")]:
        store.runs.save_run(
            make_run(started_at=now - timedelta(hours=hours_ago), status=RunStatus(status))
        )

    rates = store.dashboard.pass_rates(
        ["api", "never"], now, [timedelta(hours=24), timedelta(days=7), timedelta(days=30)]
    )

    assert rates == {"api": [(2, 1), (3, 2), (4, 2)], "never": [(0, 0), (0, 0), (0, 0)]}


def test_recent_runs_are_the_latest_per_check_oldest_first(store: SqlStore) -> None:
    for minute in range(8):
        store.runs.save_run(make_run(minute=minute, results=(result("t::a", Outcome.PASSED),)))
    store.runs.save_run(make_run(check="web", minute=3))

    recent = store.dashboard.recent_points(["api", "web", "idle"], 5)

    assert [r.started_at.minute for r in recent["api"]] == [3, 4, 5, 6, 7]
    assert recent["api"][0].status == "passed"
    assert len(recent["web"]) == 1
    assert recent["idle"] == []


def test_final_results_leave_out_earlier_attempts(store: SqlStore) -> None:
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


def test_test_results_are_one_tests_final_results_in_the_range(store: SqlStore) -> None:
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


def test_the_migration_fills_the_rollup_from_runs_already_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'onwatch.db'}"
    store = open_store(url)
    store.ensure_schema()
    engine = create_engine(url)
    try:
        migrate(engine, "0003")
        # Runs stored by an onwatch from before the rollup.
        with engine.begin() as conn:
            for minute, status in [(5, "passed"), (20, "failed"), (70, "passed")]:
                run = make_run(minute=minute, status=RunStatus(status))
                conn.execute(runs.insert().values(run_row(run)))

        migrate(engine, "head")

        assert rollup(store) == {("api", 0): (2, 1, 2.0), ("api", 1): (1, 1, 1.0)}
    finally:
        engine.dispose()
        store.close()
