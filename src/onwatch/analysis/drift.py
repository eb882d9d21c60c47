"""Selection drift: a run that tested much less than usual is an error, not a pass.

A test suite can quietly stop testing: a marker renamed, a folder moved, a skip condition that
is always true. Such a run is green in plain pytest; onwatch calls it an error.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from onwatch.model import Outcome, Run, RunStatus

MIN_HISTORY = 3  # runs needed before a drop in collected tests means something


def drift(run: Run, recent_collected: list[int], min_ratio: float) -> str | None:
    """Say why ``run`` tested too little to count, or return None.

    ``recent_collected`` holds the collected counts of the check's previous runs.
    """
    if run.status not in (RunStatus.PASSED, RunStatus.FAILED):
        return None  # already an error or a timeout: its own reason says more
    finals = run.final_results()
    if finals and all(r.outcome is Outcome.SKIPPED for r in finals):
        return (
            f"every test was skipped ({len(finals)} of {len(finals)}): the run tested nothing; "
            "check the skip conditions and the environment the tests see"
        )
    if min_ratio <= 0 or run.collected is None or len(recent_collected) < MIN_HISTORY:
        return None
    usual = statistics.median(recent_collected)
    if run.collected < min_ratio * usual:
        return (
            f"the selection collected {run.collected} tests, fewer than {min_ratio:.0%} of its "
            f"recent median of {usual:g}: were tests removed or renamed, or a marker changed?"
        )
    return None


def with_drift(run: Run, recent_collected: list[int], min_ratio: float) -> Run:
    """Return ``run``, made a run error when its selection drifted."""
    reason = drift(run, recent_collected, min_ratio)
    if reason is None:
        return run
    return replace(run, status=RunStatus.ERROR, error=f"selection drift: {reason}")
