"""The present state every surface shows: check statuses, incidents, channels, watches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from onwatch.config import Config
from onwatch.model import Incident, Outcome, RunStatus, TestResult
from onwatch.state.service import StateService, incident_brief, incident_json
from onwatch.store import PollRecord
from onwatch.store.spool import Spool
from onwatch.store.sql import SqlStore
from records import T0, make_run
from state.conftest import NOW

OPENED = T0 + timedelta(minutes=10)


def failing_api(store: SqlStore) -> Incident:
    """Store three api runs (a pass, then two failures) and the incident they opened."""
    store.runs.save_run(make_run(check="api"))
    for minute in (10, 20):
        store.runs.save_run(make_run(check="api", minute=minute, status=RunStatus.FAILED))
    opened = Incident("api", OPENED, "run-1", "run-2", 2, "api is failing")
    return store.incidents.save(opened)


def test_each_check_shows_its_latest_run_pass_rate_incident_silence_and_schedule(
    config: Config, store: SqlStore
) -> None:
    incident = failing_api(store)
    store.runs.save_run(make_run(check="web"))
    store.incidents.add_silence("api", NOW - timedelta(minutes=5), NOW + timedelta(minutes=30), "")

    api, web, idle = StateService(config, store, clock=lambda: NOW).statuses()

    assert (api.name, api.last_status, api.consecutive_failures) == ("api", RunStatus.FAILED, 2)
    assert api.last_run_at == T0 + timedelta(minutes=20, seconds=1)
    assert (api.runs_24h, api.pass_rate_24h) == (3, 1 / 3)
    assert api.incident == incident_brief(incident)
    assert api.incident is not None and api.incident["id"] == incident.id
    assert api.silenced_until == NOW + timedelta(minutes=30)  # a silence added at run time
    assert api.next_run_at == NOW  # run by hand only: its schedule starts now
    assert not api.overdue  # due by 12:20:01 + 1h + grace
    assert (web.last_status, web.pass_rate_24h, web.incident) == (RunStatus.PASSED, 1.0, None)
    assert web.silenced_until == datetime(2025, 3, 1, 14, tzinfo=UTC)  # the [[silences]] window
    assert web.overdue  # every 5m: due by 12:07:01 at the latest
    assert (idle.last_status, idle.last_run_at, idle.next_run_at) == (None, None, None)
    assert not idle.overdue  # disabled checks are never late


def test_the_named_checks_alone_are_read(config: Config, store: SqlStore) -> None:
    failing_api(store)
    [web] = StateService(config, store, clock=lambda: NOW).statuses(["web"])
    assert (web.name, web.last_status, web.runs_24h) == ("web", None, 0)


def test_the_summary_is_the_documented_status_json(config: Config, store: SqlStore) -> None:
    incident = failing_api(store)
    store.outbox.update_channel("hook", ok=False, error="HTTP 500", at=NOW)
    upstream = store.upstream
    upstream.record_poll(PollRecord("stack", "requests", NOW - timedelta(minutes=10), ok=True))
    upstream.record_poll(
        PollRecord("stack", "requests", NOW, ok=False, kind="http", error="HTTP 503")
    )
    Spool(config.state_dir / "spool").put(make_run(check="web"))

    summary = StateService(config, store, clock=lambda: NOW).summary()

    payload = summary.to_json()
    assert list(payload) == ["checks", "channels", "spooled", "watches"]
    assert payload["checks"] == [status.to_json() for status in summary.checks]
    assert payload["checks"][0]["incident"] == {
        "id": incident.id,
        "opened_at": "2025-03-01T12:10:00+00:00",
        "failing_runs": 2,
        "summary": "api is failing",
        "notified": False,
    }
    assert payload["channels"] == [
        {
            "name": "hook",
            "failing": True,
            "consecutive_failures": 1,
            "failing_since": "2025-03-01T13:00:00+00:00",
            "last_error": "HTTP 500",
            "last_attempt_at": "2025-03-01T13:00:00+00:00",
            "last_success_at": None,
        }
    ]
    assert payload["spooled"] == 1
    assert payload["watches"] == [
        {
            "watch": "stack",
            "package": "requests",
            "version": None,
            "last_poll_at": "2025-03-01T13:00:00+00:00",
            "last_ok_at": "2025-03-01T12:50:00+00:00",
            "failures": 1,
            "last_error": "HTTP 503",
            "state": "polls-failing",
            "reason": "HTTP 503",
            "baseline": None,
        },
        {
            "watch": "stack",
            "package": "django",
            "version": None,
            "last_poll_at": None,
            "last_ok_at": None,
            "failures": 0,
            "last_error": None,
            "state": "ok",
            "reason": None,
            "baseline": None,
        },
    ]
    json.dumps(payload)  # JSON-ready as it is


def test_the_latest_run_comes_with_its_results(config: Config, store: SqlStore) -> None:
    passed = TestResult("tests/test_api.py::test_ok", Outcome.PASSED, "call", 0.25)
    store.runs.save_run(make_run(check="api"))
    newest = make_run(check="api", minute=5, results=(passed,))
    store.runs.save_run(newest)
    state = StateService(config, store, clock=lambda: NOW)

    found = state.latest_run("api")

    assert found is not None and found.id == newest.id
    assert [r.nodeid for r in found.results] == ["tests/test_api.py::test_ok"]
    assert state.latest_run("web") is None


def test_an_incident_has_the_documented_api_shape() -> None:
    resolved = Incident(
        "api",
        OPENED,
        "run-1",
        "run-3",
        2,
        "api is failing",
        flaky_runs=1,
        category="assertion",
        id=7,
        resolved_at=NOW,
        resolved_run_id="run-4",
        notified_at=OPENED,
    )
    assert incident_json(resolved) == {
        "id": 7,
        "check": "api",
        "opened_at": "2025-03-01T12:10:00+00:00",
        "resolved_at": "2025-03-01T13:00:00+00:00",
        "open": False,
        "failing_runs": 2,
        "flaky_runs": 1,
        "category": "assertion",
        "summary": "api is failing",
        "opened_run_id": "run-1",
        "last_run_id": "run-3",
        "resolved_run_id": "run-4",
        "notified": True,
    }
    assert incident_brief(None) is None
