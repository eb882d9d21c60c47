"""What the sweep for leftover processes adds to each run.

After every run, onwatch looks for processes that still carry the run's id and kills them
(``onwatch.runner.sweep``). This measures that sweep on the host as it is (nothing to kill),
against a baseline measured in the same script: one ``python -m pytest`` run of a single
trivial test, the least work a run does anyway. It also measures the full scan that recovery
does after a crash, which reads every process. Target: sweep/run <= 0.02.

    python bench/process_sweep.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from onwatch.runner.sweep import sweep


def timed_run(cwd: Path) -> float:
    """Run one trivial test under pytest and return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"],
        cwd=cwd,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def timed_sweep(since: float) -> float:
    """Sweep for a run id nobody carries and return its wall time in seconds."""
    started = time.perf_counter()
    if sweep(str(uuid.uuid4()), since):
        raise SystemExit("the sweep killed something: run this on a quiet host")
    return time.perf_counter() - started


def main() -> None:
    """Measure and print the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="onwatch-bench-"))
    try:
        (root / "test_one.py").write_text("def test_one():\n    assert True\n")
        timed_run(root)  # warm the file cache
        runs, sweeps, scans = [], [], []
        for _ in range(args.rounds):
            since = time.time()
            runs.append(timed_run(root))
            sweeps.append(timed_sweep(since))
            scans.append(timed_sweep(0.0))
        print(f"processes on the host:      {len(psutil.pids())}")
        print(f"rounds:                     {args.rounds}")
        print("                           fastest   median  (ms)")
        for name, times in (
            ("one-test pytest run:", runs),
            ("sweep after a run:", sweeps),
            ("full scan (recovery):", scans),
        ):
            print(f"{name:27s}{min(times) * 1000:8.1f} {statistics.median(times) * 1000:8.1f}")
        ratio = statistics.median(sweeps) / statistics.median(runs)
        print(f"ratio sweep/run (median):   {ratio:8.4f}  (target <= 0.02)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
