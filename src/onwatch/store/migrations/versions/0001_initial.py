"""Create checks, runs, results and skipped_slots.

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations spell out their types instead of importing store.schema, so that they keep
# describing this revision after the schema module has moved on.
_utc_timestamp = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "checks",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config_digest", sa.String(128), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("updated_at", _utc_timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_checks"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("check", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("scheduled_for", _utc_timestamp, nullable=True),
        sa.Column("started_at", _utc_timestamp, nullable=False),
        sa.Column("finished_at", _utc_timestamp, nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("collected", sa.Integer(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("config_digest", sa.String(128), nullable=False),
        sa.Column("trigger_detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_check_started", "runs", ["check", "started_at"])
    op.create_index("ix_runs_check_trigger_slot", "runs", ["check", "trigger", "scheduled_for"])
    op.create_table(
        "results",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("check", sa.String(200), nullable=False),
        sa.Column("nodeid", sa.Text(), nullable=False),
        sa.Column("started_at", _utc_timestamp, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("exception", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_results_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_results_run_id", "results", ["run_id"])
    op.create_index("ix_results_test_history", "results", ["check", "nodeid", "started_at"])
    op.create_table(
        "skipped_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("check", sa.String(200), nullable=False),
        sa.Column("scheduled_for", _utc_timestamp, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("recorded_at", _utc_timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_skipped_slots"),
    )
    op.create_index("ix_skipped_slots_check_scheduled", "skipped_slots", ["check", "scheduled_for"])


def downgrade() -> None:
    """Drop every table of the first revision."""
    op.drop_table("skipped_slots")
    op.drop_table("results")
    op.drop_table("runs")
    op.drop_table("checks")
