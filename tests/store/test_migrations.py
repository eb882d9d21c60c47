"""The Alembic migrations: they build exactly store.schema, and cost nothing once applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, select, update

import onwatch
from onwatch.errors import StoreError
from onwatch.store import open_store, schema
from onwatch.store.sql import SqlStore, alembic_config
from records import make_run
from store.migrating import migrate


def differences(url: str, metadata: MetaData) -> list[object]:
    """Return what Alembic's autogenerate finds between a database and ``metadata``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_head_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == (
        schema.HEAD_REVISION
    )


def test_a_migrated_database_matches_the_schema_module(
    empty_store: SqlStore, store_url: str
) -> None:
    empty_store.ensure_schema()

    assert differences(store_url, schema.metadata) == []
    # The comparison does see a difference when there is one.
    changed = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["runs"].append_column(Column("extra", Integer))
    assert differences(store_url, changed) != []


def test_ensure_schema_is_idempotent(empty_store: SqlStore, store_url: str) -> None:
    empty_store.ensure_schema()
    run = make_run()
    empty_store.runs.save_run(run)

    empty_store.ensure_schema()
    again = open_store(store_url)
    again.ensure_schema()
    again.close()

    assert empty_store.runs.get_run(run.id) == run
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(select(schema.alembic_version.c.version_num)).scalars().all()
    finally:
        engine.dispose()
    assert versions == [schema.HEAD_REVISION]


@pytest.mark.e2e
def test_ensure_schema_does_not_load_alembic_when_the_database_is_at_head(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'onwatch.db'}"
    store = open_store(url)
    store.ensure_schema()
    store.close()
    code = (
        "import sys\n"
        "from onwatch.store import open_store\n"
        f"store = open_store({url!r})\n"
        "store.ensure_schema()\n"
        "store.close()\n"
        "loaded = sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.'))\n"
        "print(loaded)\n"
    )
    source_root = str(Path(onwatch.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")]),
    }

    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_it_migrates_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'onwatch.db'}"
    store = open_store(url)
    store.ensure_schema()
    engine = create_engine(url)
    try:
        migrate(engine, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}

        store.ensure_schema()

        assert differences(url, schema.metadata) == []
    finally:
        engine.dispose()
        store.close()


def test_it_refuses_a_database_migrated_by_a_newer_onwatch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'onwatch.db'}"
    store = open_store(url)
    store.ensure_schema()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(update(schema.alembic_version).values(version_num="9999"))
    finally:
        engine.dispose()

    with pytest.raises(StoreError, match="newer onwatch"):
        store.ensure_schema()
    store.close()
