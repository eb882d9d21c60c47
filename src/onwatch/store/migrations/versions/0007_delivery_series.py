"""Add deliveries.series: the deliveries of one incident leave each channel in order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the series column; an incident's deliveries still pending get theirs from the key."""
    op.add_column("deliveries", sa.Column("series", sa.String(200), nullable=True))
    op.create_index("ix_deliveries_channel_series", "deliveries", ["channel", "series", "status"])
    # An outage that spans the upgrade: the opened stored before it must still go first.
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("status", sa.String),
        sa.column("series", sa.String),
    )
    conn = op.get_bind()
    pending = conn.execute(
        sa.select(deliveries.c.id, deliveries.c.key).where(
            deliveries.c.status == "pending", deliveries.c.key.like("incident.%")
        )
    ).all()
    for delivery_id, key in pending:
        incident = key.split(".")[1]  # incident.<id>.<event>|<channel>
        if incident.isdigit():
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(series=f"incident.{incident}")
            )


def downgrade() -> None:
    """Drop the series column and its index."""
    op.drop_index("ix_deliveries_channel_series", table_name="deliveries")
    op.drop_column("deliveries", "series")
