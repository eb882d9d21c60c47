"""Never blind: notice when monitoring itself stops working, and say so.

- A check with no completed run within its interval plus ``grace`` is **overdue**
  (``check.overdue``, once per episode), whatever the cause: a hung run, a stuck scheduler,
  onwatch down. Whether it is overdue is ``state.overdue``'s rule, the one the API, status,
  pages and /metrics show; only the notification waits one interval plus grace after a start,
  so that downtime is told once (the gap) and a catch-up run gets its chance.
- After downtime, every slot missed is recorded (reason ``down``) and ONE ``monitor.degraded``
  notification summarises the gap: no storm of alerts, no storm of catch-up runs.
- When the database cannot be written, runs are spooled (held in memory when the disk is full
  too); the outbox lives in that database, so this alarm is sent straight through the
  channels, best effort.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from onwatch.channels.notification import Event, Notification
from onwatch.config import Config
from onwatch.durations import format_duration
from onwatch.errors import DeliveryError
from onwatch.model import Run, utcnow
from onwatch.schedule import expected_by, missed_slots
from onwatch.state.overdue import overdue_deadline

if TYPE_CHECKING:
    from onwatch.channels import Channel
    from onwatch.daemon.skips import SkippedSlots
    from onwatch.store import CheckHistory
    from onwatch.store.recorder import Recording

# Named as before this module moved into daemon/: the name is in every JSON log line.
log = logging.getLogger("onwatch.watchdog")
Notify = Callable[[Notification, list[str]], None]


class Watchdog:
    """Tracks when each check last completed a run and raises ``check.overdue``."""

    def __init__(
        self,
        config: Config,
        *,
        notify: Notify,
        clock: Callable[[], datetime] = utcnow,
        on_overdue: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.config = config
        self.notify = notify
        self.clock = clock
        self.on_overdue = on_overdue  # e.g. the /metrics gauge
        self.started = clock()
        self.checks = {n: c for n, c in config.checks.items() if c.enabled}
        self.last_completed: dict[str, datetime] = {}
        self.registered: dict[str, datetime] = {}  # CheckHistory.registered_at
        self.overdue: dict[str, datetime] = {}  # check -> the deadline it missed
        self.told: set[str] = set()  # overdue checks notified in this episode
        self.lock = threading.Lock()

    def seed(self, history: dict[str, CheckHistory]) -> None:
        """Start from the last completed run of each check, and its registration, as stored."""
        with self.lock:
            for name, past in history.items():
                if past.last_run_at is not None:
                    self.last_completed[name] = past.last_run_at
                if past.registered_at is not None:
                    self.registered[name] = past.registered_at

    def on_run(self, run: Run) -> None:
        """Note a completed run; an overdue check is overdue no more."""
        with self.lock:
            self.last_completed[run.check] = run.finished_at
            self.told.discard(run.check)
            if self.overdue.pop(run.check, None) is not None and self.on_overdue is not None:
                self.on_overdue(run.check, False)

    def check(self) -> list[str]:
        """Mark the checks past their deadline overdue; notify each once; return those notified."""
        now = self.clock()
        marked, late = [], []
        with self.lock:
            for name, check in self.checks.items():
                since = self.last_completed.get(name)
                # Not registered in the database (it was down at start): since this start.
                registered = self.registered.get(name, self.started)
                deadline = overdue_deadline(check, since, registered)
                if deadline is None or now <= deadline:
                    continue
                if name not in self.overdue:
                    self.overdue[name] = deadline
                    marked.append(name)
                if name not in self.told and now > expected_by(check, self.started):
                    self.told.add(name)
                    late.append((name, check, since, deadline))
        if self.on_overdue is not None:
            for name in marked:
                self.on_overdue(name, True)
        for name, check, since, deadline in late:
            last = (
                "no completed run yet"
                if since is None
                else (f"last run completed {since:%Y-%m-%d %H:%M:%S} UTC")
            )
            summary = (
                f"{name} is overdue: no run completed by {deadline:%H:%M:%S} UTC "
                f"({check.schedule}, grace {format_duration(check.grace_seconds)}); {last}"
            )
            log.warning("check overdue", extra={"fields": {"check": name}})
            self.notify(
                Notification(
                    event=Event.CHECK_OVERDUE,
                    key=f"check.overdue|{name}|{deadline.isoformat()}",
                    summary=summary,
                    check=name,
                    severity="warning",
                    details={"deadline": deadline.isoformat(), "schedule": check.schedule},
                ),
                self.config.channels_of(name),
            )
        return [name for name, *_ in late]

    def record_gap(
        self,
        store: SkippedSlots,
        history: dict[str, CheckHistory],
        now: datetime | None = None,
    ) -> int:
        """Record the slots missed while onwatch was down and notify the gap once.

        ``history`` is read after the runs left in flight and the spooled runs were recorded:
        a slot that was run is not missed. ``store`` may queue the rows (``SkipLog``), so a
        locked database neither loses them nor holds the start. The scheduler plans the
        first slots as of the same ``now``: the latest slot is run, the others are missed.
        """
        now = self.clock() if now is None else now
        missed: dict[str, list[datetime]] = {}
        for name, check in self.checks.items():
            past = history.get(name)
            slots = missed_slots(check, past.last_slot if past else None, now)
            if slots:
                missed[name] = slots
        if not missed:
            return 0
        for name, slots in missed.items():
            for slot in slots:
                store.record_skipped_slot(name, slot, "down")
        total = sum(len(slots) for slots in missed.values())
        first = min(slots[0] for slots in missed.values())
        lasted = format_duration((now - first).total_seconds())
        summary = (
            f"onwatch was not running for {lasted} (since {first:%Y-%m-%d %H:%M:%S} UTC): "
            f"{total} scheduled run{'s' * (total != 1)} of {len(missed)} "
            f"check{'s' * (len(missed) != 1)} missed"
        )
        log.warning("slots missed while down", extra={"fields": {"missed": total}})
        self.notify(
            Notification(
                event=Event.MONITOR_DEGRADED,
                key=f"monitor.gap|{first.isoformat()}",
                summary=summary,
                severity="warning",
                details={
                    "problem": "gap",
                    "since": first.isoformat(),
                    "missed": {name: len(slots) for name, slots in missed.items()},
                },
            ),
            default_channels(self.config),
        )
        return total


def default_channels(config: Config) -> list[str]:
    """Return the channels told about onwatch itself: the default ones, else every check's."""
    if config.settings.notify:
        return list(config.settings.notify)
    names: dict[str, None] = {}
    for check in config.checks:
        names.update(dict.fromkeys(config.channels_of(check)))
    return list(names)


class DatabaseAlarm:
    """Tells people, straight through the channels, when runs cannot reach the database.

    It follows the recorder's ``Recording``: the first problem of an episode raises
    ``monitor.degraded``, and so does each worse one (runs spooled, then held in memory because
    the disk is full); the end of the episode is logged with what was written out.
    """

    def __init__(
        self,
        config: Config,
        channels: dict[str, Channel],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.channels = channels
        self.clock = clock
        self.failing_since: datetime | None = None
        self._told: set[str] = set()  # the problems told during this episode
        # Runs of several checks are recorded at once: one of them raises the alarm.
        self._lock = threading.Lock()

    def on_recording(self, state: Recording) -> None:
        """Raise the alarm when runs stop reaching the database, or reach less far."""
        if state.problem is None:
            with self._lock:
                back, self.failing_since = self.failing_since, None
                told, self._told = self._told, set()
            if back is not None:
                log.info(
                    "recording back to normal: every run is in the database again",
                    extra={"fields": {"since": back.isoformat(), "dropped": state.dropped}},
                )
                if told:
                    self._send(_recovered(back, told, state))
            return
        # Runs starting to be lost is worse news than the problem itself: told too.
        stage = f"{state.problem}.dropping" if state.dropped_now else state.problem
        with self._lock:
            if self.failing_since is None:
                self.failing_since = state.since or self.clock()
            if stage in self._told:
                return  # told already in this episode
            self._told.add(stage)
            since = self.failing_since
        notification = Notification(
            event=Event.MONITOR_DEGRADED,
            key=f"monitor.{stage}|{since.isoformat()}",
            summary=_summary(state),
            severity="critical" if state.losing else "warning",
            details={
                "problem": state.problem,
                "since": since.isoformat(),
                "error": state.error,
                "spooled": state.spooled,
                "in_memory": state.in_memory,
                "dropped": state.dropped,
            },
        )
        log.warning(
            "recording degraded: %s",
            notification.summary,
            extra={"fields": {"problem": state.problem}},
        )
        self._send(notification)

    def _send(self, notification: Notification) -> None:
        targets = [self.channels[n] for n in default_channels(self.config) if n in self.channels]
        threading.Thread(
            target=_send_all, args=(targets, notification), name="onwatch-db-alarm", daemon=True
        ).start()


def _recovered(since: datetime, told: set[str], state: Recording) -> Notification:
    """Say that every run reaches the database again, after the problems told since ``since``."""
    problems = sorted({stage.split(".")[0] for stage in told})
    dropped = f"; {state.dropped} run(s) were dropped" if state.dropped else ""
    return Notification(
        event=Event.MONITOR_RECOVERED,
        key=f"monitor.recording.ended|{since.isoformat()}",
        summary=(
            f"onwatch's runs reach the database again (trouble since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC: {', '.join(problems)}){dropped}"
        ),
        severity="info",
        details={
            "problem": problems[0],
            "problems": problems,
            "since": since.isoformat(),
            "dropped": state.dropped,
        },
    )


def _summary(state: Recording) -> str:
    if state.problem == "unstorable":
        return (
            f"onwatch's database refused a run ({state.error}): it is kept on disk in the spool "
            "and retried; the log has its traceback"
        )
    if state.losing:
        why = "the disk is full" if state.problem == "disk_full" else "the disk is not writable"
        dropped = f", {state.dropped} dropped" if state.dropped else ""
        return (
            f"onwatch can write neither its database nor its spool ({why}): "
            f"{state.in_memory} run(s) held in memory{dropped}; they are written out as soon "
            "as a disk takes them, and lost if onwatch stops first"
        )
    return (
        "onwatch cannot write to its database: runs are kept on disk and written "
        "when it is back; alerts about checks wait until then"
    )


def _send_all(channels: list[Channel], notification: Notification) -> None:
    for channel in channels:
        try:
            channel.send([notification])
        except DeliveryError as exc:
            log.warning("database alarm not delivered to %s: %s", channel.name, exc)
        except Exception:  # noqa: BLE001 - a broken channel must not hide the others
            log.exception("database alarm failed on %s", channel.name)
