"""Artifacts of browser tests, captured by the plugin inside real pytest processes and Chromium.

Each module fixture runs the browser fixture suite once, as onwatch does: ``python -m pytest``
with the plugin's environment, then reads the events file and the files it lists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from browser import require_chromium_and_driver
from onwatch.runner import (
    ARTIFACTS_DIR_ENV,
    ARTIFACTS_MODE_ENV,
    ATTEMPT_ENV,
    EVENTS_ENV,
    SCREENSHOTS_ENV,
    SECRETS_ENV,
    TRACING_ENV,
)
from onwatch.runner.parse import parse_events
from onwatch.steps import step
from suites import FIXTURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class SuiteRun:
    """What one pytest process over the browser suite left: its results and its files."""

    results: dict[str, dict[str, Any]]
    artifacts_dir: Path
    modules: list[str]  # the onwatch modules the pytest process imported
    output: str

    def result(self, name: str) -> dict[str, Any]:
        assert name in self.results, self.output
        return self.results[name]

    def files(self, name: str) -> dict[str, Path]:
        """Return the artifacts of test ``name`` by kind, checking what the event says of them."""
        found = {}
        for artifact in self.result(name)["artifacts"]:
            path = Path(artifact["path"])
            assert path.is_absolute() and path.parent.parent == self.artifacts_dir
            assert path.name == artifact["name"]
            assert path.stat().st_size == artifact["size"]
            found[artifact["kind"]] = path
        return found


def run_suite(
    root: Path,
    *args: str,
    mode: str | None,
    tracing: bool = False,
    extra: dict[str, str] | None = None,
) -> SuiteRun:
    require_chromium_and_driver()
    suite = root / "browser"
    shutil.copytree(FIXTURES / "browser", suite)
    events, artifacts, probe = root / "events", root / "artifacts", root / "modules"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWATCH_")}
    env.update(
        {
            EVENTS_ENV: str(events),
            ATTEMPT_ENV: "1",
            ARTIFACTS_DIR_ENV: str(artifacts),
            TRACING_ENV: "1" if tracing else "",
            "MODULES_PROBE": str(probe),
        }
    )
    if mode is not None:
        env[ARTIFACTS_MODE_ENV] = mode
    env.update(extra or {})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = {
        e["nodeid"].split("::")[-1]: e
        for e in parse_events(events.read_bytes())
        if e.get("event") == "result"
    }
    modules = probe.read_text().split() if probe.exists() else []
    return SuiteRun(results, artifacts, modules, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def on_failure(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    # The default mode (unset), with traces: the run a failing check makes.
    root = tmp_path_factory.mktemp("on-failure")
    return run_suite(root, "test_journeys.py", "test_selenium.py", mode=None, tracing=True)


@pytest.fixture(scope="module")
def masked(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    # Two "secrets" the failing journey's page shows and logs; no screenshots, traces on.
    root = tmp_path_factory.mktemp("masked")
    secrets = {"PAGE_SECRET": "Payment form unavailable", "CONSOLE_SECRET": "hello from the page"}
    extra = {**secrets, SECRETS_ENV: ",".join(secrets), SCREENSHOTS_ENV: "0"}
    return run_suite(
        root, "test_journeys.py", "-k", "failing", mode=None, tracing=True, extra=extra
    )


@pytest.mark.e2e
def test_captured_text_is_masked_before_it_is_written(masked: SuiteRun) -> None:
    files = masked.files("test_failing_journey")
    assert "screenshot" not in files  # pictures cannot be masked: turned off
    html = files["html"].read_text()
    assert "[secret:PAGE_SECRET]" in html and "Payment form unavailable" not in html
    console = files["console"].read_text()
    assert "[log] [secret:CONSOLE_SECRET]" in console.splitlines()
    with zipfile.ZipFile(files["trace"]) as trace:
        members = [trace.read(name) for name in trace.namelist()]
    assert any(b"[secret:PAGE_SECRET]" in member for member in members)
    for member in members:
        assert b"Payment form unavailable" not in member and b"hello from the page" not in member


@pytest.mark.e2e
def test_a_failing_journey_keeps_a_full_page_screenshot(on_failure: SuiteRun) -> None:
    assert on_failure.result("test_failing_journey")["outcome"] == "failed"
    screenshot = on_failure.files("test_failing_journey")["screenshot"].read_bytes()
    assert screenshot.startswith(PNG_MAGIC)
    assert 2_000 < len(screenshot) < 2_000_000


@pytest.mark.e2e
def test_a_failing_journey_keeps_the_html_of_the_page_it_ended_on(on_failure: SuiteRun) -> None:
    html = on_failure.files("test_failing_journey")["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "Payment form unavailable" in html


@pytest.mark.e2e
def test_a_failing_journey_keeps_its_console_and_uncaught_errors(on_failure: SuiteRun) -> None:
    lines = on_failure.files("test_failing_journey")["console"].read_text().splitlines()
    assert "[log] hello from the page" in lines
    assert "[pageerror] Error: the basket exploded" in lines


@pytest.mark.e2e
def test_a_failing_journey_keeps_its_playwright_trace(on_failure: SuiteRun) -> None:
    trace = on_failure.files("test_failing_journey")["trace"]
    assert trace.name == "trace.zip"
    assert zipfile.is_zipfile(trace)
    assert any(name.endswith(".trace") for name in zipfile.ZipFile(trace).namelist())


@pytest.mark.e2e
def test_artifacts_have_short_names_in_a_folder_per_test_and_attempt(on_failure: SuiteRun) -> None:
    files = on_failure.files("test_failing_journey")
    assert {kind: path.name for kind, path in files.items()} == {
        "screenshot": "screenshot.png",
        "html": "page.html",
        "console": "console.log",
        "trace": "trace.zip",
    }
    assert files["html"].parent.name == "test_journeys.py_test_failing_journey-a1"
    assert "artifact_errors" not in on_failure.result("test_failing_journey")


@pytest.mark.e2e
def test_a_passing_journey_keeps_nothing_when_only_failures_are_kept(on_failure: SuiteRun) -> None:
    assert on_failure.result("test_passing_journey")["outcome"] == "passed"
    assert on_failure.result("test_passing_journey")["artifacts"] == []
    assert not list(on_failure.artifacts_dir.glob("*test_passing_journey*"))


@pytest.mark.e2e
def test_a_failing_selenium_test_keeps_screenshot_html_and_console(on_failure: SuiteRun) -> None:
    assert on_failure.result("test_selenium_journey_fails")["outcome"] == "failed"
    files = on_failure.files("test_selenium_journey_fails")
    assert set(files) == {"screenshot", "html", "console"}
    assert files["screenshot"].read_bytes().startswith(PNG_MAGIC)
    assert "Your cart is empty" in files["html"].read_text()
    console = files["console"].read_text()
    assert "hello from the page" in console
    assert "Uncaught Error: the basket exploded" in console


@pytest.mark.e2e
def test_a_capture_that_fails_leaves_the_outcome_and_says_why(on_failure: SuiteRun) -> None:
    result = on_failure.result("test_journey_that_closes_its_page")
    assert result["outcome"] == "failed"
    assert result["message"] == "AssertionError: the page went away"
    errors = result["artifact_errors"]
    assert [e.split(":")[0] for e in errors] == ["screenshot", "html"]
    assert all("closed" in error for error in errors)
    # What did not need the page is still kept.
    assert set(on_failure.files("test_journey_that_closes_its_page")) == {"console", "trace"}


@pytest.mark.e2e
def test_a_failed_setup_keeps_what_the_page_shows(on_failure: SuiteRun) -> None:
    # The page is only reachable through the fixture that failed: it is not among funcargs.
    result = on_failure.result("test_journey_whose_setup_fails")
    assert (result["outcome"], result["phase"]) == ("error", "setup")
    files = on_failure.files("test_journey_whose_setup_fails")
    assert set(files) == {"screenshot", "html"}  # the console is watched from the call on
    assert "Your cart is empty" in files["html"].read_text()


@pytest.mark.e2e
def test_a_trace_someone_else_started_is_left_to_them(on_failure: SuiteRun) -> None:
    result = on_failure.result("test_journey_traced_by_itself")
    assert result["outcome"] == "failed"
    assert set(on_failure.files("test_journey_traced_by_itself")) == {
        "screenshot",
        "html",
        "console",
    }
    assert "artifact_errors" not in result


@pytest.mark.e2e
def test_steps_record_their_name_time_and_success_as_properties(on_failure: SuiteRun) -> None:
    result = on_failure.result("test_timed_steps")
    assert result["outcome"] == "passed"  # the step re-raised; pytest.raises caught it
    (first_key, first), (second_key, second) = result["properties"]
    assert first_key == second_key == "step"
    assert first["name"] == "open the shop" and first["ok"] is True
    assert 0.05 <= first["seconds"] < 5
    assert second["name"] == "pay" and second["ok"] is False
    assert second["seconds"] >= 0


@pytest.mark.e2e
def test_a_test_without_a_browser_has_an_empty_artifact_list(on_failure: SuiteRun) -> None:
    assert on_failure.result("test_timed_steps")["artifacts"] == []


@pytest.mark.e2e
def test_always_keeps_the_artifacts_of_a_passing_journey(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "test_journeys.py", "-k", "test_passing_journey", mode="always")
    assert run.result("test_passing_journey")["outcome"] == "passed"
    files = run.files("test_passing_journey")
    assert set(files) == {"screenshot", "html", "console"}  # no trace unless tracing is on
    assert "Your cart is empty" in files["html"].read_text()
    assert "[log] hello from the page" in files["console"].read_text()


@pytest.mark.e2e
def test_off_captures_nothing_and_never_imports_the_capture_code(tmp_path: Path) -> None:
    run = run_suite(
        tmp_path, "test_journeys.py", "-k", "test_failing_journey", mode="off", tracing=True
    )
    assert run.result("test_failing_journey")["outcome"] == "failed"
    assert run.result("test_failing_journey")["artifacts"] == []
    assert not run.artifacts_dir.exists()
    assert "onwatch.runner.plugin" in run.modules
    assert "onwatch.runner.capture" not in run.modules


def test_step_outside_onwatch_only_runs_the_block(request: pytest.FixtureRequest) -> None:
    ran = []
    with step("plain pytest"):
        ran.append(True)
    with pytest.raises(KeyError):
        with step("plain pytest, failing"):
            raise KeyError("x")
    assert ran == [True]
    assert request.node.user_properties == []
