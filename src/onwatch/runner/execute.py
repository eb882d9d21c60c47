"""Run one check through its kind, within its timeout, and return the run to record.

What every kind shares lives here: the run's identity and metadata, its secrets (looked up at
each run, masked in all it keeps), runs refused before they start, captured files moved into
the artifact store, and recovery. Each run leaves its files under ``STATE_DIR/inflight`` until
the caller has recorded it (``Runner.discard``). If onwatch dies mid-run, ``recover`` turns
those files into a run marked as interrupted, with every test that finished before: a run in
flight is never lost. How a check is collected, run and parsed is its kind's (``kinds``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onwatch import __version__
from onwatch.config import BROWSER_FIX, Check, Config
from onwatch.errors import ConfigError, RunnerError, SecretError
from onwatch.model import Run, RunStatus, TestResult, Trigger, as_utc, iso, parse_iso, utcnow
from onwatch.runner.kinds import (
    Collection,
    EventHandler,
    Job,
    Kind,
    Kinds,
    Leftover,
    Verdict,
)
from onwatch.secrets import Keeper

if TYPE_CHECKING:
    from onwatch.analysis.categorize import Patterns
    from onwatch.masking import Masker

log = logging.getLogger("onwatch.runner")
RUN_ID_ENV = "ONWATCH_RUN_ID"
CHECK_ENV = "ONWATCH_CHECK"


class Runner:
    """Runs the checks of one configuration, each through its kind."""

    def __init__(
        self,
        config: Config,
        stop: threading.Event | None = None,
        spawned: threading.Event | None = None,
        keeper: Keeper | None = None,
        kinds: Kinds | None = None,
    ) -> None:
        self.config = config
        # Shared with the logs and the outbox of a daemon, so that they mask the same values.
        self.keeper = keeper or Keeper(config.base_dir)
        self.stop = stop
        self.spawned = spawned  # set once a run's process has started
        if kinds is None:
            from onwatch.runner.registry import builtin

            kinds = builtin()
        self.kinds = kinds
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

    def kind_of(self, name: str, check: Check) -> Kind:
        """Return the kind that runs ``check``; an unknown kind is a config error."""
        return self.kinds.of(self.config.path, name, check)

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

        ``python`` runs the tests with another interpreter (an upstream release's environment),
        ``detail`` becomes the run's ``trigger_detail``, and ``refuse`` records a run error
        with that reason instead of running anything.
        """
        kind = self.kind_of(name, check)
        run_id = str(uuid.uuid4())
        started_at = utcnow()
        deadline = time.monotonic() + check.timeout
        self.inflight.mkdir(parents=True, exist_ok=True)
        meta = {
            "id": run_id,
            "check": name,
            "kind": check.kind,
            "trigger": trigger.value,
            "scheduled_for": iso(scheduled_for),
            "started_at": started_at.isoformat(),
            "config_digest": check.digest(),
            "timeout": check.timeout,
            "selection": kind.describe(check),
            "pid": os.getpid(),
            "detail": detail or {},
        }
        _write_json(self.inflight / f"{run_id}.json", meta)
        try:
            secrets = self.keeper.resolve(self.config.secrets_of(name))
        except SecretError as exc:
            refuse = "; ".join(exc.problems)
        browser = self.config.browser_executable
        if browser is not None and not os.access(browser, os.X_OK):
            browser = None  # configured, but gone since the config was validated
        if refuse is None and browser is None and check.browser:
            missing = self.config.browser or "no Chromium on PATH"
            refuse = f"this check drives a browser, and there is none ({missing}): {BROWSER_FIX}"
        if refuse is None and python is not None and not kind.python_environments:
            refuse = f"a check of kind {check.kind!r} cannot run in another Python environment"
        if refuse is not None:
            run = _build_run(meta, _cannot_start(refuse), utcnow(), self.host)
            return mask_run(run, self.keeper.masker)
        job = Job(
            run_id=run_id,
            name=name,
            check=check,
            base_dir=self.config.base_dir,
            env={**os.environ, **check.env, **secrets, RUN_ID_ENV: run_id, CHECK_ENV: name},
            secrets=tuple(secrets),
            deadline=deadline,
            inflight=self.inflight,
            browser=browser,
            python=python,
            stop=self.stop,
            spawned=self.spawned,
            on_event=on_event,
            patterns=self.patterns,
        )
        try:
            decided = kind.run(job)
        except RunnerError as exc:
            decided = _cannot_start(str(exc))
        run = _build_run(meta, decided, utcnow(), self.host)
        if self.stop is not None and self.stop.is_set() and _interrupted(decided):
            run = run.as_stopped()  # onwatch was stopped: the product was not at fault
        return self._finish(run, self.keeper.masker)

    def collect(self, name: str, check: Check) -> Collection:
        """Count what ``check`` selects without running it, as ``onwatch validate`` shows."""
        import tempfile

        kind = self.kind_of(name, check)
        # A conftest may read its secrets at import: collect with them, as a run would.
        try:
            secrets = self.keeper.resolve(self.config.secrets_of(name))
        except SecretError as exc:
            return Collection(None, "; ".join(exc.problems))
        with tempfile.TemporaryDirectory(prefix="onwatch-validate-") as folder:
            job = Job(
                run_id=str(uuid.uuid4()),
                name=name,
                check=check,
                base_dir=self.config.base_dir,
                env={**os.environ, **check.env, **secrets},
                secrets=tuple(secrets),
                deadline=time.monotonic() + check.timeout,
                inflight=Path(folder),
            )
            try:
                found = kind.collect(job)
            except RunnerError as exc:
                found = Collection(None, f"onwatch could not start the collection: {exc}")
        if found.error is None:
            return found
        return Collection(found.count, self.keeper.mask(found.error))

    def review(self, run: Run, recent_collected: list[int]) -> Run:
        """Return ``run``, or an error run when its kind finds it tested too little."""
        check = self.config.checks.get(run.check)
        if check is None:
            return run
        return self.kind_of(run.check, check).review(run, check, recent_collected)

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
            leftover = Leftover(
                run_id=meta["id"],
                inflight=self.inflight,
                selection=str(meta.get("selection", "")),
                timeout=float(meta["timeout"]),
                patterns=self.patterns,
            )
            # Runs written before kinds existed were all pytest runs.
            kind = self.kinds.get(str(meta.get("kind", "pytest")))
            if kind is None:
                decided = Verdict(RunStatus.ERROR, "interrupted: onwatch stopped", None)
            else:
                decided = kind.recover(leftover)
            finished = max(
                datetime.fromtimestamp(path.stat().st_mtime).astimezone()
                for path in [meta_path, *self.inflight.glob(f"{meta['id']}.*")]
            )
            run = _build_run(meta, decided, as_utc(finished), self.host)
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


def _interrupted(decided: Verdict) -> bool:
    return decided.status is RunStatus.ERROR and (decided.error or "").startswith("interrupted")


def _cannot_start(reason: str) -> Verdict:
    return Verdict(RunStatus.ERROR, f"onwatch could not start the run: {reason}", None)


def _build_run(meta: dict[str, Any], decided: Verdict, finished: datetime, host: str) -> Run:
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
