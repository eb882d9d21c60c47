"""Ten short browser journeys: ``onwatch once`` against plain ``pytest`` on the same tests.

Builds a throwaway project from the browser suite in tests/fixtures/browser (a small shop
served on 127.0.0.1, Debian's Chromium driven by Playwright, one browser per pytest process)
with ten journeys, then alternates ``python -m pytest`` and ``onwatch once`` on it and prints
the medians and their ratio. Target: ratio <= 1.10.

Then ten journeys that fail, with artifacts off and on failure: the difference, divided by
ten, is what capturing a screenshot, the page HTML and the console log costs per failing
journey.

    python bench/browser_journeys.py [--rounds 7]
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

FIXTURE = Path(__file__).parent.parent / "tests" / "fixtures" / "browser"
JOURNEYS = """\
import pytest


@pytest.mark.parametrize("index", range(10))
def test_journey(page, shop, index):
    page.goto(shop + "/")
    page.click("#cart")
    page.click("#checkout")
    assert page.inner_text("h1") == {expected!r}
"""


def project(root: Path, expected: str, artifacts: str) -> Path:
    """Write the shop suite, ten journeys and a config whose check selects them."""
    shutil.copytree(FIXTURE, root / "browser")
    for path in (root / "browser").glob("test_*.py"):
        path.unlink()
    (root / "browser" / "test_ten.py").write_text(JOURNEYS.format(expected=expected))
    (root / "onwatch.toml").write_text(
        '[onwatch]\nlisten = ""\n\n[checks.journeys]\ntests = ["browser/test_ten.py"]\n'
        f'every = "5m"\ntimeout = "5m"\nartifacts = "{artifacts}"\n'
    )
    return root


def timed(command: list[str], cwd: Path, expect: int) -> float:
    """Run ``command`` and return its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{command} exited {done.returncode}:\n{done.stdout.decode()[-2000:]}")
    return elapsed


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    onwatch = [python, "-m", "onwatch", "once", "--quiet"]
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "browser/test_ten.py"]
    with tempfile.TemporaryDirectory() as tmp:
        passing = project(Path(tmp) / "passing", "Checkout", "on-failure")
        plain, watched = [], []
        timed(pytest, passing, 0)  # warm the disk cache and Chromium
        for _ in range(args.rounds):
            plain.append(timed(pytest, passing, 0))
            watched.append(timed(onwatch, passing, 0))
        off = project(Path(tmp) / "off", "Receipt", "off")
        kept = project(Path(tmp) / "kept", "Receipt", "on-failure")
        without, with_capture = [], []
        for _ in range(args.rounds):
            without.append(timed(onwatch, off, 1))
            with_capture.append(timed(onwatch, kept, 1))
    base, ours = statistics.median(plain), statistics.median(watched)
    print(f"10 passing journeys, median of {args.rounds} rounds")
    print(f"  python -m pytest   {base:6.2f} s")
    print(f"  onwatch once       {ours:6.2f} s")
    print(f"  ratio              {ours / base:6.2f}  (target <= 1.10)")
    cost = (statistics.median(with_capture) - statistics.median(without)) / 10
    print("10 failing journeys through onwatch once, median")
    print(f"  artifacts off      {statistics.median(without):6.2f} s")
    print(f"  artifacts kept     {statistics.median(with_capture):6.2f} s")
    print(f"  capture per failing journey  {cost * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
