"""Start one pytest process for a check, watch it, and kill its whole process tree when needed.

The process gets its own session (and so its own process group): at the timeout, or when onwatch
must stop, the group and every descendant found beforehand (a browser that moved to a group of
its own included) get SIGTERM, then SIGKILL after a short grace. However the process ended,
``sweep`` then kills what detached from it and still carries the run's id.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onwatch.errors import RunnerError
from onwatch.runner import ATTEMPT_ENV, EVENTS_ENV, RUN_ID_ENV
from onwatch.runner.parse import RunAttempt, parse_events
from onwatch.runner.sweep import sweep

POLL_SECONDS = 0.2
LIVE_POLL_SECONDS = 0.05
KILL_GRACE_SECONDS = 1.0
OUTPUT_TAIL_BYTES = 64_000

EventHandler = Callable[[dict[str, Any]], None]


def run_pytest(
    args: list[str],
    *,
    number: int,
    cwd: Path,
    env: dict[str, str],
    events_path: Path,
    output_path: Path,
    deadline: float,
    stop: threading.Event | None = None,
    on_event: EventHandler | None = None,
    spawned: threading.Event | None = None,
    python: str = sys.executable,
) -> RunAttempt:
    """Run ``python -m pytest ARGS`` until it ends, ``deadline`` (monotonic) passes or ``stop``."""
    child_env = dict(env)
    child_env[EVENTS_ENV] = str(events_path)
    child_env[ATTEMPT_ENV] = str(number)
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", *args]
    if child_env.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        command[3:3] = ["-p", "onwatch"]
    events_path.touch()
    started = time.time()
    with output_path.open("wb") as output:
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise RunnerError(f"cannot start {python} -m pytest in {cwd}: {exc}") from exc
        if spawned is not None:
            spawned.set()
        tail = EventTail(events_path, on_event)
        exited = ExitWatch(process)
        # Live progress wants fresh events; otherwise wake only to check the deadline and stop.
        interval = LIVE_POLL_SECONDS if on_event is not None else POLL_SECONDS
        timed_out = interrupted = False
        while True:
            if exited.wait(max(0.0, min(interval, deadline - time.monotonic()))):
                break
            if on_event is not None:
                tail.read()
            if time.monotonic() >= deadline:
                timed_out = True
            elif stop is not None and stop.is_set():
                interrupted = True
            if timed_out or interrupted:
                kill_tree(process)
                break
        exited.close()
    # What detached from the run (setsid, a double fork, a child left running) goes with it.
    run_id = child_env.get(RUN_ID_ENV)
    killed = sweep(run_id, started) if run_id else []
    tail.read()
    return RunAttempt(
        number=number,
        events=tail.events,
        returncode=process.returncode,
        timed_out=timed_out,
        interrupted=interrupted,
        output=_read_tail(output_path),
        killed=tuple(killed),
    )


class ExitWatch:
    """Waits for a process to exit without polling, through a pidfd where Linux has one."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):
            pass

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; tell whether the process has exited (and reap it)."""
        if self.fd is not None:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return False
            self.process.wait()
            return True
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        """Release the pidfd."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class EventTail:
    """Reads the events a running pytest process appends to its file."""

    def __init__(self, path: Path, on_event: EventHandler | None) -> None:
        self.path = path
        self.on_event = on_event
        self.offset = 0
        self.events: list[dict[str, Any]] = []

    def read(self) -> None:
        """Take in the complete lines written since the last read."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        if not end:
            return
        self.offset += end
        fresh = parse_events(data[:end])
        self.events += fresh
        if self.on_event is not None:
            for event in fresh:
                self.on_event(event)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process``, its process group and all its descendants; wait for it."""
    import psutil

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    _signal_all(process.pid, descendants, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    alive = [p for p in descendants if _alive(p)]
    _signal_all(process.pid, alive, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(alive, timeout=KILL_GRACE_SECONDS)


def _signal_all(pid: int, processes: list[Any], sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in processes:
        try:
            proc.send_signal(sig)
        except Exception:  # noqa: BLE001 - a process that is already gone is fine
            pass


def _alive(proc: Any) -> bool:
    try:
        return bool(proc.is_running()) and proc.status() != "zombie"
    except Exception:  # noqa: BLE001
        return False


def _read_tail(path: Path) -> str:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(0, size - OUTPUT_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
