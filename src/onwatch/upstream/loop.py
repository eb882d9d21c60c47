"""The thread of ``onwatch run`` that polls each watch on its own interval."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from onwatch.errors import WatchBusy

if TYPE_CHECKING:
    from onwatch.upstream.watcher import Watcher

log = logging.getLogger("onwatch.upstream")


class WatchLoop(threading.Thread):
    """Polls every watch once at start, then every ``every`` seconds, one watch at a time."""

    def __init__(self, watcher: Watcher, intervals: dict[str, float]) -> None:
        super().__init__(name="onwatch-upstream", daemon=True)
        self.watcher = watcher
        self.intervals = dict(intervals)
        self.stopping = threading.Event()
        self.polls = 0  # completed polls, for tests and logs

    def run(self) -> None:
        """Poll what is due until stopped."""
        due = dict.fromkeys(self.intervals, time.monotonic())
        while not self.stopping.is_set():
            now = time.monotonic()
            for name in sorted(due, key=due.__getitem__):
                if self.stopping.is_set() or due[name] > now:
                    continue
                try:
                    self.watcher.check(name, backoff=True)
                except WatchBusy as exc:
                    log.warning(str(exc), extra={"fields": {"watch": name}})
                except Exception:  # noqa: BLE001 - one broken watch must not end the others
                    log.exception("upstream watch failed", extra={"fields": {"watch": name}})
                self.polls += 1
                due[name] = time.monotonic() + self.intervals[name]
            self.stopping.wait(max(0.05, min(due.values()) - time.monotonic()))

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to stop after the poll in progress, and wait up to ``timeout``."""
        self.stopping.set()
        if self.is_alive():
            self.join(timeout)
