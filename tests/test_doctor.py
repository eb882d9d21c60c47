"""onwatch doctor: a masked run leaves nothing to find; values planted by hand are found."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, select, update

from onwatch.cli.doctor import Finding, Report, Scan, SecretState, scan
from onwatch.config import load_config
from onwatch.masking import Masker
from onwatch.model import Outcome, Run, RunStatus, TestResult
from onwatch.store import open_store
from onwatch.store.schema import results
from pgserver import fresh_database
from test_docs import documented_keys

ROOT = Path(__file__).parent.parent
# A slash, a plus, an equals sign, a non-ASCII letter and a quote: its URL, base64 and JSON
# forms all differ from the raw one, so each planted form can only be found as itself.
TOKEN = 's3cr/t+K=é"doctor-9f8e'
CONFIG = """\
[onwatch]
listen = "127.0.0.1:0"
secrets = { API_TOKEN = "env:DOCTOR_TOKEN" }

[checks.leaky]
tests = ["tests"]
every = "1m"
"""
LEAKY_TEST = """\
import base64, json, os
from urllib.parse import quote


def test_it_prints_the_token_every_way(record_property):
    token = os.environ["API_TOKEN"]
    print("raw", token)
    print("basic", base64.b64encode(("alice:" + token).encode()).decode())
    print("url", quote(token, safe=""))
    print("json", json.dumps({"token": token}))
    record_property("token", token)
    assert token == "something else", token
"""
HIT_KEYS = {"where", "table", "column", "row", "file", "offset", "secret", "encoding"}
ARTIFACT = "ab" + "0" * 62
TRACE = "cd" + "0" * 62


def onwatch(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def leaked(done: subprocess.CompletedProcess[str]) -> list[str]:
    """Return the forms of the token found in what the command printed."""
    return [hit.encoding for hit in Masker({"API_TOKEN": TOKEN}).find(done.stdout + done.stderr)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose failing test printed the token; one real run recorded it, masked."""
    root = tmp_path_factory.mktemp("recorded")
    (root / "onwatch.toml").write_text(CONFIG)
    (root / "tests").mkdir()
    (root / "tests" / "test_leaky.py").write_text(LEAKY_TEST)
    done = onwatch("once", cwd=root, env={"DOCTOR_TOKEN": TOKEN})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[secret:API_TOKEN]" in done.stdout
    return root


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the recorded project, free to be changed."""
    return Path(shutil.copytree(recorded, tmp_path / "project"))


def plant(project: Path) -> int:
    """Put the token where masking should have kept it out; return the results row used."""
    engine = create_engine(f"sqlite:///{project / 'onwatch.db'}")
    with engine.begin() as conn:
        row = conn.execute(select(results.c.id).limit(1)).scalar_one()
        basic = base64.b64encode(f"alice:{TOKEN}".encode()).decode()
        conn.execute(
            update(results)
            .where(results.c.id == row)
            .values(
                message=f"AssertionError: {TOKEN}",
                output=f"Authorization: Basic {basic}\n",
                traceback=f"GET /api?token={quote(TOKEN, safe='')} HTTP/1.1",
                properties=[["token", TOKEN]],  # stored by json.dumps: escaped
            )
        )
    engine.dispose()
    artifacts = project / "artifacts"
    (artifacts / "ab").mkdir(parents=True)
    (artifacts / "ab" / ARTIFACT).write_bytes(f"Authorization: Bearer {TOKEN}\n".encode())
    (artifacts / "cd").mkdir()
    with zipfile.ZipFile(artifacts / "cd" / TRACE, "w", zipfile.ZIP_DEFLATED) as trace:
        trace.writestr("trace.trace", json.dumps({"headers": {"x-token": TOKEN}}) + "\n")
    spool = project / ".onwatch" / "spool"
    spool.mkdir(parents=True)
    (spool / "run-1.json").write_text(f'{{"error": "GET /?t={quote(TOKEN, safe="")}"}}')
    return row


@pytest.mark.e2e
def test_it_finds_nothing_after_a_masked_run_and_exits_0(project: Path) -> None:
    database = project / "onwatch.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    done = onwatch("doctor", cwd=project, env={"DOCTOR_TOKEN": TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith(
        "1 secret checked, 0 hits in the database, 0 in artifacts, 0 in the spool ("
    )
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert leaked(done) == []


@pytest.mark.e2e
def test_it_reports_each_planted_form_by_place_and_encoding(project: Path) -> None:
    row = plant(project)
    done = onwatch("doctor", "--json", cwd=project, env={"DOCTOR_TOKEN": TOKEN})
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["secrets"] == [{"name": "API_TOKEN", "ok": True, "error": None}]
    assert report["scanned"]["rows"] > 0 and report["scanned"]["files"] >= 4
    hits = report["hits"]
    assert all(set(hit) == HIT_KEYS and hit["secret"] == "API_TOKEN" for hit in hits)

    in_rows = {
        (h["table"], h["column"], json.dumps(h["row"]), h["encoding"])
        for h in hits
        if h["where"] == "database"
    }
    key = json.dumps({"id": row})
    assert ("results", "message", key, "raw") in in_rows
    assert ("results", "traceback", key, "url") in in_rows
    assert ("results", "properties", key, "json") in in_rows
    assert any(
        (table, column, at) == ("results", "output", key) and encoding.startswith("base64")
        for table, column, at, encoding in in_rows
    )
    assert all(h["file"] is None and h["offset"] is None for h in hits if h["where"] == "database")

    in_file = [h for h in hits if h["where"] == "database-file"]
    assert any(h["encoding"] == "raw" for h in in_file)
    assert all(Path(h["file"]).name.startswith("onwatch.db") for h in in_file)
    assert all(isinstance(h["offset"], int) and h["table"] is None for h in in_file)

    artifacts = project / "artifacts"
    found = {(h["where"], h["file"], h["offset"], h["encoding"]) for h in hits}
    assert ("artifact", str(artifacts / "ab" / ARTIFACT), 22, "raw") in found
    assert [
        (h["file"], h["encoding"]) for h in hits if (h["file"] or "").endswith("!trace.trace")
    ] == [(f"{artifacts / 'cd' / TRACE}!trace.trace", "json")]
    spooled = [(h["file"], h["encoding"]) for h in hits if h["where"] == "spool"]
    assert spooled == [(str(project / ".onwatch" / "spool" / "run-1.json"), "url")]
    assert leaked(done) == []

    text = onwatch("doctor", cwd=project, env={"DOCTOR_TOKEN": TOKEN})
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert f"database: results.message row id={row}: API_TOKEN (raw)" in lines
    assert f"artifact: {artifacts / 'ab' / ARTIFACT} at byte 22: API_TOKEN (raw)" in lines
    in_database = sum(h["where"] in ("database", "database-file") for h in hits)
    assert lines[-1].startswith(
        f"1 secret checked, {in_database} hits in the database, 2 in artifacts, 1 in the spool ("
    )
    assert leaked(text) == []


@pytest.mark.e2e
def test_it_finds_the_same_hits_reading_in_small_batches_and_chunks(project: Path) -> None:
    plant(project)
    config = load_config(project / "onwatch.toml")

    def places(found: Scan) -> list[tuple[Any, ...]]:
        return sorted(
            (h.where, h.table, h.column, json.dumps(h.row), h.file, h.offset, h.encoding)
            for h in found.hits
        )

    whole = scan(config, {"API_TOKEN": TOKEN})
    # 97 bytes is shorter than some forms: values straddle chunk edges again and again.
    pieces = scan(config, {"API_TOKEN": TOKEN}, batch_rows=2, chunk_bytes=97)
    assert places(pieces) == places(whole)
    assert (pieces.rows, pieces.files, pieces.bytes) == (whole.rows, whole.files, whole.bytes)
    assert any(h.where == "database-file" for h in whole.hits)


@pytest.mark.e2e
def test_it_names_a_secret_it_cannot_look_up_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "onwatch.toml").write_text(
        CONFIG.replace(
            'secrets = { API_TOKEN = "env:DOCTOR_TOKEN" }',
            'secrets = { API_TOKEN = "env:DOCTOR_TOKEN", MISSING = "env:DOCTOR_UNSET", '
            'SHORT = "env:DOCTOR_SHORT" }',
        )
    )
    env = {"DOCTOR_TOKEN": TOKEN, "DOCTOR_SHORT": "abc"}
    done = onwatch("doctor", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    states = {s["name"]: s for s in json.loads(done.stdout)["secrets"]}
    assert states["API_TOKEN"] == {"name": "API_TOKEN", "ok": True, "error": None}
    assert states["MISSING"]["ok"] is False
    assert "DOCTOR_UNSET is not set" in states["MISSING"]["error"]
    assert states["SHORT"]["ok"] is False and "3 characters" in states["SHORT"]["error"]
    assert not (tmp_path / "onwatch.db").exists()  # never run: nothing created either
    assert leaked(done) == []


@pytest.mark.e2e
def test_it_scans_postgresql_json_as_stored(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_url)
    (tmp_path / "onwatch.toml").write_text(f"[onwatch]\ndatabase = {json.dumps(url)}\n")
    store = open_store(url)
    store.ensure_schema()
    now = datetime.now(UTC)
    result = TestResult(
        nodeid="t.py::test_it",
        outcome=Outcome.FAILED,
        phase="call",
        duration=0.1,
        message=f"token {TOKEN}",
        properties=(("token", TOKEN),),
    )
    store.runs.save_run(
        Run(
            id="r1",
            check="c",
            status=RunStatus.FAILED,
            started_at=now,
            finished_at=now,
            results=(result,),
        )
    )
    store.close()
    found = scan(load_config(tmp_path / "onwatch.toml"), {"API_TOKEN": TOKEN})
    places = {(h.table, h.column, h.encoding) for h in found.hits}
    assert places == {("results", "message", "raw"), ("results", "properties", "json")}
    assert all(h.row is not None and set(h.row) == {"id"} for h in found.hits)


def test_every_field_of_its_json_is_documented() -> None:
    docs = ROOT / "docs" / "doctor.md"
    report = Report(
        [SecretState("API_TOKEN", True)], Scan(hits=[Finding("database", "API_TOKEN", "raw")])
    ).to_json()
    assert documented_keys(docs, "Top-level fields:") >= set(report)
    assert documented_keys(docs, "`secrets` fields:") >= set(report["secrets"][0])
    assert documented_keys(docs, "`hits` fields:") >= set(report["hits"][0])
    assert documented_keys(docs, "`scanned` fields:") >= set(report["scanned"])
    text = docs.read_text()
    # Every place a hit can be found in: the values of its "where".
    places = ("database", "database-file", "artifact", "spool")
    assert all(f"`{where}`" in text for where in places)
