"""SqlStore: the ``Store`` on SQLite or PostgreSQL, with one SQL implementation of each noun.

The nouns live in their own modules (runs.py, incidents.py, outbox.py, dashboard.py,
upstream.py, artifact_index.py) and reach the database only through one ``Database``
(database.py), which turns every failure into ``StoreError``. This module builds them once and
brings the schema up to date with Alembic, which it loads only when the database is behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, select

from onwatch.errors import StoreError
from onwatch.store.artifact_index import SqlArtifactIndex
from onwatch.store.dashboard import SqlDashboard
from onwatch.store.database import Database
from onwatch.store.incidents import SqlIncidents
from onwatch.store.outbox import SqlDeliveries
from onwatch.store.runs import SqlRuns
from onwatch.store.schema import HEAD_REVISION, alembic_version
from onwatch.store.upstream import SqlUpstream

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS", "SqlStore", "alembic_config"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Return the Alembic configuration of onwatch's migrations, built without an alembic.ini."""
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


class SqlStore:
    """The Store on an SQLAlchemy engine: SQLite for one host, PostgreSQL for a shared server."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.url = self.database.url
        self.runs = SqlRuns(self.database)
        self.incidents = SqlIncidents(self.database)
        self.outbox = SqlDeliveries(self.database)
        self.dashboard = SqlDashboard(self.database)
        self.upstream = SqlUpstream(self.database, self.runs)
        self.artifacts = SqlArtifactIndex(self.database)

    def ensure_schema(self) -> None:
        """Bring the database to the newest schema, loading Alembic only when it is behind."""
        current = self._schema_revision()
        if current == HEAD_REVISION:
            return
        self._migrate(current)

    def _schema_revision(self) -> str | None:
        with self.database.read("cannot read the schema version") as conn:
            if not inspect(conn).has_table(alembic_version.name):
                return None
            return conn.execute(select(alembic_version.c.version_num)).scalar()

    def _migrate(self, current: str | None) -> None:
        from alembic import command
        from alembic.util import CommandError

        config = alembic_config()
        try:
            with self.database.write("cannot migrate the schema") as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"cannot migrate {self.url} from schema revision {current} to {HEAD_REVISION}: "
                f"{exc} (is a newer onwatch using this database?)"
            ) from exc
        except StoreError:
            # Two processes starting on a new database race to migrate it; the loser finds
            # the tables already there and is done.
            try:
                if self._schema_revision() == HEAD_REVISION:
                    return
            except StoreError:
                pass
            raise

    def ping(self) -> bool:
        """Return whether the database answers a trivial query."""
        return self.database.ping()

    def close(self) -> None:
        """Close every pooled connection."""
        self.database.close()
