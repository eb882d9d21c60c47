"""A read-only database: runs are spooled, and once it is writable again they are replayed and
the alerts held meanwhile go out, without restarting onwatch."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from daemon import Daemon
from faults.conftest import healthz
from onwatch.store import open_store
from onwatch.store.recorder import Recorder
from onwatch.store.spool import Spool
from pgserver import fresh_database
from receivers import HttpReceiver
from records import make_run, passed_results
from suites import make_project
from waiting import wait_until

if TYPE_CHECKING:
    from faults.conftest import Tmpfs

pytestmark = pytest.mark.e2e

FAILING = "def test_it_answers():\n    assert False, 'the product is down'\n"


def executed(daemon: Daemon) -> list[str]:
    """Return the ids of the runs the daemon has finished."""
    return [line["run_id"] for line in daemon.runs()]


def stored_ids(database: Path) -> set[str]:
    """Return the ids of the runs in the database, read as another process would."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM runs")}


def test_an_sqlite_database_on_a_read_only_disk_is_written_once_the_disk_is_writable(
    tmp_path: Path, tmpfs: Tmpfs
) -> None:
    """Fault: the database's file system is mounted read-only (EROFS), then writable again."""
    database = tmpfs.path / "onwatch.db"
    made = open_store(f"sqlite:///{database}")
    made.ensure_schema()
    made.close()
    tmpfs.remount(read_only=True)
    root = tmp_path / "project"
    (root / "suite").mkdir(parents=True)
    (root / "suite" / "test_app.py").write_text(FAILING)
    with HttpReceiver() as receiver:
        config = make_project(
            root,
            {
                "api": {
                    "tests": ["suite"],
                    "every": "1s",
                    "timeout": "30s",
                    "alert_after": 1,
                    "notify": ["hook"],
                }
            },
            {"database": f"sqlite:///{database}", "max_jitter": "1ms", "drain_timeout": "20s"},
            channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
        )
        spool = root / ".onwatch" / "spool"
        with Daemon(config) as daemon:
            url = daemon.served_url()
            degraded = receiver.wait_for_event("monitor.degraded", timeout=60)
            daemon.wait_for(lambda d: len(list(spool.glob("*.json"))) >= 3, timeout=60)
            status, body = healthz(url)
            assert not any(r.json()["event"] == "incident.opened" for r in receiver.received)

            tmpfs.remount(read_only=False)
            repaired = time.monotonic()
            wait_until(
                lambda: (
                    not list(spool.glob("*.json")) and set(executed(daemon)) <= stored_ids(database)
                ),
                "the spool replayed into the database",
                timeout=15,
            )
            replayed_after = time.monotonic() - repaired
            opened = receiver.wait_for_event("incident.opened", timeout=20)
            pid = daemon.process.pid
            assert daemon.process.poll() is None  # the same process: no restart
            assert daemon.stop() == 0
        final = executed(daemon)

    assert degraded.json()["details"]["problem"] == "database"
    assert status == 503
    assert body["recording"]["to"] == "spool"
    assert body["recording"]["spooled"] >= 1
    assert opened.json()["check"] == "api"
    assert set(final) <= stored_ids(database)
    recorded = len(set(final) & stored_ids(database))
    print(
        f"runs recorded / executed: {recorded}/{len(final)}, by one process ({pid}); "
        f"spool replayed {replayed_after:.1f} s after the disk was writable"
    )


def test_postgresql_sessions_opened_read_only_are_dropped_once_it_is_writable(
    postgres_url: str, tmp_path: Path
) -> None:
    """Fault: the database makes new sessions read-only, then stops; the sessions opened
    meanwhile stay read-only until they are closed."""
    url = fresh_database(postgres_url)
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    store = open_store(url)
    store.ensure_schema()
    store.close()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        recorder = Recorder(store, Spool(tmp_path / "spool"))
        first = make_run(results=passed_results(2))
        assert recorder.record(first) == "spooled"
        assert "read-only" in (recorder.state().error or "")

        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        second = make_run(minute=1, results=passed_results(2))

        assert recorder.record(second) == "stored"
        assert recorder.pending() == 0
        assert store.runs.get_run(first.id) == first
        assert store.runs.get_run(second.id) == second
    finally:
        store.close()
        admin.dispose()
