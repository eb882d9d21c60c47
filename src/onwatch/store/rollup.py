"""Keep ``check_hours`` (runs per check and hour) up to date as runs are stored.

An upsert adds one run to its hour's row inside the transaction that stores the run, so the
rollup can never disagree with the runs table: a run replayed from the spool is either stored
and counted, or already there and counted before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from onwatch.model import Run, RunStatus
from onwatch.store.records import hour_of
from onwatch.store.schema import check_hours

__all__ = ["add_run"]


def add_run(conn: Connection, run: Run) -> None:
    """Count ``run`` in its check's hour."""
    values = {
        "check": run.check,
        "hour": hour_of(run.started_at),
        "runs": 1,
        "passed": 1 if run.status is RunStatus.PASSED else 0,
        "duration_sum": run.duration,
    }
    dialect = conn.dialect.name
    upsert: Any
    if dialect == "postgresql":
        upsert = postgresql.insert(check_hours).values(values)
    elif dialect == "sqlite":
        upsert = sqlite.insert(check_hours).values(values)
    else:  # pragma: no cover - open_store accepts only these two
        raise NotImplementedError(f"no upsert for {dialect}")
    added = upsert.excluded
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[check_hours.c.check, check_hours.c.hour],
            set_={
                "runs": check_hours.c.runs + added.runs,
                "passed": check_hours.c.passed + added.passed,
                "duration_sum": check_hours.c.duration_sum + added.duration_sum,
            },
        )
    )
