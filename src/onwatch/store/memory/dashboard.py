"""MemoryDashboard: the dashboard's reads, computed from the runs of a memory store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from onwatch.model import Run, RunStatus, TestResult
from onwatch.store.memory.data import Data, monitoring, newest_first, selected
from onwatch.store.records import HourRow, RunPoint, RunRow, TestRow, hour_of

__all__ = ["MemoryDashboard"]


def _brief(result: TestResult) -> TestResult:
    """Return a result without what charts do not show: traceback, output, artifacts."""
    return replace(result, traceback=None, output=None, artifacts=())


class MemoryDashboard:
    """The ``DashboardReads`` of a memory store."""

    def __init__(self, data: Data) -> None:
        self._d = data

    def _watched(self, action: str, checks: Sequence[str]) -> list[Run]:
        with self._d.use(action):
            return [r for r in self._d.runs.values() if r.check in checks and monitoring(r)]

    def pass_rates(
        self, checks: Sequence[str], now: datetime, windows: Sequence[timedelta]
    ) -> dict[str, list[tuple[int, int]]]:
        """Return (runs, passed) per check for each window ending ``now``, by whole hours."""
        if not checks or not windows:
            return {}
        starts = [hour_of(now - window) for window in windows]
        counts = {name: [[0, 0] for _ in windows] for name in checks}
        for run in self._watched("cannot read pass rates", checks):
            hour = hour_of(run.started_at)
            for index, start in enumerate(starts):
                if hour >= start:
                    counts[run.check][index][0] += 1
                    counts[run.check][index][1] += run.status is RunStatus.PASSED
        return {name: [(ran, passed) for ran, passed in found] for name, found in counts.items()}

    def recent_points(self, checks: Sequence[str], limit: int) -> dict[str, list[RunPoint]]:
        """Return the latest ``limit`` runs of each check as chart points, oldest first."""
        watched = newest_first(self._watched("cannot read recent runs", checks))
        found: dict[str, list[RunPoint]] = {}
        for name in dict.fromkeys(checks):
            latest = [r for r in watched if r.check == name][:limit]
            found[name] = [RunPoint(r.id, r.status.value, r.started_at, r.duration) for r in latest]
            found[name].reverse()
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
        """Return runs newest first, upstream ones included unless ``monitoring_only``;
        since <= started_at < until."""
        with self._d.use("cannot list runs"):
            found = selected(self._d.runs.values(), check, since, until, status)
        if monitoring_only:
            found = [run for run in found if monitoring(run)]
        return [
            RunRow(
                id=run.id,
                check=run.check,
                status=run.status,
                trigger=run.trigger,
                started_at=run.started_at,
                finished_at=run.finished_at,
                duration=run.duration,
                error=run.error,
                collected=run.collected,
                counts={k: v for k, v in run.counts().items() if v},
            )
            for run in found[offset : offset + limit]
        ]

    def hours(self, check: str, since: datetime, until: datetime) -> list[HourRow]:
        """Return the check's runs per hour in the range, oldest first."""
        first = hour_of(since)
        found: dict[datetime, HourRow] = {}
        for run in self._watched("cannot read hourly runs", [check]):
            hour = hour_of(run.started_at)
            if not first <= hour < until:
                continue
            row = found.get(hour, HourRow(hour, 0, 0, 0.0))
            passed = row.passed + (run.status is RunStatus.PASSED)
            found[hour] = HourRow(hour, row.runs + 1, passed, row.duration_sum + run.duration)
        return [found[hour] for hour in sorted(found)]

    def durations(
        self, check: str, since: datetime, until: datetime, limit: int = 20_000
    ) -> list[tuple[datetime, float]]:
        """Return (started_at, duration) of the check's latest runs in the range, oldest first."""
        watched = self._watched("cannot read run durations", [check])
        inside = newest_first(r for r in watched if since <= r.started_at < until)[:limit]
        return [(run.started_at, run.duration) for run in reversed(inside)]

    def final_results(self, run_ids: Sequence[str]) -> list[tuple[str, TestResult]]:
        """Return (run id, final result) of the given runs, without tracebacks and output."""
        with self._d.use("cannot read results"):
            chosen = [run for run in self._d.runs.values() if run.id in run_ids]
        return [(run.id, _brief(r)) for run in chosen for r in run.results if r.final]

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
        output and artifacts."""
        with self._d.use(f"cannot read the history of {nodeid}"):
            # Ordered as SQL orders the rows: by start, then as recorded, newest first.
            found = [
                ((run.started_at, order, index), run, result)
                for order, run in enumerate(self._d.runs.values())
                if run.check == check
                and (monitoring(run) or not monitoring_only)
                and (since is None or run.started_at >= since)
                and (until is None or run.started_at < until)
                for index, result in enumerate(run.results)
                if result.nodeid == nodeid and result.final
            ]
        found.sort(key=lambda entry: entry[0], reverse=True)
        return [
            TestRow(run.id, run.started_at, _brief(result) if brief else result)
            for _, run, result in found[:limit]
        ]

    def upstream_runs(self, checks: Sequence[str], limit: int = 200) -> list[Run]:
        """Return the latest ``limit`` upstream runs of the checks, newest first, no results."""
        with self._d.use("cannot list upstream runs"):
            found = [r for r in self._d.runs.values() if r.check in checks and not monitoring(r)]
        return [replace(run, results=()) for run in newest_first(found)[:limit]]

    def latest_releases(self, watch: str, packages: Sequence[str]) -> dict[str, str | None]:
        """Return the newest release each package's latest successful poll saw."""
        with self._d.use("cannot read polls"):
            polls = list(enumerate(self._d.polls))
        found: dict[str, str | None] = {}
        for package in dict.fromkeys(packages):
            good = [
                (poll.polled_at, order, poll.latest)
                for order, poll in polls
                if poll.watch == watch and poll.package == package and poll.ok
            ]
            found[package] = max(good)[2] if good else None
        return found
