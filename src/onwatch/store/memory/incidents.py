"""MemoryIncidents: incidents and run-time silences of a memory store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from onwatch.model import Incident, Window, as_utc
from onwatch.store.memory.data import Data, utc

__all__ = ["MemoryIncidents"]


class MemoryIncidents:
    """The ``Incidents`` of a memory store."""

    def __init__(self, data: Data) -> None:
        self._d = data

    def open_incident(self, check: str) -> Incident | None:
        """Return the check's open incident, if any."""
        return self.open_by_check([check]).get(check)

    def open_incidents(self) -> list[Incident]:
        """Return every open incident, oldest first."""
        with self._d.use("cannot read incidents"):
            return [i for _, i in sorted(self._d.incidents.items()) if i.open]

    def open_by_check(self, checks: list[str]) -> dict[str, Incident]:
        """Return the open incident of each named check that has one."""
        return {i.check: i for i in self.open_incidents() if i.check in checks}

    def incidents(self, check: str | None = None, limit: int = 100) -> list[Incident]:
        """Return incidents newest first, of one check or all."""
        with self._d.use("cannot read incidents"):
            found = [i for _, i in sorted(self._d.incidents.items(), reverse=True)]
        return [i for i in found if check is None or i.check == check][:limit]

    def save(self, incident: Incident) -> Incident:
        """Insert a new incident or update a known one; return it with its id."""
        with self._d.use("cannot save an incident"):
            if incident.id is None:
                incident = replace(incident, id=max(self._d.incidents, default=0) + 1)
            elif incident.id not in self._d.incidents:
                return incident  # as an UPDATE that matches no row
            assert incident.id is not None
            self._d.incidents[incident.id] = replace(
                incident,
                failing_tests=(),
                opened_at=as_utc(incident.opened_at),
                resolved_at=utc(incident.resolved_at),
                notified_at=utc(incident.notified_at),
                last_reminder_at=utc(incident.last_reminder_at),
            )
        return incident

    def add_silence(
        self, check: str | None, starts_at: datetime, ends_at: datetime, reason: str
    ) -> None:
        """Store a silence added at run time."""
        with self._d.use("cannot save a silence"):
            self._d.silences.append((check, as_utc(starts_at), as_utc(ends_at), reason))

    def active_silences(self, now: datetime) -> list[Window]:
        """Return the stored silences in force at ``now``."""
        with self._d.use("cannot read silences"):
            return [
                Window(check=check, ends_at=ends, reason=reason)
                for check, starts, ends, reason in self._d.silences
                if starts <= now < ends
            ]
