"""/healthz tells whether runs reach the database: the last write counts, not only a read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onwatch.state.health import Health
from onwatch.store import open_store
from onwatch.store.recorder import Recorder
from onwatch.store.spool import Spool
from onwatch.web.app import create_app
from onwatch.web.server import serve
from records import make_run


@pytest.fixture
def health() -> Health:
    health = Health(["api"])
    health.tick(0.0)
    return health


@pytest.fixture
def http(health: Health) -> Iterator[httpx.Client]:
    # The database answers reads all along: only the writes fail.
    server = serve(create_app(health, db_ok=lambda: True, tick_limit=60.0), "127.0.0.1:0")
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client
    server.stop()


def test_healthz_fails_while_runs_are_spooled_though_the_database_answers_reads(
    health: Health, http: httpx.Client, tmp_path: Path
) -> None:
    store = open_store("memory://")
    recorder = Recorder(store, Spool(tmp_path / "spool"), on_change=health.set_recording)
    recorder.record(make_run(minute=0))
    assert http.get("/healthz").json()["database"] == "ok"

    store.set_down(True)  # type: ignore[attr-defined]
    recorder.record(make_run(minute=1))
    answer = http.get("/healthz")

    assert answer.status_code == 503
    body = answer.json()
    assert body["database"] == "spooling"
    assert body["recording"]["to"] == "spool"
    assert body["recording"]["spooled"] == 1
    assert any("1 waiting in the spool" in problem for problem in body["problems"])
    store.set_down(False)  # type: ignore[attr-defined]
    recorder.replay()
    answer = http.get("/healthz")
    assert (answer.status_code, answer.json()["database"]) == (200, "ok")
    assert answer.json()["recording"] == {
        "to": "database",
        "spooled": 0,
        "in_memory": 0,
        "dropped": 0,
    }


def test_healthz_counts_runs_held_in_memory_and_dropped(
    health: Health, http: httpx.Client, tmp_path: Path
) -> None:
    store = open_store("memory://")
    store.set_down(True)  # type: ignore[attr-defined]
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    recorder = Recorder(
        store, Spool(blocker / "spool"), memory_limit=2, on_change=health.set_recording
    )
    for minute in range(3):
        recorder.record(make_run(minute=minute))

    answer = http.get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["database"] == "in memory: 2 runs, dropped: 1"
    assert answer.json()["recording"]["problem"] == "unwritable"
    metrics = http.get("/metrics").text
    assert 'onwatch_runs_waiting{where="memory"} 2.0' in metrics
    assert "onwatch_runs_dropped_total 1.0" in metrics
