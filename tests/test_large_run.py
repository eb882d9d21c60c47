"""A suite of 50,000 tests is recorded whole (its speed is measured in bench/large_run.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from suites import make_project


def test_a_run_of_50000_tests_is_recorded_whole(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"large": {"tests": ["many"], "every": "1h", "timeout": "10m"}},
        suites=("many",),
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        env={**os.environ, "MANY_TESTS": "50000"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["collected"] == 50_000 and run["counts"]["passed"] == 50_000
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        rows = db.execute("select count(distinct nodeid) from results").fetchone()[0]
    assert rows == 50_000
