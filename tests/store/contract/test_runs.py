"""The contract of ``Runs``: checks, runs, results, skipped slots and what is read from them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from onwatch.model import CheckHistory, Outcome, Run, RunFacts, RunStatus, TestResult, Trigger
from onwatch.store import Store
from records import T0, every_outcome, make_run


def result(nodeid: str, outcome: Outcome, *, final: bool = True, attempt: int = 1) -> TestResult:
    return TestResult(
        nodeid=nodeid, outcome=outcome, phase="call", duration=0.5, final=final, attempt=attempt
    )


def upstream_run(**options: object) -> Run:
    """Return a run of an upstream release: it says nothing about the monitored system."""
    detail = {"upstream": {"package": "requests", "version": "2.33.0"}}
    return make_run(trigger=Trigger.UPSTREAM, trigger_detail=detail, **options)  # type: ignore[arg-type]


# -- saving and reading back ---------------------------------------------------------------------


def test_it_returns_a_saved_run_with_every_result_field_intact(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    run = make_run(
        started_at=datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=paris),
        results=every_outcome(),
        status=RunStatus.FAILED,
        duration=2.5,
        trigger=Trigger.SCHEDULE,
        scheduled_for=datetime(2025, 3, 1, 14, 0, tzinfo=paris),
    )
    run = replace(run, error="2 tests failed", trigger_detail={"by": "cli", "args": ["-k", "api"]})
    assert store.runs.save_run(run) is True

    got = store.runs.get_run(run.id)

    assert got is not None
    assert got == run
    for stamp in (got.started_at, got.finished_at, got.scheduled_for):
        assert stamp is not None and stamp.tzinfo is UTC
    assert got.started_at == datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert {r.outcome for r in got.results} == set(Outcome)
    assert got.counts() == run.counts()


def test_it_saves_a_run_once_when_saved_twice(store: Store) -> None:
    run = make_run(results=every_outcome())

    assert store.runs.save_run(run) is True
    assert store.runs.save_run(replace(run, error="replayed")) is False

    got = store.runs.get_run(run.id)
    assert got is not None and got.error is None  # the first one stays
    assert len(got.results) == len(run.results)
    assert [r.id for r in store.runs.list_runs()] == [run.id]


def test_it_returns_results_by_attempt_then_as_recorded(store: Store) -> None:
    retried = result("t::a", Outcome.PASSED, attempt=2)
    first = result("t::a", Outcome.FAILED, final=False)
    other = result("t::b", Outcome.PASSED)
    run = make_run(results=(retried, first, other))
    store.runs.save_run(run)

    got = store.runs.get_run(run.id)

    assert got is not None and got.results == (first, other, retried)


def test_user_properties_come_back_as_json_gives_them(store: Store) -> None:
    odd = TestResult(
        nodeid="t::a",
        outcome=Outcome.PASSED,
        phase="call",
        duration=0.1,
        properties=(("pair", (1, 2)), ("when", datetime(2025, 1, 1, tzinfo=UTC))),
    )
    run = make_run(results=(odd,))
    store.runs.save_run(run)

    got = store.runs.get_run(run.id)

    assert got is not None
    assert got.results[0].properties == (("pair", [1, 2]), ("when", "2025-01-01 00:00:00+00:00"))


def test_it_returns_none_for_an_unknown_run(store: Store) -> None:
    assert store.runs.get_run(str(uuid.uuid4())) is None


# -- listing -----------------------------------------------------------------------------------


@pytest.fixture
def five_runs(store: Store) -> list[Run]:
    statuses = [RunStatus.PASSED, RunStatus.FAILED, RunStatus.PASSED, RunStatus.ERROR]
    saved = [
        make_run(check="api", status=status, minute=5 * i) for i, status in enumerate(statuses)
    ]
    saved.append(make_run(check="web", minute=7))
    for run in saved:
        store.runs.save_run(run.with_results(every_outcome()))
    return saved


def test_it_lists_runs_newest_first_without_results(store: Store, five_runs: list[Run]) -> None:
    listed = store.runs.list_runs()

    assert [r.id for r in listed] == [r.id for r in sorted(five_runs, key=lambda r: r.started_at)][
        ::-1
    ]
    assert all(r.results == () for r in listed)
    assert listed[0] == five_runs[3]


def test_it_lists_the_runs_of_one_check(store: Store, five_runs: list[Run]) -> None:
    assert [r.id for r in store.runs.list_runs("web")] == [five_runs[4].id]
    assert len(store.runs.list_runs("api")) == 4
    assert store.runs.list_runs("nothing") == []


def test_it_lists_runs_started_from_since_and_before_until(
    store: Store, five_runs: list[Run]
) -> None:
    listed = store.runs.list_runs(
        "api", since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=15)
    )

    assert [r.id for r in listed] == [five_runs[2].id, five_runs[1].id]


def test_it_compares_since_and_until_across_time_zones(store: Store, five_runs: list[Run]) -> None:
    tokyo = timezone(timedelta(hours=9))

    listed = store.runs.list_runs("api", since=(T0 + timedelta(minutes=10)).astimezone(tokyo))

    assert [r.id for r in listed] == [five_runs[3].id, five_runs[2].id]


def test_it_lists_runs_by_status(store: Store, five_runs: list[Run]) -> None:
    assert [r.id for r in store.runs.list_runs(status="failed")] == [five_runs[1].id]
    assert [r.id for r in store.runs.list_runs("api", status=RunStatus.PASSED)] == [
        five_runs[2].id,
        five_runs[0].id,
    ]


def test_it_pages_through_runs_with_limit_and_offset(store: Store, five_runs: list[Run]) -> None:
    newest_first = [r.id for r in store.runs.list_runs()]

    assert [r.id for r in store.runs.list_runs(limit=2)] == newest_first[:2]
    assert [r.id for r in store.runs.list_runs(limit=2, offset=2)] == newest_first[2:4]
    assert [r.id for r in store.runs.list_runs(limit=2, offset=4)] == newest_first[4:]


# -- history -----------------------------------------------------------------------------------


def test_it_counts_failures_since_the_latest_pass(store: Store) -> None:
    sequence = [RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT]
    for i, status in enumerate(sequence):
        store.runs.save_run(make_run(check="api", status=status, minute=i, duration=2.5))
    for i, status in enumerate([RunStatus.FAILED, RunStatus.FAILED]):
        store.runs.save_run(make_run(check="never", status=status, minute=i))
    for i, status in enumerate([RunStatus.FAILED, RunStatus.PASSED]):
        store.runs.save_run(make_run(check="healed", status=status, minute=i))

    got = store.runs.history(["api", "never", "healed"], now=T0 + timedelta(hours=1))

    assert got["api"].consecutive_failures == 3
    assert got["api"].last_status is RunStatus.TIMEOUT
    assert got["api"].last_run_at == T0 + timedelta(minutes=3, seconds=2.5)
    assert got["never"].consecutive_failures == 2
    assert got["healed"].consecutive_failures == 0
    assert got["healed"].last_status is RunStatus.PASSED


def test_it_counts_runs_and_passes_of_the_last_24_hours(store: Store) -> None:
    now = T0 + timedelta(days=2)
    for hours_ago, status in [
        (25, RunStatus.PASSED),
        (23, RunStatus.PASSED),
        (1, RunStatus.FAILED),
    ]:
        store.runs.save_run(
            make_run(check="api", status=status, started_at=now - timedelta(hours=hours_ago))
        )

    got = store.runs.history(["api"], now=now)

    assert (got["api"].runs_24h, got["api"].passed_24h) == (2, 1)


def test_it_resumes_from_the_latest_scheduled_or_skipped_slot(store: Store) -> None:
    slot = T0 + timedelta(minutes=5)
    store.runs.save_run(make_run(check="api", trigger=Trigger.SCHEDULE, scheduled_for=slot))
    store.runs.record_skipped_slot("api", slot + timedelta(minutes=5), "overlap")
    store.runs.save_run(
        make_run(check="web", trigger=Trigger.SCHEDULE, scheduled_for=slot, started_at=slot)
    )
    store.runs.record_skipped_slot("web", slot - timedelta(minutes=5), "overlap")
    # A manual run, even a later one, is not a slot.
    store.runs.save_run(
        make_run(
            check="web",
            scheduled_for=slot + timedelta(hours=1),
            started_at=slot + timedelta(hours=1),
        )
    )
    store.runs.save_run(make_run(check="manual-only"))

    got = store.runs.history(["api", "web", "manual-only"], now=T0 + timedelta(hours=2))

    assert got["api"].last_slot == slot + timedelta(minutes=5)
    assert got["web"].last_slot == slot
    assert got["web"].last_slot is not None and got["web"].last_slot.tzinfo is UTC
    assert got["manual-only"].last_slot is None


def test_it_gives_an_empty_history_to_checks_never_run(store: Store) -> None:
    store.runs.save_run(make_run(check="api"))

    got = store.runs.history(["api", "unknown"], now=T0)

    assert got["unknown"] == CheckHistory()
    assert store.runs.history([], now=T0) == {}


def test_it_lists_skipped_slots_newest_first(store: Store) -> None:
    for minutes, reason in [(0, "overlap"), (10, "down"), (5, "overlap")]:
        store.runs.record_skipped_slot("api", T0 + timedelta(minutes=minutes), reason)
    store.runs.record_skipped_slot("web", T0, "overlap")

    assert store.runs.skipped_slots("api") == [
        (T0 + timedelta(minutes=10), "down"),
        (T0 + timedelta(minutes=5), "overlap"),
        (T0, "overlap"),
    ]
    assert store.runs.skipped_slots("api", limit=1) == [(T0 + timedelta(minutes=10), "down")]


def test_it_returns_every_attempt_of_one_test_newest_first(store: Store) -> None:
    nodeid = "tests/test_api.py::test_flaky[param-1]"
    older = make_run(check="api", results=every_outcome())
    newer = make_run(check="api", started_at=T0 + timedelta(hours=1), results=every_outcome())
    elsewhere = make_run(check="web", started_at=T0 + timedelta(hours=2), results=every_outcome())
    for run in (older, newer, elsewhere):
        store.runs.save_run(run)

    got = store.runs.test_history("api", nodeid)

    attempts = [r for r in every_outcome() if r.nodeid == nodeid][::-1]
    assert got == attempts + attempts
    assert store.runs.test_history("api", nodeid, limit=1) == attempts[:1]


def test_upstream_runs_are_listed_but_left_out_of_the_history(store: Store) -> None:
    store.runs.save_run(make_run(status=RunStatus.FAILED))
    store.runs.save_run(make_run(status=RunStatus.PASSED, minute=1))
    release = upstream_run(status=RunStatus.FAILED, minute=2)
    store.runs.save_run(release)

    got = store.runs.history(["api"], now=T0 + timedelta(hours=1))["api"]

    assert got.last_status is RunStatus.PASSED
    assert got.consecutive_failures == 0
    assert (got.runs_24h, got.passed_24h) == (2, 1)
    assert store.runs.list_runs("api")[0].id == release.id
    assert release.id not in [r.id for r in store.runs.list_runs("api", monitoring_only=True)]
    assert len(store.runs.list_runs("api", monitoring_only=True)) == 2


# -- what alerting and drift read ------------------------------------------------------------------


def test_recent_facts_are_the_latest_monitoring_runs_newest_first(store: Store) -> None:
    flaky = make_run(
        status=RunStatus.PASSED,
        minute=2,
        results=(
            result("t::a", Outcome.FAILED, final=False),
            result("t::a", Outcome.FLAKY, attempt=2),
        ),
    )
    failed = make_run(status=RunStatus.FAILED, minute=1)
    oldest = make_run(status=RunStatus.ERROR)
    for run in (oldest, failed, flaky, upstream_run(minute=3), make_run(check="web", minute=4)):
        store.runs.save_run(run)

    got = store.runs.recent_facts("api", 2)

    assert got == [
        RunFacts(flaky.id, RunStatus.PASSED, flaky.started_at, flaky.finished_at, flaky=1),
        RunFacts(failed.id, RunStatus.FAILED, failed.started_at, failed.finished_at, flaky=0),
    ]
    assert got[1].failing and not got[0].failing
    assert [f.id for f in store.runs.recent_facts("api", 10)][-1] == oldest.id
    assert store.runs.recent_facts("idle", 5) == []


def test_collected_counts_come_from_runs_that_tested(store: Store) -> None:
    for minute, status, count in [
        (0, RunStatus.PASSED, 3),
        (1, RunStatus.FAILED, 4),
        (2, RunStatus.ERROR, 0),  # a collection error says nothing of the selection
        (3, RunStatus.TIMEOUT, 1),
        (4, RunStatus.PASSED, 5),
    ]:
        run = make_run(
            minute=minute,
            status=status,
            results=tuple(result(f"t::{i}", Outcome.PASSED) for i in range(count)),
        )
        store.runs.save_run(run)
    store.runs.save_run(replace(make_run(minute=5), collected=None))
    store.runs.save_run(upstream_run(minute=6, results=(result("t::x", Outcome.PASSED),)))

    assert store.runs.collected_counts("api") == [5, 4, 3]
    assert store.runs.collected_counts("api", limit=2) == [5, 4]
    assert store.runs.collected_counts("idle") == []


def test_an_unknown_run_id_is_none_not_an_error(store: Store) -> None:
    assert store.runs.get_run(str(uuid.uuid4())) is None
    assert store.runs.test_history("api", "t::a") == []
    assert store.runs.skipped_slots("api") == []


@pytest.mark.parametrize("checks", [["api"], []])
def test_a_check_written_by_upsert_has_no_history_until_it_runs(
    store: Store, checks: list[str]
) -> None:
    store.runs.upsert_check("api", "digest-0", "every 5m")
    store.runs.upsert_check("api", "digest-1", "every 1m")

    found = store.runs.history(checks, now=T0)
    # Only when it was registered: what a check that never ran is overdue against.
    assert all(past.registered_at is not None for past in found.values())
    unregistered = {name: replace(past, registered_at=None) for name, past in found.items()}
    assert unregistered == {name: CheckHistory() for name in checks}


def test_a_check_is_registered_again_only_when_its_digest_or_schedule_changes(
    store: Store,
) -> None:
    store.runs.upsert_check("api", "digest-0", "every 5m")
    first = store.runs.history(["api"], now=T0)["api"].registered_at
    store.runs.upsert_check("api", "digest-0", "every 5m")
    assert store.runs.history(["api"], now=T0)["api"].registered_at == first
    store.runs.upsert_check("api", "digest-1", "every 5m")
    again = store.runs.history(["api"], now=T0)["api"].registered_at
    assert first is not None and again is not None and again >= first
    assert store.runs.history(["never"], now=T0)["never"].registered_at is None
