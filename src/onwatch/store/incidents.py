"""SqlIncidents: incidents and run-time silences in SQL, the state alerting keeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, select, update

from onwatch.model import Incident, Window
from onwatch.store.database import Database
from onwatch.store.schema import incidents, silences

__all__ = ["SqlIncidents"]


class SqlIncidents:
    """The ``Incidents`` of a ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def open_incident(self, check: str) -> Incident | None:
        """Return the check's open incident, if any."""
        query = (
            select(incidents)
            .where(incidents.c.check == check, incidents.c.resolved_at.is_(None))
            .order_by(incidents.c.id.desc())
            .limit(1)
        )
        with self._db.read("cannot read incidents") as conn:
            row = conn.execute(query).first()
        return None if row is None else _incident(row)

    def open_incidents(self) -> list[Incident]:
        """Return every open incident."""
        query = select(incidents).where(incidents.c.resolved_at.is_(None)).order_by(incidents.c.id)
        with self._db.read("cannot read incidents") as conn:
            return [_incident(row) for row in conn.execute(query)]

    def incidents(self, check: str | None = None, limit: int = 100) -> list[Incident]:
        """Return incidents newest first, of one check or all."""
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if check is not None:
            query = query.where(incidents.c.check == check)
        with self._db.read("cannot read incidents") as conn:
            return [_incident(row) for row in conn.execute(query)]

    def save(self, incident: Incident) -> Incident:
        """Insert a new incident or update a known one; return it with its id."""
        values = _row(incident)
        with self._db.write("cannot save an incident") as conn:
            if incident.id is None:
                new_id = conn.execute(insert(incidents).values(values)).inserted_primary_key
                assert new_id is not None
                return _with_id(incident, int(new_id[0]))
            conn.execute(update(incidents).where(incidents.c.id == incident.id).values(values))
            return incident

    def add_silence(
        self, check: str | None, starts_at: datetime, ends_at: datetime, reason: str
    ) -> None:
        """Store a silence added at run time."""
        with self._db.write("cannot save a silence") as conn:
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
        with self._db.read("cannot read silences") as conn:
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
        with self._db.read("cannot read incidents") as conn:
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
    return replace(incident, id=new_id)
