"""The reads behind the dashboard and the JSON API: bounded queries over runs and results.

Every query walks an index from one end and is bounded by a time range or a row limit, so a
page costs the same with a year of history as with a day: runs per check by
``ix_runs_check_started``, one test's results by ``ix_results_test_history``, a run's results by
``ix_results_run_id``, pass rates by the ``check_hours`` rollup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, select

from onwatch.model import Run, RunStatus, TestResult, Trigger
from onwatch.store.database import Database
from onwatch.store.records import HourRow, RunPoint, RunRow, TestRow, hour_of
from onwatch.store.rows import result_from_row, run_from_row
from onwatch.store.runs import MONITORING, select_runs
from onwatch.store.schema import check_hours, results, runs, upstream_polls

__all__ = ["SqlDashboard"]


class SqlDashboard:
    """The ``DashboardReads`` of a ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pass_rates(
        self, checks: Sequence[str], now: datetime, windows: Sequence[timedelta]
    ) -> dict[str, list[tuple[int, int]]]:
        """Return (runs, passed) per check for each window ending ``now``, from the rollup."""
        if not checks or not windows:
            return {}
        starts = [hour_of(now - window) for window in windows]
        columns = []
        for index, start in enumerate(starts):
            inside = check_hours.c.hour >= start
            columns.append(func.sum(_when(inside, check_hours.c.runs)).label(f"r{index}"))
            columns.append(func.sum(_when(inside, check_hours.c.passed)).label(f"p{index}"))
        query = (
            select(check_hours.c.check, *columns)
            .where(check_hours.c.check.in_(list(checks)), check_hours.c.hour >= min(starts))
            .group_by(check_hours.c.check)
        )
        found: dict[str, list[tuple[int, int]]] = {name: [(0, 0)] * len(windows) for name in checks}
        with self._db.read("cannot read pass rates") as conn:
            for row in conn.execute(query):
                values = row._mapping
                found[row.check] = [
                    (int(values[f"r{i}"] or 0), int(values[f"p{i}"] or 0))
                    for i in range(len(windows))
                ]
        return found

    def recent_points(self, checks: Sequence[str], limit: int) -> dict[str, list[RunPoint]]:
        """Return the latest ``limit`` runs of each check as chart points, oldest first."""
        # One small statement per check, compiled once: a UNION of a hundred of them costs more
        # to build and compile in SQLAlchemy than to run.
        query = (
            select(runs.c.id, runs.c.status, runs.c.started_at, runs.c.duration)
            .where(runs.c.check == bindparam("name"), MONITORING)
            .order_by(runs.c.started_at.desc())
            .limit(limit)
        )
        found: dict[str, list[RunPoint]] = {}
        with self._db.read("cannot read recent runs") as conn:
            for name in dict.fromkeys(checks):
                points = [RunPoint(*row) for row in conn.execute(query, {"name": name})]
                points.reverse()
                found[name] = points
        return found

    def runs(
        self,
        check: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        monitoring_only: bool = False,
    ) -> list[RunRow]:
        """Return runs newest first; since <= started_at < until."""
        query = select_runs(_RUN_COLUMNS, check, since, until, status, monitoring_only)
        query = query.limit(limit).offset(offset)
        with self._db.read("cannot list runs") as conn:
            return [_run_row(row) for row in conn.execute(query)]

    def hours(self, check: str, since: datetime, until: datetime) -> list[HourRow]:
        """Return the check's hourly rollup rows in the range, oldest first."""
        query = (
            select(check_hours)
            .where(
                check_hours.c.check == check,
                check_hours.c.hour >= hour_of(since),
                check_hours.c.hour < until,
            )
            .order_by(check_hours.c.hour)
        )
        with self._db.read("cannot read hourly runs") as conn:
            return [
                HourRow(row.hour, int(row.runs), int(row.passed), float(row.duration_sum))
                for row in conn.execute(query)
            ]

    def durations(
        self, check: str, since: datetime, until: datetime, limit: int = 20_000
    ) -> list[tuple[datetime, float]]:
        """Return (started_at, duration) of the check's runs in the range, oldest first."""
        query = (
            select(runs.c.started_at, runs.c.duration)
            .where(
                runs.c.check == check,
                runs.c.started_at >= since,
                runs.c.started_at < until,
                MONITORING,
            )
            .order_by(runs.c.started_at.desc())
            .limit(limit)
        )
        with self._db.read("cannot read run durations") as conn:
            rows = [(row.started_at, float(row.duration)) for row in conn.execute(query)]
        rows.reverse()
        return rows

    def final_results(self, run_ids: Sequence[str]) -> list[tuple[str, TestResult]]:
        """Return (run id, final result) of the given runs, without tracebacks and output."""
        if not run_ids:
            return []
        query = select(*_BRIEF_COLUMNS, results.c.run_id).where(
            results.c.run_id.in_(list(run_ids)), results.c.final
        )
        with self._db.read("cannot read results") as conn:
            return [(row.run_id, result_from_row(row)) for row in conn.execute(query)]

    def test_results(
        self,
        check: str,
        nodeid: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 5000,
        brief: bool = False,
        monitoring_only: bool = False,
    ) -> list[TestRow]:
        """Return the final results of one test, newest first; ``brief`` leaves out tracebacks,
        output and artifacts, which charts do not show."""
        columns = (*_BRIEF_COLUMNS, results.c.run_id) if brief else tuple(results.c)
        query = (
            select(*columns)
            .where(results.c.check == check, results.c.nodeid == nodeid, results.c.final)
            .order_by(results.c.started_at.desc(), results.c.id.desc())
            .limit(limit)
        )
        if monitoring_only:
            # Results carry no trigger: the runs of upstream releases are looked up by id.
            upstream = select(runs.c.id).where(runs.c.check == check, ~MONITORING)
            query = query.where(results.c.run_id.not_in(upstream))
        if since is not None:
            query = query.where(results.c.started_at >= since)
        if until is not None:
            query = query.where(results.c.started_at < until)
        with self._db.read(f"cannot read the history of {nodeid}") as conn:
            return [
                TestRow(row.run_id, row.started_at, result_from_row(row))
                for row in conn.execute(query)
            ]

    def upstream_runs(self, checks: Sequence[str], limit: int = 200) -> list[Run]:
        """Return the latest ``limit`` upstream runs of the checks, newest first, no results."""
        if not checks:
            return []
        query = (
            select(runs)
            .where(runs.c.check.in_(list(checks)), ~MONITORING)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        with self._db.read("cannot list upstream runs") as conn:
            return [run_from_row(row, ()) for row in conn.execute(query)]

    def latest_releases(self, watch: str, packages: Sequence[str]) -> dict[str, str | None]:
        """Return the newest release each package's latest successful poll saw."""
        polls = upstream_polls
        query = (
            select(polls.c.latest)
            .where(
                polls.c.watch == watch,
                polls.c.package == bindparam("package"),
                polls.c.ok.is_(True),
            )
            .order_by(polls.c.polled_at.desc(), polls.c.id.desc())
            .limit(1)
        )
        found: dict[str, str | None] = {}
        with self._db.read("cannot read polls") as conn:
            for package in dict.fromkeys(packages):
                found[package] = conn.execute(query, {"package": package}).scalar()
        return found


def _when(condition: Any, value: Any) -> Any:
    return case((condition, value), else_=0)


_RUN_COLUMNS = (
    runs.c.id,
    runs.c.check,
    runs.c.status,
    runs.c.trigger,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.duration,
    runs.c.error,
    runs.c.collected,
    runs.c.counts,
)


_BRIEF_COLUMNS = (
    results.c.nodeid,
    results.c.started_at,
    results.c.outcome,
    results.c.phase,
    results.c.duration,
    results.c.attempt,
    results.c.exception,
    results.c.message,
    results.c.category,
    results.c.properties,  # small: record_property pairs, step timings among them
)


def _run_row(row: Any) -> RunRow:
    return RunRow(
        id=row.id,
        check=row.check,
        status=RunStatus(row.status),
        trigger=Trigger(row.trigger),
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration=float(row.duration),
        error=row.error,
        collected=row.collected,
        counts={k: int(v) for k, v in (row.counts or {}).items() if int(v)},
    )
