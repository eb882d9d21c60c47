"""The FastAPI app of onwatch's web server, built per call, no globals.

With a ``Site`` it serves the dashboard pages (``pages.py``), the JSON API under ``/api/v1``
(``api.py``) and the stylesheet, behind the token policy of ``auth.py``; always ``/healthz`` and
``/metrics``. Every answer carries a content-security policy that allows no script, no inline
style and nothing from another origin: the pages need none, and a name that slipped through
escaping could not run.

``/healthz`` answers 200 only while the scheduler loop keeps cycling, the database answers and
(in ``onwatch run``) runs reach it; otherwise 503 with every reason, so a liveness probe or an
uptime checker restarts or pages.
``/metrics`` is the Prometheus text format of ``onwatch.web.metrics``. Both read memory only, apart
from the database probe, whose answer is cached briefly so frequent probes stay cheap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

from onwatch.errors import PageError
from onwatch.state.health import Health, write_health
from onwatch.web.auth import COOKIE, Role
from onwatch.web.hosts import LOOPBACK_NAMES, HostCheck, HostPolicy
from onwatch.web.metrics import Exposition

if TYPE_CHECKING:
    from onwatch.config import Config
    from onwatch.store import Store
    from onwatch.web.site import Site

__all__ = ["CSP", "DB_CACHE_SECONDS", "create_app", "create_site_app"]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STATIC = Path(__file__).parent / "static"
# Reachable without a token: liveness probes, the login form and what it needs.
OPEN_PATHS = frozenset({"/healthz", "/login"})
OPEN_PREFIX = "/static/"

log = logging.getLogger("onwatch.web")
DB_CACHE_SECONDS = 2.0


def create_app(
    health: Health,
    *,
    db_ok: Callable[[], bool],
    tick_limit: float,
    checks: Sequence[str] | None = None,
    db_cache_seconds: float = DB_CACHE_SECONDS,
    site: Site | None = None,
    test_limit: int = 1000,
    hosts: HostPolicy | None = None,
) -> FastAPI:
    """Build the app serving ``health`` (and ``site``'s pages and API when given).

    Only requests whose ``Host`` ``hosts`` allows are answered (default: loopback names and
    addresses only); any other gets 400 before a route or the token check sees it.
    """
    from onwatch import __version__

    exposition = Exposition(
        health, health.checks if checks is None else checks, test_limit=test_limit
    )
    database = CachedProbe(db_ok, db_cache_seconds)
    # The interactive docs load their scripts from a CDN; onwatch must work offline.
    app = FastAPI(
        title="onwatch",
        version=__version__,
        description="The JSON API of onwatch: checks, runs, results, incidents.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.health = health
    app.state.exposition = exposition
    app.state.site = site
    _secure(app, site)
    # Added last, so it runs first: a forged Host is refused before anything else is done.
    app.add_middleware(HostCheck, policy=hosts or HostPolicy(LOOPBACK_NAMES))
    if site is not None:
        _add_site(app, site)

    # Plain `def` endpoints run in the thread pool: a slow database probe must not block the
    # event loop, and with it /metrics.
    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    def healthz() -> JSONResponse:
        age = health.last_tick_age()
        db = database()
        problems = []
        if age > tick_limit:
            problems.append(
                f"scheduler has not completed a cycle for {age:.1f}s (limit {tick_limit:g}s)"
            )
        if not db:
            problems.append("database unreachable")
        # Where runs are recorded (`onwatch run` only): the last write, not only a read.
        recording = health.recording()
        written = None if recording is None else write_health(recording)
        if written is not None and written.problem is not None:
            problems.append(written.problem)
        body: dict[str, object] = {
            "status": "unhealthy" if problems else "ok",
            "last_tick_age": round(age, 3),
            "database": "unreachable" if not db else written.database if written else "ok",
        }
        if written is not None:
            body["recording"] = dict(written.details)
        if problems:
            body["problems"] = problems
        return JSONResponse(
            body, status_code=503 if problems else 200, headers={"Cache-Control": "no-store"}
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(exposition.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def create_site_app(
    config: Config,
    health: Health,
    store: Store,
    *,
    tick_limit: float,
    trigger: Callable[[str], str] | None = None,
    listen: str | None = None,
) -> FastAPI:
    """Build the whole web app of an installation: pages, API, /healthz and /metrics."""
    from onwatch.web.auth import Auth
    from onwatch.web.site import Site

    settings = config.settings
    address = settings.listen if listen is None else listen
    auth = Auth.build(
        listen=address,
        read_hashes=settings.read_tokens,
        admin_hashes=settings.admin_tokens,
    )
    site = Site(config=config, store=store, auth=auth, trigger=trigger)
    return create_app(
        health,
        db_ok=store.ping,
        tick_limit=tick_limit,
        site=site,
        test_limit=settings.metrics_test_limit,
        # base_url is where people reach the pages: its host is one the server is meant to serve.
        hosts=HostPolicy.build(address, [*settings.allowed_hosts, _host_of_url(settings.base_url)]),
    )


def _host_of_url(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname or "localhost"
    except ValueError:
        return "localhost"


def _add_site(app: FastAPI, site: Site) -> None:
    from onwatch.web import api, pages

    templates = pages.templates()
    app.include_router(api.build_router(site))
    app.include_router(pages.build_router(site, templates))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(PageError)
    def page_error(request: Request, exc: PageError) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"message": exc.message, "status": exc.status, "role": request.state.role},
            status_code=exc.status,
        )


Handler = Callable[[Request], Awaitable[Response]]


def _secure(app: FastAPI, site: Site | None) -> None:
    """Add the token check and the security headers to every answer."""

    @app.middleware("http")
    async def guard(request: Request, call_next: Handler) -> Response:
        token = _token_of(request)
        role = Role.ADMIN if site is None else site.auth.role_of(token)
        request.state.token = token
        request.state.role = role
        path = request.url.path
        is_open = path in OPEN_PATHS or path.startswith(OPEN_PREFIX)
        if role < Role.READ and not is_open:
            response = _refuse(request, path)
        elif request.method == "POST" and path.startswith("/api/") and not _has_bearer(request):
            # Browsers send the login cookie on their own; a script must name its token. So a
            # page on another site cannot make a logged-in browser call the API for it.
            response = JSONResponse(
                {"detail": "this needs an admin token sent as Authorization: Bearer TOKEN"},
                status_code=403,
            )
        else:
            response = await call_next(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if path.startswith(("/api/", "/runs/", "/checks/")) or path in ("/", "/watches"):
            headers.setdefault("Cache-Control", "no-store")
        elif path.startswith("/artifacts/"):
            # A file of a sensitive check is served to admins only: a shared cache must not
            # hand an admin's copy to the next caller. Browsers may keep their own.
            headers.setdefault("Cache-Control", "private")
        return response


def _has_bearer(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def _refuse(request: Request, path: str) -> Response:
    if path.startswith("/api/") or path == "/metrics":
        return JSONResponse(
            {"detail": "a token is needed: send Authorization: Bearer TOKEN"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="onwatch"'},
        )
    target = path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class CachedProbe:
    """Call a yes/no probe at most once per ``ttl`` seconds; concurrent callers share one call."""

    def __init__(
        self,
        probe: Callable[[], bool],
        ttl: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._answer = False
        self._answered_at = -math.inf

    def __call__(self) -> bool:
        """Return the cached answer, asking the probe again once it is ``ttl`` seconds old."""
        with self._lock:
            if self._monotonic() - self._answered_at >= self._ttl:
                try:
                    self._answer = bool(self._probe())
                except Exception:  # noqa: BLE001 - a broken probe means "not healthy", not a 500
                    log.warning("the database probe raised", exc_info=True)
                    self._answer = False
                # Counted from the answer: a probe that took the whole ttl is not re-run at once.
                self._answered_at = self._monotonic()
            return self._answer
