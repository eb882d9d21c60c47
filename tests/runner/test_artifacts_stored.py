"""From a failing browser test to files in the artifact store, as `onwatch once` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import require_chromium_and_driver
from suites import make_project

pytestmark = pytest.mark.e2e


def test_once_stores_a_failing_journeys_files_by_content_and_lists_them(tmp_path: Path) -> None:
    require_chromium_and_driver()
    make_project(
        tmp_path,
        {
            "journeys": {
                "tests": ["browser/test_journeys.py"],
                "keyword": "passing_journey or failing_journey",
                "every": "5m",
                "timeout": "60s",
                "artifacts": "on-failure",
            }
        },
        suites=("browser",),
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )

    assert done.returncode == 1, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    results = {r["nodeid"].split("::")[-1]: r for r in run["results"]}
    assert results["test_passing_journey"]["artifacts"] == []
    failing = results["test_failing_journey"]
    assert failing["outcome"] == "failed"
    kinds = {a["kind"]: a for a in failing["artifacts"]}
    assert set(kinds) == {"screenshot", "html", "console"}
    shot = kinds["screenshot"]
    stored = tmp_path / "artifacts" / shot["sha256"][:2] / shot["sha256"]
    assert stored.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert stored.stat().st_size == shot["size"] > 1000
    assert shot["url"] == f"/artifacts/{shot['sha256']}/screenshot.png"
    # Nothing is left where the test process wrote the files.
    assert not list((tmp_path / ".onwatch" / "inflight").glob("*.artifacts"))
