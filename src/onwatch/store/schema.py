"""The database tables of onwatch, as SQLAlchemy Core metadata.

This module describes the schema at the newest migration; the migrations in
``store/migrations/versions`` build it step by step and must stay equal to it (a test compares
them with Alembic's autogenerate). Change both together and bump ``HEAD_REVISION``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from onwatch.model import as_utc

# The revision id of the newest migration; ensure_schema compares the database's
# alembic_version with it so that the common case never imports Alembic.
HEAD_REVISION: str = "0008"

# Explicit names keep constraints identical on every backend and let later migrations
# drop or alter them by name.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, written in UTC and read back as an aware UTC datetime."""

    # SQLite keeps neither the offset nor the zone, so every value is normalised to UTC on the
    # way in, and naive values read back are UTC by construction.
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise a datetime to UTC before it is written or compared."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return a stored timestamp as an aware UTC datetime."""
        return None if value is None else as_utc(value)


# Results grow by the tens of thousands per run: a 32-bit key would run out within months on a
# busy installation. SQLite only autoincrements a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

checks = Table(
    "checks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("config_digest", String(128), nullable=False),
    Column("schedule", Text, nullable=False),  # "every 5m", "cron 0 * * * *", "" when unknown
    Column("updated_at", UtcDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID made by the runner before it starts
    Column("check", String(200), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("scheduled_for", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("duration", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("error", Text, nullable=True),
    Column("collected", Integer, nullable=True),
    Column("counts", JSON, nullable=False),  # final outcome -> count, so lists need no results
    Column("host", String(255), nullable=False),
    Column("version", String(100), nullable=False),
    Column("config_digest", String(128), nullable=False),
    Column("trigger_detail", JSON, nullable=False),
    Index("ix_runs_check_started", "check", "started_at"),
    # The scheduler resumes from a check's latest scheduled slot; this finds it without a scan.
    Index("ix_runs_check_trigger_slot", "check", "trigger", "scheduled_for"),
)

# A fingerprint column arrives with its analysis, in its own migration.
results = Table(
    "results",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        String(36),
        ForeignKey("runs.id", ondelete="CASCADE"),  # pruning a run prunes its results
        nullable=False,
    ),
    # check and started_at repeat the run's so that one test's history needs no join.
    Column("check", String(200), nullable=False),
    Column("nodeid", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("phase", String(20), nullable=False),
    Column("duration", Float, nullable=False),
    Column("exception", Text, nullable=True),
    Column("message", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("properties", JSON, nullable=False),  # [[name, value], ...] from record_property()
    # Why a failed result failed (revision 0003): credentials, network, timeout, test-code,
    # product; NULL for the others and for results recorded before categories existed.
    Column("category", String(30), nullable=True),
    # Files captured from the test (revision 0005): [{kind, name, size, sha256}, ...]; NULL
    # when none. The files live in the artifact store; pruning them leaves these entries.
    Column("artifacts", JSON, nullable=True),
    Index("ix_results_run_id", "run_id"),
    Index("ix_results_test_history", "check", "nodeid", "started_at"),
)

skipped_slots = Table(
    "skipped_slots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check", String(200), nullable=False),
    Column("scheduled_for", UtcDateTime, nullable=False),
    Column("reason", String(20), nullable=False),  # "overlap"; "down" once the daemon tracks it
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_skipped_slots_check_scheduled", "check", "scheduled_for"),
)

# -- alerting (revision 0002) ----------------------------------------------------------------

# One row per incident of a check; at most one per check has resolved_at NULL (the open one).
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check", String(200), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),  # start of the first failing run
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("opened_run_id", String(36), nullable=False),
    Column("last_run_id", String(36), nullable=False),
    Column("resolved_run_id", String(36), nullable=True),
    Column("failing_runs", Integer, nullable=False),
    Column("flaky_runs", Integer, nullable=False),
    Column("category", String(30), nullable=True),
    Column("summary", Text, nullable=False),
    # When "incident.opened" went out; NULL while a silence holds it back.
    Column("notified_at", UtcDateTime, nullable=True),
    Column("last_reminder_at", UtcDateTime, nullable=True),
    Index("ix_incidents_check_opened", "check", "opened_at"),
)

# Silences added at run time (onwatch silence); windows from the config are not stored.
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check", String(200), nullable=True),  # NULL silences every check
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_silences_ends_at", "ends_at"),
)

# The outbox: a notification is written here before any attempt to send it.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # The transition's key and the channel: one delivery per transition and channel, ever.
    Column("key", String(400), nullable=False, unique=True),
    Column("channel", String(200), nullable=False),
    Column("event", String(50), nullable=False),
    Column("check", String(200), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # Deliveries of one series (an incident's notifications) leave each channel in id order.
    Column("series", String(200), nullable=True),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    Index("ix_deliveries_channel_series", "channel", "series", "status"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        BigId,
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("duration", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("permanent", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)

# Health of each notification channel, so that a failing one shows in status and is alerted.
channel_states = Table(
    "channel_states",
    metadata,
    Column("channel", String(200), primary_key=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("failing_since", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    Column("last_success_at", UtcDateTime, nullable=True),
)

# -- dashboard rollups (revision 0004) -----------------------------------------------------------

# Runs per check and hour, kept up to date in the same transaction that stores a run: the pass
# rates of the overview (24 h, 7 d, 30 d) and the pass-rate timeline read these rows instead of
# scanning every run.
check_hours = Table(
    "check_hours",
    metadata,
    Column("check", String(200), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),  # the run's started_at, truncated to the hour
    Column("runs", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("duration_sum", Float, nullable=False),
    # On SQLite the rows live in the primary key's b-tree, so summing a month of hours reads no
    # second structure: five times faster than a rowid table with the same key.
    sqlite_with_rowid=False,
)

# Alembic's own bookkeeping table, kept out of ``metadata`` because migrations do not create it.
# SqlStore reads it directly so that a database already at HEAD_REVISION never loads Alembic.
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)

# Upstream watch: the last release of each watched package that onwatch has handled (tested,
# or taken as the baseline), keyed by watch and package.
upstream_versions = Table(
    "upstream_versions",
    metadata,
    Column("watch", String(200), primary_key=True),
    Column("package", String(200), primary_key=True),
    Column("version", String(100), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# When onwatch first saw each release: min_age counts from it when the index gives no upload
# time (PEP 503 HTML has none).
upstream_releases = Table(
    "upstream_releases",
    metadata,
    Column("watch", String(200), primary_key=True),
    Column("package", String(200), primary_key=True),
    Column("version", String(100), primary_key=True),
    Column("first_seen_at", UtcDateTime, nullable=False),
)

# Every poll of every package, failed or not: status shows the last good one, alerting counts
# the failures in a row.
upstream_polls = Table(
    "upstream_polls",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("watch", String(200), nullable=False),
    Column("package", String(200), nullable=False),
    Column("polled_at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("kind", String(20), nullable=True),  # unreachable, auth, not-found, garbage, http
    Column("error", Text, nullable=True),
    Column("latest", String(100), nullable=True),
    Column("new_versions", JSON, nullable=False),  # releases this poll found and queued
    Index("ix_upstream_polls_watch_polled", "watch", "polled_at"),
)

# Per watched package: the baseline, releases that cannot be installed (retried with a
# backoff), and what was already told, so that every state is alerted once and its end too.
upstream_states = Table(
    "upstream_states",
    metadata,
    Column("watch", String(200), primary_key=True),
    Column("package", String(200), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
