"""What /metrics says about checks and tests, read from the exposition text a scrape returns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import onwatch.web.metrics
from onwatch.model import Outcome, RunStatus, TestResult
from onwatch.state.health import Health
from onwatch.web.metrics import build_registry
from records import make_run

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(health: Health, checks: list[str], **kw: int) -> Samples:
    text = generate_latest(build_registry(health, checks, **kw)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def result(nodeid: str, outcome: Outcome, duration: float = 0.5) -> TestResult:
    return TestResult(nodeid=nodeid, outcome=outcome, phase="call", duration=duration)


def test_it_shows_the_latest_status_as_one_of_every_known_status() -> None:
    health = Health(["api", "never"])
    health.record(make_run(status=RunStatus.TIMEOUT))
    statuses = named(scrape(health, ["api", "never"]), "onwatch_check_last_status")
    assert statuses == {
        (("check", "api"), ("status", "passed")): 0,
        (("check", "api"), ("status", "failed")): 0,
        (("check", "api"), ("status", "error")): 0,
        (("check", "api"), ("status", "timeout")): 1,
    }


def test_it_shows_consecutive_failures_and_open_incidents_per_check() -> None:
    health = Health(["api", "web"])
    health.record(make_run(status=RunStatus.FAILED))
    health.record(make_run(status=RunStatus.ERROR, minute=1))
    health.set_incident("api", True)
    samples = scrape(health, ["api", "web"])
    assert named(samples, "onwatch_check_consecutive_failures") == {
        (("check", "api"),): 2,
        (("check", "web"),): 0,
    }
    assert named(samples, "onwatch_check_incident_open") == {
        (("check", "api"),): 1,
        (("check", "web"),): 0,
    }


def test_it_counts_final_results_with_every_outcome_starting_at_zero() -> None:
    health = Health(["api", "never"])
    results = (
        result("t::a", Outcome.PASSED),
        result("t::b", Outcome.FAILED),
        result("t::c", Outcome.FAILED),
    )
    health.record(make_run(status=RunStatus.FAILED, results=results))
    counted = named(scrape(health, ["api", "never"]), "onwatch_results_total")
    assert len(counted) == 2 * len(Outcome)
    assert counted[(("check", "api"), ("outcome", "failed"))] == 2
    assert counted[(("check", "api"), ("outcome", "passed"))] == 1
    assert counted[(("check", "api"), ("outcome", "xpassed"))] == 0
    assert counted[(("check", "never"), ("outcome", "failed"))] == 0


def test_each_test_has_one_outcome_series_that_moves_when_its_outcome_changes() -> None:
    health = Health(["api"])
    health.record(make_run(results=(result("t::a", Outcome.PASSED, 0.25),)))
    before = scrape(health, ["api"])
    failed = make_run(status=RunStatus.FAILED, minute=1, results=(result("t::a", Outcome.FAILED),))
    health.record(failed)
    after = scrape(health, ["api"])

    test = (("check", "api"), ("test", "t::a"))
    passed = (("check", "api"), ("outcome", "passed"), ("test", "t::a"))
    assert named(before, "onwatch_test_last_outcome") == {passed: 1}
    assert named(after, "onwatch_test_last_outcome") == {
        (("check", "api"), ("outcome", "failed"), ("test", "t::a")): 1
    }
    assert named(before, "onwatch_test_last_duration_seconds") == {test: 0.25}
    assert named(after, "onwatch_test_last_run_timestamp_seconds") == {
        test: failed.finished_at.timestamp()
    }


def test_per_test_series_stop_at_the_limit_in_check_then_node_id_order() -> None:
    health = Health(["web", "api"])
    health.record(make_run(check="api", results=(result("t::x", Outcome.PASSED),)))
    web = tuple(result(f"t::{name}", Outcome.PASSED) for name in ("c", "a", "b"))
    health.record(make_run(check="web", results=web))
    samples = scrape(health, ["web", "api"], test_limit=2)
    shown = {dict(labels)["test"] for labels in named(samples, "onwatch_test_last_outcome")}
    assert shown == {"t::a", "t::b"}
    assert len(named(samples, "onwatch_test_last_duration_seconds")) == 2
    assert len(named(samples, "onwatch_test_last_run_timestamp_seconds")) == 2
    assert samples[("onwatch_test_series_dropped", ())] == 2


def test_a_limit_of_zero_turns_per_test_series_off() -> None:
    health = Health(["api"])
    health.record(make_run(results=(result("t::a", Outcome.PASSED),)))
    samples = scrape(health, ["api"], test_limit=0)
    assert not named(samples, "onwatch_test_last_outcome")
    assert samples[("onwatch_test_series_dropped", ())] == 1


def test_the_default_limit_is_a_thousand_tests() -> None:
    health = Health(["api"])
    many = tuple(result(f"t::test_{i:04}", Outcome.PASSED) for i in range(1001))
    health.record(make_run(results=many))
    samples = scrape(health, ["api"])
    assert len(named(samples, "onwatch_test_last_outcome")) == 1000
    assert samples[("onwatch_test_series_dropped", ())] == 1


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="test_limit"):
        build_registry(Health(["api"]), ["api"], test_limit=-1)


def test_tests_of_checks_that_are_not_configured_get_no_series() -> None:
    health = Health(["api"])
    health.record(make_run(check="gone", results=(result("t::a", Outcome.PASSED),)))
    samples = scrape(health, ["api"])
    assert not named(samples, "onwatch_test_last_outcome")
    assert samples[("onwatch_test_series_dropped", ())] == 0


def exposed_names() -> set[str]:
    health = Health(["api"])
    health.tick(1.0)
    health.record(make_run(results=(result("t::a", Outcome.PASSED),)))
    names = set()
    text = generate_latest(build_registry(health, ["api"])).decode()
    for family in text_string_to_metric_families(text):
        if family.name.startswith("onwatch_"):
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_every_metric_is_in_the_module_docstring_and_docs_metrics_md() -> None:
    names = exposed_names()
    assert len(names) == 27
    docstring = onwatch.web.metrics.__doc__ or ""
    assert set(re.findall(r"^\s+(onwatch_[a-z_]+)", docstring, re.M)) == names
    documented = set(
        re.findall(r"^\| `(onwatch_[a-z_]+)", (ROOT / "docs/metrics.md").read_text(), re.M)
    )
    assert documented == names


def test_the_fast_writer_gives_the_same_bytes_as_prometheus_client() -> None:
    from prometheus_client import CollectorRegistry

    from onwatch.web.metrics import Exposition, HealthCollector, render_text

    health = Health(["api", "web"])
    awkward = [
        'tests/test_a.py::test_quote["x"]',
        "tests/test_a.py::test_back\\slash",
        "tests/test_a.py::test_new\nline",
        "tests/test_a.py::test_ünïcode[✓]",
    ]
    health.record(
        make_run(
            status=RunStatus.FAILED,
            duration=1234567.5,
            results=tuple(result(n, Outcome.FAILED, 1e-7) for n in awkward),
        )
    )
    health.record(make_run(check="web", results=(result("t::ok", Outcome.PASSED),)))
    health.set_incident("api", True)
    collector = HealthCollector(health, ["api", "web"], part="summary")
    registry = CollectorRegistry()
    registry.register(collector)

    assert render_text(collector.collect()) == generate_latest(registry)
    # The exposition is the live part (fresh) followed by that summary.
    exposition = Exposition(health, ["api", "web"]).render().decode()
    assert exposition.count("# TYPE onwatch_test_last_outcome gauge") == 1
    assert scrape_text(exposition) == scrape_text(
        generate_latest(build_registry(health, ["api", "web"])).decode()
    )  # the same samples, process metrics aside


def scrape_text(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.startswith("process_")
    }


def test_a_scrape_renders_the_checks_again_only_after_a_change() -> None:
    from onwatch.web.metrics import Exposition

    health = Health(["api"])
    exposition = Exposition(health, ["api"])
    health.record(make_run(results=(result("t::a", Outcome.PASSED),)))
    first = exposition.render()
    health.tick(1_900_000_000.0)  # the scheduler ticking is not a change of the checks

    assert (
        exposition.render().split(b"# HELP onwatch_check")[1:]
        == first.split(b"# HELP onwatch_check")[1:]
    )
    assert b"onwatch_scheduler_last_tick_timestamp_seconds 1.9e+09" in exposition.render()
    health.record(make_run(minute=1, results=(result("t::a", Outcome.FAILED),)))
    assert b'outcome="failed"' in exposition.render()
