"""Add results.category: why a failed result failed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the category column; results recorded before keep NULL."""
    op.add_column("results", sa.Column("category", sa.String(30), nullable=True))


def downgrade() -> None:
    """Drop the category column."""
    op.drop_column("results", "category")
