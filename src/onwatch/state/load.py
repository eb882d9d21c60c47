"""How well the scheduler keeps up with its slots, as ``/metrics`` shows it.

The daemon's overload monitor writes here; the web reads a snapshot. Counters only grow;
the share of skipped slots and the start lateness are figures over the monitor's window.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """A consistent copy of a ``Load``."""

    overloaded: bool = False
    skipped_share: float = 0.0  # skipped slots / slots, over the window
    lateness_p95: float = 0.0  # seconds after its planned moment that a run starts, p95
    # (check, reason) -> slots skipped since start
    skipped: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))


class Load:
    """Thread-safe figures of the scheduler's load."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped: dict[tuple[str, str], int] = {}
        self._figures = (False, 0.0, 0.0)

    def count_skipped(self, check: str, reason: str) -> None:
        """Count one slot of ``check`` that was not run, and why."""
        with self._lock:
            self._skipped[check, reason] = self._skipped.get((check, reason), 0) + 1

    def set_figures(self, overloaded: bool, skipped_share: float, lateness_p95: float) -> None:
        """Keep the latest figures over the window."""
        with self._lock:
            self._figures = (overloaded, skipped_share, lateness_p95)

    def snapshot(self) -> LoadSnapshot:
        """Return a copy of everything known."""
        with self._lock:
            overloaded, share, p95 = self._figures
            return LoadSnapshot(overloaded, share, p95, MappingProxyType(dict(self._skipped)))
