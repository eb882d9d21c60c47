"""Run one check through its kind, within its timeout, and return the run to record.

What every kind shares lives here: the run's identity and metadata, its secrets (looked up at
each run, masked in all it keeps), runs refused before they start, captured files moved into
the artifact store, and recovery. Each run leaves its files under ``STATE_DIR/inflight`` until
the caller has recorded it (``Runner.discard``). If onwatch dies mid-run, ``recover`` turns
those files into a run marked as interrupted, with every test that finished before: a run in
flight is never lost. How a check is collected, run and parsed is its kind's (``kinds``).
"""

from __future__ import annotations

import glob
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
from onwatch.runner import RUN_ID_ENV
from onwatch.runner.kinds import (
    Collection,
    EventHandler,
    Job,
    Kind,
    Kinds,
    Leftover,
    Verdict,
)
from onwatch.runner.storable import (
    MESSAGE_LIMIT,
    storable_id,
    storable_run,
    storable_text,
)
from onwatch.secrets import Keeper

if TYPE_CHECKING:
    from onwatch.analysis.categorize import Patterns
    from onwatch.masking import Masker

log = logging.getLogger("onwatch.runner")
CHECK_ENV = "ONWATCH_CHECK"
# Where leftovers that cannot be recovered are set aside, inside the in-flight folder.
QUARANTINE = "quarantine"
CHECK_NAME_LIMIT = 200


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
        in_memory = False
        try:
            self.inflight.mkdir(parents=True, exist_ok=True)
            _write_json(self.inflight / f"{run_id}.json", meta)
        except OSError as exc:
            in_memory = True
            # A full or read-only disk must not stop monitoring: the run goes ahead with its
            # events and output in memory (see process.py), only a crash would lose it.
            log.warning(
                "cannot write the in-flight file of run %s (%s); it runs in memory and "
                "cannot be recovered if onwatch crashes before it is recorded",
                run_id,
                exc,
                extra={"fields": {"check": name, "run_id": run_id}},
            )
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
            return storable_run(mask_run(run, self.keeper.masker))
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
            on_event=None if on_event is None else _shown(on_event),
            patterns=self.patterns,
            in_memory=in_memory,
        )
        try:
            decided = kind.run(job)
        except RunnerError as exc:
            decided = _cannot_start(str(exc))
        except Exception as exc:  # noqa: BLE001 - a run that broke onwatch is still recorded
            log.exception("check %s: the run failed inside onwatch", name)
            decided = Verdict(
                RunStatus.ERROR, f"onwatch failed while running the check: {exc!r}", None
            )
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
            run_id = str(uuid.uuid4())
            job = Job(
                run_id=run_id,
                name=name,
                check=check,
                base_dir=self.config.base_dir,
                # A conftest that starts a process at import leaves nothing behind either.
                env={**os.environ, **check.env, **secrets, RUN_ID_ENV: run_id},
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
        """Mask the run's text and make it storable, then mask and store its captured files."""
        return self._store_artifacts(storable_run(mask_run(run, masker)), masker)

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
        """Return the runs that a dead onwatch process left in flight, marked as interrupted.

        A leftover that cannot be turned into a run, whatever the reason, is moved with its
        files to ``inflight/quarantine`` with a ``reason.txt``; the others are recovered still.
        """
        recovered: list[Run] = []
        left = []
        for meta_path in sorted(self.inflight.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
                pid = int(meta.get("pid", 0))
            except FileNotFoundError:
                continue  # recorded and discarded meanwhile
            except Exception as exc:  # noqa: BLE001 - any unreadable leftover is set aside
                self._quarantine(meta_path.stem, "its metadata cannot be read", exc)
                continue
            if pid != os.getpid():  # this process's runs are not lost
                left.append((meta_path, meta))
        if not left:
            return recovered
        # The secrets as they are now: a run of a dead process is masked before it is kept.
        for problem in self.keeper.preload(self.config.all_secrets()):
            log.warning("cannot look up a secret to mask a recovered run: %s", problem)
        for meta_path, meta in left:
            try:
                run = self._recover_one(meta_path, meta)
            except Exception as exc:  # noqa: BLE001 - one bad leftover never blocks the others
                self._quarantine(meta_path.stem, "it cannot be turned into a run", exc)
                continue
            if run is not None:
                recovered.append(run)
        return recovered

    def _recover_one(self, meta_path: Path, meta: dict[str, Any]) -> Run | None:
        """Return the run one leftover stands for, or None while an onwatch process owns it."""
        import psutil

        pid = int(meta.get("pid", 0))
        if psutil.pid_exists(pid) and _is_onwatch(pid):
            return None  # another onwatch process still owns it
        # What the runs table holds: a UUID, and a check's name as the config allows it.
        uuid.UUID(str(meta["id"]))
        if not isinstance(meta["check"], str) or not 0 < len(meta["check"]) <= CHECK_NAME_LIMIT:
            raise ValueError(f"not a check's name: {str(meta['check'])[:100]!r}")
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
            for path in [meta_path, *self.inflight.glob(f"{glob.escape(meta['id'])}.*")]
        )
        run = _build_run(meta, decided, as_utc(finished), self.host)
        return self._finish(run, self.keeper.masker)

    def _quarantine(self, stem: str, why: str, exc: BaseException) -> None:
        """Move the files of one leftover out of the way, with the reason beside them."""
        import traceback

        folder = self.inflight / QUARANTINE / f"{stem}-{int(time.time())}"
        text = storable_text(f"{type(exc).__name__}: {exc}", MESSAGE_LIMIT)
        reason = f"onwatch set the run {stem} aside: {why}: {text}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path in self.inflight.glob(f"{glob.escape(stem)}.*"):
                os.replace(path, folder / path.name)
            details = "".join(traceback.format_exception(exc))
            (folder / "reason.txt").write_text(
                f"{reason}\n\n{details}", encoding="utf-8", errors="backslashreplace"
            )
        except OSError as error:
            log.error("%s; and it cannot be moved to %s: %s", reason, folder, error)
            return
        log.error("%s; its files are in %s", reason, folder)


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


def _shown(on_event: EventHandler) -> EventHandler:
    """Return a handler of live events that sees their text as it will be stored.

    The events come straight from the test process: a terminal showing progress must not get
    raw escape sequences, and a handler that fails on one must not cost the run.
    """

    def handle(event: dict[str, Any]) -> None:
        shown = dict(event)
        if isinstance(shown.get("nodeid"), str):
            shown["nodeid"] = storable_id(shown["nodeid"])
        if isinstance(shown.get("message"), str):
            shown["message"] = storable_text(shown["message"], MESSAGE_LIMIT)
        try:
            on_event(shown)
        except Exception:  # noqa: BLE001 - progress is for display; the run goes on
            log.warning("cannot show the progress of a run", exc_info=True)

    return handle


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
    try:
        with temporary.open("w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # A full disk creates the file and then fails to fill it: leave no empty file behind.
        temporary.unlink(missing_ok=True)
        raise


def _is_onwatch(pid: int) -> bool:
    import psutil

    try:
        return "onwatch" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False
