"""Alerting wired to the daemon: each recorded run goes through the rules, notifications go out.

``Alerting.on_run`` is called after a run is recorded; ``Alerting.tick`` runs every few seconds
for what time alone decides: reminders, and incidents whose silence has ended. Incidents live
in the database, so a restarted daemon picks up where it stopped. While the database is down,
evaluation waits (logged once per outage) and the first tick that reaches it catches up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from onwatch.alerting.outbox import Outbox
from onwatch.alerting.rules import Change, Incident, Policy, RunFacts, on_run, reminder_due
from onwatch.alerting.silences import Window, active_windows, silenced
from onwatch.analysis.categorize import dominant_category, summarize
from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.config import Config
from onwatch.durations import format_duration
from onwatch.errors import StoreError
from onwatch.model import Outcome, Run, RunStatus, utcnow
from onwatch.store import Store

log = logging.getLogger("onwatch.alerting")
MAX_FAILING_TESTS = 20
# Runs cut short by a stop are read too but not counted: read a few more than the thresholds.
STOPPED_SLACK = 10


def policy_of(config: Config, check: str) -> Policy:
    """Return a check's alerting thresholds."""
    settings = config.checks[check]
    return Policy(settings.alert_after, settings.recover_after, settings.remind_every)


def facts_of(run: Run) -> RunFacts:
    """Return what the rules need of a run, with a one-line account of what went wrong."""
    finals = run.final_results()
    bad = [r for r in finals if r.outcome.is_bad]
    failing = tuple(
        FailingTest(r.nodeid, (r.message or r.outcome.value).splitlines()[0][:300])
        for r in bad[:MAX_FAILING_TESTS]
    )
    category = dominant_category(finals)
    headline = summarize(finals) if category is not None else None
    return RunFacts(
        id=run.id,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        flaky=run.counts()[Outcome.FLAKY.value],
        summary=describe_failure(run, len(bad), headline),
        failing_tests=failing,
        category=None if category is None else category.value,
        stopped=run.stopped,
    )


def describe_failure(run: Run, bad: int, headline: str | None = None) -> str:
    """Say in one line what is wrong with a run ('' when it passed).

    ``headline`` (from ``analysis.categorize.summarize``) comes first when the failures share
    a cause: what to fix matters more than how many tests it broke.
    """
    if run.status is RunStatus.PASSED:
        return ""
    if run.status is RunStatus.FAILED:
        total = len(run.final_results())
        detail = f"{bad} of {total} test{'s' * (total != 1)} failed"
    elif run.status is RunStatus.TIMEOUT:
        detail = (run.error or run.status.value).splitlines()[0][:200]
    else:
        reason = (run.error or run.status.value).splitlines()[0][:200]
        detail = f"the run itself failed: {reason}"
    if headline:
        return f"{run.check} is failing: {headline}; {detail}"
    return f"{run.check} is failing: {detail}"


class Alerting:
    """Turns recorded runs into incidents and notifications."""

    def __init__(
        self,
        config: Config,
        store: Store,
        outbox: Outbox,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.runs = store.runs
        self.incidents = store.incidents
        self.outbox = outbox
        self.clock = clock
        self.on_enqueue = on_enqueue  # wakes the outbox worker: alerts leave at once
        self.lock = threading.Lock()  # runs of different checks finish concurrently
        self.pending: set[str] = set()  # checks to evaluate again once the database answers
        self.deferring = False  # an outage is logged when it starts and when it ends, no more

    def on_run(self, run: Run) -> None:
        """Evaluate a recorded run; never raises (a failure is logged and retried later)."""
        if run.check not in self.config.checks:
            return
        with self.lock:  # ``pending`` too: ``tick`` empties it from another thread
            try:
                self._evaluate(run.check, facts_of(run))
            except StoreError as exc:
                self.pending.add(run.check)
                self._deferred(exc)

    def send(self, notification: Notification, channels: list[str]) -> None:
        """Queue a notification that is not about an incident (overdue, onwatch itself)."""
        try:
            self.outbox.enqueue(notification, channels)
        except StoreError as exc:
            log.warning("notification not queued: %s: %s", notification.summary, exc)
            return
        if self.on_enqueue is not None:
            self.on_enqueue()

    def tick(self) -> None:
        """Send what time alone decides: held openings after a silence, and reminders."""
        with self.lock:
            try:
                for check in sorted(self.pending):
                    self._reevaluate(check)
                    # Only once evaluated: a check that failed again is retried at the next tick.
                    self.pending.discard(check)
                self._timed()
            except StoreError as exc:
                self._deferred(exc)
                return
            if self.deferring:
                self.deferring = False
                log.info("database answers again; alerting caught up")

    def _deferred(self, exc: StoreError) -> None:
        if not self.deferring:
            self.deferring = True
            log.warning("alerting deferred until the database answers: %s", exc)

    def _reevaluate(self, check: str) -> None:
        for latest in self.runs.list_runs(check, limit=1, monitoring_only=True):
            full = self.runs.get_run(latest.id)
            if full is not None:
                self._evaluate(check, facts_of(full))

    def _evaluate(self, check: str, facts: RunFacts) -> None:
        policy = policy_of(self.config, check)
        incident = self.incidents.open_incident(check)
        needed = max(policy.alert_after, policy.recover_after) + STOPPED_SLACK
        recent = self.runs.recent_facts(check, needed)
        if not recent or recent[0].id != facts.id:
            return  # an older run recorded late: the newest one decides
        recent[0] = facts
        transition = on_run(check, policy, incident, recent)
        if transition is None:
            return
        now = self.clock()
        current = transition.incident
        if transition.change is Change.OPENED:
            current = self.incidents.save(current)
            if self._silence(check, now) is None:
                current = self._notify(current, Event.INCIDENT_OPENED, now)
            else:
                log.info("incident opened while silenced", extra={"fields": {"check": check}})
        elif transition.change is Change.RESOLVED:
            current = self.incidents.save(current)
            # An incident nobody was told about (held by a silence) ends quietly.
            if current.notified_at is not None:
                self._notify(current, Event.INCIDENT_RESOLVED, now)
        else:
            self.incidents.save(current)

    def _timed(self) -> None:
        now = self.clock()
        windows = None
        for incident in self.incidents.open_incidents():
            if incident.check not in self.config.checks:
                continue
            if windows is None:
                windows = self._windows(now)
            if silenced(incident.check, windows) is not None:
                continue
            if incident.notified_at is None:
                self._notify(self._with_tests(incident), Event.INCIDENT_OPENED, now)
            elif reminder_due(policy_of(self.config, incident.check), incident, now):
                self._notify(self._with_tests(incident), Event.INCIDENT_REMINDER, now)

    def _with_tests(self, incident: Incident) -> Incident:
        run = self.runs.get_run(incident.last_run_id)
        if run is None:
            return incident
        facts = facts_of(run)
        return replace(incident, failing_tests=facts.failing_tests)

    def _windows(self, now: datetime) -> list[Window]:
        return [*active_windows(self.config.silences, now), *self.incidents.active_silences(now)]

    def _silence(self, check: str, now: datetime) -> Window | None:
        return silenced(check, self._windows(now))

    def _notify(self, incident: Incident, event: Event, now: datetime) -> Incident:
        assert incident.id is not None
        if event is Event.INCIDENT_OPENED:
            incident = replace(incident, notified_at=now)
            key = f"incident.{incident.id}.opened"
        elif event is Event.INCIDENT_REMINDER:
            incident = replace(incident, last_reminder_at=now)
            key = f"incident.{incident.id}.reminder.{now.isoformat()}"
        else:
            key = f"incident.{incident.id}.resolved"
        notification = self.notification(incident, event, key)
        channels = self.config.channels_of(incident.check)
        # The outbox row comes first: if onwatch dies now, the notification still goes out.
        self.outbox.enqueue(notification, channels)
        self.incidents.save(incident)
        log.info(
            "notification queued",
            extra={"fields": {"check": incident.check, "event": event.value, "key": key}},
        )
        if self.on_enqueue is not None:
            self.on_enqueue()
        return incident

    def notification(self, incident: Incident, event: Event, key: str) -> Notification:
        """Return the notification of an incident event."""
        base = self.config.settings.base_url.rstrip("/")
        run_id = incident.resolved_run_id or incident.last_run_id
        summary = incident.summary
        if event is Event.INCIDENT_RESOLVED and incident.resolved_at is not None:
            lasted = format_duration((incident.resolved_at - incident.opened_at).total_seconds())
            runs = f"{incident.failing_runs} failing run{'s' * (incident.failing_runs != 1)}"
            summary = f"{incident.check} recovered after {lasted} ({runs})"
        elif event is Event.INCIDENT_REMINDER:
            summary = f"still failing: {summary}"
        return Notification(
            event=event,
            key=key,
            summary=summary,
            check=incident.check,
            category=incident.category,
            failing_tests=incident.failing_tests if event is not Event.INCIDENT_RESOLVED else (),
            run_id=run_id,
            run_url=f"{base}/runs/{run_id}",
            opened_at=incident.opened_at,
            resolved_at=incident.resolved_at,
            failing_runs=incident.failing_runs,
            flaky_runs=incident.flaky_runs,
            incident_id=incident.id,
        )
