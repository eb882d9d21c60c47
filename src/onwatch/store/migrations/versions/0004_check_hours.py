"""Add check_hours: runs per check and hour, for the dashboard's pass rates.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    """Create the rollup table and fill it from the runs already stored."""
    table = op.create_table(
        "check_hours",
        sa.Column("check", sa.String(200), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("check", "hour", name=op.f("pk_check_hours")),
        sqlite_with_rowid=False,
    )
    assert table is not None
    _backfill(table)


def _backfill(table: sa.Table) -> None:
    # Aggregated in Python: truncating a timestamp to the hour is spelled differently by every
    # backend, and this runs once.
    runs = sa.table(
        "runs",
        sa.column("check", sa.String),
        sa.column("started_at", sa.DateTime(timezone=True)),
        sa.column("status", sa.String),
        sa.column("duration", sa.Float),
    )
    totals: dict[tuple[str, datetime], list[float]] = {}
    query = sa.select(runs.c.check, runs.c.started_at, runs.c.status, runs.c.duration)
    for row in op.get_bind().execute(query):
        started = row.started_at
        started = started.replace(tzinfo=UTC) if started.tzinfo is None else started.astimezone(UTC)
        hour = started.replace(minute=0, second=0, microsecond=0)
        total = totals.setdefault((row.check, hour), [0, 0, 0.0])
        total[0] += 1
        total[1] += 1 if row.status == "passed" else 0
        total[2] += float(row.duration)
    rows = [
        {"check": check, "hour": hour, "runs": int(t[0]), "passed": int(t[1]), "duration_sum": t[2]}
        for (check, hour), t in totals.items()
    ]
    for first in range(0, len(rows), BATCH):
        op.bulk_insert(table, rows[first : first + BATCH])


def downgrade() -> None:
    """Drop the rollup table."""
    op.drop_table("check_hours")
