"""Maintenance windows from the config: one-off and recurring."""

from __future__ import annotations

from datetime import UTC, datetime

from onwatch.alerting.silences import Window, active_windows, silenced
from records import make_silence

SUNDAY_NIGHT = make_silence(
    cron="0 2 * * SUN", duration="2h", timezone="Europe/Paris", reason="weekly"
)
MIGRATION = make_silence(
    checks=["checkout"],
    start=datetime(2026, 12, 1, 22, tzinfo=UTC),
    end=datetime(2026, 12, 2, 1, tzinfo=UTC),
    reason="database migration",
)


def test_a_one_off_window_silences_its_checks_between_start_and_end() -> None:
    inside = datetime(2026, 12, 1, 23, tzinfo=UTC)
    windows = active_windows([MIGRATION], inside)
    assert silenced("checkout", windows) == Window("checkout", MIGRATION.end, "database migration")  # type: ignore[arg-type]
    assert silenced("search", windows) is None
    assert active_windows([MIGRATION], datetime(2026, 12, 2, 1, tzinfo=UTC)) == []


def test_a_recurring_window_follows_its_cron_in_its_time_zone() -> None:
    # Sunday 29 November 2026, 02:30 in Paris is 01:30 UTC.
    windows = active_windows([SUNDAY_NIGHT], datetime(2026, 11, 29, 1, 30, tzinfo=UTC))
    window = silenced("anything", windows)
    assert window is not None and window.ends_at == datetime(2026, 11, 29, 3, tzinfo=UTC)
    assert active_windows([SUNDAY_NIGHT], datetime(2026, 11, 29, 3, 0, tzinfo=UTC)) == []
    assert active_windows([SUNDAY_NIGHT], datetime(2026, 11, 28, 1, 30, tzinfo=UTC)) == []


def test_the_longest_covering_window_wins() -> None:
    short = Window(None, datetime(2026, 1, 1, 1, tzinfo=UTC), "short")
    long = Window("checkout", datetime(2026, 1, 1, 5, tzinfo=UTC), "long")
    assert silenced("checkout", [short, long]) == long
    assert silenced("search", [short, long]) == short
