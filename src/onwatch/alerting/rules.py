"""When incidents open, resolve and remind: a pure state machine over a check's run history.

An incident opens after ``alert_after`` failing runs in a row (status failed, error or timeout)
and resolves after ``recover_after`` passing runs in a row. A run that passed only thanks to a
retry (a flaky test) passes, but is counted on the open incident. A run cut short by a normal
stop of onwatch (``stopped``) neither fails nor passes: routine restarts open no incident,
and the runs either side of one still count as in a row. Nothing here does I/O: the
caller passes the open incident (from the database), the recent runs and the time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from onwatch.model import FAILING_STATUSES as FAILING
from onwatch.model import Incident, RunFacts

__all__ = [
    "FAILING",
    "Change",
    "Incident",
    "Policy",
    "RunFacts",
    "Transition",
    "on_run",
    "reminder_due",
]


@dataclass(frozen=True)
class Policy:
    """A check's alerting thresholds."""

    alert_after: int = 2
    recover_after: int = 1
    remind_every: float | None = None  # seconds


class Change(StrEnum):
    """What happened to an incident."""

    OPENED = "opened"
    UPDATED = "updated"  # another failing (or flaky) run: counters change, nobody is told
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Transition:
    """A change of an incident, with the incident as it is afterwards."""

    change: Change
    incident: Incident


def on_run(
    check: str, policy: Policy, incident: Incident | None, recent: list[RunFacts]
) -> Transition | None:
    """Return what the newest run (``recent[0]``; newest first) does to the check's incident."""
    if not recent or recent[0].stopped:
        return None
    recent = [run for run in recent if not run.stopped]
    latest = recent[0]
    if incident is None or not incident.open:
        streak = _streak(recent, failing=True)
        if len(streak) < policy.alert_after:
            return None
        first = streak[-1]
        return Transition(
            Change.OPENED,
            Incident(
                check=check,
                opened_at=first.started_at,
                opened_run_id=first.id,
                last_run_id=latest.id,
                failing_runs=len(streak),
                summary=latest.summary,
                category=latest.category,
                failing_tests=latest.failing_tests,
            ),
        )
    if latest.id == incident.last_run_id:
        return None  # already counted
    if latest.failing:
        return Transition(
            Change.UPDATED,
            replace(
                incident,
                last_run_id=latest.id,
                failing_runs=incident.failing_runs + 1,
                summary=latest.summary or incident.summary,
                failing_tests=latest.failing_tests or incident.failing_tests,
            ),
        )
    counted = replace(
        incident, last_run_id=latest.id, flaky_runs=incident.flaky_runs + (latest.flaky > 0)
    )
    if len(_streak(recent, failing=False)) >= policy.recover_after:
        return Transition(
            Change.RESOLVED,
            replace(counted, resolved_at=latest.finished_at, resolved_run_id=latest.id),
        )
    return Transition(Change.UPDATED, counted)


def reminder_due(policy: Policy, incident: Incident, now: datetime) -> bool:
    """Tell whether a notified, open incident is due for a reminder."""
    if policy.remind_every is None or not incident.open or incident.notified_at is None:
        return False
    last = incident.last_reminder_at or incident.notified_at
    return (now - last).total_seconds() >= policy.remind_every


def _streak(recent: list[RunFacts], *, failing: bool) -> list[RunFacts]:
    streak = []
    for run in recent:
        if run.failing != failing:
            break
        streak.append(run)
    return streak
