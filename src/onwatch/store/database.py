"""Database: one SQLAlchemy engine and the one way the store's SQL modules reach it.

Every SQL module of the store (runs, incidents, outbox, dashboard, upstream, the artifact index,
the doctor's scan) opens its connections through ``Database.read`` or ``Database.write``, which
turn any failure to reach or write the database into ``StoreError`` with a one-line message that
names the database without its password. Callers spool the run, defer the alert, and try again.
A failed write drops the pooled connections, so the next one reaches the database as it is now
(writable again after a read-only spell) without a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, literal, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from onwatch.errors import StoreError

__all__ = ["Database", "is_conflict"]

# PRAGMAs have no Core expression; they are per-connection settings, so they run on every new
# DBAPI connection. WAL lets the web pages read while a run is written; NORMAL is durable across
# application crashes in WAL mode; busy_timeout makes concurrent writers (daemon and
# `onwatch once`) wait instead of failing at once.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)

# A monitor must notice an outage quickly and spool, not hang on an unanswered SYN for minutes.
_PG_CONNECT_TIMEOUT_S = 5

_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
)


def is_conflict(exc: StoreError) -> bool:
    """Tell whether ``exc`` came from a unique key that a concurrent writer took first."""
    return isinstance(exc.__cause__, IntegrityError)


def engine_url(url: str) -> URL:
    """Parse a database URL, refusing anything but SQLite and PostgreSQL without quoting it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The message of the original error could quote the URL, password included.
        raise StoreError(
            "invalid database URL: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise StoreError(f"unsupported database {shown}: use sqlite:/// or postgresql://")
    return parsed


def _json_dumps(value: Any) -> str:
    try:
        # Without options json.dumps reuses one shared encoder: much faster over 50k rows.
        return json.dumps(value)
    except (TypeError, ValueError):
        # A user property that JSON cannot represent must not make a whole run unstorable.
        return json.dumps(value, default=str)


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


class Database:
    """An engine on SQLite (one host) or PostgreSQL (a shared server), errors as StoreError."""

    def __init__(self, url: str) -> None:
        parsed = engine_url(url)
        self.url = parsed.render_as_string(hide_password=True)
        self._password = parsed.password
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "json_serializer": _json_dumps}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the directory of {self.url}: {exc}") from exc
        elif "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        try:
            self._engine: Engine = create_engine(parsed, **kwargs)
        except ImportError as exc:
            raise StoreError(
                f"cannot open {self.url}: {exc}; install onwatch[postgres] for PostgreSQL"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {self.describe(exc)}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _set_sqlite_pragmas)

    @property
    def engine(self) -> Engine:
        """The engine, for tools and tests that work on the database directly."""
        return self._engine

    @property
    def dialect(self) -> str:
        """The backend's name: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @contextmanager
    def read(self, action: str) -> Iterator[Connection]:
        """Yield a connection to read with; failures leave as StoreError("action: reason")."""
        with self.translated(action), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, action: str) -> Iterator[Connection]:
        """Yield a connection in a transaction, committed at the end of the block, rolled back
        on any error; failures leave as StoreError("action: reason").

        A failed write drops every pooled connection: SQLite keeps a connection opened on a
        read-only file read-only, and a PostgreSQL session may sit on a server that became a
        standby, so only new connections see the repaired database.
        """
        try:
            with self.translated(action), self._engine.begin() as conn:
                yield conn
        except StoreError as exc:
            if not is_conflict(exc):
                self._engine.dispose()
            raise

    @contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """Turn database errors raised inside the block into StoreError("action: reason")."""
        try:
            yield
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"{action}: {self.describe(exc)}") from exc

    def describe(self, exc: BaseException) -> str:
        """Say in one line, without the password, which database failed and why."""
        cause: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            cause = exc.orig
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        reason = lines[0] if lines else type(cause).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        kind = "unreachable" if isinstance(exc, _UNREACHABLE) else "failed"
        return f"database {self.url} {kind}: {reason}"

    def ping(self) -> bool:
        """Return whether the database answers a trivial query."""
        try:
            with self.read("cannot reach the database") as conn:
                conn.execute(select(literal(1)))
        except StoreError:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
