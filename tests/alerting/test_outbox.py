"""The outbox against real databases and real HTTP receivers on 127.0.0.1.

Backoff and grouping windows run on a ``FakeClock``: a test moves time on instead of sleeping,
and asserts the exact moments of each attempt. The worker's tests keep the real clock, as the
worker waits in real time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onwatch.alerting.outbox import Outbox, OutboxWorker, retry_delay
from onwatch.channels.notification import Event, Notification
from onwatch.channels.webhook import Webhook, WebhookSettings
from onwatch.errors import DeliveryError
from onwatch.store import Deliveries, Delivery, DeliveryStatus, Store, open_store
from pgserver import PgServer, fresh_database
from receivers import Behaviour, HttpReceiver
from waiting import FakeClock, wait_until

# Small delays for the tests on the real clock; those on a fake one use the daemon's defaults.
FAST: dict[str, Any] = {"base_delay": 0.05, "max_delay": 0.2}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class HttpChannel:
    """A webhook-like channel: POSTs payloads, 5xx and network errors are temporary."""

    def __init__(self, name: str, url: str, *, grouped: bool = False, timeout: float = 2.0):
        self.name = name
        self.url = url
        self.grouped = grouped
        self.timeout = timeout

    def send(self, notifications: list[Notification]) -> None:
        """POST one body per call: a list of payloads when grouped, else the one payload."""
        if self.grouped:
            body: Any = {"notifications": [n.payload() for n in notifications]}
        else:
            [notification] = notifications
            body = notification.payload()
        try:
            response = httpx.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            permanent = response.status_code < 500
            raise DeliveryError(f"HTTP {response.status_code}", permanent=permanent)


class FailsOnce:
    """A channel that raises an unexpected exception once, then keeps what it is sent."""

    grouped = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.sent: list[Notification] = []

    def send(self, notifications: list[Notification]) -> None:
        """Raise RuntimeError on the first call, then keep the notifications."""
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in the channel")
        self.sent += notifications


class NoJitter(random.Random):
    """Retries exactly at their backoff, so that a test can name the moment."""

    def random(self) -> float:
        return 0.0


class LookingOutbox(Outbox):
    """An outbox that tells when its worker has looked for work and is about to wait."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.looked = threading.Event()

    def next_wake(self, limit: float = 1.0) -> float:
        pause = super().next_wake(limit)
        self.looked.set()
        return pause


def opened(key: str, check: str = "api") -> Notification:
    return Notification(
        event=Event.INCIDENT_OPENED, key=key, summary=f"{check} is failing", check=check
    )


def only(store: Deliveries) -> Delivery:
    [delivery] = store.deliveries()
    return delivery


def only_for(store: Deliveries, channel: str) -> Delivery:
    [delivery] = [d for d in store.deliveries() if d.channel == channel]
    return delivery


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return an empty database's URL: SQLite unless a test asks for PostgreSQL too."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'onwatch.db'}"
    return fresh_database(request.getfixturevalue("postgres_url"))


BOTH_DATABASES = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)], indirect=True
)


@pytest.fixture
def open_sql(db_url: str) -> Iterator[Callable[[], Store]]:
    """Yield a function that opens a store on the database, as a new process would."""
    stores: list[Store] = []

    def open_one() -> Store:
        store = open_store(db_url)
        stores.append(store)
        store.ensure_schema()
        return store

    yield open_one
    for store in stores:
        store.close()


@pytest.fixture
def store(open_sql: Callable[[], Store]) -> Deliveries:
    return open_sql().outbox


@pytest.fixture
def make_outbox() -> Iterator[Callable[..., Outbox]]:
    """Yield a factory of outboxes that are all closed after the test."""
    made: list[Outbox] = []

    def make(
        store: Deliveries, channels: list[Any], kind: type[Outbox] = Outbox, **options: Any
    ) -> Outbox:
        outbox = kind(store, {c.name: c for c in channels}, **{**FAST, **options})
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        outbox.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def on_clock(make_outbox: Callable[..., Outbox], clock: FakeClock) -> Callable[..., Outbox]:
    """Return a factory of outboxes on the fake clock, with the daemon's backoff, no jitter."""

    def make(store: Deliveries, channels: list[Any], **options: Any) -> Outbox:
        defaults = {"clock": clock, "base_delay": 1.0, "max_delay": 300.0, "rng": NoJitter()}
        return make_outbox(store, channels, **{**defaults, **options})

    return make


@pytest.fixture
def start_worker(make_outbox: Callable[..., Outbox]) -> Iterator[Callable[..., OutboxWorker]]:
    """Yield a function that starts a worker, stopped after the test."""
    workers: list[OutboxWorker] = []

    def start(outbox: Outbox, **options: Any) -> OutboxWorker:
        worker = OutboxWorker(outbox, **options)
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=5)


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[HttpReceiver, HttpReceiver]]:
    """Yield two receivers shared by the module's tests."""
    with HttpReceiver() as first, HttpReceiver() as second:
        yield first, second


def reset(receiver: HttpReceiver) -> HttpReceiver:
    with receiver.lock:
        receiver.received.clear()
    receiver.behaviour = Behaviour()
    return receiver


@pytest.fixture
def receiver(receivers: tuple[HttpReceiver, HttpReceiver]) -> HttpReceiver:
    return reset(receivers[0])


@pytest.fixture
def other_receiver(receivers: tuple[HttpReceiver, HttpReceiver]) -> HttpReceiver:
    return reset(receivers[1])


# -- delivery, retries, permanent failures ------------------------------------------------------


@BOTH_DATABASES
def test_it_delivers_a_notification_once(
    store: Deliveries, receiver: HttpReceiver, make_outbox: Callable[..., Outbox]
) -> None:
    outbox = make_outbox(store, [HttpChannel("hook", receiver.url)])
    notification = opened("api|opened|1")

    assert outbox.enqueue(notification, ["hook"]) == 1
    assert outbox.enqueue(notification, ["hook"]) == 0  # the same transition, enqueued again
    assert outbox.deliver_due() == 1
    assert outbox.deliver_due() == 0

    [request] = receiver.received
    assert request.json() == notification.payload()
    delivery = only(store)
    assert (delivery.key, delivery.status, delivery.attempts) == (
        "api|opened|1|hook",
        DeliveryStatus.SENT,
        1,
    )
    [attempt] = store.attempts(delivery.id)
    assert attempt.ok and attempt.error is None
    [state] = store.channel_states()
    assert (state.channel, state.consecutive_failures) == ("hook", 0)
    assert state.last_success_at == delivery.sent_at


def test_it_delivers_through_the_webhook_channel(
    store: Deliveries, receiver: HttpReceiver, make_outbox: Callable[..., Outbox]
) -> None:
    hook = Webhook("hook", WebhookSettings(url=f"{receiver.url}/hook", timeout=2))
    outbox = make_outbox(store, [hook])
    outbox.enqueue(opened("api|opened|1"), ["hook"])

    assert outbox.deliver_due() == 1

    [request] = receiver.received
    assert request.json()["key"] == "api|opened|1"
    assert request.headers["idempotency-key"] == "api|opened|1"


def test_it_retries_a_temporary_failure_after_its_backoff_and_then_delivers_once(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=500)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)])
    outbox.enqueue(opened("api|opened|1"), ["hook"])

    assert outbox.deliver_due() == 0
    failed = only(store)
    assert (failed.status, failed.attempts, failed.last_error) == (
        DeliveryStatus.PENDING,
        1,
        "HTTP 500",
    )
    assert failed.next_attempt_at == T0 + timedelta(seconds=1)  # base_delay, no jitter
    assert outbox.next_wake(limit=60.0) == 1.0
    clock.advance(0.999)
    assert outbox.deliver_due() == 0  # not due yet: backing off
    assert len(receiver.received) == 1

    receiver.behaviour = Behaviour(status=200)
    clock.advance(0.001)
    assert outbox.deliver_due() == 1
    clock.advance(3600)
    assert outbox.deliver_due() == 0

    assert len(receiver.received) == 2
    delivery = only(store)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    attempts = store.attempts(delivery.id)
    assert [(a.ok, a.permanent, a.error, a.attempted_at) for a in attempts] == [
        (False, False, "HTTP 500", T0),
        (True, False, None, T0 + timedelta(seconds=1)),
    ]


def test_it_does_not_retry_a_permanent_failure(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=400)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)])
    outbox.enqueue(opened("api|opened|1"), ["hook"])

    assert outbox.deliver_due() == 0
    clock.advance(3600)  # far past any backoff
    assert outbox.deliver_due() == 0

    assert len(receiver.received) == 1
    delivery = only(store)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    [attempt] = store.attempts(delivery.id)
    assert (attempt.ok, attempt.permanent, attempt.error) == (False, True, "HTTP 400")
    assert outbox.next_wake() == 1.0  # nothing left to do


def test_it_backs_off_exponentially_and_gives_up_after_max_attempts(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)], max_attempts=3)
    outbox.enqueue(opened("api|opened|1"), ["hook"])

    assert outbox.deliver_due() == 0
    for tries, delay in enumerate((1, 2), start=1):  # base_delay, then doubled
        clock.advance(delay - 0.001)
        assert outbox.deliver_due() == 0
        assert len(receiver.received) == tries  # not due a moment early
        clock.advance(0.001)
        assert outbox.deliver_due() == 0
    assert only(store).status is DeliveryStatus.FAILED
    clock.advance(3600)
    assert outbox.deliver_due() == 0
    assert outbox.next_wake() == 1.0  # nothing left to do

    assert len(receiver.received) == 3
    delivery = only(store)
    attempts = store.attempts(delivery.id)
    assert [a.attempted_at - T0 for a in attempts] == [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(seconds=3),
    ]
    assert [a.error for a in attempts] == ["HTTP 503"] * 3
    assert [a.permanent for a in attempts] == [False] * 3


def test_an_unexpected_exception_from_a_channel_is_retried_and_logged(
    store: Deliveries,
    on_clock: Callable[..., Outbox],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = FailsOnce("buggy")
    outbox = on_clock(store, [channel])
    outbox.enqueue(opened("api|opened|1"), ["buggy"])

    with caplog.at_level(logging.WARNING, logger="onwatch.alerting"):
        assert outbox.deliver_due() == 0
    clock.advance(1)
    assert outbox.deliver_due() == 1

    assert [n.key for n in channel.sent] == ["api|opened|1"]
    delivery = only(store)
    errors = [a.error for a in store.attempts(delivery.id)]
    assert errors == ["RuntimeError: a bug in the channel", None]
    assert any(r.exc_info and "unexpected" in r.getMessage() for r in caplog.records)


def test_unknown_channels_are_logged_and_skipped(
    store: Deliveries,
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = make_outbox(store, [HttpChannel("hook", receiver.url)])

    with caplog.at_level(logging.WARNING, logger="onwatch.alerting"):
        assert outbox.enqueue(opened("api|opened|1"), ["hook", "pager"]) == 1

    assert [d.channel for d in store.deliveries()] == ["hook"]
    [record] = caplog.records
    assert "unknown channel" in record.getMessage()
    assert record.__dict__["fields"]["channel"] == "pager"


def test_a_notification_reaches_a_receiver_that_comes_back_exactly_once(
    store: Deliveries,
    receiver: HttpReceiver,
    on_clock: Callable[..., Outbox],
    clock: FakeClock,
    start_worker: Callable[..., OutboxWorker],
) -> None:
    gone = HttpReceiver()
    gone.server.server_close()  # a receiver that is down: its port refuses connections
    first = on_clock(store, [HttpChannel("hook", gone.url)])
    first.enqueue(opened("api|opened|1"), ["hook"])
    assert first.deliver_due() == 0
    clock.advance(1)
    assert first.deliver_due() == 0
    assert only(store).attempts == 2
    first.close()

    # The receiver is up again elsewhere; a new outbox reads the same rows and sends there.
    clock.advance(2)
    second = on_clock(store, [HttpChannel("hook", receiver.url)])
    worker = start_worker(second)
    receiver.wait_for(1)
    wait_until(lambda: only(store).status is DeliveryStatus.SENT, "the delivery is sent")
    # The worker looks again after each send and once more as it stops: no second send.
    worker.stop(timeout=5)
    second.close()
    assert len(receiver.received) == 1

    delivery = only(store)
    attempts = store.attempts(delivery.id)
    assert [a.ok for a in attempts] == [False, False, True]
    assert all("ConnectError" in (a.error or "") for a in attempts[:-1])


# -- concurrency and grouping ------------------------------------------------------------------


def test_a_hanging_receiver_does_not_delay_another_channel(
    store: Deliveries,
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    start_worker: Callable[..., OutboxWorker],
) -> None:
    hanging = HttpReceiver(Behaviour(hang=True)).start()
    try:
        # "slow" hangs until its 30 s timeout: "fast" waiting behind it would take that long.
        # The margins below are wide so that a busy machine cannot fail the test.
        outbox = make_outbox(
            store, [HttpChannel("slow", hanging.url, timeout=30), HttpChannel("fast", receiver.url)]
        )
        worker = start_worker(outbox)
        outbox.enqueue(opened("api|opened|1"), ["slow", "fast"])
        started = time.monotonic()
        worker.wake()
        receiver.wait_for(1, timeout=15)
        hanging.wait_for(1, timeout=15)

        # While "slow" still hangs on its first send, "fast" keeps sending at once.
        outbox.enqueue(opened("db|opened|1", check="db"), ["fast"])
        worker.wake()
        receiver.wait_for(2, timeout=15)
        assert time.monotonic() - started < 15
        assert len(hanging.received) == 1
        # The receiver has the body a moment before the outbox marks the delivery sent.
        fast = ("api|opened|1|fast", "db|opened|1|fast")

        def marked_sent() -> bool:
            sent = {d.key: d.status for d in store.deliveries()}
            return all(sent.get(key) is DeliveryStatus.SENT for key in fast)

        wait_until(marked_sent, "the fast channel's deliveries are marked sent", timeout=10)
    finally:
        hanging.stop()  # releases the hanging request, so the outbox closes promptly


def test_a_grouped_channel_sends_the_first_at_once_and_the_rest_as_one_batch(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    chat = HttpChannel("chat", receiver.url, grouped=True)
    outbox = on_clock(store, [chat], group_window=120.0)

    outbox.enqueue(opened("check0|opened|1", check="check0"), ["chat"])
    assert outbox.deliver_due() == 1
    for number in range(1, 5):
        clock.advance(10)
        outbox.enqueue(opened(f"check{number}|opened|1", check=f"check{number}"), ["chat"])
        assert outbox.deliver_due() == 0  # held: the channel sent a message in the window
    assert outbox.next_wake(limit=600.0) == 80.0  # the window counts from the first send
    clock.advance(79.999)
    assert outbox.deliver_due() == 0
    clock.advance(0.001)
    assert outbox.deliver_due() == 4

    first, second = receiver.wait_for(2)
    assert [n["check"] for n in first.json()["notifications"]] == ["check0"]
    assert [n["check"] for n in second.json()["notifications"]] == [
        "check1",
        "check2",
        "check3",
        "check4",
    ]
    for delivery in store.deliveries():
        assert delivery.status is DeliveryStatus.SENT
        [attempt] = store.attempts(delivery.id)
        sent_after = timedelta(seconds=0 if delivery.check == "check0" else 120)
        assert attempt.attempted_at == T0 + sent_after


def test_group_windows_can_differ_per_channel(
    store: Deliveries,
    receiver: HttpReceiver,
    other_receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
) -> None:
    chat = HttpChannel("chat", receiver.url, grouped=True)
    mail = HttpChannel("mail", other_receiver.url, grouped=True)
    outbox = make_outbox(store, [chat, mail], group_window={"chat": 0.0, "mail": 60.0})

    for number in range(2):
        outbox.enqueue(opened(f"check{number}|opened|1"), ["chat", "mail"])
        outbox.deliver_due()

    assert len(receiver.received) == 2  # no window: each at once
    assert len(other_receiver.received) == 1  # the second waits for the window
    assert [d.channel for d in store.pending_for("mail")] == ["mail"]


# -- restarts, channel health, the worker --------------------------------------------------------


@BOTH_DATABASES
def test_a_new_outbox_sends_what_a_dead_one_left_behind_exactly_once(
    open_sql: Callable[[], Store],
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    start_worker: Callable[..., OutboxWorker],
) -> None:
    # The daemon wrote the outbox rows and died before sending anything.
    dead = make_outbox(open_sql().outbox, [HttpChannel("hook", receiver.url)])
    dead.enqueue(opened("api|opened|1"), ["hook"])
    dead.enqueue(opened("db|opened|1", check="db"), ["hook"])
    dead.close()

    store = open_sql().outbox
    outbox = make_outbox(store, [HttpChannel("hook", receiver.url)])
    worker = start_worker(outbox)

    received = receiver.wait_for(2)
    wait_until(
        lambda: all(d.status is DeliveryStatus.SENT for d in store.deliveries()), "both are sent"
    )
    # The worker looks again after each send and once more as it stops: no second send.
    worker.stop(timeout=5)
    outbox.close()
    assert len(receiver.received) == 2
    assert sorted(r.json()["key"] for r in received) == ["api|opened|1", "db|opened|1"]
    for delivery in store.deliveries():
        assert len(store.attempts(delivery.id)) == 1


def test_a_failing_channel_is_announced_once_on_the_other_channels(
    store: Deliveries,
    receiver: HttpReceiver,
    other_receiver: HttpReceiver,
    on_clock: Callable[..., Outbox],
    clock: FakeClock,
) -> None:
    other_receiver.behaviour = Behaviour(status=502)
    outbox = on_clock(
        store,
        [HttpChannel("ops", receiver.url), HttpChannel("broken", other_receiver.url)],
        max_delay=1.0,
        failing_after=3,
    )

    def fail(times: int) -> None:
        for _ in range(times):
            outbox.deliver_due()
            clock.advance(1)

    outbox.enqueue(opened("api|opened|1"), ["broken"])
    fail(2)
    assert receiver.received == []  # two failures: not failing yet
    fail(6)  # failures go on well past the threshold
    assert len(other_receiver.received) == 8
    [announced] = receiver.received
    body = announced.json()
    assert body["event"] == "channel.failing"
    assert body["severity"] == "warning"
    assert body["summary"] == "notification channel 'broken' is failing: HTTP 502"
    [state] = [s for s in store.channel_states() if s.channel == "broken"]
    assert state.failing_since == T0  # the episode began with the first failure
    assert body["details"] == {
        "channel": "broken",
        "error": "HTTP 502",
        "since": T0.isoformat(),
    }
    assert body["key"] == f"channel.failing|broken|{T0.isoformat()}"

    # It recovers, then fails again: a new episode, announced again.
    other_receiver.behaviour = Behaviour(status=200)
    outbox.deliver_due()
    assert only_for(store, "broken").status is DeliveryStatus.SENT
    other_receiver.behaviour = Behaviour(status=502)
    clock.advance(1)
    outbox.enqueue(opened("api|opened|2"), ["broken"])
    fail(4)
    assert [r.json()["event"] for r in receiver.received] == ["channel.failing"] * 2
    second = receiver.received[1].json()
    assert second["key"] == f"channel.failing|broken|{(T0 + timedelta(seconds=9)).isoformat()}"


def test_the_worker_sends_within_milliseconds_of_a_wake(
    store: Deliveries,
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    start_worker: Callable[..., OutboxWorker],
) -> None:
    outbox = make_outbox(store, [HttpChannel("hook", receiver.url)], kind=LookingOutbox)
    assert isinstance(outbox, LookingOutbox)
    # Polling only every minute: whatever arrives quickly arrived because of wake().
    worker = start_worker(outbox, poll=60.0)
    assert outbox.looked.wait(5)  # the worker has looked once and waits
    latencies = []
    for number in range(20):
        outbox.enqueue(opened(f"check{number}|opened|1"), ["hook"])
        started = time.monotonic()
        worker.wake()
        received = receiver.wait_for(number + 1)
        latencies.append(received[-1].at - started)
    # A lost wake-up would wait for the next poll, a minute away: a loaded machine takes far
    # longer than milliseconds now and then, and still nowhere near that.
    assert max(latencies) < 2.0, latencies


def test_the_worker_sends_what_is_due_when_it_stops(
    store: Deliveries,
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    start_worker: Callable[..., OutboxWorker],
) -> None:
    outbox = make_outbox(store, [HttpChannel("hook", receiver.url)], kind=LookingOutbox)
    assert isinstance(outbox, LookingOutbox)
    worker = start_worker(outbox, poll=60.0)
    assert outbox.looked.wait(5)  # the worker has looked once and waits a minute
    outbox.enqueue(opened("api|opened|1"), ["hook"])

    worker.stop(timeout=5)  # no wake(): only the last look on the way out sends it
    outbox.close()

    assert not worker.is_alive()
    assert len(receiver.received) == 1
    assert only(store).status is DeliveryStatus.SENT


def test_closing_right_after_a_dispatch_returns_and_leaves_the_delivery_for_later(
    receiver: HttpReceiver,
) -> None:
    # A job handed to the pool but not yet started is cancelled by close(): waiting for it as if
    # it ran would wait forever, and the daemon would never stop.
    for _ in range(20):
        store = open_store("memory://")
        outbox = Outbox(store.outbox, {"hook": HttpChannel("hook", receiver.url)}, **FAST)
        outbox.enqueue(opened("api|opened|0"), ["hook"])
        assert outbox.deliver_due() == 1  # the channel's thread now waits, idle, for a job
        outbox.enqueue(opened("api|opened|1"), ["hook"])

        def dispatch_and_close(outbox: Outbox = outbox) -> None:
            outbox.dispatch()
            outbox.close()

        closing = threading.Thread(target=dispatch_and_close, daemon=True)
        closing.start()
        closing.join(5)
        assert not closing.is_alive(), "close() waited for a send that was never started"
        # Sent, or still pending for the next start: never lost.
        statuses = {d.key: d.status for d in store.outbox.deliveries()}
        assert statuses["api|opened|1|hook"] in (DeliveryStatus.SENT, DeliveryStatus.PENDING)


@pytest.mark.e2e
def test_the_worker_survives_a_database_outage_and_does_not_send_twice(
    own_postgres: PgServer,
    receiver: HttpReceiver,
    make_outbox: Callable[..., Outbox],
    start_worker: Callable[..., OutboxWorker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sql = open_store(own_postgres.create_database())
    try:
        sql.ensure_schema()
        store = sql.outbox

        class StopsTheDatabase(HttpChannel):
            """Sends, but the database goes down during the first send."""

            def send(self, notifications: list[Notification]) -> None:
                if own_postgres.running:
                    own_postgres.stop("immediate")
                super().send(notifications)

        # A claim shorter than the outage: without the attempt kept in memory, the delivery
        # would be due again when the database is back, and sent a second time.
        outbox = make_outbox(store, [StopsTheDatabase("hook", receiver.url)], claim_for=0.05)
        outbox.enqueue(opened("api|opened|1"), ["hook"])
        caplog.set_level(logging.WARNING, logger="onwatch.alerting")
        worker = start_worker(outbox, retry_pause=0.05)
        receiver.wait_for(1)

        def outage_met() -> int:
            return sum("cannot reach the database" in r.getMessage() for r in caplog.records)

        wait_until(lambda: outage_met() >= 3, "the worker meets a dead database several times")
        assert worker.is_alive()

        own_postgres.start()
        wait_until(lambda: only(store).status is DeliveryStatus.SENT, "the attempt is stored")
        # The worker looks again after each send and once more as it stops: no second send.
        worker.stop(timeout=5)
        outbox.close()
        assert len(receiver.received) == 1
        assert [a.ok for a in store.attempts(only(store).id)] == [True]
    finally:
        sql.close()


def test_retry_delay_doubles_up_to_the_cap_with_up_to_ten_percent_jitter() -> None:
    delays = [retry_delay(n, base_delay=1.0, max_delay=300.0, jitter=0.0) for n in range(11)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert retry_delay(3, base_delay=1.0, max_delay=300.0, jitter=0.999) == pytest.approx(8.8, 0.01)
    assert retry_delay(5000, base_delay=1.0, max_delay=300.0, jitter=0.0) == 300.0


# -- order per incident -------------------------------------------------------------------------


def incident_event(incident: int, event: Event, check: str = "api") -> Notification:
    name = event.value.removeprefix("incident.")
    return Notification(
        event=event,
        key=f"incident.{incident}.{name}",
        summary=f"{check} {name}",
        check=check,
        incident_id=incident,
    )


def received_keys(receiver: HttpReceiver) -> list[str]:
    with receiver.lock:
        return [r.json()["key"] for r in receiver.received if r.json().get("key")]


def test_a_resolved_waits_for_its_opened_however_their_backoffs_fall(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)])
    outbox.enqueue(incident_event(1, Event.INCIDENT_OPENED), ["hook"])
    for _ in range(6):  # the opened backs off: 1 s, 2 s, 4 s … apart
        outbox.deliver_due()
        clock.advance(outbox.next_wake(limit=600.0))
    outbox.enqueue(incident_event(1, Event.INCIDENT_RESOLVED), ["hook"])

    # Due at once by its own time, the resolved does not go while its opened is pending.
    assert outbox.deliver_due() == 0
    assert "incident.1.resolved" not in received_keys(receiver)
    receiver.behaviour = Behaviour()
    clock.advance(outbox.next_wake(limit=600.0))
    assert outbox.deliver_due() == 2  # the opened, then at once the resolved behind it

    keys = received_keys(receiver)
    assert keys[-2:] == ["incident.1.opened", "incident.1.resolved"]
    assert keys.count("incident.1.resolved") == 1
    assert {d.status for d in store.deliveries()} == {DeliveryStatus.SENT}


def test_a_resolved_is_sent_once_its_opened_is_given_up(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)], max_attempts=2)
    outbox.enqueue(incident_event(1, Event.INCIDENT_OPENED), ["hook"])
    outbox.enqueue(incident_event(1, Event.INCIDENT_RESOLVED), ["hook"])
    assert outbox.deliver_due() == 0
    clock.advance(outbox.next_wake(limit=600.0))
    receiver.behaviour = Behaviour(status=404)  # the opened fails for good on this attempt
    assert outbox.deliver_due() == 0
    receiver.behaviour = Behaviour()

    assert outbox.deliver_due() == 1

    statuses = {d.key: d.status for d in store.deliveries()}
    assert statuses == {
        "incident.1.opened|hook": DeliveryStatus.FAILED,
        "incident.1.resolved|hook": DeliveryStatus.SENT,
    }
    assert received_keys(receiver)[-1] == "incident.1.resolved"


def test_an_incident_waits_neither_for_another_incident_nor_for_another_channel(
    store: Deliveries,
    receiver: HttpReceiver,
    other_receiver: HttpReceiver,
    on_clock: Callable[..., Outbox],
    clock: FakeClock,
) -> None:
    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(
        store, [HttpChannel("down", receiver.url), HttpChannel("up", other_receiver.url)]
    )
    outbox.enqueue(incident_event(1, Event.INCIDENT_OPENED), ["down", "up"])
    outbox.deliver_due()
    receiver.behaviour = Behaviour()  # "down" now answers, but incident 1 backs off there
    outbox.enqueue(incident_event(1, Event.INCIDENT_RESOLVED), ["down", "up"])
    outbox.enqueue(incident_event(2, Event.INCIDENT_OPENED, check="web"), ["down", "up"])

    assert outbox.deliver_due() == 3  # "up": both of incident 1; "down": incident 2

    assert received_keys(other_receiver) == [
        "incident.1.opened",
        "incident.1.resolved",
        "incident.2.opened",
    ]
    assert received_keys(receiver)[-1] == "incident.2.opened"
    assert "incident.1.resolved" not in received_keys(receiver)


def test_a_grouped_channel_sends_an_opened_and_its_resolved_in_one_message_in_order(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(store, [HttpChannel("chat", receiver.url, grouped=True)], group_window=60)
    outbox.enqueue(incident_event(1, Event.INCIDENT_OPENED), ["chat"])
    outbox.deliver_due()
    clock.advance(0.5)
    outbox.enqueue(incident_event(1, Event.INCIDENT_RESOLVED), ["chat"])
    receiver.behaviour = Behaviour()
    clock.advance(outbox.next_wake(limit=600.0))

    assert outbox.deliver_due() == 2

    last = receiver.received[-1].json()["notifications"]
    assert [n["key"] for n in last] == ["incident.1.opened", "incident.1.resolved"]


def test_a_watch_poll_recovered_waits_for_its_poll_failing_and_for_nothing_else(
    store: Deliveries, receiver: HttpReceiver, on_clock: Callable[..., Outbox], clock: FakeClock
) -> None:
    def poll(event: Event, package: str) -> Notification:
        details = {"watch": "deps", "package": package}
        return Notification(event=event, key=f"{event}|{package}", summary="s", details=details)

    receiver.behaviour = Behaviour(status=503)
    outbox = on_clock(store, [HttpChannel("hook", receiver.url)])
    outbox.enqueue(poll(Event.UPSTREAM_POLL_FAILING, "httpx"), ["hook"])
    outbox.deliver_due()
    receiver.behaviour = Behaviour()
    outbox.enqueue(poll(Event.UPSTREAM_POLL_RECOVERED, "httpx"), ["hook"])
    outbox.enqueue(poll(Event.UPSTREAM_POLL_RECOVERED, "jinja2"), ["hook"])

    assert outbox.deliver_due() == 1
    assert received_keys(receiver)[-1] == "upstream.poll_recovered|jinja2"
    clock.advance(outbox.next_wake(limit=600.0))
    assert outbox.deliver_due() == 2
    assert received_keys(receiver)[-2:] == [
        "upstream.poll_failing|httpx",
        "upstream.poll_recovered|httpx",
    ]
