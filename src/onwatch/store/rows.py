"""Rows of the runs and results tables to records and back: conversion only, no SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from onwatch.model import Artifact, Outcome, Run, RunStatus, TestResult, Trigger


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, and captured output sometimes does; a run rejected for
    # it would be spooled and retried forever.
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\\x00")


def run_row(run: Run) -> dict[str, Any]:
    """Return the runs-table row of ``run``."""
    return {
        "id": run.id,
        "check": run.check,
        "trigger": run.trigger.value,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration": run.duration,
        "status": run.status.value,
        "error": _text(run.error),
        "collected": run.collected,
        "counts": run.counts(),
        "host": run.host,
        "version": run.version,
        "config_digest": run.config_digest,
        "trigger_detail": run.trigger_detail,
    }


def result_row(run: Run, result: TestResult) -> dict[str, Any]:
    """Return the results-table row of one result of ``run``."""
    return {
        "run_id": run.id,
        "check": run.check,
        "nodeid": _text(result.nodeid),
        "started_at": run.started_at,
        "attempt": result.attempt,
        "final": result.final,
        "outcome": result.outcome.value,
        "phase": result.phase,
        "duration": result.duration,
        "exception": _text(result.exception),
        "message": _text(result.message),
        "traceback": _text(result.traceback),
        "output": _text(result.output),
        "properties": [[name, value] for name, value in result.properties],
        "category": result.category,
        "artifacts": [
            {"kind": a.kind, "name": a.name, "size": a.size, "sha256": a.sha256}
            for a in result.artifacts
        ]
        or None,
    }


def run_from_row(row: Row[Any], found: tuple[TestResult, ...]) -> Run:
    """Return the run of a runs-table row, with the results ``found`` for it."""
    return Run(
        id=row.id,
        check=row.check,
        status=RunStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
        collected=row.collected,
        results=found,
        error=row.error,
        trigger=Trigger(row.trigger),
        scheduled_for=row.scheduled_for,
        host=row.host,
        version=row.version,
        config_digest=row.config_digest,
        trigger_detail=dict(row.trigger_detail or {}),
    )


def result_from_row(row: Any) -> TestResult:
    """Return the result of a results-table row; columns a brief query left out stay empty."""
    values = row._mapping
    return TestResult(
        nodeid=row.nodeid,
        outcome=Outcome(row.outcome),
        phase=row.phase,
        duration=row.duration,
        attempt=row.attempt,
        exception=row.exception,
        message=row.message,
        traceback=values.get("traceback"),
        output=values.get("output"),
        properties=tuple((str(name), value) for name, value in row.properties or ()),
        final=bool(values.get("final", True)),
        category=row.category,
        artifacts=tuple(Artifact.from_json(a) for a in values.get("artifacts") or ()),
    )
