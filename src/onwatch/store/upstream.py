"""SqlUpstream: the upstream watch's state in SQL: last handled release per package, first
sightings, polls."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from onwatch.model import Run, RunStatus, Trigger
from onwatch.store.database import Database
from onwatch.store.records import BASELINE_SEARCH, PollRecord, PollSummary
from onwatch.store.runs import SqlRuns
from onwatch.store.schema import (
    runs,
    upstream_polls,
    upstream_releases,
    upstream_states,
    upstream_versions,
)

__all__ = ["SqlUpstream"]


class SqlUpstream:
    """The ``Upstream`` of a ``Database``; baselines are read through the runs."""

    def __init__(self, db: Database, all_runs: SqlRuns) -> None:
        self._db = db
        self._runs = all_runs

    def last_version(self, watch: str, package: str) -> str | None:
        """Return the last release of ``package`` that ``watch`` handled, if any."""
        query = select(upstream_versions.c.version).where(
            upstream_versions.c.watch == watch, upstream_versions.c.package == package
        )
        with self._db.read("cannot read upstream versions") as c:
            return c.execute(query).scalar()

    def set_last_version(self, watch: str, package: str, version: str, at: datetime) -> None:
        """Remember ``version`` as the last release of ``package`` handled by ``watch``."""
        key = and_(upstream_versions.c.watch == watch, upstream_versions.c.package == package)
        with self._db.write("cannot save an upstream version") as c:
            done = c.execute(
                update(upstream_versions).where(key).values(version=version, updated_at=at)
            )
            if not done.rowcount:
                c.execute(
                    insert(upstream_versions).values(
                        watch=watch, package=package, version=version, updated_at=at
                    )
                )

    def first_seen(
        self, watch: str, package: str, versions: Iterable[str], at: datetime
    ) -> dict[str, datetime]:
        """Return when each version was first seen, recording ``at`` for the new ones."""
        wanted = list(dict.fromkeys(versions))
        table = upstream_releases
        key = and_(table.c.watch == watch, table.c.package == package)
        with self._db.write("cannot save upstream releases") as c:
            known = {
                row.version: row.first_seen_at
                for row in c.execute(select(table.c.version, table.c.first_seen_at).where(key))
            }
            new = [v for v in wanted if v not in known]
            if new:
                c.execute(
                    insert(table),
                    [
                        {"watch": watch, "package": package, "version": v, "first_seen_at": at}
                        for v in new
                    ],
                )
        return {v: known.get(v, at) for v in wanted}

    def record_poll(self, poll: PollRecord) -> None:
        """Store one poll's outcome."""
        with self._db.write("cannot record a poll") as c:
            c.execute(
                insert(upstream_polls).values(
                    watch=poll.watch,
                    package=poll.package,
                    polled_at=poll.polled_at,
                    ok=poll.ok,
                    kind=poll.kind,
                    error=poll.error,
                    latest=poll.latest,
                    new_versions=list(poll.new_versions),
                )
            )

    def summaries(self, watch: str, packages: list[str], limit: int = 1000) -> list[PollSummary]:
        """Return each package's last poll, last successful poll and failures in a row."""
        polls = upstream_polls
        found = []
        with self._db.read("cannot read polls") as c:
            for package in packages:
                key = and_(polls.c.watch == watch, polls.c.package == package)
                last_ok = c.execute(
                    select(func.max(polls.c.polled_at)).where(key, polls.c.ok.is_(True))
                ).scalar()
                recent = select(polls.c.polled_at, polls.c.ok, polls.c.error, polls.c.kind).where(
                    key
                )
                if last_ok is not None:
                    recent = recent.where(polls.c.polled_at >= last_ok)
                rows = c.execute(recent.order_by(polls.c.polled_at.desc()).limit(limit)).all()
                failures = 0
                for row in rows:
                    if row.ok:
                        break
                    failures += 1
                state = self.watch_state(watch, package)
                found.append(
                    PollSummary(
                        watch=watch,
                        package=package,
                        version=self.last_version(watch, package),
                        last_poll_at=rows[0].polled_at if rows else None,
                        last_ok_at=last_ok,
                        failures=failures,
                        last_error=rows[0].error if rows and not rows[0].ok else None,
                        last_kind=rows[0].kind if rows and not rows[0].ok else None,
                        state="polls-failing" if failures else state.get("state", "ok"),
                        reason=rows[0].error if failures else state.get("reason"),
                        baseline=state.get("baseline"),
                    )
                )
        return found

    def streak_before_last_ok(
        self, watch: str, package: str, limit: int = 1000
    ) -> tuple[int, datetime | None]:
        """Return how many polls failed in a row just before the latest one, which passed."""
        polls = upstream_polls
        query = (
            select(polls.c.polled_at, polls.c.ok)
            .where(polls.c.watch == watch, polls.c.package == package)
            .order_by(polls.c.polled_at.desc(), polls.c.id.desc())
            .limit(limit)
        )
        with self._db.read("cannot read polls") as c:
            rows = c.execute(query).all()
        if not rows or not rows[0].ok:
            return 0, None
        streak = 0
        for row in rows[1:]:
            if row.ok:
                break
            streak += 1
        return streak, rows[0].polled_at

    def baseline_run(self, check: str, package: str, version: str) -> Run | None:
        """Return the latest upstream run of ``check`` on ``package`` ``version``, results in."""
        query = (
            select(runs.c.id, runs.c.trigger_detail)
            .where(
                runs.c.check == check,
                runs.c.trigger == Trigger.UPSTREAM.value,
                # Only a run that executed the suite can be compared with.
                runs.c.status.in_([RunStatus.PASSED.value, RunStatus.FAILED.value]),
                runs.c.collected > 0,
            )
            .order_by(runs.c.started_at.desc())
            .limit(BASELINE_SEARCH)
        )
        with self._db.read("cannot read upstream runs") as c:
            rows = c.execute(query).all()
        for row in rows:
            detail: dict[str, Any] = dict(row.trigger_detail or {})
            tested = detail.get("upstream") or {}
            if tested.get("package") == package and tested.get("version") == version:
                return self._runs.get_run(row.id)
        return None

    def watch_state(self, watch: str, package: str) -> dict[str, Any]:
        """Return the package's watch state as last saved (empty when never saved)."""
        table = upstream_states
        query = select(table.c.data).where(table.c.watch == watch, table.c.package == package)
        with self._db.read("cannot read upstream states") as c:
            data = c.execute(query).scalar()
        return dict(data or {})

    def set_watch_state(self, watch: str, package: str, data: dict[str, Any], at: datetime) -> None:
        """Save the package's watch state (a JSON object)."""
        table = upstream_states
        key = and_(table.c.watch == watch, table.c.package == package)
        with self._db.write("cannot save an upstream state") as c:
            done = c.execute(update(table).where(key).values(data=data, updated_at=at))
            if not done.rowcount:
                c.execute(
                    insert(table).values(watch=watch, package=package, data=data, updated_at=at)
                )
