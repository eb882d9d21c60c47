"""The OpenAPI document of /api/v1 holds for a live server, as schemathesis generates calls to it.

schemathesis runs from a venv of its own (``make test`` makes ``.venv-schemathesis``): installed
next to onwatch, its hypothesis and pytest plugins would slow every pytest subprocess the other
tests start. ``ONWATCH_SCHEMATHESIS`` names another copy of the CLI.

Two runs, each repeatable (a fixed seed, no example database), together under a minute:

- anonymous on ``open_site`` (read only), the coverage phase: boundary and wrong values of every
  parameter and body field, so validation answers as documented;
- admin on a private closed site, random calls and chains of calls (fuzzing, stateful). Admin
  calls change things: a silence of every check for a year would reach every other test of the
  shared sites. Triggered runs are harmless here: the test trigger only records names.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from needs import unavailable
from web.conftest import ADMIN_TOKEN, Served, make_config, seed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
SEED = 20240601
TIMEOUT = 150  # seconds, a run; each takes about 20 s


def schemathesis() -> str:
    """Return the schemathesis CLI to run, skipping (failing on CI) when there is none."""
    cli = os.environ.get("ONWATCH_SCHEMATHESIS") or str(
        ROOT / ".venv-schemathesis" / "bin" / "schemathesis"
    )
    if not os.access(cli, os.X_OK):
        unavailable(
            f"schemathesis not found at {cli}: `make test` installs it into .venv-schemathesis"
        )
    return cli


def run_schemathesis(site: Served, workdir: Path, *options: str) -> str:
    """Run schemathesis against ``site``'s API; fail showing its report unless every check held."""
    command = [
        schemathesis(),
        "run",
        f"{site.url}/api/v1/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        # More workers race inside schemathesis 4.32 (KeyError from its own source cache).
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        *options,
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    try:
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran over {TIMEOUT} s:\n{exc.stdout}\n{exc.stderr}")
    report = f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, report
    return done.stdout


def assert_every_operation_tested(report: str) -> None:
    found = re.search(r"Operations:\s+(\d+) selected / (\d+) total", report)
    assert found, report
    assert found.group(1) == found.group(2) != "0", report


@pytest.fixture(scope="module")
def private_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A seeded site on a 'public' address, whose database nobody else reads."""
    history = seed(
        make_config(tmp_path_factory.mktemp("schemathesis-site")),
        datetime.now(UTC).replace(microsecond=0),
    )
    served = Served(history, listen="0.0.0.0:8787")
    yield served
    served.close()


def test_the_api_answers_anonymous_readers_as_its_openapi_document_says(
    open_site: Served, tmp_path: Path
) -> None:
    report = run_schemathesis(open_site, tmp_path, "--phases", "coverage")
    assert_every_operation_tested(report)


def test_the_api_answers_an_admin_as_its_openapi_document_says(
    private_site: Served, tmp_path: Path
) -> None:
    report = run_schemathesis(
        private_site,
        tmp_path,
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--phases",
        "fuzzing,stateful",
        "--max-examples",
        "15",
    )
    assert_every_operation_tested(report)
    # Had the token not worked, every answer would be a (documented) 401 and all checks pass.
    assert "Authentication failed" not in report, report
    assert set(private_site.triggered) <= {"api", "web", "idle"}
