"""Stores on SQLite and on PostgreSQL, for the tests that must pass on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onwatch.store import open_store
from onwatch.store.sql import SqlStore
from pgserver import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'onwatch.db'}"
    return fresh_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def empty_store(store_url: str) -> Iterator[SqlStore]:
    """Yield a store on ``store_url`` whose database has no tables yet."""
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def store(empty_store: SqlStore) -> SqlStore:
    """Return a store on ``store_url`` with its schema created."""
    empty_store.ensure_schema()
    return empty_store
