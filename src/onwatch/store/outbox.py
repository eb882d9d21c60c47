"""SqlDeliveries: the outbox's deliveries, their attempts and the health of each channel, in SQL.

This is the only module that issues SQL for ``deliveries``, ``delivery_attempts`` and
``channel_states``. Every statement is a SQLAlchemy Core expression that SQLite and PostgreSQL
both run, and every failure leaves as ``StoreError`` through ``Database``.

A delivery is pending until it is sent or given up on (failed). While one process sends it, the
delivery is *claimed*: its ``next_attempt_at`` is pushed past the send's longest duration, so
that a second process on the same database does not pick it up too, and a process that dies
mid-send leaves it to be tried again once the claim runs out.

Deliveries that share a ``series`` on one channel leave in the order they were added: while an
earlier one is pending, the later ones are not due. One that is sent or given up on no longer
holds the others back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, insert, select, update

from onwatch.errors import StoreError
from onwatch.store.database import Database, is_conflict
from onwatch.store.records import ChannelState, Delivery, DeliveryAttempt, DeliveryStatus
from onwatch.store.schema import channel_states, deliveries, delivery_attempts

__all__ = ["SqlDeliveries"]


class SqlDeliveries:
    """The ``Deliveries`` of a ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- deliveries ----------------------------------------------------------------------------

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
        row = {
            "series": series,
            "key": key,
            "channel": channel,
            "event": event,
            "check": check,
            "payload": payload,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        action = f"cannot store delivery {key}"
        try:
            with self._db.write(action) as conn:
                if _key_exists(conn, key):
                    return False
                conn.execute(insert(deliveries).values(row))
        except StoreError as exc:
            # Two writers can both pass the existence check; the loser's insert violates the
            # unique key, and the delivery is stored after all. Anything else is real.
            if is_conflict(exc):
                with self._db.read(action) as conn:
                    if _key_exists(conn, key):
                        return False
            raise
        return True

    def due(
        self, now: datetime, *, channels: Collection[str] | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Return pending deliveries due at ``now`` (of ``channels`` if given), oldest first."""
        query = (
            select(deliveries)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.next_attempt_at <= now,
                _first_of_series(),
            )
            .order_by(deliveries.c.created_at, deliveries.c.id)
            .limit(limit)
        )
        if channels is not None:
            query = query.where(deliveries.c.channel.in_(list(channels)))
        with self._db.read("cannot read due deliveries") as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def claim(self, ids: Iterable[int], *, now: datetime, until: datetime) -> list[int]:
        """Reserve due deliveries for a send until ``until``; return the ids this call got."""
        claimed: list[int] = []
        with self._db.write("cannot claim deliveries") as conn:
            for delivery_id in ids:
                # Still pending and still due: another process that claimed it first has
                # moved next_attempt_at past now, and this update then matches nothing.
                done = conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.status == DeliveryStatus.PENDING.value,
                        deliveries.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=until)
                )
                if done.rowcount == 1:
                    claimed.append(delivery_id)
        return claimed

    def pending_for(self, channel: str) -> list[Delivery]:
        """Return a channel's pending deliveries, oldest first."""
        query = (
            select(deliveries)
            .where(
                deliveries.c.channel == channel,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .order_by(deliveries.c.created_at, deliveries.c.id)
        )
        with self._db.read(f"cannot read pending deliveries of {channel}") as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def next_due_by_channel(self) -> dict[str, datetime]:
        """Return, per channel with deliveries that may leave, when the earliest of them is due.

        A delivery waiting for an earlier one of its series does not count.
        """
        query = (
            select(deliveries.c.channel, func.min(deliveries.c.next_attempt_at).label("due"))
            .where(deliveries.c.status == DeliveryStatus.PENDING.value, _first_of_series())
            .group_by(deliveries.c.channel)
        )
        # min() keeps the column's type, so the values come back as aware UTC datetimes.
        with self._db.read("cannot read pending deliveries") as c:
            return {row.channel: row.due for row in c.execute(query)}

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
        """Store one attempt and move its delivery on: sent, failed, or due again later.

        ``next_attempt_at`` None means there is no further attempt: the delivery fails.
        """
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_error": error,
        }
        if ok:
            values.update(status=DeliveryStatus.SENT.value, sent_at=at)
        elif permanent or next_attempt_at is None:
            values.update(status=DeliveryStatus.FAILED.value)
        else:
            values.update(next_attempt_at=next_attempt_at)
        with self._db.write(f"cannot record an attempt of delivery {delivery_id}") as conn:
            conn.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempted_at=at,
                    duration=duration,
                    ok=ok,
                    permanent=permanent,
                    error=error,
                )
            )
            conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(values))

    def get(self, delivery_id: int) -> Delivery | None:
        """Return one delivery, or None."""
        query = select(deliveries).where(deliveries.c.id == delivery_id)
        with self._db.read(f"cannot read delivery {delivery_id}") as conn:
            row = conn.execute(query).first()
        return None if row is None else _delivery(row)

    def deliveries(
        self, limit: int = 100, *, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Return deliveries newest first, optionally only those with ``status``."""
        query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(deliveries.c.status == status.value)
        with self._db.read("cannot list deliveries") as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        """Return every attempt of a delivery, first first."""
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.id)
        )
        with self._db.read(f"cannot read attempts of delivery {delivery_id}") as conn:
            return [
                DeliveryAttempt(
                    delivery_id=row.delivery_id,
                    attempted_at=row.attempted_at,
                    duration=row.duration,
                    ok=row.ok,
                    permanent=row.permanent,
                    error=row.error,
                )
                for row in conn.execute(query)
            ]

    # -- channel health ------------------------------------------------------------------------

    def channel_states(self) -> list[ChannelState]:
        """Return the health of every channel that was ever tried, by name."""
        query = select(channel_states).order_by(channel_states.c.channel)
        with self._db.read("cannot read channel states") as conn:
            return [_channel_state(row) for row in conn.execute(query)]

    def update_channel(
        self, channel: str, *, ok: bool, error: str | None, at: datetime
    ) -> ChannelState:
        """Record the outcome of a send on a channel and return its new state."""
        # Relative updates (failures + 1, failing_since kept if set) stay right when two
        # processes record outcomes of the same channel at once.
        values: dict[str, Any]
        if ok:
            values = {
                "consecutive_failures": 0,
                "failing_since": None,
                "last_attempt_at": at,
                "last_success_at": at,
            }
        else:
            values = {
                "consecutive_failures": channel_states.c.consecutive_failures + 1,
                "failing_since": func.coalesce(channel_states.c.failing_since, at),
                "last_error": error,
                "last_attempt_at": at,
            }
        first = {
            "channel": channel,
            "consecutive_failures": 0 if ok else 1,
            "failing_since": None if ok else at,
            "last_error": None if ok else error,
            "last_attempt_at": at,
            "last_success_at": at if ok else None,
        }
        change = update(channel_states).where(channel_states.c.channel == channel).values(values)
        action = f"cannot record the state of channel {channel}"
        try:
            with self._db.write(action) as conn:
                if conn.execute(change).rowcount == 0:
                    conn.execute(insert(channel_states).values(first))
        except StoreError as exc:
            if not is_conflict(exc):
                raise
            # Another writer inserted the channel's first row in between: update it.
            with self._db.write(action) as conn:
                conn.execute(change)
        with self._db.read(action) as conn:
            row = conn.execute(
                select(channel_states).where(channel_states.c.channel == channel)
            ).one()
        return _channel_state(row)


def _first_of_series() -> ColumnElement[bool]:
    """Return the condition that no earlier delivery of the same series and channel is pending."""
    earlier = deliveries.alias("earlier")
    # A NULL series equals nothing, so deliveries without one never wait.
    return ~exists(
        select(earlier.c.id).where(
            earlier.c.channel == deliveries.c.channel,
            earlier.c.series == deliveries.c.series,
            earlier.c.status == DeliveryStatus.PENDING.value,
            earlier.c.id < deliveries.c.id,
        )
    )


def _key_exists(conn: Connection, key: str) -> bool:
    return conn.execute(select(deliveries.c.id).where(deliveries.c.key == key)).first() is not None


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        key=row.key,
        channel=row.channel,
        event=row.event,
        check=row.check,
        payload=dict(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        series=row.series,
    )


def _channel_state(row: Row[Any]) -> ChannelState:
    return ChannelState(
        channel=row.channel,
        consecutive_failures=row.consecutive_failures,
        failing_since=row.failing_since,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        last_success_at=row.last_success_at,
    )
