"""Start one pytest process for a check, watch it, and kill its whole process tree when needed.

The process gets its own session (and so its own process group): at the timeout, or when onwatch
must stop, the group and every descendant found beforehand (a browser that moved to a group of
its own included) get SIGTERM, then SIGKILL after a short grace. However the process ended,
``sweep`` then kills what detached from it and still carries the run's id.

Its events and output go to files in the run's in-flight folder; when that folder cannot be
written (a full or read-only disk), to anonymous memory files (``memfd``) that the child
inherits, so that a full disk never stops a check from running.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onwatch.errors import RunnerError
from onwatch.runner import ATTEMPT_ENV, EVENTS_ENV, EVENTS_SPARE_ENV, RUN_ID_ENV
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
    in_memory: bool = False,
) -> RunAttempt:
    """Run ``python -m pytest ARGS`` until it ends, ``deadline`` (monotonic) passes or ``stop``.

    With ``in_memory`` (or when the files cannot be created) the events and the output go to
    anonymous memory files instead of ``events_path`` and ``output_path``.
    """
    child_env = dict(env)
    child_env[ATTEMPT_ENV] = str(number)
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", *args]
    if child_env.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        command[3:3] = ["-p", "onwatch"]
    started = time.time()
    with contextlib.ExitStack() as files:
        streams = None if in_memory and _HAS_MEMFD else _disk_streams(events_path, output_path)
        if streams is None:
            if not _HAS_MEMFD:
                raise RunnerError(f"cannot write the in-flight files {events_path} of this run")
            streams = _memory_streams()
        else:
            files.callback(os.close, streams.output_fd)
        for fd in streams.fds:
            files.callback(os.close, fd)
        child_env[EVENTS_ENV] = str(streams.events)
        if streams.spare is not None:
            child_env[EVENTS_SPARE_ENV] = str(streams.spare)
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=streams.output_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=streams.fds,
            )
        except OSError as exc:
            raise RunnerError(f"cannot start {python} -m pytest in {cwd}: {exc}") from exc
        if spawned is not None:
            spawned.set()
        tail = EventTail(streams.events, on_event, streams.spare)
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
        output = _read_tail(streams.output)
    return RunAttempt(
        number=number,
        events=tail.events,
        returncode=process.returncode,
        timed_out=timed_out,
        interrupted=interrupted,
        output=output,
        killed=tuple(killed),
    )


@dataclass(frozen=True)
class _Streams:
    """Where one pytest process writes its events and its output, and how to read them back."""

    events: Path
    output: Path
    output_fd: int
    fds: tuple[int, ...] = ()  # descriptors the child inherits under the same numbers
    spare: Path | None = None  # where events go once the events file refuses a write


# Anonymous memory files are Linux's; elsewhere a run needs its in-flight folder.
_HAS_MEMFD = hasattr(os, "memfd_create")


def _disk_streams(events_path: Path, output_path: Path) -> _Streams | None:
    """Create the in-flight files, or return None when the disk refuses them."""
    try:
        events_path.touch()
        output_fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return None
    if not _HAS_MEMFD:
        return _Streams(events_path, output_path, output_fd)
    # Should the disk fill up during the run, the events that follow still reach us.
    spare_fd = os.memfd_create("onwatch-events-spare")
    return _Streams(
        events_path,
        output_path,
        output_fd,
        fds=(spare_fd,),
        spare=Path(f"/proc/self/fd/{spare_fd}"),
    )


def _memory_streams() -> _Streams:
    """Return memory files for a run whose in-flight folder cannot be written."""
    events_fd = os.memfd_create("onwatch-events")
    output_fd = os.memfd_create("onwatch-output")
    # The child inherits both under the same numbers, so the same /proc path names them in
    # both processes; the plugin opens the events path as it would a file.
    return _Streams(
        events=Path(f"/proc/self/fd/{events_fd}"),
        output=Path(f"/proc/self/fd/{output_fd}"),
        output_fd=output_fd,
        fds=(events_fd, output_fd),
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
    """Reads the events a running pytest process appends to its file (then to its spare)."""

    def __init__(
        self, path: Path, on_event: EventHandler | None, spare: Path | None = None
    ) -> None:
        self.path = path
        self.on_event = on_event
        self.spare = spare
        self.offsets = [0, 0]
        self.events: list[dict[str, Any]] = []

    def read(self) -> None:
        """Take in the complete lines written since the last read."""
        # The plugin moves to the spare for good on the first write the file refuses: every
        # complete line of the file comes before every line of the spare.
        self._read(0, self.path)
        if self.spare is not None:
            self._read(1, self.spare)

    def _read(self, index: int, path: Path) -> None:
        with path.open("rb") as handle:
            handle.seek(self.offsets[index])
            data = handle.read()
        end = data.rfind(b"\n") + 1
        if not end:
            return
        self.offsets[index] += end
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
