"""Whether a check is silenced at a moment: pure functions over config windows and stored ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onwatch.config import Silence
from onwatch.model import Window

__all__ = ["Window", "active_windows", "silenced"]


def active_windows(silences: list[Silence], now: datetime) -> list[Window]:
    """Return the config windows in force at ``now``, one per check they cover."""
    found = []
    for silence in silences:
        ends_at = _ends_at(silence, now)
        if ends_at is None:
            continue
        covered: list[str | None] = list(silence.checks) or [None]
        for check in covered:
            found.append(Window(check=check, ends_at=ends_at, reason=silence.reason))
    return found


def silenced(check: str, windows: list[Window]) -> Window | None:
    """Return the window that silences ``check`` the longest, if any."""
    covering = [w for w in windows if w.check is None or w.check == check]
    return max(covering, key=lambda w: w.ends_at, default=None)


def _ends_at(silence: Silence, now: datetime) -> datetime | None:
    if silence.start is not None and silence.end is not None:
        return silence.end if silence.start <= now < silence.end else None
    if silence.cron is None or silence.duration is None:
        return None
    from croniter import croniter

    local = now.astimezone(ZoneInfo(silence.timezone))
    began: datetime = croniter(silence.cron, local + timedelta(microseconds=1)).get_prev(datetime)
    ends = began + timedelta(seconds=silence.duration)
    return ends.astimezone(now.tzinfo) if began <= local < ends else None
