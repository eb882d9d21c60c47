"""The Prometheus files in contrib/prometheus, checked and unit-tested by promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from needs import program

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
RULES = "contrib/prometheus/onwatch-rules.yml"
RULE_TESTS = "contrib/prometheus/onwatch-rules.test.yml"
SCRAPE_CONFIG = "contrib/prometheus/prometheus.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return program("promtool", "prometheus")


@pytest.mark.parametrize(
    "command",
    [
        ["check", "rules", RULES],
        ["test", "rules", RULE_TESTS],
        ["check", "config", SCRAPE_CONFIG],
    ],
    ids=["check-rules", "test-rules", "check-scrape-config"],
)
def test_promtool_accepts_the_rules_and_the_example_config(
    promtool: str, command: list[str]
) -> None:
    done = subprocess.run(
        [promtool, *command], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
