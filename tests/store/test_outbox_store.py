"""The outbox tables on a database that lacks them. What every store does with deliveries is in
the contract suite (tests/store/contract/test_outbox.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from onwatch.errors import StoreError
from onwatch.store import open_store, schema
from onwatch.store.sql import SqlStore
from store.migrating import migrate

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_it_raises_store_error_when_the_tables_are_missing(empty_store: SqlStore) -> None:
    outbox = empty_store.outbox
    payload = {"version": 1, "event": "test", "key": "t1", "summary": "api ünïcödé ✓"}
    with pytest.raises(StoreError, match=r"cannot store delivery t1\|ops"):
        outbox.add("t1|ops", "ops", "test", None, payload, T0)
    with pytest.raises(StoreError, match="cannot read due deliveries"):
        outbox.due(T0)


def test_an_upgrade_keeps_the_order_of_an_incidents_pending_deliveries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'onwatch.db'}"
    store = open_store(url)
    store.ensure_schema()
    engine = create_engine(url)
    try:
        migrate(engine, "0006")  # before deliveries had a series
        with engine.begin() as conn:
            for key, status in [
                ("incident.7.opened|ops", "pending"),
                ("incident.7.resolved|ops", "pending"),
                ("incident.6.resolved|ops", "sent"),
                ("check.overdue|api|2026-03-01T12:00:00+00:00|ops", "pending"),
            ]:
                row = {
                    "key": key,
                    "channel": "ops",
                    "event": "test",
                    "payload": {"key": key},
                    "status": status,
                    "attempts": 0,
                    "next_attempt_at": T0,
                    "created_at": T0,
                }
                # Only the columns 0006 had: the insert names no series.
                conn.execute(insert(schema.deliveries).values(row))
        store.ensure_schema()

        series = {d.key: d.series for d in store.outbox.deliveries()}
        assert series == {
            "incident.7.opened|ops": "incident.7",
            "incident.7.resolved|ops": "incident.7",
            "incident.6.resolved|ops": None,
            "check.overdue|api|2026-03-01T12:00:00+00:00|ops": None,
        }
        assert [d.key for d in store.outbox.due(T0)] == [
            "incident.7.opened|ops",
            "check.overdue|api|2026-03-01T12:00:00+00:00|ops",
        ]
    finally:
        engine.dispose()
        store.close()
