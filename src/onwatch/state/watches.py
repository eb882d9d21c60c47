"""What each watched package looks like now, and what one upstream run changed.

The Watches page and the run page of an upstream run read these records. A run of a release is
compared with its baseline, the run of the same check on the release handled before it: a test
that fails in both is pre-existing, one that fails only with the new release is new. The
watcher records what it tested in each run's trigger detail (``watch``, ``upstream.package``,
``upstream.version``, ``previous``); runs without it are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from onwatch.model import Run, RunStatus, as_utc, iso
from onwatch.store.records import pinned_line

if TYPE_CHECKING:
    from onwatch.config import Config
    from onwatch.model import TestResult
    from onwatch.store import PollSummary, Store

__all__ = [
    "PackageView",
    "ReleaseRun",
    "ReleaseTested",
    "package_json",
    "package_views",
    "release_of",
    "release_run",
    "lines_tested",
]

# Upstream runs read per watch for the page: a few releases of each package and check.
RUNS_PER_WATCH = 200
RELEASES_SHOWN = 10

# The states of a package, worst first: the page shows the first that holds.
POLLS_FAILING = "polls failing"
CANNOT_INSTALL = "cannot install"
BREAKS = "breaks"
BASELINE_FAILING = "baseline failing"
OK = "ok"
UNTESTED = "not tested yet"

# The watcher's saved states (store.records.WATCH_STATES) as the page names them; "ok" is left to
# the runs, which also tell a package not tested yet.
_WATCHER_STATES = {
    "polls-failing": POLLS_FAILING,
    "cannot-install": CANNOT_INSTALL,
    "breaks": BREAKS,
    "baseline-failing": BASELINE_FAILING,
}

_WORST_FIRST = [POLLS_FAILING, CANNOT_INSTALL, BREAKS, BASELINE_FAILING, OK, UNTESTED]

# What the watcher writes into a run it could not give an environment; the run errors with it.
# A ``verdict`` of "install_failed" in the trigger detail says the same in so many words.
_INSTALL_ERRORS = ("cannot build the environment", "cannot be installed")
INSTALL_FAILED = "install_failed"


@dataclass(frozen=True, slots=True)
class ReleaseTested:
    """What an upstream run tested: which watch, package and release, after which one."""

    watch: str | None
    package: str
    version: str
    previous: str | None
    verdict: str | None = None  # what the watch judged, when it recorded it


@dataclass(frozen=True, slots=True)
class ReleaseRun:
    """One run of a watched check on one release, compared with its baseline."""

    run_id: str
    check: str
    tested: ReleaseTested
    status: RunStatus
    started_at: datetime
    error: str | None
    baseline_id: str | None  # None: the first release handled, or no run of the previous one
    baseline_status: RunStatus | None
    new: tuple[str, ...]  # failing with this release only
    known: tuple[str, ...]  # failing with the baseline too; all failures of a first release

    @property
    def install_failed(self) -> bool:
        """Tell whether the release's environment could not be built, so nothing ran."""
        if self.tested.verdict == INSTALL_FAILED:
            return True
        return self.status is RunStatus.ERROR and any(
            text in (self.error or "") for text in _INSTALL_ERRORS
        )

    @property
    def broke(self) -> bool:
        """Tell whether the release broke something its baseline did not: a test, or the run."""
        if self.new:
            return True
        stopped = self.status in (RunStatus.ERROR, RunStatus.TIMEOUT) and not self.install_failed
        return stopped and self.baseline_id is not None and self.baseline_status is not self.status

    @property
    def baseline_failed(self) -> bool:
        """Tell whether what this run is judged against did not pass: its baseline, or the run
        itself when it is the first of its package."""
        if self.baseline_id is None:
            return self.tested.previous is None and self.status is not RunStatus.PASSED
        return self.baseline_status is not RunStatus.PASSED


@dataclass(frozen=True, slots=True)
class PackageView:
    """One package of one watch as the Watches page shows it."""

    watch: str
    package: str
    pinned: str | None  # the last release handled: the baseline of the next one
    latest: str | None  # the newest release the last good poll saw
    state: str
    poll: PollSummary
    releases: list[tuple[str, list[ReleaseRun]]]  # (version, its runs), newest first
    on_pinned_line: str | None = None  # the last release handled on the product's pinned line

    @property
    def latest_tested(self) -> list[tuple[str, str]]:
        """Return the newest release tested on each line: ("1.26", "1.26.18") for the line of
        the baseline version (its major.minor), then ("latest", "2.0.3") when newer ones were
        tested too."""
        line_of = self.on_pinned_line or self.pinned
        return lines_tested(line_of, [version for version, _ in self.releases])


def lines_tested(pinned: str | None, versions: Iterable[str]) -> list[tuple[str, str]]:
    """Return the newest of ``versions`` on the line of ``pinned`` (same major.minor) and the
    newest of all when that is another; versions that are not PEP 440 are left out."""
    from packaging.version import InvalidVersion, Version

    parsed = []
    for version in versions:
        try:
            parsed.append(Version(version))
        except InvalidVersion:
            continue
    if not parsed:
        return []
    newest = max(parsed)
    try:
        line = None if pinned is None else Version(pinned).release[:2]
    except InvalidVersion:
        line = None
    found = []
    on_line = [v for v in parsed if line is not None and v.release[:2] == line]
    if on_line and line is not None:
        found.append((".".join(map(str, line)), str(max(on_line))))
    if not on_line or newest != max(on_line):
        found.append(("latest", str(newest)))
    return found


def release_of(run: Run) -> ReleaseTested | None:
    """Return what an upstream run tested, from its trigger detail, or None."""
    detail: dict[str, Any] = dict(run.trigger_detail or {})
    tested = detail.get("upstream")
    if not isinstance(tested, dict) or not tested.get("package") or not tested.get("version"):
        return None
    previous = detail.get("previous")
    watch = detail.get("watch")
    verdict = detail.get("verdict")
    return ReleaseTested(
        watch=str(watch) if watch else None,
        package=str(tested["package"]),
        version=str(tested["version"]),
        previous=str(previous) if previous else None,
        verdict=str(verdict) if verdict else None,
    )


def _failing(results: Iterable[TestResult]) -> list[str]:
    return sorted({r.nodeid for r in results if r.final and r.outcome.is_bad})


def compared(
    run: Run,
    tested: ReleaseTested,
    finals: Sequence[TestResult],
    baseline: Run | None,
    baseline_finals: Sequence[TestResult],
) -> ReleaseRun:
    """Return ``run`` with its failures split into new and pre-existing against ``baseline``."""
    failing = _failing(finals)
    if baseline is not None:
        before = set(_failing(baseline_finals))
    elif tested.previous is not None:
        before = set()  # as the watcher judges it: with no run to compare, every failure is new
    else:
        before = set(failing)  # the first release handled is the baseline itself
    return ReleaseRun(
        run_id=run.id,
        check=run.check,
        tested=tested,
        status=run.status,
        started_at=run.started_at,
        error=run.error,
        baseline_id=None if baseline is None else baseline.id,
        baseline_status=None if baseline is None else baseline.status,
        new=tuple(name for name in failing if name not in before),
        known=tuple(name for name in failing if name in before),
    )


def release_run(store: Store, run: Run) -> ReleaseRun | None:
    """Return an upstream run (results in) compared with its baseline; None for other runs."""
    tested = release_of(run)
    if tested is None:
        return None
    baseline = None
    if tested.previous is not None:
        found = store.upstream.baseline_run(run.check, tested.package, tested.previous)
        # A run of the previous release recorded after this one is no baseline of it.
        if found is not None and found.started_at <= run.started_at:
            baseline = found
    return compared(
        run, tested, run.final_results(), baseline, [] if baseline is None else baseline.results
    )


def package_views(config: Config, store: Store, summaries: list[PollSummary]) -> list[PackageView]:
    """Return every watched package with its state and its latest releases' runs."""
    by_watch: dict[str, list[PollSummary]] = {}
    for summary in summaries:
        by_watch.setdefault(summary.watch, []).append(summary)
    views = []
    for name, watch in config.watches.items():
        mine = by_watch.get(name, [])
        latest = store.dashboard.latest_releases(name, [s.package for s in mine])
        runs = [
            (run, tested)
            for run in store.dashboard.upstream_runs(watch.checks, RUNS_PER_WATCH)
            if (tested := release_of(run)) is not None and tested.watch in (None, name)
        ]
        finals: dict[str, list[TestResult]] = {}
        for run_id, result in store.dashboard.final_results([run.id for run, _ in runs]):
            finals.setdefault(run_id, []).append(result)
        for summary in mine:
            releases = _releases([(r, t) for r, t in runs if t.package == summary.package], finals)
            views.append(
                PackageView(
                    watch=name,
                    package=summary.package,
                    pinned=summary.version,
                    latest=latest.get(summary.package),
                    state=_state(summary, releases),
                    poll=summary,
                    releases=releases,
                    on_pinned_line=store.upstream.last_version(name, pinned_line(summary.package)),
                )
            )
    return views


def _releases(
    runs: list[tuple[Run, ReleaseTested]], finals: dict[str, list[TestResult]]
) -> list[tuple[str, list[ReleaseRun]]]:
    """Group a package's runs (newest first) by release; each run against its baseline."""
    grouped: dict[str, list[ReleaseRun]] = {}
    for index, (run, tested) in enumerate(runs):
        if tested.version not in grouped and len(grouped) >= RELEASES_SHOWN:
            continue
        # The baseline: the latest earlier run of the same check on the previous release.
        baseline = next(
            (
                older
                for older, on in runs[index + 1 :]
                if older.check == run.check and on.version == tested.previous
            ),
            None,
        )
        grouped.setdefault(tested.version, []).append(
            compared(
                run,
                tested,
                finals.get(run.id, []),
                baseline,
                [] if baseline is None else finals.get(baseline.id, []),
            )
        )
    return list(grouped.items())


def _state(summary: PollSummary, releases: list[tuple[str, list[ReleaseRun]]]) -> str:
    """Return the worst state that holds for the package now.

    Both the watcher's own verdict (``PollSummary.state``: a release it cannot install leaves
    no run behind) and the latest release's runs are read; the worse of the two is shown.
    """
    if summary.failures:
        return POLLS_FAILING
    from_runs = _state_of_runs(releases)
    judged = _WATCHER_STATES.get(summary.state)
    if judged is None:
        return from_runs
    return min(judged, from_runs, key=_WORST_FIRST.index)


def _state_of_runs(releases: list[tuple[str, list[ReleaseRun]]]) -> str:
    if not releases:
        return UNTESTED
    _, latest = releases[0]
    if any(run.install_failed for run in latest):
        return CANNOT_INSTALL
    if any(run.broke for run in latest):
        return BREAKS
    if any(run.baseline_failed for run in latest):
        return BASELINE_FAILING
    return OK


def package_json(view: PackageView) -> dict[str, Any]:
    """Return the documented JSON shape of one watched package (``GET /api/v1/watches``)."""
    return {
        "watch": view.watch,
        "package": view.package,
        "state": view.state,
        "baseline_version": view.pinned,
        "latest_seen": view.latest,
        "latest_tested": {line: version for line, version in view.latest_tested},
        "last_poll_at": iso(view.poll.last_poll_at),
        "failures": view.poll.failures,
        "last_error": view.poll.last_error,
        "runs": [
            {
                "version": version,
                "previous": run.tested.previous,
                "check": run.check,
                "run_id": run.run_id,
                "status": run.status.value,
                "started_at": as_utc(run.started_at).isoformat(),
                "error": run.error,
                "baseline_run_id": run.baseline_id,
                "new": list(run.new),
                "pre_existing": list(run.known),
            }
            for version, runs in view.releases
            for run in runs
        ],
    }
