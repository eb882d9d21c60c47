"""A browser test that hangs past its check's timeout leaves no Chromium behind.

``onwatch once`` runs a journey that waits forever with Chromium open. Every process of that
run carries an environment marker from the check's ``env``; Chromium's renderers, which start
with an environment of their own, are found as descendants of marked processes while the run
is alive. After the timeout, none of the processes seen may survive.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from browser import require_chromium_and_driver
from suites import make_project

pytestmark = pytest.mark.e2e

MARKER_ENV = "BROWSER_CLEANUP_MARKER"

Seen = dict[tuple[int, float], str]  # (pid, create time) -> name


def marked(marker: str) -> list[psutil.Process]:
    """Return the processes whose environment carries ``marker``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == marker:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def look(marker: str, seen: Seen) -> None:
    """Add the marked processes and all their descendants to ``seen``."""
    for proc in marked(marker):
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            try:
                seen[(member.pid, member.create_time())] = member.name()
            except psutil.Error:
                continue


def survivors(seen: Seen) -> list[str]:
    """Return the processes of ``seen`` still running (the same pid and start time)."""
    alive = []
    for (pid, created), name in seen.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {name}: {' '.join(proc.cmdline())[:120]}")
        except psutil.Error:
            continue
    return alive


def test_a_hanging_browser_test_times_out_and_leaves_no_chromium(tmp_path: Path) -> None:
    require_chromium_and_driver()
    marker = uuid.uuid4().hex
    make_project(
        tmp_path,
        {
            "journey": {
                "tests": ["browser/test_hang.py"],
                "every": "1m",
                "timeout": "8s",
                "env": {MARKER_ENV: marker},
            }
        },
        suites=("browser",),
    )
    seen: Seen = {}
    with subprocess.Popen(
        [sys.executable, "-m", "onwatch", "once", "--json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            look(marker, seen)
            time.sleep(0.2)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    (run,) = json.loads(stdout)["runs"]
    assert run["status"] == "timeout", run
    # Node ids are relative to the suite's own rootdir (its pytest.ini).
    assert [(r["nodeid"], r["outcome"]) for r in run["results"]] == [
        ("test_hang.py::test_journey_that_hangs", "timeout")
    ]
    browsers = [name for name in seen.values() if name.startswith("chrom")]
    assert len(browsers) >= 3, f"Chromium never started: {sorted(seen.values())}"
    # Chromium's crash handlers leave their parent at once; they quit when the browser is gone.
    give_up = time.monotonic() + 5
    while (survivors(seen) or marked(marker)) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert survivors(seen) == []
    assert marked(marker) == []
