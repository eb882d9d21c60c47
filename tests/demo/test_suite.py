"""The bundled monitoring suite, run by a real pytest against a real demo app."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import onwatch.demo
from onwatch.demo.app import DemoServer, serve

pytestmark = pytest.mark.e2e

SUITE = Path(onwatch.demo.__file__).parent / "suite"
AREAS = ("login", "settings", "social", "chat", "money")
# The API checks; the browser journeys have tests of their own (test_journeys.py). A test's own
# -m comes later on the command line, and pytest keeps the last one.
API_CHECKS = "not journey"


@dataclass
class Outcome:
    """What one run of the suite reported."""

    exit_code: int
    output: str
    passed: list[str]
    failed: list[str]
    errors: list[str]
    properties: dict[str, str]


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with serve(port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def healthy(server: DemoServer) -> Iterator[None]:
    yield
    server.faults.reset()


def run_suite(tmp_path: Path, base_url: str | None, *args: str) -> Outcome:
    """Run the suite the way onwatch does: a separate pytest, configured by its own ini."""
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.xml"
    env = {key: value for key, value in os.environ.items() if key != "BASE_URL"}
    if base_url is not None:
        env["BASE_URL"] = base_url
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "-m",
            API_CHECKS,
            *args,
            str(SUITE),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    outcome = Outcome(result.returncode, result.stdout + result.stderr, [], [], [], {})
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None:
            outcome.failed.append(test_id)
        elif case.find("error") is not None:
            outcome.errors.append(test_id)
        else:
            outcome.passed.append(test_id)
        for prop in case.iter("property"):
            outcome.properties[f"{test_id}:{prop.get('name')}"] = prop.get("value", "")
    return outcome


def modules(test_ids: list[str]) -> set[str]:
    return {test_id.split("::")[0] for test_id in test_ids}


def test_every_check_passes_against_a_healthy_app_run_after_run(
    server: DemoServer, tmp_path: Path
) -> None:
    first = run_suite(tmp_path, server.url)
    second = run_suite(tmp_path, server.url)

    for outcome in (first, second):
        assert outcome.exit_code == 0, outcome.output
        assert outcome.failed == outcome.errors == []
        assert modules(outcome.passed) == {f"test_{area}" for area in AREAS}
        assert 12 <= len(outcome.passed) <= 25
    latencies = [value for key, value in first.properties.items() if "deposit_latency_ms" in key]
    assert latencies and all(float(value) >= 0 for value in latencies)


@pytest.mark.parametrize(
    ("fault", "module"),
    [
        ("settings", "test_settings"),
        ("follow", "test_social"),
        ("chat", "test_chat"),
        ("deposit", "test_money"),
    ],
)
def test_a_broken_feature_fails_only_its_own_checks(
    server: DemoServer, tmp_path: Path, fault: str, module: str
) -> None:
    server.faults.set(fault, "broken")

    outcome = run_suite(tmp_path, server.url)

    assert outcome.exit_code == 1, outcome.output
    assert outcome.failed, outcome.output
    assert modules(outcome.failed) == {module}
    assert outcome.errors == []


def test_broken_login_fails_the_login_check_and_stops_the_others(
    server: DemoServer, tmp_path: Path
) -> None:
    server.faults.set("login", "broken")

    outcome = run_suite(tmp_path, server.url)

    assert outcome.exit_code == 1
    assert outcome.failed == ["test_login::test_the_right_password_gets_a_token"]
    assert outcome.errors and "test_login" not in modules(outcome.errors)
    assert "cannot log in as alice: HTTP 401" in outcome.output


def test_each_area_marker_selects_only_that_area(server: DemoServer, tmp_path: Path) -> None:
    outcome = run_suite(tmp_path, server.url, "-m", "chat or money")

    assert outcome.exit_code == 0, outcome.output
    assert modules(outcome.passed) == {"test_chat", "test_money"}


def test_every_check_carries_the_monitor_marker_and_an_area(
    server: DemoServer, tmp_path: Path
) -> None:
    # A journey crosses areas: it carries monitor and journey instead.
    unmarked = f"not monitor or not ({' or '.join((*AREAS, 'journey'))})"

    outcome = run_suite(tmp_path, server.url, "-m", unmarked)

    # pytest exits 5 when the selection is empty: every check has both markers.
    assert outcome.exit_code == 5, outcome.output


def test_without_base_url_the_suite_says_how_to_point_it(tmp_path: Path) -> None:
    outcome = run_suite(tmp_path, None, "-x")

    assert outcome.exit_code == 1
    assert "BASE_URL is not set" in outcome.output
