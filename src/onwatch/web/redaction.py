"""What a caller may see of a sensitive check: one rule, applied alike by the pages and the API.

A check with ``sensitive = true`` shows callers below admin its node ids, outcomes, phases,
durations, exception types, categories, counts and statuses, but none of the texts and files a
test leaves behind: messages, tracebacks, captured output, ``record_property`` values (step
timings among them), artifacts, and a run's error. ``redact`` takes a result or a run as the
store returns it and gives back a copy without them, so whatever is drawn from the copy (error
groups, step charts, hover titles) cannot show them either. Admin callers, and every caller of
a check that is not sensitive, get the item unchanged.

The JSON shapes carry ``redacted``: true when fields were withheld, so a client can tell a
hidden message from a test that had none.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from onwatch.model import Run, TestResult
from onwatch.store import RunRow, TestRow
from onwatch.web.auth import Role

__all__ = ["NOTICE", "hides", "redact", "result_json", "run_json", "run_row_json"]

NOTICE = "hidden: this check is sensitive; sign in with an admin token to see messages and output"

Item = TypeVar("Item", TestResult, Run, RunRow, TestRow)


def hides(role: Role, sensitive: bool) -> bool:
    """Tell whether a caller with ``role`` is kept from the details of such a check."""
    return sensitive and role < Role.ADMIN


def redact(item: Item, role: Role, sensitive: bool) -> tuple[Item, bool]:
    """Return ``item`` as ``role`` may see it, and whether anything was withheld."""
    if not hides(role, sensitive):
        return item, False
    return _bare(item), True


def _bare(item: Item) -> Item:
    if isinstance(item, TestResult):
        return replace(item, message=None, traceback=None, output=None, properties=(), artifacts=())
    if isinstance(item, TestRow):
        return replace(item, result=_bare(item.result))
    if isinstance(item, Run):
        return replace(item, error=None, results=tuple(_bare(r) for r in item.results))
    return replace(item, error=None)


def result_json(result: TestResult, role: Role, sensitive: bool) -> dict[str, Any]:
    """Return the API shape of a result (``ResultOut``) as ``role`` may see it."""
    shown, hidden = redact(result, role, sensitive)
    return {**shown.to_json(), "redacted": hidden}


def run_json(run: Run, role: Role, sensitive: bool) -> dict[str, Any]:
    """Return the API shape of a run with its results (``RunOut``) as ``role`` may see it."""
    shown, hidden = redact(run, role, sensitive)
    data = shown.to_json()
    for result in data["results"]:
        result["redacted"] = hidden
    return {**data, "redacted": hidden}


def run_row_json(row: RunRow, role: Role, sensitive: bool) -> dict[str, Any]:
    """Return the API shape of a run in a list (``RunSummary``) as ``role`` may see it."""
    shown, hidden = redact(row, role, sensitive)
    return {**shown.to_json(), "redacted": hidden}
