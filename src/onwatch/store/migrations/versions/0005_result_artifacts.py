"""Add results.artifacts: the files captured from a test.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the artifacts column; results recorded before keep NULL (no files)."""
    op.add_column("results", sa.Column("artifacts", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the artifacts column."""
    op.drop_column("results", "artifacts")
