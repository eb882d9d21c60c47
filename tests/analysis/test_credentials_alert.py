"""A revoked monitoring token, end to end: the demo app, `onwatch once`, the database, the alert."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from onwatch.alerting.engine import facts_of
from onwatch.cli.demo import SUITE_DIR
from onwatch.demo.app import Faults, serve
from onwatch.model import Outcome, Run

pytestmark = pytest.mark.e2e

CONFIG = """\
[onwatch]
database = "sqlite:///onwatch.db"

[checks.shop]
tests = ["{suite}"]
markers = "monitor"
every = "1m"
timeout = "1m"
env = {{ BASE_URL = "{url}" }}
"""


def test_a_revoked_token_is_recorded_and_alerted_as_invalid_credentials(tmp_path: Path) -> None:
    config = tmp_path / "onwatch.toml"
    with serve(port=0, faults=Faults.parse("auth=broken")) as server:
        config.write_text(CONFIG.format(suite=SUITE_DIR.as_posix(), url=server.url))
        done = subprocess.run(
            [sys.executable, "-m", "onwatch", "-c", str(config), "once", "--json"],
            cwd=tmp_path,
            env={**os.environ, "ONWATCH_CACHE_DIR": str(tmp_path / "cache")},
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 1, done.stderr
    [data] = json.loads(done.stdout)["runs"]
    run = Run.from_json(data)
    bad = [r for r in run.results if r.outcome.is_bad]
    passed = {r.nodeid.split("::")[-1] for r in run.results if r.outcome is Outcome.PASSED}
    # Logging in still works: only what needs the token fails, and all of it for that reason.
    assert "test_the_right_password_gets_a_token" in passed
    assert len(bad) >= 10
    assert {r.category for r in bad} == {"credentials"}, [(r.nodeid, r.message) for r in bad]
    facts = facts_of(run)
    assert facts.summary.startswith("shop is failing: Monitoring credentials look invalid:")
    assert f"{len(bad)}/{len(bad)} tests got 401" in facts.summary
    assert facts.category == "credentials"
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        stored = db.execute(
            "select outcome, category from results where run_id = ?", (run.id,)
        ).fetchall()
    assert sorted(stored) == sorted((r.outcome.value, r.category) for r in run.results)
