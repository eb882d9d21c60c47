"""Delivery faults: a webhook receiver that refuses, then recovers; one that answers too late.

Real parts throughout: runs recorded in a SQLite file, the alerting engine opening and resolving
incidents from them, the outbox worker on the real clock, the webhook channel posting over HTTP
to receivers on 127.0.0.1. The figures the assertions check are the ones docs/reliability.md
publishes: deliveries in order out of those sent, and copies a receiver got of one notification.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from needs import free_port
from onwatch.alerting.engine import Alerting
from onwatch.alerting.outbox import Outbox, OutboxWorker
from onwatch.channels.webhook import Webhook, WebhookSettings
from onwatch.model import Outcome, Run, RunStatus, TestResult, utcnow
from onwatch.store import DeliveryStatus, Store, open_store
from receivers import Behaviour, HttpReceiver, Received
from records import make_config
from waiting import wait_until

CHECKS = ("api", "web", "shop", "search", "login")


@dataclass
class Monitor:
    """Alerting over a SQLite store, its outbox worker, and the runs it is handed."""

    store: Store
    alerting: Alerting
    outbox: Outbox
    worker: OutboxWorker
    queued_at: dict[str, float] = field(default_factory=dict)  # key -> monotonic time

    def finish(self, check: str, status: RunStatus) -> str:
        """Record a finished run of ``check`` and let alerting see it; return the key it queued."""
        started = utcnow()
        outcome = Outcome.PASSED if status is RunStatus.PASSED else Outcome.FAILED
        run = Run(
            id=str(uuid.uuid4()),
            check=check,
            status=status,
            started_at=started,
            finished_at=started + timedelta(milliseconds=5),
            collected=1,
            results=(TestResult("tests/test_it.py::test_it", outcome, "call", 0.01),),
        )
        self.store.runs.save_run(run)
        incident = self.store.incidents.open_incident(check)
        self.alerting.on_run(run)
        if status is RunStatus.FAILED:
            incident = self.store.incidents.open_incident(check)
            assert incident is not None
            key = f"incident.{incident.id}.opened"
        else:
            assert incident is not None
            key = f"incident.{incident.id}.resolved"
        self.queued_at[key] = time.monotonic()
        return key


MakeMonitor = Callable[..., Monitor]


@pytest.fixture
def make_monitor(tmp_path: Path) -> Iterator[MakeMonitor]:
    """Yield a function that wires a monitor to webhook channels named after their URLs."""
    made: list[Monitor] = []

    def make(urls: dict[str, str], *, timeout: float = 2.0, max_delay: float = 0.5) -> Monitor:
        store = open_store(f"sqlite:///{tmp_path / f'onwatch-{len(made)}.db'}")
        store.ensure_schema()
        channels = {
            name: Webhook(name, WebhookSettings(url=url, timeout=timeout))
            for name, url in urls.items()
        }
        # Short backoff so that a test's outage spans many retries: each delivery's own
        # backoff is what used to let a resolved overtake its opened.
        outbox = Outbox(store.outbox, channels, base_delay=0.05, max_delay=max_delay)
        outbox_worker = OutboxWorker(outbox, poll=0.2)
        config = make_config(
            {name: {"tests": ["t"], "every": "1m", "alert_after": 1} for name in CHECKS},
            notify=list(urls),
        )
        alerting = Alerting(config, store, outbox, on_enqueue=outbox_worker.wake)
        outbox_worker.start()
        monitor = Monitor(store, alerting, outbox, outbox_worker)
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        monitor.worker.stop(timeout=10)
        monitor.outbox.close(timeout=10)
        monitor.store.close()


def keys_of(received: list[Received]) -> list[str]:
    return [str(r.json()["key"]) for r in received]


def in_order(got: list[str], incidents: list[tuple[str, str]]) -> int:
    """Count the incidents whose resolved arrived, every copy, after every copy of its opened.

    A receiver acting in arrival order, on any copy, then ends with each of them resolved.
    """
    return sum(
        opened in got
        and resolved in got
        and max(i for i, key in enumerate(got) if key == opened)
        < min(i for i, key in enumerate(got) if key == resolved)
        for opened, resolved in incidents
    )


def test_after_an_outage_every_incident_arrives_opened_before_resolved(
    make_monitor: MakeMonitor,
) -> None:
    """Fault: the receiver refuses connections, then answers 503, then recovers.

    Ten incidents open and resolve during the outage. A second channel stays up: it must get
    each notification at once, not wait for the broken one.
    """
    port = free_port()  # nothing listens: connection refused
    with HttpReceiver() as up:
        monitor = make_monitor({"broken": f"http://127.0.0.1:{port}/hook", "up": f"{up.url}/hook"})
        incidents: list[tuple[str, str]] = []
        for _ in range(2):
            for check in CHECKS:
                opened = monitor.finish(check, RunStatus.FAILED)
                resolved = monitor.finish(check, RunStatus.PASSED)
                incidents.append((opened, resolved))
        sent = [key for pair in incidents for key in pair]
        wait_until(lambda: set(sent) <= set(keys_of(up.received)), "all sent to the healthy one")

        # The healthy channel got every notification at once, in order, while the other fails
        # (and was told so: "channel.failing" arrives there too).
        arrived = {r.json()["key"]: r.at for r in up.received}
        late = max(arrived[key] - monitor.queued_at[key] for key in sent)
        # Generous for a busy machine: here it is about 0.5 s for 20 notifications.
        assert late < 5.0, f"the healthy channel waited {late:.2f} s"
        assert in_order(keys_of(up.received), incidents) == len(incidents)

        with HttpReceiver(Behaviour(status=503), port=port) as broken:
            broken.wait_for(5, timeout=10)  # the outage goes on: 503 now, attempts backing off
            with broken.lock:
                refused = len(broken.received)
                broken.behaviour = Behaviour()
            recovered = time.monotonic()
            wait_until(
                lambda: all(
                    d.status is DeliveryStatus.SENT for d in monitor.store.outbox.deliveries()
                ),
                "every delivery sent after the receiver recovered",
                timeout=20,
            )
            caught_up = time.monotonic() - recovered
            with broken.lock:
                got = keys_of(broken.received)

    ordered = in_order(got, incidents)
    accepted = Counter(got[refused:])
    duplicates = sum(count - 1 for count in accepted.values() if count > 1)
    print(
        f"in order: {ordered}/{len(incidents)} incidents; sent {len(sent)} per channel; "
        f"duplicates accepted: {duplicates}; caught up {caught_up:.2f} s after recovery; "
        f"healthy channel at most {late:.2f} s behind"
    )
    assert ordered == len(incidents)
    assert set(got) == set(sent)
    assert duplicates == 0


def test_a_receiver_slower_than_the_timeout_gets_few_copies_all_with_one_key(
    make_monitor: MakeMonitor,
) -> None:
    """Fault: the receiver takes longer than the delivery timeout to answer, then answers 200.

    Each attempt that times out may have been acted on: the receiver sees a copy per attempt.
    """
    # Attempts wait 0.5 s, 1 s, then 2 s (four times the timeout): the third gets the answer.
    with HttpReceiver(Behaviour(delay=1.2)) as slow:
        monitor = make_monitor({"slow": f"{slow.url}/hook"}, timeout=0.5)
        opened = monitor.finish("api", RunStatus.FAILED)
        outbox = monitor.store.outbox
        wait_until(
            lambda: all(d.status is not DeliveryStatus.PENDING for d in outbox.deliveries()),
            "the delivery settled",
            timeout=30,
        )
        [delivery] = outbox.deliveries()
        with slow.lock:
            copies = list(slow.received)

    keys = {r.headers["idempotency-key"] for r in copies} | {r.json()["key"] for r in copies}
    print(f"copies of one notification: {len(copies)}; attempts: {delivery.attempts}")
    assert delivery.status is DeliveryStatus.SENT
    assert keys == {opened}  # every copy carries the key a receiver drops repeats by
    assert len(copies) == delivery.attempts <= 3
