"""Bring a ``Health`` up to what the database knows, so /metrics shows stored runs too.

``onwatch run`` seeds its ``Health`` once at start, then records its own runs as they finish.
``onwatch serve`` runs nothing: it seeds at start and refreshes every ``REFRESH_SECONDS``, so
runs recorded by ``onwatch once`` or by another machine's daemon appear in its /metrics. Either
way a scrape still reads memory only, and keeps answering while the database is down.

What is seeded: each check's latest run (when, status, duration, consecutive failures, last
success when it passed), its tests as that run left them, whether it has an open incident, and
each watched package's polls. Whether a check is overdue is seeded only where no watchdog
judges it (``serve``): ``run``'s watchdog measures lateness from its own start.
The counters (``onwatch_runs_total``, ``onwatch_results_total``) count what this process
recorded, so they are never seeded.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from onwatch.errors import StoreError
from onwatch.model import CheckStatus, RunStatus
from onwatch.state.health import Health, PollState
from onwatch.state.service import StateService

__all__ = ["REFRESH_SECONDS", "HealthFeed"]

log = logging.getLogger("onwatch.state")
# Often enough that a scrape a few seconds after a run shows it; a few cheap reads each time.
REFRESH_SECONDS = 5.0


class HealthFeed:
    """Seeds one ``Health`` from the store, and keeps doing so for a process that runs nothing."""

    def __init__(self, state: StateService, health: Health, *, overdue: bool = False) -> None:
        self.state = state
        self.health = health
        self.overdue = overdue  # also seed the overdue gauge (no watchdog in this process)
        # The latest run whose tests were read, per check: a check's full run (every result) is
        # read again only when a newer run finished.
        self._tests_of: dict[str, datetime] = {}
        self._failing = False

    def seed(self) -> None:
        """Bring the health up to the stored statuses, latest tests, incidents and polls.

        Raises ``StoreError`` when the database cannot be read; what was seeded stays.
        """
        statuses = self.state.statuses(list(self.health.checks))
        for status in statuses:
            self._seed_status(status)
        for status in statuses:
            last = status.last_run_at
            if last is None or self._tests_of.get(status.name) == last:
                continue
            latest = self.state.latest_run(status.name)
            if latest is not None:
                self.health.seed_latest(latest)
            self._tests_of[status.name] = last
        for summary in self.state.watches():
            if summary.last_poll_at is None:
                continue
            last_ok = None if summary.last_ok_at is None else summary.last_ok_at.timestamp()
            # Failing polls are counted apart (failures); the state kept is the verdict's.
            state = "ok" if summary.state == "polls-failing" else summary.state
            poll = PollState(summary.last_poll_at.timestamp(), last_ok, summary.failures, state)
            self.health.seed_poll(summary.watch, summary.package, poll)

    def refresh(self) -> bool:
        """Seed again; log an outage once instead of raising. Return whether it worked."""
        try:
            self.seed()
        except StoreError as exc:
            if not self._failing:
                log.warning("cannot refresh the metrics from the database: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("the metrics follow the database again")
        self._failing = False
        return True

    def follow(self, stop: threading.Event, every: float = REFRESH_SECONDS) -> None:
        """Refresh every ``every`` seconds until ``stop`` is set."""
        while not stop.wait(every):
            self.refresh()

    def _seed_status(self, status: CheckStatus) -> None:
        last = None if status.last_run_at is None else status.last_run_at.timestamp()
        passed = status.last_status is RunStatus.PASSED
        self.health.seed(
            status.name,
            last,
            last if passed else None,
            last_status=None if status.last_status is None else status.last_status.value,
            consecutive_failures=status.consecutive_failures,
        )
        self.health.set_incident(status.name, status.incident is not None)
        if self.overdue:
            self.health.set_overdue(status.name, status.overdue)
