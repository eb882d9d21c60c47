"""When checks are due: pure functions, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onwatch.config import Check
from onwatch.schedule import expected_by, following_slot, interval_of, jitter, next_slot
from records import make_check

NOW = datetime(2026, 11, 24, 10, 7, 30, tzinfo=UTC)


def every(text: str) -> Check:
    return make_check(tests=["t"], every=text)


def cron(expr: str, timezone: str = "UTC") -> Check:
    return make_check(tests=["t"], cron=expr, timezone=timezone)


def test_an_interval_check_never_run_is_due_now() -> None:
    assert next_slot(every("5m"), None, NOW) == NOW


def test_an_interval_check_resumes_from_its_last_slot_after_a_restart() -> None:
    last = NOW - timedelta(minutes=2)
    assert next_slot(every("5m"), last, NOW) == last + timedelta(minutes=5)


def test_after_a_long_outage_an_interval_check_runs_once_not_once_per_missed_slot() -> None:
    last = NOW - timedelta(minutes=23)
    slot = next_slot(every("5m"), last, NOW)
    assert slot == last + timedelta(minutes=20)  # the latest missed slot, due now
    assert following_slot(every("5m"), slot, NOW) == last + timedelta(minutes=25)


def test_a_cron_check_never_run_waits_for_its_first_slot() -> None:
    assert next_slot(cron("0 * * * *"), None, NOW) == datetime(2026, 11, 24, 11, tzinfo=UTC)


def test_a_cron_check_that_missed_its_slot_while_down_runs_it_once() -> None:
    last = datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert next_slot(cron("0 * * * *"), last, NOW) == datetime(2026, 11, 24, 10, tzinfo=UTC)
    slot = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert next_slot(cron("0 * * * *"), slot, NOW) == datetime(2026, 11, 24, 11, tzinfo=UTC)


def test_cron_follows_the_check_time_zone() -> None:
    slot = next_slot(cron("0 9 * * *", "Europe/Paris"), None, NOW)
    assert slot == datetime(2026, 11, 25, 8, tzinfo=UTC)  # 09:00 in Paris is 08:00 UTC in winter


def test_the_interval_of_a_cron_check_is_the_gap_between_slots() -> None:
    assert interval_of(cron("*/15 * * * *"), NOW) == 900
    assert interval_of(every("2m"), NOW) == 120


def test_jitter_is_small_stable_and_spreads_checks() -> None:
    values = {jitter(f"check-{i}", 60, 10) for i in range(20)}
    assert all(0 <= v < 6 for v in values)  # at most a tenth of the interval
    assert len(values) == 20
    assert jitter("api", 3600, 10) == jitter("api", 3600, 10)
    assert jitter("api", 3600, 10) < 10


def test_slots_missed_while_down_are_listed_except_the_one_run_now() -> None:
    from onwatch.schedule import missed_slots

    last = NOW - timedelta(minutes=23)
    slots = missed_slots(every("5m"), last, NOW)
    assert slots == [last + timedelta(minutes=m) for m in (5, 10, 15)]  # 20 is run at once
    assert next_slot(every("5m"), last, NOW) == last + timedelta(minutes=20)
    assert missed_slots(every("5m"), NOW - timedelta(minutes=2), NOW) == []
    assert missed_slots(every("5m"), None, NOW) == []


def test_missed_cron_slots_and_the_cap() -> None:
    from onwatch.schedule import missed_slots

    hourly = cron("0 * * * *")
    slots = missed_slots(hourly, datetime(2026, 11, 24, 6, tzinfo=UTC), NOW)
    assert slots == [datetime(2026, 11, 24, h, tzinfo=UTC) for h in (7, 8, 9)]
    assert len(missed_slots(every("1s"), NOW - timedelta(days=1), NOW, limit=100)) == 100


def test_expected_by_follows_cron_slots() -> None:
    check = make_check(tests=["t"], cron="0 * * * *", timeout=60, grace=300)
    assert expected_by(check, NOW) == datetime(2026, 11, 24, 11, 5, tzinfo=UTC)


def test_expected_by_adds_the_grace_to_an_interval() -> None:
    check = make_check(tests=["t"], every=300, timeout=60, grace=120)
    assert expected_by(check, NOW) == NOW + timedelta(minutes=7)
