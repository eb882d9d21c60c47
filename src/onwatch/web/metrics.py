"""Prometheus metrics of ``onwatch run`` and ``serve``, read from a ``Health`` on every scrape.

::

    onwatch_up                                          1 while the process answers scrapes
    onwatch_scheduler_last_tick_timestamp_seconds       when the scheduler loop last cycled
    onwatch_check_last_run_timestamp_seconds{check}     when the check's latest run finished
    onwatch_check_last_success_timestamp_seconds{check} when its latest passing run finished
    onwatch_check_last_run_duration_seconds{check}      how long its latest run took
    onwatch_check_up{check}                             1 if its latest run passed, else 0
    onwatch_check_last_status{check,status}             1 for its latest run's status, 0 others
    onwatch_check_consecutive_failures{check}           latest runs in a row that did not pass
    onwatch_check_incident_open{check}                  1 while it has an open incident
    onwatch_check_overdue{check}                        1 if a run is later than its grace
    onwatch_runs_total{check,status}                    runs recorded since start
    onwatch_results_total{check,outcome}                final test results recorded since start
    onwatch_test_last_outcome{check,test,outcome}       1, one series per test: its latest outcome
    onwatch_test_last_duration_seconds{check,test}      how long its latest final attempt took
    onwatch_test_last_run_timestamp_seconds{check,test} when the run that last ran it finished
    onwatch_test_series_dropped                         tests left out by the per-test limit
    onwatch_upstream_last_poll_timestamp_seconds{watch,package}     its index's last poll
    onwatch_upstream_last_success_timestamp_seconds{watch,package}  its last good poll
    onwatch_upstream_poll_failures{watch,package}       polls that failed in a row
    onwatch_upstream_state{watch,package,state}         1 for its state now, 0 for the others
    onwatch_heartbeat_failures_total                    heartbeat pings not answered 2xx
    onwatch_overloaded                                  1 while onwatch cannot keep up
    onwatch_scheduler_skipped_share                     share of slots skipped over the window
    onwatch_scheduler_start_lateness_seconds            p95 of how late runs start, over it
    onwatch_skipped_slots_total{check,reason}           slots not run since start, and why
    onwatch_runs_waiting{where}                         runs not yet in the database: spool, memory
    onwatch_runs_dropped_total                          runs lost: memory full, no disk took them

A series with no known value yet (a check that never ran) is left out rather than shown as 0:
a zero timestamp would read as "last ran in 1970" and fire every staleness alert. Only
configured checks get series, so label cardinality is one per check (times the run statuses or
test outcomes). Per-test series (``test`` is the pytest node id) are bounded by ``test_limit``:
tests are taken in configured check order, then node id order, and the rest are only counted.
A test whose outcome changes moves to another ``outcome`` series; Prometheus marks the old one
stale at the next scrape. The standard ``process_*`` metrics come along too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Literal, cast

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString as _untyped_go_float

from onwatch.model import Outcome, RunStatus
from onwatch.state.health import CheckState, Health, HealthSnapshot
from onwatch.store.records import WATCH_STATES

__all__ = ["DEFAULT_TEST_LIMIT", "Exposition", "HealthCollector", "build_registry", "render_text"]

DEFAULT_TEST_LIMIT = 1000
_STATUSES = tuple(status.value for status in RunStatus)
_OUTCOMES = tuple(outcome.value for outcome in Outcome)


def build_registry(
    health: Health, checks: Sequence[str], *, test_limit: int = DEFAULT_TEST_LIMIT
) -> CollectorRegistry:
    """Return a new registry exposing ``health`` for the configured ``checks``.

    At most ``test_limit`` tests get per-test series (0 turns them off).
    """
    registry = CollectorRegistry()
    registry.register(HealthCollector(health, checks, test_limit=test_limit))
    ProcessCollector(registry=registry)
    return registry


class Exposition:
    """The text of /metrics, cheap to scrape however many tests have series.

    Formatting thousands of per-test samples is most of a scrape's cost, and they change only
    when a run is recorded. So the families that follow the checks are rendered once per
    ``Health.version`` and reused; the few that move on their own (``onwatch_up``, the
    scheduler tick, heartbeat failures, the ``process_*`` metrics) are rendered on every scrape.
    """

    def __init__(
        self, health: Health, checks: Sequence[str], *, test_limit: int = DEFAULT_TEST_LIMIT
    ) -> None:
        self.health = health
        self.live = CollectorRegistry()
        self.live.register(HealthCollector(health, checks, test_limit=test_limit, part="live"))
        ProcessCollector(registry=self.live)
        self.summary = HealthCollector(health, checks, test_limit=test_limit, part="summary")
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] = (-1, b"")

    def render(self) -> bytes:
        """Return the whole exposition in the Prometheus text format."""
        version = self.health.version
        with self._lock:  # one render per change, however many scrapers arrive at once
            if self._cached[0] != version:
                self._cached = (version, render_text(self.summary.collect()))
            summary = self._cached[1]
        return generate_latest(self.live) + summary


def _add_recording(f: _Families, health: Health) -> None:
    recording = health.recording()
    if recording is None:  # nothing records runs in this process (`onwatch serve`)
        return
    f.waiting.add_metric(["spool"], float(recording.spooled))
    f.waiting.add_metric(["memory"], float(recording.in_memory))
    f.dropped.add_metric([], float(recording.dropped))


# prometheus_client's own formatting of a sample value (Go's float syntax), typed.
_go_float = cast(Callable[[float], str], _untyped_go_float)


def render_text(families: Iterable[Metric]) -> bytes:
    """Return gauge and counter families in the text format, as ``generate_latest`` writes them.

    prometheus_client spends some 13 µs on each sample; with thousands of per-test series that
    is most of a scrape. The families here are only gauges and counters with plain names and
    no timestamps, so a direct writer gives the same bytes (a test compares them) ten times
    faster.
    """
    out: list[str] = []
    for family in families:
        if family.type not in ("gauge", "counter"):
            raise ValueError(f"render_text writes gauges and counters, not {family.type}")
        name = family.name + "_total" if family.type == "counter" else family.name
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = sample.labels
            if labels:
                pairs = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
                out.append(f"{sample.name}{{{pairs}}} {_go_float(sample.value)}\n")
            else:
                out.append(f"{sample.name} {_go_float(sample.value)}\n")
    return "".join(out).encode()


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class HealthCollector:
    """A custom collector: builds every onwatch family from one ``Health`` snapshot.

    ``part`` picks the families: "all", only the "live" ones that change without a run being
    recorded, or the "summary" of the checks and their tests.
    """

    def __init__(
        self,
        health: Health,
        checks: Iterable[str],
        *,
        test_limit: int = DEFAULT_TEST_LIMIT,
        part: Literal["all", "live", "summary"] = "all",
    ) -> None:
        if test_limit < 0:
            raise ValueError(f"test_limit must be 0 or more, not {test_limit}")
        self.health = health
        self.checks = tuple(dict.fromkeys(checks))  # configured order, without duplicates
        self.test_limit = test_limit
        self.part = part

    def _chosen(self, families: _Families) -> list[Metric]:
        live = families.live()
        if self.part == "live":
            return live
        every = families.all()
        if self.part == "summary":
            return [f for f in every if all(f is not other for other in live)]
        return every

    def describe(self) -> Iterator[Metric]:
        """Yield the families without samples, so the registry can detect name clashes."""
        yield from self._chosen(_Families())

    def collect(self) -> Iterator[Metric]:
        """Yield every family with its current samples."""
        f = _Families()
        f.up.add_metric([], 1.0)
        if self.part == "live":
            # Two numbers: no copy of every check's state on each scrape.
            last_tick_at, heartbeat_failures = self.health.pulse()
            if last_tick_at is not None:
                f.tick.add_metric([], last_tick_at)
            f.heartbeat_failures.add_metric([], float(heartbeat_failures))
            self._add_load(f)
            _add_recording(f, self.health)
            yield from self._chosen(f)
            return
        snapshot = self.health.snapshot()
        if snapshot.last_tick_at is not None:
            f.tick.add_metric([], snapshot.last_tick_at)
        for name in self.checks:
            state = snapshot.checks.get(name)
            if state is not None:
                _add_check(f, name, state)
        _add_counts(f.runs, snapshot, self.checks, _STATUSES, lambda s: s.runs_total)
        _add_counts(f.results, snapshot, self.checks, _OUTCOMES, lambda s: s.results_total)
        self._add_tests(f, snapshot)
        for (watch, package), poll in sorted(snapshot.polls.items()):
            f.upstream_last_poll.add_metric([watch, package], poll.last_poll_at)
            if poll.last_ok_at is not None:
                f.upstream_last_ok.add_metric([watch, package], poll.last_ok_at)
            f.upstream_failures.add_metric([watch, package], float(poll.failures))
            now = "polls-failing" if poll.failures else poll.state
            for each in WATCH_STATES:
                f.upstream_state.add_metric([watch, package, each], float(each == now))
        f.heartbeat_failures.add_metric([], float(snapshot.heartbeat_failures_total))
        if self.part == "all":
            self._add_load(f)
            _add_recording(f, self.health)
        yield from self._chosen(f)

    def _add_load(self, f: _Families) -> None:
        load = self.health.load.snapshot()
        f.overloaded.add_metric([], 1.0 if load.overloaded else 0.0)
        f.skipped_share.add_metric([], load.skipped_share)
        f.lateness.add_metric([], load.lateness_p95)
        for (check, reason), count in sorted(load.skipped.items()):
            f.skipped_slots.add_metric([check, reason], float(count))

    def _add_tests(self, f: _Families, snapshot: HealthSnapshot) -> None:
        room = self.test_limit
        dropped = 0
        for name in self.checks:
            state = snapshot.checks.get(name)
            if state is None or not state.tests:
                continue
            if room < len(state.tests):
                dropped += len(state.tests) - room
            for nodeid in sorted(state.tests)[:room]:
                test = state.tests[nodeid]
                f.test_outcome.add_metric([name, nodeid, test.outcome], 1.0)
                f.test_duration.add_metric([name, nodeid], test.duration)
                f.test_last_run.add_metric([name, nodeid], test.finished_at)
            room = max(0, room - len(state.tests))
        f.tests_dropped.add_metric([], float(dropped))


def _add_check(f: _Families, name: str, state: CheckState) -> None:
    if state.last_run_at is not None:
        f.last_run.add_metric([name], state.last_run_at)
    if state.last_success_at is not None:
        f.last_success.add_metric([name], state.last_success_at)
    if state.last_duration is not None:
        f.duration.add_metric([name], state.last_duration)
    if state.last_status is not None:
        f.check_up.add_metric([name], 1.0 if state.last_status == RunStatus.PASSED else 0.0)
        statuses = _STATUSES if state.last_status in _STATUSES else (*_STATUSES, state.last_status)
        for status in statuses:
            f.last_status.add_metric([name, status], 1.0 if status == state.last_status else 0.0)
    f.consecutive_failures.add_metric([name], float(state.consecutive_failures))
    f.incident_open.add_metric([name], 1.0 if state.incident_open else 0.0)
    f.overdue.add_metric([name], 1.0 if state.overdue else 0.0)


def _add_counts(
    family: CounterMetricFamily,
    snapshot: HealthSnapshot,
    checks: Sequence[str],
    known: Sequence[str],
    counts_of: Callable[[CheckState], Mapping[str, int]],
) -> None:
    # Every known value starts at 0 so that increase() sees a check's first failure.
    for name in checks:
        state = snapshot.checks.get(name)
        counts = {} if state is None else counts_of(state)
        for value in [*known, *sorted(set(counts) - set(known))]:
            family.add_metric([name, value], float(counts.get(value, 0)))


class _Families:
    """One fresh, empty instance of each family, in exposition order."""

    def __init__(self) -> None:
        check = ["check"]
        test = ["check", "test"]
        self.up = GaugeMetricFamily("onwatch_up", "1 while onwatch run answers scrapes.")
        self.tick = GaugeMetricFamily(
            "onwatch_scheduler_last_tick_timestamp_seconds",
            "Unix time the scheduler loop last completed a cycle.",
        )
        self.last_run = GaugeMetricFamily(
            "onwatch_check_last_run_timestamp_seconds",
            "Unix time the check's latest run finished.",
            labels=check,
        )
        self.last_success = GaugeMetricFamily(
            "onwatch_check_last_success_timestamp_seconds",
            "Unix time the check's latest passing run finished.",
            labels=check,
        )
        self.duration = GaugeMetricFamily(
            "onwatch_check_last_run_duration_seconds",
            "How long the check's latest run took.",
            labels=check,
        )
        self.check_up = GaugeMetricFamily(
            "onwatch_check_up", "1 if the check's latest run passed, else 0.", labels=check
        )
        self.last_status = GaugeMetricFamily(
            "onwatch_check_last_status",
            "1 for the status of the check's latest run, 0 for the other statuses.",
            labels=["check", "status"],
        )
        self.consecutive_failures = GaugeMetricFamily(
            "onwatch_check_consecutive_failures",
            "How many of the check's latest runs in a row did not pass (0 after a pass).",
            labels=check,
        )
        self.incident_open = GaugeMetricFamily(
            "onwatch_check_incident_open",
            "1 while the check has an open incident, else 0.",
            labels=check,
        )
        self.overdue = GaugeMetricFamily(
            "onwatch_check_overdue",
            "1 if the check's next run is later than its schedule and grace allow.",
            labels=check,
        )
        self.runs = CounterMetricFamily(
            "onwatch_runs", "Runs recorded since onwatch started.", labels=["check", "status"]
        )
        self.results = CounterMetricFamily(
            "onwatch_results",
            "Final test results (the last attempt of each test) recorded since onwatch started.",
            labels=["check", "outcome"],
        )
        self.test_outcome = GaugeMetricFamily(
            "onwatch_test_last_outcome",
            "1 for each test, labelled with the outcome of its latest final attempt.",
            labels=["check", "test", "outcome"],
        )
        self.test_duration = GaugeMetricFamily(
            "onwatch_test_last_duration_seconds",
            "How long the test's latest final attempt took.",
            labels=test,
        )
        self.test_last_run = GaugeMetricFamily(
            "onwatch_test_last_run_timestamp_seconds",
            "Unix time the run that last ran the test finished.",
            labels=test,
        )
        self.tests_dropped = GaugeMetricFamily(
            "onwatch_test_series_dropped",
            "Tests left without per-test series by the metrics_test_limit setting.",
        )
        upstream = ["watch", "package"]
        self.upstream_last_poll = GaugeMetricFamily(
            "onwatch_upstream_last_poll_timestamp_seconds",
            "When a watched package's index was last polled, good or not.",
            labels=upstream,
        )
        self.upstream_last_ok = GaugeMetricFamily(
            "onwatch_upstream_last_success_timestamp_seconds",
            "When a watched package's index was last polled successfully.",
            labels=upstream,
        )
        self.upstream_failures = GaugeMetricFamily(
            "onwatch_upstream_poll_failures",
            "Polls of a watched package's index that failed in a row (0 after a good one).",
            labels=upstream,
        )
        self.upstream_state = GaugeMetricFamily(
            "onwatch_upstream_state",
            "1 for a watched package's state now (anything but ok leaves new releases "
            "untested or broken), 0 for the other states.",
            labels=[*upstream, "state"],
        )
        self.heartbeat_failures = CounterMetricFamily(
            "onwatch_heartbeat_failures",
            "Heartbeat pings that failed or were not answered with a 2xx status.",
        )
        self.overloaded = GaugeMetricFamily(
            "onwatch_overloaded",
            "1 while onwatch cannot keep up with its schedule (skipped slots or late starts).",
        )
        self.skipped_share = GaugeMetricFamily(
            "onwatch_scheduler_skipped_share",
            "Share of the slots skipped over the overload window.",
        )
        self.lateness = GaugeMetricFamily(
            "onwatch_scheduler_start_lateness_seconds",
            "95th percentile of how late runs started after their slot, over the overload window.",
        )
        self.skipped_slots = CounterMetricFamily(
            "onwatch_skipped_slots",
            "Slots not run since onwatch started, by check and reason (overlap, late).",
            labels=["check", "reason"],
        )

        self.waiting = GaugeMetricFamily(
            "onwatch_runs_waiting",
            "Runs not yet in the database: in the spool on disk, or in memory (disk full).",
            labels=["where"],
        )
        self.dropped = CounterMetricFamily(
            "onwatch_runs_dropped",
            "Runs lost because neither the database nor the disk took them and memory was full.",
        )

    def live(self) -> list[Metric]:
        """Return the families that change without a run being recorded."""
        return [
            self.up,
            self.tick,
            self.heartbeat_failures,
            self.overloaded,
            self.skipped_share,
            self.lateness,
            self.skipped_slots,
            self.waiting,
            self.dropped,
        ]

    def all(self) -> list[Metric]:
        """Return every family."""
        return [
            self.up,
            self.tick,
            self.last_run,
            self.last_success,
            self.duration,
            self.check_up,
            self.last_status,
            self.consecutive_failures,
            self.incident_open,
            self.overdue,
            self.runs,
            self.results,
            self.test_outcome,
            self.test_duration,
            self.test_last_run,
            self.tests_dropped,
            self.upstream_last_poll,
            self.upstream_last_ok,
            self.upstream_failures,
            self.upstream_state,
            self.heartbeat_failures,
            self.overloaded,
            self.skipped_share,
            self.lateness,
            self.skipped_slots,
            self.waiting,
            self.dropped,
        ]
