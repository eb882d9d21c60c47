"""When checks are due: pure functions of a check, its last slot and the current time.

A *slot* is a moment a check is scheduled for. The scheduler runs a check once per slot,
recording the slot as ``scheduled_for``; after a restart it resumes from the last recorded slot,
so a check that just ran is not run again, and a long outage yields one run, not a storm of
catch-up runs.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onwatch.config import Check


def next_slot(check: Check, last_slot: datetime | None, now: datetime) -> datetime:
    """Return the next slot after ``last_slot``; a slot at or before ``now`` is due at once.

    When several slots were missed, only the latest one is returned.
    """
    if check.every is not None:
        if last_slot is None:
            return now
        interval = timedelta(seconds=check.every)
        candidate = last_slot + interval
        if candidate > now:
            return candidate
        missed = math.floor((now - last_slot) / interval)
        return last_slot + missed * interval
    return _next_cron_slot(check, last_slot, now)


def _next_cron_slot(check: Check, last_slot: datetime | None, now: datetime) -> datetime:
    from croniter import croniter

    assert check.cron is not None
    zone = ZoneInfo(check.timezone)
    local_now = now.astimezone(zone)
    iterator = croniter(check.cron, local_now)
    previous: datetime = iterator.get_prev(datetime)
    if last_slot is not None and previous > last_slot:
        return previous.astimezone(now.tzinfo)
    upcoming: datetime = croniter(check.cron, local_now).get_next(datetime)
    return upcoming.astimezone(now.tzinfo)


def interval_of(check: Check, now: datetime) -> float:
    """Return the check's interval in seconds (for cron: the gap between its next two slots)."""
    if check.every is not None:
        return check.every
    from croniter import croniter

    assert check.cron is not None
    iterator = croniter(check.cron, now.astimezone(ZoneInfo(check.timezone)))
    first: datetime = iterator.get_next(datetime)
    second: datetime = iterator.get_next(datetime)
    return (second - first).total_seconds()


def jitter(name: str, interval: float, max_jitter: float) -> float:
    """Return a small delay, stable for a check name, that keeps checks from starting together.

    It is at most ``max_jitter`` and at most a tenth of the interval.
    """
    fraction = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32
    return fraction * min(max_jitter, interval / 10)


def following_slot(check: Check, slot: datetime, now: datetime) -> datetime:
    """Return the first slot after ``now`` on the grid of ``slot`` (skipping missed ones)."""
    if check.every is not None:
        interval = timedelta(seconds=check.every)
        return slot + (math.floor((now - slot) / interval) + 1) * interval
    from croniter import croniter

    assert check.cron is not None
    upcoming: datetime = croniter(check.cron, now.astimezone(ZoneInfo(check.timezone))).get_next(
        datetime
    )
    return upcoming.astimezone(now.tzinfo)


def missed_slots(
    check: Check, last_slot: datetime | None, now: datetime, limit: int = 1000
) -> list[datetime]:
    """Return the slots after ``last_slot`` that passed unrun, oldest first, at most ``limit``.

    The latest slot at or before ``now`` is not among them: the scheduler runs it at once.
    """
    if last_slot is None:
        return []
    slots: list[datetime] = []
    if check.every is not None:
        interval = timedelta(seconds=check.every)
        slot = last_slot + interval
        while slot <= now and len(slots) <= limit:
            slots.append(slot)
            slot += interval
    else:
        from croniter import croniter

        assert check.cron is not None
        zone = ZoneInfo(check.timezone)
        iterator = croniter(check.cron, last_slot.astimezone(zone))
        while len(slots) <= limit:
            slot = iterator.get_next(datetime).astimezone(now.tzinfo)
            if slot > now:
                break
            slots.append(slot)
    return slots[:-1][-limit:] if slots else []


def expected_by(check: Check, last_completed: datetime) -> datetime:
    """Return when the next run after ``last_completed`` should have completed."""
    if check.every is not None:
        due = last_completed + timedelta(seconds=check.every)
    else:
        from croniter import croniter

        assert check.cron is not None
        local = last_completed.astimezone(ZoneInfo(check.timezone))
        due = croniter(check.cron, local).get_next(datetime).astimezone(last_completed.tzinfo)
    return due + timedelta(seconds=check.grace_seconds)
