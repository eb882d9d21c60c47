"""Time the steps of a test, so that a slow journey shows which step got slow.

``with step("log in"): ...`` inside any test records ``("step", {"name", "seconds", "ok"})`` as a
user property of the test, which onwatch stores with its result. Outside a test that onwatch
runs it only runs the block: a team's own pytest runs see no difference.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["step"]

PLUGIN = "onwatch.runner.plugin"


@contextmanager
def step(name: str) -> Iterator[None]:
    """Measure the block's wall time and record it as a step of the running test."""
    item = _running_test()
    started = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        if item is not None:
            seconds = round(time.perf_counter() - started, 3)
            item.user_properties.append(("step", {"name": name, "seconds": seconds, "ok": ok}))


def _running_test() -> Any:
    # Looked up, not imported: without the plugin loaded there is no test of onwatch's running,
    # and importing it would import pytest into whatever called this.
    plugin = sys.modules.get(PLUGIN)
    return getattr(plugin, "current_item", None)
