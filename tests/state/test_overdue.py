"""Overdue is one fact: the rule every surface and the watchdog share."""

from __future__ import annotations

from datetime import timedelta

from onwatch.config import Config
from onwatch.state.overdue import is_overdue, overdue_deadline
from onwatch.state.service import StateService
from onwatch.store.sql import SqlStore
from records import T0, make_run


def test_a_check_that_never_ran_is_late_against_its_registration(config: Config) -> None:
    web = config.checks["web"]  # every 5m, grace = timeout 1m + 1m
    deadline = overdue_deadline(web, None, T0)
    assert deadline == T0 + timedelta(minutes=7)
    assert not is_overdue(web, None, T0, T0 + timedelta(minutes=7))
    assert is_overdue(web, None, T0, T0 + timedelta(minutes=7, seconds=1))


def test_the_latest_completed_run_is_the_reference_once_there_is_one(config: Config) -> None:
    web = config.checks["web"]
    finished = T0 + timedelta(hours=2)
    assert overdue_deadline(web, finished, T0) == finished + timedelta(minutes=7)


def test_no_run_promised_and_disabled_checks_are_never_overdue(config: Config) -> None:
    far = T0 + timedelta(days=30)
    assert not is_overdue(config.checks["web"], None, None, far)  # never scheduled, never run
    assert not is_overdue(config.checks["idle"], None, T0, far)
    assert not is_overdue(config.checks["idle"], T0, T0, far)


def test_status_shows_a_registered_check_without_runs_overdue_after_its_first_deadline(
    config: Config, store: SqlStore
) -> None:
    store.runs.upsert_check("web", config.checks["web"].digest(), config.checks["web"].schedule)
    store.runs.save_run(make_run(check="api"))
    [registered] = [store.runs.history(["web"], T0)["web"].registered_at]
    assert registered is not None

    def overdue_at(moment: timedelta) -> dict[str, bool]:
        service = StateService(config, store, clock=lambda: registered + moment)
        return {status.name: status.overdue for status in service.statuses()}

    assert overdue_at(timedelta(minutes=6))["web"] is False
    assert overdue_at(timedelta(minutes=8))["web"] is True
