"""The check_hours rollup behind the pass rates, on SQLite and PostgreSQL. What every store's
dashboard reads return is in the contract suite (tests/store/contract/test_dashboard.py)."""

from __future__ import annotations

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
