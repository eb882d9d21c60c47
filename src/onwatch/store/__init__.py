"""Where runs are kept: one ``Store`` with a narrow Protocol per noun, and how to open one.

``open_store(url)`` returns a ``Store`` (protocols.py) that holds one instance of each noun:
``runs`` (checks, runs, results, skipped slots), ``incidents`` (and run-time silences),
``outbox`` (deliveries and channel health), ``dashboard`` (bounded reads for pages and the
API), ``upstream`` (the watch's releases and polls) and ``artifacts`` (which results list which
stored files). Consumers are typed against those Protocols, never against an implementation.

- ``sql.py`` (``SqlStore``) is the SQL implementation on SQLite or PostgreSQL: one module per
  noun, all reaching the database through ``database.py``, the only place that connects and
  turns driver errors into ``StoreError``. ``schema.py`` describes the tables and
  ``migrations/`` builds them with Alembic; ``scan.py`` reads every text column for the doctor.
  Nothing outside this package imports SQLAlchemy or writes SQL.
- ``memory/`` (``MemoryStore``) keeps everything in plain Python for tests
  (``open_store("memory://")``); the two pass one contract suite (tests/store/contract/).
- While the database cannot be written, ``Recorder`` (``recorder.py``) keeps runs in a
  ``Spool`` (``spool.py``) of fsynced JSON files and replays them, idempotently by run id, once
  it is back; while the spool cannot be written either, it holds them in memory.

Every method of a store raises ``onwatch.errors.StoreError`` when the database cannot be reached
or written, never a driver's or SQLAlchemy's exception. Importing this package stays cheap:
SQLAlchemy is loaded by ``open_store``, Alembic only when a database needs migrating.
"""

from __future__ import annotations

from onwatch.model import CheckHistory
from onwatch.store.protocols import (
    ArtifactIndex,
    DashboardReads,
    Deliveries,
    Incidents,
    Runs,
    Store,
    Upstream,
)
from onwatch.store.records import (
    ChannelState,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    HourRow,
    PollRecord,
    PollSummary,
    RunPoint,
    RunRow,
    TestRow,
    hour_of,
    pinned_line,
)

__all__ = [
    "ArtifactIndex",
    "ChannelState",
    "CheckHistory",
    "DashboardReads",
    "Deliveries",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "HourRow",
    "Incidents",
    "PollRecord",
    "PollSummary",
    "RunPoint",
    "RunRow",
    "Runs",
    "Store",
    "TestRow",
    "Upstream",
    "hour_of",
    "pinned_line",
    "open_store",
]

# For tests: a store in this process's memory, empty at each open_store. Not for production:
# nothing survives the process, and no other process sees it.
MEMORY_URL = "memory://"


def open_store(url: str) -> Store:
    """Return a store for a database URL (sqlite:///PATH or postgresql://...), not yet
    migrated; "memory://" returns a new, empty in-memory store (for tests)."""
    if url == MEMORY_URL:
        from onwatch.store.memory import MemoryStore

        return MemoryStore()
    # Imported here so that importing onwatch.store does not load SQLAlchemy.
    from onwatch.store.sql import SqlStore

    return SqlStore(url)
