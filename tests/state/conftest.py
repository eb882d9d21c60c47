"""An installation with three checks, a watch and a silence, on a real SQLite file per test.

The schema is built once per session and copied: every test gets a fresh database without
paying for the migrations again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from onwatch.config import Config, load_config
from onwatch.store import open_store
from onwatch.store.sql import SqlStore
from records import T0
from suites import make_project

NOW = T0 + timedelta(hours=1)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file with the newest schema and no rows."""
    path = tmp_path_factory.mktemp("migrated") / "onwatch.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.ensure_schema()
    finally:
        store.close()
    return path


@pytest.fixture
def store(migrated: Path, tmp_path: Path) -> Iterator[SqlStore]:
    """Yield a store on a fresh copy of the migrated database."""
    path = tmp_path / "onwatch.db"
    shutil.copyfile(migrated, path)
    opened = open_store(f"sqlite:///{path}")
    yield opened
    opened.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Return the configuration: api (hourly), web (every 5 minutes), idle (disabled)."""
    (tmp_path / "tests").mkdir()
    for name in ("test_api.py", "test_web.py"):
        (tmp_path / "tests" / name).write_text("")
    path = make_project(
        tmp_path,
        {
            "api": {"tests": ["tests/test_api.py"], "every": "1h", "timeout": "1m"},
            "web": {"tests": ["tests/test_web.py"], "every": "5m", "timeout": "1m"},
            "idle": {"tests": ["tests/test_api.py"], "every": "1h", "enabled": False},
        },
    )
    with path.open("a") as toml:
        toml.write(
            '\n[watch.stack]\npackages = ["requests", "django"]\nchecks = ["api"]\n'
            '\n[[silences]]\nchecks = ["web"]\nstart = "2025-03-01T12:30:00Z"\n'
            'end = "2025-03-01T14:00:00Z"\nreason = "deploying"\n'
        )
    return load_config(path)
