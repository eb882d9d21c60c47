"""Poll a watch's packages once, test each new release, and say what it breaks.

For each package: fetch its releases from the index (a failure is recorded and counted, and
alerts once ``alert_after`` polls in a row failed), work out what is new since the last release
handled, and for each new release in version order build its environment and run the watch's
checks there. Each run is recorded with ``trigger = "upstream"`` and compared with the last run
on the previous release: tests that fail only with the new one are a breakage, alerted to the
check's channels once per release.

The first poll of a package takes its current release as the baseline and runs the checks on
it, so that the next release has something to be compared with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from onwatch.errors import BuildError, IndexProblem, SecretError, StoreError
from onwatch.model import Run, RunStatus, Trigger, utcnow

if TYPE_CHECKING:
    from onwatch.channels.notification import Notification
    from onwatch.config import Config, Watch
    from onwatch.runner.execute import Runner
    from onwatch.store import Upstream
    from onwatch.upstream.venv import Environments

log = logging.getLogger("onwatch.upstream")
Notify = Callable[["Notification", list[str]], None]


@dataclass(frozen=True, slots=True)
class PackageReport:
    """What one poll found for one package."""

    package: str
    previous: str | None  # the last release handled before this poll
    latest: str | None  # the newest release the index lists (any kind)
    new: list[str] = field(default_factory=list)  # releases this poll tested
    error: str | None = None
    kind: str | None = None  # the poll failure's kind

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape."""
        return {
            "package": self.package,
            "previous": self.previous,
            "latest": self.latest,
            "new": list(self.new),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class BrokenTest:
    """A test that fails with a new release and did not with the previous one."""

    nodeid: str
    fingerprint: str
    message: str | None


@dataclass(frozen=True, slots=True)
class Breakage:
    """What a new release breaks in one check."""

    watch: str
    check: str
    package: str
    version: str
    previous: str | None
    run_id: str
    tests: tuple[BrokenTest, ...]
    error: str | None = None  # the run itself failed (an import error at collection...)

    @property
    def summary(self) -> str:
        """Return the one line people read, e.g. ``demo-lib 1.1 breaks: 3 tests``."""
        count = len(self.tests)
        what = f"{count} test{'s' * (count != 1)}" if count else "the run"
        return f"{self.package} {self.version} breaks: {what} ({self.check})"

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape."""
        return {
            "summary": self.summary,
            "check": self.check,
            "package": self.package,
            "version": self.version,
            "previous": self.previous,
            "run_id": self.run_id,
            "error": self.error,
            "tests": [
                {"nodeid": t.nodeid, "fingerprint": t.fingerprint, "message": t.message}
                for t in self.tests
            ],
        }


@dataclass
class WatchReport:
    """Everything one poll of a watch did."""

    watch: str
    packages: list[PackageReport] = field(default_factory=list)
    runs: list[tuple[Run, str]] = field(default_factory=list)  # (run, stored or spooled)
    breakages: list[Breakage] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Tell whether a poll failed or a triggered run did not pass."""
        return any(p.error for p in self.packages) or any(
            run.status is not RunStatus.PASSED for run, _ in self.runs
        )

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of ``onwatch watch check --json``."""
        return {
            "watch": self.watch,
            "packages": [p.to_json() for p in self.packages],
            "runs": [{**run.to_json(), "recorded": where} for run, where in self.runs],
            "breakages": [b.to_json() for b in self.breakages],
        }


def compare(run: Run, baseline: Run | None, watch: str, previous: str | None) -> Breakage | None:
    """Return what ``run`` fails that ``baseline`` did not, or None when nothing new fails."""
    from onwatch.analysis.fingerprint import fingerprint

    detail = run.trigger_detail.get("upstream") or {}
    failing_before = (
        set()
        if baseline is None
        else {r.nodeid for r in baseline.final_results() if r.outcome.is_bad}
    )
    broken = tuple(
        BrokenTest(r.nodeid, fingerprint(r), r.message)
        for r in run.final_results()
        if r.outcome.is_bad and r.nodeid not in failing_before
    )
    run_broke = run.status in (RunStatus.ERROR, RunStatus.TIMEOUT) and (
        baseline is None or baseline.status is not run.status
    )
    if not broken and not run_broke:
        return None
    return Breakage(
        watch=watch,
        check=run.check,
        package=str(detail.get("package", "")),
        version=str(detail.get("version", "")),
        previous=previous,
        run_id=run.id,
        tests=broken,
        error=run.error if run_broke else None,
    )


class Watcher:
    """Polls watches and runs what their new releases trigger."""

    def __init__(
        self,
        config: Config,
        runner: Runner,
        record: Callable[[Run], str],
        store: Upstream,
        environments: Environments,
        *,
        notify: Notify | None = None,
        on_poll: Callable[[str, str, bool, datetime], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.runner = runner
        self.record = record
        self.store = store
        self.environments = environments
        self.notify = notify
        self.on_poll = on_poll  # (watch, package, ok, when): the daemon's /metrics
        self.clock = clock

    def check(self, name: str) -> WatchReport:
        """Poll ``name`` once now; test what is new; return what happened."""
        watch = self.config.watches[name]
        report = WatchReport(name)
        index = self._index(watch)
        for package in watch.packages:
            report.packages.append(self._package(name, watch, index, package, report))
        return report

    # -- one package ---------------------------------------------------------------------------

    def _package(
        self, name: str, watch: Watch, index: str | None, package: str, report: WatchReport
    ) -> PackageReport:
        from onwatch.store import PollRecord
        from onwatch.upstream.index import fetch_releases
        from onwatch.upstream.releases import latest, newer_than, settled

        now = self.clock()
        previous = before = self.store.last_version(name, package)
        try:
            if index is None:
                raise IndexProblem("auth", "the index URL's secret cannot be looked up")
            releases = fetch_releases(index, package)
        except IndexProblem as exc:
            error = self.runner.keeper.mask(str(exc))
            self.store.record_poll(PollRecord(name, package, now, False, exc.kind, error))
            if self.on_poll is not None:
                self.on_poll(name, package, False, now)
            self._poll_failed(name, watch, package, error)
            return PackageReport(package, previous, None, error=error, kind=exc.kind)
        newest = max(releases, key=lambda release: release.parsed, default=None)
        seen = self.store.first_seen(name, package, [r.version for r in releases], now)
        if previous is None:
            chosen = latest(
                releases,
                prereleases=watch.prereleases,
                min_age=watch.min_age,
                now=now,
                first_seen=seen,
            )
            targets = [] if chosen is None else [chosen]
        else:
            targets = settled(
                newer_than(releases, previous, prereleases=watch.prereleases),
                min_age=watch.min_age,
                now=now,
                first_seen=seen,
            )
        versions = [release.version for release in targets]
        self.store.record_poll(
            PollRecord(
                name,
                package,
                now,
                True,
                latest=None if newest is None else newest.version,
                new_versions=versions,
            )
        )
        if self.on_poll is not None:
            self.on_poll(name, package, True, now)
        self._poll_recovered(name, watch, package)
        for release in targets:
            self._test(name, watch, index or "", package, release.version, previous, report)
            self.store.set_last_version(name, package, release.version, self.clock())
            previous = release.version
        return PackageReport(
            package, before, None if newest is None else newest.version, new=versions
        )

    def _test(
        self,
        name: str,
        watch: Watch,
        index: str,
        package: str,
        version: str,
        previous: str | None,
        report: WatchReport,
    ) -> None:
        from onwatch.upstream.product import requirement_lines

        pins = [f"{package}=={version}"]
        refuse = None
        environment = None
        try:
            requirements = requirement_lines(watch.requirements, self.config.base_dir)
            extra_indexes = [self._filled(url) for url in watch.extra_indexes]
            environment = self.environments.ensure(
                index, requirements, pins, extra_indexes=extra_indexes, installer=watch.installer
            )
        except (BuildError, OSError) as exc:
            refuse = f"cannot build the environment of {package} {version}: {exc}"
        detail: dict[str, Any] = {
            "watch": name,
            "upstream": {"package": package, "version": version},
            "previous": previous,
            "dependencies": {} if environment is None else environment.dependencies(),
        }
        for check_name in watch.checks:
            check = self.config.checks[check_name]
            run = self.runner.execute(
                check_name,
                check,
                trigger=Trigger.UPSTREAM,
                python=None if environment is None else environment.python,
                detail=detail,
                refuse=refuse,
            )
            where = self.record(run)
            self.runner.discard(run.id)
            report.runs.append((run, where))
            log.info(
                "upstream run finished",
                extra={
                    "fields": {
                        "watch": name,
                        "check": check_name,
                        "package": package,
                        "version": version,
                        "status": run.status.value,
                    }
                },
            )
            if previous is None:
                continue  # the baseline: nothing to compare with yet
            try:
                baseline = self.store.baseline_run(check_name, package, previous)
            except StoreError:
                baseline = None
            broken = compare(run, baseline, name, previous)
            if broken is not None:
                report.breakages.append(broken)
                self._announce(broken)

    # -- alerts --------------------------------------------------------------------------------

    def _announce(self, broken: Breakage) -> None:
        from onwatch.channels.notification import Event, FailingTest, Notification

        log.warning(broken.summary, extra={"fields": {"run_id": broken.run_id}})
        if self.notify is None:
            return
        notification = Notification(
            event=Event.UPSTREAM_BREAKS,
            key=f"upstream.breaks|{broken.watch}|{broken.check}|{broken.package}|{broken.version}",
            summary=broken.summary,
            check=broken.check,
            failing_tests=tuple(FailingTest(t.nodeid, t.message or "") for t in broken.tests),
            run_id=broken.run_id,
            run_url=f"{self.config.settings.base_url.rstrip('/')}/runs/{broken.run_id}",
            severity="warning",
            details={
                "watch": broken.watch,
                "package": broken.package,
                "version": broken.version,
                "previous": broken.previous,
                "fingerprints": [t.fingerprint for t in broken.tests],
                "error": broken.error,
            },
        )
        self.notify(notification, self.config.channels_of(broken.check))

    def _poll_failed(self, name: str, watch: Watch, package: str, error: str) -> None:
        from onwatch.channels.notification import Event, Notification

        summary = self.store.summaries(name, [package])[0]
        log.warning(
            "upstream poll failed",
            extra={"fields": {"watch": name, "package": package, "error": error}},
        )
        if self.notify is None or summary.failures != watch.alert_after:
            return  # once per streak, when it reaches alert_after
        since = summary.last_ok_at.isoformat() if summary.last_ok_at else "never"
        notification = Notification(
            event=Event.UPSTREAM_POLL_FAILING,
            key=f"upstream.poll|{name}|{package}|{since}",
            summary=(
                f"watch {name}: {summary.failures} polls of {package} failed in a row; "
                f"new releases go untested: {error}"
            ),
            severity="warning",
            details={"watch": name, "package": package, "error": error, "last_ok_at": since},
        )
        self.notify(notification, self._channels(watch))

    def _poll_recovered(self, name: str, watch: Watch, package: str) -> None:
        from onwatch.channels.notification import Event, Notification

        if self.notify is None:
            return
        # The poll just recorded is the good one: look at the streak that ended before it.
        streak, ended_at = self.store.streak_before_last_ok(name, package)
        if streak < watch.alert_after:
            return
        notification = Notification(
            event=Event.UPSTREAM_POLL_RECOVERED,
            key=f"upstream.poll.ok|{name}|{package}|{ended_at}",
            summary=f"watch {name}: polls of {package} work again",
            severity="info",
            details={"watch": name, "package": package},
        )
        self.notify(notification, self._channels(watch))

    def _channels(self, watch: Watch) -> list[str]:
        found: dict[str, None] = {}
        for check in watch.checks:
            found.update(dict.fromkeys(self.config.channels_of(check)))
        return list(found)

    def _filled(self, url: str) -> str:
        """Return ``url`` with its secrets filled in; a missing secret cannot build anything."""
        from onwatch.secrets import fill, placeholders

        names = placeholders(url)
        if not names:
            return url
        lookup = self.runner.keeper.resolver(self.config.settings.secrets)
        try:
            return fill(url, lookup(names))
        except SecretError as exc:
            raise BuildError(f"an extra index URL's secret cannot be looked up: {exc}") from exc

    def _index(self, watch: Watch) -> str | None:
        """Return the index URL with its secrets filled in, or None if one is missing."""
        from onwatch.secrets import fill, placeholders

        names = placeholders(watch.index)
        if not names:
            return watch.index
        lookup = self.runner.keeper.resolver(self.config.settings.secrets)
        try:
            return fill(watch.index, lookup(names))
        except SecretError:
            return None
