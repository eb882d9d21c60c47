"""SqlArtifactIndex: which stored files the results of given checks list, read from SQL.

The web asks it for the sensitive checks: what ``/artifacts`` hides below admin. Nothing in the
database indexes results by file. Asking it on each request means reading every result of the
sensitive checks whenever a reader opens a file that none of them lists (the common case: a
screenshot of an ordinary check): 1.3 s a request at 500,000 such results on SQLite, and
growing with the history. So ``SensitiveFiles`` keeps the digests of one set of checks in
memory and brings them up to date before each answer, reading only what is new:

- a run and its results are inserted together and never changed or deleted, so the number of
  runs of the sensitive checks tells whether anything is new: one count over the index
  ``ix_runs_check_started`` per request (6 ms at 10,000 runs);
- when it grew by exactly the runs that started after the latest one read, only those runs'
  results are read, through ``ix_results_run_id``;
- otherwise a run arrived late (replayed from the spool after an outage, with an older start),
  and every result of the sensitive checks is read again, as on the first request (1.3 s at
  500,000 results, once).

What it holds is one 32-byte digest per distinct file the sensitive checks ever listed.

A time window (from the file's age or the artifact retention) or the set of files seen on the
pages shown would be cheaper still, but each can miss a reference: an old result whose file a
later run stored again, a run replayed late, a link opened after a restart. A miss would serve
a file of a sensitive check, so this stays exact. Only callers below admin ask, and only for
files still stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, case, cast, false, func, select

from onwatch.store.database import Database
from onwatch.store.schema import results, runs

__all__ = ["SensitiveFiles", "SqlArtifactIndex"]


class SqlArtifactIndex:
    """The ``ArtifactIndex`` of a ``Database``: one ``SensitiveFiles`` per set of checks asked."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._files: dict[frozenset[str], SensitiveFiles] = {}

    def lists(self, checks: Sequence[str], sha256: str) -> bool:
        """Tell whether any result of one of ``checks`` lists the file ``sha256``."""
        key = frozenset(checks)
        with self._lock:
            files = self._files.get(key)
            if files is None:
                files = self._files[key] = SensitiveFiles(self._db, sorted(key))
        return files.lists(sha256)


class SensitiveFiles:
    """The files listed by any result of the given checks, read incrementally from the store."""

    def __init__(self, db: Database, checks: Sequence[str]) -> None:
        self._db = db
        self._checks = list(checks)
        self._lock = threading.Lock()
        self._digests: set[bytes] = set()
        self._runs = -1  # runs of the checks when last read; -1 before the first read
        self._latest: datetime | None = None  # the latest start among them

    def lists(self, sha256: str) -> bool:
        """Tell whether a result of one of the checks lists the file ``sha256``."""
        wanted = _digest(sha256)
        if not self._checks or wanted is None:
            return False
        with self._lock:
            self._catch_up()
            return wanted in self._digests

    def _catch_up(self) -> None:
        with self._db.read("cannot read the files of sensitive checks") as conn:
            of_checks = runs.c.check.in_(self._checks)
            after = false() if self._latest is None else runs.c.started_at > self._latest
            tally = select(
                func.count(),
                func.max(runs.c.started_at),
                func.coalesce(func.sum(case((after, 1), else_=0)), 0),
            ).where(of_checks)
            count, latest, newer = conn.execute(tally).one()
            if count == self._runs:
                return
            # A result without files holds JSON null: skipped in SQL, not parsed one by one.
            query = select(results.c.artifacts).where(cast(results.c.artifacts, Text) != "null")
            if self._runs >= 0 and count - self._runs == newer:
                new_runs = select(runs.c.id).where(of_checks, after)
                query = query.where(results.c.run_id.in_(new_runs))
            else:
                query = query.where(results.c.check.in_(self._checks))
            # Runs stored after the count are read here too, or found as new by the next count:
            # the count is taken first, so none falls between the two.
            self._digests.update(_digests(row.artifacts for row in conn.execute(query)))
        self._runs, self._latest = int(count), latest


def _digest(sha256: str) -> bytes | None:
    """Return the bytes of a hex digest; None for anything else (an empty or mangled name)."""
    try:
        return bytes.fromhex(sha256) if sha256 else None
    except ValueError:
        return None


def _digests(listed: Iterable[Any]) -> Iterable[bytes]:
    for artifacts in listed:
        for artifact in artifacts or ():
            sha = artifact.get("sha256") if isinstance(artifact, dict) else None
            found = _digest(sha) if isinstance(sha, str) else None
            if found is not None:
                yield found
