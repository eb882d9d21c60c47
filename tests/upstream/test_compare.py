"""What a new release breaks: failures that the run on the previous release did not have."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from onwatch.errors import BuildError
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.upstream.product import requirement_lines
from onwatch.upstream.watcher import compare

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def run(
    version: str, *failing: str, status: RunStatus = RunStatus.FAILED, error: str | None = None
) -> Run:
    results = tuple(
        TestResult(
            nodeid=f"tests/test_x.py::{name}",
            outcome=Outcome.FAILED if name in failing else Outcome.PASSED,
            phase="call",
            duration=0.1,
            exception="TypeError" if name in failing else None,
            message=f"TypeError: greet() got {len(name)} arguments" if name in failing else None,
        )
        for name in ("test_a", "test_b", "test_c")
    )
    return Run(
        id=f"run-{version}",
        check="greeting",
        status=status if failing or error else RunStatus.PASSED,
        started_at=NOW,
        finished_at=NOW,
        results=results,
        error=error,
        trigger=Trigger.UPSTREAM,
        trigger_detail={"upstream": {"package": "demo-lib", "version": version}},
    )


def test_only_failures_the_previous_release_did_not_have_count() -> None:
    broken = compare(run("1.1", "test_a", "test_b"), run("1.0", "test_a"), "libs", "1.0")
    assert broken is not None
    assert [t.nodeid for t in broken.tests] == ["tests/test_x.py::test_b"]
    assert broken.summary == "demo-lib 1.1 breaks: 1 test (greeting)"
    assert (broken.package, broken.version, broken.previous) == ("demo-lib", "1.1", "1.0")


def test_the_same_failures_as_before_break_nothing() -> None:
    assert compare(run("1.1", "test_a"), run("1.0", "test_a"), "libs", "1.0") is None


def test_a_run_that_errors_with_the_new_release_is_a_breakage_naming_the_error() -> None:
    errored = run("1.1", status=RunStatus.ERROR, error="ImportError: cannot import name 'greet'")
    broken = compare(errored, run("1.0"), "libs", "1.0")
    assert broken is not None and broken.tests == ()
    assert broken.summary == "demo-lib 1.1 breaks: the run (greeting)"
    assert broken.error == "ImportError: cannot import name 'greet'"


def test_fingerprints_ignore_what_changes_from_run_to_run() -> None:
    first = compare(run("1.1", "test_a"), None, "libs", "1.0")
    second = compare(run("1.2", "test_a"), None, "libs", "1.1")
    assert first is not None and second is not None
    assert first.tests[0].fingerprint == second.tests[0].fingerprint


def test_requirements_come_from_a_file_or_a_pyprojects_extras(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "suite"\ndependencies = ["httpx>=0.27"]\n'
        '[project.optional-dependencies]\ntest = ["pytest-timeout"]\nother = ["rich"]\n'
    )
    assert requirement_lines(None, tmp_path) is None  # none given: the installed set
    assert requirement_lines("requirements.txt", tmp_path) == ["requests"]
    assert requirement_lines("pyproject.toml[test]", tmp_path) == ["httpx>=0.27", "pytest-timeout"]
    with pytest.raises(BuildError, match="no optional-dependencies extra 'docs'"):
        requirement_lines("pyproject.toml[docs]", tmp_path)
