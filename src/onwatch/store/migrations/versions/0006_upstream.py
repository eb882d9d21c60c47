"""Create upstream_versions, upstream_releases and upstream_polls: the upstream watch's state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_utc_timestamp = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the upstream watch's tables."""
    op.create_table(
        "upstream_versions",
        sa.Column("watch", sa.String(200), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("updated_at", _utc_timestamp, nullable=False),
        sa.PrimaryKeyConstraint("watch", "package", name="pk_upstream_versions"),
    )
    op.create_table(
        "upstream_releases",
        sa.Column("watch", sa.String(200), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("first_seen_at", _utc_timestamp, nullable=False),
        sa.PrimaryKeyConstraint("watch", "package", "version", name="pk_upstream_releases"),
    )
    op.create_table(
        "upstream_polls",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("watch", sa.String(200), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("polled_at", _utc_timestamp, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latest", sa.String(100), nullable=True),
        sa.Column("new_versions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_polls"),
    )
    op.create_index("ix_upstream_polls_watch_polled", "upstream_polls", ["watch", "polled_at"])


def downgrade() -> None:
    """Drop the upstream watch's tables."""
    op.drop_index("ix_upstream_polls_watch_polled", table_name="upstream_polls")
    op.drop_table("upstream_polls")
    op.drop_table("upstream_releases")
    op.drop_table("upstream_versions")
