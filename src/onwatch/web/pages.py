"""The dashboard's HTML pages: overview, check, test and run, plus login and admin forms.

Pages are rendered on the server with Jinja2 (autoescaped) and inline SVG charts from
``charts.py``; they need no script at all, so the content-security policy forbids every script.
The overview refreshes itself with a meta refresh.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from onwatch.durations import INTERVAL_RANGE, bounded_duration
from onwatch.errors import PageError, TriggerRefused
from onwatch.model import RunStatus, Trigger
from onwatch.state.watches import package_views, release_run
from onwatch.web import charts, views
from onwatch.web.auth import COOKIE, Role
from onwatch.web.redaction import NOTICE, hides, redact
from onwatch.web.site import RATE_WINDOWS, Site

__all__ = ["HEATMAP_RUNS", "HEATMAP_TESTS", "RUNS_PER_PAGE", "build_router", "templates"]

TEMPLATES = Path(__file__).parent / "templates"
HEATMAP_RUNS = 100
HEATMAP_TESTS = 150
RUNS_PER_PAGE = 50
TEST_POINTS = 1000
REFRESH_SECONDS = 30


def templates() -> Jinja2Templates:
    """Return the page templates, autoescaped, with the page helpers as globals."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        ago=views.ago,
        utc=views.utc,
        seconds=charts.fmt_seconds,
        first_line=views.first_line,
        notice=NOTICE,
        rate=_rate,
        q=_path,
        range_keys=list(views.RANGES),
    )
    return Jinja2Templates(env=env)


def _path(text: str) -> str:
    return quote(text, safe="")


def _rate(runs: int, passed: int) -> str:
    return "—" if not runs else f"{100.0 * passed / runs:.1f}%"


def build_router(site: Site, pages: Jinja2Templates) -> APIRouter:
    """Return the router of every page of ``site``."""
    router = APIRouter(include_in_schema=False)

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        token = getattr(request.state, "token", None)
        context.update(
            request=request,
            role=request.state.role,
            is_admin=request.state.role >= Role.ADMIN,
            csrf=site.auth.csrf_for(token),
            now=site.clock(),
            watches_link=bool(site.config.watches),
        )
        return pages.TemplateResponse(request, template, context, status_code=status)

    def span(key: str | None, start: str | None, end: str | None) -> views.TimeRange:
        try:
            return views.time_range(key, start, end, site.clock())
        except ValueError as exc:
            raise PageError(400, str(exc)) from None

    def known(name: str) -> None:
        if not site.has_check(name):
            raise PageError(404, f"no check named {name!r} in {site.config.path.name}")

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        data = site.overview()
        return render(
            request,
            "overview.html",
            data=data,
            windows=[_window_name(w) for w in RATE_WINDOWS],
            refresh=REFRESH_SECONDS,
        )

    @router.get("/checks/{name}", response_class=HTMLResponse)
    def check_page(
        request: Request,
        name: str,
        range: str | None = None,  # noqa: A002 - the query parameter's public name
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        page: int = Query(1, ge=1, le=100_000),
    ) -> HTMLResponse:
        known(name)
        window = span(range, start, end)
        context = _check_context(site, name, window, page, request.state.role)
        return render(request, "check.html", **context)

    @router.get("/checks/{name}/tests/{test:path}", response_class=HTMLResponse)
    def test_page(
        request: Request,
        name: str,
        test: str,
        range: str | None = None,  # noqa: A002
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
    ) -> HTMLResponse:
        known(name)
        window = span(range, start, end)
        context = _test_context(site, name, test, window, request.state.role)
        return render(request, "test.html", **context)

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        found = site.store.runs.get_run(run_id)
        if found is None:
            raise PageError(404, f"no run with id {run_id!r}")
        run, redacted = redact(found, request.state.role, site.is_sensitive(found.check))
        attempts = sorted(run.results, key=lambda r: (r.outcome.is_bad is False, r.nodeid))
        return render(
            request,
            "run.html",
            run=run,
            results=attempts,
            redacted=redacted,
            release=release_run(site.store, found) if found.trigger is Trigger.UPSTREAM else None,
            has_file=lambda sha: site.artifacts.path_of(sha) is not None,
        )

    @router.get("/watches", response_class=HTMLResponse)
    def watches_page(request: Request) -> HTMLResponse:
        checks = {name for watch in site.config.watches.values() for name in watch.checks}
        return render(
            request,
            "watches.html",
            watches=site.config.watches,
            packages=package_views(site.config, site.store, site.state.watches()),
            hidden={c for c in checks if hides(request.state.role, site.is_sensitive(c))},
        )

    @router.get("/artifacts/{sha256}/{name}")
    def artifact(request: Request, sha256: str, name: str) -> Response:
        path = site.artifacts.path_of(sha256)
        # A file of a sensitive check answers as if it did not exist: a 403 would confirm that
        # a sensitive test captured this very file. Admins skip the lookup: they see it all.
        hidden = hides(request.state.role, sensitive=True) and site.sensitive_file(sha256)
        if path is None or hidden:
            raise PageError(404, "no such file: it was never stored, or it was pruned")
        return FileResponse(path, **_artifact_headers(name))

    @router.post("/checks/{name}/run")
    def run_now(request: Request, name: str, csrf: str = Form("")) -> Response:
        admin_form(request, csrf)
        known(name)
        if site.trigger is None:
            return _back(f"/checks/{_path(name)}", "pages-only")
        try:
            site.trigger(name)
        except TriggerRefused as exc:
            raise PageError(exc.status, str(exc)) from None
        return _back(f"/checks/{_path(name)}", "started")

    @router.post("/checks/{name}/silence")
    def silence(
        request: Request,
        name: str,
        csrf: str = Form(""),
        duration: str = Form("1h"),
        reason: str = Form(""),
    ) -> Response:
        admin_form(request, csrf)
        known(name)
        try:
            seconds = bounded_duration(duration, *INTERVAL_RANGE)
        except ValueError as exc:
            raise PageError(400, str(exc)) from None
        site.silence(name, seconds, reason[:500])
        return _back(f"/checks/{_path(name)}", "silenced")

    def admin_form(request: Request, csrf: str) -> None:
        if request.state.role < Role.ADMIN:
            raise PageError(403, "this needs an admin token: log in with one")
        if not site.auth.csrf_ok(getattr(request.state, "token", None), csrf):
            raise PageError(403, "this form has expired: reload the page and try again")

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
        return render(request, "login.html", target=_local(next), error=None)

    @router.post("/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:  # noqa: A002
        if not site.auth.knows(token):
            return render(
                request, "login.html", status=401, target=_local(next), error="unknown token"
            )
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=int(timedelta(days=30).total_seconds()),
        )
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return router


def _artifact_headers(name: str) -> dict[str, Any]:
    """Say how to serve a captured file: screenshots inline, anything else as a download.

    A captured page's HTML or log is the production site's content, not ours: it is never
    rendered on the dashboard's origin, and a sandbox policy forbids it to run anything.
    """
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "artifact"
    headers = {"Content-Security-Policy": "sandbox; default-src 'none'"}
    if safe.lower().endswith(".png"):
        return {"media_type": "image/png", "headers": headers}
    headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    if safe.lower().endswith(".zip"):
        return {"media_type": "application/zip", "headers": headers}
    return {"media_type": "text/plain; charset=utf-8", "headers": headers}


def _local(target: str) -> str:
    # Only same-site paths: a login link must not bounce a token holder to another site.
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _back(path: str, note: str) -> RedirectResponse:
    # A code, never the text: the page renders the text of a known code from its template
    # (notes.html), so a link cannot put words of its own in an official-looking banner.
    return RedirectResponse(f"{path}?note={note}", status_code=303)


def _window_name(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{int(hours)}h" if hours < 48 else f"{int(hours // 24)}d"


def _check_context(
    site: Site, name: str, window: views.TimeRange, page: int, role: Role
) -> dict[str, Any]:
    board = site.dashboard
    sensitive = site.is_sensitive(name)
    width = views.bucket_seconds(window.span)
    # Buckets start on the hour (or 5 minutes): the axis starts with the first one, so the
    # runs of the range's first, partial bucket are drawn too.
    start = window.since.timestamp()
    x_range = (start - start % width, window.until.timestamp())
    if window.span <= views.RAW_SPAN:
        # Pass rates and charts are the monitored system's: runs of upstream releases tested in
        # their own environments are listed below, never counted here.
        in_range = board.runs(
            name, since=window.since, until=window.until, limit=20_000, monitoring_only=True
        )
        hours = views.hours_of_runs(in_range)
    else:
        hours = board.hours(name, window.since, window.until)
    rates = views.pass_rate_points(hours, width)
    pass_chart = charts.timeline(
        [
            charts.Series(
                "pass rate",
                [(x, y) for x, y, _ in rates],
                [
                    f"{views.utc(_at(x))}: {y:.0f}% of {n} runs"
                    for x, y, n in rates
                    if y is not None
                ],
            )
        ],
        label=f"pass rate of {name}",
        x_range=x_range,
        y_range=(0.0, 100.0),
        y_unit="%",
    )
    p50, p95 = views.duration_percentiles(board.durations(name, window.since, window.until), width)
    duration_chart = charts.timeline(
        [charts.Series("p50", p50), charts.Series("p95", p95)],
        label=f"run durations of {name}",
        x_range=x_range,
        y_unit="s",
    )
    columns_runs = board.runs(
        name, since=window.since, until=window.until, limit=HEATMAP_RUNS, monitoring_only=True
    )
    columns_runs.reverse()
    finals = board.final_results([r.id for r in columns_runs])
    tests, cells, hidden = views.heatmap_rows(
        [(run_id, redact(result, role, sensitive)[0]) for run_id, result in finals],
        HEATMAP_TESTS,
    )
    heatmap = charts.heatmap(
        tests,
        [
            charts.Column(r.id, f"{views.utc(r.started_at)} — {r.status.value}", f"/runs/{r.id}")
            for r in columns_runs
        ],
        {
            (test, run_id): charts.Cell(
                result.outcome.value,
                f"{test} — {result.outcome.value} ({charts.fmt_seconds(result.duration)})"
                + (f": {views.first_line(result.message)}" if result.message else ""),
                f"/runs/{_path(run_id)}",
            )
            for (test, run_id), result in cells.items()
        },
        label=f"tests of {name} by run",
        cell=14,
        row_hrefs={t: f"/checks/{_path(name)}/tests/{_path(t)}?{window.query()}" for t in tests},
    )
    offset = (page - 1) * RUNS_PER_PAGE
    listed = [
        redact(row, role, sensitive)[0]
        for row in board.runs(
            name, since=window.since, until=window.until, limit=RUNS_PER_PAGE + 1, offset=offset
        )
    ]
    return {
        "name": name,
        "check": site.config.checks[name],
        "window": window,
        "pass_chart": pass_chart,
        "duration_chart": duration_chart,
        "heatmap": heatmap,
        "heatmap_runs": len(columns_runs),
        "hidden_tests": hidden,
        "runs": listed[:RUNS_PER_PAGE],
        "page": page,
        "has_next": len(listed) > RUNS_PER_PAGE,
        "incidents": site.incidents.incidents(name, limit=20),
        "check_status": next(iter(site.statuses([name])), None),
        "passed": RunStatus.PASSED,
        "redacted": hides(role, sensitive),
    }


def _test_context(
    site: Site, name: str, test: str, window: views.TimeRange, role: Role
) -> dict[str, Any]:
    sensitive = site.is_sensitive(name)
    # Redacted before anything is drawn from them: error groups and step timings come from the
    # messages and properties, so they vanish with them.
    rows = [
        redact(row, role, sensitive)[0]
        for row in site.dashboard.test_results(
            name, test, since=window.since, until=window.until, brief=True, monitoring_only=True
        )
    ]
    shown = list(reversed(rows[:TEST_POINTS]))  # oldest first
    x_range = (window.since.timestamp(), window.until.timestamp())
    history = charts.strip(
        [
            charts.Cell(
                r.result.outcome.value,
                f"{views.utc(r.started_at)} — {r.result.outcome.value}",
                f"/runs/{_path(r.run_id)}",
            )
            for r in shown[-200:]
        ],
        label=f"latest outcomes of {test}",
    )
    durations = charts.bars(
        [
            (
                r.started_at.timestamp(),
                r.result.duration,
                f"{views.utc(r.started_at)}: {charts.fmt_seconds(r.result.duration)}"
                f" ({r.result.outcome.value})",
            )
            for r in shown
        ],
        label=f"durations of {test}",
        x_range=x_range,
        states=[r.result.outcome.value for r in shown],
    )
    steps = views.step_series(shown)
    step_chart = (
        charts.timeline(
            [charts.Series(name, points) for name, points in steps.items()],
            label=f"step timings of {test}",
            x_range=x_range,
            y_unit="s",
        )
        if steps
        else None
    )
    failing = [r for r in rows if r.result.outcome in views.BAD][:50]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.result.outcome.value] = counts.get(r.result.outcome.value, 0) + 1
    return {
        "name": name,
        "test": test,
        "window": window,
        "history": history,
        "durations": durations,
        "step_chart": step_chart,
        "step_names": list(steps),
        "groups": views.group_errors(rows),
        "failing": failing,
        "total": len(rows),
        "counts": counts,
        "truncated": len(rows) > TEST_POINTS,
        "redacted": hides(role, sensitive),
    }


def _at(stamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)
