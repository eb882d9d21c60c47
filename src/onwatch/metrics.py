"""Prometheus metrics of ``onwatch run``, read from its in-memory ``Health`` on every scrape.

::

    onwatch_up                                          1 while the process answers scrapes
    onwatch_scheduler_last_tick_timestamp_seconds       when the scheduler loop last cycled
    onwatch_check_last_run_timestamp_seconds{check}     when the check's latest run finished
    onwatch_check_last_success_timestamp_seconds{check} when its latest passing run finished
    onwatch_check_last_run_duration_seconds{check}      how long its latest run took
    onwatch_check_up{check}                             1 if its latest run passed, else 0
    onwatch_check_overdue{check}                        1 if a run is later than its grace
    onwatch_runs_total{check,status}                    runs recorded since start
    onwatch_heartbeat_failures_total                    heartbeat pings not answered 2xx

A series with no known value yet (a check that never ran) is left out rather than shown as 0:
a zero timestamp would read as "last ran in 1970" and fire every staleness alert. Only
configured checks get series, so label cardinality is one per check (times the run statuses).
The standard ``process_*`` metrics (start time, memory, file descriptors) come along too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from onwatch.health import Health, HealthSnapshot
from onwatch.model import RunStatus

__all__ = ["HealthCollector", "build_registry"]


def build_registry(health: Health, checks: Sequence[str]) -> CollectorRegistry:
    """Return a new registry exposing ``health`` for the configured ``checks``."""
    registry = CollectorRegistry()
    registry.register(HealthCollector(health, checks))
    ProcessCollector(registry=registry)
    return registry


class HealthCollector:
    """A custom collector: builds every onwatch family from one ``Health`` snapshot."""

    def __init__(self, health: Health, checks: Iterable[str]) -> None:
        self.health = health
        self.checks = tuple(dict.fromkeys(checks))  # configured order, without duplicates

    def describe(self) -> Iterator[Metric]:
        """Yield the families without samples, so the registry can detect name clashes."""
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        """Yield every family with its current samples."""
        snapshot = self.health.snapshot()
        f = _Families()
        f.up.add_metric([], 1.0)
        if snapshot.last_tick_at is not None:
            f.tick.add_metric([], snapshot.last_tick_at)
        for name in self.checks:
            state = snapshot.checks.get(name)
            if state is None:
                continue
            if state.last_run_at is not None:
                f.last_run.add_metric([name], state.last_run_at)
            if state.last_success_at is not None:
                f.last_success.add_metric([name], state.last_success_at)
            if state.last_duration is not None:
                f.duration.add_metric([name], state.last_duration)
            if state.last_status is not None:
                f.check_up.add_metric([name], 1.0 if state.last_status == RunStatus.PASSED else 0.0)
            f.overdue.add_metric([name], 1.0 if state.overdue else 0.0)
        _add_runs(f.runs, snapshot, self.checks)
        f.heartbeat_failures.add_metric([], float(snapshot.heartbeat_failures_total))
        yield from f.all()


def _add_runs(family: CounterMetricFamily, snapshot: HealthSnapshot, checks: Sequence[str]) -> None:
    # Every status starts at 0 so that increase() sees a check's first failure.
    known = [status.value for status in RunStatus]
    for name in checks:
        state = snapshot.checks.get(name)
        counts = dict(state.runs_total) if state is not None else {}
        for status in known + sorted(set(counts) - set(known)):
            family.add_metric([name, status], float(counts.get(status, 0)))


class _Families:
    """One fresh, empty instance of each family, in exposition order."""

    def __init__(self) -> None:
        check = ["check"]
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
        self.overdue = GaugeMetricFamily(
            "onwatch_check_overdue",
            "1 if the check's next run is later than its schedule and grace allow.",
            labels=check,
        )
        self.runs = CounterMetricFamily(
            "onwatch_runs", "Runs recorded since onwatch started.", labels=["check", "status"]
        )
        self.heartbeat_failures = CounterMetricFamily(
            "onwatch_heartbeat_failures",
            "Heartbeat pings that failed or were not answered with a 2xx status.",
        )

    def all(self) -> list[Metric]:
        """Return every family."""
        return [
            self.up,
            self.tick,
            self.last_run,
            self.last_success,
            self.duration,
            self.check_up,
            self.overdue,
            self.runs,
            self.heartbeat_failures,
        ]
