"""A team's pytest-playwright suite, unchanged, under onwatch and against Debian's Chromium.

pytest-playwright lives in its own folder (``make test`` installs it into .pytest-playwright),
put on the PYTHONPATH of onwatch's subprocess only: installed in .venv, its plugin would load
into every pytest process the other tests start. ``playwright install`` cannot download a
browser here, so a test that passes proves onwatch's launch override made it use the system one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import chromium_path
from needs import unavailable
from onwatch.config import BROWSER_FIX, load_config
from onwatch.model import RunStatus
from onwatch.runner.execute import Runner
from suites import make_project

PWT_DIR = Path(__file__).parent.parent.parent / ".pytest-playwright"
CHECK = {"tests": ["pwplugin"], "every": "5m", "timeout": "90s", "browser": True}


@pytest.fixture
def pytest_playwright() -> Path:
    """Return the folder pytest-playwright is installed in; skip without it, fail under CI."""
    if not (PWT_DIR / "pytest_playwright").is_dir():
        unavailable(f"pytest-playwright is not installed in {PWT_DIR}: run `make test`")
    return PWT_DIR


def once(project: Path, pwt_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PYTHONPATH": str(pwt_dir)},
    )


@pytest.mark.e2e
def test_its_page_fixture_drives_the_system_chromium_and_failures_keep_a_screenshot(
    tmp_path: Path, pytest_playwright: Path
) -> None:
    chromium_path()
    make_project(tmp_path, {"status": CHECK}, suites=("pwplugin",))

    done = once(tmp_path, pytest_playwright)

    assert done.returncode == 1, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "failed" and run["error"] is None
    results = {r["nodeid"].split("::")[-1]: r for r in run["results"]}
    # pytest-playwright parametrises each test by browser: the node ids say it ran Chromium.
    passing = results["test_heading[chromium]"]
    assert passing["outcome"] == "passed", passing["message"]
    failing = results["test_heading_is_wrong[chromium]"]
    assert failing["outcome"] == "failed"
    assert "Everything is down" in failing["message"]
    assert "screenshot" in {a["kind"] for a in failing["artifacts"]}


@pytest.mark.e2e
def test_a_configured_chromium_that_does_not_exist_is_a_config_error(
    tmp_path: Path, pytest_playwright: Path
) -> None:
    config = make_project(tmp_path, {"status": CHECK}, suites=("pwplugin",))
    with config.open("a") as handle:
        handle.write('\n[browser]\nexecutable = "/nonexistent"\n')
    line = config.read_text().splitlines().index('executable = "/nonexistent"') + 1

    done = once(tmp_path, pytest_playwright)

    assert done.returncode == 2
    assert done.stderr.startswith(f"onwatch: {config}:{line}: browser.executable: ")
    assert "'/nonexistent' does not exist" in done.stderr
    assert BROWSER_FIX in done.stderr
    assert "Traceback" not in done.stderr


def test_a_browser_check_without_chromium_is_a_run_error_that_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_project(tmp_path, {"status": CHECK}, suites=("pwplugin",))
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    runner = Runner(load_config(config))

    run = runner.execute("status", runner.config.checks["status"])

    assert run.status is RunStatus.ERROR
    assert run.error is not None and BROWSER_FIX in run.error
    assert "no Chromium on PATH" in run.error
    assert run.results == ()
