"""``onwatch watch check NAME``: poll one watch now, test what is new, print what it found."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from onwatch.cli.exits import EXIT_FAILED, EXIT_OK
from onwatch.errors import ConfigError, WatchBusy

if TYPE_CHECKING:
    from onwatch.alerting.outbox import Outbox
    from onwatch.channels.notification import Notification
    from onwatch.config import Config
    from onwatch.runner.execute import Runner
    from onwatch.store import Store
    from onwatch.upstream.report import WatchReport


def watch_check(config: Config, name: str, *, json_output: bool) -> int:
    """Poll the watch ``name`` once now; 1 when something new broke, or a poll or an install
    failed (a run that fails with nothing new is not a failure of the watch)."""
    from onwatch.logs import configure_logging
    from onwatch.runner.execute import Runner
    from onwatch.store import open_store
    from onwatch.store.recorder import Recorder
    from onwatch.store.spool import Spool
    from onwatch.upstream.wiring import build_watcher

    if name not in config.watches:
        known = ", ".join(sorted(config.watches)) or "none; add a [watch.NAME] table"
        raise ConfigError([f"{config.path}: no watch named {name!r} (known: {known})"])
    store = open_store(config.database_url)
    try:
        store.ensure_schema()
        runner = Runner(config)
        # What the report prints is enough; log lines would only repeat it.
        configure_logging("error", "text", runner.keeper.mask)
        outbox = _outbox(config, store, runner)

        def notify(notification: Notification, channels: list[str]) -> None:
            # Stored first, so that `onwatch run` sends what this process could not.
            outbox.enqueue(notification, channels)

        recorder = Recorder(store, Spool(config.state_dir / "spool"))
        try:
            report = build_watcher(config, runner, recorder, store, notify).check(name)
        except WatchBusy as exc:
            print(f"onwatch: {exc}", file=sys.stderr)
            return EXIT_FAILED
        with outbox:
            outbox.deliver_due()
    finally:
        store.close()
    if json_output:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return EXIT_FAILED if report.failed else EXIT_OK


def _outbox(config: Config, store: Store, runner: Runner) -> Outbox:
    from onwatch.alerting.outbox import Outbox
    from onwatch.channels import build_channel

    lookup = runner.keeper.resolver(config.settings.secrets)
    channels = {name: build_channel(name, s, lookup) for name, s in config.channels.items()}
    return Outbox(store.outbox, channels, group_window=0.0, mask=runner.keeper.mask_value)


def print_report(report: WatchReport) -> None:
    """Print a watch report for people."""
    for package in report.packages:
        if package.error:
            print(f"{report.watch}: {package.package}: poll FAILED: {package.error}")
            continue
        new = ", ".join(package.new) or "none"
        waiting = f", waiting to retry: {', '.join(package.waiting)}" if package.waiting else ""
        print(
            f"{report.watch}: {package.package}: latest {package.latest or '-'}, "
            f"tested before {package.previous or '-'}, new: {new}{waiting}, "
            f"baseline {package.baseline or '-'} ({package.state})"
        )
    for run, where in report.runs:
        upstream = run.trigger_detail.get("upstream") or {}
        counts = ", ".join(f"{n} {k}" for k, n in run.counts().items() if n)
        spooled = " (spooled)" if where != "stored" else ""
        print(
            f"  {run.check} on {upstream.get('package')} {upstream.get('version')}: "
            f"{run.status.value.upper()} ({counts or 'no tests'}){spooled}  run {run.id}"
        )
        if run.error:
            print(f"    ! {run.error.splitlines()[0]}")
    for problem in report.problems:
        what = "cannot be installed" if problem.kind == "install" else "is the baseline, failing"
        print(f"{problem.package} {problem.version} {what}: {problem.reason}")
    for broken in report.breakages:
        print(broken.summary)
        for test in broken.tests:
            first = (test.message or "").strip().splitlines()
            print(f"  {test.nodeid}  [{test.fingerprint}]  {first[0] if first else ''}")
