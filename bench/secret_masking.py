"""What masking secrets costs: ``onwatch once`` with and without secrets, and ``mask_run``.

1. Builds a throwaway project with N failing tests, each printing output and failing with a
   message that holds a secret, and alternates ``onwatch once`` on a config without secrets and
   on the same config with 20 secrets (all looked up with ``env:``). Prints the medians and the
   ratio. Target: ratio <= 1.05.
2. In process: masks a synthetic run of 50,000 failed results (message, traceback, output)
   with 20 secrets, against a copy of the same run with no secrets (the masker then returns at
   once). Prints the time per 1,000 results.

    python bench/secret_masking.py [--tests 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECRETS = {f"SECRET_{i:02d}": f"v{i:02d}-Pr0d/T0ken+K3y=abcdefgh" for i in range(20)}

SUITE = """\
import os

import pytest


@pytest.mark.parametrize("index", range({count}))
def test_leaky(index):
    token = os.environ.get("SECRET_07", "v07-Pr0d/T0ken+K3y=abcdefgh")
    print("calling with", token, "header", {{"Authorization": "Bearer " + token}})
    assert index < 0, f"401 for https://api.example.com/x?token={{token}}"
"""

CONFIG = """\
[onwatch]
database = "sqlite:///{db}"
{secrets}
[checks.leaky]
tests = ["suite"]
every = "5m"
"""


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run ``command`` (which fails, as its tests do) and return its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 1:
        raise SystemExit(f"{command} exited {done.returncode}:\n{done.stderr.decode()}")
    return elapsed


def once_ratio(tests: int, rounds: int) -> None:
    """Print ``onwatch once`` medians without and with secrets, and their ratio."""
    root = Path(tempfile.mkdtemp(prefix="onwatch-bench-"))
    try:
        (root / "suite").mkdir()
        (root / "suite" / "test_leaky.py").write_text(SUITE.format(count=tests))
        refs = ", ".join(f'{name} = "env:BENCH_{name}"' for name in SECRETS)
        (root / "plain.toml").write_text(CONFIG.format(db="plain.db", secrets=""))
        (root / "masked.toml").write_text(
            CONFIG.format(db="masked.db", secrets=f"secrets = {{ {refs} }}")
        )
        env = {**os.environ, **{f"BENCH_{n}": v for n, v in SECRETS.items()}}
        onwatch = [sys.executable, "-m", "onwatch", "-c"]
        plain, masked = [], []
        for config in ("plain.toml", "masked.toml"):  # warm-up: config cache, schema
            timed([*onwatch, config, "once", "--quiet"], root, env)
        for _ in range(rounds):
            plain.append(timed([*onwatch, "plain.toml", "once", "--quiet"], root, env))
            masked.append(timed([*onwatch, "masked.toml", "once", "--quiet"], root, env))
        a, b = statistics.median(plain), statistics.median(masked)
        print(f"onwatch once, {tests} failing tests, no secrets : {a:.3f} s (median of {rounds})")
        print(f"onwatch once, {tests} failing tests, 20 secrets : {b:.3f} s")
        print(f"ratio: {b / a:.3f}  (target <= 1.05)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def mask_run_cost(results: int) -> None:
    """Print what ``mask_run`` costs per 1,000 failed results with 20 secrets."""
    from datetime import UTC, datetime

    from onwatch.masking import Masker
    from onwatch.model import Outcome, Run, RunStatus, TestResult
    from onwatch.runner.execute import mask_run

    token = SECRETS["SECRET_07"]
    now = datetime.now(UTC)
    run = Run(
        id="bench",
        check="leaky",
        status=RunStatus.FAILED,
        started_at=now,
        finished_at=now,
        collected=results,
        results=tuple(
            TestResult(
                nodeid=f"suite/test_leaky.py::test_leaky[{i}]",
                outcome=Outcome.FAILED,
                phase="call",
                duration=0.01,
                message=f"AssertionError: 401 for https://api.example.com/x?token={token}",
                traceback=("    def test_leaky(index):\n" * 20) + f"E   token={token}\n",
                output=f"--- Captured stdout call ---\ncalling with {token}\n" * 3,
            )
            for i in range(results)
        ),
    )
    timings = {}
    for label, masker in (("no secrets", Masker()), ("20 secrets", Masker(SECRETS))):
        started = time.perf_counter()
        masked = mask_run(run, masker)
        timings[label] = time.perf_counter() - started
        if label == "20 secrets" and token in (masked.results[0].message or ""):
            raise SystemExit("the secret was not masked")
    for label, seconds in timings.items():
        per_thousand = seconds * 1e6 / results
        print(f"mask_run, {results} failed results, {label}: {per_thousand:.1f} ms per 1,000")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results", type=int, default=50_000)
    args = parser.parse_args()
    once_ratio(args.tests, args.rounds)
    mask_run_cost(args.results)


if __name__ == "__main__":
    main()
