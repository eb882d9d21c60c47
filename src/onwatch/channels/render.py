"""Turn a ``Notification`` into a title and a plain-text body.

Everything a test run produced (test names, error messages) is untrusted text: it may hold
terminal colour codes, newlines or control characters that would change how a message displays.
Each such string goes through ``clean``; channels hand the text over as plain text (Apprise
escapes it for services that render HTML or Markdown), so that a test named ``<script>`` or
``**bold**`` reads as exactly that.

Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from onwatch.channels.notification import Event, Notification
from onwatch.model import as_utc

PREFIX = "[onwatch]"
MAX_TESTS = 10  # failing tests listed in one message; the rest are counted
RULE = "-" * 40

# ESC-introduced sequences: CSI (colours, cursor moves), OSC (window titles, hyperlinks; ended by
# BEL or ST) and the two-character escapes. The 8-bit CSI (0x9b) form is matched as well.
_ANSI = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]        # CSI ... final byte
    | (?:\x1b\]|\x9d).*?(?:\x07|\x1b\\|\x9c) # OSC ... BEL or ST
    | \x1b[P^_X].*?(?:\x1b\\|\x9c)          # DCS, PM, APC, SOS strings
    | \x1b[@-Z\\-_]                         # two-character escapes
    | \x1b                                  # a lone, unterminated ESC
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 and C1 controls except tab and newline, DEL, and the bidirectional overrides that can make
# a test name display as something else than it is ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_BLANKS = re.compile(r"\s+")

_TITLES: dict[Event, str] = {
    Event.INCIDENT_OPENED: "FAILING",
    Event.INCIDENT_REMINDER: "STILL FAILING",
    Event.INCIDENT_RESOLVED: "RESOLVED",
    Event.CHECK_OVERDUE: "OVERDUE",
}
# Batch titles count notifications under these words, in this order.
_BATCH_WORDS: dict[Event, str] = {
    Event.INCIDENT_OPENED: "failing",
    Event.INCIDENT_REMINDER: "still failing",
    Event.INCIDENT_RESOLVED: "resolved",
    Event.CHECK_OVERDUE: "overdue",
    Event.CHANNEL_FAILING: "channel failing",
    Event.MONITOR_DEGRADED: "onwatch degraded",
    Event.MONITOR_RECOVERED: "onwatch recovered",
    Event.TEST: "test",
    Event.UPSTREAM_BREAKS: "release breaks tests",
    Event.UPSTREAM_POLL_FAILING: "index poll failing",
    Event.UPSTREAM_POLL_RECOVERED: "index poll back",
    Event.UPSTREAM_INSTALL_FAILED: "release cannot be installed",
    Event.UPSTREAM_INSTALL_RECOVERED: "release installs again",
    Event.UPSTREAM_BASELINE_FAILED: "baseline failing",
    Event.UPSTREAM_BASELINE_RECOVERED: "baseline back",
}
_UPSTREAM_EVENTS = frozenset(
    {
        Event.UPSTREAM_BREAKS,
        Event.UPSTREAM_POLL_FAILING,
        Event.UPSTREAM_POLL_RECOVERED,
        Event.UPSTREAM_INSTALL_FAILED,
        Event.UPSTREAM_INSTALL_RECOVERED,
        Event.UPSTREAM_BASELINE_FAILED,
        Event.UPSTREAM_BASELINE_RECOVERED,
    }
)
_INCIDENT_EVENTS = frozenset(
    {Event.INCIDENT_OPENED, Event.INCIDENT_REMINDER, Event.INCIDENT_RESOLVED}
)


def clean(text: str, *, one_line: bool = False, limit: int = 300) -> str:
    """Return ``text`` without escape sequences and control characters, cut to ``limit``."""
    text = _ANSI.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    if one_line:
        text = _BLANKS.sub(" ", text).strip()
    else:
        text = text.replace("\t", " ").strip("\n")
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


@dataclass(frozen=True)
class _Content:
    """What a message says, every untrusted string cleaned."""

    title: str
    summary: str
    facts: tuple[tuple[str, str], ...]
    tests: tuple[tuple[str, str], ...]  # (node id, first error line)
    more_tests: int
    total_tests: int
    link: str | None


def text(n: Notification) -> tuple[str, str]:
    """Return the title and plain-text body of ``n``."""
    c = _content(n)
    lines = [c.summary]
    if c.facts:
        lines += ["", *(f"{label}: {value}" for label, value in c.facts)]
    if c.tests:
        lines += ["", f"Failed tests ({c.total_tests}):"]
        lines += [
            f"- {nodeid}: {message}" if message else f"- {nodeid}" for nodeid, message in c.tests
        ]
        if c.more_tests:
            lines.append(f"- and {c.more_tests} more")
    if c.link:
        lines += ["", f"Run: {c.link}"]
    return c.title, "\n".join(lines)


def batch_text(items: list[Notification]) -> tuple[str, str]:
    """Return one plain-text title and body for several notifications sent together."""
    if not items:
        raise ValueError("batch_text needs at least one notification")
    if len(items) == 1:
        return text(items[0])
    counts = Counter(n.event for n in items)
    words = ", ".join(
        f"{counts[event]} {word}" for event, word in _BATCH_WORDS.items() if counts[event]
    )
    title = f"{PREFIX} {len(items)} alerts: {words}"
    body = f"\n\n{RULE}\n\n".join(text(n)[1] for n in items)
    return title, body


def _content(n: Notification) -> _Content:
    summary = _one_line(n.summary)
    check = clean(n.check, one_line=True, limit=100) if n.check else None
    shown_tests = n.failing_tests[:MAX_TESTS]
    return _Content(
        title=_title(n, check, summary),
        summary=summary,
        facts=tuple(_facts(n, check)),
        tests=tuple((_one_line(t.nodeid), _first_line(t.message)) for t in shown_tests),
        more_tests=len(n.failing_tests) - len(shown_tests),
        total_tests=len(n.failing_tests),
        link=clean(n.run_url, one_line=True, limit=2000) if n.run_url else None,
    )


def _one_line(value: str) -> str:
    return clean(value, one_line=True)


def _first_line(message: str) -> str:
    # A message may carry a whole traceback or assertion diff; its first line names the error.
    lines = [line for line in clean(message, limit=10_000).splitlines() if line.strip()]
    return _one_line(lines[0]) if lines else ""


def _title(n: Notification, check: str | None, summary: str) -> str:
    if n.event is Event.TEST:
        return f"{PREFIX} test notification"
    if n.event in (Event.MONITOR_DEGRADED, Event.MONITOR_RECOVERED):
        return clean(f"{PREFIX} onwatch: {summary}", one_line=True, limit=200)
    if n.event in _UPSTREAM_EVENTS:
        return clean(f"{PREFIX} {summary}", one_line=True, limit=200)
    if n.event is Event.CHANNEL_FAILING:
        channel = n.details.get("channel")
        if isinstance(channel, str) and channel:
            return (
                f"{PREFIX} onwatch channel '{clean(channel, one_line=True, limit=100)}' is failing"
            )
        return f"{PREFIX} {summary}"
    word = _TITLES[n.event]
    subject = check or "onwatch"
    if n.event is Event.INCIDENT_RESOLVED:
        outage = n.outage_seconds
        after = f" after {duration(outage)}" if outage is not None else ""
        return f"{PREFIX} {word}: {subject}{after}"
    if n.event is Event.CHECK_OVERDUE:
        return f"{PREFIX} {word}: {subject}"
    if n.failing_tests:
        count = len(n.failing_tests)
        what = f"{count} test{'' if count == 1 else 's'} failed"
    else:
        what = summary
    return clean(f"{PREFIX} {word}: {subject} — {what}", one_line=True, limit=200)


def _facts(n: Notification, check: str | None) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    if check:
        facts.append(("Check", check))
    incident = n.event in _INCIDENT_EVENTS
    if n.event is Event.INCIDENT_RESOLVED and n.opened_at and n.resolved_at:
        outage = duration(n.outage_seconds or 0.0)
        facts.append(("Outage", f"{outage} ({when(n.opened_at)} to {when(n.resolved_at)})"))
    elif n.opened_at:
        facts.append(("Failing since" if incident else "Since", when(n.opened_at)))
    if n.failing_runs:
        in_a_row = "" if n.event is Event.INCIDENT_RESOLVED else " in a row"
        facts.append(("Failed runs", f"{n.failing_runs}{in_a_row}"))
    if n.flaky_runs:
        facts.append(("Flaky runs", str(n.flaky_runs)))
    if n.category:
        facts.append(("Category", clean(n.category, one_line=True, limit=100)))
    for key, value in n.details.items():
        # Only scalars read well on one line; nested data stays in the webhook payload.
        if isinstance(value, str | int | float | bool):
            facts.append(
                (clean(str(key), one_line=True, limit=50), clean(str(value), one_line=True))
            )
    return facts


def when(moment: datetime) -> str:
    """Return ``moment`` in UTC, readable: ``2026-11-24 10:05:03 UTC``."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """Return ``seconds`` in the two largest units: ``45s``, ``12m 5s``, ``3h 20m``, ``2d 4h``."""
    total = max(int(round(seconds)), 0)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    values: list[tuple[int, str]] = []
    for unit, size in units:
        value, total = divmod(total, size)
        values.append((value, unit))
    first = next((i for i, (value, _) in enumerate(values) if value), len(values) - 1)
    shown = [f"{value}{unit}" for value, unit in values[first : first + 2] if value]
    return " ".join(shown) or "0s"
