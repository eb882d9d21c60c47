"""What ``onwatch once`` shows on a terminal: live progress while runs go, then a summary."""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from onwatch.durations import format_duration
from onwatch.model import CheckStatus, Outcome, Run, RunStatus

MAX_LISTED = 100
MARKS = {
    Outcome.PASSED: "✓",
    Outcome.FAILED: "✗",
    Outcome.ERROR: "E",
    Outcome.SKIPPED: "s",
    Outcome.XFAILED: "x",
    Outcome.XPASSED: "X",
    Outcome.TIMEOUT: "T",
    Outcome.FLAKY: "~",
}


def _safe(text: str) -> str:
    """Drop control characters a test name or message could carry into a terminal."""
    return "".join(c if c.isprintable() or c == "\n" else "?" for c in text)


class Progress:
    """Prints tests done of collected and failures as they happen, for all running checks."""

    def __init__(self, stream: IO[str], live: bool) -> None:
        self.stream = stream
        self.live = live
        self.lock = threading.Lock()
        self.state: dict[str, list[int | None]] = {}  # check -> [done, collected, bad]

    def handler(self, check: str) -> Any:
        """Return the event handler for one check's runner."""
        self.state[check] = [0, None, 0]

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            with self.lock:
                entry = self.state[check]
                if kind == "collected" and event.get("count") is not None and entry[1] is None:
                    entry[1] = int(event["count"])
                elif kind == "result":
                    outcome = event.get("outcome")
                    if int(event.get("attempt", 1)) == 1:
                        entry[0] = int(entry[0] or 0) + 1
                    if outcome in ("failed", "error"):
                        entry[2] = int(entry[2] or 0) + 1
                        self._line(
                            f"✗ {check}: {event.get('nodeid')} {outcome}"
                            + _first_line(event.get("message"))
                        )
                elif kind == "collect_error":
                    self._line(
                        f"E {check}: cannot collect {event.get('nodeid')}"
                        + _first_line(event.get("message"))
                    )
                self._status()

        return on_event

    def _line(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(_safe(text) + "\n")

    def _status(self) -> None:
        if not self.live:
            return
        parts = []
        for check, (done, collected, bad) in self.state.items():
            total = "?" if collected is None else collected
            failed = f", {bad} failed" if bad else ""
            parts.append(f"{check} {done}/{total}{failed}")
        self.stream.write("\r\033[K" + " · ".join(parts))
        self.stream.flush()

    def close(self) -> None:
        """Clear the status line."""
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _first_line(message: object) -> str:
    if not message:
        return ""
    return " — " + str(message).splitlines()[0][:200]


def print_runs(runs: list[Run], stream: IO[str] = sys.stdout, *, quiet: bool = False) -> None:
    """Print a per-test summary of each run (only failures when ``quiet``)."""
    for run in runs:
        finals = run.final_results()
        bad = [r for r in finals if r.outcome.is_bad]
        if quiet and run.status is RunStatus.PASSED:
            continue
        counts = ", ".join(f"{n} {o}" for o, n in run.counts().items() if n)
        stream.write(
            f"{run.check}: {run.status.value.upper()} — {counts or 'no tests'} "
            f"in {format_duration(run.duration)}\n"
        )
        if run.error:
            for line in run.error.splitlines()[:20]:
                stream.write(f"  ! {_safe(line)}\n")
        listed = bad if quiet or len(finals) > MAX_LISTED else finals
        for result in listed:
            message = _first_line(result.message) if result.outcome is not Outcome.PASSED else ""
            stream.write(
                f"  {MARKS[result.outcome]} {_safe(result.nodeid)} {result.outcome.value} "
                f"({result.duration:.2f}s){_safe(message)}\n"
            )
        if len(listed) < len(finals) and not quiet:
            stream.write(f"  … {len(finals) - len(listed)} more not listed (--json lists all)\n")


def print_statuses(statuses: list[CheckStatus], stream: IO[str] = sys.stdout) -> None:
    """Print one line per check: last run, status, pass rate, failures in a row, next run."""
    header = ("CHECK", "STATUS", "LAST RUN", "24H PASS", "FAILS IN A ROW", "NEXT RUN")
    rows = [header]
    for s in statuses:
        rows.append(
            (
                s.name,
                (s.last_status.value if s.last_status else "never run")
                + (" (overdue)" if s.overdue else "")
                + (" (incident)" if s.incident else ""),
                s.last_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.last_run_at else "-",
                f"{s.pass_rate_24h:.0%} of {s.runs_24h}" if s.pass_rate_24h is not None else "-",
                str(s.consecutive_failures),
                s.next_run_at.strftime("%Y-%m-%d %H:%M:%S") if s.next_run_at else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        stream.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        stream.write("\n")
