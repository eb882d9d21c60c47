"""Poll a watch's packages once, test each new release, and give each its verdict.

For each package: fetch its releases from the index, work out what is new since the last release
handled, and for each new release in version order build its environment and run the watch's
checks there. Each run is recorded with ``trigger = "upstream"`` and compared with the last good
run (one that executed the suite) of the baseline: tests that fail only with the new release are
a breakage, alerted to the check's channels once per release.

Every other outcome is its own verdict, never a breakage, and is told (upstream/verdicts.py):

- a release that cannot be installed: ``upstream.install_failed`` at once, once per release;
  not handled, it is tried again (``watch check`` at every call, the daemon with a backoff);
- a baseline that cannot be built, or whose runs error or fail: ``upstream.baseline_failed``
  once per streak (an errored baseline is not taken, and is tried again at the next poll);
- polls that fail ``alert_after`` times in a row: one ``upstream.poll_failing`` per index,
  again when the reason changes.

Each ends with its recovery notice. The first poll of a package takes its current release as
the baseline and runs the checks on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from onwatch.errors import BuildError, IndexProblem, SecretError, StoreError
from onwatch.model import Run, RunStatus, Trigger, utcnow
from onwatch.upstream.report import Breakage, PackageReport, Problem, WatchReport
from onwatch.upstream.report import compare as compare  # the judgement, re-exported

if TYPE_CHECKING:
    from onwatch.channels.notification import Notification
    from onwatch.config import Config, Watch
    from onwatch.runner.execute import Runner
    from onwatch.store import Upstream
    from onwatch.upstream.releases import Release
    from onwatch.upstream.venv import Environment, Environments
    from onwatch.upstream.verdicts import PackageState

log = logging.getLogger("onwatch.upstream")
Notify = Callable[["Notification", list[str]], None]


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
        self.on_state: Callable[[str, str, str], None] | None = None  # (watch, package, state)
        self.clock = clock

    def check(self, name: str, *, backoff: bool = False) -> WatchReport:
        """Poll ``name`` once now; test what is new; return what happened.

        With ``backoff`` (the daemon), a release that could not be installed is tried again
        only once its backoff is over; without it (``watch check``), at every call.
        Another onwatch process polling the same watch is waited for up to ``busy_wait``;
        past it, ``WatchBusy`` is raised and nothing is recorded.
        """
        from onwatch.upstream.lock import WatchLock

        watch = self.config.watches[name]
        with WatchLock(self.config.state_dir / "watch-locks", name, watch.busy_wait):
            return self._check(name, backoff)

    def _check(self, name: str, backoff: bool) -> WatchReport:
        from onwatch.upstream.verdicts import PackageState

        watch = self.config.watches[name]
        report = WatchReport(name)
        index = self._index(watch)
        states = {
            package: PackageState.from_json(self.store.watch_state(name, package))
            for package in watch.packages
        }
        for package in watch.packages:
            found = self._package(name, watch, index, package, states[package], report, backoff)
            report.packages.append(found)
        self._tell_polls(name, watch, report, states)
        now = self.clock()
        for package, state in states.items():
            self.store.set_watch_state(name, package, state.to_json(), now)
        if self.on_state is not None:
            for found in report.packages:
                self.on_state(name, found.package, found.state)
        return report

    # -- one package ---------------------------------------------------------------------------

    def _package(
        self,
        name: str,
        watch: Watch,
        index: str | IndexProblem,
        package: str,
        state: PackageState,
        report: WatchReport,
        backoff: bool,
    ) -> PackageReport:
        from packaging.version import Version

        from onwatch.store import PollRecord, pinned_line
        from onwatch.upstream.index import fetch_releases
        from onwatch.upstream.releases import line_name, same_line

        now = self.clock()
        previous = before = self.store.last_version(name, package)
        try:
            if isinstance(index, IndexProblem):
                raise IndexProblem(index.kind, str(index))
            releases = fetch_releases(index, package)
        except IndexProblem as exc:
            error = self.runner.keeper.mask(str(exc))
            self.store.record_poll(PollRecord(name, package, now, False, exc.kind, error))
            if self.on_poll is not None:
                self.on_poll(name, package, False, now)
            log.warning(
                "upstream poll failed",
                extra={"fields": {"watch": name, "package": package, "error": error}},
            )
            return PackageReport(
                package,
                previous,
                None,
                error=error,
                kind=exc.kind,
                baseline=state.baseline or previous,
                state="polls-failing",
            )
        newest = max(releases, key=lambda release: release.parsed, default=None)
        seen = self.store.first_seen(name, package, [r.version for r in releases], now)
        pin = self._pin(watch, package)
        pinned_key = pinned_line(package)
        pinned: str | None = None
        if pin is not None:
            stored = self.store.last_version(name, pinned_key)
            if stored is not None and same_line(stored, pin) and Version(stored) >= Version(pin):
                pinned = stored
        on_latest: list[Release] = []
        if pin is None or "latest" in watch.lines:
            on_latest = self._due(watch, releases, previous, now, seen)
        on_pinned: list[Release] = []
        if pin is not None:
            if pinned is None:
                # The line starts from the pinned version itself: its runs are the baseline.
                on_pinned = [r for r in releases if r.parsed == Version(pin)][:1]
            else:
                on_pinned = [
                    r
                    for r in self._due(watch, releases, pinned, now, seen)
                    if same_line(r.version, pin)
                ]
        latest_versions = {r.version for r in on_latest}
        pinned_versions = {r.version for r in on_pinned}
        targets = sorted(
            {r.version: r for r in on_latest + on_pinned}.values(), key=lambda r: r.parsed
        )
        waiting = [r.version for r in targets if backoff and not state.retry_due(r.version, now)]
        versions = [r.version for r in targets if r.version not in waiting]
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
        for version in versions:
            in_latest = version in latest_versions
            in_pinned = version in pinned_versions
            line = None
            if pin is not None:
                line = line_name(pin) if in_pinned else "latest"
            if in_pinned and (pinned is not None or not in_latest):
                against = pinned
            else:
                against = previous
            handled = self._release(
                name,
                watch,
                index or "",
                package,
                version,
                against,
                state,
                report,
                line,
                in_latest,
            )
            if not handled:
                continue
            if in_latest:
                self.store.set_last_version(name, package, version, self.clock())
                previous = version
            if in_pinned:
                self.store.set_last_version(name, pinned_key, version, self.clock())
                pinned = version
        if previous is not None:
            # A release that could not be installed is not retried once a newer one on its
            # line is tested.
            for version in list(state.failing):
                if Version(version) > Version(previous):
                    continue
                if pin is not None and same_line(version, pin):
                    if pinned is None or Version(version) > Version(pinned):
                        continue
                log.info(
                    "upstream release superseded",
                    extra={"fields": {"watch": name, "package": package, "version": version}},
                )
                del state.failing[version]
        return PackageReport(
            package,
            before,
            None if newest is None else newest.version,
            new=versions,
            waiting=waiting,
            baseline=state.baseline or previous,
            state=state.state,
        )

    def _due(
        self,
        watch: Watch,
        releases: list[Release],
        previous: str | None,
        now: datetime,
        seen: dict[str, datetime],
    ) -> list[Release]:
        """Return the releases due after ``previous``; the newest alone when there is none."""
        from onwatch.upstream.releases import latest, newer_than, settled

        if previous is None:
            chosen = latest(
                releases,
                prereleases=watch.prereleases,
                min_age=watch.min_age,
                now=now,
                first_seen=seen,
            )
            return [] if chosen is None else [chosen]
        return settled(
            newer_than(releases, previous, prereleases=watch.prereleases),
            min_age=watch.min_age,
            now=now,
            first_seen=seen,
        )

    def _pin(self, watch: Watch, package: str) -> str | None:
        """Return the version the product pins ``package`` at, when the pinned line is followed."""
        from onwatch.upstream.product import pinned_version, requirement_lines

        if "pinned" not in watch.lines:
            return None
        try:
            return pinned_version(
                requirement_lines(watch.requirements, self.config.base_dir), package
            )
        except BuildError:
            return None  # told when the environment is built

    def _release(
        self,
        name: str,
        watch: Watch,
        index: str,
        package: str,
        version: str,
        previous: str | None,
        state: PackageState,
        report: WatchReport,
        line: str | None = None,
        latest: bool = True,
    ) -> bool:
        """Install, run and judge one release; return whether it was handled.

        ``line`` names the version line it is tested on; a release off the latest line
        (``latest`` false, a backport) is compared with ``previous``, its line's last release,
        and leaves the latest line's baseline alone.

        A release that cannot be installed, or a baseline whose runs did not execute the suite,
        is not handled: it is tried again at a later poll.
        """
        from onwatch.upstream import verdicts

        environment = self._environment(watch, index, package, version)
        if isinstance(environment, str):
            self._not_installed(name, watch, package, version, previous, environment, state)
            kind = "install" if previous is not None else "baseline-install"
            report.problems.append(Problem(package, version, environment, kind))
            return False
        runs = self._run(name, watch, package, version, previous, environment, report, line)
        failing = state.failing.pop(version, None)
        if failing is not None:
            self._send(
                verdicts.install_recovered(name, watch.index, package, version, failing.attempts),
                self._channels(watch),
            )
        executed = all(
            run.status in (RunStatus.PASSED, RunStatus.FAILED) and (run.collected or 0) > 0
            for run in runs
        )
        passed = all(run.status is RunStatus.PASSED for run in runs)
        if previous is None:
            kept = state.baseline
            taken = self._take_baseline(name, watch, package, version, runs, state, report)
            if not latest:
                state.baseline = kept  # the latest line keeps its own
            return taken
        base = (state.baseline or previous) if latest and line in (None, "latest") else previous
        state.verdict = "ok"
        for run in runs:
            try:
                baseline = self.store.baseline_run(run.check, package, base)
            except StoreError:
                baseline = None
            broken = compare(run, baseline, name, base)
            if broken is None and baseline is not None:
                broken = self._still_broken(run, baseline, name, package, version)
            if broken is not None:
                broken = replace(broken, line=line)
                state.verdict = "breaks"
                report.breakages.append(broken)
                self._announce(broken)
        if executed and latest:
            state.baseline = version
        if executed:
            if passed:
                self._baseline_passes(name, watch, package, version, state)
        return True

    def _still_broken(
        self, run: Run, baseline: Run, name: str, package: str, version: str
    ) -> Breakage | None:
        """Judge a final release whose baseline is a pre-release against the release before
        the pre-releases: what it breaks that they broke already is still a breakage of its own.
        """
        from dataclasses import replace

        from packaging.version import InvalidVersion, Version

        base = str((baseline.trigger_detail.get("upstream") or {}).get("version", ""))
        try:
            if Version(version).is_prerelease or not Version(base).is_prerelease:
                return None
            before: Run | None = baseline
            while before is not None:
                earlier = before.trigger_detail.get("previous")
                if not isinstance(earlier, str):
                    return None
                before = self.store.baseline_run(run.check, package, earlier)
                if before is None:
                    return None
                if not Version(earlier).is_prerelease:
                    break
        except (InvalidVersion, StoreError):
            return None
        broken = compare(run, before, name, earlier)
        return None if broken is None or not broken.tests else replace(broken, still_as=base)

    def _take_baseline(
        self,
        name: str,
        watch: Watch,
        package: str,
        version: str,
        runs: list[Run],
        state: PackageState,
        report: WatchReport,
    ) -> bool:
        """Judge the first release tested; return whether it became the baseline."""
        bad = [run for run in runs if run.status is not RunStatus.PASSED]
        if not bad:
            state.baseline = version
            self._baseline_passes(name, watch, package, version, state)
            return True
        executed = [
            run for run in bad if run.status is RunStatus.FAILED and (run.collected or 0) > 0
        ]
        if len(executed) == len(bad):
            count = sum(1 for run in executed for r in run.final_results() if r.outcome.is_bad)
            checks = ", ".join(run.check for run in executed)
            reason = (
                f"fails {count} test{'s' * (count != 1)} on its own ({checks}); "
                "they are left out of comparisons"
            )
            state.baseline = version
            self._baseline_fails(name, watch, package, version, reason, state, report)
            return True
        first = bad[0] if not executed else next(r for r in bad if r not in executed)
        said = (first.error or first.status.value).strip().splitlines()
        reason = f"does not run ({first.check}): {said[0] if said else first.status.value}"
        self._baseline_fails(name, watch, package, version, reason, state, report)
        return False

    def _environment(
        self, watch: Watch, index: str, package: str, version: str
    ) -> Environment | str:
        """Return the release's environment, or why it cannot be built."""
        from onwatch.upstream.product import requirement_lines

        try:
            requirements = requirement_lines(watch.requirements, self.config.base_dir)
            extra_indexes = [self._filled(url) for url in watch.extra_indexes]
            return self.environments.ensure(
                index,
                requirements,
                [f"{package}=={version}"],
                extra_indexes=extra_indexes,
                installer=watch.installer,
            )
        except (BuildError, OSError) as exc:
            said = " ".join(str(exc).split())
            return self.runner.keeper.mask(said)

    def _run(
        self,
        name: str,
        watch: Watch,
        package: str,
        version: str,
        previous: str | None,
        environment: Environment,
        report: WatchReport,
        line: str | None = None,
    ) -> list[Run]:
        """Run the watch's checks in the release's environment; record and return the runs."""
        upstream: dict[str, Any] = {"package": package, "version": version}
        if line is not None:
            upstream["line"] = line
        detail: dict[str, Any] = {
            "watch": name,
            "upstream": upstream,
            "previous": previous,
            "dependencies": environment.dependencies(),
        }
        done = []
        for check_name in watch.checks:
            check = self.config.checks[check_name]
            run = self.runner.execute(
                check_name,
                check,
                trigger=Trigger.UPSTREAM,
                python=environment.python,
                detail=detail,
            )
            where = self.record(run)
            self.runner.discard(run.id)
            report.runs.append((run, where))
            done.append(run)
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
        return done

    # -- alerts --------------------------------------------------------------------------------

    def _not_installed(
        self,
        name: str,
        watch: Watch,
        package: str,
        version: str,
        previous: str | None,
        error: str,
        state: PackageState,
    ) -> None:
        from onwatch.upstream import verdicts

        log.warning(
            "upstream release cannot be installed",
            extra={
                "fields": {"watch": name, "package": package, "version": version, "error": error}
            },
        )
        if previous is None:
            reason = f"cannot be installed from {watch.index}: {error}"
            self._baseline_fails(name, watch, package, version, reason, state, None)
            return
        if state.install_failed(version, error, self.clock(), watch.every):
            self._send(
                verdicts.install_failed(name, watch.index, package, version, error),
                self._channels(watch),
            )

    def _baseline_fails(
        self,
        name: str,
        watch: Watch,
        package: str,
        version: str,
        reason: str,
        state: PackageState,
        report: WatchReport | None,
    ) -> None:
        from onwatch.upstream import verdicts

        if report is not None:
            report.problems.append(Problem(package, version, reason, "baseline"))
        state.baseline_failing = f"{version} {reason}"
        log.warning(
            "upstream baseline failing",
            extra={"fields": {"watch": name, "package": package, "reason": reason}},
        )
        if not state.baseline_told:
            state.baseline_told = True
            self._send(
                verdicts.baseline_failed(name, package, version, reason, self.clock()),
                self._channels(watch),
            )

    def _baseline_passes(
        self, name: str, watch: Watch, package: str, version: str, state: PackageState
    ) -> None:
        from onwatch.upstream import verdicts

        told = state.baseline_told
        state.baseline_failing, state.baseline_told = None, False
        if told:
            self._send(verdicts.baseline_recovered(name, package, version), self._channels(watch))

    def _tell_polls(
        self, name: str, watch: Watch, report: WatchReport, states: dict[str, PackageState]
    ) -> None:
        """Alert once per index when polls fail ``alert_after`` times, again on a new reason,
        and say when they work again."""
        from onwatch.upstream import verdicts

        failed = [p for p in report.packages if p.error]
        if failed:
            summaries = {
                s.package: s for s in self.store.summaries(name, [p.package for p in failed])
            }
            due = [p for p in failed if summaries[p.package].failures >= watch.alert_after]
            fresh = [p for p in due if states[p.package].poll_told is None]
            changed = [p for p in due if states[p.package].poll_told not in (None, p.kind)]
            for group, changed_from in ((fresh, None), (changed, "changed")):
                if not group:
                    continue
                first = group[0]
                summary = summaries[first.package]
                since = summary.last_ok_at.isoformat() if summary.last_ok_at else "never"
                self._send(
                    verdicts.polls_failing(
                        name,
                        watch.index,
                        [p.package for p in group],
                        summary.failures,
                        first.kind or "unknown",
                        first.error or "",
                        since,
                        changed_from=None
                        if changed_from is None
                        else states[first.package].poll_told,
                    ),
                    self._channels(watch),
                )
            for p in due:
                states[p.package].poll_told = p.kind or "unknown"
        back = [p for p in report.packages if not p.error and states[p.package].poll_told]
        if back:
            for p in back:
                states[p.package].poll_told = None
            self._send(
                verdicts.polls_recovered(
                    name, watch.index, [p.package for p in back], self.clock()
                ),
                self._channels(watch),
            )

    def _announce(self, broken: Breakage) -> None:
        from onwatch.upstream import verdicts

        log.warning(broken.summary, extra={"fields": {"run_id": broken.run_id}})
        notification = verdicts.breaks(broken, self.config.settings.base_url)
        self._send(notification, self.config.channels_of(broken.check))

    def _send(self, notification: Notification, channels: list[str]) -> None:
        if self.notify is not None:
            self.notify(notification, channels)

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

    def _index(self, watch: Watch) -> str | IndexProblem:
        """Return the index URL with its secrets filled in, or the poll failure naming each
        secret of the index URL or an extra index URL that cannot be looked up."""
        from onwatch.secrets import fill, placeholders

        lookup = self.runner.keeper.resolver(self.config.settings.secrets)
        problems: dict[str, str] = {}
        values: dict[str, str] = {}
        urls = [("index URL", watch.index)]
        urls += [("extra index URL", url) for url in watch.extra_indexes]
        for where, url in urls:
            for secret in placeholders(url):
                if secret in problems or secret in values:
                    continue
                try:
                    values.update(lookup([secret]))
                except SecretError as exc:
                    reason = "; ".join(exc.problems)
                    problems[secret] = (
                        f"the {where}'s secret ${{{secret}}} cannot be looked up ({reason})"
                    )
        if problems:
            return IndexProblem("auth", "; ".join(problems.values()))
        return fill(watch.index, values) if placeholders(watch.index) else watch.index
