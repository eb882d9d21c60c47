"""Recording cannot fail on what a test produces, and what it keeps is safe to show.

Real ``onwatch once`` runs of suites whose tests produce hostile text: lone surrogates, NUL,
ANSI escape sequences, C1 controls and bidi overrides in node ids, messages, output,
properties and collection errors, a node id of 1,000,000 characters, and hundreds of
properties. Each run is recorded in SQLite and in PostgreSQL (which refuses NUL in text and
non-finite numbers in JSON), read back, and served by ``onwatch serve``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import Daemon
from needs import free_port
from onwatch.store import open_store
from receivers import HttpReceiver
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

# What must never reach a page, a terminal or a webhook raw: controls but newline and tab,
# bidi controls, and lone surrogates.
RAW = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

PYTEST_INI = """[pytest]
disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true
"""

HOSTILE = """
import pytest

ID = "n\\x00ul e\\x1b[31msc\\x1b[0m \\x1b]0;title\\x07 rlo\\u202eevil \\udcff c1\\x85"


def test_raises_a_lone_surrogate():
    raise ValueError("bad \\udcff")


@pytest.mark.parametrize("value", [1], ids=[ID])
def test_hostile_node_id(value):
    assert value == 2, "nul \\x00 esc \\x1b[1mbold\\x1b[0m rlo \\u202e"


def test_hostile_output_and_properties(record_property):
    print("\\x1b[31mred\\x1b[0m nul\\x00 rlo\\u202e bel\\x07 clear\\x1b[2J")
    record_property("key\\x1b[31m", "value\\u202e\\x00")
    record_property("not a number", float("nan"))
    record_property("big", ["y" * 100] * 1000)
    for index in range(500):
        record_property(f"p{index}", index)
    assert False
"""

LONG = """
import pytest


@pytest.mark.parametrize("value", [1], ids=["L" * 1_000_000])
def test_long_node_id(value):
    assert value == 2
"""

BROKEN = """
raise ImportError("cannot import \\x00 \\x1b[31m \\u202e \\udcff")
"""

CHECKS = {
    "hostile": {"tests": ["test_hostile.py"], "every": "1m"},
    "long": {"tests": ["test_long.py"], "every": "1m"},
    "broken": {"tests": ["test_broken.py"], "every": "1m"},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL runs are recorded in: a SQLite file, or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'onwatch.db'}"
    server = request.getfixturevalue("own_postgres")
    return str(server.url)


def write_suites(root: Path, database: str) -> None:
    make_project(root, CHECKS, settings={"database": database})
    write_tests(root)


def write_tests(root: Path) -> None:
    (root / "pytest.ini").write_text(PYTEST_INI)
    (root / "test_hostile.py").write_text(HOSTILE)
    (root / "test_long.py").write_text(LONG)
    (root / "test_broken.py").write_text(BROKEN)


def onwatch(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onwatch", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def texts(value: Any) -> list[str]:
    """Return every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in texts(item)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*texts(k), *texts(v))]
    return []


def test_every_hostile_run_is_recorded_with_its_text_made_safe(
    tmp_path: Path, database: str
) -> None:
    """Fault: surrogates, NUL, ESC, C1 and U+202E in ids, messages, output and properties."""
    write_suites(tmp_path, database)
    done = onwatch(tmp_path, "once", "--json")
    assert done.returncode == 1, done.stderr  # the code for failing tests, not a crash
    runs = {run["check"]: run for run in json.loads(done.stdout)["runs"]}
    assert sorted(runs) == ["broken", "hostile", "long"]
    # Nothing is left in flight: every run was recorded.
    assert [p.name for p in (tmp_path / ".onwatch" / "inflight").iterdir()] == []

    store = open_store(database)
    try:
        stored = {name: store.runs.get_run(run["id"]) for name, run in runs.items()}
    finally:
        store.close()
    assert all(run is not None for run in stored.values())  # runs recorded / attempted: 3/3
    for name, run in stored.items():
        assert run is not None
        as_json = run.to_json()
        printed = dict(runs[name])
        assert printed.pop("recorded") == "stored"
        assert as_json == printed  # stored as it was printed
        assert [t for t in texts(as_json) if RAW.search(t)] == []

    hostile = stored["hostile"]
    assert hostile is not None
    results = {r.nodeid.split("::")[1].split("[")[0]: r for r in hostile.results}
    surrogate = results["test_raises_a_lone_surrogate"]
    assert surrogate.message == "ValueError: bad \ufffd"
    node = results["test_hostile_node_id"]
    # Colour codes go; every other control shows as its escape, a surrogate as U+FFFD.
    assert node.nodeid == (
        "test_hostile.py::test_hostile_node_id"
        "[n\\x00ul esc \\x1b]0;title\\x07 rlo\\u202eevil \ufffd c1\\x85]"
    )
    assert node.message is not None and "nul \\x00 esc bold rlo \\u202e" in node.message
    output = results["test_hostile_output_and_properties"]
    assert output.output is not None
    assert "red nul\\x00 rlo\\u202e bel\\x07 clear\\x1b[2J" in output.output
    properties = dict(output.properties)
    assert properties["key"] == "value\\u202e\\x00"  # the colour code of the key went
    assert properties["not a number"] == "nan"
    assert isinstance(properties["big"], str) and "characters cut" in properties["big"]
    assert len(output.properties) == 101  # 100 kept and the note of how many were cut
    assert properties["onwatch.properties_cut"] == "403 more properties cut"

    broken = stored["broken"]
    assert broken is not None and broken.error is not None
    assert broken.error.startswith("collection failed (1 error): test_broken.py: ")
    assert "\\x00" in broken.error and "\\u202e" in broken.error and "\ufffd" in broken.error


def test_a_million_character_node_id_gives_a_small_row_page_and_metrics(tmp_path: Path) -> None:
    """Fault: a parametrized test whose id is 1,000,000 characters long, on SQLite."""
    write_suites(tmp_path, f"sqlite:///{tmp_path / 'onwatch.db'}")
    done = onwatch(tmp_path, "once", "--json", "long")
    assert done.returncode == 1, done.stderr
    assert len(done.stdout) < 10_000  # was over 1 MB
    [run] = json.loads(done.stdout)["runs"]
    [result] = run["results"]
    nodeid = result["nodeid"]
    assert len(nodeid) <= 1_000
    assert re.search(r"\[\.\.\. 999\d{3} characters cut, id [0-9a-f]{12} \.\.\.\]", nodeid)
    assert nodeid.startswith("test_long.py::test_long_node_id[LLL") and nodeid.endswith("LLL]")

    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        [(row,)] = db.execute(
            "select length(nodeid) + coalesce(length(message), 0) + coalesce(length(traceback), 0)"
            " + coalesce(length(output), 0) + length(properties) from results"
        ).fetchall()
    assert row < 10_000  # row size; was 8 MB of database and WAL
    files = [tmp_path / name for name in ("onwatch.db", "onwatch.db-wal")]
    assert sum(p.stat().st_size for p in files if p.exists()) < 1_000_000

    address = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "onwatch", "serve", "--listen", address],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = _get(server, f"http://{address}/runs/{run['id']}")
        metrics = _get(server, f"http://{address}/metrics")
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert page.status_code == 200 and nodeid.split("[")[0] in page.text
    assert len(page.content) < 100_000  # was 3 MB
    assert len(metrics.content) < 100_000  # was 3 MB per scrape


def _get(server: subprocess.Popen[str], url: str) -> httpx.Response:
    """GET ``url`` once ``server`` answers."""

    def answers() -> bool:
        assert server.poll() is None, server.communicate()
        try:
            httpx.get(url, timeout=5)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, "onwatch serve answers", timeout=30)
    return httpx.get(url, timeout=5)


DEAD_PID = 999_999_999  # above any pid_max: no process has it
POISONS = ("garbage", "a list", "no timeout", "bad date", "bad trigger", "huge check name")


def leftover(inflight: Path, run_id: str, meta: object, events: str | None = None) -> None:
    """Write what an onwatch killed mid-run leaves in flight: its metadata, maybe events."""
    inflight.mkdir(parents=True, exist_ok=True)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    (inflight / f"{run_id}.json").write_text(text)
    if events is not None:
        (inflight / f"{run_id}.1.events").write_text(events)


def meta_of(run_id: str, **changes: object) -> dict[str, object]:
    return {
        "id": run_id,
        "check": "good",
        "kind": "pytest",
        "trigger": "schedule",
        "scheduled_for": None,
        "started_at": "2026-12-01T10:00:00+00:00",
        "config_digest": "",
        "timeout": 60,
        "selection": "test_good.py",
        "pid": DEAD_PID,
        "detail": {},
        **changes,
    }


def test_poisoned_files_in_flight_are_set_aside_and_block_no_run(tmp_path: Path) -> None:
    """Fault: leftovers in flight that cannot become runs (garbage, wrong shapes, bad values)."""
    make_project(tmp_path, {"good": {"tests": ["test_good.py"], "every": "1m"}})
    (tmp_path / "test_good.py").write_text("def test_good():\n    pass\n")
    inflight = tmp_path / ".onwatch" / "inflight"
    passed = {"event": "result", "nodeid": "test_good.py::test_good", "outcome": "passed"}
    ids = {name: str(uuid.uuid4()) for name in POISONS}
    poisoned = {
        "garbage": "{not json \udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
        "a list": [1, 2],
        "no timeout": {k: v for k, v in meta_of(ids["no timeout"]).items() if k != "timeout"},
        "bad date": meta_of(ids["bad date"], started_at="yesterday"),
        "bad trigger": meta_of(ids["bad trigger"], trigger="bogus"),
        "huge check name": meta_of(ids["huge check name"], check="c" * 1_000_000),
        "not a uuid": meta_of("not-a-uuid"),
    }
    stems = {**ids, "not a uuid": "not-a-uuid"}
    for name, meta in poisoned.items():
        leftover(inflight, stems[name], meta)
    (inflight / f"{ids['bad trigger']}.1.events").write_text(json.dumps(passed) + "\n")
    good_id = str(uuid.uuid4())
    leftover(inflight, good_id, meta_of(good_id), json.dumps(passed) + "\n")

    done = onwatch(tmp_path, "once", "--json", "good")
    assert done.returncode == 0, done.stderr  # the check ran and passed
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "passed" and run["recorded"] == "stored"
    # The recoverable leftover was recovered and recorded next to it.
    store = open_store(f"sqlite:///{tmp_path / 'onwatch.db'}")
    try:
        recovered = store.runs.get_run(good_id)
    finally:
        store.close()
    assert recovered is not None and recovered.error is not None
    assert recovered.error.startswith("interrupted")
    # Each poisoned one is set aside once, with its reason; nothing is left in flight.
    assert [p.name for p in inflight.iterdir()] == ["quarantine"]
    folders = {f.name.rsplit("-", 1)[0]: f for f in (inflight / "quarantine").iterdir()}
    assert sorted(folders) == sorted(stems.values())
    for stem, folder in folders.items():
        reason = (folder / "reason.txt").read_text()
        assert reason.startswith(f"onwatch set the run {stem} aside: ")
        assert (folder / f"{stem}.json").exists()
    assert (folders[ids["bad trigger"]] / f"{ids['bad trigger']}.1.events").exists()
    assert done.stderr.count("aside") == len(poisoned)  # logged once each

    again = onwatch(tmp_path, "once", "--json", "good")  # and the next run is quiet
    assert again.returncode == 0, again.stderr
    assert "aside" not in again.stderr


def test_alerts_about_hostile_tests_carry_small_safe_webhook_bodies(tmp_path: Path) -> None:
    """Fault: the hostile suites fail under ``onwatch run`` and alert through a webhook."""
    with HttpReceiver() as receiver:
        config = make_project(
            tmp_path,
            {name: {**check, "alert_after": 1} for name, check in CHECKS.items()},
            settings={"notify": ["hook"]},
            channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
        )
        write_tests(tmp_path)
        with Daemon(config) as daemon:
            opened = receiver.wait_for(len(CHECKS), timeout=60)
            assert daemon.stop() == 0
    # Every run was recorded: nothing piles up in flight.
    assert [p.name for p in (tmp_path / ".onwatch" / "inflight").iterdir()] == []
    bodies = {r.json()["check"]: r for r in opened}
    assert sorted(bodies) == sorted(CHECKS)  # every hostile check alerted
    for name, request in bodies.items():
        body = request.json()
        assert body["event"] == "incident.opened", name
        assert len(request.body) < 20_000, name  # was 1 MB for the long node id
        assert [t for t in texts(body) if RAW.search(t)] == [], name
    [long_test] = bodies["long"].json()["failing_tests"]
    assert "characters cut, id" in long_test["nodeid"]


def test_a_failed_test_too_long_to_retry_keeps_its_result(tmp_path: Path) -> None:
    """Fault: a retry of a test whose node id cannot fit on a command line cannot start."""
    make_project(tmp_path, {"long": {"tests": ["test_long.py"], "every": "1m", "retries": 1}})
    write_tests(tmp_path)
    done = onwatch(tmp_path, "once", "--json")
    assert done.returncode == 1, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "failed"  # the test's own outcome, not "could not start"
    assert [r["outcome"] for r in run["results"]] == ["failed"]
    assert run["error"].startswith("onwatch could not retry the failed tests: ")


FORGER = """
import json
import os


def test_writes_into_the_events_file():
    with open(os.environ["ONWATCH_EVENTS"], "a") as events:
        for line in (
            {"event": "collected", "count": "many"},
            {"event": "result", "nodeid": 5},
            {"event": "result", "nodeid": "forged", "outcome": "passed", "duration": "slow",
             "properties": "p", "artifacts": [{"path": "/", "name": "x", "size": "big"}]},
        ):
            events.write(json.dumps(line) + "\\n")
        events.write("\\x00\\xff not json at all\\n")
"""


def test_a_test_that_writes_into_the_events_file_cannot_stop_recording(tmp_path: Path) -> None:
    """Fault: a test appends lines of the wrong shape, and garbage, to onwatch's events file."""
    make_project(tmp_path, {"forger": {"tests": ["test_forger.py"], "every": "1m"}})
    (tmp_path / "test_forger.py").write_text(FORGER)
    done = onwatch(tmp_path, "once", "--json")
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["recorded"] == "stored" and run["collected"] == 1
    assert {r["nodeid"]: r["outcome"] for r in run["results"]} == {
        "forged": "passed",  # what a test writes there, it reports
        "test_forger.py::test_writes_into_the_events_file": "passed",
    }
    assert [p.name for p in (tmp_path / ".onwatch" / "inflight").iterdir()] == []
