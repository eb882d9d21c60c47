"""SqlStore against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from onwatch.errors import StoreError
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.store import CheckHistory, open_store
from onwatch.store.schema import checks, results, runs
from onwatch.store.sql import SqlStore
from pgserver import PgServer, fresh_database
from records import T0, make_run, passed_results


def every_outcome() -> tuple[TestResult, ...]:
    """Return results of every outcome, with a retry, in attempt-then-recorded order."""
    first = [
        TestResult(
            nodeid=f"tests/test_api.py::test_{outcome.value}[param-1]",
            outcome=outcome,
            phase="setup" if outcome is Outcome.ERROR else "call",
            duration=0.125 + index,
            message=None if outcome is Outcome.PASSED else f"{outcome.value}: boom ünïcödé",
            exception=None if outcome is Outcome.PASSED else "AssertionError",
            traceback=None if outcome is Outcome.PASSED else "Traceback:\n  line 1\n  line 2",
            output="captured stdout\nsecond line" if outcome.is_bad else None,
            properties=(("url", "https://example.test/health"), ("status", 503), ("ok", False)),
            final=outcome is not Outcome.FLAKY,
        )
        for index, outcome in enumerate(Outcome)
    ]
    retry = TestResult(
        nodeid="tests/test_api.py::test_flaky[param-1]",
        outcome=Outcome.PASSED,
        phase="call",
        duration=0.5,
        attempt=2,
    )
    return (*first, retry)


def count_rows(url: str, query: Select[Any]) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


# -- round trip --------------------------------------------------------------------------------


def test_it_returns_a_saved_run_with_every_result_field_intact(store: SqlStore) -> None:
    paris = timezone(timedelta(hours=2))
    run = make_run(
        started_at=datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=paris),
        results=every_outcome(),
        status=RunStatus.FAILED,
        duration=2.5,
        trigger=Trigger.SCHEDULE,
        scheduled_for=datetime(2025, 3, 1, 14, 0, tzinfo=paris),
    )
    run = replace(run, error="2 tests failed", trigger_detail={"by": "cli", "args": ["-k", "api"]})
    assert store.save_run(run) is True

    got = store.get_run(run.id)

    assert got is not None
    assert got == run
    for stamp in (got.started_at, got.finished_at, got.scheduled_for):
        assert stamp is not None and stamp.tzinfo is UTC
    assert got.started_at == datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert {r.outcome for r in got.results} == set(Outcome)
    assert got.counts() == run.counts()


def test_it_returns_none_for_an_unknown_run(store: SqlStore) -> None:
    assert store.get_run(str(uuid.uuid4())) is None


def test_it_saves_a_run_once_when_saved_twice(store: SqlStore, store_url: str) -> None:
    run = make_run(results=every_outcome())

    assert store.save_run(run) is True
    assert store.save_run(run) is False

    assert count_rows(store_url, select(func.count()).select_from(runs)) == 1
    stored = select(func.count()).select_from(results).where(results.c.run_id == run.id)
    assert count_rows(store_url, stored) == len(run.results)


def test_it_keeps_neither_run_nor_results_when_one_result_cannot_be_written(
    store: SqlStore, store_url: str
) -> None:
    broken = TestResult(nodeid=None, outcome=Outcome.PASSED, phase="call", duration=0.1)  # type: ignore[arg-type]
    run = make_run(results=(*every_outcome(), broken))

    with pytest.raises(StoreError, match=f"cannot save run {run.id}"):
        store.save_run(run)

    assert store.get_run(run.id) is None
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

    store.save_run(run)

    got = store.get_run(run.id)
    assert got is not None
    assert got.results[0].output == "before\\x00after"


def test_it_creates_a_missing_check_row_but_keeps_an_existing_schedule(
    store: SqlStore, store_url: str
) -> None:
    store.upsert_check("known", "digest-0", "every 5m")
    store.save_run(make_run(check="known"))
    store.save_run(make_run(check="new"))

    query = select(checks.c.name, checks.c.config_digest, checks.c.schedule).order_by(checks.c.name)
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()
    assert rows == [("known", "digest-0", "every 5m"), ("new", "digest-1", "")]


def test_it_updates_a_check_on_upsert(store: SqlStore, store_url: str) -> None:
    store.upsert_check("api", "digest-0", "every 5m")
    store.upsert_check("api", "digest-2", "cron 0 * * * *")

    query = select(checks.c.config_digest, checks.c.schedule).where(checks.c.name == "api")
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert tuple(conn.execute(query).one()) == ("digest-2", "cron 0 * * * *")
    finally:
        engine.dispose()


# -- listing -----------------------------------------------------------------------------------


@pytest.fixture
def five_runs(store: SqlStore) -> list[Run]:
    statuses = [RunStatus.PASSED, RunStatus.FAILED, RunStatus.PASSED, RunStatus.ERROR]
    saved = [
        make_run(check="api", status=status, minute=5 * i) for i, status in enumerate(statuses)
    ]
    saved.append(make_run(check="web", minute=7))
    for run in saved:
        store.save_run(run.with_results(every_outcome()))
    return saved


def test_it_lists_runs_newest_first_without_results(store: SqlStore, five_runs: list[Run]) -> None:
    listed = store.list_runs()

    assert [r.id for r in listed] == [r.id for r in sorted(five_runs, key=lambda r: r.started_at)][
        ::-1
    ]
    assert all(r.results == () for r in listed)
    assert listed[0] == five_runs[3]


def test_it_lists_the_runs_of_one_check(store: SqlStore, five_runs: list[Run]) -> None:
    assert [r.id for r in store.list_runs("web")] == [five_runs[4].id]
    assert len(store.list_runs("api")) == 4
    assert store.list_runs("nothing") == []


def test_it_lists_runs_started_from_since_and_before_until(
    store: SqlStore, five_runs: list[Run]
) -> None:
    listed = store.list_runs(
        "api", since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=15)
    )

    assert [r.id for r in listed] == [five_runs[2].id, five_runs[1].id]


def test_it_compares_since_and_until_across_time_zones(
    store: SqlStore, five_runs: list[Run]
) -> None:
    tokyo = timezone(timedelta(hours=9))

    listed = store.list_runs("api", since=(T0 + timedelta(minutes=10)).astimezone(tokyo))

    assert [r.id for r in listed] == [five_runs[3].id, five_runs[2].id]


def test_it_lists_runs_by_status(store: SqlStore, five_runs: list[Run]) -> None:
    assert [r.id for r in store.list_runs(status="failed")] == [five_runs[1].id]
    assert [r.id for r in store.list_runs("api", status=RunStatus.PASSED)] == [
        five_runs[2].id,
        five_runs[0].id,
    ]


def test_it_pages_through_runs_with_limit_and_offset(store: SqlStore, five_runs: list[Run]) -> None:
    newest_first = [r.id for r in store.list_runs()]

    assert [r.id for r in store.list_runs(limit=2)] == newest_first[:2]
    assert [r.id for r in store.list_runs(limit=2, offset=2)] == newest_first[2:4]
    assert [r.id for r in store.list_runs(limit=2, offset=4)] == newest_first[4:]


# -- history -----------------------------------------------------------------------------------


def test_it_counts_failures_since_the_latest_pass(store: SqlStore) -> None:
    sequence = [RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT]
    for i, status in enumerate(sequence):
        store.save_run(make_run(check="api", status=status, minute=i, duration=2.5))
    for i, status in enumerate([RunStatus.FAILED, RunStatus.FAILED]):
        store.save_run(make_run(check="never", status=status, minute=i))
    for i, status in enumerate([RunStatus.FAILED, RunStatus.PASSED]):
        store.save_run(make_run(check="healed", status=status, minute=i))

    got = store.history(["api", "never", "healed"], now=T0 + timedelta(hours=1))

    assert got["api"].consecutive_failures == 3
    assert got["api"].last_status is RunStatus.TIMEOUT
    assert got["api"].last_run_at == T0 + timedelta(minutes=3, seconds=2.5)
    assert got["never"].consecutive_failures == 2
    assert got["healed"].consecutive_failures == 0
    assert got["healed"].last_status is RunStatus.PASSED


def test_it_counts_runs_and_passes_of_the_last_24_hours(store: SqlStore) -> None:
    now = T0 + timedelta(days=2)
    for hours_ago, status in [
        (25, RunStatus.PASSED),
        (23, RunStatus.PASSED),
        (1, RunStatus.FAILED),
    ]:
        store.save_run(
            make_run(check="api", status=status, started_at=now - timedelta(hours=hours_ago))
        )

    got = store.history(["api"], now=now)

    assert (got["api"].runs_24h, got["api"].passed_24h) == (2, 1)


def test_it_resumes_from_the_latest_scheduled_or_skipped_slot(store: SqlStore) -> None:
    slot = T0 + timedelta(minutes=5)
    store.save_run(make_run(check="api", trigger=Trigger.SCHEDULE, scheduled_for=slot))
    store.record_skipped_slot("api", slot + timedelta(minutes=5), "overlap")
    store.save_run(
        make_run(check="web", trigger=Trigger.SCHEDULE, scheduled_for=slot, started_at=slot)
    )
    store.record_skipped_slot("web", slot - timedelta(minutes=5), "overlap")
    # A manual run, even a later one, is not a slot.
    store.save_run(
        make_run(
            check="web",
            scheduled_for=slot + timedelta(hours=1),
            started_at=slot + timedelta(hours=1),
        )
    )
    store.save_run(make_run(check="manual-only"))

    got = store.history(["api", "web", "manual-only"], now=T0 + timedelta(hours=2))

    assert got["api"].last_slot == slot + timedelta(minutes=5)
    assert got["web"].last_slot == slot
    assert got["web"].last_slot is not None and got["web"].last_slot.tzinfo is UTC
    assert got["manual-only"].last_slot is None


def test_it_gives_an_empty_history_to_checks_never_run(store: SqlStore) -> None:
    store.save_run(make_run(check="api"))

    got = store.history(["api", "unknown"], now=T0)

    assert got["unknown"] == CheckHistory()
    assert store.history([], now=T0) == {}


def test_it_answers_history_for_hundreds_of_checks(store: SqlStore) -> None:
    names = [f"check-{i}" for i in range(450)]
    store.save_run(make_run(check="check-449", status=RunStatus.FAILED))

    got = store.history(names, now=T0)

    assert list(got) == names
    assert got["check-449"].consecutive_failures == 1
    assert got["check-0"] == CheckHistory()


def test_it_lists_skipped_slots_newest_first(store: SqlStore) -> None:
    for minutes, reason in [(0, "overlap"), (10, "down"), (5, "overlap")]:
        store.record_skipped_slot("api", T0 + timedelta(minutes=minutes), reason)
    store.record_skipped_slot("web", T0, "overlap")

    assert store.skipped_slots("api") == [
        (T0 + timedelta(minutes=10), "down"),
        (T0 + timedelta(minutes=5), "overlap"),
        (T0, "overlap"),
    ]
    assert store.skipped_slots("api", limit=1) == [(T0 + timedelta(minutes=10), "down")]


def test_it_returns_every_attempt_of_one_test_newest_first(store: SqlStore) -> None:
    nodeid = "tests/test_api.py::test_flaky[param-1]"
    older = make_run(check="api", results=every_outcome())
    newer = make_run(check="api", started_at=T0 + timedelta(hours=1), results=every_outcome())
    elsewhere = make_run(check="web", started_at=T0 + timedelta(hours=2), results=every_outcome())
    for run in (older, newer, elsewhere):
        store.save_run(run)

    got = store.test_history("api", nodeid)

    attempts = [r for r in every_outcome() if r.nodeid == nodeid][::-1]
    assert got == attempts + attempts
    assert store.test_history("api", nodeid, limit=1) == attempts[:1]


# -- volume ------------------------------------------------------------------------------------


def test_it_saves_a_run_of_50000_results_whole_and_quickly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = open_store(url)
    store.ensure_schema()
    run = make_run(results=passed_results(50_000))

    started = time.perf_counter()
    store.save_run(run)
    elapsed = time.perf_counter() - started
    store.close()

    assert count_rows(url, select(func.count()).select_from(results)) == 50_000
    assert elapsed < 5, f"50,000 results took {elapsed:.1f} s"


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
        store.save_run(make_run())
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
        assert store.save_run(make_run()) is True
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
    assert store.save_run(make_run()) is True

    own_postgres.stop("immediate")
    try:
        with pytest.raises(StoreError) as raised:
            store.save_run(make_run())
        with pytest.raises(StoreError):
            store.list_runs()
    finally:
        own_postgres.start()

    message = str(raised.value)
    assert not isinstance(raised.value, SQLAlchemyError)
    assert "s3cret-pw" not in message
    assert "postgres:***@127.0.0.1" in message
    assert "unreachable" in message and "\n" not in message
    # The same store, with its stale pooled connections, works again once the server is back.
    assert store.save_run(make_run()) is True
    assert len(store.list_runs()) == 2
    store.close()
