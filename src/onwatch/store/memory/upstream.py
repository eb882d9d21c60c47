"""MemoryUpstream: the upstream watch's releases and polls in a memory store."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from onwatch.model import Run, RunStatus, Trigger, as_utc
from onwatch.store.memory.data import Data, newest_first
from onwatch.store.memory.runs import MemoryRuns
from onwatch.store.records import BASELINE_SEARCH, PollRecord, PollSummary

__all__ = ["MemoryUpstream"]


class MemoryUpstream:
    """The ``Upstream`` of a memory store; baselines are read through its runs."""

    def __init__(self, data: Data, all_runs: MemoryRuns) -> None:
        self._d = data
        self._runs = all_runs

    def last_version(self, watch: str, package: str) -> str | None:
        """Return the last release of ``package`` that ``watch`` handled, if any."""
        with self._d.use("cannot read upstream versions"):
            return self._d.versions.get((watch, package))

    def set_last_version(self, watch: str, package: str, version: str, at: datetime) -> None:
        """Remember ``version`` as the last release of ``package`` handled by ``watch``."""
        with self._d.use("cannot save an upstream version"):
            self._d.versions[watch, package] = version

    def first_seen(
        self, watch: str, package: str, versions: Iterable[str], at: datetime
    ) -> dict[str, datetime]:
        """Return when each version was first seen, recording ``at`` for the new ones."""
        with self._d.use("cannot save upstream releases"):
            return {
                version: self._d.releases.setdefault((watch, package, version), as_utc(at))
                for version in dict.fromkeys(versions)
            }

    def record_poll(self, poll: PollRecord) -> None:
        """Store one poll's outcome."""
        with self._d.use("cannot record a poll"):
            at = as_utc(poll.polled_at)
            self._d.polls.append(replace(poll, polled_at=at, new_versions=[*poll.new_versions]))

    def _polls(self, watch: str, package: str) -> list[PollRecord]:
        """Return the package's polls newest first (the later recorded first on a tie)."""
        with self._d.use("cannot read polls"):
            mine = [
                (p.polled_at, order, p)
                for order, p in enumerate(self._d.polls)
                if p.watch == watch and p.package == package
            ]
        mine.sort(key=lambda entry: entry[:2], reverse=True)
        return [p for _, _, p in mine]

    def summaries(self, watch: str, packages: list[str], limit: int = 1000) -> list[PollSummary]:
        """Return each package's last poll, last successful poll and failures in a row."""
        found = []
        for package in packages:
            polls = self._polls(watch, package)
            last_ok = next((p.polled_at for p in polls if p.ok), None)
            recent = [p for p in polls if last_ok is None or p.polled_at >= last_ok][:limit]
            failures = next((i for i, p in enumerate(recent) if p.ok), len(recent))
            state = self.watch_state(watch, package)
            last = recent[0] if recent and not recent[0].ok else None
            found.append(
                PollSummary(
                    watch=watch,
                    package=package,
                    version=self.last_version(watch, package),
                    last_poll_at=recent[0].polled_at if recent else None,
                    last_ok_at=last_ok,
                    failures=failures,
                    last_error=None if last is None else last.error,
                    last_kind=None if last is None else last.kind,
                    state="polls-failing" if failures else state.get("state", "ok"),
                    reason=(None if last is None else last.error)
                    if failures
                    else state.get("reason"),
                    baseline=state.get("baseline"),
                )
            )
        return found

    def streak_before_last_ok(
        self, watch: str, package: str, limit: int = 1000
    ) -> tuple[int, datetime | None]:
        """Return how many polls failed in a row just before the latest one, which passed."""
        polls = self._polls(watch, package)[:limit]
        if not polls or not polls[0].ok:
            return 0, None
        streak = next((i for i, p in enumerate(polls[1:]) if p.ok), len(polls) - 1)
        return streak, polls[0].polled_at

    def baseline_run(self, check: str, package: str, version: str) -> Run | None:
        """Return the latest upstream run of ``check`` on ``package`` ``version``, results in."""
        with self._d.use("cannot read upstream runs"):
            mine = [
                r
                for r in self._d.runs.values()
                if r.check == check
                and r.trigger is Trigger.UPSTREAM
                # Only a run that executed the suite can be compared with.
                and r.status in (RunStatus.PASSED, RunStatus.FAILED)
                and (r.collected or 0) > 0
            ]
        for run in newest_first(mine)[:BASELINE_SEARCH]:
            tested = run.trigger_detail.get("upstream") or {}
            if tested.get("package") == package and tested.get("version") == version:
                return self._runs.get_run(run.id)
        return None

    def watch_state(self, watch: str, package: str) -> dict[str, Any]:
        """Return the package's watch state as last saved (empty when never saved)."""
        with self._d.use("cannot read upstream states"):
            return dict(self._d.watch_states.get((watch, package)) or {})

    def set_watch_state(self, watch: str, package: str, data: dict[str, Any], at: datetime) -> None:
        """Save the package's watch state (a JSON object)."""
        with self._d.use("cannot save an upstream state"):
            self._d.watch_states[watch, package] = json.loads(json.dumps(data))
