"""SqlStore: the Store on SQLite or PostgreSQL, and the only module of onwatch that issues SQL.

Every query is a SQLAlchemy Core expression that both backends run. Every failure to reach or
write the database leaves as ``StoreError`` with a one-line message that names the database
without its password; callers spool the run and try again later.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Row,
    Select,
    String,
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from onwatch.errors import StoreError
from onwatch.model import CheckHistory, Run, RunStatus, TestResult, Trigger, utcnow
from onwatch.store.rollup import add_run
from onwatch.store.rows import result_from_row, result_row, run_from_row, run_row
from onwatch.store.schema import (
    HEAD_REVISION,
    alembic_version,
    checks,
    results,
    runs,
    skipped_slots,
)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# PRAGMAs have no Core expression; they are per-connection settings, so they run on every new
# DBAPI connection. WAL lets the web pages read while a run is written; NORMAL is durable across
# application crashes in WAL mode; busy_timeout makes concurrent writers (daemon and
# `onwatch once`) wait instead of failing at once.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)

# Checks per history statement: each one becomes a SELECT in a UNION.
_HISTORY_BATCH = 200

# A monitor must notice an outage quickly and spool, not hang on an unanswered SYN for minutes.
_PG_CONNECT_TIMEOUT_S = 5

_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
)


def alembic_config() -> Config:
    """Return the Alembic configuration of onwatch's migrations, built without an alembic.ini."""
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _json_dumps(value: Any) -> str:
    try:
        # Without options json.dumps reuses one shared encoder: much faster over 50k rows.
        return json.dumps(value)
    except (TypeError, ValueError):
        # A user property that JSON cannot represent must not make a whole run unstorable.
        return json.dumps(value, default=str)


def _engine_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The message of the original error could quote the URL, password included.
        raise StoreError(
            "invalid database URL: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise StoreError(f"unsupported database {shown}: use sqlite:/// or postgresql://")
    return parsed


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


class SqlStore:
    """The Store on an SQLAlchemy engine: SQLite for one host, PostgreSQL for a shared server."""

    def __init__(self, url: str) -> None:
        engine_url = _engine_url(url)
        self.url = engine_url.render_as_string(hide_password=True)
        self._password = engine_url.password
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "json_serializer": _json_dumps}
        if engine_url.get_backend_name() == "sqlite":
            database = engine_url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the directory of {self.url}: {exc}") from exc
        elif "connect_timeout" not in engine_url.query:
            kwargs["connect_args"] = {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        try:
            self._engine: Engine = create_engine(engine_url, **kwargs)
        except ImportError as exc:
            raise StoreError(
                f"cannot open {self.url}: {exc}; install onwatch[postgres] for PostgreSQL"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {self._describe(exc)}") from exc
        if engine_url.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _set_sqlite_pragmas)

    @property
    def engine(self) -> Engine:
        """The engine, for the store's other SQL modules (store/incidents.py, store/outbox.py)."""
        return self._engine

    def translated(self, action: str) -> AbstractContextManager[None]:
        """Turn database errors raised inside the block into StoreError("action: reason")."""
        return self._translated(action)

    # -- errors ------------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        cause: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            cause = exc.orig
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        reason = lines[0] if lines else type(cause).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        kind = "unreachable" if isinstance(exc, _UNREACHABLE) else "failed"
        return f"database {self.url} {kind}: {reason}"

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"{action}: {self._describe(exc)}") from exc

    # -- schema ------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Bring the database to the newest schema, loading Alembic only when it is behind."""
        current = self._schema_revision()
        if current == HEAD_REVISION:
            return
        self._migrate(current)

    def _schema_revision(self) -> str | None:
        with self._translated("cannot read the schema version"), self._engine.connect() as conn:
            if not inspect(conn).has_table(alembic_version.name):
                return None
            return conn.execute(select(alembic_version.c.version_num)).scalar()

    def _migrate(self, current: str | None) -> None:
        from alembic import command
        from alembic.util import CommandError

        config = alembic_config()
        try:
            with self._engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate {self.url} from schema revision {current} to {HEAD_REVISION}: "
                f"{exc} (is a newer onwatch using this database?)"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            # Two processes starting on a new database race to migrate it; the loser finds
            # the tables already there and is done.
            try:
                if self._schema_revision() == HEAD_REVISION:
                    return
            except StoreError:
                pass
            raise StoreError(f"cannot migrate the schema: {self._describe(exc)}") from exc

    # -- writes ------------------------------------------------------------------------------

    def upsert_check(self, name: str, config_digest: str, schedule: str) -> None:
        """Create a check's row, or update its digest and schedule."""
        with self._translated(f"cannot save check {name}"), self._engine.begin() as conn:
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
            with self._translated(f"cannot save run {run.id}"), self._engine.begin() as conn:
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
            if isinstance(exc.__cause__, IntegrityError) and self._has_run(run.id):
                return False
            raise
        return True

    def _has_run(self, run_id: str) -> bool:
        with self._translated(f"cannot read run {run_id}"), self._engine.connect() as conn:
            return self._run_exists(conn, run_id)

    @staticmethod
    def _run_exists(conn: Connection, run_id: str) -> bool:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def record_skipped_slot(self, check: str, scheduled_for: datetime, reason: str) -> None:
        """Remember a scheduled slot that was not run, and why ("overlap", "down")."""
        with (
            self._translated(f"cannot record a skipped slot of {check}"),
            self._engine.begin() as conn,
        ):
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
        with self._translated(f"cannot read skipped slots of {check}"), self._engine.connect() as c:
            return [(row.scheduled_for, row.reason) for row in c.execute(query)]

    def get_run(self, run_id: str) -> Run | None:
        """Return a run with all its results (by attempt, then as recorded), or None."""
        with self._translated(f"cannot read run {run_id}"), self._engine.connect() as conn:
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
        with self._translated("cannot list runs"), self._engine.connect() as conn:
            return [run_from_row(row, ()) for row in conn.execute(query)]

    def history(self, names: list[str], now: datetime) -> dict[str, CheckHistory]:
        """Return the history of each named check, an empty one for checks never run."""
        if not names:
            return {}
        unique = list(dict.fromkeys(names))
        latest: dict[str, Row[Any]] = {}
        failing: dict[str, int] = {}
        day: dict[str, tuple[int, int]] = {}
        with self._translated("cannot read check history"), self._engine.connect() as conn:
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
        with self._translated(f"cannot read the history of {nodeid}"), self._engine.connect() as c:
            return [result_from_row(row) for row in c.execute(query)]

    def ping(self) -> bool:
        """Return whether the database answers a trivial query."""
        try:
            with self._translated("cannot reach the database"), self._engine.connect() as conn:
                conn.execute(select(literal(1)))
        except StoreError:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


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
    per_check = select(
        named.c.name,
        latest_id.label("latest_id"),
        last_pass.label("last_pass"),
        run_slot.label("run_slot"),
        skipped_slot.label("skipped_slot"),
    ).subquery("per_check")
    latest = runs.alias("latest")
    return select(
        per_check.c.name,
        per_check.c.last_pass,
        per_check.c.run_slot,
        per_check.c.skipped_slot,
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
