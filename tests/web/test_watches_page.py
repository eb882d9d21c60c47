"""The Watches page, the run page of an upstream run, and upstream runs kept out of production
figures: pages served for real on 127.0.0.1 over a SQLite file (and the memory store)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onwatch.config import Config, load_config
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.state.health import Health
from onwatch.store import PollRecord, Store, open_store
from onwatch.web.app import create_site_app
from onwatch.web.server import WebServer, serve
from suites import make_project
from web.conftest import Served

LOGIN = "tests/test_lib.py::test_login"
PARSE = "tests/test_lib.py::test_parse"
LEGACY = "tests/test_lib.py::test_legacy"


def _config(root: Path) -> Config:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "test_lib.py").write_text("")
    path = make_project(root, {"lib": {"tests": ["tests/test_lib.py"], "every": "1h"}})
    with path.open("a") as config:
        config.write(
            '\n[watch.deps]\npackages = ["packaging", "jinja2"]\nchecks = ["lib"]\n'
            'index = "http://127.0.0.1:9/simple/"\nevery = "10m"\n'
        )
    return load_config(path)


def _upstream(
    started: datetime, version: str, previous: str | None, failing: tuple[str, ...]
) -> Run:
    results = tuple(
        TestResult(
            nodeid=nodeid,
            outcome=Outcome.FAILED if nodeid in failing else Outcome.PASSED,
            phase="call",
            duration=0.1,
            message=f"AssertionError: {nodeid} broke" if nodeid in failing else None,
        )
        for nodeid in (LOGIN, PARSE, LEGACY)
    )
    return Run(
        id=str(uuid.uuid4()),
        check="lib",
        status=RunStatus.FAILED if failing else RunStatus.PASSED,
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        collected=len(results),
        results=results,
        trigger=Trigger.UPSTREAM,
        trigger_detail={
            "watch": "deps",
            "upstream": {"package": "packaging", "version": version},
            "previous": previous,
            "dependencies": {"packaging": version},
        },
        error="1 of 3 tests failed" if failing else None,
        host="monitor-1",
        version="0.1.0",
        config_digest="d",
    )


@dataclass
class Seeded:
    url: str
    now: datetime
    baseline: Run  # packaging 21.3, test_legacy already failing
    breaking: Run  # packaging 22.0: test_parse newly failing, test_legacy still failing
    watched: Run  # the one production run of lib, passed


def _seed(store: Store, now: datetime) -> Seeded:
    baseline = _upstream(now - timedelta(hours=3), "21.3", None, (LEGACY,))
    breaking = _upstream(now - timedelta(hours=2), "22.0", "21.3", (PARSE, LEGACY))
    watched = Run(
        id=str(uuid.uuid4()),
        check="lib",
        status=RunStatus.PASSED,
        started_at=now - timedelta(minutes=30),
        finished_at=now - timedelta(minutes=30) + timedelta(seconds=1),
        collected=1,
        results=(TestResult(nodeid=LOGIN, outcome=Outcome.PASSED, phase="call", duration=0.1),),
        trigger=Trigger.SCHEDULE,
        host="monitor-1",
        version="0.1.0",
        config_digest="d",
    )
    for run in (baseline, breaking, watched):
        store.runs.save_run(run)
    for package, latest in (("packaging", "22.0"), ("jinja2", "3.1.2")):
        store.upstream.record_poll(
            PollRecord("deps", package, now - timedelta(hours=2), True, latest=latest)
        )
    store.upstream.set_last_version("deps", "packaging", "22.0", now - timedelta(hours=2))
    store.upstream.record_poll(
        PollRecord(
            "deps",
            "jinja2",
            now - timedelta(minutes=5),
            False,
            kind="refused",
            error="the index refused the request: HTTP 403",
        )
    )
    return Seeded("", now, baseline, breaking, watched)


@pytest.fixture(params=["sqlite", "memory"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    config = _config(tmp_path)
    url = config.database_url if request.param == "sqlite" else "memory://"
    store = open_store(url)
    store.ensure_schema()
    seeded = _seed(store, datetime.now(UTC).replace(microsecond=0))
    app = create_site_app(
        config, Health(list(config.checks)), store, tick_limit=60.0, listen="127.0.0.1:8787"
    )
    server: WebServer = serve(app, "127.0.0.1:0")
    seeded.url = server.url
    try:
        yield seeded
    finally:
        server.stop()
        store.close()


def _get(site: Seeded, path: str) -> str:
    import httpx

    response = httpx.get(site.url + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def _row(html: str, marker: str) -> str:
    """Return the table row of the page ``html`` that carries ``marker`` in its attributes."""
    found = re.search(rf"<tr [^>]*{re.escape(marker)}[^>]*>(.*?)</tr>", html, re.S)
    assert found, f"no row with {marker}"
    return found.group(0)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_the_check_page_counts_only_production_runs_and_lists_upstream_ones(site: Seeded) -> None:
    html = _get(site, "/checks/lib?range=24h")

    # One production run, passed: two upstream runs that failed change nothing.
    assert re.findall(r"(\d+)% of (\d+) runs", html) == [("100", "1")]
    assert f"/runs/{site.breaking.id}" in html  # still listed, marked
    assert "upstream release" in _text(_row(html, 'class="run-row upstream"'))
    # The heatmap draws production runs only: the new failure of 22.0 is not a cell.
    assert f"{PARSE} — failed" not in html


def test_the_test_page_leaves_out_upstream_results(site: Seeded) -> None:
    parse = _text(_get(site, f"/checks/lib/tests/{PARSE.replace('/', '%2F')}?range=24h"))
    login = _text(_get(site, f"/checks/lib/tests/{LOGIN.replace('/', '%2F')}?range=24h"))

    # test_parse failed twice, in upstream runs only; test_login ran three times, once here.
    assert "0 results in this range" in parse
    assert "no failures in this range" in parse
    assert "1 results in this range · 1 passed" in login


def test_metrics_seeded_from_the_store_follow_production_runs_only(tmp_path: Path) -> None:
    import httpx

    from onwatch.state.feed import HealthFeed
    from onwatch.state.service import StateService

    config = _config(tmp_path)
    store = open_store(config.database_url)
    store.ensure_schema()
    now = datetime.now(UTC).replace(microsecond=0)
    _seed(store, now)
    # An upstream run newer than the production run: it must not become the check's latest.
    store.runs.save_run(_upstream(now - timedelta(minutes=10), "22.0", "21.3", (PARSE,)))
    health = Health(list(config.checks))
    HealthFeed(StateService(config, store), health).seed()
    app = create_site_app(config, health, store, tick_limit=60.0, listen="127.0.0.1:8787")
    server = serve(app, "127.0.0.1:0")
    try:
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
        store.close()

    assert 'onwatch_check_up{check="lib"} 1.0' in metrics
    assert (
        f'onwatch_test_last_outcome{{check="lib",outcome="passed",test="{LOGIN}"}} 1.0' in metrics
    )
    assert "test_parse" not in metrics


def test_the_run_page_of_an_upstream_run_names_the_release_and_splits_its_failures(
    site: Seeded,
) -> None:
    html = _get(site, f"/runs/{site.breaking.id}")
    text = _text(html)

    assert "Upstream release packaging 22.0" in text
    assert "previous 21.3" in text
    assert f"/runs/{site.baseline.id}" in html  # the baseline run, linked
    assert "1 new · 1 pre-existing" in text
    tags = {
        nodeid: re.findall(r'class="tag failure-\w+">([^<]+)<', row)
        for row in html.split('<tr class="result-row"')[1:]
        for nodeid in (PARSE, LEGACY, LOGIN)
        if f">{nodeid}</a>" in row
    }
    assert tags == {PARSE: ["new"], LEGACY: ["pre-existing"], LOGIN: []}


def test_the_run_page_of_a_first_release_calls_its_failures_the_baseline(site: Seeded) -> None:
    text = _text(_get(site, f"/runs/{site.baseline.id}"))

    assert "Upstream release packaging 21.3" in text
    assert "none: the first release handled" in text
    assert "0 new · 1 in the baseline" in text


def test_a_production_run_page_says_nothing_of_releases(site: Seeded) -> None:
    assert "Upstream release" not in _get(site, f"/runs/{site.watched.id}")


def test_the_watches_page_shows_each_package_its_state_and_release_runs(site: Seeded) -> None:
    html = _get(site, "/watches")

    packaging = _text(_row(html, 'data-package="packaging" data-state'))
    jinja = _text(_row(html, 'data-package="jinja2" data-state'))
    assert packaging.startswith("packaging breaks 22.0 22.0: 22.0 22.0")
    assert jinja.startswith("jinja2 polls failing — — 3.1.2")
    assert "1 failed in a row" in jinja
    assert "the index refused the request: HTTP 403" in jinja
    breaking = _text(_row(html, 'data-version="22.0" data-check="lib"'))
    assert breaking.startswith("22.0 21.3 lib failed")
    assert breaking.endswith("1 1 1 of 3 tests failed")
    first = _text(_row(html, 'data-version="21.3" data-check="lib"'))
    assert first.startswith("21.3 first handled lib failed")
    assert "0 1" in first
    assert f"/runs/{site.breaking.id}" in html


def test_every_page_links_to_the_watches_when_there_are_some(site: Seeded) -> None:
    assert '<a href="/watches">watches</a>' in _get(site, "/")


def test_the_api_answers_what_the_watches_page_shows(site: Seeded) -> None:
    import httpx

    found = httpx.get(site.url + "/api/v1/watches", timeout=10).json()

    packaging, jinja = found["packages"]
    assert (packaging["package"], packaging["state"]) == ("packaging", "breaks")
    assert (packaging["baseline_version"], packaging["latest_seen"]) == ("22.0", "22.0")
    assert packaging["latest_tested"] == {"22.0": "22.0"}
    assert [(r["version"], r["new"], r["pre_existing"]) for r in packaging["runs"]] == [
        ("22.0", [PARSE], [LEGACY]),
        ("21.3", [], [LEGACY]),
    ]
    assert packaging["runs"][0]["baseline_run_id"] == site.baseline.id
    assert (jinja["state"], jinja["failures"]) == ("polls failing", 1)
    assert jinja["last_error"] == "the index refused the request: HTTP 403"


GREETER = {
    "1.0": "def greet(name):\n    return 'hello ' + name\n",
    "1.1": "def greet(name, greeting):\n    return greeting + ' ' + name\n",
}
GREETING_SUITE = """\
import view_greeter


def test_greets_by_name():
    assert view_greeter.greet("bob") == "hello bob"


def test_an_old_known_failure():
    assert view_greeter.greet("x") == "bye x"
"""


@pytest.mark.e2e
def test_the_pages_read_what_a_real_watch_recorded(tmp_path: Path) -> None:
    """A real pypiserver, two real `onwatch watch check` calls: 1.0, then 1.1 that breaks."""
    import subprocess
    import sys

    import httpx

    from upstream.indexes import Shelf, start_pypiserver

    shelf = Shelf(tmp_path / "packages")
    shelf.folder.mkdir()
    (tmp_path / "index").mkdir()
    server = start_pypiserver(shelf.folder, tmp_path / "index")
    server.wait_until_ready()
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_greet.py").write_text(GREETING_SUITE)
    path = make_project(root, {"greeting": {"tests": ["tests"], "every": "1h"}})
    path.write_text(
        path.read_text() + '\n[watch.libs]\npackages = ["view-greeter"]\nchecks = ["greeting"]\n'
        f'index = "{server.url}/"\n'
    )
    command = [sys.executable, "-m", "onwatch", "-c", str(path), "watch", "check", "libs"]
    try:
        for version in ("1.0", "1.1"):
            shelf.publish(
                "view-greeter", version, modules={"view_greeter/__init__.py": GREETER[version]}
            )
            subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.stop()
    config = load_config(path)
    store = open_store(config.database_url)
    app = create_site_app(
        config, Health(list(config.checks)), store, tick_limit=60.0, listen="127.0.0.1:8787"
    )
    web = serve(app, "127.0.0.1:0")
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            watches = client.get("/api/v1/watches").json()["packages"]
            page = _text(client.get("/watches").text)
            broke = watches[0]["runs"][0]["run_id"]
            run_page = _text(client.get(f"/runs/{broke}").text)
            check_page = client.get("/checks/greeting").text
    finally:
        web.stop()
        store.close()

    greets, known = (
        "tests/test_greet.py::test_greets_by_name",
        "tests/test_greet.py::test_an_old_known_failure",
    )
    assert [(p["package"], p["state"], p["baseline_version"]) for p in watches] == [
        ("view-greeter", "breaks", "1.1")
    ]
    assert [
        (r["version"], r["previous"], r["new"], r["pre_existing"]) for r in watches[0]["runs"]
    ] == [
        ("1.1", "1.0", [greets], [known]),
        ("1.0", None, [], [known]),
    ]
    assert "view-greeter breaks 1.1 1.1" in page
    assert "Upstream release view-greeter 1.1" in run_page and "previous 1.0" in run_page
    assert "1 new · 1 pre-existing" in run_page
    # Nothing ran in production: the check's page counts no run, and lists the two upstream ones.
    assert re.findall(r"(\d+)% of (\d+) runs", check_page) == []
    assert check_page.count('class="run-row upstream"') == 2


def test_a_sensitive_watched_check_hides_its_run_errors_below_admin(tmp_path: Path) -> None:
    import httpx

    from onwatch.web.auth import hash_token

    config = _config(tmp_path)
    path = config.path
    admin = "admin-" + "a" * 40
    text = path.read_text().replace("[checks.lib]", "[checks.lib]\nsensitive = true")
    text = text.replace("[onwatch]", f'[onwatch]\nadmin_tokens = ["{hash_token(admin)}"]')
    path.write_text(text)
    config = load_config(path)
    store = open_store(config.database_url)
    store.ensure_schema()
    _seed(store, datetime.now(UTC).replace(microsecond=0))
    app = create_site_app(
        config, Health(list(config.checks)), store, tick_limit=60.0, listen="127.0.0.1:8787"
    )
    server = serve(app, "127.0.0.1:0")
    try:
        anonymous = httpx.get(server.url + "/watches", timeout=10).text
        answer = httpx.get(server.url + "/api/v1/watches", timeout=10).json()
        headers = {"Authorization": f"Bearer {admin}"}
        as_admin = httpx.get(server.url + "/watches", headers=headers, timeout=10).text
    finally:
        server.stop()
        store.close()

    assert "1 of 3 tests failed" not in anonymous and "hidden" in anonymous
    assert {(r["error"], r["redacted"]) for r in answer["packages"][0]["runs"]} == {(None, True)}
    assert "1 of 3 tests failed" in as_admin


def test_without_watches_the_page_says_how_to_add_one_and_no_page_links_to_it(
    open_site: Served,
) -> None:
    with open_site.client() as client:
        watches = client.get("/watches")
        overview = client.get("/").text

    assert watches.status_code == 200
    assert "No watches are configured: add a [watch.NAME] table" in _text(watches.text)
    assert 'href="/watches"' not in overview
