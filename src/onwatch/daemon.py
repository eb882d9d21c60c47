"""``onwatch run``: wire configuration, store, runner and scheduler into a long-running process.

SIGINT or SIGTERM stops scheduling and lets runs in flight finish (up to ``drain_timeout``);
a second signal kills them at once. Either way each run is recorded, interrupted ones included.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from onwatch.config import Config
from onwatch.errors import StoreError
from onwatch.logs import configure_logging

if TYPE_CHECKING:
    from onwatch.alerting.channels import Channel
    from onwatch.alerting.outbox import Outbox, OutboxWorker
    from onwatch.model import Run
    from onwatch.store.sql import SqlStore
    from onwatch.watchdog import Watchdog

log = logging.getLogger("onwatch.daemon")
OUTBOX_GRACE_SECONDS = 5.0


def run_daemon(
    config: Config,
    *,
    log_level: str = "info",
    log_format: str = "text",
    stopping: threading.Event | None = None,
) -> int:
    """Run every enabled check on its schedule until a signal (or ``stopping``) says stop."""
    from onwatch.alerting.engine import Alerting
    from onwatch.runner.execute import Runner
    from onwatch.scheduler import Scheduler
    from onwatch.store import open_store
    from onwatch.store.recorder import Recorder
    from onwatch.store.spool import Spool
    from onwatch.watchdog import DatabaseAlarm, Watchdog

    configure_logging(log_level, log_format)
    stopping = stopping or threading.Event()
    kill = threading.Event()
    _handle_signals(stopping, kill)
    store = open_store(config.database_url)
    try:
        store.ensure_schema()
    except StoreError as exc:
        log.warning("database unreachable; runs are spooled until it is back: %s", exc)
    recorder = Recorder(store, Spool(config.state_dir / "spool"))
    runner = Runner(config, stop=kill)
    channels, outbox, worker = _start_outbox(config, store)
    alerting = Alerting(config, store, outbox, on_enqueue=worker.wake)
    watchdog = Watchdog(config, notify=alerting.send)
    alarm = DatabaseAlarm(config, channels)
    _look_back(config, store, watchdog)

    def recorded(run: Run, where: str) -> None:
        alarm.on_recorded(run, where)
        watchdog.on_run(run)
        alerting.on_run(run)

    def tick() -> None:
        watchdog.check()
        alerting.tick()

    scheduler = Scheduler(
        config,
        runner,
        recorder,
        store,
        stopping=stopping,
        kill=kill,
        on_recorded=recorded,
        on_tick=tick,
        review=lambda run: _review(config, store, run),
    )
    enabled = [name for name, check in config.checks.items() if check.enabled]
    log.info(
        "onwatch started",
        extra={"fields": {"config": str(config.path), "checks": ",".join(enabled)}},
    )
    try:
        scheduler.run()
    finally:
        recorder.replay()
        # Give notifications just queued a moment to leave; what remains is sent next start.
        worker.stop(timeout=OUTBOX_GRACE_SECONDS)
        outbox.close()
        store.close()
    log.info("onwatch stopped", extra={"fields": {"spooled": recorder.pending()}})
    return 0


def _look_back(config: Config, store: SqlStore, watchdog: Watchdog) -> None:
    """Seed the watchdog with the stored history and record what was missed while down."""
    from onwatch.model import utcnow

    try:
        history = store.history(list(config.checks), utcnow())
        watchdog.seed(history)
        watchdog.record_gap(store, history)
    except StoreError as exc:
        log.warning("cannot look back at the history: %s", exc)


def _review(config: Config, store: SqlStore, run: Run) -> Run:
    """Turn a run whose selection drifted into an error, judged against its recent runs."""
    from onwatch.analysis.drift import with_drift
    from onwatch.store.incidents import IncidentStore

    check = config.checks.get(run.check)
    if check is None:
        return run
    try:
        recent = IncidentStore(store).collected_counts(run.check)
    except StoreError:
        recent = []  # the all-skipped rule still applies without history
    return with_drift(run, recent, check.min_collected_ratio)


def _start_outbox(
    config: Config, store: SqlStore
) -> tuple[dict[str, Channel], Outbox, OutboxWorker]:
    from onwatch.alerting.channels import build_channel
    from onwatch.alerting.outbox import Outbox, OutboxWorker
    from onwatch.store.outbox import OutboxStore

    channels = {name: build_channel(name, settings) for name, settings in config.channels.items()}
    windows = {name: float(settings["group_window"]) for name, settings in config.channels.items()}
    outbox = Outbox(OutboxStore(store), channels, group_window=windows)
    worker = OutboxWorker(outbox)
    worker.start()
    return channels, outbox, worker


def _handle_signals(stopping: threading.Event, kill: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled in the main thread (tests run the daemon in one)

    def on_signal(number: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            log.warning("second %s: killing runs in flight", signal.Signals(number).name)
            kill.set()
        else:
            log.info("%s: finishing runs in flight, then stopping", signal.Signals(number).name)
            stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
