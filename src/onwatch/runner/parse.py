"""Turn the events and exit codes of a check's pytest processes into a ``Run``: no I/O.

This is where "never a silent green" lives: a run is ``error`` when pytest could not start,
collected nothing, failed to collect, crashed or was interrupted, and ``timeout`` when it was
killed at its timeout. Finished tests keep their results in every case; the test in flight when
a process died is recorded too, so nothing that happened is lost. Every failed, errored or
timed-out result gets its category (``analysis.categorize``) here, so that the JSON output, the
database and the alerts all carry the same one.
"""

from __future__ import annotations

import json
import math
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from onwatch.model import Artifact, Outcome, RunStatus, TestResult
from onwatch.runner.kinds import Verdict

if TYPE_CHECKING:
    from onwatch.analysis.categorize import Category, Patterns

OUTPUT_TAIL_LINES = 30


@dataclass
class RunAttempt:
    """One attempt at a run: what one pytest process left behind."""

    number: int
    events: list[dict[str, Any]]
    returncode: int | None
    timed_out: bool = False
    interrupted: bool = False
    output: str = ""  # pytest's own stdout and stderr (tail)
    killed: tuple[str, ...] = ()  # the processes it left running, killed after it ended

    @property
    def finished(self) -> bool:
        """Tell whether pytest reached the end of its session."""
        return any(e.get("event") == "finished" for e in self.events)

    @property
    def collected(self) -> int | None:
        """Return the number of tests collected, or None when collection never ended."""
        for event in self.events:
            if event.get("event") == "collected":
                return int(event["count"])
        return None

    @property
    def rootdir(self) -> str | None:
        """Return pytest's rootdir, against which node ids are relative."""
        for event in self.events:
            if event.get("event") == "start":
                return str(event.get("rootdir"))
        return None

    def in_flight(self) -> str | None:
        """Return the node id of a test that began and never reported a result."""
        begun: dict[str, None] = {}
        for event in self.events:
            kind = event.get("event")
            if kind == "begin":
                begun[event["nodeid"]] = None
            elif kind == "result":
                begun.pop(event["nodeid"], None)
        return next(reversed(begun), None) if begun else None


def ran_to_the_end(number: int, events: list[dict[str, Any]]) -> RunAttempt | None:
    """Return the attempt of a process that died after its last test, else None.

    Every collected test has its result (or the session's end is there): the process's death
    cost nothing, and the attempt is judged as if pytest had ended normally.
    """
    attempt = RunAttempt(number=number, events=events, returncode=None)
    finished = next((e for e in events if e.get("event") == "finished"), None)
    if finished is not None:
        attempt.returncode = int(finished.get("exitstatus", 0))
        return attempt
    collected = attempt.collected
    reported = {e.get("nodeid") for e in events if e.get("event") == "result"}
    if collected is None or len(reported) < collected or attempt.in_flight() is not None:
        return None
    results = attempt_results(attempt, "")
    attempt.returncode = 5 if not collected else int(any(r.outcome.is_bad for r in results))
    # The session's end, implied by the results: pytest died in its last moments.
    attempt.events = [*events, {"event": "finished", "exitstatus": attempt.returncode}]
    return attempt


def parse_events(data: bytes) -> list[dict[str, Any]]:
    """Return the events in ``data``, skipping a truncated or garbled line.

    Text that is not valid Unicode (a stray byte, or a lone surrogate a test put in its own
    message, which JSON escapes) becomes U+FFFD: no terminal, database or encoder refuses it.
    """
    events = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(event, dict):
            # Only an escaped surrogate can produce one; a valid pair decodes to one character.
            if _SURROGATE_ESCAPE.search(line):
                event = _without_surrogates(event)
            event = _well_formed(event)
            if event is not None:
                events.append(event)
    return events


# The fields that are text (or null) in every event that has them.
_TEXTS = ("nodeid", "outcome", "phase", "exception", "message", "traceback", "output", "rootdir")


def _well_formed(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``event`` with the types the parser relies on, or None to drop it.

    The events file is named in the tests' environment, so a test can write to it too: a
    line of the wrong shape must not stop a run from being recorded.
    """
    kind = event.get("event")
    if not isinstance(kind, str):
        return None
    if kind in ("begin", "result") and not isinstance(event.get("nodeid"), str):
        return None
    count = event.get("count")
    if kind == "collected" and (type(count) is not int or count < 0):
        return None
    for key in _TEXTS:
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            event[key] = json.dumps(value, default=repr)
    if kind == "result":
        duration = event.get("duration")
        if not isinstance(duration, int | float) or not math.isfinite(duration):
            event["duration"] = 0.0
        properties = event.get("properties")
        event["properties"] = (
            [p for p in properties if isinstance(p, list) and len(p) == 2]
            if isinstance(properties, list)
            else []
        )
        if not isinstance(event.get("artifact_errors"), list | None):
            event["artifact_errors"] = [str(event["artifact_errors"])]
    return event


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def attempt_results(attempt: RunAttempt, timeout_text: str) -> list[TestResult]:
    """Return the results of one attempt, including the test in flight when it was stopped."""
    results: list[TestResult] = []
    for event in attempt.events:
        kind = event.get("event")
        if kind == "result":
            results.append(_result_from_event(event, attempt.number))
        elif kind == "collect_error":
            results.append(
                TestResult(
                    nodeid=event.get("nodeid") or "<collection>",
                    outcome=Outcome.ERROR,
                    phase="collect",
                    duration=0.0,
                    attempt=attempt.number,
                    exception="CollectError",
                    message=event.get("message"),
                    traceback=event.get("traceback"),
                )
            )
    in_flight = attempt.in_flight()
    if in_flight is not None and not attempt.finished:
        if attempt.timed_out:
            outcome, message = Outcome.TIMEOUT, timeout_text
        elif attempt.interrupted:
            outcome, message = Outcome.ERROR, "interrupted: onwatch stopped while this test ran"
        else:
            outcome = Outcome.ERROR
            message = (
                f"the test process died ({describe_exit(attempt.returncode)}) during this test"
            )
        results.append(
            TestResult(
                nodeid=in_flight,
                outcome=outcome,
                phase="call",
                duration=0.0,
                attempt=attempt.number,
                message=message,
            )
        )
    return results


def _result_from_event(event: dict[str, Any], attempt: int) -> TestResult:
    outcome = event.get("outcome", "error")
    return TestResult(
        nodeid=str(event["nodeid"]),
        outcome=Outcome(outcome) if outcome in Outcome._value2member_map_ else Outcome.ERROR,
        phase=str(event.get("phase", "call")),
        duration=float(event.get("duration") or 0.0),
        attempt=attempt,
        exception=event.get("exception"),
        message=event.get("message"),
        traceback=event.get("traceback"),
        output=event.get("output"),
        properties=_properties(event),
        artifacts=tuple(_captured(event.get("artifacts"))),
    )


def _properties(event: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    found = tuple((str(p[0]), p[1]) for p in event.get("properties") or ())
    errors = event.get("artifact_errors")
    if errors:
        # Why a screenshot or log is missing, next to the test's own properties.
        found += (("onwatch.artifact_errors", [str(e) for e in errors]),)
    return found


def _captured(raw: object) -> Iterator[Artifact]:
    """Yield the files a result event lists, still where the test process wrote them."""
    if not isinstance(raw, list):
        return
    for item in raw:
        if isinstance(item, dict) and item.get("path") and item.get("name"):
            size = item.get("size")
            yield Artifact(
                kind=str(item.get("kind") or "file"),
                name=str(item["name"]),
                size=size if type(size) is int else 0,
                source=str(item["path"]),
            )


def merge_attempts(results: list[TestResult]) -> tuple[TestResult, ...]:
    """Mark the last attempt of each test as final, and a retry that passed as flaky."""
    last: dict[str, int] = {}
    failed_before: set[str] = set()
    for index, result in enumerate(results):
        last[result.nodeid] = index
    merged = []
    for index, result in enumerate(results):
        final = last[result.nodeid] == index
        outcome = result.outcome
        if outcome is Outcome.PASSED and result.nodeid in failed_before:
            outcome = Outcome.FLAKY
        if result.outcome.is_bad:
            failed_before.add(result.nodeid)
        if final != result.final or outcome is not result.outcome:
            result = replace(result, final=final, outcome=outcome)
        merged.append(result)
    return tuple(merged)


def retry_candidates(results: tuple[TestResult, ...]) -> list[str]:
    """Return the node ids whose final result failed and that a retry may run again."""
    return [
        r.nodeid
        for r in results
        if r.final and r.outcome in (Outcome.FAILED, Outcome.ERROR) and r.phase != "collect"
    ]


def categorized(results: tuple[TestResult, ...], patterns: Patterns) -> tuple[TestResult, ...]:
    """Give every failed, errored or timed-out result its category; leave the others alone."""
    from onwatch.analysis.categorize import categorize

    # Passing results, the bulk of a large run, cost one attribute test each.
    return tuple(
        replace(r, category=_value(categorize(r, patterns))) if r.outcome.is_bad else r
        for r in results
    )


def _value(category: Category | None) -> str | None:
    return None if category is None else category.value


def verdict(
    attempts: list[RunAttempt],
    selection: str,
    timeout_text: str,
    patterns: Patterns | Callable[[], Patterns] | None = None,
) -> Verdict:
    """Decide the status of a run from all of its attempts (the first one is the full run).

    ``patterns`` categorizes the failures: the built-in rules when None. The processes the
    attempts left running, which onwatch killed, are named in a last paragraph of the run's
    error (whatever its status: a passed run that leaked says so).
    """
    decided = _decide(attempts, selection, timeout_text, patterns)
    killed = [process for attempt in attempts for process in attempt.killed]
    if not killed:
        return decided
    note = describe_killed(killed)
    error = f"{decided.error}\n\n{note}" if decided.error else note
    return replace(decided, error=error)


KILLED_LISTED = 10


def describe_killed(killed: list[str]) -> str:
    """Say which processes onwatch killed because the tests left them running."""
    count = len(killed)
    lines = [f"onwatch killed {count} process{'es' * (count != 1)} the tests left running:"]
    lines += [f"- {process}" for process in killed[:KILLED_LISTED]]
    if count > KILLED_LISTED:
        lines.append(f"- and {count - KILLED_LISTED} more")
    return "\n".join(lines)


def _decide(
    attempts: list[RunAttempt],
    selection: str,
    timeout_text: str,
    patterns: Patterns | Callable[[], Patterns] | None,
) -> Verdict:
    first = attempts[0]
    raw: list[TestResult] = []
    for attempt in attempts:
        raw += attempt_results(attempt, timeout_text)
    results = merge_attempts(raw)
    if any(r.outcome.is_bad for r in results):  # a green run needs no patterns compiled
        if patterns is None:
            from onwatch.analysis.categorize import builtin_patterns

            patterns = builtin_patterns()
        results = categorized(results, patterns() if callable(patterns) else patterns)
    collected = first.collected
    finals = [r for r in results if r.final]
    stopped = next((a for a in attempts if a.timed_out or a.interrupted), None)
    if stopped is not None:
        in_flight = stopped.in_flight()
        # The test in flight got a result (timeout, or error when interrupted); it did not finish.
        done = sum(1 for r in finals if (r.nodeid, r.attempt) != (in_flight, stopped.number))
        where = f" while running {in_flight}" if in_flight else ""
        progress = f" ({done} of {collected} tests finished)" if collected is not None else ""
        if stopped.timed_out:
            return Verdict(
                RunStatus.TIMEOUT, f"{timeout_text}{where}{progress}", collected, results
            )
        return Verdict(
            RunStatus.ERROR,
            f"interrupted: onwatch stopped{where}{progress}",
            collected,
            results,
        )
    collect_errors = [r for r in results if r.phase == "collect"]
    if collect_errors:
        first_error = collect_errors[0]
        summary = (first_error.message or "").splitlines()[0] if first_error.message else ""
        count = len(collect_errors)
        return Verdict(
            RunStatus.ERROR,
            f"collection failed ({count} error{'s' * (count != 1)}): "
            f"{first_error.nodeid}: {summary}",
            collected,
            results,
        )
    for attempt in attempts:
        if not attempt.finished:
            died = describe_exit(attempt.returncode)
            if attempt.collected is None:
                reason = f"pytest failed before collecting tests ({died})"
            else:
                in_flight = attempt.in_flight()
                where = f" while running {in_flight}" if in_flight else ""
                # pytest's output says nothing about a process killed under it.
                return Verdict(RunStatus.ERROR, f"pytest died ({died}){where}", collected, results)
            return Verdict(
                RunStatus.ERROR, _with_output(reason, attempt.output), collected, results
            )
        if attempt.returncode not in (0, 1, 5):
            reason = f"pytest ended with {describe_exit(attempt.returncode)}"
            return Verdict(
                RunStatus.ERROR, _with_output(reason, attempt.output), collected, results
            )
    if not collected:
        return Verdict(
            RunStatus.ERROR,
            f"the selection collected no tests ({selection}); check the paths, -m and -k",
            collected,
            results,
        )
    if any(r.outcome.is_bad for r in finals):
        return Verdict(RunStatus.FAILED, None, collected, results)
    return Verdict(RunStatus.PASSED, None, collected, results)


PYTEST_EXIT = {
    1: "some tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


def describe_exit(returncode: int | None) -> str:
    """Describe a process exit code in words, signals by name."""
    if returncode is None:
        return "no exit code"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    meaning = PYTEST_EXIT.get(returncode)
    return f"exit code {returncode}" + (f", {meaning}" if meaning else "")


def _with_output(reason: str, output: str) -> str:
    tail = useful_output(output)
    return f"{reason}: {tail}" if tail else reason


def useful_output(output: str) -> str:
    """Return the lines of pytest's output that explain a failure to start."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    for pattern in (r"^E\s", r"Error|error:|Exception"):
        picked = [line for line in lines if re.search(pattern, line)]
        if picked:
            return "\n".join(picked[-OUTPUT_TAIL_LINES:])
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])
