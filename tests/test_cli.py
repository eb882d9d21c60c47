"""The onwatch command as a user runs it: real subprocesses, a real SQLite file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

RUN_KEYS = {"id", "check", "status", "error", "started_at", "finished_at", "collected", "results"}
RESULT_KEYS = {"nodeid", "outcome", "phase", "duration", "attempt", "exception", "message"}
STATUS_KEYS = {
    "name",
    "last_status",
    "last_run_at",
    "pass_rate_24h",
    "consecutive_failures",
    "next_run_at",
}


def onwatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_project(
        tmp_path,
        {
            "good": {"tests": ["many"], "every": "1m", "env": {"MANY_TESTS": "5"}},
            "bad": {"tests": ["outcomes"], "keyword": "test_fails or test_passes", "every": "1m"},
        },
        suites=("many", "outcomes"),
    )
    return tmp_path


def test_once_json_prints_the_documented_run_records_stores_them_and_exits_1_on_failure(
    project: Path,
) -> None:
    done = onwatch("once", "--json", cwd=project)
    assert done.returncode == 1, done.stderr
    runs = {run["check"]: run for run in json.loads(done.stdout)["runs"]}
    with sqlite3.connect(project / "onwatch.db") as db:
        stored = {row[0]: row[1] for row in db.execute("select id, status from runs")}
        results = db.execute("select count(*) from results").fetchone()[0]
    assert set(stored) == {run["id"] for run in runs.values()}
    assert results == 5 + 2  # every result of every run
    assert set(runs) == {"good", "bad"}
    for run in runs.values():
        assert RUN_KEYS <= set(run)
        for result in run["results"]:
            assert RESULT_KEYS <= set(result)
    assert runs["good"]["status"] == "passed" and runs["good"]["collected"] == 5
    assert runs["bad"]["status"] == "failed"
    outcomes = {r["nodeid"]: r["outcome"] for r in runs["bad"]["results"]}
    assert outcomes == {
        "test_outcomes.py::test_passes": "passed",
        "test_outcomes.py::test_fails": "failed",
    }


def test_once_runs_only_the_named_checks_and_exits_0_when_they_pass(project: Path) -> None:
    done = onwatch("once", "good", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "good: PASSED — 5 passed" in done.stdout
    assert "many/test_many.py::test_trivial[4] passed" in done.stdout
    assert "bad" not in done.stdout


def test_once_quiet_prints_only_failures(project: Path) -> None:
    done = onwatch("once", "--quiet", cwd=project)
    assert done.returncode == 1
    assert "bad: FAILED" in done.stdout
    assert "test_fails failed" in done.stdout and "arithmetic is broken" in done.stdout
    assert "good" not in done.stdout and "test_passes" not in done.stdout
    assert onwatch("once", "--quiet", "good", cwd=project).stdout == ""


def test_an_unknown_check_is_a_usage_error(project: Path) -> None:
    done = onwatch("once", "nope", cwd=project)
    assert done.returncode == 2
    assert "no check named 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_config_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "onwatch.toml").write_text('[checks.a]\ntests = ["."]\nevery = "soon"\n')
    for command in (["validate"], ["once"], ["status"], ["run"]):
        done = onwatch(*command, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith(f"onwatch: {tmp_path / 'onwatch.toml'}:3: checks.a.every:")
        assert "Traceback" not in done.stderr


def test_validate_prints_what_each_check_would_collect(project: Path) -> None:
    done = onwatch("validate", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "good: 5 tests (every 1m, timeout 5m, retries 0)" in done.stdout
    assert "bad: 2 tests" in done.stdout


def test_validate_reports_a_selection_that_collects_nothing(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"empty": {"tests": ["many"], "keyword": "nothing", "every": "1m"}},
        suites=("many",),
    )
    done = onwatch("validate", cwd=tmp_path)
    assert done.returncode == 2
    assert "checks.empty: the selection collected no tests" in done.stderr


def test_validate_collects_with_the_secrets_and_names_one_it_cannot_look_up(
    tmp_path: Path,
) -> None:
    token = "validate-T0ken/123"
    (tmp_path / "tests").mkdir()
    # A conftest that reads its secret at import, as many suites do, and fails with it.
    (tmp_path / "tests" / "conftest.py").write_text(
        "import os\nTOKEN = os.environ['API_TOKEN']\n"
        "if TOKEN.endswith('123'):\n    raise RuntimeError('refused ' + TOKEN)\n"
    )
    (tmp_path / "tests" / "test_api.py").write_text("def test_api():\n    pass\n")
    make_project(
        tmp_path,
        {"api": {"tests": ["tests"], "every": "1m", "secrets": {"API_TOKEN": "env:VALIDATE_T"}}},
    )
    missing = onwatch("validate", cwd=tmp_path)
    assert missing.returncode == 2
    assert "checks.api: secret API_TOKEN: environment variable VALIDATE_T is not set" in (
        missing.stderr
    )
    failing = onwatch("validate", cwd=tmp_path, env={"VALIDATE_T": token})
    assert failing.returncode == 2
    assert "refused [secret:API_TOKEN]" in failing.stderr and token not in failing.stderr
    good = onwatch("validate", cwd=tmp_path, env={"VALIDATE_T": token.replace("123", "456")})
    assert good.returncode == 0, good.stderr
    assert "api: 1 test" in good.stdout


def test_validate_warns_of_a_watch_only_check_that_onwatch_cannot_import(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    # The product's library: installed in the release environments a watch builds, not here.
    (tmp_path / "tests" / "test_lib.py").write_text(
        "import product_only_library\n\ndef test_lib():\n    pass\n"
    )
    (tmp_path / "tests" / "test_api.py").write_text("def test_api():\n    pass\n")
    path = make_project(
        tmp_path,
        {
            "api": {"tests": ["tests/test_api.py"], "every": "1m"},
            "lib": {"tests": ["tests/test_lib.py"], "every": "1h", "enabled": False},
        },
    )
    watch = '\n[watch.deps]\npackages = ["jinja2"]\nchecks = ["lib"]\nindex = "{}"\n'
    path.write_text(path.read_text() + watch.format("http://127.0.0.1:9/simple/"))

    only_watched = onwatch("validate", cwd=tmp_path)
    (tmp_path / "onwatch.toml").write_text(path.read_text().replace("enabled = false", ""))
    scheduled_too = onwatch("validate", cwd=tmp_path)

    assert only_watched.returncode == 0, only_watched.stderr
    assert only_watched.stderr == (
        "onwatch: warning: lib: cannot be collected in onwatch's environment (collection failed"
        " (1 error): tests/test_lib.py: ModuleNotFoundError: No module named"
        " 'product_only_library'); not checked here: only watch deps runs it, in its release"
        " environments\n"
    )
    assert "api: 1 test" in only_watched.stdout and "OK, 2 checks" in only_watched.stdout
    # Scheduled as well, it runs here too: the missing import stays an error, with the way out.
    assert scheduled_too.returncode == 2
    assert "checks.lib: collection failed" in scheduled_too.stderr
    assert "or set enabled = false if only the watch runs it" in scheduled_too.stderr


def test_status_json_shows_each_check_after_runs(project: Path) -> None:
    onwatch("once", cwd=project)
    onwatch("once", "bad", cwd=project)
    done = onwatch("status", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    for check in checks.values():
        assert STATUS_KEYS <= set(check)
    assert checks["good"]["last_status"] == "passed"
    assert checks["good"]["pass_rate_24h"] == 1.0
    assert checks["bad"]["last_status"] == "failed"
    assert checks["bad"]["consecutive_failures"] == 2
    assert checks["bad"]["pass_rate_24h"] == 0.0
    assert checks["good"]["next_run_at"] is not None


def test_status_lists_checks_that_never_ran(project: Path) -> None:
    done = onwatch("status", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "never run" in done.stdout


def test_the_config_is_found_by_path_and_paths_stay_relative_to_it(project: Path) -> None:
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    done = onwatch("-c", str(project / "onwatch.toml"), "once", "good", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (project / "onwatch.db").exists() and not (elsewhere / "onwatch.db").exists()
    after = onwatch("status", "--json", "-c", str(project / "onwatch.toml"), cwd=elsewhere)
    assert after.returncode == 0, after.stderr
    assert [c["name"] for c in json.loads(after.stdout)["checks"]] == ["good", "bad"]


def test_the_config_can_live_in_pyproject(tmp_path: Path) -> None:
    make_project(tmp_path, {}, suites=("many",))
    (tmp_path / "onwatch.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.onwatch.checks.good]\ntests = ["many"]\nevery = "1m"\n'
    )
    done = onwatch("once", cwd=tmp_path, env={"MANY_TESTS": "3"})
    assert done.returncode == 0, done.stderr
    assert "good: PASSED — 3 passed" in done.stdout


def test_a_run_is_spooled_not_lost_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"good": {"tests": ["many"], "every": "1m"}},
        settings={"database": "postgresql://onwatch@127.0.0.1:1/nowhere"},
        suites=("many",),
    )
    done = onwatch("once", "--json", cwd=tmp_path, env={"MANY_TESTS": "2"})
    assert done.returncode == 0, done.stderr
    assert "database unreachable" in done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["recorded"] == "spooled"
    spooled = json.loads((tmp_path / ".onwatch" / "spool" / f"{run['id']}.json").read_text())
    assert len(spooled["results"]) == 2


def test_once_shows_live_progress_and_failures_on_a_terminal(project: Path) -> None:
    import pty

    main, secondary = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "bad"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    ) as process:
        os.close(secondary)
        screen = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            screen += chunk
        process.wait(timeout=60)
    os.close(main)
    text = screen.decode()
    assert "bad 2/2, 1 failed" in text  # tests done of collected, failures so far
    assert "✗ bad: test_outcomes.py::test_fails failed — AssertionError: arithmetic is broken" in (
        text
    )


def test_checks_run_in_parallel_up_to_max_parallel(tmp_path: Path) -> None:
    # Both runs start together when two may run at once: a run lasting a pytest start-up and a
    # short sleep overlaps the other for sure, however loaded the machine.
    checks = {
        name: {"tests": ["slow"], "every": "1m", "env": {"SLOW_SECONDS": "0.3"}}
        for name in ("one", "two")
    }

    def spans(max_parallel: int) -> list[tuple[str, str]]:
        make_project(tmp_path, checks, settings={"max_parallel": max_parallel}, suites=("slow",))
        done = onwatch("once", "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs = json.loads(done.stdout)["runs"]
        return sorted((run["started_at"], run["finished_at"]) for run in runs)

    first, second = spans(2)
    assert second[0] < first[1]  # the second run started before the first ended
    first, second = spans(1)
    assert second[0] >= first[1]


def test_ctrl_c_stops_once_kills_its_tests_and_records_the_run(tmp_path: Path) -> None:
    import signal

    make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1m", "env": {"SLOW_SECONDS": "60"}}},
        suites=("slow",),
    )
    # Started with SIGINT ignored, as a background job or nohup starts it: Ctrl-C still works.
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    ) as process:
        inflight = tmp_path / ".onwatch" / "inflight"
        wait_until(
            lambda: any("test_slow" in p.read_text() for p in inflight.glob("*.events")),
            "the slow test started",
            timeout=30,
        )
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 130, err
    [run] = json.loads(out)["runs"]
    assert run["status"] == "error" and run["error"].startswith("interrupted")
    outcomes = {r["nodeid"]: r["outcome"] for r in run["results"]}
    assert outcomes == {
        "slow/test_slow.py::test_first": "passed",
        "slow/test_slow.py::test_slow": "error",
    }
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        assert db.execute("select status from runs").fetchall() == [("error",)]
