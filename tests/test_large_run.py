"""A run of 5,000 real tests is recorded whole: every result, counts exact, nothing dropped.

This end-to-end test runs ``onwatch once`` on 5,000 tests through pytest, which proves the
path from pytest's events to the database at a size where batching and streaming matter. The
50,000-result scale is covered where it costs no pytest run: tests/store/test_sql.py saves a
run of 50,000 results whole, and bench/large_run.py runs 50,000 tests and measures the overhead.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from suites import make_project

pytestmark = pytest.mark.e2e

TESTS = 5_000


def test_a_run_of_5000_tests_is_recorded_whole(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"large": {"tests": ["many"], "every": "1h", "timeout": "10m"}},
        suites=("many",),
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        env={**os.environ, "MANY_TESTS": str(TESTS)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["collected"] == TESTS and run["counts"]["passed"] == TESTS
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        rows, tests = db.execute("select count(*), count(distinct nodeid) from results").fetchone()
    assert tests == TESTS
    assert rows == TESTS  # one row per test: none dropped, none twice
