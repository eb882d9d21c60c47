"""Recorder: what the rest of onwatch calls to keep a finished run.

It stores the run in the database; when that fails, for any reason (the database is down or
read-only, or a driver chokes on the run's content), it spools the run to disk; when the spool
cannot be written either (a full or read-only disk), it keeps the run in memory, up to
``MEMORY_LIMIT`` runs, the oldest dropped and counted beyond that. Each ``record`` and
``replay`` first writes out what waits, oldest first: spooled runs into the database, then runs
in memory into the database, else into the spool. Recording never raises.

What it is doing is a ``Recording``, handed to ``on_change`` whenever it changes (the daemon's
alarm and ``/healthz`` read it). An outage is logged once when it starts and once when it ends,
not once per run; a run that the database refuses for its content is logged with its traceback
once, not at every replay.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from onwatch.errors import StoreError
from onwatch.model import Run, utcnow
from onwatch.store.protocols import Store
from onwatch.store.spool import Spool

__all__ = ["MEMORY_LIMIT", "Recorder", "Recording"]

# Runs kept in memory while no disk takes them: a day of 7 checks every minute, a few MB.
MEMORY_LIMIT = 10_000

STORED = "stored"
SPOOLED = "spooled"
IN_MEMORY = "in memory"

# Why runs are not reaching the database, as ``monitor.degraded`` and /healthz name it.
DATABASE = "database"  # the database refuses writes: runs are spooled, safe on disk
UNSTORABLE = "unstorable"  # the database refused a run for its content: it waits in the spool
DISK_FULL = "disk_full"  # neither the database nor the spool can be written: no space
UNWRITABLE = "unwritable"  # neither can be written: read-only, permissions...
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _logger() -> logging.Logger:
    return logging.getLogger("onwatch.store")


@dataclass(frozen=True)
class Recording:
    """Where runs go now, and what waits: one consistent picture of the recorder."""

    problem: str | None = None  # None while every run reaches the database
    since: datetime | None = None  # when the current problem began
    error: str | None = None  # the last failure, one line
    last_write_ok: bool | None = None  # the last write of a run into the database; None: none yet
    spooled: int = 0  # runs waiting in the spool
    in_memory: int = 0  # runs waiting in memory (lost if onwatch stops now)
    dropped: int = 0  # runs dropped from memory since onwatch started
    dropped_now: int = 0  # of which during the current problem

    @property
    def losing(self) -> bool:
        """Tell whether runs are held in memory or dropped: not safe anywhere."""
        return self.problem in (DISK_FULL, UNWRITABLE)


class Recorder:
    """Store runs, else spool them, else keep them in memory; safe to share between threads."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        *,
        memory_limit: int = MEMORY_LIMIT,
        on_change: Callable[[Recording], None] | None = None,
        on_kept: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.spool = spool
        self.memory_limit = memory_limit
        self.on_change = on_change
        # Told the id of each run held in memory once a disk or the database has it at last,
        # so that the runner can drop the files it kept in flight for it.
        self.on_kept = on_kept
        self.clock = clock
        # Several checks finish at once in the daemon; one lock keeps replay and spool
        # operations from interleaving and keeps the outage bookkeeping consistent.
        self._lock = threading.Lock()
        self._memory: deque[Run] = deque()
        self._state = Recording()
        self._db_down = False
        self._spool_down = False
        self._spool_problem = DISK_FULL
        self._tried = False  # whether this call has tried the database yet
        self._unstorable: set[str] = set()  # runs whose refusal was logged already
        # A database that was unreachable at start-up, or restored empty after an outage,
        # may lack the tables; ensure_schema is cheap once it is at head.
        self._schema_ready = False

    def record(self, run: Run) -> str:
        """Keep a run; return "stored", "spooled" or "in memory". Never raises."""
        with self._lock:
            before = self._state
            self._flush()
            where = self._keep(run)
            # Told under the lock, so that listeners hear the states in the order they came.
            self._tell(before, self._update())
        return where

    def replay(self) -> int:
        """Write out what waits (spool, then memory), oldest first; return how many were stored."""
        with self._lock:
            before = self._state
            stored = self._flush()
            self._tell(before, self._update())
        return stored

    def hand_over(self) -> list[Run]:
        """Return and forget the runs held in memory, oldest first, for the next recorder.

        A reload replaces the recorder; the runs it could write nowhere go on to the next one.
        """
        with self._lock:
            held = list(self._memory)
            self._memory.clear()
            self._update()
        return held

    def adopt(self, runs: list[Run]) -> None:
        """Hold runs that the previous recorder kept in memory, then try to write them out."""
        if not runs:
            return
        with self._lock:
            before = self._state
            for run in runs:
                self._to_memory(run)
            self._flush()
            self._tell(before, self._update())

    def pending(self) -> int:
        """Return the number of runs waiting, in the spool or in memory."""
        return self._spooled() + len(self._memory)

    def state(self) -> Recording:
        """Return what the recorder is doing now."""
        with self._lock:
            return self._state

    # -- keeping one run ---------------------------------------------------------------------

    def _keep(self, run: Run) -> str:
        # While runs wait because the database just failed, a new run goes behind them.
        if not self._failed_now() and self._store(run) == STORED:
            return STORED
        if self._to_spool(run):
            return SPOOLED
        self._to_memory(run)
        return IN_MEMORY

    def _failed_now(self) -> bool:
        """Tell whether the database refused a write during this call (no use asking again)."""
        return self._tried and self._db_down

    def _store(self, run: Run) -> str:
        """Save one run; return STORED, else DATABASE (down) or UNSTORABLE (refused this run)."""
        self._tried = True
        try:
            if not self._schema_ready:
                self.store.ensure_schema()
                self._schema_ready = True
            self.store.runs.save_run(run)  # False (already stored) is as good as stored
        except StoreError as exc:
            self._database_failed(exc)
            return DATABASE
        except Exception as exc:  # noqa: BLE001 - any failure must leave the run safe
            self._refused(run, exc)
            return UNSTORABLE
        self._unstorable.discard(run.id)
        self._state = replace(self._state, last_write_ok=True)
        if self._db_down:
            self._db_down = False
            _logger().info("database writable again; %d run(s) still waiting", self.pending())
        return STORED

    def _to_spool(self, run: Run) -> bool:
        try:
            self.spool.put(run)
        except Exception as exc:  # noqa: BLE001 - a spool that fails sends the run to memory
            self._spool_failed(exc)
            return False
        if self._spool_down:
            self._spool_down = False
            _logger().info("spool %s writable again", self.spool.directory)
        return True

    def _to_memory(self, run: Run) -> None:
        self._memory.append(run)
        while len(self._memory) > self.memory_limit:
            lost = self._memory.popleft()
            self._state = replace(
                self._state,
                dropped=self._state.dropped + 1,
                dropped_now=self._state.dropped_now + 1,
            )
            _logger().error(
                "run %s of %s dropped: %d runs already wait in memory and no disk takes them",
                lost.id,
                lost.check,
                self.memory_limit,
                extra={"fields": {"dropped": self._state.dropped}},
            )

    # -- writing out what waits --------------------------------------------------------------

    def _flush(self) -> int:
        self._tried = False
        stored = self._replay_spool() + self._drain_memory()
        if stored:
            _logger().info(
                "wrote %d waiting run(s) into the database; %d still waiting",
                stored,
                self.pending(),
            )
        return stored

    def _replay_spool(self) -> int:
        if not self._spooled():
            return 0
        try:
            waiting = self.spool.pending()
        except OSError as exc:
            _logger().warning("cannot read the spool %s: %s", self.spool.directory, exc)
            return 0
        stored = 0
        for run in waiting:
            outcome = self._store(run)
            if outcome == DATABASE:
                break
            if outcome == UNSTORABLE:
                continue  # it waits where it is, and must not block the runs behind it
            # Removed only once stored: a crash in between replays a run that save_run skips.
            try:
                self.spool.remove(run.id)
            except OSError as exc:
                _logger().warning("cannot remove spooled run %s: %s", run.id, exc)
            stored += 1
        return stored

    def _drain_memory(self) -> int:
        stored = 0
        while self._memory:
            run = self._memory[0]
            if not self._failed_now() and self._store(run) == STORED:
                stored += 1
            elif not self._to_spool(run):
                break
            self._memory.popleft()
            if self.on_kept is not None:
                try:
                    self.on_kept(run.id)
                except Exception:  # noqa: BLE001 - the run is kept; tidying up may fail
                    _logger().exception("could not tidy up after run %s", run.id)
        return stored

    # -- bookkeeping -------------------------------------------------------------------------

    def _spooled(self) -> int:
        try:
            return len(self.spool)
        except OSError:
            return 0

    def _database_failed(self, exc: StoreError) -> None:
        self._schema_ready = False
        self._state = replace(self._state, last_write_ok=False, error=_one_line(exc))
        if not self._db_down:
            self._db_down = True
            _logger().warning(
                "database unavailable, spooling runs to %s until it is back: %s",
                self.spool.directory,
                exc,
            )

    def _refused(self, run: Run, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self._state = replace(self._state, last_write_ok=False, error=_one_line(reason))
        if run.id in self._unstorable:
            return
        self._unstorable.add(run.id)
        _logger().error(
            "the database refused run %s of %s; it waits in the spool: %s",
            run.id,
            run.check,
            reason,
            exc_info=exc,
            extra={"fields": {"check": run.check, "run_id": run.id}},
        )

    def _spool_failed(self, exc: Exception) -> None:
        self._state = replace(self._state, error=_one_line(f"spool: {exc}"))
        self._spool_problem = _disk_problem(exc)
        if not self._spool_down:
            self._spool_down = True
            _logger().error(
                "cannot write the spool %s (%s): runs are kept in memory, up to %d, "
                "until a disk takes them",
                self.spool.directory,
                exc,
                self.memory_limit,
            )

    def _update(self) -> Recording:
        """Work out the problem now from what waits; the lock is held."""
        spooled = self._spooled()
        in_memory = len(self._memory)
        problem: str | None = None
        if in_memory:
            problem = self._spool_problem
        elif self._db_down or (spooled and not self._unstorable):
            problem = DATABASE
        elif spooled:
            problem = UNSTORABLE
        state = self._state
        if problem is None:
            state = replace(state, problem=None, since=None, dropped_now=0)
        elif state.problem is None:
            state = replace(state, problem=problem, since=self.clock())
        else:
            state = replace(state, problem=problem)
        self._state = replace(state, spooled=spooled, in_memory=in_memory)
        return self._state

    def _tell(self, before: Recording, after: Recording) -> None:
        if after == before or self.on_change is None:
            return
        try:
            self.on_change(after)
        except Exception:  # noqa: BLE001 - who listens must not make recording fail
            _logger().exception("could not report the recording state")


def _one_line(reason: object) -> str:
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else ""


def _disk_problem(exc: Exception) -> str:
    """Name why a disk refused a write: full, or unwritable for another reason."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return DISK_FULL
    return UNWRITABLE
