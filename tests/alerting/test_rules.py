"""The incident state machine: pure, on made-up run histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from onwatch.alerting.rules import Change, Incident, Policy, RunFacts, on_run, reminder_due
from onwatch.channels.notification import FailingTest
from onwatch.model import RunStatus

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def history(*statuses: str, flaky: int = 0) -> list[RunFacts]:
    """Return runs one minute apart, given oldest first, as the rules want them: newest first."""
    runs = [
        RunFacts(
            id=f"run-{i}",
            status=RunStatus(status),
            started_at=T0 + timedelta(minutes=i),
            finished_at=T0 + timedelta(minutes=i, seconds=5),
            flaky=flaky if status == "passed" else 0,
            summary="" if status == "passed" else f"c is failing ({i})",
        )
        for i, status in enumerate(statuses)
    ]
    return runs[::-1]


def test_one_failing_run_does_not_open_an_incident_by_default() -> None:
    assert on_run("c", Policy(), None, history("passed", "failed")) is None


def test_alert_after_failing_runs_in_a_row_opens_an_incident_from_the_first_of_them() -> None:
    transition = on_run("c", Policy(alert_after=2), None, history("passed", "failed", "error"))
    assert transition is not None and transition.change is Change.OPENED
    incident = transition.incident
    assert incident.opened_at == T0 + timedelta(minutes=1)
    assert (incident.opened_run_id, incident.last_run_id) == ("run-1", "run-2")
    assert incident.failing_runs == 2 and incident.summary == "c is failing (2)"


def test_an_incident_carries_the_category_and_failing_tests_of_its_latest_run() -> None:
    runs = history("passed", "failed", "failed")
    failing = (FailingTest("t::a", "HTTP 401"),)
    runs[0] = replace(runs[0], category="credentials", failing_tests=failing)
    transition = on_run("c", Policy(alert_after=2), None, runs)
    assert transition is not None and transition.change is Change.OPENED
    assert transition.incident.category == "credentials"
    assert transition.incident.failing_tests == failing


def test_timeouts_and_run_errors_count_as_failing() -> None:
    transition = on_run("c", Policy(alert_after=3), None, history("timeout", "error", "failed"))
    assert transition is not None and transition.change is Change.OPENED


def open_incident() -> Incident:
    transition = on_run("c", Policy(alert_after=1), None, history("failed"))
    assert transition is not None
    return replace(transition.incident, id=7, notified_at=T0)


def test_further_failing_runs_update_the_incident_quietly() -> None:
    transition = on_run("c", Policy(), open_incident(), history("failed", "failed"))
    assert transition is not None and transition.change is Change.UPDATED
    assert transition.incident.failing_runs == 2 and transition.incident.last_run_id == "run-1"


def test_the_same_run_seen_twice_changes_nothing() -> None:
    assert on_run("c", Policy(), open_incident(), history("failed")) is None


def test_recover_after_passing_runs_resolve_it() -> None:
    policy = Policy(recover_after=2)
    first = on_run("c", policy, open_incident(), history("failed", "passed"))
    assert first is not None and first.change is Change.UPDATED
    second = on_run("c", policy, first.incident, history("failed", "passed", "passed"))
    assert second is not None and second.change is Change.RESOLVED
    assert second.incident.resolved_at == T0 + timedelta(minutes=2, seconds=5)
    assert second.incident.resolved_run_id == "run-2"


def test_a_flaky_pass_does_not_open_an_incident_but_is_counted_on_an_open_one() -> None:
    assert on_run("c", Policy(alert_after=1), None, history("passed", flaky=1)) is None
    transition = on_run(
        "c", Policy(recover_after=2), open_incident(), history("failed", "passed", flaky=1)
    )
    assert transition is not None and transition.incident.flaky_runs == 1


def test_reminders_come_every_remind_every_while_open_and_notified() -> None:
    incident = open_incident()
    policy = Policy(remind_every=3600)
    assert not reminder_due(policy, incident, T0 + timedelta(minutes=59))
    assert reminder_due(policy, incident, T0 + timedelta(minutes=60))
    reminded = replace(incident, last_reminder_at=T0 + timedelta(minutes=60))
    assert not reminder_due(policy, reminded, T0 + timedelta(minutes=90))
    assert not reminder_due(Policy(), incident, T0 + timedelta(days=1))
    assert not reminder_due(policy, replace(incident, notified_at=None), T0 + timedelta(days=1))


def stopped(runs: list[RunFacts], *indexes: int) -> list[RunFacts]:
    """Mark the runs at ``indexes`` (oldest first) as cut short by a stop of onwatch."""
    oldest_first = runs[::-1]
    for index in indexes:
        oldest_first[index] = replace(oldest_first[index], stopped=True)
    return oldest_first[::-1]


def test_runs_cut_short_by_stops_never_open_an_incident() -> None:
    runs = stopped(history("passed", "error", "error", "error"), 1, 2, 3)
    assert on_run("c", Policy(alert_after=1), None, runs) is None


def test_a_stop_between_two_failing_runs_does_not_break_the_streak() -> None:
    runs = stopped(history("passed", "failed", "error", "failed"), 2)
    transition = on_run("c", Policy(alert_after=2), None, runs)
    assert transition is not None and transition.change is Change.OPENED
    assert (transition.incident.opened_run_id, transition.incident.failing_runs) == ("run-1", 2)


def test_a_run_cut_short_by_a_stop_neither_resolves_nor_counts_on_an_incident() -> None:
    incident = open_incident()
    runs = stopped(history("failed", "error"), 1)
    assert on_run("c", Policy(alert_after=1), incident, runs) is None
