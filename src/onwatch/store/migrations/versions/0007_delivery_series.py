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
    """Add the series column (NULL for deliveries stored before: they keep no order)."""
    op.add_column("deliveries", sa.Column("series", sa.String(200), nullable=True))
    op.create_index("ix_deliveries_channel_series", "deliveries", ["channel", "series", "status"])


def downgrade() -> None:
    """Drop the series column and its index."""
    op.drop_index("ix_deliveries_channel_series", table_name="deliveries")
    op.drop_column("deliveries", "series")
