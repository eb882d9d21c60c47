"""Whether a check is overdue: one rule for the watchdog, /metrics, the API, status and pages.

A check is overdue when no run completed by its deadline: its interval (or its next cron slot)
plus ``grace`` after its reference time. The reference is its latest completed run; for a
check that never completed one, the moment onwatch began watching it as configured
(``CheckHistory.registered_at``: the check's row, written by ``onwatch run`` as it starts).
So a check that never completed a run is overdue once its first deadline has passed, and every
process that reads the database, ``onwatch serve`` and ``onwatch status`` included, finds the
same deadline as the daemon's watchdog. A check nothing has scheduled or run yet is not
overdue: no run was promised. Disabled checks are never overdue. No I/O here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from onwatch.schedule import expected_by

if TYPE_CHECKING:
    from onwatch.config import Check


def overdue_deadline(
    check: Check, last_completed: datetime | None, registered: datetime | None
) -> datetime | None:
    """Return when a run of ``check`` must have completed by, or None when none is promised."""
    reference = last_completed if last_completed is not None else registered
    if not check.enabled or reference is None:
        return None
    return expected_by(check, reference)


def is_overdue(
    check: Check, last_completed: datetime | None, registered: datetime | None, now: datetime
) -> bool:
    """Tell whether ``check`` is overdue at ``now``."""
    deadline = overdue_deadline(check, last_completed, registered)
    return deadline is not None and now > deadline
