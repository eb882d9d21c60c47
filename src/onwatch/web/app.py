"""The FastAPI app of ``onwatch run``: ``/healthz`` and ``/metrics``, built per call, no globals.

``/healthz`` answers 200 only while the scheduler loop keeps cycling and the database answers;
otherwise 503 with every reason, so a liveness probe or an uptime checker restarts or pages.
``/metrics`` is the Prometheus text format of ``onwatch.metrics``. Both read memory only, apart
from the database probe, whose answer is cached briefly so frequent probes stay cheap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from onwatch.health import Health
from onwatch.metrics import build_registry

__all__ = ["DB_CACHE_SECONDS", "create_app"]

log = logging.getLogger("onwatch.web")
DB_CACHE_SECONDS = 2.0


def create_app(
    health: Health,
    *,
    db_ok: Callable[[], bool],
    tick_limit: float,
    checks: Sequence[str] | None = None,
    db_cache_seconds: float = DB_CACHE_SECONDS,
) -> FastAPI:
    """Build the app serving ``health``; ``checks`` defaults to those ``health`` was made with."""
    registry = build_registry(health, health.checks if checks is None else checks)
    database = CachedProbe(db_ok, db_cache_seconds)
    # The interactive docs load their scripts from a CDN; onwatch must work offline.
    app = FastAPI(title="onwatch", docs_url=None, redoc_url=None)
    app.state.health = health
    app.state.registry = registry

    # Plain `def` endpoints run in the thread pool: a slow database probe must not block the
    # event loop, and with it /metrics.
    @app.api_route("/healthz", methods=["GET", "HEAD"])
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
        body: dict[str, object] = {
            "status": "unhealthy" if problems else "ok",
            "last_tick_age": round(age, 3),
            "database": "ok" if db else "unreachable",
        }
        if problems:
            body["problems"] = problems
        return JSONResponse(
            body, status_code=503 if problems else 200, headers={"Cache-Control": "no-store"}
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


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
