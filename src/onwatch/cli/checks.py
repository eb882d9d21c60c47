"""The one-shot commands: ``validate``, ``once`` and ``status``."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onwatch.config import Check, Config
from onwatch.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from onwatch.model import CheckStatus, Run
    from onwatch.store import Store
    from onwatch.store.recorder import Recorder

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def validate(config: Config) -> int:
    """Check every check's selection by collecting it; print what each would run."""
    import tempfile

    from onwatch.runner.execute import describe_selection
    from onwatch.runner.parse import verdict
    from onwatch.secrets import Keeper, SecretError

    keeper = Keeper(config.base_dir)

    def collect(item: tuple[str, Check]) -> tuple[str, Check, str | None, int | None]:
        name, check = item
        # A conftest may read its secrets at import: collect with them, as a run would.
        try:
            secrets = keeper.resolve(config.secrets_of(name))
        except SecretError as exc:
            return name, check, "; ".join(exc.problems), None
        with tempfile.TemporaryDirectory(prefix="onwatch-validate-") as folder:
            from onwatch.runner.process import run_pytest

            attempt = run_pytest(
                [*check.pytest_selection(), "--collect-only", "-q"],
                number=1,
                cwd=config.base_dir,
                env={**_environ(), **check.env, **secrets},
                events_path=Path(folder) / "events",
                output_path=Path(folder) / "output",
                deadline=time.monotonic() + check.timeout,
            )
        decided = verdict([attempt], describe_selection(check), "collection timed out")
        error = None if decided.error is None else keeper.mask(decided.error)
        return name, check, error, decided.collected

    from concurrent.futures import ThreadPoolExecutor

    problems = []
    with ThreadPoolExecutor(max_workers=config.settings.max_parallel) as pool:
        for name, check, error, collected in pool.map(collect, config.checks.items()):
            if error:
                problems.append(f"{config.path}: checks.{name}: {error}")
                continue
            state = "" if check.enabled else ", disabled"
            print(
                f"{name}: {collected} test{'s' * (collected != 1)} "
                f"({check.schedule}, timeout {_duration(check.timeout)}, "
                f"retries {check.retries}{state})"
            )
    if problems:
        raise ConfigError(problems)
    print(f"{config.path}: OK, {len(config.checks)} check{'s' * (len(config.checks) != 1)}")
    return EXIT_OK


def once(config: Config, names: list[str], *, json_output: bool, quiet: bool) -> int:
    """Run the named checks now, record them, print them; 1 when any did not pass."""
    from onwatch.model import RunStatus
    from onwatch.runner.execute import Runner

    checks = config.select(names)
    # Before any run: a database secret that cannot be looked up is a config error (exit 2),
    # not a database outage to spool through.
    config.database_url  # noqa: B018 - evaluated for the error it may raise
    spawned, stop = threading.Event(), threading.Event()
    runner = Runner(config, stop=stop, spawned=spawned)
    # Open the database while pytest runs, once it has started: its imports and migrations
    # then cost no wall time.
    opened = StoreOpener(config, checks, after=spawned)
    live = sys.stderr.isatty() and not json_output and not quiet
    progress = None
    if live:
        from onwatch.cli.report import Progress

        progress = Progress(sys.stderr, live)
    finished: dict[str, Run] = {}
    gate = threading.Semaphore(config.settings.max_parallel)
    done = threading.Semaphore(0)

    def execute(name: str, check: Check) -> None:
        try:
            with gate:
                if not stop.is_set():
                    handler = progress.handler(name) if progress else None
                    finished[name] = runner.execute(name, check, on_event=handler)
        finally:
            done.release()

    # Runs go in threads even alone, so that Ctrl-C reaches this thread, which then stops them:
    # their pytest processes live in sessions of their own and never see the terminal's signal.
    # (Waiting on a semaphore rather than Thread.join: a join cut short by Ctrl-C may not wait.)
    for item in checks.items():
        threading.Thread(target=execute, args=item, daemon=True).start()
    interrupted = False
    waiting = len(checks)
    while waiting:
        try:
            while waiting:
                done.acquire()
                waiting -= 1
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                stop.set()
                print("\nonwatch: interrupted; stopping and recording the runs", file=sys.stderr)
    # Runs that could not start (a secret not found, no browser) started no pytest: the store
    # must not wait for one.
    spawned.set()
    runs = [opened.review(finished[name]) for name in checks if name in finished]
    if progress:
        progress.close()
    recorded = {}
    for run in [*runner.recover(), *runs]:
        recorded[run.id] = opened.record(run)
        runner.discard(run.id)
    if any(where != "stored" for where in recorded.values()):
        print(
            f"onwatch: database unreachable ({opened.error}); runs kept in "
            f"{config.state_dir / 'spool'} and written when it is back",
            file=sys.stderr,
        )
    if json_output:
        payload = {"runs": [{**run.to_json(), "recorded": recorded[run.id]} for run in runs]}
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from onwatch.cli.report import print_runs

        print_runs(runs, quiet=quiet)
    opened.close()
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(run.status is RunStatus.PASSED for run in runs) else EXIT_FAILED


def status(config: Config, *, json_output: bool) -> int:
    """Print each check's last run, status, 24 h pass rate, failures in a row and next run."""
    from onwatch.cli.report import print_statuses
    from onwatch.store import open_store

    store = open_store(config.database_url)
    try:
        store.ensure_schema()
        statuses = check_statuses(config, store)
        channels = [channel_json(state) for state in store.outbox.channel_states()]
        watches = watch_states(config, store)
    finally:
        store.close()
    from onwatch.store.spool import Spool

    spooled = len(Spool(config.state_dir / "spool"))
    if json_output:
        payload = {
            "checks": [s.to_json() for s in statuses],
            "channels": channels,
            "spooled": spooled,
            "watches": watches,
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_statuses(statuses)
        if spooled:
            print(f"{spooled} run(s) wait on disk for the database ({config.state_dir / 'spool'})")
        for channel in channels:
            if channel["failing"]:
                print(
                    f"channel {channel['name']} is failing since {channel['failing_since']}: "
                    f"{channel['last_error']}"
                )
        for watch in watches:
            failing = (
                f"; {watch['failures']} failed polls in a row: {watch['last_error']}"
                if watch["failures"]
                else ""
            )
            print(
                f"watch {watch['watch']}: {watch['package']} {watch['version'] or '-'} tested, "
                f"last successful poll {watch['last_ok_at'] or 'never'}{failing}"
            )
    return EXIT_OK


def watch_states(config: Config, store: Store) -> list[dict[str, Any]]:
    """Return each watched package's last release tested and its polls, for status."""
    upstream = store.upstream
    found = []
    for name, watch in config.watches.items():
        for summary in upstream.summaries(name, watch.packages):
            found.append(
                {
                    "watch": name,
                    "package": summary.package,
                    "version": summary.version,
                    "last_poll_at": _iso(summary.last_poll_at),
                    "last_ok_at": _iso(summary.last_ok_at),
                    "failures": summary.failures,
                    "last_error": summary.last_error,
                }
            )
    return found


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def channel_json(state: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "name": state.channel,
        "failing": state.consecutive_failures > 0,
        "consecutive_failures": state.consecutive_failures,
        "failing_since": iso(state.failing_since),
        "last_error": state.last_error,
        "last_attempt_at": iso(state.last_attempt_at),
        "last_success_at": iso(state.last_success_at),
    }


def check_statuses(
    config: Config, store: Store, names: list[str] | None = None
) -> list[CheckStatus]:
    """Return the status of every configured check (or of the named ones) from the store."""
    from onwatch.alerting.silences import active_windows, silenced
    from onwatch.daemon.watchdog import expected_by
    from onwatch.model import CheckStatus, utcnow
    from onwatch.schedule import next_slot

    now = utcnow()
    chosen = {n: c for n, c in config.checks.items() if names is None or n in names}
    history = store.runs.history(list(chosen), now)
    incidents = store.incidents
    open_incidents = incidents.open_by_check(list(chosen))
    windows = [*active_windows(config.silences, now), *incidents.active_silences(now)]
    statuses = []
    for name, check in chosen.items():
        past = history[name]
        statuses.append(
            CheckStatus(
                name=name,
                last_status=past.last_status,
                last_run_at=past.last_run_at,
                pass_rate_24h=past.passed_24h / past.runs_24h if past.runs_24h else None,
                runs_24h=past.runs_24h,
                consecutive_failures=past.consecutive_failures,
                next_run_at=max(next_slot(check, past.last_slot, now), now)
                if check.enabled
                else None,
                incident=_incident_json(open_incidents.get(name)),
                silenced_until=getattr(silenced(name, windows), "ends_at", None),
                overdue=check.enabled
                and past.last_run_at is not None
                and now > expected_by(check, past.last_run_at),
            )
        )
    return statuses


def _incident_json(incident: Any) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {
        "id": incident.id,
        "opened_at": incident.opened_at.isoformat(),
        "failing_runs": incident.failing_runs,
        "summary": incident.summary,
        "notified": incident.notified_at is not None,
    }


class StoreOpener:
    """Opens the store and migrates it in a background thread."""

    def __init__(
        self, config: Config, checks: dict[str, Check], after: threading.Event | None = None
    ) -> None:
        self.config = config
        self.checks = checks
        self.after = after
        self.store: Store | None = None
        self.error: str | None = None
        self.recent: dict[str, list[int]] = {}  # collected counts of each check's latest runs
        self._recorder: Recorder | None = None
        self.thread = threading.Thread(target=self._open, name="onwatch-store", daemon=True)
        self.thread.start()

    def _open(self) -> None:
        if self.after is not None:
            self.after.wait(timeout=5)
            # Importing SQLAlchemy takes a core for a moment: let the tests have it first.
            _lower_thread_priority()
        from onwatch.store import open_store

        try:
            self.store = open_store(self.config.database_url)
            self.store.ensure_schema()
            for name, check in self.checks.items():
                self.store.runs.upsert_check(name, check.digest(), check.schedule)
            # Fetched now, while pytest runs: judging selection drift then costs nothing after.
            from onwatch.analysis import drift  # noqa: F401 - imported here for the same reason

            runs = self.store.runs
            self.recent = {name: runs.collected_counts(name) for name in self.checks}
        except StoreError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported, and runs are spooled, not lost
            self.error = f"{type(exc).__name__}: {exc}"

    def review(self, run: Run) -> Run:
        """Return ``run``, made an error when its selection drifted from its recent runs."""
        from onwatch.analysis.drift import with_drift

        self.thread.join()
        # Without history (the database is down) the all-skipped rule still applies.
        recent = self.recent.get(run.check, [])
        return with_drift(run, recent, self.config.checks[run.check].min_collected_ratio)

    def record(self, run: Run) -> str:
        """Store ``run``, or spool it when the database cannot be reached or opened."""
        from onwatch.store.recorder import Recorder
        from onwatch.store.spool import Spool

        self.thread.join()
        spool = Spool(self.config.state_dir / "spool")
        if self.store is None:
            spool.put(run)
            return "spooled"
        if self._recorder is None:
            self._recorder = Recorder(self.store, spool)
        return self._recorder.record(run)

    def close(self) -> None:
        """Close the store."""
        if self.store is not None:
            self.store.close()


def _lower_thread_priority() -> None:
    import os

    try:  # Linux schedules each thread on its own, so this nices only this one.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _duration(seconds: float) -> str:
    from onwatch.durations import format_duration

    return format_duration(seconds)
