"""Pure shaping of stored history into what pages draw: time ranges, buckets, groups.

Nothing here does I/O; every function takes ``now`` or the rows it needs, so the page logic is
tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from onwatch.model import Outcome, TestResult, as_utc
from onwatch.store import HourRow, RunRow, TestRow

__all__ = [
    "RANGES",
    "ErrorGroup",
    "TimeRange",
    "bucket_seconds",
    "duration_percentiles",
    "first_line",
    "group_errors",
    "heatmap_rows",
    "pass_rate_points",
    "percentile",
    "time_range",
]

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
MAX_BUCKETS = 750
# Below this span pass rates are counted from the runs themselves, above it from the rollup.
RAW_SPAN = timedelta(hours=48)
BAD = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.XPASSED})


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The span a chart page shows: ``since <= t < until``."""

    since: datetime
    until: datetime
    key: str  # "1h", "24h", "7d", "30d" or "custom"

    @property
    def span(self) -> timedelta:
        """Return the length of the range."""
        return self.until - self.since

    def query(self) -> str:
        """Return the query string that selects this range again."""
        if self.key != "custom":
            return f"range={self.key}"
        return f"from={_minute(self.since)}&to={_minute(self.until)}"


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def time_range(key: str | None, start: str | None, end: str | None, now: datetime) -> TimeRange:
    """Return the range a page asked for; raise ValueError saying what is wrong with it."""
    if start or end:
        if not (start and end):
            raise ValueError("a custom range needs both from and to (YYYY-MM-DDTHH:MM, UTC)")
        since, until = _moment(start, "from"), _moment(end, "to")
        if since >= until:
            raise ValueError("from must be before to")
        if until - since > timedelta(days=400):
            raise ValueError("a custom range spans at most 400 days")
        return TimeRange(since, until, "custom")
    chosen = key or DEFAULT_RANGE
    if chosen not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}, or from and to")
    return TimeRange(now - RANGES[chosen], now, chosen)


def _moment(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a time like 2026-11-29T14:00 (UTC)") from None
    return as_utc(value)


def bucket_seconds(span: timedelta) -> int:
    """Return the width of one chart bucket: 5 minutes for short ranges, else an hour or more."""
    seconds = span.total_seconds()
    if seconds <= 2 * 3600:
        return 300
    return 3600 * max(1, math.ceil(seconds / 3600 / MAX_BUCKETS))


def _bucket_of(moment: datetime, width: int) -> float:
    stamp = as_utc(moment).timestamp()
    return stamp - stamp % width


def percentile(values: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile (``share`` in 0..1) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def duration_percentiles(
    durations: Iterable[tuple[datetime, float]], width: int
) -> tuple[list[tuple[float, float | None]], list[tuple[float, float | None]]]:
    """Return the p50 and p95 series of run durations per bucket of ``width`` seconds."""
    buckets: dict[float, list[float]] = {}
    for started, duration in durations:
        buckets.setdefault(_bucket_of(started, width), []).append(duration)
    p50: list[tuple[float, float | None]] = []
    p95: list[tuple[float, float | None]] = []
    for x, values in sorted(buckets.items()):
        p50.append((x, percentile(values, 0.5)))
        p95.append((x, percentile(values, 0.95)))
    return p50, p95


def pass_rate_points(hours: Iterable[HourRow], width: int) -> list[tuple[float, float | None, int]]:
    """Return (bucket start, pass rate in %, runs) per bucket that had runs."""
    totals: dict[float, list[int]] = {}
    for row in hours:
        total = totals.setdefault(_bucket_of(row.hour, width), [0, 0])
        total[0] += row.runs
        total[1] += row.passed
    return [
        (x, 100.0 * passed / runs if runs else None, runs)
        for x, (runs, passed) in sorted(totals.items())
    ]


def hours_of_runs(rows: Iterable[RunRow]) -> list[HourRow]:
    """Return rollup-like rows, one per run, for ranges short enough to read runs directly."""
    return [
        HourRow(r.started_at, 1, 1 if r.status.value == "passed" else 0, r.duration) for r in rows
    ]


def first_line(text: str | None) -> str:
    """Return the first non-empty line of an error message, or "" when there is none."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Failures of one test that share the first line of their message."""

    message: str
    count: int
    first_seen: datetime
    last_seen: datetime
    last_run_id: str
    category: str | None


def group_errors(rows: Iterable[TestRow]) -> list[ErrorGroup]:
    """Group a test's bad results by the first line of their message, most frequent first."""
    groups: dict[str, list[TestRow]] = {}
    for row in rows:
        if row.result.outcome in BAD:
            key = first_line(row.result.message) or f"({row.result.outcome.value}, no message)"
            groups.setdefault(key, []).append(row)
    found = []
    for message, members in groups.items():
        members.sort(key=lambda r: r.started_at)
        found.append(
            ErrorGroup(
                message=message,
                count=len(members),
                first_seen=members[0].started_at,
                last_seen=members[-1].started_at,
                last_run_id=members[-1].run_id,
                category=members[-1].result.category,
            )
        )
    found.sort(key=lambda g: (-g.count, -g.last_seen.timestamp()))
    return found


def heatmap_rows(
    results: Iterable[tuple[str, TestResult]], limit: int
) -> tuple[list[str], dict[tuple[str, str], TestResult], int]:
    """Return test names (troubled tests first), cells by (test, run id), and tests left out."""
    cells: dict[tuple[str, str], TestResult] = {}
    bad: Counter[str] = Counter()
    tests: set[str] = set()
    for run_id, result in results:
        cells[(result.nodeid, run_id)] = result
        tests.add(result.nodeid)
        if result.outcome in BAD or result.outcome is Outcome.FLAKY:
            bad[result.nodeid] += 1
    ordered = sorted(tests, key=lambda name: (-bad[name], name))
    kept = ordered[:limit]
    shown = set(kept)
    return kept, {k: v for k, v in cells.items() if k[0] in shown}, len(ordered) - len(kept)


def ago(moment: datetime | None, now: datetime) -> str:
    """Return "5 min ago"-style text for a past moment ("in 3 min" for a future one)."""
    if moment is None:
        return "never"
    seconds = (as_utc(now) - as_utc(moment)).total_seconds()
    text = _span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def utc(moment: datetime | None) -> str:
    """Return a moment as "2026-11-29 14:05:09 UTC"."""
    if moment is None:
        return "—"
    return as_utc(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def step_series(rows: Iterable[TestRow]) -> dict[str, list[tuple[float, float]]]:
    """Return each named step's (run start, seconds), oldest first, from ``step()`` properties."""
    found: dict[str, list[tuple[float, float]]] = {}
    for row in sorted(rows, key=lambda r: r.started_at):
        for name, value in row.result.properties:
            if name != "step" or not isinstance(value, dict):
                continue
            step, seconds = value.get("name"), value.get("seconds")
            if isinstance(step, str) and isinstance(seconds, int | float):
                found.setdefault(step, []).append((as_utc(row.started_at).timestamp(), seconds))
    return found
