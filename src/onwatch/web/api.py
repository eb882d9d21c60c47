"""The JSON API, version 1, under ``/api/v1``; its OpenAPI document is ``/api/v1/openapi.json``.

The response models below are the contract (docs/api.md describes it for people): a field is
added, never renamed or removed, within v1. ``GET /api/v1/checks`` answers the same shape as
``onwatch status --json``. Runs and results of a sensitive check go through ``redaction.py``:
below admin their texts and files are null or empty, and ``redacted`` says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AfterValidator, BaseModel, Field

from onwatch.durations import parse_duration
from onwatch.errors import TriggerRefused
from onwatch.model import RunStatus, as_utc
from onwatch.state.service import incident_json
from onwatch.state.watches import package_json, package_views
from onwatch.web.auth import Role
from onwatch.web.redaction import hides, result_json, run_json, run_row_json
from onwatch.web.site import Site

__all__ = ["PREFIX", "build_router"]

PREFIX = "/api/v1"
MAX_LIMIT = 500
REDACTED = "true when the texts and files of a sensitive check are withheld from this caller"


def _utc(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError("lies outside the years 1 to 9999 once in UTC") from None


# A query's moment, in UTC once validated: 0001-01-01T00:00+14:00 is a 422, not a 500.
Instant = Annotated[datetime, AfterValidator(_utc)]


class Problem(BaseModel):
    """An error answer."""

    detail: str


class IncidentBrief(BaseModel):
    """The open incident of a check, as ``onwatch status --json`` shows it."""

    id: int | None
    opened_at: str
    failing_runs: int
    summary: str
    notified: bool


class CheckOut(BaseModel):
    """One check's status."""

    name: str
    last_status: RunStatus | None
    last_run_at: str | None
    pass_rate_24h: float | None
    runs_24h: int
    consecutive_failures: int
    next_run_at: str | None
    incident: IncidentBrief | None
    silenced_until: str | None
    overdue: bool


class ChannelOut(BaseModel):
    """A notification channel's health."""

    name: str
    failing: bool
    consecutive_failures: int
    failing_since: str | None
    last_error: str | None
    last_attempt_at: str | None
    last_success_at: str | None


class WatchOut(BaseModel):
    """One watched package of a ``[watch.NAME]``: the release last tested, and its polls."""

    watch: str
    package: str
    version: str | None
    last_poll_at: str | None
    last_ok_at: str | None
    failures: int
    last_error: str | None
    state: str = Field(
        default="ok",
        description="ok, breaks, cannot-install, baseline-failing or polls-failing: anything "
        "but ok and breaks means new releases go untested",
    )
    reason: str | None = Field(default=None, description="Why the state is not ok.")
    baseline: str | None = Field(
        default=None, description="The release new ones are compared with."
    )


class ReleaseRunOut(BaseModel):
    """One run of a watched check on one release, its failures split against its baseline."""

    version: str
    previous: str | None
    check: str
    run_id: str
    status: RunStatus
    started_at: str
    error: str | None
    baseline_run_id: str | None
    new: list[str]
    pre_existing: list[str]
    redacted: bool = Field(description=REDACTED)


class PackageOut(BaseModel):
    """One package of one watch, as the Watches page shows it."""

    watch: str
    package: str
    state: str
    baseline_version: str | None
    latest_seen: str | None
    latest_tested: dict[str, str]
    last_poll_at: str | None
    failures: int
    last_error: str | None
    runs: list[ReleaseRunOut]


class WatchesOut(BaseModel):
    """Every watched package of every watch, in config order."""

    packages: list[PackageOut]


class ChecksOut(BaseModel):
    """Every configured check, the channels' health and runs waiting for the database."""

    checks: list[CheckOut]
    channels: list[ChannelOut]
    spooled: int
    watches: list[WatchOut]


class RunSummary(BaseModel):
    """A run in a list: no results, its final outcome counts."""

    id: str
    check: str
    status: RunStatus
    trigger: str
    started_at: str
    finished_at: str
    duration: float
    error: str | None
    collected: int | None
    counts: dict[str, int]
    redacted: bool = Field(description=REDACTED)


class RunsOut(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class ArtifactOut(BaseModel):
    """A file captured from a test."""

    kind: str
    name: str
    size: int
    sha256: str
    url: str | None = Field(description="where the web server serves it; null if never stored")


class ResultOut(BaseModel):
    """One attempt of one test."""

    nodeid: str
    outcome: str
    phase: str
    duration: float
    attempt: int
    final: bool
    exception: str | None
    message: str | None
    traceback: str | None
    output: str | None
    properties: list[list[Any]]
    category: str | None
    artifacts: list[ArtifactOut]
    redacted: bool = Field(description=REDACTED)


class RunOut(BaseModel):
    """A run with every attempt of every test, as ``onwatch once --json`` prints it."""

    id: str
    check: str
    status: RunStatus
    error: str | None
    trigger: str
    scheduled_for: str | None
    started_at: str
    finished_at: str
    duration: float
    collected: int | None
    counts: dict[str, int]
    host: str
    version: str
    config_digest: str
    trigger_detail: dict[str, Any]
    upstream: dict[str, Any] | None
    results: list[ResultOut]
    redacted: bool = Field(description=REDACTED)


class TestPoint(BaseModel):
    """One final result of a test, with its run."""

    run_id: str
    started_at: str
    result: ResultOut


class TestHistoryOut(BaseModel):
    """A test's final results, newest first."""

    check: str
    test: str
    results: list[TestPoint]


class IncidentOut(BaseModel):
    """An incident of a check."""

    id: int | None
    check: str
    opened_at: str | None
    resolved_at: str | None
    open: bool
    failing_runs: int
    flaky_runs: int
    category: str | None
    summary: str
    opened_run_id: str
    last_run_id: str
    resolved_run_id: str | None
    notified: bool


class IncidentsOut(BaseModel):
    """Incidents, newest first."""

    incidents: list[IncidentOut]


class TriggerOut(BaseModel):
    """A run that was asked for."""

    check: str
    message: str


class SilenceIn(BaseModel):
    """A silence to add: hold one check's alerts (or every check's, check null) for a while."""

    check: str | None = Field(default=None, max_length=200)
    duration: str = Field(default="1h", max_length=50, description='e.g. "30m", "2h"')
    reason: str = Field(default="", max_length=500)


class SilenceOut(BaseModel):
    """The silence added."""

    check: str | None
    ends_at: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no token, or an unknown one"},
    403: {"model": Problem, "description": "the token may not do this"},
}


def build_router(site: Site) -> APIRouter:
    """Return the router of the JSON API of ``site``."""
    api = APIRouter(prefix=PREFIX, responses=ERRORS)

    def known(name: str) -> None:
        if not site.has_check(name):
            raise HTTPException(404, f"no check named {name!r}")

    def admin(request: Request) -> None:
        if request.state.role < Role.ADMIN:
            raise HTTPException(403, "this needs an admin token")

    @api.get("/checks", response_model=ChecksOut)
    def checks() -> dict[str, Any]:
        """Every configured check's status: the shape of `onwatch status --json`."""
        return site.state.summary().to_json()

    @api.get("/checks/{name}", response_model=CheckOut, responses={404: {"model": Problem}})
    def check(name: str) -> dict[str, Any]:
        """One check's status."""
        known(name)
        return site.statuses([name])[0].to_json()

    @api.get("/watches", response_model=WatchesOut)
    def watches(request: Request) -> dict[str, Any]:
        """Every watched package: its state, versions, polls and the runs of its releases."""
        views = package_views(site.config, site.store, site.state.watches())
        found = [package_json(view) for view in views]
        for run in (run for package in found for run in package["runs"]):
            run["redacted"] = hides(request.state.role, site.is_sensitive(run["check"]))
            if run["redacted"]:
                run["error"] = None
        return {"packages": found}

    @api.get("/runs", response_model=RunsOut)
    def runs(
        request: Request,
        check: str | None = Query(None, max_length=200),
        status: RunStatus | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        limit: int = Query(50, ge=1, le=MAX_LIMIT),
        offset: int = Query(0, ge=0, le=10_000_000),
    ) -> dict[str, Any]:
        """Runs newest first, filtered by check, status and started_at in [since, until)."""
        found = site.dashboard.runs(
            check,
            since=since,
            until=until,
            status=None if status is None else status.value,
            limit=limit + 1,
            offset=offset,
        )
        more = len(found) > limit
        return {
            "runs": [
                run_row_json(r, request.state.role, site.is_sensitive(r.check))
                for r in found[:limit]
            ],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more else None,
        }

    @api.get("/runs/{run_id}", response_model=RunOut, responses={404: {"model": Problem}})
    def run(run_id: str, request: Request) -> dict[str, Any]:
        """One run with every attempt of every test."""
        found = site.store.runs.get_run(run_id)
        if found is None:
            raise HTTPException(404, f"no run with id {run_id!r}")
        return run_json(found, request.state.role, site.is_sensitive(found.check))

    @api.get(
        "/checks/{name}/history", response_model=TestHistoryOut, responses={404: {"model": Problem}}
    )
    def test_history(
        request: Request,
        name: str,
        test: str = Query(..., max_length=2000, description="the test's pytest node id"),
        since: Instant | None = None,
        until: Instant | None = None,
        limit: int = Query(100, ge=1, le=5000),
    ) -> dict[str, Any]:
        """One test's final results in one check, newest first."""
        known(name)
        sensitive = site.is_sensitive(name)
        rows = site.dashboard.test_results(
            name,
            test,
            since=since,
            until=until,
            limit=limit,
            monitoring_only=True,
        )
        return {
            "check": name,
            "test": test,
            "results": [
                {
                    "run_id": r.run_id,
                    "started_at": r.started_at.isoformat(),
                    "result": result_json(r.result, request.state.role, sensitive),
                }
                for r in rows
            ],
        }

    @api.get("/incidents", response_model=IncidentsOut)
    def incidents(
        check: str | None = Query(None, max_length=200),
        state: Literal["open", "resolved", "all"] = "all",
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        """Incidents newest first, of one check or all."""
        found = site.incidents.incidents(check, limit=limit if state == "all" else MAX_LIMIT * 4)
        if state != "all":
            found = [i for i in found if i.open == (state == "open")][:limit]
        return {"incidents": [incident_json(i) for i in found]}

    @api.post(
        "/checks/{name}/run",
        response_model=TriggerOut,
        status_code=202,
        responses={404: {"model": Problem}, 409: {"model": Problem}, 503: {"model": Problem}},
    )
    def trigger(name: str, request: Request) -> dict[str, Any]:
        """Start a run of the check now (admin token)."""
        admin(request)
        known(name)
        if site.trigger is None:
            raise HTTPException(503, "this process only serves pages; `onwatch run` starts runs")
        try:
            message = site.trigger(name)
        except TriggerRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {"check": name, "message": message}

    @api.post(
        "/silences",
        response_model=SilenceOut,
        status_code=201,
        responses={400: {"model": Problem}, 404: {"model": Problem}},
    )
    def silence(body: SilenceIn, request: Request) -> dict[str, Any]:
        """Hold the alerts of one check, or of every check, for a while (admin token)."""
        admin(request)
        if body.check is not None:
            known(body.check)
        try:
            seconds = parse_duration(body.duration)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        if not 0 < seconds <= 366 * 86400:
            raise HTTPException(400, "a silence lasts more than 0 s and at most a year")
        ends = site.silence(body.check, seconds, body.reason)
        return {"check": body.check, "ends_at": ends.isoformat()}

    return api
