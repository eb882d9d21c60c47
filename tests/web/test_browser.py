"""The dashboard in a real headless Chromium: what a user sees, clicks, and must never see run.

The site and its seeded history come from ``conftest.py``; one browser serves the session and
each test gets a fresh context. ``Watch`` (``tests/browser.py``) collects console errors,
policy violations, failed requests and dialogs. The XSS tests turn the content-security policy
off in their context, so they prove the escaping itself and not only the policy behind it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, delete

from browser import Watch
from onwatch.model import Run, RunStatus
from onwatch.store.schema import silences

from .conftest import ADMIN_TOKEN, FLAKY_TEST, READ_TOKEN, XSS, XSS_TEST, History, Served

pytestmark = pytest.mark.e2e

API_TESTS = 5
SPANS = {"24h": timedelta(hours=24), "30d": timedelta(days=30)}


def page_of_test(check: str, nodeid: str, query: str = "") -> str:
    """Return the path of a test's page."""
    return f"/checks/{check}/tests/{quote(nodeid, safe='')}" + (f"?{query}" if query else "")


def in_range(runs: list[Run], since: datetime, until: datetime) -> list[Run]:
    return [r for r in runs if since <= r.started_at < until]


def points(page: Page, chart: str) -> list[tuple[str, str]]:
    """Return (classes, hover title) of every data point of the chart ``chart`` selects."""
    found: list[tuple[str, str]] = page.locator(f"{chart} .point").evaluate_all(
        "els => els.map(e => [e.getAttribute('class'),"
        " (e.querySelector(':scope > title') || {}).textContent || ''])"
    )
    return [(cls, title) for cls, title in found]


def outcome_of(classes: str) -> str:
    """Return the outcome a point's colour class shows (``o-failed`` -> ``failed``)."""
    return next(c[2:] for c in classes.split() if c.startswith("o-"))


def script_elements(page: Page) -> int:
    count: int = page.evaluate("document.querySelectorAll('script').length")
    return count


def login(page: Page, site: Served, token: str, path: str = "/") -> None:
    """Open ``path`` on the closed site and log in with ``token`` on the form it sends to."""
    page.goto(site.url + path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("token").fill(token)
    page.get_by_role("button", name="log in").click()
    expect(page).to_have_url(site.url + path)


@pytest.fixture
def watch(page: Page) -> Watch:
    return Watch.attach(page)


@pytest.fixture
def unguarded(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    """A page whose context ignores the content-security policy, and its watch."""
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(5_000)
    page = context.new_page()
    try:
        yield page, Watch.attach(page)
    finally:
        context.close()


# --- every page -------------------------------------------------------------------------------

PAGES = {
    "overview": "/",
    "check": "/checks/api",
    "check-30d": "/checks/api?range=30d",
    "check-never-run": "/checks/idle",
    "flaky-test": page_of_test("api", FLAKY_TEST, "range=30d"),
    "xss-test": page_of_test("api", XSS_TEST),
    "latest-run": "/runs/{latest}",
    "login": "/login",
}


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_each_page_renders_without_console_errors_failed_requests_or_policy_violations(
    page: Page,
    watch: Watch,
    open_site: Served,
    site_history: History,
    artifacts_dir: Path,
    request: pytest.FixtureRequest,
    path: str,
) -> None:
    response = page.goto(open_site.url + path.format(latest=site_history.api_runs[-1].id))
    assert response is not None and response.status == 200
    expect(page.locator("main h1, main table").first).to_be_visible()
    page.screenshot(
        path=artifacts_dir / (re.sub(r"[^\w.-]+", "_", request.node.name) + ".png"),
        full_page=True,
    )
    assert watch.problems() == []
    assert script_elements(page) == 0


def test_the_watch_reports_policy_violations_and_dialogs(
    page: Page, watch: Watch, open_site: Served
) -> None:
    # Proves the test above can fail: the same checks on pages that break the rules.
    page.route(
        "**/selftest/*",
        lambda route: route.fulfill(
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'none'"}
            if "csp" in route.request.url
            else {},
            body='<p style="color: red">styled</p><script>alert("hi")</script>',
        ),
    )
    page.goto(open_site.url + "/selftest/csp")
    assert any("style-src" in v for v in watch.violations())
    assert any("Content Security Policy" in c for c in watch.console)
    page.goto(open_site.url + "/selftest/open")
    assert watch.dialogs == ["dialog alert: hi"]


# --- charts hold one point per seeded run -----------------------------------------------------


@pytest.mark.parametrize("check", ["api", "web"])
def test_overview_charts_have_one_point_per_run_titled_with_its_status_and_duration(
    page: Page, open_site: Served, site_history: History, check: str
) -> None:
    runs = site_history.api_runs if check == "api" else site_history.web_runs
    page.goto(open_site.url + "/")
    row = f'tr.check-row[data-check="{check}"]'
    cells = points(page, f"{row} svg.chart-strip")
    assert len(cells) == len(runs) == {"api": 30, "web": 10}[check]
    assert [outcome_of(cls) for cls, _ in cells] == [r.status.value for r in runs]
    for (cls, title), run in zip(cells, runs, strict=True):
        assert title.startswith(f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC — {outcome_of(cls)}, ")
    links = page.locator(f"{row} svg.chart-strip a").evaluate_all(
        "els => els.map(a => a.getAttribute('href'))"
    )
    assert links == [f"/runs/{r.id}" for r in runs]
    dots = points(page, f"{row} svg.chart-sparkline")
    assert len(dots) == len(runs)
    for (_, title), run in zip(dots, runs, strict=True):
        pattern = rf"{run.started_at:%Y-%m-%d %H:%M:%S} UTC: [\d.]+ s, {run.status.value}"
        assert re.fullmatch(pattern, title), title


def test_check_heatmap_over_30d_has_a_cell_per_test_and_run_titled_with_its_outcome(
    page: Page, open_site: Served, site_history: History
) -> None:
    page.goto(open_site.url + "/checks/api?range=30d")
    cells = points(page, "svg.chart-heatmap")
    assert len(cells) == len(site_history.api_runs) * API_TESTS == 150
    assert page.locator("svg.chart-heatmap rect.col").count() == 30
    assert page.locator("svg.chart-heatmap text.row-label").count() == API_TESTS
    shown: Counter[tuple[str, str]] = Counter()
    for cls, title in cells:
        found = re.fullmatch(r"(.+) — (\w+) \(.*", title)  # "TEST — OUTCOME (0.1 s): message"
        assert found and found[2] == outcome_of(cls), (cls, title)
        shown[found[1], found[2]] += 1
    seeded = Counter(
        (r.nodeid, r.outcome.value) for run in site_history.api_runs for r in run.results
    )
    assert shown == seeded


@pytest.mark.parametrize("key", ["24h", "30d"])
def test_timelines_have_a_point_per_hour_with_runs(
    page: Page, open_site: Served, site_history: History, key: str
) -> None:
    runs = in_range(site_history.api_runs, site_history.now - SPANS[key], site_history.now)
    # One run an hour: each hour's pass rate is that run's, and p50 = p95 = its duration.
    rates = [
        f"{r.started_at:%Y-%m-%d %H}:00:00 UTC: {100 if r.status is RunStatus.PASSED else 0}%"
        " of 1 runs"
        for r in runs
    ]
    page.goto(open_site.url + f"/checks/api?range={key}")
    shown = points(page, 'svg.chart-timeline[aria-label="pass rate of api"]')
    assert [title for _, title in shown] == rates
    assert len(rates) == {"24h": 24, "30d": 30}[key]
    durations = points(page, 'svg.chart-timeline[aria-label="run durations of api"]')
    assert len(durations) == 2 * len(runs)


@pytest.mark.parametrize("key", ["24h", "30d"])
def test_flaky_test_page_has_one_duration_bar_per_run_in_range(
    page: Page, open_site: Served, site_history: History, key: str
) -> None:
    runs = in_range(site_history.api_runs, site_history.now - SPANS[key], site_history.now)
    page.goto(open_site.url + page_of_test("api", FLAKY_TEST, f"range={key}"))
    bars = points(page, "svg.chart-bars")
    assert len(bars) == len(runs)
    for cls, title in bars:
        assert title.endswith(f"({outcome_of(cls)})"), title
    failures = sum(1 for cls, _ in bars if outcome_of(cls) == "failed")
    assert failures == sum(1 for r in runs if site_history.api_runs.index(r) % 3 == 0)
    expect(page.locator("tr.error-group")).to_have_count(1)
    expect(page.locator("tr.error-group td").first).to_have_text(str(failures))


def test_runs_table_over_30d_lists_all_30_runs_on_one_page(page: Page, open_site: Served) -> None:
    page.goto(open_site.url + "/checks/api?range=30d")
    expect(page.locator("tr.run-row")).to_have_count(30)
    expect(page.locator("a[rel=next]")).to_have_count(0)


# --- a test name that is markup ---------------------------------------------------------------


def test_xss_test_name_is_literal_text_on_the_run_page(
    unguarded: tuple[Page, Watch], open_site: Served, site_history: History
) -> None:
    page, watch = unguarded
    page.goto(open_site.url + f"/runs/{site_history.api_runs[-1].id}")
    row = page.locator('tr.result-row[data-outcome="failed"]', has_text="alert(1)")
    expect(row.get_by_role("link")).to_have_text(XSS_TEST)
    expect(row.locator(".message")).to_have_text(f"AssertionError: {XSS} in the page")
    row.locator("details.traceback summary").click()
    expect(row.locator("details.traceback pre")).to_contain_text(f"  {XSS}\n")
    row.locator("details.output summary").click()
    expect(row.locator("details.output pre")).to_have_text(f"captured {XSS}")
    assert script_elements(page) == 0
    assert watch.dialogs == []


def test_xss_test_name_is_literal_text_on_the_test_page(
    unguarded: tuple[Page, Watch], open_site: Served
) -> None:
    page, watch = unguarded
    page.goto(open_site.url + page_of_test("api", XSS_TEST))
    expect(page.locator("h1.test-name")).to_have_text(XSS_TEST)
    expect(page).to_have_title(f"{XSS_TEST} · onwatch")
    expect(page.locator("svg.chart-bars").first).to_have_attribute(
        "aria-label", f"durations of {XSS_TEST}"
    )
    expect(page.locator("tr.error-group code")).to_have_text(f"AssertionError: {XSS} in the page")
    assert script_elements(page) == 0
    assert watch.dialogs == []


def test_xss_test_name_is_literal_text_in_heatmap_labels_and_titles(
    unguarded: tuple[Page, Watch], open_site: Served
) -> None:
    page, watch = unguarded
    page.goto(open_site.url + "/checks/api?range=30d")
    label = page.locator("svg.chart-heatmap text.row-label", has_text="alert(1)")
    expect(label.locator("title")).to_have_text(XSS_TEST)
    shown = label.evaluate(
        "e => [...e.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.data)"
        ".join('')"
    )
    assert shown.endswith(f"::test_{XSS}")  # shortened at its start, never in the markup
    titles = [title for _, title in points(page, "svg.chart-heatmap") if XSS in title]
    assert len(titles) == 30
    assert titles[-1] == f"{XSS_TEST} — failed (390 ms): AssertionError: {XSS} in the page"
    assert script_elements(page) == 0
    assert watch.dialogs == []


# --- navigating by clicking charts and ranges -------------------------------------------------


def test_clicking_a_strip_cell_on_the_overview_opens_that_run(
    page: Page, open_site: Served, site_history: History
) -> None:
    page.goto(open_site.url + "/")
    page.locator('tr.check-row[data-check="api"] svg.chart-strip a').nth(3).click()
    run = site_history.api_runs[3]
    expect(page).to_have_url(f"{open_site.url}/runs/{run.id}")
    expect(page.locator("dl.facts code")).to_have_text(run.id)
    expect(page.locator("h1 .tag")).to_have_text("failed")


def test_clicking_a_heatmap_row_label_opens_that_tests_page_in_the_same_range(
    page: Page, open_site: Served
) -> None:
    page.goto(open_site.url + "/checks/api?range=30d")
    page.locator(
        "svg.chart-heatmap a", has=page.locator("text.row-label", has_text="flaky")
    ).click()
    expect(page.locator("h1.test-name")).to_have_text(FLAKY_TEST)
    expect(page).to_have_url(open_site.url + page_of_test("api", FLAKY_TEST, "range=30d"))
    expect(page.locator(".ranges .on")).to_have_text(["30d"])


def test_choosing_7d_marks_it_as_the_active_range(page: Page, open_site: Served) -> None:
    page.goto(open_site.url + "/checks/api")
    expect(page.locator(".ranges .on")).to_have_text(["24h"])
    page.locator(".ranges").get_by_role("link", name="7d", exact=True).click()
    expect(page).to_have_url(open_site.url + "/checks/api?range=7d")
    expect(page.locator(".ranges .on")).to_have_text(["7d"])


def test_a_custom_range_is_kept_after_submitting_it_and_following_a_row_label(
    page: Page, open_site: Served, site_history: History
) -> None:
    start = (site_history.now - timedelta(hours=10)).replace(second=0)
    end = site_history.now.replace(second=0)
    runs = in_range(site_history.api_runs, start, end)
    page.goto(open_site.url + "/checks/api")
    ranges = page.locator(".ranges")
    ranges.get_by_label("from").fill(f"{start:%Y-%m-%dT%H:%M}")
    ranges.get_by_label("to").fill(f"{end:%Y-%m-%dT%H:%M}")
    ranges.get_by_role("button", name="custom").click()
    expect(page).to_have_url(re.compile(r"/checks/api\?from=[^&]+&to="))
    expect_custom_range(page, start, end)
    expect(page.locator("tr.run-row")).to_have_count(len(runs))
    assert len(points(page, "svg.chart-heatmap")) == len(runs) * API_TESTS
    page.locator(
        "svg.chart-heatmap a", has=page.locator("text.row-label", has_text="flaky")
    ).click()
    expect(page.locator("h1.test-name")).to_have_text(FLAKY_TEST)
    expect_custom_range(page, start, end)
    assert len(points(page, "svg.chart-bars")) == len(runs)


def expect_custom_range(page: Page, start: datetime, end: datetime) -> None:
    ranges = page.locator(".ranges")
    expect(ranges.locator(".on")).to_have_text(["custom"])
    expect(ranges.get_by_label("from")).to_have_value(f"{start:%Y-%m-%dT%H:%M}")
    expect(ranges.get_by_label("to")).to_have_value(f"{end:%Y-%m-%dT%H:%M}")


# --- the overview -----------------------------------------------------------------------------


def test_overview_refreshes_itself(page: Page, open_site: Served) -> None:
    page.goto(open_site.url + "/")
    refresh = page.locator('head meta[http-equiv="refresh"]')
    expect(refresh).to_have_count(1)
    assert int(refresh.get_attribute("content") or "0") > 0


def test_overview_counts_agree_with_the_rows(page: Page, open_site: Served) -> None:
    # Counted from the rows, not fixed: another test may silence a check for a while.
    page.goto(open_site.url + "/")
    rows = page.locator("tr.check-row")
    expect(rows).to_have_count(3)
    states = dict(
        zip(
            rows.evaluate_all("els => els.map(e => e.dataset.check)"),
            rows.evaluate_all("els => els.map(e => e.dataset.state)"),
            strict=True,
        )
    )
    assert states == {"api": "failed", "web": "passed", "idle": "none"}
    shown = {
        what: int(page.locator(f"#count-{what} b").inner_text())
        for what in ("passing", "failing", "overdue", "silenced")
    }
    assert shown == {
        "passing": 1,
        "failing": 1,
        "overdue": rows.filter(has=page.locator(".tag", has_text="overdue")).count(),
        "silenced": rows.filter(has=page.locator(".tag", has_text="silenced")).count(),
    }


# --- a site that needs a token ----------------------------------------------------------------


def test_closed_site_sends_a_browser_to_the_login_form(page: Page, closed_site: Served) -> None:
    page.goto(closed_site.url + "/")
    expect(page).to_have_url(closed_site.url + "/login?next=%2F")
    expect(page.get_by_label("token")).to_be_visible()


def test_read_token_shows_the_overview_but_no_run_now_button(
    page: Page, closed_site: Served
) -> None:
    login(page, closed_site, READ_TOKEN)
    expect(page.locator("tr.check-row")).to_have_count(3)
    expect(page.locator("header .who")).to_contain_text("read-only")
    page.goto(closed_site.url + "/checks/api")
    expect(page.locator("h1")).to_contain_text("api")
    expect(page.locator("#run-now")).to_have_count(0)
    expect(page.locator("#silence")).to_have_count(0)


def test_admin_runs_a_check_now_and_returns_to_its_page_with_a_note(
    page: Page, closed_site: Served
) -> None:
    login(page, closed_site, ADMIN_TOKEN, "/checks/api")
    before = closed_site.triggered.count("api")
    page.locator("#run-now").click()
    expect(page.locator(".note")).to_contain_text("has started")
    expect(page).to_have_url(re.compile(re.escape(closed_site.url + "/checks/api?note=")))
    assert closed_site.triggered.count("api") == before + 1


def test_admin_silences_a_check_and_its_pages_say_until_when(
    page: Page, closed_site: Served
) -> None:
    login(page, closed_site, ADMIN_TOKEN, "/checks/web")
    try:
        page.get_by_label("reason").fill("browser test")
        page.locator("#silence").click()
        note = page.locator(".note")
        expect(note).to_contain_text("silenced until")
        until = datetime.strptime(note.inner_text(), "silenced until %Y-%m-%d %H:%M:%S UTC")
        in_an_hour = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
        assert abs(until - in_an_hour) < timedelta(minutes=1)  # the form's default, 1h
        expect(page.locator("p.meta .tag", has_text="silenced until")).to_be_visible()
        page.goto(closed_site.url + "/")
        web = page.locator('tr.check-row[data-check="web"]')
        expect(web.locator(".tag", has_text="silenced")).to_have_attribute(
            "title", re.compile("^until ")
        )
    finally:
        # The seeded database is shared by the session: leave `web` unsilenced again.
        engine = create_engine(closed_site.store.url)
        try:
            with engine.begin() as conn:
                conn.execute(delete(silences).where(silences.c.check == "web"))
        finally:
            engine.dispose()
