"""A run of 50,000 tests: recorded whole, and how much longer than plain pytest it takes.

Runs ``python -m pytest`` and ``onwatch once`` once each on the same 50,000 trivial tests,
checks that the database holds every result, and prints the ratio. Target: <= 1.2.

    python bench/large_run.py [--tests 50000]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from once_overhead import SUITE, compile_onwatch, timed


def main() -> None:
    """Measure and print the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=50_000)
    args = parser.parse_args()
    compile_onwatch()
    root = Path(tempfile.mkdtemp(prefix="onwatch-bench-large-"))
    try:
        (root / "suite").mkdir()
        (root / "suite" / "test_trivial.py").write_text(SUITE.format(count=args.tests))
        (root / "onwatch.toml").write_text(
            '[checks.large]\ntests = ["suite"]\nevery = "1h"\ntimeout = "30m"\n'
        )
        plain = timed(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suite"], root
        )
        watched = timed([sys.executable, "-m", "onwatch", "once", "--quiet"], root)
        with sqlite3.connect(root / "onwatch.db") as db:
            stored = db.execute("select count(*) from results").fetchone()[0]
        print(f"tests per run:            {args.tests}")
        print(f"results in the database:  {stored}")
        print(f"python -m pytest:         {plain:7.2f} s")
        print(f"onwatch once:             {watched:7.2f} s")
        print(f"ratio onwatch/pytest:     {watched / plain:7.3f}  (target <= 1.2)")
        if stored != args.tests:
            raise SystemExit("not every result was recorded")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
