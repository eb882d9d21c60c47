"""What only the memory store does: it is made empty, and a test can take it down."""

from __future__ import annotations

from pathlib import Path

import pytest

from onwatch.errors import StoreError
from onwatch.store import open_store
from onwatch.store.memory import MemoryStore
from onwatch.store.recorder import Recorder
from onwatch.store.spool import Spool
from records import T0, make_run


def test_each_memory_store_starts_empty_and_keeps_its_runs_to_itself() -> None:
    one, other = open_store("memory://"), open_store("memory://")
    one.runs.save_run(make_run())

    assert len(one.runs.list_runs()) == 1
    assert other.runs.list_runs() == []
    assert isinstance(one, MemoryStore) and one.url == "memory://"


def test_while_down_every_call_fails_with_store_error_as_a_database_would() -> None:
    store = MemoryStore()
    store.set_down(True)

    assert store.ping() is False
    with pytest.raises(StoreError, match="cannot save run"):
        store.runs.save_run(make_run())
    with pytest.raises(StoreError, match="cannot read incidents"):
        store.incidents.open_incidents()
    with pytest.raises(StoreError, match="cannot read due deliveries"):
        store.outbox.due(T0)
    with pytest.raises(StoreError):
        store.ensure_schema()

    store.set_down(False)
    assert store.ping() is True
    assert store.runs.list_runs() == []


def test_a_recorder_spools_while_it_is_down_and_replays_once_it_is_back(tmp_path: Path) -> None:
    store = MemoryStore()
    recorder = Recorder(store, Spool(tmp_path / "spool"))
    run = make_run()

    store.set_down(True)
    assert recorder.record(run) == "spooled"
    assert recorder.pending() == 1

    store.set_down(False)
    assert recorder.replay() == 1
    assert store.runs.get_run(run.id) == run
    assert recorder.pending() == 0
