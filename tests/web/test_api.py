"""The JSON API under /api/v1, asked over HTTP of a seeded site served on 127.0.0.1.

The shared sites (``open_site``, ``closed_site``) are only read, apart from silences of ``idle``
and triggers, which record names only. What needs more (incidents, a silence of every check)
gets a private site of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from onwatch.alerting.rules import Incident
from onwatch.cli.checks import status
from onwatch.model import Run, RunStatus
from web.conftest import (
    ADMIN_TOKEN,
    API_TESTS,
    FLAKY_TEST,
    READ_TOKEN,
    XSS,
    XSS_TEST,
    History,
    Served,
    make_config,
    seed,
)

CHECK_KEYS = {
    "name",
    "last_status",
    "last_run_at",
    "pass_rate_24h",
    "runs_24h",
    "consecutive_failures",
    "next_run_at",
    "incident",
    "silenced_until",
    "overdue",
}


def get(site: Served, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    with site.client(token) as http:
        return http.get(path, params=params or None)


def post(site: Served, path: str, token: str | None = None, **body: Any) -> httpx.Response:
    with site.client(token) as http:
        return http.post(path, json=body if body else None)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def all_runs(history: History) -> list[Run]:
    return sorted([*history.api_runs, *history.web_runs], key=lambda r: r.started_at, reverse=True)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- checks ---------------------------------------------------------------------------------------


def test_it_answers_checks_in_the_shape_of_status_json(
    open_site: Served, site_history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = ok(get(open_site, "/api/v1/checks"))
    status(site_history.config, json_output=True)
    cli = json.loads(capsys.readouterr().out)

    assert answer.keys() == cli.keys() == {"checks", "channels", "spooled", "watches"}
    assert [c["name"] for c in answer["checks"]] == ["api", "web", "idle"]
    assert all(c.keys() == CHECK_KEYS for c in answer["checks"])
    for mine, theirs in zip(answer["checks"], cli["checks"], strict=True):
        # Without a slot to follow, the next run is "now": the two answers were a moment apart.
        gap = stamp(theirs.pop("next_run_at")) - stamp(mine.pop("next_run_at"))
        assert timedelta(0) <= gap < timedelta(seconds=30)
        assert mine == theirs
    assert answer["channels"] == cli["channels"] == []
    assert answer["spooled"] == cli["spooled"] == 0


def test_it_reports_each_checks_status_from_the_seeded_history(
    open_site: Served, site_history: History
) -> None:
    checks = {c["name"]: c for c in ok(get(open_site, "/api/v1/checks"))["checks"]}
    day_ago = datetime.now(UTC) - timedelta(hours=24)
    recent_api = [r for r in site_history.api_runs if r.started_at >= day_ago]
    passed_api = [r for r in recent_api if r.status is RunStatus.PASSED]

    api = checks["api"]
    assert api["last_status"] == "failed"
    assert stamp(api["last_run_at"]) == site_history.api_runs[-1].finished_at
    assert api["consecutive_failures"] == 1
    assert api["runs_24h"] == len(recent_api)
    assert api["pass_rate_24h"] == round(len(passed_api) / len(recent_api), 4)
    assert api["incident"] is None
    assert api["overdue"] is False

    web = checks["web"]
    assert (web["last_status"], web["runs_24h"], web["pass_rate_24h"]) == ("passed", 10, 1.0)
    assert stamp(web["last_run_at"]) == site_history.web_runs[-1].finished_at
    assert web["consecutive_failures"] == 0

    idle = checks["idle"]
    assert idle["last_status"] is idle["last_run_at"] is idle["pass_rate_24h"] is None
    assert (idle["runs_24h"], idle["consecutive_failures"], idle["overdue"]) == (0, 0, False)
    assert idle["next_run_at"] is not None


def test_it_answers_one_check_as_it_appears_in_the_list(open_site: Served) -> None:
    listed = ok(get(open_site, "/api/v1/checks"))["checks"][1]
    one = ok(get(open_site, "/api/v1/checks/web"))
    listed.pop("next_run_at")
    one.pop("next_run_at")
    assert one == listed


# -- runs -----------------------------------------------------------------------------------------


def test_it_pages_through_every_run_exactly_once_newest_first(
    open_site: Served, site_history: History
) -> None:
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = ok(get(open_site, "/api/v1/runs", limit=7, offset=offset))
        assert (page["limit"], page["offset"]) == (7, offset)
        assert len(page["runs"]) <= 7
        seen += [r["id"] for r in page["runs"]]
        offset = page["next_offset"]
        pages += 1
    assert seen == [r.id for r in all_runs(site_history)]
    assert pages == 6  # 40 runs: five full pages and one of five


def test_it_ends_paging_with_a_null_next_offset_exactly_at_the_last_run(open_site: Served) -> None:
    full = ok(get(open_site, "/api/v1/runs", check="web", limit=5, offset=5))
    assert len(full["runs"]) == 5
    assert full["next_offset"] is None
    past = ok(get(open_site, "/api/v1/runs", check="web", limit=5, offset=10))
    assert (past["runs"], past["next_offset"]) == ([], None)


def test_it_summarises_each_run_with_its_outcome_counts(
    open_site: Served, site_history: History
) -> None:
    latest = ok(get(open_site, "/api/v1/runs", check="api", limit=1))["runs"][0]
    run = site_history.api_runs[-1]
    assert latest == {
        "id": run.id,
        "check": "api",
        "status": "failed",
        "trigger": "schedule",
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
        "duration": run.duration,
        "error": None,
        "collected": 5,
        "counts": {"passed": 4, "failed": 1},
        "redacted": False,
    }


def test_it_filters_runs_by_check(open_site: Served, site_history: History) -> None:
    page = ok(get(open_site, "/api/v1/runs", check="web", limit=500))
    assert [r["id"] for r in page["runs"]] == [r.id for r in reversed(site_history.web_runs)]
    assert ok(get(open_site, "/api/v1/runs", check="nosuch"))["runs"] == []


def test_it_filters_runs_by_status(open_site: Served, site_history: History) -> None:
    failed = ok(get(open_site, "/api/v1/runs", status="failed", limit=500))["runs"]
    expected = [r.id for r in all_runs(site_history) if r.status is RunStatus.FAILED]
    assert [r["id"] for r in failed] == expected
    assert len(expected) == 11  # the flaky test's every third run, and the latest run


def test_it_filters_runs_by_a_half_open_time_range(
    open_site: Served, site_history: History
) -> None:
    runs = site_history.api_runs
    since, until = runs[10].started_at, runs[20].started_at
    page = ok(
        get(
            open_site,
            "/api/v1/runs",
            check="api",
            since=since.isoformat(),
            until=until.isoformat(),
            limit=500,
        )
    )
    assert [r["id"] for r in page["runs"]] == [r.id for r in reversed(runs[10:20])]


def test_it_reads_a_range_at_the_edges_of_the_calendar(open_site: Served) -> None:
    page = get(open_site, "/api/v1/runs", since="0001-01-01T00:00:00", until="9999-12-31T23:59:59")
    assert len(ok(page)["runs"]) == 40


def test_it_reads_a_range_given_in_another_time_zone(
    open_site: Served, site_history: History
) -> None:
    since = site_history.api_runs[25].started_at.astimezone(timezone(timedelta(hours=-5)))
    page = ok(get(open_site, "/api/v1/runs", check="api", since=since.isoformat()))
    assert [r["id"] for r in page["runs"]] == [r.id for r in reversed(site_history.api_runs[25:])]


def test_it_answers_a_run_with_every_result_and_its_message(
    open_site: Served, site_history: History
) -> None:
    seeded = site_history.api_runs[27]  # the flaky test failed in it
    run = ok(get(open_site, f"/api/v1/runs/{seeded.id}"))
    assert run["id"] == seeded.id
    assert (run["check"], run["status"], run["host"]) == ("api", "failed", "monitor-1")
    results = {r["nodeid"]: r for r in run["results"]}
    assert set(results) == set(API_TESTS)
    assert results[FLAKY_TEST]["outcome"] == "failed"
    assert results[FLAKY_TEST]["message"] == "AssertionError: expected 200, got 503\nmore"
    assert results[XSS_TEST]["message"] is None
    # The record of `onwatch once --json`, each run and result saying nothing was withheld.
    record = seeded.to_json()
    record["results"] = [{**r, "redacted": False} for r in record["results"]]
    assert run == {**record, "redacted": False}


def test_it_answers_an_xss_message_as_plain_json_text(
    open_site: Served, site_history: History
) -> None:
    run = ok(get(open_site, f"/api/v1/runs/{site_history.api_runs[-1].id}"))
    xss = next(r for r in run["results"] if r["nodeid"] == XSS_TEST)
    assert xss["message"] == f"AssertionError: {XSS} in the page"
    assert xss["output"] == f"captured {XSS}"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/runs/no-such-run", "no-such-run"),
        ("/api/v1/checks/nosuch", "nosuch"),
        ("/api/v1/checks/nosuch/history?test=tests/test_x.py::test_x", "nosuch"),
    ],
)
def test_it_answers_404_naming_an_unknown_run_or_check(
    open_site: Served, path: str, name: str
) -> None:
    problem = ok(get(open_site, path), 404)
    assert problem.keys() == {"detail"}
    assert repr(name) in problem["detail"]


# -- test history ---------------------------------------------------------------------------------


def test_it_answers_a_tests_results_newest_first(open_site: Served, site_history: History) -> None:
    history = ok(get(open_site, "/api/v1/checks/api/history", test=FLAKY_TEST))
    assert (history["check"], history["test"]) == ("api", FLAKY_TEST)
    newest_first = list(reversed(site_history.api_runs))
    assert [p["run_id"] for p in history["results"]] == [r.id for r in newest_first]
    assert [stamp(p["started_at"]) for p in history["results"]] == [
        r.started_at for r in newest_first
    ]
    outcomes = [p["result"]["outcome"] for p in history["results"]]
    assert outcomes == ["failed" if i % 3 == 0 else "passed" for i in range(29, -1, -1)]
    assert all(p["result"]["nodeid"] == FLAKY_TEST for p in history["results"])


def test_it_answers_the_history_of_a_test_whose_id_needs_escaping(open_site: Served) -> None:
    history = ok(get(open_site, "/api/v1/checks/api/history", test=XSS_TEST, limit=2))
    assert history["test"] == XSS_TEST
    first, second = history["results"]
    assert first["result"]["message"] == f"AssertionError: {XSS} in the page"
    assert second["result"]["outcome"] == "passed"


def test_it_answers_an_empty_history_for_a_test_never_run(open_site: Served) -> None:
    history = ok(get(open_site, "/api/v1/checks/idle/history", test="tests/test_idle.py::x"))
    assert history["results"] == []


# -- incidents ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A site of its own, with one resolved and one open incident: free to change."""
    history = seed(
        make_config(tmp_path_factory.mktemp("api-site")), datetime.now(UTC).replace(microsecond=0)
    )
    served = Served(history, listen="127.0.0.1:8787")
    runs = history.api_runs
    incidents = served.store.incidents
    incidents.save(
        Incident(
            check="web",
            opened_at=history.web_runs[2].finished_at,
            opened_run_id=history.web_runs[2].id,
            last_run_id=history.web_runs[3].id,
            failing_runs=2,
            summary="web was down",
            resolved_at=history.web_runs[4].finished_at,
            resolved_run_id=history.web_runs[4].id,
            notified_at=history.web_runs[2].finished_at,
        )
    )
    incidents.save(
        Incident(
            check="api",
            opened_at=runs[-1].finished_at,
            opened_run_id=runs[-1].id,
            last_run_id=runs[-1].id,
            failing_runs=1,
            summary=f"{XSS_TEST} failed",
            category="assertion",
        )
    )
    yield served
    served.close()


def test_it_lists_incidents_newest_first(own_site: Served) -> None:
    incidents = ok(get(own_site, "/api/v1/incidents"))["incidents"]
    assert [(i["check"], i["open"]) for i in incidents] == [("api", True), ("web", False)]
    api, web = incidents
    assert api["summary"] == f"{XSS_TEST} failed"
    assert (api["resolved_at"], api["resolved_run_id"], api["notified"]) == (None, None, False)
    assert (web["failing_runs"], web["notified"]) == (2, True)
    assert web["resolved_at"] is not None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "open"}, ["api"]),
        ({"state": "resolved"}, ["web"]),
        ({"check": "web"}, ["web"]),
        ({"check": "idle"}, []),
        ({"limit": 1}, ["api"]),
    ],
)
def test_it_filters_incidents(
    own_site: Served, params: dict[str, Any], expected: list[str]
) -> None:
    incidents = ok(get(own_site, "/api/v1/incidents", **params))["incidents"]
    assert [i["check"] for i in incidents] == expected


def test_it_shows_the_open_incident_in_the_checks_status(own_site: Served) -> None:
    api = ok(get(own_site, "/api/v1/checks/api"))
    assert api["incident"]["summary"] == f"{XSS_TEST} failed"
    assert api["incident"]["failing_runs"] == 1
    assert ok(get(own_site, "/api/v1/checks/web"))["incident"] is None


# -- triggers and silences ------------------------------------------------------------------------


def test_it_starts_a_run_for_an_admin_token(open_site: Served) -> None:
    before = len(open_site.triggered)
    answer = ok(post(open_site, "/api/v1/checks/web/run", ADMIN_TOKEN), 202)
    assert answer == {"check": "web", "message": "a run of web has started"}
    assert open_site.triggered[before:] == ["web"]


@pytest.mark.parametrize("token", [READ_TOKEN, None], ids=["read", "anonymous"])
def test_it_refuses_to_start_a_run_without_an_admin_token(
    open_site: Served, token: str | None
) -> None:
    before = list(open_site.triggered)
    assert ok(post(open_site, "/api/v1/checks/web/run", token), 403)["detail"]
    assert open_site.triggered == before


def test_it_asks_an_anonymous_caller_of_a_closed_site_for_a_token(closed_site: Served) -> None:
    before = list(closed_site.triggered)
    response = post(closed_site, "/api/v1/checks/web/run")
    assert ok(response, 401)["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert closed_site.triggered == before


def test_it_answers_404_when_asked_to_run_an_unknown_check(open_site: Served) -> None:
    before = list(open_site.triggered)
    assert "nosuch" in ok(post(open_site, "/api/v1/checks/nosuch/run", ADMIN_TOKEN), 404)["detail"]
    assert open_site.triggered == before


def test_it_adds_a_silence_that_the_checks_status_shows(open_site: Served) -> None:
    asked = datetime.now(UTC)
    silence = ok(
        post(open_site, "/api/v1/silences", ADMIN_TOKEN, check="idle", duration="3h", reason="x"),
        201,
    )
    assert silence["check"] == "idle"
    ends = stamp(silence["ends_at"])
    assert asked + timedelta(hours=3) <= ends < asked + timedelta(hours=3, minutes=1)
    idle = ok(get(open_site, "/api/v1/checks/idle"))
    assert stamp(idle["silenced_until"]) >= ends  # the longest silence of idle
    assert ok(get(open_site, "/api/v1/checks/web"))["silenced_until"] is None


def test_it_silences_every_check_when_no_check_is_named(own_site: Served) -> None:
    silence = ok(post(own_site, "/api/v1/silences", ADMIN_TOKEN, duration="10m"), 201)
    assert silence["check"] is None
    checks = ok(get(own_site, "/api/v1/checks"))["checks"]
    assert all(c["silenced_until"] == silence["ends_at"] for c in checks)


@pytest.mark.parametrize(
    ("site", "token", "code"),
    [("open", READ_TOKEN, 403), ("open", None, 403), ("closed", None, 401)],
)
def test_it_adds_silences_for_admin_tokens_only(
    request: pytest.FixtureRequest, site: str, token: str | None, code: int
) -> None:
    served: Served = request.getfixturevalue(f"{site}_site")
    response = post(served, "/api/v1/silences", token, check="idle", duration="1h")
    assert ok(response, code)["detail"]


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"check": "nosuch"}, 404, "nosuch"),
        ({"check": "idle", "duration": "soon"}, 400, "soon"),
        ({"check": "idle", "duration": "0s"}, 400, "zero"),
        ({"check": "idle", "duration": "400d"}, 400, "a year"),
    ],
)
def test_it_refuses_a_silence_it_cannot_add(
    open_site: Served, body: dict[str, Any], code: int, words: str
) -> None:
    assert words in ok(post(open_site, "/api/v1/silences", ADMIN_TOKEN, **body), code)["detail"]


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "bad"),
    [
        ("/api/v1/runs", {"since": "yesterday"}, "since"),
        ("/api/v1/runs", {"until": "2024-13-01T00:00:00Z"}, "until"),
        ("/api/v1/runs", {"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ("/api/v1/runs", {"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ("/api/v1/runs", {"limit": 0}, "limit"),
        ("/api/v1/runs", {"limit": 501}, "limit"),
        ("/api/v1/runs", {"offset": -1}, "offset"),
        ("/api/v1/runs", {"limit": "ten"}, "limit"),
        ("/api/v1/runs", {"status": "bogus"}, "status"),
        ("/api/v1/runs", {"check": "x" * 201}, "check"),
        ("/api/v1/checks/api/history", {}, "test"),
        ("/api/v1/checks/api/history", {"test": FLAKY_TEST, "limit": 0}, "limit"),
        ("/api/v1/checks/api/history", {"test": FLAKY_TEST, "since": "not-a-date"}, "since"),
        (
            "/api/v1/checks/api/history",
            {"test": FLAKY_TEST, "until": "9999-12-31T23:59-01:00"},
            "until",
        ),
        ("/api/v1/incidents", {"state": "closed"}, "state"),
        ("/api/v1/incidents", {"limit": 0}, "limit"),
    ],
)
def test_it_answers_422_naming_the_bad_query_parameter(
    open_site: Served, path: str, params: dict[str, Any], bad: str
) -> None:
    problem = ok(get(open_site, path, **params), 422)
    assert [tuple(error["loc"]) for error in problem["detail"]] == [("query", bad)]


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        json.dumps({"check": "idle", "duration": "1h" * 26}).encode(),
        json.dumps({"check": "idle", "reason": "r" * 501}).encode(),
        json.dumps({"check": ["idle"]}).encode(),
    ],
    ids=["not-json", "long-duration", "long-reason", "check-not-a-string"],
)
def test_it_answers_422_for_a_silence_body_it_cannot_read(
    open_site: Served, content: bytes
) -> None:
    with open_site.client(ADMIN_TOKEN) as http:
        response = http.post(
            "/api/v1/silences", content=content, headers={"content-type": "application/json"}
        )
    assert ok(response, 422)["detail"]
