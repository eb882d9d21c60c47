"""The check-kind seam: the registry, and a kind defined here run by the runner and scheduler.

``Echo`` is a kind without pytest: a run "tests" each word of the check's ``tests`` list. It
goes through the same ``Runner`` and ``Scheduler`` as pytest checks, with a real SQLite store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import get_args

import pytest

from onwatch.config import Check, Config, load_config
from onwatch.config.schema import CheckModel
from onwatch.daemon.scheduler import Scheduler
from onwatch.errors import ConfigError, RunnerError
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.runner.execute import Runner
from onwatch.runner.kinds import Collection, Job, Kinds, Leftover, Verdict
from onwatch.runner.registry import KINDS, builtin
from onwatch.store import open_store
from onwatch.store.recorder import Recorder
from onwatch.store.spool import Spool
from records import make_check
from suites import make_project

SECRET = "echo-secret-value"


class Echo:
    """A check kind of this test: each word of ``tests`` is a test; ``wait`` waits to be killed."""

    python_environments = False

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.leftovers: list[Leftover] = []
        self.reviewed: list[tuple[str, list[int]]] = []
        self.waiting = threading.Event()

    def describe(self, check: Check) -> str:
        return "echo " + " ".join(check.tests)

    def collect(self, job: Job) -> Collection:
        if "broken" in job.check.tests:
            return Collection(None, f"cannot read the words, token {job.env['TOKEN']}")
        return Collection(len(job.check.tests))

    def run(self, job: Job) -> Verdict:
        self.jobs.append(job)
        (job.inflight / f"{job.run_id}.words").write_text(" ".join(job.check.tests))
        if job.spawned is not None:
            job.spawned.set()
        if "unstartable" in job.check.tests:
            raise RunnerError("echo is not installed")
        if "wait" in job.check.tests:
            assert job.stop is not None
            self.waiting.set()
            if not job.stop.wait(job.deadline - time.monotonic()):
                return Verdict(RunStatus.TIMEOUT, job.timeout_text, None)
            return Verdict(RunStatus.ERROR, "interrupted: onwatch stopped", None)
        results = tuple(
            TestResult(
                nodeid=f"echo::{word}",
                outcome=Outcome.PASSED,
                phase="call",
                duration=0.0,
                message=f"{word} with {job.env['TOKEN']}",
            )
            for word in job.check.tests
        )
        return Verdict(RunStatus.PASSED, None, len(results), results)

    def recover(self, leftover: Leftover) -> Verdict:
        self.leftovers.append(leftover)
        words = (leftover.inflight / f"{leftover.run_id}.words").read_text()
        return Verdict(RunStatus.ERROR, f"interrupted while echoing {words}", None)

    def review(self, run: Run, check: Check, recent_collected: list[int]) -> Run:
        self.reviewed.append((run.id, recent_collected))
        return run


def echo_config(
    root: Path, monkeypatch: pytest.MonkeyPatch, words: list[str], drain_timeout: float = 30.0
) -> Config:
    """Load a config whose check ``c`` is of kind ``echo`` (a record the schema would refuse)."""
    monkeypatch.setenv("ECHO_TOKEN", SECRET)
    path = make_project(
        root,
        {"c": {"tests": ["."], "every": "1h", "secrets": {"TOKEN": "env:ECHO_TOKEN"}}},
    )
    config = load_config(path)
    # Words, not paths: the schema checks that pytest paths exist.
    check = dataclasses.replace(config.checks["c"], kind="echo", tests=words)
    # Due at once, and (for a test of stopping) killed at once: values the schema refuses.
    settings = dataclasses.replace(config.settings, max_jitter=0.0, drain_timeout=drain_timeout)
    return dataclasses.replace(config, checks={"c": check}, settings=settings)


def echo_runner(config: Config, echo: Echo, stop: threading.Event | None = None) -> Runner:
    """Return a runner that knows onwatch's own kinds and ``echo``."""
    return Runner(config, stop=stop, kinds=Kinds({**builtin().known, "echo": echo}))


def test_an_unknown_kind_is_a_config_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = make_project(tmp_path, {"c": {"tests": ["tests"], "every": "1m", "kind": "robot"}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = path.read_text().splitlines().index('kind = "robot"') + 1
    assert f"{path}:{line}: checks.c.kind: input should be 'pytest' (got 'robot')" in str(
        caught.value
    )


def test_a_check_of_a_kind_the_runner_does_not_know_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path, {"c": {"tests": ["."], "every": "1m"}}))
    check = dataclasses.replace(config.checks["c"], kind="robot")
    with pytest.raises(ConfigError) as caught:
        Runner(config).execute("c", check)
    assert str(caught.value) == (
        f"{config.path}: checks.c.kind: 'robot' is not a check kind onwatch knows (known: 'pytest')"
    )


def test_the_config_accepts_exactly_the_registered_kinds() -> None:
    assert get_args(CheckModel.model_fields["kind"].annotation) == tuple(KINDS)
    assert (
        CheckModel.model_fields["kind"].default
        == "pytest"
        == make_check(tests=["t"], every="1m").kind
    )
    assert set(builtin().known) == set(KINDS)


def test_the_kind_of_a_pytest_check_leaves_its_digest_as_it_was() -> None:
    check = make_check(tests=["tests"], every="60s")
    # The digest stored with every run of a check written before kinds existed.
    assert check.digest() == "449713011568e509"
    assert dataclasses.replace(check, kind="echo").digest() != check.digest()


def test_a_registered_kind_runs_through_the_scheduler_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["ping", "pong"])
    echo = Echo()
    stopping, kill = threading.Event(), threading.Event()
    runner = echo_runner(config, echo, stop=kill)
    store = open_store(config.database_url)
    store.ensure_schema()
    recorded: list[tuple[Run, str]] = []

    def on_recorded(run: Run, where: str) -> None:
        recorded.append((run, where))
        stopping.set()

    scheduler = Scheduler(
        config,
        runner,
        Recorder(store, Spool(config.state_dir / "spool")),
        store.runs,
        stopping=stopping,
        kill=kill,
        on_recorded=on_recorded,
        review=lambda run: runner.review(run, [7]),
    )
    guard = threading.Timer(30, stopping.set)  # a broken seam must fail, not hang
    guard.start()
    try:
        scheduler.run()
    finally:
        guard.cancel()
    [(run, where)] = recorded
    assert where == "stored"
    assert (run.check, run.status, run.trigger, run.collected) == (
        "c",
        RunStatus.PASSED,
        Trigger.SCHEDULE,
        2,
    )
    assert [r.message for r in run.final_results()] == [
        "ping with [secret:TOKEN]",
        "pong with [secret:TOKEN]",
    ]
    assert echo.reviewed == [(run.id, [7])]
    [job] = echo.jobs
    assert (job.name, job.base_dir, job.secrets, job.env["TOKEN"]) == (
        "c",
        config.base_dir,
        ("TOKEN",),
        SECRET,
    )
    assert job.stop is kill and job.patterns is not None and job.python is None
    stored = store.runs.get_run(run.id)
    store.close()
    assert stored is not None
    assert [r.nodeid for r in stored.final_results()] == ["echo::ping", "echo::pong"]
    assert list((config.state_dir / "inflight").iterdir()) == []  # discarded once recorded


def test_a_run_of_a_registered_kind_is_killed_when_onwatch_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["wait"], drain_timeout=0.0)
    echo = Echo()
    stopping, kill = threading.Event(), threading.Event()
    runner = echo_runner(config, echo, stop=kill)
    store = open_store(config.database_url)
    store.ensure_schema()
    recorded: list[Run] = []
    scheduler = Scheduler(
        config,
        runner,
        Recorder(store, Spool(config.state_dir / "spool")),
        store.runs,
        stopping=stopping,
        kill=kill,
        on_recorded=lambda run, where: recorded.append(run),
    )
    loop = threading.Thread(target=scheduler.run)
    loop.start()
    assert echo.waiting.wait(30)
    stopping.set()
    loop.join(30)
    store.close()
    assert not loop.is_alive()
    [run] = recorded
    assert (run.status, run.error) == (RunStatus.ERROR, "interrupted: onwatch stopped")
    assert kill.is_set()


def test_a_kind_that_cannot_start_gives_a_run_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["unstartable"])
    run = echo_runner(config, Echo()).execute("c", config.checks["c"])
    assert (run.status, run.error) == (
        RunStatus.ERROR,
        "onwatch could not start the run: echo is not installed",
    )


def test_a_kind_without_python_environments_refuses_an_upstream_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["ping"])
    echo = Echo()
    run = echo_runner(config, echo).execute(
        "c", config.checks["c"], trigger=Trigger.UPSTREAM, python=sys.executable
    )
    assert echo.jobs == []
    assert run.status is RunStatus.ERROR
    assert run.error == (
        "onwatch could not start the run: a check of kind 'echo' cannot run in another "
        "Python environment"
    )


def test_collect_asks_the_kind_and_masks_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["a", "b", "c"])
    runner = echo_runner(config, Echo())
    assert runner.collect("c", config.checks["c"]) == Collection(3)
    broken = dataclasses.replace(config.checks["c"], tests=["broken"])
    assert runner.collect("c", broken) == Collection(
        None, "cannot read the words, token [secret:TOKEN]"
    )


def test_recovery_hands_a_dead_runs_files_to_the_kind_it_ran_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = echo_config(tmp_path, monkeypatch, ["ping", "pong"])
    echo = Echo()
    runner = echo_runner(config, echo)
    first = runner.execute("c", config.checks["c"])
    # As if the onwatch that ran it died before recording it: a pid no process has.
    meta_path = config.state_dir / "inflight" / f"{first.id}.json"
    meta = json.loads(meta_path.read_text())
    assert (meta["kind"], meta["selection"]) == ("echo", "echo ping pong")
    meta_path.write_text(json.dumps({**meta, "pid": _unused_pid()}))
    [run] = runner.recover()
    [leftover] = echo.leftovers
    assert (leftover.run_id, leftover.selection, leftover.timeout) == (
        first.id,
        "echo ping pong",
        config.checks["c"].timeout,
    )
    assert (run.id, run.status, run.error) == (
        first.id,
        RunStatus.ERROR,
        "interrupted while echoing ping pong",
    )


def _unused_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
