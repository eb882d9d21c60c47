"""Recorder: store when the database answers, spool when it does not, replay exactly once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from onwatch.store import open_store
from onwatch.store.recorder import MEMORY_LIMIT, Recorder, Recording
from onwatch.store.schema import results, runs
from onwatch.store.spool import Spool
from onwatch.store.sql import SqlStore
from pgserver import PgServer, fresh_database
from records import T0, make_run, passed_results


def count(url: str) -> tuple[int, int]:
    """Return the number of runs and of results in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(select(func.count()).select_from(runs)).scalar_one(),
                conn.execute(select(func.count()).select_from(results)).scalar_one(),
            )
    finally:
        engine.dispose()


def insertion_order(url: str) -> list[str]:
    """Return run ids in the order their results were inserted."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ordered = conn.execute(select(results.c.run_id).order_by(results.c.id)).scalars()
            return list(dict.fromkeys(ordered))
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'onwatch.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


def test_it_stores_a_run_while_the_database_answers(
    store: SqlStore, sqlite_url: str, tmp_path: Path
) -> None:
    # No ensure_schema beforehand: the recorder creates the tables of a database that was
    # unreachable when onwatch started.
    recorder = Recorder(store, Spool(tmp_path / "spool"))
    run = make_run(results=passed_results(3))

    assert recorder.record(run) == "stored"

    assert recorder.pending() == 0
    assert store.runs.get_run(run.id) == run
    assert count(sqlite_url) == (1, 3)


def test_it_replays_a_run_both_stored_and_spooled_only_once(
    store: SqlStore, sqlite_url: str, tmp_path: Path
) -> None:
    # What a crash between storing a replayed run and removing its file leaves behind.
    spool = Spool(tmp_path / "spool")
    recorder = Recorder(store, spool)
    run = make_run(results=passed_results(3))
    recorder.record(run)
    spool.put(run)

    assert recorder.replay() == 1

    assert recorder.pending() == 0
    assert count(sqlite_url) == (1, 3)


def test_it_records_from_many_threads_at_once(
    store: SqlStore, sqlite_url: str, tmp_path: Path
) -> None:
    recorder = Recorder(store, Spool(tmp_path / "spool"))
    outcomes: list[str] = []

    def finish_checks(first: int) -> None:
        for minute in range(first, first + 5):
            outcomes.append(recorder.record(make_run(minute=minute, results=passed_results(3))))

    threads = [threading.Thread(target=finish_checks, args=(i * 5,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == ["stored"] * 30
    assert count(sqlite_url) == (30, 90)


@pytest.mark.e2e
def test_it_spools_while_postgresql_is_down_and_replays_each_run_once_when_it_is_back(
    own_postgres: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = fresh_database(own_postgres.url)
    store = open_store(url)
    store.ensure_schema()
    recorder = Recorder(store, Spool(tmp_path / "spool"))
    made = [
        make_run(minute=0, results=passed_results(3)),
        *(make_run(minute=minute, results=passed_results(10)) for minute in (1, 2, 3)),
        make_run(minute=4, results=passed_results(3)),
    ]
    assert recorder.record(made[0]) == "stored"

    own_postgres.stop("immediate")
    try:
        with caplog.at_level(logging.WARNING, logger="onwatch.store"):
            during = [recorder.record(run) for run in made[1:4]]
        assert recorder.replay() == 0
    finally:
        own_postgres.start()

    assert during == ["spooled"] * 3
    assert recorder.pending() == 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1

    assert recorder.record(made[4]) == "stored"

    assert recorder.pending() == 0
    assert count(url) == (5, 3 + 3 * 10 + 3)
    assert recorder.replay() == 0
    assert count(url) == (5, 3 + 3 * 10 + 3)
    # Spooled runs went in oldest first, and before the run that found the database back.
    assert insertion_order(url) == [run.id for run in made]
    store.close()


def unwritable_spool(tmp_path: Path) -> tuple[Spool, Path]:
    """Return a spool whose folder cannot be made (a file stands in its path), and that file."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    return Spool(blocker / "spool"), blocker


def test_it_holds_runs_in_memory_when_neither_the_database_nor_the_spool_takes_them(
    tmp_path: Path,
) -> None:
    store = open_store("memory://")
    store.set_down(True)  # type: ignore[attr-defined]
    spool, blocker = unwritable_spool(tmp_path)
    seen: list[Recording] = []
    recorder = Recorder(store, spool, on_change=seen.append)
    runs = [make_run(minute=minute) for minute in range(3)]

    assert [recorder.record(run) for run in runs] == ["in memory"] * 3

    state = recorder.state()
    assert (state.problem, state.in_memory, state.spooled, state.dropped) == ("unwritable", 3, 0, 0)
    assert recorder.pending() == 3
    assert seen[-1] == state
    store.set_down(False)  # type: ignore[attr-defined]
    assert recorder.replay() == 3
    assert [store.runs.get_run(run.id) for run in runs] == runs
    assert recorder.state().problem is None
    assert recorder.pending() == 0


def test_it_keeps_ten_thousand_runs_in_memory_and_drops_the_oldest_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store("memory://")
    store.set_down(True)  # type: ignore[attr-defined]
    spool, _ = unwritable_spool(tmp_path)
    recorder = Recorder(store, spool)
    runs = [make_run(started_at=T0 + timedelta(seconds=n)) for n in range(MEMORY_LIMIT + 5)]

    with caplog.at_level(logging.ERROR, logger="onwatch.store"):
        for run in runs:
            recorder.record(run)

    state = recorder.state()
    assert MEMORY_LIMIT == 10_000
    assert (state.in_memory, state.dropped, state.dropped_now) == (10_000, 5, 5)
    dropped = [r.id for r in runs[:5]]
    assert sum("dropped" in line for line in caplog.messages) == 5
    assert all(any(run_id in line for line in caplog.messages) for run_id in dropped)
    store.set_down(False)  # type: ignore[attr-defined]
    recorder.replay()
    assert store.runs.get_run(runs[4].id) is None
    assert store.runs.get_run(runs[5].id) == runs[5]
    assert store.runs.get_run(runs[-1].id) == runs[-1]
    assert (recorder.state().in_memory, recorder.state().dropped) == (0, 5)


def test_runs_in_memory_go_to_the_spool_when_the_disk_is_back_before_the_database(
    tmp_path: Path,
) -> None:
    store = open_store("memory://")
    store.set_down(True)  # type: ignore[attr-defined]
    spool, blocker = unwritable_spool(tmp_path)
    recorder = Recorder(store, spool)
    held = make_run(minute=0)
    assert recorder.record(held) == "in memory"

    blocker.unlink()
    later = make_run(minute=1)
    assert recorder.record(later) == "spooled"

    assert [run.id for run in spool.pending()] == [held.id, later.id]
    assert (recorder.state().problem, recorder.state().spooled) == ("database", 2)


def test_a_run_the_database_refuses_for_its_content_is_spooled_and_blocks_no_other(
    store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A lone surrogate in a message makes the SQLite driver raise UnicodeEncodeError."""
    spool = Spool(tmp_path / "spool")
    seen: list[Recording] = []
    recorder = Recorder(store, spool, on_change=seen.append)
    run = make_run(results=passed_results(1))
    poisoned = run.with_results((replace(run.results[0], message="bad \udcff"),))

    with caplog.at_level(logging.ERROR, logger="onwatch.store"):
        assert recorder.record(poisoned) == "spooled"
        after = make_run(minute=1)
        assert recorder.record(after) == "stored"
        recorder.replay()

    assert store.runs.get_run(after.id) == after
    assert [r.id for r in spool.pending()] == [poisoned.id]
    assert seen[0].problem == "unstorable"
    assert "UnicodeEncodeError" in (seen[0].error or "")
    tracebacks = [r for r in caplog.records if r.exc_info and poisoned.id in r.getMessage()]
    assert len(tracebacks) == 1  # once, not at every replay


def test_it_never_raises_whatever_fails(tmp_path: Path) -> None:
    store = open_store("memory://")
    spool, _ = unwritable_spool(tmp_path)
    recorder = Recorder(store, spool)
    run = make_run()
    poisoned = replace(run, id="../escape")  # not even a valid spool file name

    store.set_down(True)  # type: ignore[attr-defined]
    assert recorder.record(poisoned) == "in memory"


def test_runs_held_in_memory_go_on_to_the_recorder_of_a_reloaded_config(tmp_path: Path) -> None:
    """A reload (SIGHUP) during a full disk replaces the recorder: no held run is lost."""
    store = open_store("memory://")
    store.set_down(True)  # type: ignore[attr-defined]
    spool, _ = unwritable_spool(tmp_path)
    old = Recorder(store, spool)
    runs = [make_run(minute=n) for n in range(3)]
    for run in runs:
        assert old.record(run) == "in memory"

    held = old.hand_over()
    assert held == runs
    assert old.state().in_memory == 0

    new = Recorder(store, spool)
    new.adopt(held)
    assert new.state().in_memory == 3  # still nowhere to write them
    store.set_down(False)  # type: ignore[attr-defined]
    new.replay()
    assert [store.runs.get_run(run.id) for run in runs] == runs
    assert new.pending() == 0
