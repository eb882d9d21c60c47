"""The pytest kind: a check is a selection of a pytest suite, run as ``python -m pytest``.

Its modules: this one (collect, run with retries, recover, review), ``process`` (one pytest
process, killed as a tree), ``parse`` (events and exit codes to a verdict, no I/O), and, inside
the pytest process, ``plugin`` (the ``pytest11`` entry point that writes the events),
``capture`` and ``launch`` (browser tests). The environment variables that connect them are in
``onwatch.runner``.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from onwatch.errors import RunnerError
from onwatch.runner import (
    ARTIFACTS_DIR_ENV,
    ARTIFACTS_MODE_ENV,
    BROWSER_ENV,
    SCREENSHOTS_ENV,
    SECRETS_ENV,
    TRACING_ENV,
)
from onwatch.runner.kinds import Collection, Job, Leftover, Verdict, timeout_text
from onwatch.runner.parse import (
    RunAttempt,
    attempt_results,
    merge_attempts,
    parse_events,
    ran_to_the_end,
    retry_candidates,
    verdict,
)
from onwatch.runner.process import run_pytest
from onwatch.runner.sweep import sweep

if TYPE_CHECKING:
    from onwatch.config.records import Check
    from onwatch.model import Run


class Pytest:
    """Collects and runs a check's selection of a pytest suite in pytest subprocesses."""

    python_environments = True

    def describe(self, check: Check) -> str:
        """Describe a check's selection in pytest terms, for error messages."""
        return describe_selection(check)

    def collect(self, job: Job) -> Collection:
        """Run ``pytest --collect-only`` on the selection; return its count or its error."""
        attempt = run_pytest(
            [*job.check.pytest_selection(), "--collect-only", "-q"],
            number=1,
            cwd=job.base_dir,
            env=dict(job.env),
            events_path=job.inflight / f"{job.run_id}.events",
            output_path=job.inflight / f"{job.run_id}.out",
            deadline=job.deadline,
            python=job.python or sys.executable,
        )
        # What collecting left running is killed; it does not make the selection invalid.
        attempt = replace(attempt, killed=())
        decided = verdict([attempt], self.describe(job.check), "collection timed out")
        return Collection(decided.collected, decided.error)

    def run(self, job: Job) -> Verdict:
        """Run the selection, then what failed again (``retries``), within one deadline."""
        check = job.check
        env = {
            **job.env,
            # Names only: the plugin masks these variables' values before it writes anything.
            SECRETS_ENV: ",".join(job.secrets),
            SCREENSHOTS_ENV: "1" if check.screenshots else "0",
            ARTIFACTS_MODE_ENV: check.artifacts,
            TRACING_ENV: "1" if check.tracing else "",
            BROWSER_ENV: job.browser or "",
        }
        attempts: list[RunAttempt] = []
        args = check.pytest_selection()
        unretried = None
        for number in range(1, check.retries + 2):
            try:
                attempts.append(self._attempt(job, args, number, env))
            except RunnerError as exc:
                if not attempts:
                    raise
                # A retry that cannot start (node ids too long for a command line) must not
                # cost the run the results of the attempts before it.
                unretried = f"onwatch could not retry the failed tests: {exc}"
                break
            last = attempts[-1]
            if last.timed_out or last.interrupted or not last.finished:
                break
            args = _retry_args(attempts, check)
            if not args:
                break
        decided = verdict(attempts, self.describe(check), job.timeout_text, job.patterns)
        if unretried is None:
            return decided
        error = f"{decided.error}\n\n{unretried}" if decided.error else unretried
        return replace(decided, error=error)

    def _attempt(self, job: Job, args: list[str], number: int, env: dict[str, str]) -> RunAttempt:
        prefix = f"{job.run_id}.{number}"
        attempt = run_pytest(
            args,
            number=number,
            cwd=job.base_dir,
            env={**env, ARTIFACTS_DIR_ENV: str(job.inflight / f"{prefix}.artifacts")},
            events_path=job.inflight / f"{prefix}.events",
            output_path=job.inflight / f"{prefix}.out",
            deadline=job.deadline,
            stop=job.stop,
            on_event=job.on_event,
            spawned=job.spawned,
            python=job.python or sys.executable,
            in_memory=job.in_memory,
        )
        if attempt.interrupted:
            # Stopped while pytest only ended its session: every test had its result.
            ended = ran_to_the_end(number, attempt.events)
            if ended is not None:
                ended.output = attempt.output
                return ended
        return attempt

    def recover(self, leftover: Leftover) -> Verdict:
        """Kill the pytest processes a dead onwatch left; judge what they wrote.

        An attempt whose tests all reported before onwatch died keeps its real outcome; one
        cut short is interrupted.
        """
        attempts = []
        for events_path in sorted(leftover.inflight.glob(f"{leftover.run_id}.*.events")):
            number = int(events_path.name.split(".")[-2])
            events = parse_events(events_path.read_bytes())
            _kill_orphan(events)
            attempts.append(
                ran_to_the_end(number, events)
                or RunAttempt(number=number, events=events, returncode=None, interrupted=True)
            )
        if not attempts:
            attempts = [RunAttempt(number=1, events=[], returncode=None, interrupted=True)]
        # What the dead onwatch never got to sweep: its start time is unknown, so read them all.
        killed = tuple(sweep(leftover.run_id))
        attempts[-1] = replace(attempts[-1], killed=killed)
        text = timeout_text(leftover.timeout)
        return verdict(attempts, leftover.selection, text, leftover.patterns)

    def review(self, run: Run, check: Check, recent_collected: list[int]) -> Run:
        """Make ``run`` an error when its selection drifted (``analysis.drift``)."""
        from onwatch.analysis.drift import with_drift

        return with_drift(run, recent_collected, check.min_collected_ratio)


def describe_selection(check: Check) -> str:
    """Describe a check's selection in pytest terms, for error messages."""
    text = " ".join(check.tests)
    if check.markers:
        text += f" -m {check.markers!r}"
    if check.keyword:
        text += f" -k {check.keyword!r}"
    return text


def _retry_args(attempts: list[RunAttempt], check: Check) -> list[str]:
    results = []
    for attempt in attempts:
        results += attempt_results(attempt, "")
    failed = retry_candidates(merge_attempts(results))
    rootdir = attempts[0].rootdir
    if not failed or rootdir is None:
        return []
    # Node ids are relative to pytest's rootdir, which need not be the config's folder.
    return ["--rootdir", rootdir, *check.pytest_args, *(f"{rootdir}/{n}" for n in failed)]


def _kill_orphan(events: list[dict[str, Any]]) -> None:
    """Kill a pytest process, and all it started, that outlived the onwatch that started it."""
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
