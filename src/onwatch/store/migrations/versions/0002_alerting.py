"""Create incidents, silences, deliveries, delivery_attempts and channel_states.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_utc_timestamp = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the alerting tables."""
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("check", sa.String(200), nullable=False),
        sa.Column("opened_at", _utc_timestamp, nullable=False),
        sa.Column("resolved_at", _utc_timestamp, nullable=True),
        sa.Column("opened_run_id", sa.String(36), nullable=False),
        sa.Column("last_run_id", sa.String(36), nullable=False),
        sa.Column("resolved_run_id", sa.String(36), nullable=True),
        sa.Column("failing_runs", sa.Integer(), nullable=False),
        sa.Column("flaky_runs", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(30), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("notified_at", _utc_timestamp, nullable=True),
        sa.Column("last_reminder_at", _utc_timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_check_opened", "incidents", ["check", "opened_at"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("check", sa.String(200), nullable=True),
        sa.Column("starts_at", _utc_timestamp, nullable=False),
        sa.Column("ends_at", _utc_timestamp, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _utc_timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("check", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc_timestamp, nullable=False),
        sa.Column("created_at", _utc_timestamp, nullable=False),
        sa.Column("sent_at", _utc_timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("key", name="uq_deliveries_key"),
    )
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _big_id, nullable=False),
        sa.Column("attempted_at", _utc_timestamp, nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name="fk_delivery_attempts_delivery_id_deliveries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])
    op.create_table(
        "channel_states",
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", _utc_timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", _utc_timestamp, nullable=True),
        sa.Column("last_success_at", _utc_timestamp, nullable=True),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_states"),
    )


def downgrade() -> None:
    """Drop the alerting tables."""
    op.drop_table("channel_states")
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    op.drop_table("silences")
    op.drop_table("incidents")
