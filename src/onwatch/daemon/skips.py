"""Skipped slots are written off the scheduling loop, and kept while the database cannot take them.

The loop only queues a row (``record_skipped_slot`` returns at once); a writer thread stores the
queue in order. While the database is locked or down, a write may wait seconds and then fail:
the row goes back to the head of the queue and the writer tries again a moment later, so the
loop never waits and no row is lost. The queue is bounded: beyond ``limit`` rows the oldest is
dropped and counted (``dropped``), and the count is logged. Rows still queued when onwatch
stops (the database still down) are kept in a file (``spill``) and queued again at the next
start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Protocol

from onwatch.errors import StoreError

log = logging.getLogger("onwatch.scheduler")
SKIP_QUEUE_LIMIT = 10_000
RETRY_SECONDS = 1.0


class SkippedSlots(Protocol):
    """Where skipped slots go: the store's runs, or a ``SkipLog`` in front of them."""

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why ("overlap", "down")."""


class SkipLog:
    """A bounded queue of skipped-slot rows and the thread that writes them to the store."""

    def __init__(
        self,
        store: SkippedSlots,
        *,
        limit: int = SKIP_QUEUE_LIMIT,
        retry: float = RETRY_SECONDS,
        spill: Path | None = None,
    ) -> None:
        self.store = store
        self.spill = spill
        self.limit = limit
        self.retry = retry
        self.written = 0
        self.dropped = 0
        self._rows: deque[tuple[str, datetime, str]] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._failing = False
        self._writing = False
        self._thread: threading.Thread | None = None

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Queue a skipped slot for the writer; never waits for the database."""
        with self._changed:
            self._rows.append((check, scheduled_for, reason))
            self._trim()
            self._changed.notify_all()

    def pending(self) -> int:
        """Return how many rows wait to be written (the one being written included)."""
        with self._changed:
            return len(self._rows) + self._writing

    def start(self) -> None:
        """Queue the rows a stopped onwatch kept, then start the writer thread (once)."""
        if self._thread is None:
            self._load_spill()
            self._thread = threading.Thread(
                target=self._work, name="onwatch-skipped-slots", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write what is queued within ``timeout`` seconds, then stop; log the rows left."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self.flush()
        left = self.pending()
        if left and not self._save_spill():
            log.warning(
                "skipped slots not written: the database did not take them before the stop",
                extra={"fields": {"skipped_slots": left}},
            )

    def _save_spill(self) -> bool:
        """Keep the queued rows in the spill file for the next start; return True if kept."""
        if self.spill is None or (self._thread is not None and self._thread.is_alive()):
            return False
        with self._changed:
            rows = [[check, at.isoformat(), reason] for check, at, reason in self._rows]
        temporary = self.spill.with_name(f".{self.spill.name}.tmp")
        try:
            self.spill.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as out:
                json.dump(rows, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.spill)
        except OSError as exc:
            log.warning("cannot keep the skipped slots not written in %s: %s", self.spill, exc)
            return False
        log.info(
            "skipped slots not written yet are kept for the next start",
            extra={"fields": {"skipped_slots": len(rows), "file": str(self.spill)}},
        )
        return True

    def _load_spill(self) -> None:
        if self.spill is None or not self.spill.exists():
            return
        try:
            rows = json.loads(self.spill.read_text(encoding="utf-8"))
            kept = [(str(c), datetime.fromisoformat(str(a)), str(r)) for c, a, r in rows]
        except (OSError, ValueError, TypeError) as exc:
            log.warning("cannot read the skipped slots kept in %s: %s", self.spill, exc)
            return
        with self._changed:
            self._rows.extendleft(reversed(kept))
            self._trim()
        self.spill.unlink(missing_ok=True)

    def flush(self) -> bool:
        """Write the queued rows in order until one fails; return True if the queue emptied."""
        while True:
            with self._changed:
                if not self._rows:
                    return True
                row = self._rows.popleft()
                self._writing = True
            try:
                self.store.record_skipped_slot(*row)
            except StoreError as exc:
                with self._changed:
                    self._writing = False
                    self._rows.appendleft(row)
                    self._trim()
                    first = not self._failing
                    self._failing = True
                    kept = len(self._rows)
                if first:
                    log.warning(
                        "could not record a skipped slot; it is kept and written when the "
                        "database is back: %s",
                        exc,
                        extra={"fields": {"skipped_slots": kept}},
                    )
                return False
            except Exception:  # noqa: BLE001 - a row the store refuses must not stop the rest
                log.exception("skipped slot of %s at %s cannot be recorded; dropped", *row[:2])
                with self._changed:
                    self._writing = False
                    self.dropped += 1
                continue
            with self._changed:
                self._writing = False
                self.written += 1
                back = self._failing and not self._rows
                if back:
                    self._failing = False
            if back:
                log.info("skipped slots kept during the outage are written")

    def _trim(self) -> None:
        """Drop the oldest rows beyond the limit (the lock is held)."""
        while len(self._rows) > self.limit:
            self._rows.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "too many skipped slots waiting for the database; the oldest are dropped",
                    extra={"fields": {"dropped": self.dropped, "limit": self.limit}},
                )

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._rows and not self._stopping:
                    self._changed.wait()
                if self._stopping and not self._rows:
                    return
            if self.flush():
                continue
            with self._changed:
                if self._stopping:
                    return  # the database refused the last try: stop() logs what is left
                self._changed.wait(self.retry)
