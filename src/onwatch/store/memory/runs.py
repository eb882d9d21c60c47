"""MemoryRuns: checks, runs, results and skipped slots of a memory store."""

from __future__ import annotations

from datetime import datetime, timedelta

from onwatch.model import (
    CheckHistory,
    Run,
    RunFacts,
    RunStatus,
    TestResult,
    Trigger,
    as_utc,
    utcnow,
)
from onwatch.store.memory.data import Data, kept, monitoring, newest_first, selected

__all__ = ["MemoryRuns"]


class MemoryRuns:
    """The ``Runs`` of a memory store."""

    def __init__(self, data: Data) -> None:
        self._d = data

    def upsert_check(self, name: str, config_digest: str, schedule: str) -> None:
        """Create a check's row, or update its digest and schedule."""
        with self._d.use(f"cannot save check {name}"):
            if self._d.checks.get(name) != (config_digest, schedule):
                self._d.registered[name] = utcnow()
            self._d.checks[name] = (config_digest, schedule)

    def save_run(self, run: Run) -> bool:
        """Store a run and its results; False if its id is already stored."""
        with self._d.use(f"cannot save run {run.id}"):
            if run.id in self._d.runs:
                return False
            self._d.runs[run.id] = kept(run)
            self._d.checks.setdefault(run.check, (run.config_digest, ""))
            self._d.registered.setdefault(run.check, utcnow())
            return True

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why."""
        with self._d.use(f"cannot record a skipped slot of {check}"):
            self._d.skipped.append((check, as_utc(scheduled_for), reason))

    def skipped_slots(self, check: str, limit: int = 100) -> list[tuple[datetime, str]]:
        """Return a check's skipped slots and their reasons, newest first."""
        with self._d.use(f"cannot read skipped slots of {check}"):
            mine = [(at, i, why) for i, (name, at, why) in enumerate(self._d.skipped)]
            mine = [entry for entry in mine if self._d.skipped[entry[1]][0] == check]
        mine.sort(reverse=True)
        return [(at, why) for at, _, why in mine[:limit]]

    def get_run(self, run_id: str) -> Run | None:
        """Return a run with all its results (by attempt, then as recorded), or None."""
        with self._d.use(f"cannot read run {run_id}"):
            run = self._d.runs.get(run_id)
        if run is None:
            return None
        return run.with_results(tuple(sorted(run.results, key=lambda r: r.attempt)))

    def list_runs(
        self,
        check: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        monitoring_only: bool = False,
    ) -> list[Run]:
        """Return runs newest first, without their results; since <= started_at < until."""
        with self._d.use("cannot list runs"):
            found = selected(self._d.runs.values(), check, since, until, status)
        if monitoring_only:
            found = [run for run in found if monitoring(run)]
        return [run.with_results(()) for run in found[offset : offset + limit]]

    def history(self, names: list[str], now: datetime) -> dict[str, CheckHistory]:
        """Return the history of each named check, an empty one for checks never run."""
        since = now - timedelta(hours=24)
        found: dict[str, CheckHistory] = {}
        with self._d.use("cannot read check history"):
            for name in dict.fromkeys(names):
                mine = [run for run in self._d.runs.values() if run.check == name]
                watched = newest_first(run for run in mine if monitoring(run))
                last_pass = next((r for r in watched if r.status is RunStatus.PASSED), None)
                slots = [
                    run.scheduled_for
                    for run in mine
                    if run.trigger is Trigger.SCHEDULE and run.scheduled_for is not None
                ]
                slots += [at for check, at, _ in self._d.skipped if check == name]
                day = [run for run in watched if run.started_at >= since]
                latest = watched[0] if watched else None
                found[name] = CheckHistory(
                    last_status=None if latest is None else latest.status,
                    last_run_at=None if latest is None else latest.finished_at,
                    last_slot=max(slots, default=None),
                    runs_24h=len(day),
                    passed_24h=sum(run.status is RunStatus.PASSED for run in day),
                    consecutive_failures=sum(
                        last_pass is None or run.started_at > last_pass.started_at
                        for run in watched
                    ),
                    registered_at=self._d.registered.get(name),
                )
        return found

    def test_history(self, check: str, nodeid: str, limit: int = 100) -> list[TestResult]:
        """Return every attempt of one test in one check, newest first."""
        with self._d.use(f"cannot read the history of {nodeid}"):
            found = [
                ((run.started_at, result.attempt, order, index), result)
                for order, run in enumerate(self._d.runs.values())
                if run.check == check
                for index, result in enumerate(run.results)
                if result.nodeid == nodeid
            ]
        found.sort(key=lambda entry: entry[0], reverse=True)
        return [result for _, result in found[:limit]]

    def recent_facts(self, check: str, limit: int) -> list[RunFacts]:
        """Return the check's latest runs, newest first, as the alerting rules see them."""
        with self._d.use("cannot read runs"):
            mine = [run for run in self._d.runs.values() if run.check == check]
        return [
            RunFacts(
                id=run.id,
                status=run.status,
                started_at=run.started_at,
                finished_at=run.finished_at,
                flaky=run.counts()["flaky"],
                stopped=run.stopped,
            )
            for run in newest_first(run for run in mine if monitoring(run))[:limit]
        ]

    def collected_counts(self, check: str, limit: int = 10) -> list[int]:
        """Return how many tests the check's latest runs that tested collected, newest first."""
        tested = (RunStatus.PASSED, RunStatus.FAILED)
        with self._d.use("cannot read runs"):
            found = [
                run
                for run in self._d.runs.values()
                if run.check == check and monitoring(run) and run.status in tested
            ]
        return [run.collected for run in newest_first(found) if run.collected is not None][:limit]
