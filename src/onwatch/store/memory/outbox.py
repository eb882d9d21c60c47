"""MemoryDeliveries: the outbox of a memory store: deliveries, attempts, channel health."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from onwatch.errors import StoreError
from onwatch.model import as_utc
from onwatch.store.memory.data import Data, as_json
from onwatch.store.records import ChannelState, Delivery, DeliveryAttempt, DeliveryStatus

__all__ = ["MemoryDeliveries"]


class MemoryDeliveries:
    """The ``Deliveries`` of a memory store."""

    def __init__(self, data: Data) -> None:
        self._d = data

    def add(
        self,
        key: str,
        channel: str,
        event: str,
        check: str | None,
        payload: dict[str, Any],
        now: datetime,
        *,
        series: str | None = None,
    ) -> bool:
        """Store a pending delivery, due at ``now``; False if one with ``key`` already exists."""
        with self._d.use(f"cannot store delivery {key}"):
            if any(d.key == key for d in self._d.deliveries.values()):
                return False
            new_id = max(self._d.deliveries, default=0) + 1
            self._d.deliveries[new_id] = Delivery(
                id=new_id,
                key=key,
                channel=channel,
                event=event,
                check=check,
                payload=dict(as_json(payload)),
                status=DeliveryStatus.PENDING,
                attempts=0,
                created_at=as_utc(now),
                next_attempt_at=as_utc(now),
                series=series,
            )
            return True

    def _pending(self, action: str) -> list[Delivery]:
        with self._d.use(action):
            found = [d for d in self._d.deliveries.values() if d.status is DeliveryStatus.PENDING]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def _first_of_series(self, action: str) -> list[Delivery]:
        """Return the pending deliveries that no earlier one of their series holds back."""
        pending = self._pending(action)
        first: dict[tuple[str, str], int] = {}
        for d in pending:
            if d.series is not None:
                slot = (d.channel, d.series)
                first[slot] = min(first.get(slot, d.id), d.id)
        return [d for d in pending if d.series is None or first[(d.channel, d.series)] == d.id]

    def due(
        self, now: datetime, *, channels: Collection[str] | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Return pending deliveries due at ``now`` (of ``channels`` if given), oldest first."""
        found = [
            d
            for d in self._first_of_series("cannot read due deliveries")
            if d.next_attempt_at <= now and (channels is None or d.channel in channels)
        ]
        return found[:limit]

    def claim(self, ids: Iterable[int], *, now: datetime, until: datetime) -> list[int]:
        """Reserve due deliveries for a send until ``until``; return the ids this call got."""
        claimed = []
        with self._d.use("cannot claim deliveries"):
            for delivery_id in ids:
                found = self._d.deliveries.get(delivery_id)
                if (
                    found is not None
                    and found.status is DeliveryStatus.PENDING
                    and found.next_attempt_at <= now
                ):
                    self._d.deliveries[delivery_id] = replace(found, next_attempt_at=as_utc(until))
                    claimed.append(delivery_id)
        return claimed

    def pending_for(self, channel: str) -> list[Delivery]:
        """Return a channel's pending deliveries, oldest first."""
        action = f"cannot read pending deliveries of {channel}"
        return [d for d in self._pending(action) if d.channel == channel]

    def next_due_by_channel(self) -> dict[str, datetime]:
        """Return, per channel with deliveries that may leave, when the earliest of them is due."""
        found: dict[str, datetime] = {}
        for d in self._first_of_series("cannot read pending deliveries"):
            found[d.channel] = min(found.get(d.channel, d.next_attempt_at), d.next_attempt_at)
        return found

    def record_attempt(
        self,
        delivery_id: int,
        *,
        at: datetime,
        duration: float,
        ok: bool,
        permanent: bool,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Store one attempt and move its delivery on: sent, failed, or due again later."""
        action = f"cannot record an attempt of delivery {delivery_id}"
        with self._d.use(action):
            found = self._d.deliveries.get(delivery_id)
            if found is None:
                raise StoreError(f"{action}: no such delivery")
            changed = replace(found, attempts=found.attempts + 1, last_error=error)
            if ok:
                changed = replace(changed, status=DeliveryStatus.SENT, sent_at=as_utc(at))
            elif permanent or next_attempt_at is None:
                changed = replace(changed, status=DeliveryStatus.FAILED)
            else:
                changed = replace(changed, next_attempt_at=as_utc(next_attempt_at))
            self._d.deliveries[delivery_id] = changed
            self._d.attempts.append(
                DeliveryAttempt(delivery_id, as_utc(at), duration, ok, permanent, error)
            )

    def get(self, delivery_id: int) -> Delivery | None:
        """Return one delivery, or None."""
        with self._d.use(f"cannot read delivery {delivery_id}"):
            return self._d.deliveries.get(delivery_id)

    def deliveries(
        self, limit: int = 100, *, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Return deliveries newest first, optionally only those with ``status``."""
        with self._d.use("cannot list deliveries"):
            found = [d for _, d in sorted(self._d.deliveries.items(), reverse=True)]
        return [d for d in found if status is None or d.status is status][:limit]

    def attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        """Return every attempt of a delivery, first first."""
        with self._d.use(f"cannot read attempts of delivery {delivery_id}"):
            return [a for a in self._d.attempts if a.delivery_id == delivery_id]

    def channel_states(self) -> list[ChannelState]:
        """Return the health of every channel that was ever tried, by name."""
        with self._d.use("cannot read channel states"):
            return [state for _, state in sorted(self._d.channels.items())]

    def update_channel(
        self, channel: str, *, ok: bool, error: str | None, at: datetime
    ) -> ChannelState:
        """Record the outcome of a send on a channel and return its new state."""
        at = as_utc(at)
        with self._d.use(f"cannot record the state of channel {channel}"):
            state = self._d.channels.get(channel)
            if state is None:
                state = ChannelState(channel, 0, None, None, None, None)
            if ok:
                state = replace(
                    state,
                    consecutive_failures=0,
                    failing_since=None,
                    last_attempt_at=at,
                    last_success_at=at,
                )
            else:
                state = replace(
                    state,
                    consecutive_failures=state.consecutive_failures + 1,
                    failing_since=state.failing_since or at,
                    last_error=error,
                    last_attempt_at=at,
                )
            self._d.channels[channel] = state
        return state
