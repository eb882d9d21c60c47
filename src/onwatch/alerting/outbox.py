"""The outbox: every notification is stored before it is sent, then sent once to each channel.

``Outbox.enqueue`` writes one delivery per channel, keyed by the notification's key and the
channel's name, so that enqueueing the same transition twice sends it once. ``Outbox.dispatch``
sends what is due, each channel in a thread of its own: a slow or hanging receiver holds up its
own channel only, bounded by that channel's timeout.

* Machine channels (``grouped`` False) get one delivery per ``send``.
* Human channels (``grouped`` True) get at most one message per ``group_window``: the first
  notification after a quiet spell leaves at once, the ones that follow are held until the
  window has passed and then leave together as one batch.
* On each channel, an incident's notifications leave in the order they were enqueued: a later
  one (resolved, reminder) waits while an earlier one (opened) is pending, and leaves as soon
  as that one is sent or given up on. It never waits for another channel or another incident.
  A grouped channel sends the waiting ones in the same message, after the one they waited for.
* A ``DeliveryError(permanent=True)`` fails the delivery for good; any other failure is retried
  with exponential backoff and jitter until ``max_attempts``. Every attempt is stored.
* Each send updates the channel's health; a channel that failed ``failing_after`` times in a row
  is announced, once per failing episode, on every other channel.

``OutboxWorker`` runs the outbox in the background; ``wake()`` makes it send at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from onwatch.channels import Channel
from onwatch.channels.notification import Event, Notification
from onwatch.errors import DeliveryError, StoreError
from onwatch.model import utcnow
from onwatch.store import ChannelState, Deliveries, Delivery

log = logging.getLogger("onwatch.alerting")

DEFAULT_GROUP_WINDOW = 60.0  # seconds between two messages on a human channel

# Retries of deliveries that failed together spread over this fraction of their delay, so that a
# receiver coming back is not hit by all of them in the same instant.
JITTER = 0.1


def retry_delay(previous: int, *, base_delay: float, max_delay: float, jitter: float) -> float:
    """Return seconds to wait after a failed attempt that had ``previous`` attempts before it.

    ``jitter`` in [0, 1) stretches the delay by up to ``JITTER``; it is applied after the cap so
    that deliveries backing off at ``max_delay`` still spread out.
    """
    # The exponent is capped: past it the delay is max_delay anyway, and 2.0**1100 overflows.
    delay = min(max_delay, base_delay * 2.0 ** min(previous, 60))
    return delay * (1.0 + JITTER * jitter)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """An attempt to store, kept in memory while the database cannot take it."""

    delivery_id: int
    at: datetime
    duration: float
    ok: bool
    permanent: bool
    error: str | None
    next_attempt_at: datetime | None


class Outbox:
    """Durable, retried, grouped delivery of notifications to channels."""

    def __init__(
        self,
        store: Deliveries,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], datetime] = utcnow,
        group_window: float | Mapping[str, float] | Callable[[str], float] = DEFAULT_GROUP_WINDOW,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        max_attempts: int = 12,
        failing_after: int = 3,
        claim_for: float = 120.0,
        batch_limit: int = 100,
        rng: random.Random | None = None,
        mask: Callable[[Any], Any] | None = None,
    ) -> None:
        self._store = store
        # Applied to each payload before it is stored and to each error before it is kept:
        # what a channel receives or a delivery row holds never has a secret in it.
        self._mask = mask or (lambda value: value)
        self._channels = dict(channels)
        self._clock = clock
        self._window = _window_of(group_window)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_attempts = max(1, max_attempts)
        self._failing_after = max(1, failing_after)
        # Longer than any send takes: a delivery claimed by a process that died mid-send is
        # tried again once the claim has run out, and not by a second process before that.
        self._claim_for = timedelta(seconds=claim_for)
        self._batch_limit = batch_limit
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future[int]] = {}  # the job running for each busy channel
        self._last_sent: dict[str, datetime] = {}  # grouped channels: end of the last success
        self._seeded = False
        self._unrecorded: list[_Outcome] = []
        self._closed = False
        # One thread per channel, and at most one job per channel at a time: a channel's job
        # never waits in the queue behind another channel's.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self._channels)), thread_name_prefix="onwatch-outbox"
        )

    @property
    def store(self) -> Deliveries:
        """The store the deliveries live in."""
        return self._store

    # -- writing -------------------------------------------------------------------------------

    def enqueue(self, notification: Notification, channels: Iterable[str]) -> int:
        """Store one delivery of ``notification`` per channel; return how many were new."""
        now = self._clock()
        payload = self._mask(notification.payload())
        added = 0
        for name in dict.fromkeys(channels):
            if name not in self._channels:
                log.warning(
                    "notification for an unknown channel skipped",
                    extra={"fields": {"channel": name, "key": notification.key}},
                )
                continue
            key = f"{notification.key}|{name}"
            event = notification.event.value
            # Cut to the column's size: two series cut to one only wait for each other.
            series = None if notification.series is None else notification.series[:200]
            if self._store.add(key, name, event, notification.check, payload, now, series=series):
                added += 1
        return added

    # -- sending -------------------------------------------------------------------------------

    def dispatch(self, on_done: Callable[[], None] | None = None) -> list[Future[int]]:
        """Start sending what is due on every idle channel; ``on_done`` runs after each channel.

        Return one future per channel started, each giving how many deliveries it sent.
        """
        self._flush()
        self._seed()
        ready, _ = self._plan(self._clock())
        futures: list[Future[int]] = []
        with self._lock:
            if self._closed:
                return futures
            for name in ready:
                if name in self._in_flight:
                    continue
                # Registered under the lock that the job takes to unregister itself: a job that
                # ends at once cannot leave a stale entry behind.
                future = self._pool.submit(self._run_channel, name, on_done)
                self._in_flight[name] = future
                futures.append(future)
        return futures

    def deliver_due(self) -> int:
        """Send what is due on every idle channel, wait for it, and return how many were sent."""
        return sum(future.result() for future in self.dispatch())

    def next_wake(self, limit: float = 1.0) -> float:
        """Return seconds until a delivery or a held batch is due, at most ``limit``."""
        now = self._clock()
        ready, later = self._plan(now)
        if ready:
            return 0.0
        if later is None:
            return limit
        return min(limit, max(0.0, (later - now).total_seconds()))

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work and wait, at most ``timeout`` seconds, for the sends in flight."""
        with self._lock:
            self._closed = True
            running = list(self._in_flight.values())
        # Each channel's own timeout bounds its send; ``timeout`` bounds the wait for them all.
        self._pool.shutdown(wait=False, cancel_futures=True)
        # A job still queued is cancelled now and will never finish: waiting for it would
        # never end. Its deliveries stay pending in the store for the next start.
        wait([future for future in running if not future.cancelled()], timeout)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- planning ------------------------------------------------------------------------------

    def _plan(self, now: datetime) -> tuple[list[str], datetime | None]:
        """Return the idle channels with work due now, and when the next other work is due."""
        due_by_channel = self._store.next_due_by_channel()
        ready: list[str] = []
        later: datetime | None = None
        with self._lock:
            for name, due in due_by_channel.items():
                # Deliveries of channels no longer configured stay pending, visible, untried.
                if name not in self._channels or name in self._in_flight:
                    continue
                held = self._held_until(name)
                at = due if held is None else max(due, held)
                if at <= now:
                    ready.append(name)
                elif later is None or at < later:
                    later = at
        return ready, later

    def _held_until(self, name: str) -> datetime | None:
        """Return when a grouped channel may send again; call with the lock held."""
        last = self._last_sent.get(name)
        if last is None or not self._channels[name].grouped:
            return None
        return last + timedelta(seconds=self._window(name))

    def _seed(self) -> None:
        """Start grouping windows from the last successes stored, once, so restarts don't spam."""
        if self._seeded:
            return
        states = self._store.channel_states()
        with self._lock:
            for state in states:
                if state.last_success_at is not None:
                    self._last_sent.setdefault(state.channel, state.last_success_at)
            self._seeded = True

    def _flush(self) -> None:
        """Store the attempts that could not be stored when they happened."""
        with self._lock:
            waiting = list(self._unrecorded)
        for outcome in waiting:
            self._store_outcome(outcome)
            with self._lock:
                self._unrecorded.remove(outcome)

    # -- one channel's job ---------------------------------------------------------------------

    def _run_channel(self, name: str, on_done: Callable[[], None] | None) -> int:
        try:
            return self._send_due(name)
        except StoreError as exc:
            log.warning(
                "outbox cannot reach the database",
                extra={"fields": {"channel": name, "error": exc}},
            )
            return 0
        except Exception:
            # A bug here must not take the channel's thread down with it unnoticed.
            log.exception("outbox job failed", extra={"fields": {"channel": name}})
            return 0
        finally:
            with self._lock:
                self._in_flight.pop(name, None)
            if on_done is not None:
                on_done()

    def _send_due(self, name: str) -> int:
        channel = self._channels[name]
        now = self._clock()
        with self._lock:
            held = self._held_until(name)
        if held is not None and held > now:
            return 0
        if channel.grouped:
            due = self._with_followers(name, self._due(name, now), now)
            return self._send_batch(channel, due) if due else 0
        sent = 0
        while due := self._due(name, now):
            # Each one sent may let the next of its series go: look again until nothing leaves.
            sent_now = sum(self._send_batch(channel, [item]) for item in due)
            if not sent_now or self._closed:
                break
            sent += sent_now
            now = self._clock()
        return sent

    def _due(self, name: str, now: datetime) -> list[tuple[Delivery, Notification]]:
        """Return the channel's due deliveries that can be read, oldest first."""
        readable: list[tuple[Delivery, Notification]] = []
        for delivery in self._store.due(now, channels=[name], limit=self._batch_limit):
            notification = self._read(delivery, now)
            if notification is not None:
                readable.append((delivery, notification))
        return readable

    def _with_followers(
        self, name: str, due: list[tuple[Delivery, Notification]], now: datetime
    ) -> list[tuple[Delivery, Notification]]:
        """Add to ``due`` the deliveries waiting behind it in its series, in series order.

        One message then carries an incident's opened and resolved, in that order, rather
        than the resolved waiting a whole grouping window behind its opened.
        """
        series = {delivery.series for delivery, _ in due if delivery.series is not None}
        if not series:
            return due
        chosen = {delivery.id for delivery, _ in due}
        stopped: set[str] = set()
        followers: list[tuple[Delivery, Notification]] = []
        for delivery in sorted(self._store.pending_for(name), key=lambda d: d.id):
            if delivery.id in chosen or delivery.series not in series:
                continue
            if delivery.series in stopped or delivery.next_attempt_at > now:
                # A gap in the series: what comes after it must wait for the next message.
                stopped.add(delivery.series)
                continue
            notification = self._read(delivery, now)
            if notification is not None:
                followers.append((delivery, notification))
        return sorted([*due, *followers], key=lambda item: item[0].id)

    def _read(self, delivery: Delivery, now: datetime) -> Notification | None:
        """Return the delivery's notification, or fail it for good if its payload is unreadable."""
        try:
            return Notification.from_payload(delivery.payload)
        except (KeyError, TypeError, ValueError) as exc:
            error = f"unreadable payload: {type(exc).__name__}: {exc}"
            log.error("delivery failed", extra={"fields": {"key": delivery.key, "error": error}})
            self._record(_Outcome(delivery.id, now, 0.0, False, True, error, None))
            return None

    def _send_batch(self, channel: Channel, batch: list[tuple[Delivery, Notification]]) -> int:
        """Claim, send and record one message's deliveries; return how many were sent."""
        started = self._clock()
        claimed = set(
            self._store.claim(
                [delivery.id for delivery, _ in batch], now=started, until=started + self._claim_for
            )
        )
        batch = _in_order(batch, claimed)
        if not batch:
            return 0
        ok, permanent, error = True, False, None
        timer = time.perf_counter()
        try:
            channel.send([notification for _, notification in batch])
        except DeliveryError as exc:
            ok, permanent, error = False, exc.permanent, str(exc) or type(exc).__name__
        except Exception as exc:
            # A channel should raise DeliveryError only; anything else may pass, so retry it.
            log.warning(
                "channel raised an unexpected error",
                exc_info=True,
                extra={"fields": {"channel": channel.name}},
            )
            ok, error = False, f"{type(exc).__name__}: {exc}"
        duration = time.perf_counter() - timer
        error = None if error is None else self._mask(error)
        finished = self._clock()
        if ok and channel.grouped:
            # From the end of the send: people get at most one message per window.
            with self._lock:
                self._last_sent[channel.name] = finished
        for delivery, _ in batch:
            retry_at = None if ok or permanent else self._retry_at(delivery.attempts, finished)
            self._log_attempt(channel.name, delivery, ok, permanent, error, retry_at)
            self._record(_Outcome(delivery.id, started, duration, ok, permanent, error, retry_at))
        self._update_health(channel.name, ok, error, started)
        return len(batch) if ok else 0

    def _retry_at(self, previous: int, now: datetime) -> datetime | None:
        """Return when to try again after a temporary failure, or None when out of attempts."""
        if previous + 1 >= self._max_attempts:
            return None
        delay = retry_delay(
            previous,
            base_delay=self._base_delay,
            max_delay=self._max_delay,
            jitter=self._rng.random(),
        )
        return now + timedelta(seconds=delay)

    def _record(self, outcome: _Outcome) -> None:
        try:
            self._store_outcome(outcome)
        except StoreError as exc:
            # Kept so that the delivery is neither lost nor sent again: the next dispatch
            # stores it before reading anything else.
            log.warning("attempt kept in memory", extra={"fields": {"error": exc}})
            with self._lock:
                self._unrecorded.append(outcome)

    def _store_outcome(self, outcome: _Outcome) -> None:
        self._store.record_attempt(
            outcome.delivery_id,
            at=outcome.at,
            duration=outcome.duration,
            ok=outcome.ok,
            permanent=outcome.permanent,
            error=outcome.error,
            next_attempt_at=outcome.next_attempt_at,
        )

    def _log_attempt(
        self,
        channel: str,
        delivery: Delivery,
        ok: bool,
        permanent: bool,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        fields: dict[str, object] = {
            "channel": channel,
            "key": delivery.key,
            "attempt": delivery.attempts + 1,
        }
        if ok:
            log.info("notification sent", extra={"fields": fields})
        elif retry_at is not None:
            fields.update(error=error, retry_at=retry_at.isoformat())
            log.warning("notification not sent, will retry", extra={"fields": fields})
        else:
            fields.update(error=error, permanent=permanent)
            log.error("notification failed", extra={"fields": fields})

    # -- channel health ------------------------------------------------------------------------

    def _update_health(self, name: str, ok: bool, error: str | None, at: datetime) -> None:
        try:
            state = self._store.update_channel(name, ok=ok, error=error, at=at)
            if not ok and state.consecutive_failures >= self._failing_after:
                self._announce_failing(state)
        except StoreError as exc:
            log.warning(
                "cannot record channel health", extra={"fields": {"channel": name, "error": exc}}
            )

    def _announce_failing(self, state: ChannelState) -> None:
        """Tell every other channel that this one is failing, once per failing episode."""
        others = [name for name in self._channels if name != state.channel]
        if state.failing_since is None or not others:
            return
        since = state.failing_since.isoformat()
        notification = Notification(
            event=Event.CHANNEL_FAILING,
            key=f"channel.failing|{state.channel}|{since}",
            summary=f"notification channel '{state.channel}' is failing: {state.last_error}",
            severity="warning",
            details={"channel": state.channel, "error": state.last_error, "since": since},
        )
        if self.enqueue(notification, others):
            log.error(
                "notification channel failing",
                extra={"fields": {"channel": state.channel, "error": state.last_error}},
            )


class OutboxWorker(threading.Thread):
    """Runs an outbox until stopped: sends at once when woken, else when something is due."""

    def __init__(self, outbox: Outbox, *, poll: float = 1.0, retry_pause: float = 1.0) -> None:
        # A daemon thread, so that a forgotten stop() cannot keep the process alive.
        super().__init__(name="onwatch-outbox-worker", daemon=True)
        self._outbox = outbox
        # Deliveries enqueued by another process wake no one: look at least every ``poll``.
        self._poll = poll
        self._retry_pause = retry_pause
        self._wakeup = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        """Make the worker look for due deliveries now."""
        self._wakeup.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop and wait for it to end; sends in flight finish in the outbox."""
        self._stopping.set()
        self._wakeup.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        """Dispatch, then sleep until woken or until the next delivery is due."""
        while not self._stopping.is_set():
            # Cleared before looking, so that a wake() arriving meanwhile is not lost.
            self._wakeup.clear()
            try:
                self._outbox.dispatch(on_done=self.wake)
                pause = self._outbox.next_wake(self._poll)
            except StoreError as exc:
                log.warning("outbox cannot reach the database", extra={"fields": {"error": exc}})
                pause = self._retry_pause
            except Exception:
                log.exception("outbox loop failed")
                pause = self._retry_pause
            self._wakeup.wait(pause)
        try:
            # What was enqueued just before the stop leaves now rather than at the next start.
            self._outbox.dispatch()
        except Exception as exc:
            log.warning("outbox not drained on stop", extra={"fields": {"error": exc}})


def _in_order(
    batch: list[tuple[Delivery, Notification]], claimed: set[int]
) -> list[tuple[Delivery, Notification]]:
    """Return the claimed part of ``batch``, less what would leave before an unclaimed one."""
    # Another process got a delivery first: the ones after it in its series must not overtake
    # it. They stay claimed, unsent, until the claim runs out and they are due again.
    skipped: set[str] = set()
    kept: list[tuple[Delivery, Notification]] = []
    for delivery, notification in batch:
        if delivery.id not in claimed or delivery.series in skipped:
            if delivery.series is not None:
                skipped.add(delivery.series)
            continue
        kept.append((delivery, notification))
    return kept


def _window_of(
    group_window: float | Mapping[str, float] | Callable[[str], float],
) -> Callable[[str], float]:
    if callable(group_window):
        return group_window
    if isinstance(group_window, Mapping):
        windows = dict(group_window)
        return lambda name: windows.get(name, DEFAULT_GROUP_WINDOW)
    seconds = float(group_window)
    return lambda name: seconds
