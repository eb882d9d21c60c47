"""``onwatch run``: wire configuration, store, runner and scheduler into a long-running process.

SIGINT or SIGTERM stops scheduling and lets runs in flight finish (up to ``drain_timeout``);
a second signal kills them at once. Either way each run is recorded, interrupted ones included.
SIGHUP reads the config file again: a valid one replaces the running one (runs in flight are
drained as for a stop, then everything starts again from the new config, in the same process);
an invalid one is refused with its reason logged and sent as ``monitor.degraded``, and the
running config carries on untouched.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

from onwatch.channels.notification import Event, Notification
from onwatch.config import Config
from onwatch.errors import OnwatchError, StoreError, TriggerRefused
from onwatch.logs import configure_logging
from onwatch.model import RunStatus, utcnow
from onwatch.state.health import Health

if TYPE_CHECKING:
    from onwatch.alerting.engine import Alerting
    from onwatch.alerting.outbox import Outbox, OutboxWorker
    from onwatch.channels import Channel
    from onwatch.daemon.heartbeat import Heartbeat
    from onwatch.daemon.skips import SkippedSlots
    from onwatch.daemon.watchdog import Watchdog
    from onwatch.model import Run
    from onwatch.runner.execute import Runner
    from onwatch.secrets import Keeper
    from onwatch.store import Store
    from onwatch.store.recorder import Recorder, Recording
    from onwatch.upstream.loop import WatchLoop
    from onwatch.web.server import WebServer

# Named as before this module moved into daemon/: the name is in every JSON log line.
log = logging.getLogger("onwatch.daemon")
OUTBOX_GRACE_SECONDS = 5.0
# /healthz fails when the scheduler loop has not gone round for this long: a pass can wait
# on the database for a few seconds (replaying the spool, alerting), never for a minute.
HEALTHY_TICK_SECONDS = 60.0


class Control:
    """What the signals asked for: stop, kill the runs in flight, read the config again."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self.stopping = stopping or threading.Event()
        self.kill = threading.Event()
        self.reload_asked = threading.Event()  # SIGHUP: read the config at the next loop pass
        self.next_config: Config | None = None  # valid and read: serve it once drained
        # Runs the last config's recorder could write nowhere (disk full): the next one keeps them.
        self.held: list[Run] = []

    def stop(self, name: str) -> None:
        """Stop (a first signal), or kill the runs in flight (a second one)."""
        if self.next_config is not None:
            # A reload was draining: the operator wants out, not the new config.
            self.next_config = None
            log.info("%s: stopping instead of reloading", name)
        elif self.stopping.is_set():
            log.warning("second %s: killing runs in flight", name)
            self.kill.set()
        else:
            log.info("%s: finishing runs in flight, then stopping", name)
            self.stopping.set()

    def ask_reload(self) -> None:
        """Note a SIGHUP; the scheduler loop reads the config at its next pass."""
        if self.stopping.is_set():
            log.info("SIGHUP ignored: onwatch is stopping, or reloading already")
            return
        self.reload_asked.set()

    def reload(self, config: Config, alert: Callable[[Notification], None]) -> None:
        """Read the config again if asked: drain towards a valid one, refuse an invalid one."""
        if not self.reload_asked.is_set():
            return
        self.reload_asked.clear()
        from onwatch.config import load_config

        try:
            fresh = load_config(config.path)
            _can_start(fresh, config)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the running config stays
            reason = str(exc) if isinstance(exc, OnwatchError) else f"{type(exc).__name__}: {exc}"
            log.error(
                "config not reloaded; still running the previous one",
                extra={"fields": {"config": str(config.path), "error": reason}},
            )
            alert(_config_refused(config, reason))
            return
        log.info(
            "reloading the config: finishing runs in flight first",
            extra={"fields": {"config": str(config.path)}},
        )
        self.next_config = fresh
        self.stopping.set()

    def take_next(self) -> Config | None:
        """Return the config to serve next (None: stop), ready to start again."""
        fresh, self.next_config = self.next_config, None
        if fresh is not None:
            self.stopping.clear()
            self.kill.clear()
        return fresh


def _can_start(fresh: Config, running: Config) -> None:
    """Raise OnwatchError for what would stop ``fresh`` from starting once the old one is gone."""
    fresh.database_url  # noqa: B018 - a secret in the URL that cannot be looked up raises
    listen = fresh.settings.listen
    if not listen or listen == running.settings.listen:
        return  # the running server's own address: free once it stops
    import socket

    from onwatch.web.server import parse_listen

    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise OnwatchError(f"cannot listen on {listen}: {exc.strerror or exc}") from None


def _config_refused(config: Config, reason: str) -> Notification:
    from onwatch.model import utcnow

    now = utcnow()
    first = reason.splitlines()[0] if reason else "invalid config"
    return Notification(
        event=Event.MONITOR_DEGRADED,
        key=f"monitor.config|{now.isoformat()}",
        summary=f"onwatch kept its running config: the new {config.path.name} is invalid: {first}",
        severity="warning",
        details={"problem": "config", "config": str(config.path), "error": reason},
    )


def run_daemon(
    config: Config,
    *,
    log_level: str = "info",
    log_format: str = "text",
    stopping: threading.Event | None = None,
) -> None:
    """Run every enabled check on its schedule until a signal (or ``stopping``) says stop."""
    # First thing: no signal may find Python's defaults (SIGHUP would end the process).
    control = Control(stopping)
    _handle_signals(control)
    serving: Config | None = config
    while serving is not None:
        _serve(serving, control, log_level=log_level, log_format=log_format)
        serving = control.take_next()
        if serving is not None:
            log.info("config reloaded", extra={"fields": {"config": str(serving.path)}})


def _serve(config: Config, control: Control, *, log_level: str, log_format: str) -> None:
    """Serve one config until ``control`` says stop (or reload); drain and close everything."""
    from onwatch.alerting.engine import Alerting
    from onwatch.daemon.overload import OverloadMonitor
    from onwatch.daemon.scheduler import Scheduler
    from onwatch.daemon.skips import SkipLog
    from onwatch.daemon.watchdog import DatabaseAlarm, Watchdog, default_channels
    from onwatch.runner.execute import Runner
    from onwatch.secrets import Keeper
    from onwatch.store import open_store
    from onwatch.store.recorder import Recorder
    from onwatch.store.spool import Spool

    keeper = Keeper(config.base_dir)
    configure_logging(log_level, log_format, keeper.mask)
    # Known from the start, so that logs and alerts mask them before any run looks them up.
    for problem in keeper.preload(config.all_secrets()):
        log.warning("%s; runs of the checks that use it are run errors until it is fixed", problem)
    stopping, kill = control.stopping, control.kill
    store = open_store(config.database_url)
    try:
        store.ensure_schema()
    except StoreError as exc:
        log.warning("database unreachable; runs are spooled until it is back: %s", exc)
    runner = Runner(config, stop=kill, keeper=keeper)
    enabled = [name for name, check in config.checks.items() if check.enabled]
    health = Health(enabled)
    scheduler_ready: list[Scheduler] = []

    def trigger(name: str) -> str:
        if not scheduler_ready:
            raise TriggerRefused("onwatch is starting; try again in a moment", status=503)
        return scheduler_ready[0].run_now(name)

    heartbeat = _heartbeat(config, health)
    channels, outbox, worker = _start_outbox(config, store, keeper)
    alerting = Alerting(config, store, outbox, on_enqueue=worker.wake)
    watchdog = Watchdog(config, notify=alerting.send, on_overdue=health.set_overdue)
    alarm = DatabaseAlarm(config, channels)

    def recording(state: Recording) -> None:
        health.set_recording(state)
        alarm.on_recording(state)

    recorder = Recorder(
        store, Spool(config.state_dir / "spool"), on_change=recording, on_kept=runner.discard
    )
    health.set_recording(recorder.state())
    recorder.adopt(control.held)
    control.held = []

    def recorded(run: Run, where: str) -> None:
        health.record(run)
        watchdog.on_run(run)
        alerting.on_run(run)
        if run.check in config.checks:
            # Incidents live in the database only: one indexed read per run keeps the gauge
            # right, and a scrape never has to ask.
            try:
                incident = alerting.incidents.open_incident(run.check)
            except StoreError:
                pass  # alerting has logged the outage; the next run asks again
            else:
                health.set_incident(run.check, incident is not None)

    prune = _artifact_pruner(config)

    def tick() -> None:
        watchdog.check()
        alerting.tick()
        prune()

    def cycle() -> None:
        control.reload(config, lambda note: alerting.send(note, default_channels(config)))
        health.tick(time.time())
        if heartbeat is not None:
            heartbeat.maybe_ping(lambda: heartbeat_status(health, recorder.pending()))

    settings = config.settings
    overload = OverloadMonitor(
        skipped_share=settings.overload_skipped,
        lateness=settings.overload_lateness,
        window=settings.overload_window,
        notify=lambda notification: alerting.send(notification, default_channels(config)),
        load=health.load,
    )
    scheduler = Scheduler(
        config,
        runner,
        recorder,
        store.runs,
        stopping=stopping,
        kill=kill,
        on_recorded=recorded,
        on_tick=tick,
        review=lambda run: _review(runner, store, run),
        on_cycle=cycle,
        overload=overload,
        skips=SkipLog(store.runs, spill=config.state_dir / "skipped-slots.json"),
    )
    # Runs left in flight and spooled runs are recorded first: a slot that was in fact run is
    # then never counted as missed while down.
    scheduler.recover()
    # Before the web server starts: what was missed while down is measured from now, not from
    # after the seconds that loading the dashboard takes; the first slots are planned as of
    # the same moment, so each slot is either run or recorded as missed.
    looked_at = utcnow()
    _look_back(config, store, watchdog, health, scheduler.skips, looked_at)
    scheduler.plan(looked_at)
    # The catch-up runs start now, not after the web server: no slot passes meanwhile.
    scheduler.start()
    scheduler.cycle()
    web = _serve_http(config, health, store, trigger)
    scheduler_ready.append(scheduler)
    watches = _start_watches(config, runner, recorder, store, alerting, health)
    # Everything loaded so far lives as long as the process: leave it out of every garbage
    # collection, which keeps the pauses of a busy dashboard short.
    gc.collect()
    gc.freeze()
    log.info(
        "onwatch started",
        extra={"fields": {"config": str(config.path), "checks": ",".join(enabled)}},
    )
    try:
        scheduler.run()
    finally:
        if watches is not None:
            watches.stop(timeout=config.settings.drain_timeout)
        recorder.replay()
        # Give notifications just queued a moment to leave; what remains is sent next start.
        worker.stop(timeout=OUTBOX_GRACE_SECONDS)
        outbox.close()
        if heartbeat is not None:
            heartbeat.close()
        if web is not None:
            web.stop()
        store.close()
        gc.unfreeze()  # a reload starts afresh: what this config loaded may be collected
    if control.next_config is not None:
        control.held = recorder.hand_over()
    lost = recorder.state().in_memory
    if lost:
        log.error("%d run(s) held in memory could be written nowhere and are lost", lost)
    log.info("onwatch stopped", extra={"fields": {"spooled": recorder.pending()}})


def _look_back(
    config: Config,
    store: Store,
    watchdog: Watchdog,
    health: Health,
    skips: SkippedSlots,
    now: datetime,
) -> None:
    """Seed the watchdog and health with the stored history; record what was missed while down."""
    from onwatch.state.feed import HealthFeed
    from onwatch.state.service import StateService

    try:
        # Registered before the watchdog reads them: a check that never ran is late against
        # this moment, in this process and in every one that reads the database.
        for name, check in config.checks.items():
            if check.enabled:
                store.runs.upsert_check(name, check.digest(), check.schedule)
        history = store.runs.history(list(config.checks), now)
        watchdog.seed(history)
    except StoreError as exc:
        log.warning("cannot look back at the history: %s", exc)
        return
    try:
        # A few reads per check, once at start, so the metrics survive a restart. The overdue
        # gauge is the watchdog's: it measures lateness from this start, not from the last run.
        HealthFeed(StateService(config, store), health).seed()
    except StoreError as exc:
        log.warning("cannot read the latest runs, tests and open incidents: %s", exc)
    try:
        watchdog.record_gap(skips, history, now)
    except StoreError as exc:
        log.warning("cannot record the slots missed while down: %s", exc)


PRUNE_EVERY_SECONDS = 3600.0


def _artifact_pruner(config: Config) -> Callable[[], None]:
    """Return a function that applies the artifact retention, at most once an hour."""
    from onwatch.artifacts import ArtifactStore

    store = ArtifactStore(config.artifacts_dir)
    settings = config.settings
    last = [-PRUNE_EVERY_SECONDS]

    def prune() -> None:
        now = time.monotonic()
        if now - last[0] < PRUNE_EVERY_SECONDS:
            return
        last[0] = now
        try:
            pruned = store.prune(settings.keep_artifacts, settings.artifacts_max_size)
        except OSError as exc:
            log.warning("cannot prune artifacts: %s", exc)
            return
        if pruned.files:
            log.info(
                "pruned artifacts",
                extra={"fields": {"files": pruned.files, "bytes": pruned.bytes}},
            )

    return prune


def _serve_http(
    config: Config,
    health: Health,
    store: Store,
    trigger: Callable[[str], str] | None = None,
) -> WebServer | None:
    """Serve the dashboard, the API, /healthz and /metrics on [onwatch] listen, unless empty."""
    if not config.settings.listen:
        return None
    from onwatch.web.app import create_site_app
    from onwatch.web.server import serve

    app = create_site_app(config, health, store, tick_limit=HEALTHY_TICK_SECONDS, trigger=trigger)
    server = serve(app, config.settings.listen)
    log.info("serving the dashboard and /metrics", extra={"fields": {"url": server.url}})
    return server


def _heartbeat(config: Config, health: Health) -> Heartbeat | None:
    settings = config.settings
    if not settings.heartbeat_url:
        return None
    from onwatch.daemon.heartbeat import Heartbeat

    return Heartbeat(
        settings.heartbeat_url, settings.heartbeat_method, settings.heartbeat_every, health
    )


def heartbeat_status(health: Health, spooled: int) -> dict[str, object]:
    """Return the body of a heartbeat ping: is onwatch working, and how are its checks."""
    snapshot = health.snapshot()
    failing = sum(
        1 for s in snapshot.checks.values() if s.last_status not in (None, RunStatus.PASSED.value)
    )
    overdue = sum(1 for s in snapshot.checks.values() if s.overdue)
    return {
        "status": "ok" if not (overdue or spooled) else "degraded",
        "checks": len(snapshot.checks),
        "failing": failing,
        "overdue": overdue,
        "spooled": spooled,
    }


def _review(runner: Runner, store: Store, run: Run) -> Run:
    """Let the check's kind judge the run against its recent runs (selection drift)."""

    try:
        recent = store.runs.collected_counts(run.check)
    except StoreError:
        recent = []  # the all-skipped rule still applies without history
    return runner.review(run, recent)


def _start_watches(
    config: Config,
    runner: Runner,
    recorder: Recorder,
    store: Store,
    alerting: Alerting,
    health: Health,
) -> WatchLoop | None:
    """Start polling the [watch.NAME] tables, if there are any."""
    if not config.watches:
        return None
    from onwatch.upstream.loop import WatchLoop
    from onwatch.upstream.wiring import build_watcher

    def on_poll(watch: str, package: str, ok: bool, at: datetime) -> None:
        health.record_poll(watch, package, ok, at.timestamp())

    watcher = build_watcher(config, runner, recorder, store, alerting.send)
    watcher.on_poll = on_poll
    watcher.on_state = health.set_watch_state
    loop = WatchLoop(watcher, {name: watch.every for name, watch in config.watches.items()})
    loop.start()
    return loop


def _start_outbox(
    config: Config, store: Store, keeper: Keeper
) -> tuple[dict[str, Channel], Outbox, OutboxWorker]:
    from onwatch.alerting.outbox import Outbox, OutboxWorker
    from onwatch.channels import build_channel

    lookup = keeper.resolver(config.settings.secrets)
    channels = {
        name: build_channel(name, settings, lookup) for name, settings in config.channels.items()
    }
    # Only the kinds that group (apprise) have a group_window.
    windows = {n: s["group_window"] for n, s in config.channels.items() if "group_window" in s}
    outbox = Outbox(store.outbox, channels, group_window=windows, mask=keeper.mask_value)
    worker = OutboxWorker(outbox)
    worker.start()
    return channels, outbox, worker


def _handle_signals(control: Control) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled in the main thread (tests run the daemon in one)

    def on_stop(number: int, frame: FrameType | None) -> None:
        control.stop(signal.Signals(number).name)

    def on_hangup(number: int, frame: FrameType | None) -> None:
        control.ask_reload()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hangup)
