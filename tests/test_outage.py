"""A database outage in the middle of monitoring loses no result."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon import Daemon
from pgserver import PgServer
from suites import make_project

pytestmark = pytest.mark.e2e


def test_runs_finished_while_postgres_is_down_arrive_when_it_is_back(
    tmp_path: Path, own_postgres: PgServer
) -> None:
    url = own_postgres.create_database("monitoring")
    config = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "3"}}},
        settings={"database": url, "max_jitter": "1ms"},
        suites=("many",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 1)
        own_postgres.stop("immediate")
        daemon.wait_for(lambda d: sum(r.get("recorded") == "spooled" for r in d.runs()) >= 2)
        assert list((tmp_path / ".onwatch" / "spool").glob("*.json"))
        own_postgres.start()
        daemon.wait_for(lambda d: "recorded" not in d.runs()[-1] and _spool_empty(tmp_path))
        assert daemon.stop() == 0
        logged = {r["run_id"]: r for r in daemon.runs()}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("select id, status from runs")).all())
        results = conn.execute(sa.text("select run_id, count(*) from results group by run_id"))
        per_run = dict(results.all())
    engine.dispose()
    assert set(stored) == set(logged)
    assert all(per_run[run_id] == 3 for run_id in logged)
    assert sum(r.get("recorded") == "spooled" for r in logged.values()) >= 2


def _spool_empty(root: Path) -> bool:
    return not list((root / ".onwatch" / "spool").glob("*.json"))
