"""Hostile configuration files given to the real ``onwatch`` command: config errors, not crashes.

Each test writes a file an operator could write by mistake (an interval of a millisecond or of
two billion years, a file saved as Latin-1, a file with problems of every kind) and runs the
commands on it as a user would, in a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from daemon import Daemon
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e


def line_of(path: Path, text: str) -> int:
    """Return the number of the first line of ``path`` that starts with ``text``."""
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def onwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=cwd,
        env={**os.environ, "ONWATCH_CACHE_DIR": str(cwd / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("every", "says"),
    [
        ("1ms", "'1ms' is shorter than 1s; write a duration from 1s to 365d"),
        ("99999999999w", "'99999999999w' is longer than 365d; write a duration from 1s to 365d"),
    ],
)
def test_an_interval_out_of_range_stops_validate_once_and_run_with_exit_2(
    tmp_path: Path, every: str, says: str
) -> None:
    """Fault: every = "1ms" (a skipped slot a millisecond) or "99999999999w" (date overflow)."""
    config = make_project(tmp_path, {"api": {"tests": ["many"], "every": every}}, suites=("many",))
    for command in ("validate", "once", "run"):
        done = onwatch(command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        line = line_of(config, "every = ")
        assert done.stderr == f"onwatch: {config}:{line}: checks.api.every: {says}\n", command


def test_a_config_cached_as_valid_by_an_older_onwatch_is_checked_again(tmp_path: Path) -> None:
    """Fault: a cache entry written when "1ms" was still accepted, read by a bounded onwatch."""
    config = make_project(tmp_path, {"api": {"tests": ["many"], "every": "1m"}}, suites=("many",))
    assert onwatch("validate", cwd=tmp_path).returncode == 0
    [cached] = (tmp_path / "cache").rglob("*.json")
    # What an older onwatch would have cached for every = "1ms": the same key, a tiny interval.
    config.write_text(config.read_text().replace('every = "1m"', 'every = "1ms"'))
    stale = cached.read_text().replace('"every": 60.0', '"every": 0.001')
    cached.write_text(stale)
    done = onwatch("validate", cwd=tmp_path)
    assert done.returncode == 2 and "'1ms' is shorter than 1s" in done.stderr


def test_the_longest_interval_and_timeout_run_under_the_daemon(tmp_path: Path) -> None:
    """Fault: the largest values allowed (365 d, 7 d) reach the scheduler's date arithmetic."""
    config = make_project(
        tmp_path,
        {"yearly": {"tests": ["many"], "every": "365d", "timeout": "7d", "grace": "365d"}},
        settings={"heartbeat_every": "365d", "drain_timeout": "7d", "max_jitter": "3650d"},
        suites=("many",),
    )
    once = onwatch("once", "--json", cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    with Daemon(config) as daemon:
        url = daemon.served_url()
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 200)
        [check] = httpx.get(f"{url}/api/v1/checks", timeout=10).json()["checks"]
        code = daemon.stop(signal.SIGTERM)
    assert check["name"] == "yearly" and check["last_status"] == "passed"
    next_run = datetime.fromisoformat(check["next_run_at"])
    assert next_run - datetime.now(UTC) <= timedelta(days=365)
    assert code == 0
    assert "Traceback" not in daemon.log_path.read_text()


def test_a_config_that_is_not_utf8_is_a_config_error_naming_the_byte(tmp_path: Path) -> None:
    """Fault: onwatch.toml saved as Latin-1 (a comment with an accented letter)."""
    make_project(tmp_path, {"api": {"tests": ["many"], "every": "1m"}}, suites=("many",))
    path = tmp_path / "onwatch.toml"
    path.write_bytes(b"# d\xe9ploiement\n" + path.read_bytes())
    for command in ("validate", "once", "status", "run"):
        done = onwatch(command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"onwatch: {path}:1: not UTF-8 text"), done.stderr
        assert "byte 0xe9 at offset 3, line 1, column 4" in done.stderr
        assert "Traceback" not in done.stderr


def test_validate_reports_schema_reference_and_path_problems_in_one_pass(tmp_path: Path) -> None:
    """Fault: a file with problems of every kind; the user must see them all the first time."""
    make_project(tmp_path, {}, suites=("many",))
    path = tmp_path / "onwatch.toml"
    first = len(path.read_text().splitlines()) + 1  # where the lines below start
    path.write_text(
        path.read_text()
        + 'notify = ["pager"]\n'
        + '\n[checks.api]\ntests = ["many", "gone/"]\nevery = "1ms"\nnotify = ["mail"]\n'
        + '\n[checks.web]\ntests = ["many"]\nevery = "1m"\nretries = 99\n'
        + '\n[watch.django]\npackages = ["django"]\nchecks = ["api", "nightly"]\n'
        + 'requirements = "requirements.txt"\nevery = "1ms"\n'
    )
    done = onwatch("validate", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    where = [line.removeprefix(f"onwatch: {path}:").split(": ")[:2] for line in lines]
    # Line numbers counted from the first line written above.
    assert where == [
        [str(first + n), key]
        for n, key in [
            (0, "onwatch.notify"),
            (3, "checks.api.tests"),
            (4, "checks.api.every"),
            (5, "checks.api.notify"),
            (10, "checks.web.retries"),
            (14, "watch.django.checks"),
            (15, "watch.django.requirements"),
            (16, "watch.django.every"),
        ]
    ], done.stderr
    print(f"problems reported by the first validate: {len(lines)} of 8")


def test_validate_collects_every_check_and_names_each_line(tmp_path: Path) -> None:
    """Fault: two checks whose selections collect nothing; both come in one run, with lines."""
    config = make_project(
        tmp_path,
        {
            "first": {"tests": ["many"], "keyword": "nothing", "every": "1m"},
            "second": {"tests": ["many"], "keyword": "none_either", "every": "1m"},
        },
        suites=("many",),
    )
    done = onwatch("validate", cwd=tmp_path)
    assert done.returncode == 2
    for name in ("first", "second"):
        line = line_of(config, f"[checks.{name}]")
        said = f"onwatch: {config}:{line}: checks.{name}: the selection collected no tests"
        assert said in done.stderr
