"""The alerting engine on a fake clock: open, hold, remind, resolve, silence, database outages.

Runs are stored in the in-memory store and handed to ``Alerting`` as the daemon does after
recording them; notifications go through the real ``Outbox`` over the same store to a channel
that keeps what it is sent. Time moves only when a test moves it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onwatch.alerting.engine import Alerting
from onwatch.alerting.outbox import Outbox
from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.store import open_store
from onwatch.store.memory import MemoryStore
from recording import Hook, Records, logged
from records import make_config, make_silence
from waiting import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE_URL = "https://onwatch.example.com"
PAY = "tests/test_shop.py::test_pay"
LIST = "tests/test_shop.py::test_list"


def results(status: RunStatus, message: str) -> tuple[TestResult, ...]:
    """Return the results of a run of the shop's two tests that ended with ``status``."""
    listed = TestResult(LIST, Outcome.PASSED, "call", 0.1)
    if status is RunStatus.PASSED:
        return (listed, TestResult(PAY, Outcome.PASSED, "call", 0.1))
    failed = TestResult(PAY, Outcome.FAILED, "call", 0.1, message=f"AssertionError: {message}")
    return (listed, failed)


def flaky_results() -> tuple[TestResult, ...]:
    """Return the results of a run whose test_pay failed, then passed on a retry."""
    failed = TestResult(
        PAY, Outcome.FAILED, "call", 0.1, message="AssertionError: 502", final=False
    )
    retried = TestResult(PAY, Outcome.FLAKY, "call", 0.1, attempt=2)
    return (TestResult(LIST, Outcome.PASSED, "call", 0.1), failed, retried)


@dataclass
class Desk:
    """Alerting, its store and outbox, the channel they send to, and the clock."""

    alerting: Alerting
    store: MemoryStore
    outbox: Outbox
    hook: Hook
    clock: FakeClock
    delivered: int = 0

    def run(
        self,
        status: RunStatus,
        *,
        check: str = "api",
        message: str = "payment provider answered 502",
        outcomes: tuple[TestResult, ...] | None = None,
        trigger: Trigger = Trigger.SCHEDULE,
        store: bool = True,
        evaluate: bool = True,
    ) -> Run:
        """Finish a run of ``check`` now, store it, let alerting see it; a minute passes."""
        started = self.clock()
        run = Run(
            id=str(uuid.uuid4()),
            check=check,
            status=status,
            started_at=started,
            finished_at=started + timedelta(seconds=5),
            collected=2,
            results=outcomes if outcomes is not None else results(status, message),
            trigger=trigger,
        )
        if store:
            self.store.runs.save_run(run)
        if evaluate:
            self.alerting.on_run(run)
        self.clock.advance(60)
        return run

    def fail(self, times: int = 1, **options: Any) -> list[Run]:
        """Finish ``times`` failing runs."""
        return [self.run(RunStatus.FAILED, **options) for _ in range(times)]

    def succeed(self, times: int = 1, **options: Any) -> list[Run]:
        """Finish ``times`` passing runs."""
        return [self.run(RunStatus.PASSED, **options) for _ in range(times)]

    def tick(self, at: datetime | None = None) -> None:
        """Let alerting do what time decides, at ``at`` (now if None)."""
        if at is not None:
            self.clock.now = at
        self.alerting.tick()

    def new(self) -> list[Notification]:
        """Deliver what is due; return what the channel got since the last call."""
        self.outbox.deliver_due()
        with self.hook.lock:
            fresh = self.hook.sent[self.delivered :]
            self.delivered = len(self.hook.sent)
        return fresh


MakeDesk = Callable[..., Desk]


@pytest.fixture
def make_desk() -> Iterator[MakeDesk]:
    """Yield a function that sets up alerting for ``checks`` (default: api, failing after 2)."""
    outboxes: list[Outbox] = []

    def make(
        checks: dict[str, dict[str, Any]] | None = None,
        *,
        silences: Iterable[dict[str, Any]] = (),
        outbox_type: type[Outbox] = Outbox,
    ) -> Desk:
        tables = checks or {"api": {}}
        config = make_config(
            {name: {"tests": ["t"], "every": "1m", **table} for name, table in tables.items()},
            silences=[make_silence(**window) for window in silences],
            notify=["hook"],
            base_url=BASE_URL,
        )
        store = open_store("memory://")
        assert isinstance(store, MemoryStore)
        clock, hook = FakeClock(T0), Hook()
        outbox = outbox_type(store.outbox, {"hook": hook}, clock=clock)
        outboxes.append(outbox)
        return Desk(Alerting(config, store, outbox, clock=clock), store, outbox, hook, clock)

    yield make
    for outbox in outboxes:
        outbox.close()


def events(notifications: list[Notification]) -> list[Event]:
    return [n.event for n in notifications]


@pytest.fixture
def logs() -> Iterator[Records]:
    with logged("onwatch.alerting") as records:
        yield records


# -- opening ---------------------------------------------------------------------------------


def test_alert_after_failing_runs_open_one_incident_with_one_notification(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk()
    [first] = desk.fail()
    assert desk.new() == [] and desk.store.incidents.open_incident("api") is None
    [second] = desk.fail()
    [opened] = desk.new()
    incident = desk.store.incidents.open_incident("api")
    assert incident is not None and incident.notified_at == second.started_at
    assert (opened.event, opened.key, opened.check, opened.incident_id) == (
        Event.INCIDENT_OPENED,
        f"incident.{incident.id}.opened",
        "api",
        incident.id,
    )
    assert opened.summary == "api is failing: 1 of 2 tests failed"
    assert opened.failing_tests == (
        FailingTest(PAY, "AssertionError: payment provider answered 502"),
    )
    assert (opened.failing_runs, opened.opened_at) == (2, first.started_at)
    assert (opened.run_id, opened.run_url) == (second.id, f"{BASE_URL}/runs/{second.id}")
    desk.fail(3)
    assert desk.new() == []  # further failing runs are counted, not announced
    incident = desk.store.incidents.open_incident("api")
    assert incident is not None and incident.failing_runs == 5


def test_the_threshold_is_the_checks_own(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {"alert_after": 3}, "web": {"alert_after": 1}})
    desk.fail(2)
    desk.fail(check="web")
    assert [(n.check, n.failing_runs) for n in desk.new()] == [("web", 1)]
    desk.fail()
    assert [(n.check, n.failing_runs) for n in desk.new()] == [("api", 3)]


def test_each_check_has_one_incident_at_a_time(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {}, "web": {}})
    for _ in range(3):
        desk.fail()
        desk.fail(check="web")
    opened = desk.new()
    assert sorted((n.event, n.check) for n in opened) == [
        (Event.INCIDENT_OPENED, "api"),
        (Event.INCIDENT_OPENED, "web"),
    ]
    assert len({n.key for n in opened}) == 2
    assert sorted(i.check for i in desk.store.incidents.open_incidents()) == ["api", "web"]
    desk.succeed()
    desk.fail(2)
    [resolved, reopened] = desk.new()
    assert (resolved.event, reopened.event) == (Event.INCIDENT_RESOLVED, Event.INCIDENT_OPENED)
    assert reopened.key not in {n.key for n in opened}  # a new incident, announced anew
    # The resolved belongs with its opened (delivered after it), the new incident stands apart.
    api_opened = next(n for n in opened if n.check == "api")
    assert resolved.series == api_opened.series != reopened.series
    assert [i.open for i in desk.store.incidents.incidents("api")] == [True, False]


def test_one_run_seen_by_many_threads_at_once_opens_one_incident(make_desk: MakeDesk) -> None:
    desk = make_desk()
    desk.fail()
    [run] = desk.fail(evaluate=False)
    start = threading.Barrier(8)

    def evaluate() -> None:
        start.wait()
        desk.alerting.on_run(run)

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events(desk.new()) == [Event.INCIDENT_OPENED]
    assert len(desk.store.incidents.incidents("api")) == 1


def test_a_restarted_engine_neither_announces_an_open_incident_again_nor_misses_its_end(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk()
    desk.fail(2)
    assert events(desk.new()) == [Event.INCIDENT_OPENED]
    # onwatch restarts: a new engine, with nothing in memory, over the same database.
    desk.alerting = Alerting(desk.alerting.config, desk.store, desk.outbox, clock=desk.clock)
    desk.fail(2)
    desk.tick()
    assert desk.new() == []
    [incident] = desk.store.incidents.incidents("api")
    assert incident.failing_runs == 4 and incident.notified_at is not None
    desk.succeed()
    [resolved] = desk.new()
    assert (resolved.event, resolved.failing_runs) == (Event.INCIDENT_RESOLVED, 4)


def test_an_older_run_recorded_late_does_not_decide(make_desk: MakeDesk) -> None:
    desk = make_desk()
    desk.fail()
    [late] = desk.fail(evaluate=False)  # spooled, say, and replayed after a newer run
    desk.succeed()
    desk.alerting.on_run(late)
    assert desk.new() == [] and desk.store.incidents.incidents() == []


def test_runs_of_checks_no_longer_configured_are_ignored(make_desk: MakeDesk) -> None:
    desk = make_desk()
    desk.fail(3, check="removed")
    desk.tick()
    assert desk.new() == [] and desk.store.incidents.incidents() == []


# -- resolving -------------------------------------------------------------------------------


def test_recover_after_passing_runs_resolve_the_incident_with_one_notification(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk({"api": {"recover_after": 2}})
    failed = desk.fail(2)
    desk.succeed()
    desk.fail()  # a failure in between: the passing streak starts again
    desk.succeed()
    assert events(desk.new()) == [Event.INCIDENT_OPENED]
    assert desk.store.incidents.open_incident("api") is not None
    [last] = desk.succeed()
    [resolved] = desk.new()
    [incident] = desk.store.incidents.incidents("api")
    assert not incident.open and incident.resolved_run_id == last.id
    assert (resolved.event, resolved.key) == (
        Event.INCIDENT_RESOLVED,
        f"incident.{incident.id}.resolved",
    )
    assert resolved.summary == "api recovered after 5m5s (3 failing runs)"
    assert (resolved.opened_at, resolved.resolved_at) == (failed[0].started_at, last.finished_at)
    assert resolved.failing_tests == () and resolved.run_id == last.id
    desk.succeed(2)
    desk.tick()
    assert desk.new() == []


# -- flaky and upstream runs -----------------------------------------------------------------


def test_a_flaky_run_passes_and_is_counted_on_the_open_incident(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {"recover_after": 2}})
    desk.fail()
    desk.run(RunStatus.PASSED, outcomes=flaky_results())
    desk.fail()
    assert desk.new() == []  # the flaky run broke the failing streak
    desk.fail()
    desk.run(RunStatus.PASSED, outcomes=flaky_results())
    assert events(desk.new()) == [Event.INCIDENT_OPENED]
    desk.succeed()
    [resolved] = desk.new()
    assert (resolved.event, resolved.failing_runs, resolved.flaky_runs) == (
        Event.INCIDENT_RESOLVED,
        2,
        1,
    )


def test_runs_of_upstream_releases_neither_open_nor_resolve_an_incident(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk()
    desk.fail(3, trigger=Trigger.UPSTREAM)
    assert desk.new() == [] and desk.store.incidents.incidents() == []
    desk.fail()
    desk.fail(trigger=Trigger.UPSTREAM)  # does not break the streak of monitoring runs
    desk.fail()
    [opened] = desk.new()
    assert (opened.event, opened.failing_runs) == (Event.INCIDENT_OPENED, 2)
    desk.succeed(trigger=Trigger.UPSTREAM)
    assert desk.new() == [] and desk.store.incidents.open_incident("api") is not None
    desk.succeed()
    assert events(desk.new()) == [Event.INCIDENT_RESOLVED]


# -- reminders -------------------------------------------------------------------------------


def test_an_open_incident_is_reminded_every_remind_every_and_not_before(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk({"api": {"remind_every": "1h"}})
    [_, opening] = desk.fail(2, message="card declined")
    desk.new()
    notified = opening.started_at
    desk.tick(notified + timedelta(minutes=59, seconds=59))
    assert desk.new() == []
    desk.tick(notified + timedelta(hours=1))
    [reminder] = desk.new()
    assert reminder.event is Event.INCIDENT_REMINDER
    assert reminder.summary == "still failing: api is failing: 1 of 2 tests failed"
    assert reminder.failing_tests == (FailingTest(PAY, "AssertionError: card declined"),)
    desk.tick(notified + timedelta(hours=1, minutes=59))
    assert desk.new() == []  # the interval counts from the last reminder
    desk.tick(notified + timedelta(hours=2))
    [again] = desk.new()
    assert again.event is Event.INCIDENT_REMINDER and again.key != reminder.key
    desk.succeed()
    desk.new()
    desk.tick(notified + timedelta(hours=5))
    assert desk.new() == []  # a resolved incident is not reminded


def test_no_reminder_unless_remind_every_is_set(make_desk: MakeDesk) -> None:
    desk = make_desk()
    desk.fail(2)
    desk.new()
    desk.tick(T0 + timedelta(days=2))
    assert desk.new() == []


# -- silences: openings held until the silence ends ------------------------------------------


SILENCED_TEN_MINUTES = {
    "checks": ["api"],
    "start": T0.isoformat(),
    "end": (T0 + timedelta(minutes=10)).isoformat(),
    "reason": "deploying",
}


def test_an_incident_opened_while_silenced_is_held_until_the_silence_ends(
    make_desk: MakeDesk, logs: Records
) -> None:
    desk = make_desk(silences=[SILENCED_TEN_MINUTES])
    desk.fail(2)
    incident = desk.store.incidents.open_incident("api")
    assert incident is not None and incident.notified_at is None  # open, its alert held
    assert "incident opened while silenced" in logs.at(logging.INFO)
    desk.tick(T0 + timedelta(minutes=5))
    desk.fail(message="maintenance page")
    desk.tick(T0 + timedelta(minutes=10) - timedelta(microseconds=1))
    assert desk.new() == []
    desk.tick(T0 + timedelta(minutes=10))
    [opened] = desk.new()
    assert (opened.event, opened.failing_runs, opened.opened_at) == (
        Event.INCIDENT_OPENED,
        3,
        T0,
    )
    assert opened.failing_tests == (FailingTest(PAY, "AssertionError: maintenance page"),)
    desk.tick()
    desk.fail()
    assert desk.new() == []  # announced once


def test_a_silence_added_at_run_time_holds_alerts_too(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {}, "web": {}})
    ends = T0 + timedelta(minutes=10)
    desk.store.incidents.add_silence(None, T0, ends, "deploying everything")
    desk.fail(2)
    desk.fail(2, check="web")
    desk.tick()
    assert desk.new() == []
    desk.tick(ends)
    assert sorted(n.check or "" for n in desk.new()) == ["api", "web"]


def test_a_silence_of_another_check_holds_nothing(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {}, "web": {}}, silences=[{**SILENCED_TEN_MINUTES, "checks": ["web"]}])
    desk.fail(2)
    assert [n.check for n in desk.new()] == ["api"]


def test_an_incident_opened_and_resolved_inside_a_silence_is_never_notified(
    make_desk: MakeDesk,
) -> None:
    desk = make_desk(silences=[SILENCED_TEN_MINUTES])
    desk.fail(2)
    desk.succeed()
    desk.tick(T0 + timedelta(minutes=10))
    assert desk.new() == []
    [incident] = desk.store.incidents.incidents("api")
    assert not incident.open and incident.notified_at is None


def test_no_reminder_goes_out_while_a_silence_holds(make_desk: MakeDesk) -> None:
    desk = make_desk({"api": {"remind_every": "1h"}})
    desk.fail(2)
    desk.new()
    desk.store.incidents.add_silence("api", T0, T0 + timedelta(hours=3), "known outage")
    desk.tick(T0 + timedelta(hours=2))
    assert desk.new() == []
    desk.tick(T0 + timedelta(hours=3))
    assert events(desk.new()) == [Event.INCIDENT_REMINDER]


# -- the database down -----------------------------------------------------------------------


def test_with_the_database_down_alerting_defers_logs_once_and_catches_up_once(
    make_desk: MakeDesk, logs: Records
) -> None:
    desk = make_desk()
    desk.fail()
    desk.store.set_down(True)
    [spooled] = desk.fail(store=False)  # the recorder spools it; alerting cannot read
    for _ in range(3):
        desk.tick()
    assert len(logs.at(logging.WARNING)) == 1  # an outage is one line, not one per tick
    desk.store.set_down(False)
    desk.store.runs.save_run(spooled)  # the spool replayed
    desk.tick()
    [opened] = desk.new()
    assert (opened.event, opened.run_id) == (Event.INCIDENT_OPENED, spooled.id)
    desk.alerting.on_run(spooled)  # seen again: nothing new
    desk.tick()
    assert desk.new() == []
    assert len(logs.at(logging.WARNING)) == 1
    assert "database answers again; alerting caught up" in logs.at(logging.INFO)


def test_a_notification_queued_just_before_the_database_fails_goes_out_once(
    make_desk: MakeDesk,
) -> None:
    stores: list[MemoryStore] = []

    class FailsAfterEnqueue(Outbox):
        """An outbox whose database fails right after the first delivery is stored."""

        def enqueue(self, notification: Notification, channels: Iterable[str]) -> int:
            added = super().enqueue(notification, channels)
            if len(stores) == 1:
                stores.pop().set_down(True)
            return added

    desk = make_desk(outbox_type=FailsAfterEnqueue)
    stores.append(desk.store)
    desk.fail(2)  # the opening is queued; marking the incident notified fails
    desk.store.set_down(False)
    desk.tick()
    desk.tick()
    assert events(desk.new()) == [Event.INCIDENT_OPENED]
    incident = desk.store.incidents.open_incident("api")
    assert incident is not None and incident.notified_at is not None


def test_a_notification_about_onwatch_itself_is_queued_or_logged_when_it_cannot_be(
    make_desk: MakeDesk, logs: Records
) -> None:
    desk = make_desk()
    overdue = Notification(event=Event.CHECK_OVERDUE, key="overdue.api.1", summary="api is late")
    desk.alerting.send(overdue, ["hook"])
    assert [n.key for n in desk.new()] == ["overdue.api.1"]
    desk.store.set_down(True)
    desk.alerting.send(replace(overdue, key="overdue.api.2"), ["hook"])  # no exception
    [warning] = logs.at(logging.WARNING)
    assert warning.startswith("notification not queued: api is late")


def test_runs_cut_short_by_stops_of_onwatch_open_no_incident(make_desk: MakeDesk) -> None:
    desk = make_desk()
    desk.fail()  # one failing run: alert_after is 2
    for _ in range(3):  # three routine restarts, each with a run in flight
        run = Run(
            id=str(uuid.uuid4()),
            check="api",
            status=RunStatus.ERROR,
            started_at=desk.clock(),
            finished_at=desk.clock() + timedelta(seconds=5),
            error="interrupted: onwatch stopped while running t::pay (1 of 2 tests finished)",
            trigger=Trigger.SCHEDULE,
        ).as_stopped()
        desk.store.runs.save_run(run)
        desk.alerting.on_run(run)
        desk.clock.advance(60)
    assert desk.store.incidents.open_incident("api") is None and desk.new() == []
    # The stops neither count nor break the streak: the next failing run is the second.
    desk.fail()
    assert desk.store.incidents.open_incident("api") is not None
