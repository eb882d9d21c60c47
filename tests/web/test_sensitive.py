"""A sensitive check keeps its texts and files from callers below admin, on pages and in the API.

One site is served on loopback, on SQLite and then on PostgreSQL, so anonymous callers read as
a read token does. Two checks have the same history: ``vault`` is sensitive, ``shop`` is not.
Every text and file their failures leave behind carries a marker, and each test looks for the
markers in what a reader and an admin get over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from onwatch.artifacts import ArtifactStore
from onwatch.config import Config, load_config
from onwatch.model import Artifact, Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.store import open_store
from onwatch.web.auth import hash_token
from onwatch.web.redaction import NOTICE
from pgserver import fresh_database
from suites import make_project
from web.conftest import ADMIN_TOKEN, READ_TOKEN, History, Served

if TYPE_CHECKING:
    from playwright.sync_api import Page

JOURNEY = "tests/test_account.py::test_transfer_journey"
LOGIN = "tests/test_account.py::test_login"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 48
CHECKS = ("vault", "shop")
# Anonymous callers on loopback and read tokens are both readers; both must see the same.
READERS = {"anonymous on loopback": None, "read token": READ_TOKEN}
# The PostgreSQL variants start a server: end to end.
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)]
HIDDEN_KEYS = ("message", "traceback", "output", "properties", "artifacts")
SHOWN_KEYS = ("nodeid", "outcome", "phase", "duration", "attempt", "final", "exception", "category")


def marker(check: str, what: str) -> str:
    """Return the text planted in ``check``'s ``what``, found nowhere else."""
    return f"{check}-{what}-planted"


def markers(check: str) -> list[str]:
    return [marker(check, w) for w in ("message", "traceback", "output", "property", "run-error")]


@dataclass
class Installation:
    """A served site, where it keeps its files and database, and what was seeded into it."""

    served: Served
    config: Config
    root: Path
    seeded: dict[str, Any]

    def store_run(self, check: str, started: datetime, content: bytes) -> str:
        """Store a failing run of ``check`` with one captured file; return the file's digest."""
        shot = self.root / f"{uuid.uuid4()}.png"
        shot.write_bytes(content)
        sha, size = ArtifactStore(self.config.artifacts_dir).put(shot)
        store = open_store(self.config.database_url)
        store.runs.save_run(_run(check, started, sha, size, fail=True))
        store.close()
        return sha


def build_site(root: Path, database: str | None) -> Installation:
    """Serve ``vault`` (sensitive) and ``shop``, each with a passing and a failing run."""
    (root / "tests").mkdir()
    (root / "tests" / "test_account.py").write_text("")
    settings: dict[str, Any] = {
        "read_tokens": [hash_token(READ_TOKEN)],
        "admin_tokens": [hash_token(ADMIN_TOKEN)],
    }
    if database is not None:
        settings["database"] = database
    config = load_config(
        make_project(
            root,
            {
                "vault": {"tests": ["tests/test_account.py"], "every": "1h", "sensitive": True},
                "shop": {"tests": ["tests/test_account.py"], "every": "1h"},
            },
            settings=settings,
        )
    )
    files = ArtifactStore(config.artifacts_dir)
    now = datetime.now(UTC).replace(microsecond=0)
    store = open_store(config.database_url)
    store.ensure_schema()
    seeded: dict[str, Any] = {}
    for check in CHECKS:
        shot = root / f"{check}.png"
        shot.write_bytes(PNG + check.encode())  # one file per check: no file is shared
        sha, size = files.put(shot)
        passing = _run(check, now - timedelta(minutes=50), sha, size, fail=False)
        failing = _run(check, now - timedelta(minutes=20), sha, size, fail=True)
        store.runs.save_run(passing)
        store.runs.save_run(failing)
        seeded[check] = {"sha": sha, "passing": passing, "failing": failing}
    store.close()
    served = Served(History(config, now, [], []), listen="127.0.0.1:8787")
    return Installation(served, config, root, seeded)


def database(request: pytest.FixtureRequest) -> str | None:
    """Return the database a parametrized fixture asks for: None for SQLite, else PostgreSQL."""
    if request.param == "sqlite":
        return None
    return fresh_database(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=DATABASES)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, dict[str, Any]]]:
    """The site shared by the tests that only read it."""
    site = build_site(tmp_path_factory.mktemp("sensitive"), database(request))
    yield site.served, site.seeded
    site.served.close()


@pytest.fixture(params=DATABASES)
def own_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    """A site of the test's own, for tests that store more runs while it serves."""
    site = build_site(tmp_path, database(request))
    yield site
    site.served.close()


def _run(check: str, started: datetime, sha: str, size: int, *, fail: bool) -> Run:
    steps = (
        ("step", {"name": marker(check, "step"), "seconds": 0.4, "ok": True}),
        ("account", marker(check, "property")),
    )
    journey = TestResult(
        nodeid=JOURNEY,
        outcome=Outcome.FAILED if fail else Outcome.PASSED,
        phase="call",
        duration=1.5,
        exception="AssertionError" if fail else None,
        message=f"AssertionError: {marker(check, 'message')}\nsecond line" if fail else None,
        traceback=f"Traceback\n  {marker(check, 'traceback')}" if fail else None,
        output=f"captured {marker(check, 'output')}" if fail else None,
        properties=steps,
        category="product" if fail else None,
        artifacts=(Artifact("screenshot", "screenshot.png", size, sha),) if fail else (),
    )
    login = TestResult(nodeid=LOGIN, outcome=Outcome.PASSED, phase="call", duration=0.2)
    return Run(
        id=str(uuid.uuid4()),
        check=check,
        status=RunStatus.ERROR if fail else RunStatus.PASSED,
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        collected=2,
        results=(journey, login),
        error=f"teardown crashed: {marker(check, 'run-error')}" if fail else None,
        trigger=Trigger.SCHEDULE,
        host="monitor-1",
        version="0.1.0",
        config_digest="d",
    )


def get(site: Served, path: str, token: str | None, **params: Any) -> httpx.Response:
    with site.client(token) as http:
        response = http.get(path, params=params or None)
    assert response.status_code == 200, response.text
    return response


def page_of_test(check: str) -> str:
    return f"/checks/{check}/tests/{quote(JOURNEY, safe='')}"


def failing_run(seeded: dict[str, Any], check: str) -> Run:
    run: Run = seeded[check]["failing"]
    return run


# -- the API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_a_reader_gets_a_sensitive_run_without_texts_or_files_and_marked_redacted(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, runs = seeded
    run_id = failing_run(runs, "vault").id
    shown = get(site, f"/api/v1/runs/{run_id}", token)
    full = get(site, f"/api/v1/runs/{run_id}", ADMIN_TOKEN).json()
    body = shown.json()

    assert not any(m in shown.text for m in markers("vault"))
    assert runs["vault"]["sha"] not in shown.text
    assert body["redacted"] is True and body["error"] is None
    assert [r["redacted"] for r in body["results"]] == [True, True]
    journey = body["results"][0]
    assert [journey[k] for k in HIDDEN_KEYS] == [None, None, None, [], []]
    # What stays visible is exactly what an admin sees.
    assert [{k: r[k] for k in SHOWN_KEYS} for r in body["results"]] == [
        {k: r[k] for k in SHOWN_KEYS} for r in full["results"]
    ]
    assert (body["status"], body["counts"], body["collected"]) == (
        full["status"],
        full["counts"],
        full["collected"],
    )
    assert (journey["exception"], journey["category"]) == ("AssertionError", "product")


def test_an_admin_gets_a_sensitive_run_whole(seeded: tuple[Served, dict[str, Any]]) -> None:
    site, runs = seeded
    response = get(site, f"/api/v1/runs/{failing_run(runs, 'vault').id}", ADMIN_TOKEN)
    body = response.json()

    assert all(m in response.text for m in markers("vault"))
    assert body["redacted"] is False
    assert [r["redacted"] for r in body["results"]] == [False, False]
    [artifact] = body["results"][0]["artifacts"]
    assert artifact["url"] == f"/artifacts/{runs['vault']['sha']}/screenshot.png"


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_a_reader_gets_the_history_of_a_sensitive_test_without_texts(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, _ = seeded
    shown = get(site, "/api/v1/checks/vault/history", token, test=JOURNEY)
    full = get(site, "/api/v1/checks/vault/history", ADMIN_TOKEN, test=JOURNEY)

    assert not any(m in shown.text for m in [*markers("vault"), marker("vault", "step")])
    results = [p["result"] for p in shown.json()["results"]]
    assert [(r["outcome"], r["redacted"]) for r in results] == [("failed", True), ("passed", True)]
    assert all(r[k] in (None, []) for r in results for k in HIDDEN_KEYS)
    admin = [p["result"] for p in full.json()["results"]]
    assert [r["redacted"] for r in admin] == [False, False]
    assert admin[0]["message"].startswith(f"AssertionError: {marker('vault', 'message')}")
    assert marker("vault", "step") in full.text


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_the_runs_list_hides_the_errors_of_sensitive_runs_only(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, _ = seeded
    listed = get(site, "/api/v1/runs", token).json()["runs"]
    as_admin = get(site, "/api/v1/runs", ADMIN_TOKEN).json()["runs"]

    def errors(runs: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str | None, bool]]:
        return {(r["check"], r["status"]): (r["error"], r["redacted"]) for r in runs}

    shop_error = f"teardown crashed: {marker('shop', 'run-error')}"
    vault_error = f"teardown crashed: {marker('vault', 'run-error')}"
    assert errors(listed) == {
        ("vault", "error"): (None, True),
        ("vault", "passed"): (None, True),
        ("shop", "error"): (shop_error, False),
        ("shop", "passed"): (None, False),
    }
    assert errors(as_admin) == {
        ("vault", "error"): (vault_error, False),
        ("vault", "passed"): (None, False),
        ("shop", "error"): (shop_error, False),
        ("shop", "passed"): (None, False),
    }


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_a_check_that_is_not_sensitive_answers_a_reader_as_it_answers_an_admin(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, runs = seeded
    for path, params in [
        (f"/api/v1/runs/{failing_run(runs, 'shop').id}", {}),
        ("/api/v1/checks/shop/history", {"test": JOURNEY}),
        ("/api/v1/runs", {"check": "shop"}),
    ]:
        shown = get(site, path, token, **params)
        assert shown.json() == get(site, path, ADMIN_TOKEN, **params).json(), path
    for page in [
        f"/runs/{failing_run(runs, 'shop').id}",
        page_of_test("shop"),
        "/checks/shop",
    ]:
        html = get(site, page, token).text
        assert NOTICE not in html, page
        assert marker("shop", "message") in html, page


# -- the pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_the_run_page_of_a_sensitive_check_says_what_is_hidden_instead_of_showing_it(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, runs = seeded
    html = get(site, f"/runs/{failing_run(runs, 'vault').id}", token).text

    assert NOTICE in html
    assert not any(m in html for m in markers("vault"))
    assert runs["vault"]["sha"] not in html and "screenshot" not in html
    assert '<details class="properties">' not in html
    # Outcomes, exception types and categories stay.
    assert 'data-outcome="failed"' in html and "<b>AssertionError</b>" in html
    assert '<span class="tag">product</span>' in html


def test_an_admin_sees_the_run_page_of_a_sensitive_check_whole(
    seeded: tuple[Served, dict[str, Any]],
) -> None:
    site, runs = seeded
    html = get(site, f"/runs/{failing_run(runs, 'vault').id}", ADMIN_TOKEN).text

    assert NOTICE not in html
    assert all(m in html for m in markers("vault"))
    assert f'src="/artifacts/{runs["vault"]["sha"]}/screenshot.png"' in html


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_the_test_page_of_a_sensitive_check_hides_error_groups_and_step_timings(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, _ = seeded
    html = get(site, page_of_test("vault"), token).text
    admin = get(site, page_of_test("vault"), ADMIN_TOKEN).text

    assert NOTICE in html
    assert not any(m in html for m in [*markers("vault"), marker("vault", "step")])
    assert "<h2>Steps</h2>" not in html
    assert 'class="error-group"><td class="num">1</td>' in html  # counted, not quoted
    assert NOTICE not in admin
    assert "<h2>Steps</h2>" in admin and marker("vault", "step") in admin
    assert f"AssertionError: {marker('vault', 'message')}" in admin


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_the_check_page_of_a_sensitive_check_hides_run_errors_and_messages_in_the_heatmap(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, _ = seeded
    html = get(site, "/checks/vault", token).text
    admin = get(site, "/checks/vault", ADMIN_TOKEN).text

    assert NOTICE in html
    assert not any(m in html for m in markers("vault"))
    assert f"<title>{JOURNEY} — failed (1.5 s)</title>" in html  # the heatmap keeps the outcome
    assert NOTICE not in admin
    assert marker("vault", "run-error") in admin  # the runs table
    assert marker("vault", "message") in admin  # the heatmap's hover title


# -- the files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", READERS.values(), ids=READERS.keys())
def test_a_file_of_a_sensitive_check_is_a_404_below_admin_like_an_unknown_one(
    seeded: tuple[Served, dict[str, Any]], token: str | None
) -> None:
    site, runs = seeded
    with site.client(token) as http:
        hidden = http.get(f"/artifacts/{runs['vault']['sha']}/screenshot.png")
        unknown = http.get(f"/artifacts/{'0' * 64}/screenshot.png")
        shop = http.get(f"/artifacts/{runs['shop']['sha']}/screenshot.png")
    with site.client(ADMIN_TOKEN) as http:
        as_admin = http.get(f"/artifacts/{runs['vault']['sha']}/screenshot.png")

    assert (hidden.status_code, hidden.text) == (unknown.status_code, unknown.text)
    assert hidden.status_code == 404
    assert (shop.status_code, shop.content) == (200, PNG + b"shop")
    assert (as_admin.status_code, as_admin.content) == (200, PNG + b"vault")
    # Who asks decides the answer: no shared cache may pass an admin's copy on.
    assert as_admin.headers["cache-control"] == hidden.headers["cache-control"] == "private"


def status_of(site: Served, sha: str, token: str | None) -> int:
    with site.client(token) as http:
        return http.get(f"/artifacts/{sha}/screenshot.png").status_code


def test_a_file_of_a_sensitive_run_stored_while_serving_is_hidden_at_once(
    own_site: Installation,
) -> None:
    site, now = own_site.served, datetime.now(UTC)
    assert status_of(site, own_site.seeded["shop"]["sha"], None) == 200  # the files are read

    newer = own_site.store_run("vault", now - timedelta(minutes=5), PNG + b"newer")
    shop = own_site.store_run("shop", now - timedelta(minutes=4), PNG + b"shop, newer")
    assert status_of(site, newer, None) == 404
    assert status_of(site, shop, None) == 200
    # A run replayed late from the spool starts before the latest one read: found all the same.
    late = own_site.store_run("vault", now - timedelta(hours=3), PNG + b"late")
    assert status_of(site, late, READ_TOKEN) == 404
    again = own_site.store_run("vault", now - timedelta(minutes=1), PNG + b"after the late one")
    assert status_of(site, again, None) == 404
    assert [status_of(site, sha, ADMIN_TOKEN) for sha in (newer, late, again)] == [200] * 3


def test_a_file_that_a_sensitive_and_an_ordinary_check_both_list_is_hidden(
    own_site: Installation,
) -> None:
    now = datetime.now(UTC)
    shared = own_site.store_run("shop", now - timedelta(minutes=3), PNG + b"shared")
    assert status_of(own_site.served, shared, None) == 200
    own_site.store_run("vault", now - timedelta(minutes=2), PNG + b"shared")

    assert status_of(own_site.served, shared, None) == 404
    assert status_of(own_site.served, shared, ADMIN_TOKEN) == 200


# -- in a browser ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_reader_sees_the_notice_on_the_run_page_in_a_browser(
    seeded: tuple[Served, dict[str, Any]], page: Page
) -> None:
    from playwright.sync_api import expect

    site, runs = seeded
    page.goto(f"{site.url}/runs/{failing_run(runs, 'vault').id}")

    expect(page.get_by_role("note")).to_have_text(NOTICE)
    expect(page.locator("tr.result-row[data-outcome=failed] .redacted")).to_have_text("hidden")
    expect(page.locator("details.traceback, details.output, img.screenshot")).to_have_count(0)
