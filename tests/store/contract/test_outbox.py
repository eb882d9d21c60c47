"""The contract of ``Deliveries``: the outbox's deliveries, attempts and channel health."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onwatch.errors import StoreError
from onwatch.store import Deliveries, DeliveryStatus, Store

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def payload(key: str) -> dict[str, Any]:
    return {"version": 1, "event": "incident.opened", "key": key, "summary": "api ünïcödé ✓"}


def add(outbox: Deliveries, key: str, now: datetime = T0, channel: str = "ops") -> int:
    assert outbox.add(f"{key}|{channel}", channel, "incident.opened", "api", payload(key), now)
    return next(d.id for d in outbox.deliveries() if d.key == f"{key}|{channel}")


@pytest.fixture
def outbox(store: Store) -> Deliveries:
    return store.outbox


def test_it_adds_a_pending_delivery_due_at_once(outbox: Deliveries) -> None:
    assert outbox.add("t1|ops", "ops", "incident.opened", "api", payload("t1"), T0)

    [delivery] = outbox.deliveries()
    assert delivery.key == "t1|ops"
    assert delivery.channel == "ops"
    assert delivery.event == "incident.opened"
    assert delivery.check == "api"
    assert delivery.payload == payload("t1")
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.created_at == T0
    assert delivery.next_attempt_at == T0
    assert delivery.sent_at is None
    assert outbox.get(delivery.id) == delivery


def test_add_is_idempotent_by_key(outbox: Deliveries) -> None:
    assert outbox.add("t1|ops", "ops", "incident.opened", "api", payload("t1"), T0)
    later = T0 + timedelta(minutes=5)
    assert not outbox.add("t1|ops", "ops", "incident.opened", "api", payload("t1"), later)

    [delivery] = outbox.deliveries()
    assert delivery.created_at == T0


def test_concurrent_adds_of_one_key_store_it_once(outbox: Deliveries) -> None:
    start = threading.Barrier(8)
    answers: list[bool] = []

    def add_it() -> None:
        start.wait()
        answers.append(outbox.add("race|ops", "ops", "test", None, payload("race"), T0))

    threads = [threading.Thread(target=add_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [False] * 7 + [True]
    assert len(outbox.deliveries()) == 1


def test_due_returns_due_pending_deliveries_oldest_first(outbox: Deliveries) -> None:
    second = add(outbox, "second", T0 + timedelta(seconds=2))
    first = add(outbox, "first", T0 + timedelta(seconds=1))
    add(outbox, "future", T0 + timedelta(minutes=1))
    other = add(outbox, "other", T0, channel="chat")

    now = T0 + timedelta(seconds=10)
    assert [d.id for d in outbox.due(now)] == [other, first, second]
    assert [d.id for d in outbox.due(now, channels=["ops"])] == [first, second]
    assert [d.id for d in outbox.due(now, limit=2)] == [other, first]
    assert outbox.due(T0 - timedelta(seconds=1)) == []


def test_a_claimed_delivery_is_not_due_until_the_claim_runs_out(outbox: Deliveries) -> None:
    delivery = add(outbox, "t1")
    until = T0 + timedelta(seconds=60)

    assert outbox.claim([delivery], now=T0, until=until) == [delivery]
    assert outbox.claim([delivery], now=T0, until=until) == []  # a second sender gets nothing
    assert outbox.due(T0 + timedelta(seconds=59)) == []
    assert [d.id for d in outbox.due(until)] == [delivery]


def test_a_successful_attempt_marks_the_delivery_sent(outbox: Deliveries) -> None:
    delivery = add(outbox, "t1")
    at = T0 + timedelta(seconds=1)

    outbox.record_attempt(
        delivery, at=at, duration=0.25, ok=True, permanent=False, error=None, next_attempt_at=None
    )

    found = outbox.get(delivery)
    assert found is not None
    assert (found.status, found.attempts, found.sent_at) == (DeliveryStatus.SENT, 1, at)
    [attempt] = outbox.attempts(delivery)
    assert (attempt.attempted_at, attempt.duration, attempt.ok) == (at, 0.25, True)
    assert outbox.due(T0 + timedelta(days=1)) == []


def test_a_temporary_failure_keeps_the_delivery_pending_until_its_retry(
    outbox: Deliveries,
) -> None:
    delivery = add(outbox, "t1")
    retry = T0 + timedelta(seconds=30)

    outbox.record_attempt(
        delivery,
        at=T0,
        duration=1.5,
        ok=False,
        permanent=False,
        error="HTTP 503",
        next_attempt_at=retry,
    )

    found = outbox.get(delivery)
    assert found is not None
    assert found.status is DeliveryStatus.PENDING
    assert (found.attempts, found.next_attempt_at, found.last_error) == (1, retry, "HTTP 503")
    assert outbox.due(retry - timedelta(seconds=1)) == []
    assert [d.id for d in outbox.due(retry)] == [delivery]


def test_a_permanent_failure_fails_the_delivery(outbox: Deliveries) -> None:
    delivery = add(outbox, "t1")

    outbox.record_attempt(
        delivery,
        at=T0,
        duration=0.1,
        ok=False,
        permanent=True,
        error="HTTP 404",
        next_attempt_at=T0 + timedelta(seconds=30),
    )

    found = outbox.get(delivery)
    assert found is not None
    assert (found.status, found.last_error) == (DeliveryStatus.FAILED, "HTTP 404")
    [attempt] = outbox.attempts(delivery)
    assert (attempt.ok, attempt.permanent, attempt.error) == (False, True, "HTTP 404")
    assert outbox.pending_for("ops") == []


def test_a_failure_without_a_next_attempt_fails_the_delivery(outbox: Deliveries) -> None:
    delivery = add(outbox, "t1")
    for attempt in range(3):
        last = attempt == 2
        outbox.record_attempt(
            delivery,
            at=T0 + timedelta(seconds=attempt),
            duration=0.1,
            ok=False,
            permanent=False,
            error=f"timeout {attempt}",
            next_attempt_at=None if last else T0 + timedelta(seconds=attempt + 1),
        )

    found = outbox.get(delivery)
    assert found is not None
    assert (found.status, found.attempts, found.last_error) == (
        DeliveryStatus.FAILED,
        3,
        "timeout 2",
    )
    assert [a.error for a in outbox.attempts(delivery)] == ["timeout 0", "timeout 1", "timeout 2"]


def test_it_tells_when_each_channel_is_next_due(outbox: Deliveries) -> None:
    add(outbox, "late", T0 + timedelta(seconds=5))
    add(outbox, "early", T0 + timedelta(seconds=1))
    add(outbox, "chat", T0 + timedelta(seconds=3), channel="chat")
    sent = add(outbox, "sent", T0, channel="mail")
    outbox.record_attempt(
        sent, at=T0, duration=0.1, ok=True, permanent=False, error=None, next_attempt_at=None
    )

    assert outbox.next_due_by_channel() == {
        "ops": T0 + timedelta(seconds=1),
        "chat": T0 + timedelta(seconds=3),
    }


def add_in_series(
    outbox: Deliveries, key: str, series: str | None, now: datetime = T0, channel: str = "ops"
) -> int:
    assert outbox.add(
        f"{key}|{channel}", channel, "incident.opened", "api", payload(key), now, series=series
    )
    return next(d.id for d in outbox.deliveries() if d.key == f"{key}|{channel}")


def attempt(outbox: Deliveries, delivery: int, *, ok: bool, retry: datetime | None) -> None:
    outbox.record_attempt(
        delivery,
        at=T0,
        duration=0.1,
        ok=ok,
        permanent=False,
        error=None if ok else "HTTP 503",
        next_attempt_at=retry,
    )


def test_a_later_delivery_of_a_series_waits_for_the_earlier_one(outbox: Deliveries) -> None:
    opened = add_in_series(outbox, "opened", "incident.1")
    resolved = add_in_series(outbox, "resolved", "incident.1", T0 + timedelta(seconds=1))
    retry = T0 + timedelta(seconds=60)
    now = T0 + timedelta(seconds=10)

    assert [d.id for d in outbox.due(now)] == [opened]
    attempt(outbox, opened, ok=False, retry=retry)

    # The resolved is due by its own time, but its opened is still pending: nothing may leave.
    assert outbox.due(now) == []
    assert outbox.next_due_by_channel() == {"ops": retry}
    assert [d.id for d in outbox.pending_for("ops")] == [opened, resolved]
    attempt(outbox, opened, ok=True, retry=None)
    assert [d.id for d in outbox.due(now)] == [resolved]
    stored = outbox.get(resolved)
    assert stored is not None and stored.series == "incident.1"


def test_a_given_up_delivery_no_longer_holds_its_series_back(outbox: Deliveries) -> None:
    opened = add_in_series(outbox, "opened", "incident.1")
    resolved = add_in_series(outbox, "resolved", "incident.1")

    attempt(outbox, opened, ok=False, retry=None)  # out of attempts: failed for good

    assert [d.id for d in outbox.due(T0)] == [resolved]
    assert outbox.next_due_by_channel() == {"ops": T0}


def test_a_series_waits_on_its_own_channel_only_and_other_series_never_wait(
    outbox: Deliveries,
) -> None:
    stuck = add_in_series(outbox, "opened-1", "incident.1")
    waiting = add_in_series(outbox, "resolved-1", "incident.1")
    other_channel = add_in_series(outbox, "resolved-1", "incident.1", channel="chat")
    other_incident = add_in_series(outbox, "opened-2", "incident.2")
    no_series = add_in_series(outbox, "overdue", None)
    also_no_series = add_in_series(outbox, "overdue-2", None)
    attempt(outbox, stuck, ok=False, retry=T0 + timedelta(hours=1))

    due = {d.id for d in outbox.due(T0)}

    assert waiting not in due
    assert due == {other_channel, other_incident, no_series, also_no_series}


def test_it_lists_pending_deliveries_of_a_channel_and_deliveries_newest_first(
    outbox: Deliveries,
) -> None:
    first = add(outbox, "first")
    second = add(outbox, "second", T0 + timedelta(seconds=1))
    chat = add(outbox, "chat", T0, channel="chat")
    outbox.record_attempt(
        chat, at=T0, duration=0.1, ok=False, permanent=True, error="HTTP 400", next_attempt_at=None
    )

    assert [d.id for d in outbox.pending_for("ops")] == [first, second]
    assert [d.id for d in outbox.deliveries()] == [chat, second, first]
    assert [d.id for d in outbox.deliveries(status=DeliveryStatus.FAILED)] == [chat]
    assert [d.id for d in outbox.deliveries(limit=1)] == [chat]


def test_channel_state_counts_failures_in_a_row_and_resets_on_success(
    outbox: Deliveries,
) -> None:
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (1, 2, 3))

    first = outbox.update_channel("ops", ok=False, error="HTTP 502", at=t1)
    assert (first.consecutive_failures, first.failing_since, first.last_error) == (
        1,
        t1,
        "HTTP 502",
    )
    second = outbox.update_channel("ops", ok=False, error="timeout", at=t2)
    assert (second.consecutive_failures, second.failing_since, second.last_error) == (
        2,
        t1,
        "timeout",
    )
    assert second.last_attempt_at == t2
    assert second.last_success_at is None

    healthy = outbox.update_channel("ops", ok=True, error=None, at=t3)
    assert (healthy.consecutive_failures, healthy.failing_since) == (0, None)
    assert (healthy.last_attempt_at, healthy.last_success_at) == (t3, t3)

    outbox.update_channel("chat", ok=True, error=None, at=t1)
    assert [s.channel for s in outbox.channel_states()] == ["chat", "ops"]


def test_a_failure_after_a_success_starts_a_new_failing_episode(outbox: Deliveries) -> None:
    outbox.update_channel("ops", ok=False, error="down", at=T0)
    outbox.update_channel("ops", ok=True, error=None, at=T0 + timedelta(seconds=1))
    again = outbox.update_channel("ops", ok=False, error="down", at=T0 + timedelta(seconds=2))

    assert again.consecutive_failures == 1
    assert again.failing_since == T0 + timedelta(seconds=2)
    assert again.last_success_at == T0 + timedelta(seconds=1)


def test_claim_skips_what_is_not_due_sent_or_unknown(outbox: Deliveries) -> None:
    later = add(outbox, "later", T0 + timedelta(minutes=5))
    sent = add(outbox, "sent")
    outbox.record_attempt(
        sent, at=T0, duration=0.1, ok=True, permanent=False, error=None, next_attempt_at=None
    )
    due = add(outbox, "due")

    claimed = outbox.claim([later, sent, due, 999_999], now=T0, until=T0 + timedelta(minutes=1))

    assert claimed == [due]
    found = outbox.get(due)
    assert found is not None and found.next_attempt_at == T0 + timedelta(minutes=1)
    assert outbox.get(999_999) is None


def test_a_success_ends_a_failing_episode_but_keeps_the_last_error(outbox: Deliveries) -> None:
    outbox.update_channel("ops", ok=False, error="HTTP 502", at=T0)
    healthy = outbox.update_channel("ops", ok=True, error=None, at=T0 + timedelta(seconds=1))

    assert healthy.last_error == "HTTP 502"
    assert outbox.channel_states() == [healthy]


def test_an_attempt_of_an_unknown_delivery_is_refused(outbox: Deliveries) -> None:
    with pytest.raises(StoreError, match="cannot record an attempt of delivery 999999"):
        outbox.record_attempt(
            999_999, at=T0, duration=0.1, ok=True, permanent=False, error=None, next_attempt_at=None
        )
    assert outbox.attempts(999_999) == []
