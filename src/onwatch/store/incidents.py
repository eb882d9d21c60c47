"""Incidents, run-time silences and the run facts alerting needs: the SQL of alerting's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, select, update

from onwatch.model import Incident, RunFacts, RunStatus, Window
from onwatch.store.schema import incidents, runs, silences
from onwatch.store.sql import MONITORING, SqlStore


class IncidentStore:
    """Reads and writes incidents and silences through a ``SqlStore``'s engine."""

    def __init__(self, sql: SqlStore) -> None:
        self.sql = sql

    def open_incident(self, check: str) -> Incident | None:
        """Return the check's open incident, if any."""
        query = (
            select(incidents)
            .where(incidents.c.check == check, incidents.c.resolved_at.is_(None))
            .order_by(incidents.c.id.desc())
            .limit(1)
        )
        with self.sql.translated("cannot read incidents"), self.sql.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _incident(row)

    def open_incidents(self) -> list[Incident]:
        """Return every open incident."""
        query = select(incidents).where(incidents.c.resolved_at.is_(None)).order_by(incidents.c.id)
        with self.sql.translated("cannot read incidents"), self.sql.engine.connect() as conn:
            return [_incident(row) for row in conn.execute(query)]

    def incidents(self, check: str | None = None, limit: int = 100) -> list[Incident]:
        """Return incidents newest first, of one check or all."""
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if check is not None:
            query = query.where(incidents.c.check == check)
        with self.sql.translated("cannot read incidents"), self.sql.engine.connect() as conn:
            return [_incident(row) for row in conn.execute(query)]

    def save(self, incident: Incident) -> Incident:
        """Insert a new incident or update a known one; return it with its id."""
        values = _row(incident)
        with self.sql.translated("cannot save an incident"), self.sql.engine.begin() as conn:
            if incident.id is None:
                new_id = conn.execute(insert(incidents).values(values)).inserted_primary_key
                assert new_id is not None
                return _with_id(incident, int(new_id[0]))
            conn.execute(update(incidents).where(incidents.c.id == incident.id).values(values))
            return incident

    def recent_runs(self, check: str, limit: int) -> list[RunFacts]:
        """Return the check's latest runs, newest first, as the alerting rules see them."""
        query = (
            select(runs.c.id, runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.counts)
            .where(runs.c.check == check, MONITORING)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        with self.sql.translated("cannot read runs"), self.sql.engine.connect() as conn:
            return [
                RunFacts(
                    id=row.id,
                    status=RunStatus(row.status),
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    flaky=int((row.counts or {}).get("flaky", 0)),
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
        with self.sql.translated("cannot read runs"), self.sql.engine.connect() as conn:
            return [int(row.collected) for row in conn.execute(query)]

    def add_silence(
        self, check: str | None, starts_at: datetime, ends_at: datetime, reason: str
    ) -> None:
        """Store a silence added at run time."""
        with self.sql.translated("cannot save a silence"), self.sql.engine.begin() as conn:
            conn.execute(
                insert(silences).values(
                    check=check,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    reason=reason,
                    created_at=starts_at,
                )
            )

    def active_silences(self, now: datetime) -> list[Window]:
        """Return the stored silences in force at ``now``."""
        query = select(silences).where(and_(silences.c.starts_at <= now, silences.c.ends_at > now))
        with self.sql.translated("cannot read silences"), self.sql.engine.connect() as conn:
            return [
                Window(check=row.check, ends_at=row.ends_at, reason=row.reason)
                for row in conn.execute(query)
            ]

    def open_by_check(self, checks: list[str]) -> dict[str, Incident]:
        """Return the open incident of each named check that has one."""
        if not checks:
            return {}
        query = (
            select(incidents)
            .where(incidents.c.resolved_at.is_(None), incidents.c.check.in_(checks))
            .order_by(incidents.c.id)
        )
        with self.sql.translated("cannot read incidents"), self.sql.engine.connect() as conn:
            return {row.check: _incident(row) for row in conn.execute(query)}


def _row(incident: Incident) -> dict[str, Any]:
    return {
        "check": incident.check,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "opened_run_id": incident.opened_run_id,
        "last_run_id": incident.last_run_id,
        "resolved_run_id": incident.resolved_run_id,
        "failing_runs": incident.failing_runs,
        "flaky_runs": incident.flaky_runs,
        "category": incident.category,
        "summary": incident.summary,
        "notified_at": incident.notified_at,
        "last_reminder_at": incident.last_reminder_at,
    }


def _incident(row: Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        check=row.check,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        opened_run_id=row.opened_run_id,
        last_run_id=row.last_run_id,
        resolved_run_id=row.resolved_run_id,
        failing_runs=row.failing_runs,
        flaky_runs=row.flaky_runs,
        category=row.category,
        summary=row.summary,
        notified_at=row.notified_at,
        last_reminder_at=row.last_reminder_at,
    )


def _with_id(incident: Incident, new_id: int) -> Incident:
    from dataclasses import replace

    return replace(incident, id=new_id)
