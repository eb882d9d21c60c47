"""Looking secrets up from env:, file: and cmd: references, and what is said when it fails."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from onwatch.config import load_config
from onwatch.errors import ConfigError, SecretError
from onwatch.secrets import resolve
from suites import make_project


def problems_of(references: dict[str, str], base: Path, **environ: str) -> list[str]:
    with pytest.raises(SecretError) as caught:
        resolve(references, base, environ)
    return caught.value.problems


def test_it_reads_a_variable_of_onwatchs_environment(tmp_path: Path) -> None:
    found = resolve({"API_TOKEN": "env:PROD_API_TOKEN"}, tmp_path, {"PROD_API_TOKEN": "s3cr3t-v"})
    assert found == {"API_TOKEN": "s3cr3t-v"}


def test_it_reads_a_file_relative_to_the_config_folder_without_its_final_newline(
    tmp_path: Path,
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db").write_text("p4ssw0rd-db\n")
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----"
    (tmp_path / "key.pem").write_text(key + "\n\n")
    found = resolve({"DB_PASS": "file:secrets/db", "KEY": "file:key.pem"}, tmp_path, {})
    # One final newline only: a multi-line secret keeps its other lines.
    assert found == {"DB_PASS": "p4ssw0rd-db", "KEY": key + "\n"}


@pytest.mark.e2e
def test_it_runs_a_command_without_a_shell_in_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("from-a-file-by-cat\n")
    found = resolve(
        {
            "VAULT": "cmd:printf '%s\\n' 'v4ult token; $(not run)'",
            "CAT": "cmd:cat token.txt",
        },
        tmp_path,
        {},
    )
    assert found == {"VAULT": "v4ult token; $(not run)", "CAT": "from-a-file-by-cat"}


def test_a_missing_variable_is_named(tmp_path: Path) -> None:
    assert problems_of({"API_TOKEN": "env:PROD_API_TOKEN"}, tmp_path) == [
        "secret API_TOKEN: environment variable PROD_API_TOKEN is not set for onwatch"
    ]


def test_a_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1").write_bytes(b"caf\xe9-password")
    found = problems_of({"A": "file:missing", "B": "file:folder", "C": "file:latin1"}, tmp_path)
    assert found == [
        f"secret A: cannot read {tmp_path / 'missing'}: No such file or directory",
        f"secret B: cannot read {tmp_path / 'folder'}: Is a directory",
        f"secret C: cannot read {tmp_path / 'latin1'}: UnicodeDecodeError",
    ]


@pytest.mark.e2e
def test_a_failing_command_is_named_with_its_status_and_last_error_line(tmp_path: Path) -> None:
    failing = "cmd:sh -c 'echo connecting >&2; echo \"vault: permission denied\" >&2; exit 3'"
    found = problems_of({"VAULT": failing, "OTHER": "cmd:no-such-vault-cli get x"}, tmp_path)
    assert found == [
        "secret VAULT: sh exited with status 3: vault: permission denied",
        "secret OTHER: no-such-vault-cli: command not found",
    ]


def test_a_secret_shorter_than_six_characters_is_refused(tmp_path: Path) -> None:
    [problem] = problems_of({"PIN": "env:PIN"}, tmp_path, PIN="12345")
    assert problem.startswith("secret PIN has 5 characters; onwatch only takes secrets of 6")
    assert "12345" not in problem


def test_every_secret_that_fails_is_named_at_once(tmp_path: Path) -> None:
    found = problems_of(
        {"A": "env:NOPE", "B": "env:OK", "C": "file:nope"}, tmp_path, OK="fine-value"
    )
    assert [p.split(":")[0] for p in found] == ["secret A", "secret C"]


@pytest.mark.e2e
def test_once_with_a_missing_secret_records_a_run_error_and_runs_no_test(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {
            "api": {
                "tests": ["many"],
                "every": "5m",
                "env": {"MANY_TESTS": "2"},
                "secrets": {"API_TOKEN": "env:PROD_API_TOKEN"},
            }
        },
        suites=("many",),
    )
    environ = {k: v for k, v in os.environ.items() if k != "PROD_API_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "error" and run["results"] == [] and not run["collected"]
    assert run["error"] == (
        "onwatch could not start the run: secret API_TOKEN: environment variable "
        "PROD_API_TOKEN is not set for onwatch"
    )
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        assert db.execute("select status, error from runs").fetchall() == [("error", run["error"])]


@pytest.mark.e2e
def test_a_secret_that_pytest_cuts_short_is_masked_on_both_sides_of_the_cut(
    tmp_path: Path,
) -> None:
    # pytest shortens long values in assertion messages and locals ("'Account Pr0d...K3y='"):
    # the pieces on either side of the "..." are masked too.
    token = "Pr0d/T0ken+K3y=abcdef"
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_long.py").write_text(
        "import os\n"
        "def test_long():\n"
        "    token = os.environ['API_TOKEN']\n"
        "    account = 'Account ' + token + ' ' + 'x' * 300\n"
        "    assert account == 'nope'\n"
    )
    make_project(
        tmp_path,
        {
            "api": {
                "tests": ["tests"],
                "every": "5m",
                "pytest_args": ["-l"],
                "secrets": {"API_TOKEN": "env:LONG_TOKEN"},
            }
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        env={**os.environ, "LONG_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    [result] = json.loads(done.stdout)["runs"][0]["results"]
    text = result["message"] + result["traceback"]
    assert "'Account [secret:API_TOKEN]" in text and "[secret:API_TOKEN]..." in text
    assert "Pr0d" not in done.stdout and "K3y" not in done.stdout


def write_config(folder: Path, text: str) -> Path:
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "test_a.py").write_text("def test_x():\n    pass\n")
    path = folder / "onwatch.toml"
    path.write_text(text)
    return path


def test_a_secret_written_into_the_config_is_refused_with_its_line_and_the_fix(
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        '[onwatch]\nsecrets = { X = "hunter2hunter2" }\n\n'
        '[checks.api]\ntests = ["tests"]\nevery = "5m"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:2: onwatch.secrets: X: ")
    assert "write env:VARIABLE, file:PATH or cmd:COMMAND" in problem
    assert "hunter2hunter2" not in problem and "hun" not in problem


def test_a_name_in_both_env_and_secrets_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[checks.api]\ntests = ["tests"]\nevery = "5m"\n'
        'env = { TOKEN = "a" }\nsecrets = { TOKEN = "env:PROD_TOKEN" }\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}:1: checks.api: TOKEN is in both env and secrets; keep it in secrets only"
    ]


@pytest.mark.e2e
def test_the_database_url_takes_its_password_from_a_secret(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "5m", "env": {"MANY_TESTS": "1"}}},
        settings={
            "database": "sqlite:///${DB_FILE}",
            "secrets": {"DB_FILE": "env:MONITOR_DB_FILE"},
        },
        suites=("many",),
    )
    environ = {k: v for k, v in os.environ.items() if k != "MONITOR_DB_FILE"}

    def once(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onwatch", "once", "--quiet"],
            cwd=tmp_path,
            env={**environ, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = once()
    assert missing.returncode == 2
    assert "[onwatch] database: secret DB_FILE: environment variable MONITOR_DB_FILE" in (
        missing.stderr
    )
    done = once(MONITOR_DB_FILE="monitor.db")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("select count(*) from runs").fetchone() == (1,)
