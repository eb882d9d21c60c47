"""Make everything a test produced storable and safe to show, whatever it contains: no I/O.

A test controls its node id, messages, tracebacks, output, properties and artifact names, so
any of them may hold what a database refuses or a reader is fooled by. ``storable_run`` is
applied to every run before it leaves the runner (a finished, refused or recovered one), and
after masking, so that a cut never leaves half a secret. It makes every text:

- valid Unicode: a lone surrogate becomes U+FFFD (no UTF-8 encoder accepts it);
- free of raw control characters: ANSI colour sequences (``ESC [ ... m``) are dropped, since
  they only colour a terminal and carry nothing a reader needs; every other C0 or C1 control
  (NUL included, which PostgreSQL refuses in text) and every bidirectional control (U+202A-E,
  U+2066-9, U+200E/F, U+061C) is written as its escape, ``\\x1b`` or ``\\u202e``, so that a page,
  a terminal or a webhook receiver shows what was there instead of obeying it. Newlines and
  tabs stay in multi-line text; ``\\r\\n`` becomes ``\\n``;
- bounded: each field has a limit (``LIMITS``); a cut keeps the head and the tail and says how
  many characters went. A node id is an identity, so its cut also names a short hash of the
  whole id: two long ids that share their head and tail still differ once cut.

Properties (``record_property``) are bounded in count and size, their strings cleaned the same
way, and non-finite numbers (which JSON columns refuse) become text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from typing import Any

from onwatch.model import Artifact, Run, TestResult

NODEID_LIMIT = 1_000
NAME_LIMIT = 200  # exception type names, property keys, artifact names and kinds
PHASE_LIMIT = 20  # the width of the results table's column
MESSAGE_LIMIT = 2_000
TRACEBACK_LIMIT = 32_000
OUTPUT_LIMIT = 32_000
ERROR_LIMIT = 8_000  # a run's error
PROPERTY_LIMIT = 4_000  # one property's value, as JSON text
PROPERTIES_LIMIT = 100  # properties per result
CUT_PROPERTY = "onwatch.properties_cut"

# Anything that needs work: surrogates, C0/C1 controls but tab and newline, bidi controls.
_SUSPECT = re.compile(
    "[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_SUSPECT_ONE_LINE = re.compile(
    "[\ud800-\udfff\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_COLOUR = re.compile("\x1b\\[[0-9;:]*m")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def storable_run(run: Run) -> Run:
    """Return ``run`` with its error and every result made storable and safe to show."""
    results = tuple(storable_result(result) for result in run.results)
    error = None if run.error is None else storable_text(run.error, ERROR_LIMIT)
    if error == run.error and all(a is b for a, b in zip(results, run.results, strict=True)):
        return run
    return replace(run, error=error, results=results)


def storable_result(result: TestResult) -> TestResult:
    """Return ``result`` with every text bounded and cleaned; the same object when it was."""
    fields: dict[str, Any] = {
        "nodeid": storable_id(result.nodeid),
        "phase": storable_name(result.phase, PHASE_LIMIT),
        "exception": _optional(result.exception, NAME_LIMIT, one_line=True),
        "message": _optional(result.message, MESSAGE_LIMIT),
        "traceback": _optional(result.traceback, TRACEBACK_LIMIT),
        "output": _optional(result.output, OUTPUT_LIMIT),
    }
    if result.properties:
        fields["properties"] = storable_properties(result.properties)
    if result.artifacts:
        fields["artifacts"] = tuple(_storable_artifact(a) for a in result.artifacts)
    if not math.isfinite(result.duration):
        fields["duration"] = 0.0
    # Each cleaner returns its text itself when it was fine: most results need no copy.
    changed = {k: v for k, v in fields.items() if v is not getattr(result, k)}
    if "properties" in changed and changed["properties"] == result.properties:
        del changed["properties"]
    if "artifacts" in changed and changed["artifacts"] == result.artifacts:
        del changed["artifacts"]
    return replace(result, **changed) if changed else result


def storable_id(nodeid: str, limit: int = NODEID_LIMIT) -> str:
    """Return a node id on one line and at most ``limit`` characters, still telling ids apart."""
    clean = storable_text(nodeid, None, one_line=True)
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return _cut(clean, limit, f"[... {{}} characters cut, id {digest} ...]")


def storable_name(text: str, limit: int = NAME_LIMIT) -> str:
    """Return a short one-line text (a type name, a key, a file name) bounded and cleaned."""
    return storable_text(text, limit, one_line=True)


def storable_text(text: str, limit: int | None, *, one_line: bool = False) -> str:
    """Return ``text`` as valid, visible Unicode of at most ``limit`` characters (None: any).

    ``one_line`` also escapes newlines and tabs, for texts shown on one line.
    """
    suspect = _SUSPECT_ONE_LINE if one_line else _SUSPECT
    if (limit is None or len(text) <= limit) and suspect.search(text) is None:
        return text  # the common case: one scan, no copy
    if suspect.search(text) is not None:
        text = _LONE_SURROGATE.sub("\ufffd", text)
        text = _COLOUR.sub("", text)
        if not one_line:
            text = text.replace("\r\n", "\n")
        text = (_CONTROL_ONE_LINE if one_line else _CONTROL).sub(_escape, text)
    if limit is None or len(text) <= limit:
        return text
    marker = "[... {} characters cut ...]" if one_line else "\n[... {} characters cut ...]\n"
    return _cut(text, limit, marker)


def storable_properties(
    properties: tuple[tuple[str, Any], ...],
) -> tuple[tuple[str, Any], ...]:
    """Return at most ``PROPERTIES_LIMIT`` properties, keys and values bounded and cleaned."""
    kept = tuple(
        (storable_name(str(key)), _storable_value(value))
        for key, value in properties[:PROPERTIES_LIMIT]
    )
    if len(properties) > PROPERTIES_LIMIT:
        kept += ((CUT_PROPERTY, f"{len(properties) - PROPERTIES_LIMIT} more properties cut"),)
    return kept


def _storable_value(value: Any) -> Any:
    clean = _clean_value(value)
    try:
        text = json.dumps(clean, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(repr(clean))
        clean = storable_text(repr(clean), None)
    if isinstance(clean, str) or len(text) <= PROPERTY_LIMIT:
        return clean  # a string is bounded already, in characters
    # Too big to keep whole: its JSON text, cut, says what it was.
    return storable_text(text, PROPERTY_LIMIT)


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value, PROPERTY_LIMIT)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_clean_value(item) for item in value]
    if isinstance(value, dict):
        return {storable_name(str(k)): _clean_value(v) for k, v in value.items()}
    return storable_text(repr(value), PROPERTY_LIMIT)


def _storable_artifact(artifact: Artifact) -> Artifact:
    name, kind = storable_name(artifact.name), storable_name(artifact.kind)
    if name == artifact.name and kind == artifact.kind:
        return artifact
    return replace(artifact, name=name, kind=kind)


def _optional(text: str | None, limit: int, *, one_line: bool = False) -> str | None:
    return None if text is None else storable_text(text, limit, one_line=one_line)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _cut(text: str, limit: int, marker: str) -> str:
    """Keep the head and the tail of ``text``, ``marker`` ({} the count cut) between them."""
    room = max(0, limit - len(marker.format(len(text))))
    head = room * 3 // 4
    tail = room - head
    dropped = len(text) - head - tail
    return f"{text[:head]}{marker.format(dropped)}{text[len(text) - tail :]}"
