"""What a memory store holds, behind one lock, and how it keeps a value as SQL would give it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from onwatch.errors import StoreError
from onwatch.model import Artifact, Incident, Run, Trigger, as_utc
from onwatch.store.records import ChannelState, Delivery, DeliveryAttempt, PollRecord

__all__ = ["URL", "Data", "as_json", "kept", "monitoring", "newest_first", "selected", "utc"]

URL = "memory://"


@dataclass
class Data:
    """Everything one memory store holds; every noun reads and writes it inside ``use``."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    down: bool = False
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)  # digest, schedule
    registered: dict[str, datetime] = field(default_factory=dict)  # a check's row: updated at
    runs: dict[str, Run] = field(default_factory=dict)  # in the order saved
    skipped: list[tuple[str, datetime, str]] = field(default_factory=list)  # in the order saved
    incidents: dict[int, Incident] = field(default_factory=dict)
    silences: list[tuple[str | None, datetime, datetime, str]] = field(default_factory=list)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    channels: dict[str, ChannelState] = field(default_factory=dict)
    versions: dict[tuple[str, str], str] = field(default_factory=dict)
    releases: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    polls: list[PollRecord] = field(default_factory=list)  # in the order recorded
    watch_states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @contextmanager
    def use(self, action: str) -> Iterator[None]:
        """Hold the lock for one call; raise StoreError("action: ...") while the store is down."""
        with self.lock:
            if self.down:
                raise StoreError(f"{action}: database {URL} unreachable: set down by the test")
            yield


def utc(value: datetime | None) -> datetime | None:
    """Return ``value`` in UTC, as a stored timestamp comes back; None stays None."""
    return None if value is None else as_utc(value)


def as_json(value: Any) -> Any:
    """Return ``value`` as it comes back from a JSON column."""
    return json.loads(json.dumps(value, default=str))


def kept(run: Run) -> Run:
    """Return ``run`` as the SQL store gives it back: UTC times, JSON values, stored artifacts."""
    return replace(
        run,
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        scheduled_for=utc(run.scheduled_for),
        trigger_detail=dict(as_json(run.trigger_detail)),
        results=tuple(
            replace(
                result,
                properties=tuple((str(n), v) for n, v in as_json(list(result.properties))),
                artifacts=tuple(
                    Artifact(a.kind, a.name, a.size, a.sha256) for a in result.artifacts
                ),
            )
            for result in run.results
        ),
    )


def monitoring(run: Run) -> bool:
    """Tell whether a run says how the monitored system does (not an upstream release)."""
    return run.trigger is not Trigger.UPSTREAM


def newest_first(runs: Iterable[Run]) -> list[Run]:
    """Return runs in the order the SQL store lists them: started_at, then id, descending."""
    return sorted(runs, key=lambda run: (run.started_at, run.id), reverse=True)


def selected(
    runs: Iterable[Run],
    check: str | None,
    since: datetime | None,
    until: datetime | None,
    status: str | None,
) -> list[Run]:
    """Return the runs that match, newest first; since <= started_at < until."""
    return newest_first(
        run
        for run in runs
        if (check is None or run.check == check)
        and (since is None or run.started_at >= since)
        and (until is None or run.started_at < until)
        and (status is None or run.status.value == str(status))
    )
