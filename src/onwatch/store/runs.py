"""SqlRuns: checks, runs, results and skipped slots in SQL, and the history read from them.

Every query is a SQLAlchemy Core expression that SQLite and PostgreSQL both run; every failure
leaves as ``StoreError`` through ``Database``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Row,
    Select,
    String,
    case,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)

from onwatch.errors import StoreError
from onwatch.model import (
    BY_STOP,
    INTERRUPTED,
    CheckHistory,
    Run,
    RunFacts,
    RunStatus,
    TestResult,
    Trigger,
    utcnow,
)
from onwatch.store.database import Database, is_conflict
from onwatch.store.rollup import add_run
from onwatch.store.rows import result_from_row, result_row, run_from_row, run_row
from onwatch.store.schema import checks, results, runs, skipped_slots

__all__ = ["MONITORING", "SqlRuns", "select_runs"]

# Checks per history statement: each one becomes a SELECT in a UNION.
_HISTORY_BATCH = 200


class SqlRuns:
    """The ``Runs`` of a ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes ------------------------------------------------------------------------------

    def upsert_check(self, name: str, config_digest: str, schedule: str) -> None:
        """Create a check's row, or update its digest and schedule."""
        with self._db.write(f"cannot save check {name}") as conn:
            self._put_check(conn, name, config_digest, schedule, overwrite=True)

    def _put_check(
        self, conn: Connection, name: str, config_digest: str, schedule: str, *, overwrite: bool
    ) -> None:
        found = conn.execute(
            select(checks.c.config_digest, checks.c.schedule).where(checks.c.name == name)
        ).first()
        if found is None:
            conn.execute(
                insert(checks).values(
                    name=name,
                    config_digest=config_digest,
                    schedule=schedule,
                    updated_at=utcnow(),
                )
            )
        elif overwrite and tuple(found) != (config_digest, schedule):
            conn.execute(
                update(checks)
                .where(checks.c.name == name)
                .values(config_digest=config_digest, schedule=schedule, updated_at=utcnow())
            )

    def save_run(self, run: Run) -> bool:
        """Insert a run and all its results in one transaction; False if the id is stored."""
        try:
            with self._db.write(f"cannot save run {run.id}") as conn:
                if self._run_exists(conn, run.id):
                    return False
                conn.execute(insert(runs).values(run_row(run)))
                if run.trigger is not Trigger.UPSTREAM:  # pass rates are the monitored system's
                    add_run(conn, run)
                self._put_check(conn, run.check, run.config_digest, "", overwrite=False)
                rows = [result_row(run, result) for result in run.results]
                if rows:
                    # One executemany: the driver batches it, a per-row insert would not.
                    conn.execute(insert(results), rows)
        except StoreError as exc:
            # Two processes replaying the same spool can both pass the existence check; the
            # second insert then violates the primary key, and that run is stored after all.
            if is_conflict(exc) and self._has_run(run.id):
                return False
            raise
        return True

    def _has_run(self, run_id: str) -> bool:
        with self._db.read(f"cannot read run {run_id}") as conn:
            return self._run_exists(conn, run_id)

    @staticmethod
    def _run_exists(conn: Connection, run_id: str) -> bool:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why ("overlap", "down")."""
        with self._db.write(f"cannot record a skipped slot of {check}") as conn:
            conn.execute(
                insert(skipped_slots).values(
                    check=check,
                    scheduled_for=scheduled_for,
                    reason=reason,
                    recorded_at=utcnow(),
                )
            )

    # -- reads -------------------------------------------------------------------------------

    def skipped_slots(self, check: str, limit: int = 100) -> list[tuple[datetime, str]]:
        """Return a check's skipped slots and their reasons, newest first."""
        query = (
            select(skipped_slots.c.scheduled_for, skipped_slots.c.reason)
            .where(skipped_slots.c.check == check)
            .order_by(skipped_slots.c.scheduled_for.desc(), skipped_slots.c.id.desc())
            .limit(limit)
        )
        with self._db.read(f"cannot read skipped slots of {check}") as c:
            return [(row.scheduled_for, row.reason) for row in c.execute(query)]

    def get_run(self, run_id: str) -> Run | None:
        """Return a run with all its results (by attempt, then as recorded), or None."""
        with self._db.read(f"cannot read run {run_id}") as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            found = conn.execute(
                select(results)
                .where(results.c.run_id == run_id)
                .order_by(results.c.attempt, results.c.id)
            ).all()
        return run_from_row(row, tuple(result_from_row(r) for r in found))

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
        query = select_runs(tuple(runs.c), check, since, until, status, monitoring_only)
        query = query.limit(limit).offset(offset)
        with self._db.read("cannot list runs") as conn:
            return [run_from_row(row, ()) for row in conn.execute(query)]

    def history(self, names: list[str], now: datetime) -> dict[str, CheckHistory]:
        """Return the history of each named check, an empty one for checks never run."""
        if not names:
            return {}
        unique = list(dict.fromkeys(names))
        latest: dict[str, Row[Any]] = {}
        failing: dict[str, int] = {}
        day: dict[str, tuple[int, int]] = {}
        with self._db.read("cannot read check history") as conn:
            # SQLite refuses a UNION of more than 500 SELECTs; batches keep far below that.
            for first in range(0, len(unique), _HISTORY_BATCH):
                batch = unique[first : first + _HISTORY_BATCH]
                found_latest = {row.name: row for row in conn.execute(_latest_query(batch))}
                last_pass = {name: row.last_pass for name, row in found_latest.items()}
                for row in conn.execute(_failures_query(last_pass)):
                    failing[row.check] = int(row.failures)
                latest.update(found_latest)
                day.update(_day_counts(conn, batch, now - timedelta(hours=24)))
        found: dict[str, CheckHistory] = {}
        for name in unique:
            row = latest[name]
            slots = [slot for slot in (row.run_slot, row.skipped_slot) if slot is not None]
            runs_24h, passed_24h = day.get(name, (0, 0))
            found[name] = CheckHistory(
                last_status=None if row.status is None else RunStatus(row.status),
                last_run_at=row.finished_at,
                last_slot=max(slots, default=None),
                runs_24h=runs_24h,
                passed_24h=passed_24h,
                consecutive_failures=failing.get(name, 0),
                registered_at=row.registered_at,
            )
        return found

    def test_history(self, check: str, nodeid: str, limit: int = 100) -> list[TestResult]:
        """Return every attempt of one test in one check, newest first."""
        query = (
            select(results)
            .where(results.c.check == check, results.c.nodeid == nodeid)
            .order_by(results.c.started_at.desc(), results.c.attempt.desc(), results.c.id.desc())
            .limit(limit)
        )
        with self._db.read(f"cannot read the history of {nodeid}") as c:
            return [result_from_row(row) for row in c.execute(query)]

    def recent_facts(self, check: str, limit: int) -> list[RunFacts]:
        """Return the check's latest runs, newest first, as the alerting rules see them."""
        query = (
            select(
                runs.c.id,
                runs.c.status,
                runs.c.started_at,
                runs.c.finished_at,
                runs.c.counts,
                runs.c.trigger_detail,
            )
            .where(runs.c.check == check, MONITORING)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        with self._db.read("cannot read runs") as conn:
            return [
                RunFacts(
                    id=row.id,
                    status=RunStatus(row.status),
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    flaky=int((row.counts or {}).get("flaky", 0)),
                    stopped=(row.trigger_detail or {}).get(INTERRUPTED) == BY_STOP,
                )
                for row in conn.execute(query)
            ]

    def collected_counts(self, check: str, limit: int = 10) -> list[int]:
        """Return how many tests the check's latest runs that tested collected, newest first."""
        query = (
            select(runs.c.collected)
            .where(
                runs.c.check == check,
                MONITORING,
                runs.c.collected.is_not(None),
                runs.c.status.in_([RunStatus.PASSED.value, RunStatus.FAILED.value]),
            )
            .order_by(runs.c.started_at.desc())
            .limit(limit)
        )
        with self._db.read("cannot read runs") as conn:
            return [int(row.collected) for row in conn.execute(query)]


# Runs that say how the monitored system is doing: not those of an upstream release tested in
# its own environment, which must neither open incidents nor colour the check's status.
MONITORING = runs.c.trigger != Trigger.UPSTREAM.value


def select_runs(
    columns: Sequence[Any],
    check: str | None,
    since: datetime | None,
    until: datetime | None,
    status: str | None,
    monitoring_only: bool = False,
) -> Select[Any]:
    """Select ``columns`` of runs newest first, filtered; since <= started_at < until."""
    query = select(*columns).order_by(runs.c.started_at.desc(), runs.c.id.desc())
    if monitoring_only:
        query = query.where(MONITORING)
    if check is not None:
        query = query.where(runs.c.check == check)
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    if until is not None:
        query = query.where(runs.c.started_at < until)
    if status is not None:
        query = query.where(runs.c.status == str(status))
    return query


# -- history queries ----------------------------------------------------------------------------
#
# A few statements for any number of checks. Every part is bounded per check by an index walked
# from its newest end (ix_runs_check_started, ix_runs_check_trigger_slot,
# ix_skipped_slots_check_scheduled), so the cost stays flat as a check's history grows.


def _latest_query(names: Sequence[str]) -> Select[Any]:
    """Select, per name: the latest run's status and end, its latest pass, its latest slots."""
    named = union_all(*(select(literal(name, String()).label("name")) for name in names)).subquery(
        "named"
    )
    newest_first = runs.c.started_at.desc()
    latest_id = (
        select(runs.c.id)
        .where(runs.c.check == named.c.name, MONITORING)
        .order_by(newest_first)
        .limit(1)
        .scalar_subquery()
    )
    last_pass = (
        select(runs.c.started_at)
        .where(runs.c.check == named.c.name, runs.c.status == RunStatus.PASSED.value, MONITORING)
        .order_by(newest_first)
        .limit(1)
        .scalar_subquery()
    )
    run_slot = (
        select(func.max(runs.c.scheduled_for))
        .where(runs.c.check == named.c.name, runs.c.trigger == Trigger.SCHEDULE.value)
        .scalar_subquery()
    )
    skipped_slot = (
        select(func.max(skipped_slots.c.scheduled_for))
        .where(skipped_slots.c.check == named.c.name)
        .scalar_subquery()
    )
    registered_at = (
        select(checks.c.updated_at).where(checks.c.name == named.c.name).scalar_subquery()
    )
    per_check = select(
        named.c.name,
        latest_id.label("latest_id"),
        last_pass.label("last_pass"),
        run_slot.label("run_slot"),
        skipped_slot.label("skipped_slot"),
        registered_at.label("registered_at"),
    ).subquery("per_check")
    latest = runs.alias("latest")
    return select(
        per_check.c.name,
        per_check.c.last_pass,
        per_check.c.run_slot,
        per_check.c.skipped_slot,
        per_check.c.registered_at,
        latest.c.status,
        latest.c.finished_at,
    ).select_from(per_check.outerjoin(latest, latest.c.id == per_check.c.latest_id))


def _failures_query(last_pass: dict[str, datetime | None]) -> CompoundSelect[Any]:
    """Count, per check, the runs after its latest pass: all of them if it never passed."""
    # The latest passes are bound as values rather than nested as subqueries: a database that
    # flattened the nesting would evaluate them again for every run it counts.
    return union_all(
        *(
            select(runs.c.check, func.count().label("failures"))
            .where(
                runs.c.check == name,
                MONITORING,
                true() if passed is None else runs.c.started_at > passed,
            )
            .group_by(runs.c.check)
            for name, passed in last_pass.items()
        )
    )


def _day_counts(
    conn: Connection, names: Sequence[str], since: datetime
) -> dict[str, tuple[int, int]]:
    passed = func.sum(case((runs.c.status == RunStatus.PASSED.value, 1), else_=0))
    query = (
        select(runs.c.check, func.count().label("runs"), passed.label("passed"))
        .where(runs.c.check.in_(names), runs.c.started_at >= since, MONITORING)
        .group_by(runs.c.check)
    )
    return {row.check: (int(row.runs), int(row.passed or 0)) for row in conn.execute(query)}
