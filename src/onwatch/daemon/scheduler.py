"""The scheduling loop of ``onwatch run``: due checks go to the runner, at most N at a time.

Timing is monotonic: an interval check keeps its rhythm when the wall clock jumps; cron checks
follow the wall clock, as cron does; both clocks are passed in, and ``run`` is ``start``, then
``cycle`` until stopped, then ``drain``, so the loop can be driven one pass at a time. After a
restart a check resumes from its last recorded slot; of the slots missed while onwatch was
down, only the latest runs, and later slots keep the check's phase. A check whose previous
run is still going is not started twice: the slot is recorded as skipped, off the loop
(``SkipLog``: a locked or unreachable database never holds the loop, and no row is lost), and
logged at most once a minute per check with a count. Each slot started or skipped goes to the
overload monitor. On stop, runs in flight get ``drain_timeout`` to finish; then they are killed
and recorded as interrupted, with the tests that finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from onwatch.config import Check, Config
from onwatch.daemon.overload import OverloadMonitor
from onwatch.daemon.skips import SkipLog
from onwatch.errors import OnwatchError, StoreError, TriggerRefused
from onwatch.model import Run, RunStatus, Trigger, utcnow
from onwatch.schedule import following_slot, interval_of, jitter, next_slot

if TYPE_CHECKING:
    from onwatch.runner.execute import Runner
    from onwatch.store import Runs
    from onwatch.store.recorder import Recorder

# Named as before this module moved into daemon/: the name is in every JSON log line.
log = logging.getLogger("onwatch.scheduler")
run_log = logging.getLogger("onwatch.run")
MAX_SLEEP = 1.0
REPLAY_EVERY = 5.0
SKIP_WARNING_EVERY = 60.0
# At a stop, how long the skipped slots still queued may take to be written.
SKIPS_STOP_SECONDS = 10.0


@dataclass
class Slot:
    """When a check is next due, in wall-clock time (recorded) and monotonic time (waited for)."""

    at: datetime
    due: float
    running: Future[None] | None = field(default=None)
    # Missed while onwatch was down, so run late: the next slot is found on the wall clock,
    # which keeps the check on its grid instead of one interval after this late start.
    missed: bool = False


class Scheduler:
    """Runs the enabled checks of a configuration on their schedules until stopped."""

    def __init__(
        self,
        config: Config,
        runner: Runner,
        recorder: Recorder,
        store: Runs,
        *,
        stopping: threading.Event,
        kill: threading.Event,
        on_recorded: Callable[[Run, str], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        review: Callable[[Run], Run] | None = None,
        on_cycle: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        skips: SkipLog | None = None,
        overload: OverloadMonitor | None = None,
    ) -> None:
        self.config = config
        self.runner = runner
        self.recorder = recorder
        self.store = store
        self.stopping = stopping
        self.kill = kill
        self.checks = {n: c for n, c in config.checks.items() if c.enabled}
        self.slots: dict[str, Slot] = {}
        self.executor = ThreadPoolExecutor(
            max_workers=config.settings.max_parallel, thread_name_prefix="onwatch-run"
        )
        self.clock = clock  # wall time: slots, cron, when a run started
        self.monotonic = monotonic  # what the loop waits on
        self.last_tick = monotonic()
        self._last_replay = self.last_tick
        self._manual_lock = threading.Lock()  # run_now comes from web threads
        self.on_recorded = on_recorded  # alerting: after each run is recorded
        self.on_tick = on_tick  # alerting: reminders and silences that ended
        self.review = review  # selection drift: may turn a run into an error before it is kept
        self.on_cycle = on_cycle  # each loop pass: health for /healthz, the heartbeat
        self.skips = skips if skips is not None else SkipLog(store)
        self.overload = overload
        self._recovered = False
        # check -> (when its last skip warning was logged, skips since then)
        self._skip_warned: dict[str, tuple[float, int]] = {}

    def run(self) -> None:
        """Schedule and run checks until ``stopping`` is set; then drain and return."""
        self.start()
        while not self.stopping.is_set():
            self.stopping.wait(self.cycle())
        self.drain()

    def start(self) -> None:
        """Record what a dead onwatch left (unless done), then plan each check's first slot."""
        self.recover()
        self.skips.start()
        if not self.slots:
            self.plan()
        self._last_replay = self.monotonic()

    def recover(self) -> None:
        """Record the runs a dead onwatch left in flight, and write the spooled runs, once.

        Called before the slots missed while down are counted, so a slot that was in fact
        run is never taken for a missed one.
        """
        if self._recovered:
            return
        self._recovered = True
        self._recover()
        if self.recorder.pending():
            self.recorder.replay()

    def cycle(self) -> float:
        """Go once round the loop: start what is due, replay, tick; return seconds to wait."""
        now = self.monotonic()
        self.last_tick = now
        if self.on_cycle is not None:
            self.on_cycle()
        for name, slot in self.slots.items():
            if slot.due <= now:
                self._start_or_skip(name, slot)
                self._advance(name, slot, now)
        if self.overload is not None:
            self.overload.evaluate()
        if now - self._last_replay >= REPLAY_EVERY:
            self._last_replay = now
            if self.recorder.pending():
                self.recorder.replay()
            if self.on_tick is not None:
                self.on_tick()
        wake = min((s.due for s in self.slots.values()), default=now + MAX_SLEEP)
        return max(0.0, min(wake - self.monotonic(), MAX_SLEEP))

    def _recover(self) -> None:
        for run in self.runner.recover():
            log.warning(
                "recovered a run left in flight",
                extra={"fields": {"check": run.check, "run_id": run.id}},
            )
            self._record(run)

    def plan(self, as_of: datetime | None = None) -> None:
        """Plan each check's first slot from its history: the latest slot at or before ``as_of``
        (default: now) that was not run runs at once.

        The slots missed while down are counted as of the same moment (``Watchdog.record_gap``),
        so that every slot is either run or recorded as missed, whatever passes in between.
        """
        try:
            history = self.store.history(list(self.checks), self.clock())
            for name, check in self.checks.items():
                self.store.upsert_check(name, check.digest(), check.schedule)
        except StoreError as exc:
            log.warning("database unreachable at start; scheduling from scratch: %s", exc)
            history = {}
        # Both clocks read together, after the database: a slow start must not shift every
        # later slot by the seconds it took.
        now_wall, now = self.clock(), self.monotonic()
        for name, check in self.checks.items():
            last = history[name].last_slot if name in history else None
            # A check never run starts now; the others from where the missed slots were counted.
            at = next_slot(
                check, last, now_wall if last is None else min(as_of or now_wall, now_wall)
            )
            due = self._due(name, check, at, now_wall, now)
            self.slots[name] = Slot(at=at, due=due, missed=at < now_wall)

    def _due(self, name: str, check: Check, at: datetime, now_wall: datetime, now: float) -> float:
        spread = jitter(name, interval_of(check, now_wall), self.config.settings.max_jitter)
        return now + max(0.0, (at - now_wall).total_seconds()) + spread

    def _advance(self, name: str, slot: Slot, now: float) -> None:
        check = self.checks[name]
        if check.every is not None and not slot.missed and slot.due + check.every > now:
            # Keep an interval check's rhythm on the monotonic clock.
            slot.at += timedelta(seconds=check.every)
            slot.due += check.every
            return
        # Both clocks read together: ``now`` is when the loop pass began, and starting the
        # checks due in it may have taken a while.
        now_wall, now = self.clock(), self.monotonic()
        following = following_slot(check, slot.at, now_wall)
        if check.every is not None:
            # The slots passed over are recorded: "down" when they passed while onwatch was
            # starting after missing slots, "late" when the loop went round too late for them.
            reason = "down" if slot.missed else "late"
            passed = slot.at + timedelta(seconds=check.every)
            while passed < following:
                self.skips.record_skipped_slot(name, passed, reason)
                if reason == "late" and self.overload is not None:
                    self.overload.skipped(name, reason)
                passed += timedelta(seconds=check.every)
        slot.at = following
        slot.due = self._due(name, check, slot.at, now_wall, now)
        slot.missed = False

    def _start_or_skip(self, name: str, slot: Slot) -> None:
        with self._manual_lock:
            busy = slot.running is not None and not slot.running.done()
            if not busy:
                slot.running = self.executor.submit(
                    self._run_check, name, slot.at, Trigger.SCHEDULE, slot.due
                )
        if busy:
            self._warn_skipped(name, slot.at)
            self.skips.record_skipped_slot(name, slot.at, "overlap")
            if self.overload is not None:
                self.overload.skipped(name)

    def _warn_skipped(self, name: str, at: datetime) -> None:
        """Log a skipped slot, at most one line per check a minute, with how many there were."""
        now = self.monotonic()
        last, count = self._skip_warned.get(name, (None, 0))
        count += 1
        if last is not None and now - last < SKIP_WARNING_EVERY:
            self._skip_warned[name] = (last, count)
            return
        self._skip_warned[name] = (now, 0)
        log.warning(
            "previous run still going; slot skipped",
            extra={"fields": {"check": name, "scheduled_for": at.isoformat(), "skipped": count}},
        )

    def run_now(self, name: str) -> str:
        """Start a manual run of an enabled check at once; raise TriggerRefused if it cannot."""
        if name not in self.checks:
            raise TriggerRefused(f"check {name!r} is not enabled", status=409)
        if self.stopping.is_set():
            raise TriggerRefused("onwatch is stopping", status=503)
        with self._manual_lock:
            slot = self.slots.get(name)
            if slot is None:
                raise TriggerRefused("onwatch is starting; try again in a moment", status=503)
            if slot.running is not None and not slot.running.done():
                raise TriggerRefused(f"{name} is running now; its result comes soon", status=409)
            # Held in the slot, so the next scheduled slot waits for it like for any run.
            slot.running = self.executor.submit(self._run_check, name, None, Trigger.MANUAL)
        log.info("manual run requested", extra={"fields": {"check": name}})
        return f"a run of {name} has started"

    def _run_check(
        self,
        name: str,
        scheduled_for: datetime | None,
        trigger: Trigger = Trigger.SCHEDULE,
        due: float | None = None,
    ) -> None:
        check = self.checks[name]
        if due is not None and self.overload is not None:
            # A run that waited for a free worker starts late: that is what the figure shows.
            self.overload.started(self.monotonic() - due)
        started = self.clock()
        try:
            run = self.runner.execute(name, check, trigger=trigger, scheduled_for=scheduled_for)
        except Exception as exc:  # noqa: BLE001 - one broken check must not stop the others
            reason = str(exc) if isinstance(exc, OnwatchError) else f"{type(exc).__name__}: {exc}"
            log.exception("check %s could not run", name)
            run = Run(
                id=_new_id(),
                check=name,
                status=RunStatus.ERROR,
                started_at=started,
                finished_at=self.clock(),
                error=f"onwatch could not run the check: {reason}",
                trigger=trigger,
                scheduled_for=scheduled_for,
                config_digest=check.digest(),
            )
        if self.review is not None:
            try:
                run = self.review(run)
            except Exception:  # noqa: BLE001 - a review that fails must not lose the run
                log.exception("could not review run %s of %s", run.id, name)
        self._record(run)

    def _record(self, run: Run) -> None:
        try:
            where = self.recorder.record(run)
        except Exception:  # noqa: BLE001 - keep the loop alive; the run stays in flight on disk
            log.exception("could not record run %s of %s", run.id, run.check)
            return
        if where in ("stored", "spooled"):
            # A run held in memory (no disk took it) keeps whatever it has on disk in flight:
            # if onwatch dies before a disk takes it, the next start recovers it from there.
            self.runner.discard(run.id)
        log_run(run, where)
        if self.on_recorded is not None:
            try:
                self.on_recorded(run, where)
            except Exception:  # noqa: BLE001 - the run is kept; what follows it must not kill us
                log.exception("could not process run %s of %s", run.id, run.check)

    def drain(self) -> None:
        """Let runs in flight finish within ``drain_timeout``, then kill them; wait for all."""
        running = [s.running for s in self.slots.values() if s.running and not s.running.done()]
        if running:
            log.info(
                "stopping: waiting for runs in flight",
                extra={"fields": {"runs": len(running)}},
            )
            done, pending = wait(running, timeout=self.config.settings.drain_timeout)
            if pending:
                log.warning("stopping: killing runs still in flight")
                self.kill.set()
                wait(pending)
        self.executor.shutdown(wait=True)
        self.skips.stop(timeout=SKIPS_STOP_SECONDS)


def log_run(run: Run, recorded: str) -> None:
    """Log the one line per run that ``onwatch run`` promises."""
    counts = {k: v for k, v in run.counts().items() if v}
    fields: dict[str, object] = {
        "check": run.check,
        "status": run.status.value,
        "tests": sum(counts.values()),
        **counts,
        "duration": f"{run.duration:.2f}s",
        "run_id": run.id,
    }
    if recorded != "stored":
        fields["recorded"] = recorded
    if run.error:
        fields["error"] = run.error.splitlines()[0][:300]
    level = logging.INFO if run.status is RunStatus.PASSED else logging.WARNING
    run_log.log(level, "run finished", extra={"fields": fields})


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())
