"""/metrics follows the database: a Health seeded, then refreshed, from the stored state."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from onwatch.config import Config
from onwatch.model import Incident, Outcome, Run, RunStatus, TestResult
from onwatch.state.feed import HealthFeed
from onwatch.state.health import Health, PollState
from onwatch.state.service import StateService
from onwatch.store import PollRecord, open_store
from onwatch.store.sql import SqlStore
from records import T0, make_run
from state.conftest import NOW


def result(name: str, outcome: Outcome) -> TestResult:
    return TestResult(f"tests/test_api.py::{name}", outcome, "call", 0.5)


class CountingState(StateService):
    """The real service, counting how often a whole run is read."""

    reads = 0

    def latest_run(self, check: str) -> Run | None:
        self.reads += 1
        return super().latest_run(check)


def feed_of(config: Config, store: SqlStore, *, overdue: bool = False) -> HealthFeed:
    enabled = [name for name, check in config.checks.items() if check.enabled]
    return HealthFeed(
        CountingState(config, store, clock=lambda: NOW), Health(enabled), overdue=overdue
    )


def test_it_seeds_each_check_from_its_latest_stored_run_and_open_incident(
    config: Config, store: SqlStore
) -> None:
    store.runs.save_run(make_run(check="api"))
    failing = make_run(
        check="api",
        minute=20,
        status=RunStatus.FAILED,
        duration=2.5,
        results=(result("test_a", Outcome.FAILED), result("test_b", Outcome.PASSED)),
    )
    store.runs.save_run(failing)
    store.runs.save_run(make_run(check="api", minute=10, status=RunStatus.FAILED))
    store.incidents.save(Incident("api", T0, failing.id, failing.id, 2, "api is failing"))
    store.runs.save_run(make_run(check="web"))
    feed = feed_of(config, store)

    feed.seed()

    checks = feed.health.snapshot().checks
    api = checks["api"]
    assert api.last_run_at == failing.finished_at.timestamp()
    assert (api.last_status, api.consecutive_failures, api.last_duration) == ("failed", 2, 2.5)
    assert api.last_success_at is None  # its latest run did not pass
    assert api.incident_open
    assert {nodeid: test.outcome for nodeid, test in api.tests.items()} == {
        "tests/test_api.py::test_a": "failed",
        "tests/test_api.py::test_b": "passed",
    }
    web = checks["web"]
    assert (web.last_status, web.consecutive_failures, web.incident_open) == ("passed", 0, False)
    assert web.last_success_at == web.last_run_at
    assert not web.overdue  # the watchdog of `onwatch run` judges that
    assert "idle" not in checks  # disabled: no series


def test_where_no_watchdog_runs_it_seeds_whether_a_check_is_overdue(
    config: Config, store: SqlStore
) -> None:
    store.runs.save_run(make_run(check="api"))
    store.runs.save_run(make_run(check="web"))
    feed = feed_of(config, store, overdue=True)

    feed.seed()

    checks = feed.health.snapshot().checks
    assert checks["web"].overdue  # every 5m, last run an hour ago
    assert not checks["api"].overdue  # hourly, grace 2m: due by 13:02:01


def test_a_refresh_shows_what_other_processes_recorded_since(
    config: Config, store: SqlStore
) -> None:
    failing = make_run(
        check="api",
        status=RunStatus.FAILED,
        results=(result("test_a", Outcome.FAILED), result("test_b", Outcome.PASSED)),
    )
    store.runs.save_run(failing)
    incidents = store.incidents
    opened = incidents.save(Incident("api", T0, failing.id, failing.id, 1, "api is failing"))
    feed = feed_of(config, store)
    feed.seed()
    assert feed.health.snapshot().checks["api"].incident_open

    passing = make_run(check="api", minute=30, results=(result("test_c", Outcome.PASSED),))
    store.runs.save_run(passing)
    incidents.save(replace(opened, resolved_at=passing.finished_at, resolved_run_id=passing.id))
    assert feed.refresh()

    api = feed.health.snapshot().checks["api"]
    assert api.last_run_at == passing.finished_at.timestamp()
    assert (api.last_status, api.consecutive_failures, api.incident_open) == ("passed", 0, False)
    assert api.last_success_at == passing.finished_at.timestamp()
    # The whole selection ran: its tests are the check's tests now.
    assert list(api.tests) == ["tests/test_api.py::test_c"]


def test_a_refresh_with_nothing_new_reads_no_run_and_changes_nothing(
    config: Config, store: SqlStore
) -> None:
    store.runs.save_run(make_run(check="api", results=(result("test_a", Outcome.PASSED),)))
    feed = feed_of(config, store)
    feed.seed()
    assert isinstance(feed.state, CountingState) and feed.state.reads == 1
    version = feed.health.version

    assert feed.refresh()

    assert feed.state.reads == 1  # the whole run is read again only once a newer one finished
    assert feed.health.version == version  # so /metrics reuses the text it rendered


def test_it_seeds_the_polls_of_each_watched_package(config: Config, store: SqlStore) -> None:
    upstream = store.upstream
    upstream.record_poll(PollRecord("stack", "requests", NOW - timedelta(minutes=10), ok=True))
    upstream.record_poll(PollRecord("stack", "requests", NOW, ok=False, error="HTTP 503"))
    feed = feed_of(config, store)

    feed.seed()
    polls = feed.health.snapshot().polls
    later = NOW + timedelta(minutes=10)
    upstream.record_poll(PollRecord("stack", "requests", later, ok=True))
    feed.seed()

    ok_at = (NOW - timedelta(minutes=10)).timestamp()
    assert dict(polls) == {("stack", "requests"): PollState(NOW.timestamp(), ok_at, 1)}
    newer = feed.health.snapshot().polls
    assert newer == {("stack", "requests"): PollState(later.timestamp(), later.timestamp(), 0)}


def test_an_unreadable_database_is_logged_once_and_the_health_kept(
    config: Config, store: SqlStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.runs.save_run(make_run(check="api"))
    feed = feed_of(config, store)
    feed.seed()
    before = feed.health.snapshot().checks
    # A directory is no database: every read of it fails.
    unreadable = open_store(f"sqlite:///{tmp_path}")
    try:
        feed.state = StateService(config, unreadable, clock=lambda: NOW)
        with caplog.at_level(logging.WARNING, logger="onwatch.state"):
            assert not feed.refresh()
            assert not feed.refresh()
    finally:
        unreadable.close()

    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "cannot refresh the metrics from the database"
    ]
    assert feed.health.snapshot().checks == before
