"""Find and kill the processes a run left behind, however they detached from it.

Every process a run starts inherits ``ONWATCH_RUN_ID`` in its environment, and keeps it through
``setsid``, a double fork or a new process group: the kernel keeps a process's initial
environment in ``/proc/PID/environ``. After a run's pytest process has ended (finished, timed
out or stopped), ``sweep`` finds the processes that still carry the run's id and kills them:
SIGTERM, a short grace, then SIGKILL. Only processes started after the run began are read, so a
sweep on a quiet host costs a few milliseconds. A process started with an empty environment
(``env -i``) is found while a marked process is its parent or ancestor, not once it detached.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from onwatch.runner import RUN_ID_ENV

if TYPE_CHECKING:
    import psutil

log = logging.getLogger("onwatch.runner")
GRACE_SECONDS = 1.0
# Process start times have clock-tick resolution; a process started with the run may read as
# started a little before it.
START_SLACK_SECONDS = 1.0
DESCRIBED = 120  # characters of a command line in a description


def sweep(run_id: str, since: float = 0.0) -> list[str]:
    """Kill the processes whose environment carries ``run_id``; describe each one killed.

    ``since`` is the run's start (``time.time()``): older processes cannot carry its id.
    """
    try:
        found = marked(run_id, since)
    except Exception:  # noqa: BLE001 - no /proc, say: the run is recorded all the same
        log.warning("cannot look for the processes run %s left behind", run_id, exc_info=True)
        return []
    if not found:
        return []
    described = [_describe(proc) for proc in found]
    _signal(found, "terminate")
    alive = _wait(found, GRACE_SECONDS)
    if alive:
        _signal(alive, "kill")
        _wait(alive, GRACE_SECONDS)
    return described


def marked(run_id: str, since: float = 0.0) -> list[psutil.Process]:
    """Return the live processes started after ``since`` whose environment carries ``run_id``."""
    import psutil

    me = os.getpid()
    after = since - START_SLACK_SECONDS
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me or (proc.info["create_time"] or 0.0) < after:
            continue
        try:
            if proc.environ().get(RUN_ID_ENV) == run_id:
                found[proc.pid] = proc
                # A child that was given an environment of its own (``env -i``, a browser's
                # helpers) is still found while its parent carries the id.
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
        except psutil.Error:  # gone, a zombie, or another user's
            continue
    found.pop(me, None)
    return list(found.values())


def _describe(proc: psutil.Process) -> str:
    import psutil

    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = "?"
    if len(command) > DESCRIBED:
        command = command[: DESCRIBED - 3] + "..."
    return f"pid {proc.pid}: {command}"


def _signal(processes: Iterable[psutil.Process], how: str) -> None:
    import psutil

    for proc in processes:
        try:
            getattr(proc, how)()
        except psutil.Error:
            pass


def _wait(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process is gone or a zombie; return those still running."""
    # Not psutil.wait_procs: a process that is not our child stays a zombie until its new
    # parent reaps it, and waiting for it to vanish would always last the whole timeout.
    deadline = time.monotonic() + timeout
    alive = processes
    while True:
        alive = [proc for proc in alive if _running(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _running(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
