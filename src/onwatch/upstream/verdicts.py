"""What a watch remembers about each package between polls, and the alerts it sends about it.

A package's state is saved as one JSON object (``Upstream.watch_state``):

- ``baseline``: the release new ones are compared with: the last one whose runs executed the
  suite. An errored or empty run never becomes it, nor does a release that cannot be installed.
- ``failing``: releases that cannot be installed, each with its attempts, its error and when to
  try again (the daemon backs off: 1, 2, 4, then 6 polls; ``watch check`` tries at every call).
- ``baseline_failing``: the baseline could not be built, or its runs errored or failed, and
  whether that was told (once per streak).
- ``poll_told``: the kind of poll failure last alerted (unreachable, auth...), None when the
  polls work: a different kind mid-streak is told again.
- ``verdict``: ``ok`` or ``breaks``, the last judged release's.

Pure: the builders here take the facts and return notifications; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.model import iso, parse_iso

if TYPE_CHECKING:
    from onwatch.upstream.report import Breakage

# The daemon retries a release that cannot be installed after 1, 2, 4, then every 6 polls.
MAX_BACKOFF_POLLS = 6


@dataclass
class Failing:
    """A release that cannot be installed."""

    error: str
    since: datetime
    attempts: int = 1
    next_at: datetime | None = None


@dataclass
class PackageState:
    """A watched package's state between polls; see the module docstring."""

    baseline: str | None = None
    failing: dict[str, Failing] = field(default_factory=dict)
    baseline_failing: str | None = None  # why the baseline cannot be trusted
    baseline_told: bool = False
    poll_told: str | None = None
    verdict: str = "ok"

    @property
    def state(self) -> str:
        """Return what status shows: cannot-install, baseline-failing, breaks or ok."""
        if self.failing:
            return "cannot-install"
        if self.baseline_failing is not None:
            return "baseline-failing"
        return self.verdict

    @property
    def reason(self) -> str | None:
        """Return why the state is not ok, in one line."""
        if self.failing:
            version, failing = min(self.failing.items())
            return f"{version}: {failing.error}"
        return self.baseline_failing

    def retry_due(self, version: str, now: datetime) -> bool:
        """Tell whether a release that could not be installed is due for another try."""
        failing = self.failing.get(version)
        return failing is None or failing.next_at is None or now >= failing.next_at

    def install_failed(self, version: str, error: str, now: datetime, every: float) -> bool:
        """Count a failed install of ``version``; return True when it is the first (to tell)."""
        failing = self.failing.get(version)
        if failing is None:
            failing = self.failing[version] = Failing(error, now, attempts=0)
        failing.attempts += 1
        failing.error = error
        polls = min(2 ** (failing.attempts - 1), MAX_BACKOFF_POLLS)
        failing.next_at = now + timedelta(seconds=polls * every)
        return failing.attempts == 1

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object the store keeps."""
        return {
            "baseline": self.baseline,
            "state": self.state,
            "reason": self.reason,
            "failing": {
                version: {
                    "error": f.error,
                    "since": iso(f.since),
                    "attempts": f.attempts,
                    "next_at": iso(f.next_at),
                }
                for version, f in self.failing.items()
            },
            "baseline_failing": self.baseline_failing,
            "baseline_told": self.baseline_told,
            "poll_told": self.poll_told,
            "verdict": self.verdict,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackageState:
        """Read a state back (an empty object is a package never polled)."""
        failing = {}
        for version, f in (data.get("failing") or {}).items():
            since = parse_iso(f.get("since"))
            assert since is not None
            failing[version] = Failing(
                str(f.get("error") or ""),
                since,
                int(f.get("attempts") or 1),
                parse_iso(f.get("next_at")),
            )
        return cls(
            baseline=data.get("baseline"),
            failing=failing,
            baseline_failing=data.get("baseline_failing"),
            baseline_told=bool(data.get("baseline_told")),
            poll_told=data.get("poll_told"),
            verdict=str(data.get("verdict") or "ok"),
        )


def breaks(broken: Breakage, base_url: str) -> Notification:
    """Return the alert that a release breaks tests of one check."""
    return Notification(
        event=Event.UPSTREAM_BREAKS,
        key=f"upstream.breaks|{broken.watch}|{broken.check}|{broken.package}|{broken.version}",
        summary=broken.summary,
        check=broken.check,
        failing_tests=tuple(FailingTest(t.nodeid, t.message or "") for t in broken.tests),
        run_id=broken.run_id,
        run_url=f"{base_url.rstrip('/')}/runs/{broken.run_id}",
        severity="warning",
        details={
            "watch": broken.watch,
            "package": broken.package,
            "version": broken.version,
            "previous": broken.previous,
            "fingerprints": [t.fingerprint for t in broken.tests],
            "error": broken.error,
            "still_as": broken.still_as,
        },
    )


def install_failed(watch: str, index: str, package: str, version: str, error: str) -> Notification:
    """Return the alert that a release cannot be installed (not a breakage)."""
    return Notification(
        event=Event.UPSTREAM_INSTALL_FAILED,
        key=f"upstream.install_failed|{watch}|{package}|{version}",
        summary=f"{package} {version} cannot be installed from {index}: {error}",
        severity="warning",
        details={
            "watch": watch,
            "package": package,
            "version": version,
            "index": index,
            "error": error,
        },
    )


def install_recovered(
    watch: str, index: str, package: str, version: str, attempts: int
) -> Notification:
    """Return the notice that a release that could not be installed now installs."""
    return Notification(
        event=Event.UPSTREAM_INSTALL_RECOVERED,
        key=f"upstream.install_recovered|{watch}|{package}|{version}",
        summary=(
            f"{package} {version} installs from {index} now "
            f"(after {attempts} failed attempt{'s' * (attempts != 1)}); tested and judged"
        ),
        severity="info",
        details={
            "watch": watch,
            "package": package,
            "version": version,
            "index": index,
            "attempts": attempts,
        },
    )


def baseline_failed(
    watch: str, package: str, version: str, reason: str, since: datetime
) -> Notification:
    """Return the alert that the baseline cannot be trusted."""
    return Notification(
        event=Event.UPSTREAM_BASELINE_FAILED,
        key=f"upstream.baseline_failed|{watch}|{package}|{iso(since)}",
        summary=f"watch {watch}: the baseline {package} {version} {reason}",
        severity="warning",
        details={"watch": watch, "package": package, "version": version, "reason": reason},
    )


def baseline_recovered(watch: str, package: str, version: str) -> Notification:
    """Return the notice that the baseline passes again."""
    return Notification(
        event=Event.UPSTREAM_BASELINE_RECOVERED,
        key=f"upstream.baseline_recovered|{watch}|{package}|{version}",
        summary=f"watch {watch}: the baseline {package} {version} passes",
        severity="info",
        details={"watch": watch, "package": package, "version": version},
    )


def polls_failing(
    watch: str,
    index: str,
    packages: list[str],
    failures: int,
    kind: str,
    error: str,
    since: str,
    *,
    changed_from: str | None = None,
) -> Notification:
    """Return one alert for every package of one index whose polls fail."""
    names = ", ".join(packages)
    if changed_from is None:
        summary = (
            f"watch {watch}: {failures} polls of {index} failed in a row ({names}); "
            f"new releases go untested: {error}"
        )
    else:
        summary = (
            f"watch {watch}: polls of {index} still fail ({names}), now {kind} "
            f"instead of {changed_from}: {error}"
        )
    return Notification(
        event=Event.UPSTREAM_POLL_FAILING,
        key=f"upstream.poll|{watch}|{index}|{since}|{kind}",
        summary=summary,
        severity="warning",
        details={
            "watch": watch,
            "index": index,
            "package": packages[0],
            "packages": list(packages),
            "kind": kind,
            "error": error,
            "last_ok_at": since,
            "changed_from": changed_from,
        },
    )


def polls_recovered(watch: str, index: str, packages: list[str], at: datetime) -> Notification:
    """Return the notice that polls of an index work again."""
    names = ", ".join(packages)
    return Notification(
        event=Event.UPSTREAM_POLL_RECOVERED,
        key=f"upstream.poll.ok|{watch}|{index}|{iso(at)}",
        summary=f"watch {watch}: polls of {index} work again ({names})",
        severity="info",
        details={
            "watch": watch,
            "index": index,
            "package": packages[0],
            "packages": list(packages),
        },
    )
