"""Read every text, JSON and binary value of every table, without writing: the doctor's scan.

``onwatch doctor`` (cli/doctor.py) searches what comes out of here for secrets and reports
where it found them; this module only reads. The database is opened read-only and never
migrated: SQLite through a ``mode=ro`` URI (a read-write connection that closes last would
checkpoint the WAL into the file and change it), PostgreSQL in a read-only transaction. Tables
are reflected, not taken from ``schema.py``, so that columns an older or newer onwatch added
are read too. Rows are fetched in batches, so memory stays flat on any history.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import JSON, Connection, LargeBinary, MetaData, String, Table, Text, cast, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SAWarning

from onwatch.store.database import Database

__all__ = ["ScannedRow", "scan_rows", "sqlite_file"]


@dataclass(frozen=True, slots=True)
class ScannedRow:
    """The text, JSON (as stored, escapes included) and binary values of one row."""

    table: str
    key: dict[str, Any]  # the primary key's columns and values; empty without one
    cells: tuple[tuple[str, str | bytes | None], ...]  # (column, value)


def sqlite_file(url: str) -> Path | None:
    """Return the file of a SQLite URL whose raw bytes can be read; None for other databases."""
    return _read_only(url)[1]


def scan_rows(url: str, *, batch_rows: int = 1000) -> Iterator[ScannedRow]:
    """Yield every row that has text, JSON or binary columns, ``batch_rows`` in memory at once.

    A SQLite file that does not exist yields nothing: opening it would create it.
    """
    read_only, path = _read_only(url)
    if path is not None and not path.is_file():
        return
    db = Database(read_only)
    try:
        with db.read("cannot scan the database") as conn:
            if db.dialect == "postgresql":
                # Before the first statement: it makes the whole transaction read-only.
                conn.execution_options(postgresql_readonly=True)
            metadata = MetaData()
            with warnings.catch_warnings():
                # A column type SQLAlchemy does not know (an extension's) is skipped anyway.
                warnings.simplefilter("ignore", SAWarning)
                metadata.reflect(conn)
            for table in metadata.sorted_tables:
                yield from _rows(conn, table, batch_rows)
    finally:
        db.close()


def _rows(conn: Connection, table: Table, batch_rows: int) -> Iterator[ScannedRow]:
    key = list(table.primary_key.columns)
    texts = [c for c in table.columns if isinstance(c.type, String | JSON | LargeBinary)]
    if not texts:
        return
    # JSON as stored, escapes included: decoding it would hide the "json" form of a secret.
    selected = [cast(c, Text) if isinstance(c.type, JSON) else c for c in texts]
    query = select(*key, *selected).execution_options(yield_per=batch_rows)
    names = [c.name for c in texts]
    for row in conn.execute(query):
        values = [bytes(v) if isinstance(v, memoryview) else v for v in row[len(key) :]]
        yield ScannedRow(
            table=table.name,
            key={c.name: row[i] for i, c in enumerate(key)},
            cells=tuple(zip(names, values, strict=True)),
        )


def _read_only(url: str) -> tuple[str, Path | None]:
    """Return ``url`` made read-only where the driver allows it, and its SQLite file if any."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url, None  # Database says it is invalid, without quoting it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url, None
    database = parsed.database
    assert database is not None
    if database.startswith("file:"):
        # Already a URI: mode=ro can be added, but its file is for SQLite to find.
        return parsed.update_query_dict({"mode": "ro"}).render_as_string(hide_password=False), None
    path = Path(database)
    uri = parsed.set(database="file:" + quote(str(path))).update_query_dict(
        {"mode": "ro", "uri": "true"}
    )
    return uri.render_as_string(hide_password=False), path
