"""Create upstream_states: per watched package, what keeps new releases untested and what was told.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table of watch states."""
    op.create_table(
        "upstream_states",
        sa.Column("watch", sa.String(200), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("watch", "package", name="pk_upstream_states"),
    )


def downgrade() -> None:
    """Drop the table of watch states."""
    op.drop_table("upstream_states")
