"""Overload is never silent: tell people when onwatch cannot keep up with its schedule.

Over a sliding window (``overload_window``), the scheduler reports each slot it started, with
how late the run started after its planned moment, and each slot it skipped because the
check's previous run was still going. When more than ``overload_skipped`` of the slots were
skipped, or the 95th percentile of the start lateness exceeds ``overload_lateness``, onwatch is
overloaded: one ``monitor.degraded`` (``details.problem = "overloaded"``, with the figures)
opens the episode and one ``monitor.recovered`` ends it. A window with fewer than
``MIN_SLOTS`` slots says too little to judge.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from onwatch.channels.notification import Event, Notification
from onwatch.durations import format_duration
from onwatch.model import utcnow
from onwatch.state.load import Load

log = logging.getLogger("onwatch.scheduler")
MIN_SLOTS = 5
EVALUATE_EVERY = 1.0


@dataclass(frozen=True)
class Figures:
    """The slots of one window: how many, how many skipped, how late the others started."""

    slots: int
    skipped: int
    lateness_p95: float

    @property
    def skipped_share(self) -> float:
        """Return the share of the slots that were skipped (0 when there were none)."""
        return self.skipped / self.slots if self.slots else 0.0


class OverloadMonitor:
    """Keeps the window of slot figures and notifies the start and end of each overload."""

    def __init__(
        self,
        *,
        skipped_share: float,
        lateness: float,
        window: float,
        notify: Callable[[Notification], None],
        load: Load | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.skipped_share = skipped_share
        self.lateness = lateness
        self.window = window
        self.notify = notify
        self.load = load if load is not None else Load()
        self.clock = clock
        self.monotonic = monotonic
        self.since: datetime | None = None  # when the current overload began
        self._slots: deque[tuple[float, float | None]] = deque()  # (when, lateness or skipped)
        self._lock = threading.Lock()  # runs start in worker threads
        self._last_evaluated: float | None = None

    def started(self, lateness: float) -> None:
        """Note a slot whose run started ``lateness`` seconds after its planned moment."""
        with self._lock:
            self._slots.append((self.monotonic(), max(0.0, lateness)))

    def skipped(self, check: str, reason: str = "overlap") -> None:
        """Note a slot that was not run."""
        self.load.count_skipped(check, reason)
        with self._lock:
            self._slots.append((self.monotonic(), None))

    def figures(self) -> Figures:
        """Return the figures of the slots within the window that ends now."""
        horizon = self.monotonic() - self.window
        with self._lock:
            while self._slots and self._slots[0][0] < horizon:
                self._slots.popleft()
            late = sorted(lateness for _, lateness in self._slots if lateness is not None)
            slots = len(self._slots)
        return Figures(slots=slots, skipped=slots - len(late), lateness_p95=_p95(late))

    def overloaded(self, figures: Figures) -> bool:
        """Tell whether these figures are an overload."""
        return figures.slots >= MIN_SLOTS and (
            figures.skipped_share > self.skipped_share or figures.lateness_p95 > self.lateness
        )

    def evaluate(self) -> Figures | None:
        """Judge the window (at most once a second); notify when an overload starts or ends."""
        now = self.monotonic()
        if self._last_evaluated is not None and now - self._last_evaluated < EVALUATE_EVERY:
            return None
        self._last_evaluated = now
        figures = self.figures()
        overloaded = self.overloaded(figures)
        self.load.set_figures(overloaded, figures.skipped_share, figures.lateness_p95)
        if overloaded and self.since is None:
            self.since = self.clock()
            self._began(self.since, figures)
        elif not overloaded and self.since is not None:
            since, self.since = self.since, None
            self._ended(since, figures)
        return figures

    def _details(self, since: datetime, figures: Figures) -> dict[str, object]:
        return {
            "problem": "overloaded",
            "since": since.isoformat(),
            "window_seconds": self.window,
            "slots": figures.slots,
            "skipped": figures.skipped,
            "skipped_share": round(figures.skipped_share, 3),
            "lateness_p95_seconds": round(figures.lateness_p95, 3),
        }

    def _began(self, since: datetime, figures: Figures) -> None:
        window = format_duration(self.window)
        summary = (
            f"onwatch cannot keep up with its schedule: over the last {window}, "
            f"{figures.skipped} of {figures.slots} slots were skipped "
            f"({figures.skipped_share:.0%}) and runs started up to "
            f"{figures.lateness_p95:.1f} s late (p95)"
        )
        log.warning(
            "overloaded",
            extra={"fields": {k: v for k, v in self._details(since, figures).items()}},
        )
        self.notify(
            Notification(
                event=Event.MONITOR_DEGRADED,
                key=f"monitor.overloaded|{since.isoformat()}",
                summary=summary,
                severity="warning",
                details=self._details(since, figures),
            )
        )

    def _ended(self, since: datetime, figures: Figures) -> None:
        lasted = format_duration((self.clock() - since).total_seconds())
        summary = f"onwatch keeps up with its schedule again (overloaded for {lasted})"
        log.info("no longer overloaded", extra={"fields": {"lasted": lasted}})
        self.notify(
            Notification(
                event=Event.MONITOR_RECOVERED,
                key=f"monitor.overloaded.ended|{since.isoformat()}",
                summary=summary,
                severity="info",
                details=self._details(since, figures),
            )
        )


def _p95(ordered: list[float]) -> float:
    """Return the 95th percentile (nearest rank) of sorted values; 0 for none."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
