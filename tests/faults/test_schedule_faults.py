"""Faults of the schedule, with a real ``onwatch run``: a SIGKILL mid-schedule, a database held
locked by another connection, a restart that catches up. Each test counts what a user would:
slots recorded as missed that were in fact run, skipped slots written, how late runs start.
"""

from __future__ import annotations

import signal
import sqlite3
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import Daemon
from onwatch.config import load_config
from onwatch.model import Trigger, utcnow
from onwatch.store import open_store
from records import make_run
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

SECOND = timedelta(seconds=1)


def moment(text: str) -> datetime:
    """Return a time as SQLite keeps it (UTC, without a zone) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run_slots(root: Path) -> list[datetime]:
    with sqlite3.connect(root / "onwatch.db") as db:
        rows = db.execute("select scheduled_for from runs where trigger = 'schedule'")
        return sorted(moment(r[0]) for r in rows)


def skipped(root: Path, *reasons: str) -> list[datetime]:
    """Return the slots recorded as skipped for one of ``reasons`` (any reason if none)."""
    with sqlite3.connect(root / "onwatch.db") as db:
        rows = db.execute("select scheduled_for, reason from skipped_slots")
        return sorted(moment(r[0]) for r in rows if not reasons or r[1] in reasons)


def stored_runs(root: Path) -> int:
    with sqlite3.connect(root / "onwatch.db") as db:
        count: int = db.execute("select count(*) from runs").fetchone()[0]
        return count


def hold_locked(database: Path) -> sqlite3.Connection:
    """Take the database's write lock from another connection, as a long migration would."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def spooled(root: Path) -> int:
    return len(list((root / ".onwatch" / "spool").glob("*.json")))


def test_a_restart_after_sigkill_records_no_slot_that_was_run_as_missed(tmp_path: Path) -> None:
    """Fault: SIGKILL while runs are spooled (database locked) and in flight, then a restart."""
    config = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "1"}}},
        settings={"max_jitter": "1ms", "max_parallel": 2},
        suites=("many",),
    )
    database = tmp_path / "onwatch.db"
    with Daemon(config) as first:
        first.wait_for(lambda d: len(d.runs()) >= 1)
        holder = hold_locked(database)
        try:
            # Runs wait on the lock, then go to the spool: the database does not know them.
            first.wait_for(lambda d: spooled(tmp_path) >= 2, timeout=40)
            first.stop(signal.SIGKILL)
        finally:
            holder.rollback()
            holder.close()
    killed_at = utcnow()
    # Down for a few slots: they are the ones missed.
    wait_until(lambda: utcnow() > killed_at + 3 * SECOND, "three slots pass", timeout=5)
    with Daemon(config) as second:
        second.wait_for(lambda d: any(line.get("missed") for line in d.lines()))
        second.wait_for(lambda d: len(d.runs()) >= 3, timeout=40)
        assert second.stop() == 0
    ran = set(run_slots(tmp_path))
    down = skipped(tmp_path, "down")
    wrong = [slot for slot in down if slot in ran]
    print(f"slots recorded as missed that were run: {len(wrong)} of {len(down)}")
    assert down, "the slots of the downtime are recorded as missed"
    assert wrong == []
    assert spooled(tmp_path) == 0  # every spooled run was written
    # Every slot from the kill to the restart's catch-up run is either run or missed.
    restart_first = min(slot for slot in ran if slot > killed_at)
    gap = _grid(max(s for s in ran if s < killed_at), restart_first)
    accounted = [s for s in gap if s in ran or s in set(down)]
    print(f"slots of the downtime accounted for: {len(accounted)} of {len(gap)}")
    assert accounted == gap


def _grid(first: datetime, last: datetime) -> list[datetime]:
    """Return the 1 s slots strictly between two slots of the same grid."""
    slots, slot = [], first + SECOND
    while slot < last:
        slots.append(slot)
        slot += SECOND
    return slots


def metric(url: str, name: str) -> float | None:
    """Return one unlabelled sample of /metrics, or None if absent."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def test_skipped_slots_survive_a_locked_database_and_the_loop_keeps_ticking(
    tmp_path: Path,
) -> None:
    """Fault: another connection holds BEGIN EXCLUSIVE for 7 s while every slot is skipped."""
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1s", "env": {"SLOW_SECONDS": "60"}}},
        settings={"max_jitter": "1ms", "drain_timeout": "1s"},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        url = daemon.served_url()
        inflight = tmp_path / ".onwatch" / "inflight"
        daemon.wait_for(
            lambda d: any("test_slow" in p.read_text() for p in inflight.glob("*.events"))
        )
        holder = hold_locked(tmp_path / "onwatch.db")
        locked_from = utcnow()
        oldest_tick = 0.0
        try:
            deadline = time.monotonic() + 7.0
            while time.monotonic() < deadline:
                tick = metric(url, "onwatch_scheduler_last_tick_timestamp_seconds")
                assert tick is not None
                oldest_tick = max(oldest_tick, time.time() - tick)
                time.sleep(0.2)  # a scrape every 0.2 s: the figure is the age of the last tick
        finally:
            locked_until = utcnow()
            holder.rollback()
            holder.close()
        # Written within a few seconds of the release, while the daemon still runs.
        daemon.wait_for(
            lambda d: (
                len([s for s in skipped(tmp_path) if s < locked_until])
                >= (locked_until - locked_from) / SECOND - 1
            ),
            timeout=20,
        )
        assert daemon.stop() == 0
    rows = skipped(tmp_path)
    [first_run] = run_slots(tmp_path)
    expected = _grid(first_run, rows[-1] + SECOND)
    during = [s for s in expected if locked_from <= s <= locked_until]
    print(f"skipped slots written / skipped: {len(rows)}/{len(expected)}")
    print(f"during the lock: {len([s for s in rows if s in during])}/{len(during)}")
    print(f"oldest scheduler tick seen during the lock: {oldest_tick:.2f} s")
    assert rows == expected  # one row per slot, none lost, none twice
    assert set(skipped(tmp_path, "overlap")) >= set(during)
    assert len(during) >= 6
    assert oldest_tick < 2.0  # the loop went round at least every MAX_SLEEP


def test_after_a_restart_catches_up_later_runs_start_on_their_slots(tmp_path: Path) -> None:
    """Fault: a restart after missed slots; the catch-up run must not shift the schedule."""
    config = make_project(
        tmp_path,
        {"api": {"tests": ["many"], "every": "3s", "env": {"MANY_TESTS": "1"}}},
        settings={"max_jitter": "1ms"},
        suites=("many",),
    )
    # What the onwatch that went down had recorded: a run four slots ago.
    slot = utcnow() - timedelta(seconds=12.5)
    store = open_store(load_config(config).database_url)
    try:
        store.ensure_schema()
        store.runs.save_run(
            make_run(check="api", started_at=slot, scheduled_for=slot, trigger=Trigger.SCHEDULE)
        )
    finally:
        store.close()
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 4, timeout=40)
        assert daemon.stop() == 0
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        rows = db.execute(
            "select scheduled_for, started_at from runs order by scheduled_for"
        ).fetchall()
    _, catch_up, *later = [(moment(a), moment(b)) for a, b in rows]
    assert len(skipped(tmp_path, "down")) >= 2  # slots were missed: the catch-up ran one
    assert catch_up[0] < later[0][0] - 2 * SECOND
    lateness = [(started - planned).total_seconds() for planned, started in later]
    print(f"start lateness after the catch-up: {max(lateness):.3f} s (runs: {len(later)})")
    assert len(later) >= 3
    assert all(-0.1 < late < 1.0 for late in lateness), lateness
