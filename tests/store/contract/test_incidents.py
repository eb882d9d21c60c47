"""The contract of ``Incidents``: incidents of checks and the silences added at run time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta, timezone

from onwatch.model import FailingTest, Incident, Window
from onwatch.store import Store
from records import T0


def opened(check: str = "api", minute: int = 0) -> Incident:
    """Return a new incident of ``check``, not yet saved."""
    return Incident(
        check=check,
        opened_at=T0 + timedelta(minutes=minute),
        opened_run_id=f"{check}-run-1",
        last_run_id=f"{check}-run-2",
        failing_runs=2,
        summary=f"{check} is failing: 1 of 3 tests failed",
        category="product",
        failing_tests=(FailingTest("t::a", "AssertionError: 503"),),
    )


def test_a_saved_incident_gets_an_id_and_reads_back_without_its_failing_tests(
    store: Store,
) -> None:
    saved = store.incidents.save(opened())

    assert saved.id is not None
    assert saved.failing_tests == opened().failing_tests  # for the notification at hand
    assert store.incidents.open_incident("api") == replace(saved, failing_tests=())
    assert store.incidents.open_incident("web") is None


def test_saving_a_known_incident_updates_it(store: Store) -> None:
    saved = store.incidents.save(opened())
    paris = timezone(timedelta(hours=2))
    resolved = replace(
        saved,
        last_run_id="api-run-4",
        resolved_run_id="api-run-4",
        resolved_at=(T0 + timedelta(minutes=30)).astimezone(paris),
        failing_runs=3,
        flaky_runs=1,
        notified_at=T0 + timedelta(minutes=1),
        last_reminder_at=T0 + timedelta(minutes=20),
    )

    assert store.incidents.save(resolved) == resolved

    [got] = store.incidents.incidents("api")
    assert got == replace(resolved, failing_tests=())
    assert got.resolved_at is not None and got.resolved_at.tzinfo is UTC
    assert not got.open
    assert store.incidents.open_incident("api") is None
    assert store.incidents.open_incidents() == []


def test_open_incidents_are_listed_oldest_first_and_by_check(store: Store) -> None:
    api = store.incidents.save(opened("api"))
    done = store.incidents.save(opened("db"))
    store.incidents.save(replace(done, resolved_at=T0 + timedelta(hours=1)))
    web = store.incidents.save(opened("web", minute=5))

    assert [i.id for i in store.incidents.open_incidents()] == [api.id, web.id]
    assert {c: i.id for c, i in store.incidents.open_by_check(["api", "db", "web"]).items()} == {
        "api": api.id,
        "web": web.id,
    }
    assert store.incidents.open_by_check([]) == {}
    assert list(store.incidents.open_by_check(["web", "idle"])) == ["web"]


def test_incidents_are_listed_newest_first_of_one_check_or_all(store: Store) -> None:
    first = store.incidents.save(replace(opened(), resolved_at=T0 + timedelta(minutes=9)))
    other = store.incidents.save(opened("web", minute=10))
    second = store.incidents.save(opened(minute=20))

    assert [i.id for i in store.incidents.incidents()] == [second.id, other.id, first.id]
    assert [i.id for i in store.incidents.incidents("api")] == [second.id, first.id]
    assert [i.id for i in store.incidents.incidents(limit=1)] == [second.id]
    assert store.incidents.incidents("idle") == []
    assert store.incidents.open_incident("api") == replace(second, failing_tests=())


def test_a_silence_is_in_force_from_its_start_until_just_before_its_end(store: Store) -> None:
    ends = T0 + timedelta(hours=1)
    store.incidents.add_silence("api", T0, ends, "deploy")
    store.incidents.add_silence(None, T0 + timedelta(minutes=30), ends, "maintenance")

    assert store.incidents.active_silences(T0 - timedelta(seconds=1)) == []
    assert store.incidents.active_silences(T0) == [Window("api", ends, "deploy")]
    assert sorted(
        store.incidents.active_silences(T0 + timedelta(minutes=45)), key=lambda w: w.reason
    ) == [Window("api", ends, "deploy"), Window(None, ends, "maintenance")]
    assert store.incidents.active_silences(ends) == []


def test_silence_times_compare_across_time_zones(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    store.incidents.add_silence("api", T0.astimezone(tokyo), T0 + timedelta(hours=1), "")

    [window] = store.incidents.active_silences(T0 + timedelta(minutes=1))
    assert window.ends_at == T0 + timedelta(hours=1) and window.ends_at.tzinfo is UTC
