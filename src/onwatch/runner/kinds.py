"""What a check kind is: how a check's tests are collected, run and turned into results.

A kind knows one way of testing (pytest today). ``execute.Runner`` does everything that is the
same for every kind: the run's identity, its files in flight, secrets, masking, captured files,
recovery after a crash. It hands a kind a ``Job`` and gets a ``Verdict`` back::

    Runner.execute ──Job──> Kind.run ──Verdict──> Run (recorded by the caller)
    Runner.collect ──Job──> Kind.collect ──Collection──> onwatch validate
    Runner.recover ──Leftover──> Kind.recover ──Verdict──> Run marked interrupted
    Runner.review  ──Run──> Kind.review ──Run──> a run that tested too little becomes an error

Where a run executes (a thread of this process today) is the caller's business, not the
kind's. The kinds onwatch knows are listed in ``runner.registry``, one line each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from onwatch.durations import format_duration
from onwatch.errors import ConfigError
from onwatch.model import RunStatus, TestResult

if TYPE_CHECKING:
    from onwatch.analysis.categorize import Patterns
    from onwatch.config.records import Check
    from onwatch.model import Run

# Live progress: one event of the run contract (``collected``, ``begin``, ``result``...).
EventHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """One run (or one collection) of a check, as the runner hands it to the check's kind."""

    run_id: str
    name: str  # the check's name
    check: Check
    base_dir: Path  # the config file's folder: where the tests run
    # The whole environment the tests get: onwatch's own, the check's env, its secrets.
    env: Mapping[str, str]
    secrets: tuple[str, ...]  # the names in ``env`` that hold secrets, masked in what is kept
    deadline: float  # time.monotonic() at which the run is stopped as timed out
    # The folder for this run's files: each name starts with ``{run_id}.``; the runner deletes
    # them once the run is recorded, and hands them to ``Kind.recover`` after a crash.
    inflight: Path
    browser: str | None = None  # the Chromium found, for tests that drive a browser
    python: str | None = None  # another interpreter (a watched release's environment)
    stop: threading.Event | None = None  # set: stop at once, keep what finished
    spawned: threading.Event | None = None  # the kind sets it once its process has started
    on_event: EventHandler | None = None
    patterns: Callable[[], Patterns] | None = None  # failure categories; None: the built-in
    # The in-flight folder cannot be written (full or read-only disk): keep what the run
    # produces in memory, so that monitoring goes on; nothing is left to recover after a crash.
    in_memory: bool = False

    @property
    def timeout_text(self) -> str:
        """Return what a timed-out run or test says about its timeout."""
        return timeout_text(self.check.timeout)


@dataclass(frozen=True)
class Leftover:
    """A run that a dead onwatch process left in flight, to be turned into a verdict."""

    run_id: str
    inflight: Path  # the files it left are ``{run_id}.*`` in this folder
    selection: str  # ``Kind.describe`` of its check when it started
    timeout: float
    patterns: Callable[[], Patterns] | None = None


@dataclass
class Verdict:
    """The outcome of a run: its status, why it is an error, what it collected and tested."""

    status: RunStatus
    error: str | None
    collected: int | None
    results: tuple[TestResult, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Collection:
    """What a check selects, for ``onwatch validate``: a count, or why it cannot say."""

    count: int | None
    error: str | None = None


class Kind(Protocol):
    """A way of testing: how a check of this kind is collected, run, recovered and reviewed.

    ``collect`` and ``run`` raise ``RunnerError`` when the work cannot start at all; anything
    that happens once it runs (failures, a crash, the timeout, ``stop``) is in the verdict.
    """

    # Whether a run honours ``Job.python``, which [watch.NAME] needs to test a release.
    python_environments: bool

    def describe(self, check: Check) -> str:
        """Describe what ``check`` selects, in the kind's own terms, for messages."""
        ...

    def collect(self, job: Job) -> Collection:
        """Count what the check selects without running it, before ``job.deadline``."""
        ...

    def run(self, job: Job) -> Verdict:
        """Run the check once (with its retries) until done, ``job.deadline`` or ``job.stop``."""
        ...

    def recover(self, leftover: Leftover) -> Verdict:
        """Decide the verdict of a run whose onwatch died, from the files it left."""
        ...

    def review(self, run: Run, check: Check, recent_collected: list[int]) -> Run:
        """Return ``run``, or an error run when it tested much less than its recent runs."""
        ...


class Kinds:
    """The kinds a runner knows, by name (``runner.registry.builtin`` for onwatch's own)."""

    def __init__(self, known: Mapping[str, Kind]) -> None:
        self.known = dict(known)

    def get(self, name: str) -> Kind | None:
        """Return the kind called ``name``, or None."""
        return self.known.get(name)

    def of(self, config_path: Path, check_name: str, check: Check) -> Kind:
        """Return the kind of ``check``; a kind onwatch does not know is a config error."""
        found = self.known.get(check.kind)
        if found is None:
            known = ", ".join(map(repr, sorted(self.known))) or "none"
            raise ConfigError(
                [
                    f"{config_path}: checks.{check_name}.kind: {check.kind!r} is not a check kind "
                    f"onwatch knows (known: {known})"
                ]
            )
        return found


def timeout_text(seconds: float) -> str:
    """Return what a timed-out run says about its timeout of ``seconds``."""
    return f"run exceeded its timeout of {format_duration(seconds)}"
