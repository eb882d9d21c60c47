"""Move a test database to an older or the newest schema revision with Alembic."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from onwatch.store.sql import alembic_config


def migrate(engine: Engine, revision: str) -> None:
    """Move the database of ``engine`` down (or up) to ``revision`` with Alembic."""
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
