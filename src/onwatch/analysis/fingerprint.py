"""Failure fingerprints: one short hash per test and kind of failure, stable across runs.

Two failures share a fingerprint when the same test fails with the same exception type and a
message that differs only in what changes from run to run: numbers, hex ids, addresses,
quoted values, times. "demo-lib 1.1 breaks: 3 tests" lists them, so that a person (or a
script) can tell which failures are the same from one release to the next.
"""

from __future__ import annotations

import hashlib
import re

from onwatch.model import TestResult

_VOLATILE = (
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}\b"), "<uuid>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'?'"),
    (re.compile(r"\d+(\.\d+)?"), "#"),
    (re.compile(r"\s+"), " "),
)


def normalized_message(message: str | None) -> str:
    """Return the first line of ``message`` with its run-to-run details blanked out."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    for pattern, stand_in in _VOLATILE:
        first = pattern.sub(stand_in, first)
    return first.strip()


def fingerprint(result: TestResult) -> str:
    """Return the 12-hex-digit fingerprint of a failed result."""
    text = "\n".join((result.nodeid, result.exception or "", normalized_message(result.message)))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
