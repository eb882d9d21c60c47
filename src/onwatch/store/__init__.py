"""Where runs are kept: the ``Store`` protocol and how to open one.

``sql.py`` (``SqlStore``) is the only module that speaks SQL, on SQLite or PostgreSQL.
``schema.py`` describes the tables and ``migrations/`` builds them with Alembic. While the database
cannot be reached, ``Recorder`` (``recorder.py``) keeps runs in a ``Spool`` (``spool.py``) of
fsynced JSON files and replays them, idempotently by run id, once it is back.

Every method of a store raises ``onwatch.errors.StoreError`` when the database cannot be reached
or written, never a driver's or SQLAlchemy's exception. Importing this package stays cheap:
SQLAlchemy is loaded by ``open_store``, Alembic only when a database needs migrating.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from onwatch.model import CheckHistory, Run, TestResult

if TYPE_CHECKING:
    from onwatch.store.sql import SqlStore

__all__ = ["CheckHistory", "Store", "open_store"]


class Store(Protocol):
    """Persistence of checks, runs, results and skipped slots."""

    def ensure_schema(self) -> None:
        """Bring the database to the newest schema; cheap when it is already there."""
        ...

    def upsert_check(self, name: str, config_digest: str, schedule: str) -> None:
        """Create or update a check's row."""
        ...

    def save_run(self, run: Run) -> bool:
        """Insert a run and all its results at once; return False if its id is already stored."""
        ...

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why ("overlap", "down")."""
        ...

    def skipped_slots(self, check: str, limit: int = 100) -> list[tuple[datetime, str]]:
        """Return a check's skipped slots and their reasons, newest first."""
        ...

    def get_run(self, run_id: str) -> Run | None:
        """Return a run with all its results, or None if unknown."""
        ...

    def list_runs(
        self,
        check: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Run]:
        """Return runs newest first, without their results; since <= started_at < until."""
        ...

    def history(self, names: list[str], now: datetime) -> dict[str, CheckHistory]:
        """Return the history of each named check, an empty one for checks never run."""
        ...

    def test_history(self, check: str, nodeid: str, limit: int = 100) -> list[TestResult]:
        """Return every attempt of one test in one check, newest first."""
        ...

    def close(self) -> None:
        """Release the database connections."""
        ...


def open_store(url: str) -> SqlStore:
    """Return a store for a database URL (sqlite:///path or postgresql://...), not yet migrated."""
    # Imported here so that importing onwatch.store does not load SQLAlchemy.
    from onwatch.store.sql import SqlStore

    return SqlStore(url)
