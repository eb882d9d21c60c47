"""Wait for a condition rather than sleep a fixed time: as fast as the machine allows, no flakes.

A test that needs something to happen in another thread or process polls for it with a
deadline; one that needs time to pass passes a clock instead (``FakeClock``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta


def wait_until(
    condition: Callable[[], object],
    what: str = "the condition",
    timeout: float = 10.0,
    interval: float = 0.01,
) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not so within {timeout:g} s")
        time.sleep(interval)


class FakeClock:
    """A clock for code that takes ``clock=``: it stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock on by ``seconds`` and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now
