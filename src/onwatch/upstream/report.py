"""What one poll of a watch found: per package, the runs, the breakages and other verdicts.

``compare`` is the judgement itself (pure): what a run fails that its baseline did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onwatch.model import Run, RunStatus


@dataclass(frozen=True, slots=True)
class PackageReport:
    """What one poll found for one package."""

    package: str
    previous: str | None  # the last release handled before this poll
    latest: str | None  # the newest release the index lists (any kind)
    new: list[str] = field(default_factory=list)  # releases this poll tested
    error: str | None = None
    kind: str | None = None  # the poll failure's kind
    waiting: list[str] = field(default_factory=list)  # cannot be installed; not due yet
    baseline: str | None = None  # the release new ones are compared with, after this poll
    state: str = "ok"  # ok, breaks, cannot-install, baseline-failing, polls-failing

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape."""
        return {
            "package": self.package,
            "previous": self.previous,
            "latest": self.latest,
            "new": list(self.new),
            "error": self.error,
            "waiting": list(self.waiting),
            "baseline": self.baseline,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """A release that cannot be installed, or a baseline that cannot be trusted."""

    package: str
    version: str
    reason: str
    # install: a new release cannot be installed; baseline-install: the baseline cannot be;
    # baseline: the baseline's runs erred or its tests failed
    kind: str

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape."""
        return {
            "package": self.package,
            "version": self.version,
            "reason": self.reason,
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class BrokenTest:
    """A test that fails with a new release and did not with the previous one."""

    nodeid: str
    fingerprint: str
    message: str | None


@dataclass(frozen=True, slots=True)
class Breakage:
    """What a new release breaks in one check."""

    watch: str
    check: str
    package: str
    version: str
    previous: str | None
    run_id: str
    tests: tuple[BrokenTest, ...]
    error: str | None = None  # the run itself failed (an import error at collection...)
    line: str | None = None  # the pinned version line it was tested on, e.g. "1.26"
    # A final release that still breaks what its pre-release (this version) broke.
    still_as: str | None = None

    @property
    def summary(self) -> str:
        """Return the one line people read, e.g. ``demo-lib 1.1 breaks: 3 tests``."""
        count = len(self.tests)
        what = f"{count} test{'s' * (count != 1)}" if count else "the run"
        on = f" on the {self.line} line" if self.line else ""
        if self.still_as:
            return (
                f"{self.package} {self.version} still breaks{on}: {what} ({self.check}), "
                f"as {self.still_as} did"
            )
        return f"{self.package} {self.version} breaks{on}: {what} ({self.check})"

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape."""
        return {
            "summary": self.summary,
            "check": self.check,
            "package": self.package,
            "version": self.version,
            "previous": self.previous,
            "line": self.line,
            "run_id": self.run_id,
            "error": self.error,
            "still_as": self.still_as,
            "tests": [
                {"nodeid": t.nodeid, "fingerprint": t.fingerprint, "message": t.message}
                for t in self.tests
            ],
        }


@dataclass
class WatchReport:
    """Everything one poll of a watch did."""

    watch: str
    packages: list[PackageReport] = field(default_factory=list)
    runs: list[tuple[Run, str]] = field(default_factory=list)  # (run, stored or spooled)
    breakages: list[Breakage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Tell whether something new broke, or a poll or an install failed.

        A run that fails with nothing new, or a baseline whose tests fail, is reported and
        alerted but is not a failure of this poll.
        """
        return (
            bool(self.breakages)
            or any(p.error for p in self.packages)
            or any(p.kind in ("install", "baseline-install") for p in self.problems)
        )

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of ``onwatch watch check --json``."""
        return {
            "watch": self.watch,
            "packages": [p.to_json() for p in self.packages],
            "runs": [{**run.to_json(), "recorded": where} for run, where in self.runs],
            "breakages": [b.to_json() for b in self.breakages],
            "problems": [p.to_json() for p in self.problems],
        }


def compare(run: Run, baseline: Run | None, watch: str, previous: str | None) -> Breakage | None:
    """Return what ``run`` fails that ``baseline`` did not, or None when nothing new fails."""
    from onwatch.analysis.fingerprint import fingerprint

    detail = run.trigger_detail.get("upstream") or {}
    failing_before = (
        set()
        if baseline is None
        else {r.nodeid for r in baseline.final_results() if r.outcome.is_bad}
    )
    broken = tuple(
        BrokenTest(r.nodeid, fingerprint(r), r.message)
        for r in run.final_results()
        if r.outcome.is_bad and r.nodeid not in failing_before
    )
    run_broke = run.status in (RunStatus.ERROR, RunStatus.TIMEOUT) and (
        baseline is None or baseline.status is not run.status
    )
    if not broken and not run_broke:
        return None
    collecting = run.status is RunStatus.ERROR and "collect" in (run.error or "")
    if run_broke and not broken and collecting:
        broken = (collection_error(run.error or ""),)
    return Breakage(
        watch=watch,
        check=run.check,
        package=str(detail.get("package", "")),
        version=str(detail.get("version", "")),
        previous=previous,
        run_id=run.id,
        tests=broken,
        error=run.error if run_broke else None,
    )


COLLECTION = "<collection>"  # the node id of a collection error that names no test file


def collection_error(error: str) -> BrokenTest:
    """Return the collection error of a run that has no results as a broken "test".

    pytest reports an import error in a conftest.py (or a plugin) before it collects anything;
    the run's error is then all there is. Its node id is the test file it names, else
    ``<collection>``; its fingerprint is taken like any test's, so a later release that breaks
    the same way is known as the same breakage.
    """
    import re

    from onwatch.analysis.fingerprint import fingerprint
    from onwatch.model import Outcome, TestResult

    found = re.search(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.py)\b", error)
    nodeid = found.group(1) if found else COLLECTION
    message = re.sub(r"^E\s+", "", error.split(": ", 1)[1] if ": " in error else error)
    result = TestResult(nodeid, Outcome.ERROR, "collect", 0.0, message=message)
    return BrokenTest(nodeid, fingerprint(result), message)
