"""What ``onwatch once`` adds to a plain pytest run of the same selection.

Builds a throwaway project with N trivial tests, then alternates ``python -m pytest`` and
``onwatch once`` on it (recording into a real SQLite file) and prints the medians and their
ratio. Target: ratio <= 1.15 for 50 tests.

    python bench/once_overhead.py [--tests 50] [--rounds 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """\
import pytest


@pytest.mark.parametrize("index", range({count}))
def test_trivial(index):
    assert index >= 0
"""


def timed(command: list[str], cwd: Path, expect: int = 0) -> float:
    """Run ``command`` and return its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{command} exited {done.returncode}:\n{done.stdout.decode()}")
    return elapsed


def compile_onwatch() -> None:
    """Byte-compile onwatch as an installed wheel is, even in an editable checkout."""
    import compileall

    import onwatch

    compileall.compile_dir(Path(onwatch.__file__).parent, quiet=1)


def main() -> None:
    """Measure and print the ratio."""
    compile_onwatch()
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="onwatch-bench-"))
    try:
        (root / "suite").mkdir()
        (root / "suite" / "test_trivial.py").write_text(SUITE.format(count=args.tests))
        (root / "onwatch.toml").write_text('[checks.bench]\ntests = ["suite"]\nevery = "1m"\n')
        pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suite"]
        onwatch_cmd = [sys.executable, "-m", "onwatch", "once", "--quiet"]
        timed(pytest_cmd, root)  # warm the file cache and create the database first
        timed(onwatch_cmd, root)
        plain, watched = [], []
        for _ in range(args.rounds):
            plain.append(timed(pytest_cmd, root))
            watched.append(timed(onwatch_cmd, root))
        print(f"tests per run:            {args.tests}")
        print(f"rounds:                   {args.rounds}")
        print("                         fastest   median  (ms)")
        for name, times in (("python -m pytest:", plain), ("onwatch once:", watched)):
            print(f"{name:25s} {min(times) * 1000:7.0f}  {statistics.median(times) * 1000:7.0f}")
        # The fastest runs are the least disturbed by other work on the machine.
        fastest = min(watched) / min(plain)
        typical = statistics.median(watched) / statistics.median(plain)
        print(f"ratio onwatch/pytest:     {fastest:7.3f}  {typical:7.3f}  (target <= 1.15)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
