"""Run one check: the full selection, then retries of what failed, within one timeout.

Each run leaves its files under ``STATE_DIR/inflight`` until the caller has recorded it
(``Runner.discard``). If onwatch dies mid-run, ``recover`` turns those files into a run marked
as interrupted, with every test that finished before: a run in flight is never lost.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onwatch import __version__
from onwatch.config import BROWSER_FIX, Check, Config
from onwatch.durations import format_duration
from onwatch.errors import ConfigError, RunnerError, SecretError
from onwatch.model import Run, RunStatus, TestResult, Trigger, as_utc, iso, parse_iso, utcnow
from onwatch.runner import (
    ARTIFACTS_DIR_ENV,
    ARTIFACTS_MODE_ENV,
    BROWSER_ENV,
    SCREENSHOTS_ENV,
    SECRETS_ENV,
    TRACING_ENV,
)
from onwatch.runner.parse import RunAttempt, Verdict, parse_events, retry_candidates, verdict
from onwatch.runner.process import EventHandler, run_pytest
from onwatch.secrets import Keeper

if TYPE_CHECKING:
    from onwatch.analysis.categorize import Patterns
    from onwatch.masking import Masker

log = logging.getLogger("onwatch.runner")
RUN_ID_ENV = "ONWATCH_RUN_ID"
CHECK_ENV = "ONWATCH_CHECK"


class Runner:
    """Runs checks of one configuration as pytest subprocesses."""

    def __init__(
        self,
        config: Config,
        stop: threading.Event | None = None,
        spawned: threading.Event | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        self.config = config
        # Shared with the logs and the outbox of a daemon, so that they mask the same values.
        self.keeper = keeper or Keeper(config.base_dir)
        self.stop = stop
        self.spawned = spawned  # set once a pytest process has started
        self.inflight = config.state_dir / "inflight"
        self.host = os.uname().nodename
        self._patterns: Patterns | None = None

    def patterns(self) -> Patterns:
        """Return the failure categories' expressions, compiled on first use, once."""
        if self._patterns is None:
            from onwatch.analysis import categorize

            categories = self.config.settings.categories
            try:
                self._patterns = (
                    categorize.Patterns.compile(categories)
                    if categories
                    else categorize.builtin_patterns()
                )
            except ValueError as exc:
                raise ConfigError([f"{self.config.path}: [onwatch] {exc}"]) from None
        return self._patterns

    def execute(
        self,
        name: str,
        check: Check,
        *,
        trigger: Trigger = Trigger.MANUAL,
        scheduled_for: datetime | None = None,
        on_event: EventHandler | None = None,
        python: str | None = None,
        detail: dict[str, Any] | None = None,
        refuse: str | None = None,
    ) -> Run:
        """Run ``check`` now and return its run; the caller records it, then calls ``discard``.

        ``python`` runs pytest with another interpreter (an upstream release's environment),
        ``detail`` becomes the run's ``trigger_detail``, and ``refuse`` records a run error
        with that reason instead of running anything.
        """
        run_id = str(uuid.uuid4())
        started_at = utcnow()
        deadline = time.monotonic() + check.timeout
        self.inflight.mkdir(parents=True, exist_ok=True)
        meta = {
            "id": run_id,
            "check": name,
            "trigger": trigger.value,
            "scheduled_for": iso(scheduled_for),
            "started_at": started_at.isoformat(),
            "config_digest": check.digest(),
            "timeout": check.timeout,
            "selection": describe_selection(check),
            "pid": os.getpid(),
            "detail": detail or {},
        }
        _write_json(self.inflight / f"{run_id}.json", meta)
        try:
            secrets = self.keeper.resolve(self.config.secrets_of(name))
        except SecretError as exc:
            refuse = "; ".join(exc.problems)
        if refuse is not None:
            run = _build_run(meta, [], utcnow(), self.host, self.patterns, cannot_start=refuse)
            return mask_run(run, self.keeper.masker)
        browser = self.config.browser_executable
        if browser is not None and not os.access(browser, os.X_OK):
            browser = None  # configured, but gone since the config was validated
        if browser is None and check.browser:
            missing = self.config.browser or "no Chromium on PATH"
            reason = f"this check drives a browser, and there is none ({missing}): {BROWSER_FIX}"
            return _build_run(meta, [], utcnow(), self.host, self.patterns, cannot_start=reason)
        env = {
            **os.environ,
            **check.env,
            **secrets,
            # Names only: the plugin masks these variables' values before it writes anything.
            SECRETS_ENV: ",".join(secrets),
            SCREENSHOTS_ENV: "1" if check.screenshots else "0",
            RUN_ID_ENV: run_id,
            CHECK_ENV: name,
            ARTIFACTS_MODE_ENV: check.artifacts,
            TRACING_ENV: "1" if check.tracing else "",
            BROWSER_ENV: browser or "",
        }
        attempts: list[RunAttempt] = []
        args = check.pytest_selection()
        for number in range(1, check.retries + 2):
            try:
                attempt = self._attempt(args, number, run_id, env, deadline, on_event, python)
            except RunnerError as exc:
                return _build_run(
                    meta, [], utcnow(), self.host, self.patterns, cannot_start=str(exc)
                )
            attempts.append(attempt)
            if attempt.timed_out or attempt.interrupted or not attempt.finished:
                break
            args = _retry_args(attempts, check)
            if not args:
                break
        run = _build_run(meta, attempts, utcnow(), self.host, self.patterns)
        return self._finish(run, self.keeper.masker)

    def _finish(self, run: Run, masker: Masker) -> Run:
        """Mask the run's text, then its captured files, and move them into the store."""
        return self._store_artifacts(mask_run(run, masker), masker)

    def _store_artifacts(self, run: Run, masker: Masker) -> Run:
        """Move the files the tests captured into the artifact store, named by content."""
        if not any(a.source for r in run.results for a in r.artifacts):
            return run
        from dataclasses import replace

        from onwatch.artifacts import ArtifactStore, mask_file

        store = ArtifactStore(self.config.artifacts_dir)
        results = []
        for result in run.results:
            kept = []
            for artifact in result.artifacts:
                if not artifact.source:
                    kept.append(artifact)
                    continue
                try:
                    mask_file(Path(artifact.source), artifact.kind, masker)
                    sha, size = store.put(Path(artifact.source))
                except OSError as exc:
                    # A file that cannot be kept (disk full) must not cost the run its results.
                    log.warning("cannot store %s of %s: %s", artifact.name, result.nodeid, exc)
                    continue
                kept.append(replace(artifact, sha256=sha, size=size, source=""))
            results.append(replace(result, artifacts=tuple(kept)))
        return run.with_results(tuple(results))

    def _attempt(
        self,
        args: list[str],
        number: int,
        run_id: str,
        env: dict[str, str],
        deadline: float,
        on_event: EventHandler | None,
        python: str | None = None,
    ) -> RunAttempt:
        return run_pytest(
            args,
            number=number,
            cwd=self.config.base_dir,
            env={**env, ARTIFACTS_DIR_ENV: str(self.inflight / f"{run_id}.{number}.artifacts")},
            events_path=self.inflight / f"{run_id}.{number}.events",
            output_path=self.inflight / f"{run_id}.{number}.out",
            deadline=deadline,
            stop=self.stop,
            on_event=on_event,
            spawned=self.spawned,
            python=python or sys.executable,
        )

    def discard(self, run_id: str) -> None:
        """Delete the files a recorded run left in flight."""
        from onwatch.artifacts import remove_tree

        for path in self.inflight.glob(f"{run_id}.*"):
            if path.is_dir():
                remove_tree(path)  # captured files, already copied into the artifact store
            else:
                path.unlink(missing_ok=True)

    def recover(self) -> list[Run]:
        """Return the runs that a dead onwatch process left in flight, marked as interrupted."""
        recovered: list[Run] = []
        left = []
        for meta_path in sorted(self.inflight.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            if int(meta.get("pid", 0)) != os.getpid():  # this process's runs are not lost
                left.append((meta_path, meta))
        if not left:
            return recovered
        import psutil

        # The secrets as they are now: a run of a dead process is masked before it is kept.
        for problem in self.keeper.preload(self.config.all_secrets()):
            log.warning("cannot look up a secret to mask a recovered run: %s", problem)
        for meta_path, meta in left:
            pid = int(meta.get("pid", 0))
            if psutil.pid_exists(pid) and _is_onwatch(pid):
                continue  # another onwatch process still owns it
            attempts = []
            for events_path in sorted(self.inflight.glob(f"{meta['id']}.*.events")):
                number = int(events_path.name.split(".")[-2])
                events = parse_events(events_path.read_bytes())
                _kill_orphan(events)
                attempts.append(
                    RunAttempt(number=number, events=events, returncode=None, interrupted=True)
                )
            if not attempts:
                attempts = [RunAttempt(number=1, events=[], returncode=None, interrupted=True)]
            finished = datetime.fromtimestamp(meta_path.stat().st_mtime).astimezone()
            for path in self.inflight.glob(f"{meta['id']}.*.events"):
                finished = max(finished, datetime.fromtimestamp(path.stat().st_mtime).astimezone())
            run = _build_run(meta, attempts, as_utc(finished), self.host, self.patterns)
            recovered.append(self._finish(run, self.keeper.masker))
        return recovered


def mask_run(run: Run, masker: Masker) -> Run:
    """Return ``run`` with every secret masked in its error and its results' text."""
    if not masker:
        return run
    from dataclasses import replace

    def masked(result: TestResult) -> TestResult:
        return replace(
            result,
            nodeid=masker.mask(result.nodeid),
            message=masker.mask_optional(result.message),
            traceback=masker.mask_optional(result.traceback),
            output=masker.mask_optional(result.output),
            exception=masker.mask_optional(result.exception),
            properties=masker.mask_value(result.properties),
            artifacts=tuple(replace(a, name=masker.mask(a.name)) for a in result.artifacts),
        )

    results = tuple(masked(result) for result in run.results)
    return replace(run, error=masker.mask_optional(run.error), results=results)


def describe_selection(check: Check) -> str:
    """Describe a check's selection in pytest terms, for error messages."""
    text = " ".join(check.tests)
    if check.markers:
        text += f" -m {check.markers!r}"
    if check.keyword:
        text += f" -k {check.keyword!r}"
    return text


def _retry_args(attempts: list[RunAttempt], check: Check) -> list[str]:
    from onwatch.runner.parse import attempt_results, merge_attempts

    results = []
    for attempt in attempts:
        results += attempt_results(attempt, "")
    failed = retry_candidates(merge_attempts(results))
    rootdir = attempts[0].rootdir
    if not failed or rootdir is None:
        return []
    # Node ids are relative to pytest's rootdir, which need not be the config's folder.
    return ["--rootdir", rootdir, *check.pytest_args, *(f"{rootdir}/{n}" for n in failed)]


def _build_run(
    meta: dict[str, Any],
    attempts: list[RunAttempt],
    finished: datetime,
    host: str,
    patterns: Callable[[], Patterns],
    cannot_start: str | None = None,
) -> Run:
    timeout_text = f"run exceeded its timeout of {format_duration(float(meta['timeout']))}"
    if cannot_start is not None:
        decided = Verdict(RunStatus.ERROR, f"onwatch could not start the run: {cannot_start}", None)
    else:
        decided = verdict(attempts, str(meta.get("selection", "")), timeout_text, patterns)
    return Run(
        id=meta["id"],
        check=meta["check"],
        status=decided.status,
        started_at=as_utc(datetime.fromisoformat(meta["started_at"])),
        finished_at=finished,
        collected=decided.collected,
        results=decided.results,
        error=decided.error,
        trigger=Trigger(meta.get("trigger", Trigger.MANUAL.value)),
        scheduled_for=parse_iso(meta.get("scheduled_for")),
        host=host,
        version=__version__,
        config_digest=str(meta.get("config_digest", "")),
        trigger_detail=dict(meta.get("detail") or {}),
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _is_onwatch(pid: int) -> bool:
    import psutil

    try:
        return "onwatch" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _kill_orphan(events: list[dict[str, Any]]) -> None:
    """Kill a pytest process, and all it started, that outlived the onwatch that started it."""
    import signal

    import psutil

    for event in events:
        if event.get("event") != "start":
            continue
        try:
            process = psutil.Process(int(event.get("pid", 0)))
            if "pytest" not in " ".join(process.cmdline()):
                continue
            tree = [process, *process.children(recursive=True)]
        except (psutil.Error, ValueError):
            continue
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        for member in tree:
            try:
                member.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(tree, timeout=2)
