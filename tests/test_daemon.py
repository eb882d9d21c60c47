"""``onwatch run`` as a real long-running process: one smoke test per path.

Schedule, run, record and log; SIGTERM with a run in flight; a restart after downtime. What
the scheduler decides (slots, jitter, overlap, catch-up, drain, manual runs) is tested on a fake
clock in test_scheduler.py; the signal handling and the log format here, in this process.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon import Daemon
from onwatch.cli import build_parser
from onwatch.config import load_config
from onwatch.daemon.scheduler import log_run
from onwatch.daemon.wiring import Control, _handle_signals
from onwatch.logs import configure_logging
from onwatch.model import Trigger, utcnow
from onwatch.store import open_store
from receivers import HttpReceiver
from records import make_run, passed_results
from suites import make_project

pytestmark = pytest.mark.e2e


def stored_runs(root: Path) -> list[tuple[str, str, str, str, str, str | None]]:
    with sqlite3.connect(root / "onwatch.db") as db:
        return list(
            db.execute(
                'select "check", status, trigger, scheduled_for, started_at, error from runs '
                "order by started_at"
            )
        )


def in_flight(root: Path, text: str) -> bool:
    """Tell whether a run in flight has begun the test named ``text``."""
    inflight = root / ".onwatch" / "inflight"
    return any(text in p.read_text() for p in inflight.glob("*.events"))


def test_it_runs_checks_on_schedule_logs_each_run_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"good": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "3"}}},
        suites=("many",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: len(d.runs()) >= 2)
        assert daemon.stop() == 0
        logged = daemon.runs()
    assert all(r["status"] == "passed" and r["passed"] == 3 for r in logged)
    runs = stored_runs(tmp_path)
    assert len(runs) == len(logged)  # one log line per recorded run
    assert {r[2] for r in runs} == {"schedule"}
    slots = sorted(datetime.fromisoformat(r[3]) for r in runs if r[0] == "good")
    gaps = [(b - a).total_seconds() for a, b in zip(slots, slots[1:], strict=False)]
    # On the 1 s grid; a slot may be skipped, never doubled, when the machine is very busy.
    assert all(gap >= 0.99 and abs(gap - round(gap)) < 0.01 for gap in gaps), gaps


def test_a_run_still_going_after_the_drain_timeout_is_recorded_as_interrupted(
    tmp_path: Path,
) -> None:
    config = make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1h", "env": {"SLOW_SECONDS": "60"}}},
        settings={"drain_timeout": "1s", "max_jitter": "1ms"},
        suites=("slow",),
    )
    with Daemon(config) as daemon:
        daemon.wait_for(lambda d: in_flight(tmp_path, "test_slow"))
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 15
    [run] = stored_runs(tmp_path)
    assert run[1] == "error" and run[5].startswith("interrupted")
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        results = dict(db.execute("select nodeid, outcome from results"))
    assert results == {
        "slow/test_slow.py::test_first": "passed",
        "slow/test_slow.py::test_slow": "error",
    }


def test_a_restart_resumes_each_schedule_and_reports_the_slots_missed_while_down(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as receiver:
        config = make_project(
            tmp_path,
            {
                "api": {"tests": ["many"], "every": "1s", "env": {"MANY_TESTS": "1"}},
                "hourly": {"tests": ["many"], "every": "1h", "env": {"MANY_TESTS": "1"}},
            },
            settings={"max_jitter": "1ms", "notify": ["hook"]},
            suites=("many",),
            channels={"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}},
        )
        # What the daemon that went down had recorded: api ten slots ago, hourly two minutes ago.
        now = utcnow()
        store = open_store(load_config(config).database_url)
        try:
            store.ensure_schema()
            for check, ago in (("api", 10), ("hourly", 120)):
                slot = now - timedelta(seconds=ago)
                store.runs.save_run(
                    make_run(
                        check=check, started_at=slot, scheduled_for=slot, trigger=Trigger.SCHEDULE
                    )
                )
        finally:
            store.close()
        with Daemon(config) as daemon:
            [gap] = receiver.wait_for(1, timeout=20)
            # api's missed slots give one run at once; a wrongly planned hourly would have
            # started with it, and the drain would record it.
            daemon.wait_for(lambda d: len(d.runs()) >= 1)
            assert daemon.stop() == 0
            logged = daemon.runs()
        events = [r.json()["event"] for r in receiver.received]
    assert {r["check"] for r in logged} == {"api"}  # hourly ran two minutes ago: not again
    body = gap.json()
    assert body["event"] == "monitor.degraded" and body["details"]["problem"] == "gap"
    assert body["details"]["missed"] == {"api": body["details"]["missed"]["api"]}
    assert body["details"]["missed"]["api"] >= 9  # the latest slot is run, not missed
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        down = db.execute("select count(*) from skipped_slots where reason = 'down'").fetchone()
        hourly = db.execute("""select count(*) from runs where "check" = 'hourly'""").fetchone()
    assert down[0] == body["details"]["missed"]["api"]
    assert hourly[0] == 1
    assert events == ["monitor.degraded"]


@pytest.fixture
def signals() -> Iterator[None]:
    """Give back SIGINT, SIGTERM and SIGHUP to the handlers they had before the test."""
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_first_signal_stops_scheduling_and_a_second_kills_the_runs_in_flight(
    number: signal.Signals, signals: None
) -> None:
    control = Control()
    _handle_signals(control)
    signal.raise_signal(number)
    assert control.stopping.is_set() and not control.kill.is_set()  # drain_timeout to finish
    signal.raise_signal(number)
    assert control.kill.is_set()  # no more waiting: they are killed and recorded as interrupted


def test_sighup_asks_for_a_reload_and_never_stops(signals: None) -> None:
    control = Control()
    _handle_signals(control)
    signal.raise_signal(signal.SIGHUP)
    assert control.reload_asked.is_set() and not control.stopping.is_set()


def test_onwatch_run_logs_one_key_value_line_per_run_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["run"])
    logger = logging.getLogger("onwatch")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    try:
        configure_logging(args.log_level, args.log_format)
        log_run(make_run(check="good", results=passed_results(2)), "stored")
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    line = capsys.readouterr().err
    assert " INFO run finished check=good status=passed tests=2 passed=2 duration=1.00s" in line
