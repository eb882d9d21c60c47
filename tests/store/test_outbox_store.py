"""The outbox tables on a database that lacks them. What every store does with deliveries is in
the contract suite (tests/store/contract/test_outbox.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onwatch.errors import StoreError
from onwatch.store.sql import SqlStore

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_it_raises_store_error_when_the_tables_are_missing(empty_store: SqlStore) -> None:
    outbox = empty_store.outbox
    payload = {"version": 1, "event": "test", "key": "t1", "summary": "api ünïcödé ✓"}
    with pytest.raises(StoreError, match=r"cannot store delivery t1\|ops"):
        outbox.add("t1|ops", "ops", "test", None, payload, T0)
    with pytest.raises(StoreError, match="cannot read due deliveries"):
        outbox.due(T0)
