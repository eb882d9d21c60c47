"""Faults: which Bankly features misbehave on purpose, and how.

Six features (``login``, ``settings``, ``follow``, ``chat``, ``deposit``, ``auth``) each run in
one of three modes: ``ok``, ``broken`` (misbehaves the way a bad deploy would, mostly with a
cheerful 2xx) or ``slow`` (answers after a delay). ``auth`` is the API's check of a session
token: broken, it answers 401 "token has been revoked" to every authenticated API call while
logging in still works, the way a monitoring account whose token was revoked sees production.
This module needs no web framework, so a command line can parse ``--faults`` before the app loads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

FEATURES: Final = ("login", "settings", "follow", "chat", "deposit", "auth")
MODES: Final = ("ok", "broken", "slow")
DEFAULT_DELAY: Final = 2.0
MAX_DELAY: Final = 60.0


class Faults:
    """Which features misbehave and how; safe to read and change from any thread."""

    def __init__(
        self, modes: Mapping[str, str] | None = None, *, delay: float = DEFAULT_DELAY
    ) -> None:
        problems = _fault_problems(modes or {}, controls=False)
        problems += _fault_problems({"slow_delay": delay})
        if problems:
            raise ValueError("invalid faults: " + "; ".join(problems))
        self._lock = threading.Lock()
        self._modes = dict.fromkeys(FEATURES, "ok") | dict(modes or {})
        self._delay = float(delay)

    @classmethod
    def parse(cls, spec: str, *, delay: float = DEFAULT_DELAY) -> Faults:
        """Build faults from ``"chat=broken,deposit=slow"``; raise ValueError on any bad entry."""
        modes: dict[str, str] = {}
        problems: list[str] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            feature, sep, mode = part.partition("=")
            if sep:
                modes[feature.strip()] = mode.strip()
            else:
                problems.append(f"{part!r} is not feature=mode")
        problems += _fault_problems(modes, controls=False)
        if problems:
            raise ValueError(f"invalid faults {spec!r}: " + "; ".join(problems))
        return cls(modes, delay=delay)

    @property
    def delay(self) -> float:
        """Seconds a ``slow`` feature waits before answering."""
        with self._lock:
            return self._delay

    def mode(self, feature: str) -> str:
        """Return the current mode of one feature."""
        with self._lock:
            return self._modes[feature]

    def is_broken(self, feature: str) -> bool:
        """Tell whether a feature should misbehave right now."""
        return self.mode(feature) == "broken"

    def delay_for(self, feature: str) -> float:
        """Return how long a feature should stall: the delay if it is slow, else zero."""
        with self._lock:
            return self._delay if self._modes[feature] == "slow" else 0.0

    def apply(self, changes: Mapping[str, object]) -> None:
        """Apply ``{"chat": "broken", "reset": true, "slow_delay": 0.5}``, all or nothing."""
        problems = _fault_problems(changes)
        if problems:
            raise ValueError("; ".join(problems))
        with self._lock:
            if changes.get("reset"):
                self._modes = dict.fromkeys(FEATURES, "ok")
            self._modes |= {f: str(m) for f, m in changes.items() if f in FEATURES}
            if "slow_delay" in changes:
                self._delay = float(changes["slow_delay"])  # type: ignore[arg-type]

    def set(self, feature: str, mode: str) -> None:
        """Put one feature in a mode."""
        self.apply({feature: mode})

    def reset(self) -> None:
        """Make every feature healthy again (the delay is kept)."""
        self.apply({"reset": True})

    def snapshot(self) -> dict[str, Any]:
        """Return the modes and delay as plain JSON-ready data."""
        with self._lock:
            return {"faults": dict(self._modes), "slow_delay": self._delay}

    def __str__(self) -> str:
        with self._lock:
            return ",".join(f"{f}={m}" for f, m in self._modes.items() if m != "ok")

    def __repr__(self) -> str:
        return f"Faults({str(self)!r}, delay={self.delay})"


def _fault_problems(changes: Mapping[str, object], *, controls: bool = True) -> list[str]:
    """List every problem in a faults change, so one answer names them all.

    ``controls`` allows the ``reset`` and ``slow_delay`` keys next to feature names.
    """
    problems = []
    for key, value in changes.items():
        if controls and key == "reset":
            if not isinstance(value, bool):
                problems.append(f"reset must be true or false, not {value!r}")
        elif controls and key == "slow_delay":
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= MAX_DELAY
            ):
                problems.append(
                    f"slow_delay must be a number of seconds from 0 to {MAX_DELAY:g}, not {value!r}"
                )
        elif key not in FEATURES:
            problems.append(f"unknown feature {key!r} (choose from {', '.join(FEATURES)})")
        elif value not in MODES:
            problems.append(f"unknown mode {value!r} for {key} (choose from {', '.join(MODES)})")
    return problems
