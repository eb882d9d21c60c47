"""Parse and print human durations such as ``"90s"``, ``"5m"`` or ``"1h30m"``.

``Duration`` is the field type of every duration key of the configuration (``[checks.NAME]``
and the channel settings alike): a number of seconds, read from what people write, between
1 ms and 10 years. ``Interval`` (how often: 1 s to 365 days) and ``Timeout`` (how long a run or
a wait may last: 1 s to 7 days) are narrower. A value out of its range is a config error that
names the range: ``every = "1ms"`` would fill the database with skipped slots, and
``every = "99999999999w"`` would overflow the scheduler's dates.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_HINT = 'write a number and a unit, e.g. "30s", "5m", "2h" or "1h30m"'
DAY = 86400.0
# The ranges, bounds included, of the duration types below: (shortest, longest) in seconds.
ANY_RANGE = (0.001, 3650 * DAY)
INTERVAL_RANGE = (1.0, 365 * DAY)  # how often, and how long a silence lasts
TIMEOUT_RANGE = (1.0, 7 * DAY)


def parse_duration(value: object) -> float:
    """Return the number of seconds in ``value`` (a duration string or a number of seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text:
            raise ValueError(f"an empty string is not a duration; {DURATION_HINT}")
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    else:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero; {DURATION_HINT}")
    return seconds


def bounded_duration(value: object, low: float, high: float) -> float:
    """Return ``parse_duration(value)``, or raise ValueError naming the range it is out of."""
    seconds = parse_duration(value)
    if not low <= seconds <= high:
        side = "shorter" if seconds < low else "longer"
        limit = low if seconds < low else high
        raise ValueError(
            f"{value!r} is {side} than {format_duration(limit)}; write a duration from "
            f"{format_duration(low)} to {format_duration(high)}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Return ``seconds`` in the compact form ``parse_duration`` reads (``"1h30m"``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds != int(seconds) and seconds < 60:
        return f"{seconds:.1f}s"
    remaining = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


class _Seconds:
    """Pydantic metadata of the duration types: parse what people write, check its range."""

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        # Imported here so that reading a cached configuration never loads pydantic.
        from pydantic_core import core_schema

        def parse(value: object) -> float:
            return bounded_duration(value, self.low, self.high)

        return core_schema.no_info_before_validator_function(parse, handler(source))


Duration = Annotated[float, _Seconds(*ANY_RANGE)]
Interval = Annotated[float, _Seconds(*INTERVAL_RANGE)]
Timeout = Annotated[float, _Seconds(*TIMEOUT_RANGE)]
