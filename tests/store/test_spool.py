"""Spool: runs kept in files while the database is unreachable."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from onwatch.model import Outcome, Run, RunStatus, TestResult
from onwatch.store.spool import Spool
from records import make_run

HEALTH_FAILURE = TestResult(
    nodeid="tests/test_api.py::test_health",
    outcome=Outcome.FAILED,
    phase="call",
    duration=0.25,
    message="assert 503 == 200",
    properties=(("status", 503),),
)


def failed_run(minute: int = 0) -> Run:
    """Return a failed run of one test, started ``minute`` minutes after ``records.T0``."""
    return make_run(
        status=RunStatus.FAILED,
        minute=minute,
        results=(HEALTH_FAILURE,),
        trigger_detail={"by": "cli"},
    )


def test_it_returns_spooled_runs_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    newer, older = failed_run(minute=5), failed_run()

    spool.put(newer)
    path = spool.put(older)

    assert path == tmp_path / "spool" / f"{older.id}.json"
    assert spool.pending() == [older, newer]
    assert len(spool) == 2


def test_it_forgets_a_removed_run(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept, removed = failed_run(), failed_run(minute=1)
    spool.put(kept)
    spool.put(removed)

    spool.remove(removed.id)
    spool.remove(removed.id)  # removing twice is harmless: two replayers may race

    assert spool.pending() == [kept]
    assert len(spool) == 1


def test_it_keeps_runs_for_a_new_spool_on_the_same_directory(tmp_path: Path) -> None:
    run = failed_run()
    Spool(tmp_path).put(run)

    assert Spool(tmp_path).pending() == [run]


def test_it_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    run = failed_run()
    Spool(tmp_path).put(run)

    assert [p.name for p in tmp_path.iterdir()] == [f"{run.id}.json"]


def test_it_sets_aside_a_file_it_cannot_read_without_deleting_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    good = failed_run()
    spool.put(good)
    (tmp_path / "truncated.json").write_text('{"id": "trunc')
    (tmp_path / "not-a-run.json").write_text('{"hello": "world"}')

    with caplog.at_level(logging.ERROR, logger="onwatch.store"):
        assert spool.pending() == [good]

    assert (tmp_path / "truncated.json.bad").read_text() == '{"id": "trunc'
    assert (tmp_path / "not-a-run.json.bad").exists()
    assert not (tmp_path / "truncated.json").exists()
    assert len(spool) == 1
    assert sum("truncated.json" in r.getMessage() for r in caplog.records) == 1


def test_it_is_empty_before_its_directory_exists(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "missing")

    assert spool.pending() == []
    assert len(spool) == 0


def test_it_refuses_a_run_id_that_would_leave_its_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot name a spool file"):
        Spool(tmp_path / "spool").put(replace(failed_run(), id="../escape"))
