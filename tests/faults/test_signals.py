"""Signals reach onwatch however it was started: Ctrl-C, stop and reload.

A shell's background job and ``nohup`` start a program with SIGINT ignored; these tests start
the real process that way, send real signals and read what was recorded.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from daemon import Daemon
from receivers import HttpReceiver
from suites import make_project
from waiting import wait_until

pytestmark = pytest.mark.e2e

STOP_WITHIN = 10.0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _slow_project(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"slow": {"tests": ["slow"], "every": "1m", "env": {"SLOW_SECONDS": "60"}}},
        suites=("slow",),
    )


def _pytest_processes_of(run_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if process.info["cwd"] == str(run_dir) and "pytest" in " ".join(
                process.info["cmdline"] or []
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_once_started_with_sigint_ignored_stops_kills_its_tests_and_records_the_run(
    tmp_path: Path, number: signal.Signals
) -> None:
    """Fault: `onwatch once` started from a background shell (SIGINT ignored) gets Ctrl-C or a
    stop (SIGTERM) while a test hangs."""
    _slow_project(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    ) as process:
        inflight = tmp_path / ".onwatch" / "inflight"
        wait_until(
            lambda: any("test_slow" in p.read_text() for p in inflight.glob("*.events")),
            "the slow test started",
            timeout=30,
        )
        sent = time.monotonic()
        process.send_signal(number)
        try:
            out, err = process.communicate(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        took = time.monotonic() - sent
    assert process.returncode == 130, err
    assert took < STOP_WITHIN
    [run] = json.loads(out)["runs"]
    assert run["status"] == "error" and run["error"].startswith("interrupted")
    # Recorded as cut short by a stop: it says nothing about the product.
    assert run["trigger_detail"] == {"interrupted": "stop"}
    with sqlite3.connect(tmp_path / "onwatch.db") as db:
        assert db.execute("select status from runs").fetchall() == [("error",)]
    assert _pytest_processes_of(tmp_path) == []


def _reload_project(tmp_path: Path, receiver: HttpReceiver, checks: list[str]) -> Path:
    hook = {"hook": {"type": "webhook", "url": f"{receiver.url}/hook"}}
    return make_project(
        tmp_path,
        {name: {"tests": ["many"], "every": "1h", "notify": ["hook"]} for name in checks},
        settings={"max_jitter": "1ms", "drain_timeout": "5s"},
        suites=("many",),
        channels=hook,
    )


def _ran(daemon: Daemon, check: str) -> int:
    return sum(1 for line in daemon.runs() if line.get("check") == check)


def _logged(daemon: Daemon, message: str) -> int:
    return sum(1 for line in daemon.lines() if line.get("message") == message)


RELOADS = 3


def test_sighup_applies_a_valid_config_and_keeps_the_running_one_when_invalid(
    tmp_path: Path,
) -> None:
    """Fault: SIGHUP, again and again, alternately with a valid new config (a check added)
    and with an invalid one (a key misspelt)."""
    with HttpReceiver() as receiver:
        config = _reload_project(tmp_path, receiver, ["first"])
        survived = 0
        with Daemon(config) as daemon:
            daemon.wait_for(lambda d: _ran(d, "first") == 1)
            for number in range(1, RELOADS + 1):
                # Invalid: refused, reported, the process and its config carry on.
                config.write_text(config.read_text() + "\n[checks.broken]\neverry = 1\n")
                daemon.process.send_signal(signal.SIGHUP)
                daemon.wait_for(
                    lambda d, n=number: (
                        _logged(d, "config not reloaded; still running the previous one") == n
                    )
                )
                alert = json.loads(receiver.wait_for(number, timeout=20)[-1].body)
                assert alert["event"] == "monitor.degraded"
                assert alert["details"]["problem"] == "config"
                assert "checks.broken" in alert["details"]["error"]
                assert daemon.process.poll() is None
                survived += 1
                # Valid: a new check, which runs at once under the new config.
                name = f"added{number}"
                config = _reload_project(
                    tmp_path, receiver, ["first", *(f"added{i}" for i in range(1, number + 1))]
                )
                daemon.process.send_signal(signal.SIGHUP)
                daemon.wait_for(lambda d, n=name: _ran(d, n) == 1)
                assert _logged(daemon, "config reloaded") == number
                assert daemon.process.poll() is None
                survived += 1
            assert daemon.stop() == 0
        assert survived == 2 * RELOADS
        # The old check was not run again by the reloads: it keeps its schedule.
        assert _ran(daemon, "first") == 1
        with sqlite3.connect(tmp_path / "onwatch.db") as db:
            checks = sorted(row[0] for row in db.execute('select "check" from runs'))
        assert checks == sorted(["first", *(f"added{i}" for i in range(1, RELOADS + 1))])


def test_the_demo_started_with_sigint_ignored_stops_within_10_s_of_ctrl_c(
    tmp_path: Path,
) -> None:
    """Fault: `onwatch demo` started from a background shell (SIGINT ignored) gets Ctrl-C
    while it runs its checks."""
    log_path = tmp_path / "demo.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "onwatch",
                "demo",
                "--dir",
                "demo",
                "--log-format",
                "json",
                "--listen",
                "127.0.0.1:0",
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint,
        ) as process,
    ):
        wait_until(
            lambda: '"message": "run finished"' in log_path.read_text(),
            "the demo recorded a run",
            timeout=60,
        )
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        took = time.monotonic() - sent
    assert process.returncode == 0, log_path.read_text()[-2000:]
    assert took < STOP_WITHIN
    assert '"message": "onwatch stopped"' in log_path.read_text()


def test_sighup_refuses_a_config_whose_listen_address_is_taken(tmp_path: Path) -> None:
    """Fault: SIGHUP with a valid config whose new listen address another process holds."""
    import socket

    with HttpReceiver() as receiver, socket.create_server(("127.0.0.1", 0)) as taken:
        config = _reload_project(tmp_path, receiver, ["first"])
        with Daemon(config) as daemon:
            daemon.wait_for(lambda d: _ran(d, "first") == 1)
            port = taken.getsockname()[1]
            config.write_text(
                config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
            )
            daemon.process.send_signal(signal.SIGHUP)
            alert = json.loads(receiver.wait_for(1, timeout=20)[0].body)
            assert daemon.process.poll() is None
            assert daemon.stop() == 0
    assert alert["details"]["problem"] == "config"
    assert f"cannot listen on 127.0.0.1:{port}" in alert["details"]["error"]
    assert _logged(daemon, "config reloaded") == 0
