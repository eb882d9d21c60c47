"""Build the records tests use: runs and test results to save, spool and replay; config tables.

Config records come from the tables a user would write, through the models that define every
key's default: ``make_check(tests=["t"], every="5m")``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onwatch.config import Check, Config, Settings, Silence
from onwatch.config.models import CheckModel, SettingsModel, SilenceModel
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def passed_results(count: int) -> tuple[TestResult, ...]:
    """Return ``count`` passed results of distinct tests."""
    return tuple(
        TestResult(
            nodeid=f"tests/test_api.py::test_{i}",
            outcome=Outcome.PASSED,
            phase="call",
            duration=0.01,
        )
        for i in range(count)
    )


def make_run(
    *,
    check: str = "api",
    status: RunStatus = RunStatus.PASSED,
    started_at: datetime = T0,
    minute: int = 0,
    duration: float = 1.0,
    results: tuple[TestResult, ...] = (),
    trigger: Trigger = Trigger.MANUAL,
    scheduled_for: datetime | None = None,
    trigger_detail: dict[str, Any] | None = None,
) -> Run:
    """Return a finished run that started ``minute`` minutes after ``started_at``.

    It lasts ``duration`` seconds, collected each test of ``results`` once, and carries a fixed
    host, version and config digest.
    """
    started = started_at + timedelta(minutes=minute)
    return Run(
        id=str(uuid.uuid4()),
        check=check,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=duration),
        collected=len({r.nodeid for r in results}),
        results=results,
        trigger=trigger,
        scheduled_for=scheduled_for,
        host="monitor-1",
        version="0.1.0",
        config_digest="digest-1",
        trigger_detail=dict(trigger_detail or {}),
    )


def make_check(**table: Any) -> Check:
    """Return the check a ``[checks.NAME]`` table with these keys describes."""
    return Check(**CheckModel.model_validate(table).model_dump(mode="json"))


def make_config(
    checks: dict[str, dict[str, Any]],
    *,
    silences: Iterable[Silence] = (),
    base_dir: Path = Path("/nonexistent"),
    **settings: Any,
) -> Config:
    """Return the configuration of these ``[checks.NAME]`` tables and ``[onwatch]`` keys.

    Nothing is read from disk: for code that takes a ``Config`` and never looks at files.
    """
    return Config(
        path=base_dir / "onwatch.toml",
        base_dir=base_dir,
        settings=Settings(**SettingsModel.model_validate(settings).model_dump(mode="json")),
        checks={name: make_check(**table) for name, table in checks.items()},
        channels={},
        silences=list(silences),
        browser=None,
        watches={},
    )


def make_silence(**table: Any) -> Silence:
    """Return the window a ``[[silences]]`` entry with these keys describes."""
    return Silence(**SilenceModel.model_validate(table).model_dump())


def every_outcome() -> tuple[TestResult, ...]:
    """Return results of every outcome, with a retry, in attempt-then-recorded order."""
    first = [
        TestResult(
            nodeid=f"tests/test_api.py::test_{outcome.value}[param-1]",
            outcome=outcome,
            phase="setup" if outcome is Outcome.ERROR else "call",
            duration=0.125 + index,
            message=None if outcome is Outcome.PASSED else f"{outcome.value}: boom ünïcödé",
            exception=None if outcome is Outcome.PASSED else "AssertionError",
            traceback=None if outcome is Outcome.PASSED else "Traceback:\n  line 1\n  line 2",
            output="captured stdout\nsecond line" if outcome.is_bad else None,
            properties=(("url", "https://example.test/health"), ("status", 503), ("ok", False)),
            final=outcome is not Outcome.FLAKY,
        )
        for index, outcome in enumerate(Outcome)
    ]
    retry = TestResult(
        nodeid="tests/test_api.py::test_flaky[param-1]",
        outcome=Outcome.PASSED,
        phase="call",
        duration=0.5,
        attempt=2,
    )
    return (*first, retry)
