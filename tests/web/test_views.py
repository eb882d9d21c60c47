"""The pure shaping behind the pages: ranges, buckets, percentiles, error groups, heatmap rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onwatch.model import Outcome, TestResult
from onwatch.store import HourRow, TestRow
from onwatch.web import views

NOW = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)


def result(outcome: Outcome, message: str | None = None, nodeid: str = "t::a") -> TestResult:
    return TestResult(nodeid=nodeid, outcome=outcome, phase="call", duration=1.0, message=message)


def test_a_named_range_ends_now() -> None:
    window = views.time_range("7d", None, None, NOW)

    assert (window.since, window.until, window.key) == (NOW - timedelta(days=7), NOW, "7d")
    assert window.query() == "range=7d"


def test_the_default_range_is_24_hours() -> None:
    assert views.time_range(None, None, None, NOW).span == timedelta(hours=24)


def test_a_custom_range_is_read_as_utc_and_linkable_again() -> None:
    window = views.time_range(None, "2026-11-28T08:00", "2026-11-28T20:15", NOW)

    assert window.since == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert window.key == "custom"
    assert window.query() == "from=2026-11-28T08:00&to=2026-11-28T20:15"


@pytest.mark.parametrize(
    ("key", "start", "end", "says"),
    [
        ("5y", None, None, "range must be one of 1h, 24h, 7d, 30d"),
        (None, "2026-11-28T08:00", None, "needs both from and to"),
        (None, "yesterday", "2026-11-28T08:00", "is not a time like"),
        (None, "2026-11-28T09:00", "2026-11-28T08:00", "from must be before to"),
        (None, "2020-01-01T00:00", "2026-01-01T00:00", "at most 400 days"),
    ],
)
def test_a_bad_range_says_what_is_wrong(
    key: str | None, start: str | None, end: str | None, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        views.time_range(key, start, end, NOW)


def test_buckets_are_five_minutes_for_short_ranges_and_hours_beyond() -> None:
    assert views.bucket_seconds(timedelta(hours=1)) == 300
    assert views.bucket_seconds(timedelta(hours=24)) == 3600
    assert views.bucket_seconds(timedelta(days=30)) == 3600
    assert views.bucket_seconds(timedelta(days=90)) == 3 * 3600  # at most 750 buckets


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]

    assert views.percentile(values, 0.5) == 10.0
    assert views.percentile(values, 0.95) == 19.0
    assert views.percentile([7.0], 0.95) == 7.0


def test_duration_percentiles_are_per_bucket() -> None:
    hour = datetime(2026, 11, 29, 10, tzinfo=UTC)
    durations = [(hour + timedelta(minutes=m), float(m)) for m in range(0, 60, 3)]
    durations.append((hour + timedelta(hours=1, minutes=1), 9.0))

    p50, p95 = views.duration_percentiles(durations, 3600)

    assert p50 == [(hour.timestamp(), 27.0), (hour.timestamp() + 3600, 9.0)]
    assert p95 == [(hour.timestamp(), 54.0), (hour.timestamp() + 3600, 9.0)]


def test_pass_rates_add_up_rollup_rows_per_bucket() -> None:
    hour = datetime(2026, 11, 29, 0, tzinfo=UTC)
    rows = [HourRow(hour, 4, 3, 4.0), HourRow(hour + timedelta(hours=1), 4, 1, 4.0)]

    assert views.pass_rate_points(rows, 3600) == [
        (hour.timestamp(), 75.0, 4),
        (hour.timestamp() + 3600, 25.0, 4),
    ]
    assert views.pass_rate_points(rows, 7200) == [(hour.timestamp(), 50.0, 8)]


def test_errors_are_grouped_by_first_line_most_frequent_first() -> None:
    def row(minute: int, outcome: Outcome, message: str | None) -> TestRow:
        return TestRow(f"run-{minute}", NOW + timedelta(minutes=minute), result(outcome, message))

    rows = [
        row(1, Outcome.FAILED, "AssertionError: 503\nbody: ..."),
        row(2, Outcome.PASSED, None),
        row(3, Outcome.FAILED, "\nAssertionError: 503\nother body"),
        row(4, Outcome.TIMEOUT, None),
        row(5, Outcome.ERROR, "ConnectionError: refused"),
        row(6, Outcome.FAILED, "AssertionError: 503"),
    ]

    groups = views.group_errors(rows)

    assert [(g.message, g.count, g.last_run_id) for g in groups] == [
        ("AssertionError: 503", 3, "run-6"),
        ("ConnectionError: refused", 1, "run-5"),
        ("(timeout, no message)", 1, "run-4"),
    ]
    assert groups[0].first_seen == NOW + timedelta(minutes=1)


def test_heatmap_rows_put_troubled_tests_first_and_cap_the_rest() -> None:
    results = [
        ("r1", result(Outcome.PASSED, nodeid="t::b")),
        ("r1", result(Outcome.FAILED, nodeid="t::c")),
        ("r2", result(Outcome.FLAKY, nodeid="t::d")),
        ("r2", result(Outcome.FAILED, nodeid="t::c")),
        ("r1", result(Outcome.PASSED, nodeid="t::a")),
    ]

    tests, cells, hidden = views.heatmap_rows(results, limit=3)

    assert tests == ["t::c", "t::d", "t::a"]
    assert hidden == 1
    assert cells[("t::c", "r2")].outcome is Outcome.FAILED
    assert ("t::b", "r1") not in cells


def test_ago_reads_past_and_future() -> None:
    assert views.ago(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert views.ago(NOW + timedelta(seconds=30), NOW) == "in 30 s"
    assert views.ago(None, NOW) == "never"


def test_step_series_follow_each_named_step_over_the_runs() -> None:
    def row(minute: int, steps: list[tuple[str, float]]) -> TestRow:
        props = tuple(("step", {"name": n, "seconds": s, "ok": True}) for n, s in steps)
        found = TestResult(
            nodeid="t::journey",
            outcome=Outcome.PASSED,
            phase="call",
            duration=1.0,
            properties=(("other", 1), *props),
        )
        return TestRow(f"run-{minute}", NOW + timedelta(minutes=minute), found)

    rows = [row(2, [("log in", 0.4), ("deposit", 2.5)]), row(1, [("log in", 0.3)])]

    assert views.step_series(rows) == {
        "log in": [
            ((NOW + timedelta(minutes=1)).timestamp(), 0.3),
            ((NOW + timedelta(minutes=2)).timestamp(), 0.4),
        ],
        "deposit": [((NOW + timedelta(minutes=2)).timestamp(), 2.5)],
    }
