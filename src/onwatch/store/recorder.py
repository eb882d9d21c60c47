"""Recorder: what the rest of onwatch calls to keep a finished run.

It stores the run, or spools it while the database is unreachable, and replays the spool oldest
first as soon as the database answers again. An outage is logged once when it starts and once
when it ends, not once per run.
"""

from __future__ import annotations

import logging
import threading

from onwatch.errors import StoreError
from onwatch.model import Run
from onwatch.store.protocols import Store
from onwatch.store.spool import Spool


def _logger() -> logging.Logger:
    return logging.getLogger("onwatch.store")


class Recorder:
    """Store runs, spooling them while the database is down; safe to share between threads."""

    def __init__(self, store: Store, spool: Spool) -> None:
        self.store = store
        self.spool = spool
        # Several checks finish at once in the daemon; one lock keeps replay and spool
        # operations from interleaving and keeps the outage bookkeeping consistent.
        self._lock = threading.Lock()
        self._down = False
        # A database that was unreachable at start-up, or restored empty after an outage,
        # may lack the tables; ensure_schema is cheap once it is at head.
        self._schema_ready = False

    def record(self, run: Run) -> str:
        """Store a run, or spool it if the database fails; return "stored" or "spooled"."""
        with self._lock:
            self._replay()
            try:
                self._save(run)
            except StoreError as exc:
                self._spool(run, exc)
                return "spooled"
            self._recovered()
            return "stored"

    def replay(self) -> int:
        """Store spooled runs oldest first until one fails; return how many were stored."""
        with self._lock:
            return self._replay()

    def pending(self) -> int:
        """Return the number of runs waiting in the spool."""
        return len(self.spool)

    def _save(self, run: Run) -> None:
        if not self._schema_ready:
            self.store.ensure_schema()
            self._schema_ready = True
        self.store.runs.save_run(run)  # False (already stored) is as good as stored

    def _replay(self) -> int:
        if not len(self.spool):
            return 0
        replayed = 0
        for run in self.spool.pending():
            try:
                self._save(run)
            except StoreError as exc:
                self._failed(exc)
                break
            # Removed only once stored: a crash in between replays a run that save_run skips.
            self.spool.remove(run.id)
            replayed += 1
        else:
            self._recovered()
        if replayed:
            _logger().info("replayed %d spooled run(s) into the database", replayed)
        return replayed

    def _spool(self, run: Run, exc: StoreError) -> None:
        self._failed(exc)
        try:
            self.spool.put(run)
        except OSError as error:
            raise StoreError(
                f"cannot spool run {run.id} to {self.spool.directory} ({error}) after: {exc}"
            ) from error

    def _failed(self, exc: StoreError) -> None:
        self._schema_ready = False
        if not self._down:
            self._down = True
            _logger().warning(
                "database unavailable, spooling runs to %s until it is back: %s",
                self.spool.directory,
                exc,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            _logger().info("database available again; %d run(s) still spooled", len(self.spool))
