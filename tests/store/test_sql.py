"""What only the SQL store does, against a real SQLite file and a real PostgreSQL server:
transactions, rows as stored, the checks table, volume, URLs and outages. What every store
does is in the contract suite (tests/store/contract/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from onwatch.errors import StoreError
from onwatch.model import Outcome, RunStatus, TestResult
from onwatch.store import CheckHistory, open_store
from onwatch.store.schema import checks, results, runs
from onwatch.store.sql import SqlStore
from pgserver import PgServer, fresh_database
from records import T0, every_outcome, make_run, passed_results


def count_rows(url: str, query: Select[Any]) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


# -- writes ----------------------------------------------------------------------------------


def test_it_saves_a_run_once_when_saved_twice(store: SqlStore, store_url: str) -> None:
    run = make_run(results=every_outcome())

    assert store.runs.save_run(run) is True
    assert store.runs.save_run(run) is False

    assert count_rows(store_url, select(func.count()).select_from(runs)) == 1
    stored = select(func.count()).select_from(results).where(results.c.run_id == run.id)
    assert count_rows(store_url, stored) == len(run.results)


def test_it_keeps_neither_run_nor_results_when_one_result_cannot_be_written(
    store: SqlStore, store_url: str
) -> None:
    broken = TestResult(nodeid=None, outcome=Outcome.PASSED, phase="call", duration=0.1)  # type: ignore[arg-type]
    run = make_run(results=(*every_outcome(), broken))

    with pytest.raises(StoreError, match=f"cannot save run {run.id}"):
        store.runs.save_run(run)

    assert store.runs.get_run(run.id) is None
    assert count_rows(store_url, select(func.count()).select_from(results)) == 0


def test_it_stores_output_containing_nul_characters(store: SqlStore) -> None:
    result = TestResult(
        nodeid="tests/test_bin.py::test_dump",
        outcome=Outcome.FAILED,
        phase="call",
        duration=0.1,
        output="before\x00after",
    )
    run = make_run(results=(result,), status=RunStatus.FAILED)

    store.runs.save_run(run)

    got = store.runs.get_run(run.id)
    assert got is not None
    assert got.results[0].output == "before\\x00after"


def test_it_creates_a_missing_check_row_but_keeps_an_existing_schedule(
    store: SqlStore, store_url: str
) -> None:
    store.runs.upsert_check("known", "digest-0", "every 5m")
    store.runs.save_run(make_run(check="known"))
    store.runs.save_run(make_run(check="new"))

    query = select(checks.c.name, checks.c.config_digest, checks.c.schedule).order_by(checks.c.name)
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()
    assert rows == [("known", "digest-0", "every 5m"), ("new", "digest-1", "")]


def test_it_updates_a_check_on_upsert(store: SqlStore, store_url: str) -> None:
    store.runs.upsert_check("api", "digest-0", "every 5m")
    store.runs.upsert_check("api", "digest-2", "cron 0 * * * *")

    query = select(checks.c.config_digest, checks.c.schedule).where(checks.c.name == "api")
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert tuple(conn.execute(query).one()) == ("digest-2", "cron 0 * * * *")
    finally:
        engine.dispose()


def test_it_answers_history_for_hundreds_of_checks(store: SqlStore) -> None:
    names = [f"check-{i}" for i in range(450)]
    store.runs.save_run(make_run(check="check-449", status=RunStatus.FAILED))

    got = store.runs.history(names, now=T0)

    assert list(got) == names
    assert got["check-449"].consecutive_failures == 1
    assert got["check-0"] == CheckHistory()


# -- volume ------------------------------------------------------------------------------------


def test_it_saves_a_run_of_50000_results_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = open_store(url)
    store.ensure_schema()
    run = make_run(results=passed_results(50_000))
    store.runs.save_run(run)  # how fast: bench/large_run.py
    store.close()

    assert count_rows(url, select(func.count()).select_from(results)) == 50_000


# -- SQLite specifics --------------------------------------------------------------------------


def test_it_creates_the_directory_of_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "onwatch.db"
    store = open_store(f"sqlite:///{path}")
    store.ensure_schema()
    store.close()

    # Bytes 18 and 19 of an SQLite header are 2 in WAL mode, 1 in rollback-journal mode.
    assert path.read_bytes()[18:20] == b"\x02\x02"


def test_it_raises_store_error_when_the_sqlite_file_cannot_be_opened(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}")  # a directory, not a database file

    with pytest.raises(StoreError, match="unreachable") as raised:
        store.runs.save_run(make_run())
    store.close()

    assert "\n" not in str(raised.value)


def test_it_rejects_urls_it_cannot_use() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("not a url")
    with pytest.raises(StoreError, match="unsupported database mysql://u:\\*\\*\\*@"):
        open_store("mysql://u:hunter2@db/x")


# -- PostgreSQL specifics ----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_it_accepts_bare_postgresql_urls(postgres_url: str, scheme: str) -> None:
    url = fresh_database(postgres_url).replace("postgresql+psycopg", scheme, 1)
    store = open_store(url)
    try:
        store.ensure_schema()
        assert store.runs.save_run(make_run()) is True
        assert store.url.startswith("postgresql+psycopg://")
    finally:
        store.close()


@pytest.mark.e2e
def test_it_raises_store_error_without_the_password_while_postgresql_is_down_then_recovers(
    own_postgres: PgServer,
) -> None:
    # The cluster trusts every local connection, so any password is accepted, and must be hidden.
    url = fresh_database(own_postgres.url).replace("postgres@", "postgres:s3cret-pw@", 1)
    store = open_store(url)
    store.ensure_schema()
    assert store.runs.save_run(make_run()) is True

    own_postgres.stop("immediate")
    try:
        with pytest.raises(StoreError) as raised:
            store.runs.save_run(make_run())
        with pytest.raises(StoreError):
            store.runs.list_runs()
    finally:
        own_postgres.start()

    message = str(raised.value)
    assert not isinstance(raised.value, SQLAlchemyError)
    assert "s3cret-pw" not in message
    assert "postgres:***@127.0.0.1" in message
    assert "unreachable" in message and "\n" not in message
    # The same store, with its stale pooled connections, works again once the server is back.
    assert store.runs.save_run(make_run()) is True
    assert len(store.runs.list_runs()) == 2
    store.close()
