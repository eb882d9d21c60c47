"""The one-shot commands: ``validate``, ``once`` and ``status``."""

from __future__ import annotations

import json
import sys
import threading
from typing import TYPE_CHECKING

from onwatch.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from onwatch.config import Check, Config
from onwatch.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from onwatch.model import Run
    from onwatch.store import Store
    from onwatch.store.recorder import Recorder


def validate(config: Config) -> int:
    """Check every check's selection by collecting it; print what each would run.

    Every check is collected, and the problems of all come in one error, each with its line.
    """
    from onwatch.config.files import root_of
    from onwatch.config.locate import problem
    from onwatch.runner.execute import Runner

    runner = Runner(config)

    def collect(item: tuple[str, Check]) -> tuple[str, Check, str | None, int | None]:
        name, check = item
        found = runner.collect(name, check)
        return name, check, found.error, found.count

    from concurrent.futures import ThreadPoolExecutor

    problems = []
    with ThreadPoolExecutor(max_workers=config.settings.max_parallel) as pool:
        for name, check, error, collected in pool.map(collect, config.checks.items()):
            watches = watches_of(config, name)
            if error and _missing_import(error) and watches and not check.enabled:
                # Only watches run it, each in a release environment built from the product's
                # dependencies: what onwatch's own environment lacks says nothing about those.
                print(
                    f"onwatch: warning: {name}: cannot be collected in onwatch's environment "
                    f"({first_line(error)}); not checked here: only watch "
                    f"{', '.join(watches)} runs it, in its release environments",
                    file=sys.stderr,
                )
                continue
            if error and _missing_import(error) and watches:
                error += (
                    f" (watch {', '.join(watches)} tests it in its release environments, but "
                    "its scheduled runs use this one: install what it imports here, or set "
                    "enabled = false if only the watch runs it)"
                )
            if error:
                text = config.path.read_text(encoding="utf-8", errors="replace")
                loc = (*root_of(config.path), "checks", name)
                problems.append(problem(config.path, text, loc, error))
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


def watches_of(config: Config, check: str) -> list[str]:
    """Return the watches that run ``check`` on new releases, in config order."""
    return [name for name, watch in config.watches.items() if check in watch.checks]


def _missing_import(error: str) -> bool:
    # pytest reports a test module that cannot import as "ModuleNotFoundError: ..." or
    # "ImportError: ..." in its collection errors; any other error is the check's own.
    return "ModuleNotFoundError" in error or "ImportError" in error


def first_line(text: str) -> str:
    """Return the first non-empty line of ``text``."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


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
    runs = [
        runner.review(finished[name], opened.recent_collected(name))
        for name in checks
        if name in finished
    ]
    if progress:
        progress.close()
    recorded = {}
    for run in [*runner.recover(), *runs]:
        recorded[run.id] = opened.record(run)
        runner.discard(run.id)
    unkept = sum(where not in ("stored", "spooled") for where in recorded.values())
    if unkept:
        print(
            f"onwatch: {unkept} run(s) could be written neither to the database nor to "
            f"{config.state_dir / 'spool'} (disk full or read-only?): they are not kept",
            file=sys.stderr,
        )
    elif any(where != "stored" for where in recorded.values()):
        print(
            f"onwatch: database unreachable ({opened.reason()}); runs kept in "
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
    from onwatch.state.service import StateService
    from onwatch.store import open_store

    store = open_store(config.database_url)
    try:
        store.ensure_schema()
        summary = StateService(config, store).summary()
    finally:
        store.close()
    payload = summary.to_json()
    if json_output:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_statuses(summary.checks)
        if summary.spooled:
            print(
                f"{summary.spooled} run(s) wait on disk for the database "
                f"({config.state_dir / 'spool'})"
            )
        for channel in payload["channels"]:
            if channel["failing"]:
                print(
                    f"channel {channel['name']} is failing since {channel['failing_since']}: "
                    f"{channel['last_error']}"
                )
        for watch in payload["watches"]:
            failing = (
                f"; {watch['failures']} failed polls in a row: {watch['last_error']}"
                if watch["failures"]
                else ""
            )
            # Anything that keeps new releases untested is said, not only failed polls.
            state = (
                f"; {watch['state']}: {watch['reason']}"
                if watch["state"] not in ("ok", "polls-failing")
                else ""
            )
            print(
                f"watch {watch['watch']}: {watch['package']} {watch['version'] or '-'} tested, "
                f"last successful poll {watch['last_ok_at'] or 'never'}{failing}{state}"
            )
    return EXIT_OK


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
            from onwatch.analysis import drift  # noqa: F401 - the pytest kind's review uses it

            runs = self.store.runs
            self.recent = {name: runs.collected_counts(name) for name in self.checks}
        except StoreError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported, and runs are spooled, not lost
            self.error = f"{type(exc).__name__}: {exc}"

    def recent_collected(self, name: str) -> list[int]:
        """Return the collected counts of the check's latest runs; none without a database."""
        self.thread.join()
        return self.recent.get(name, [])

    def record(self, run: Run) -> str:
        """Store ``run``, or spool it when the database cannot be reached or opened."""
        from onwatch.store.recorder import Recorder
        from onwatch.store.spool import Spool

        self.thread.join()
        spool = Spool(self.config.state_dir / "spool")
        if self.store is None:
            try:
                spool.put(run)
            except OSError as exc:  # a full or read-only disk: say so, never crash
                self.error = f"{self.error}; the spool cannot be written either: {exc}"
                return "lost"
            return "spooled"
        if self._recorder is None:
            self._recorder = Recorder(self.store, spool)
        return self._recorder.record(run)

    def reason(self) -> str | None:
        """Say why runs were not stored: the database did not open, or refused a write."""
        if self.error is None and self._recorder is not None:
            return self._recorder.state().error
        return self.error

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


def _duration(seconds: float) -> str:
    from onwatch.durations import format_duration

    return format_duration(seconds)
