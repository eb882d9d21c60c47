"""Where a problem sits in a TOML config file, and a message that names the file, line and key.

Free of pydantic at run time: the checks of the files a configuration names use it on every
load, cached or not.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onwatch.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


def read_toml(path: Path, text: str) -> dict[str, Any]:
    """Parse ``text``, the content of ``path``; a syntax error is a ConfigError naming its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(
            [
                f"{where}: invalid TOML: {reason}; fix the syntax (strings need quotes, "
                'e.g. every = "5m")'
            ]
        ) from None


def explain(
    exc: ValidationError,
    path: Path,
    text: str,
    prefix: tuple[str, ...],
    model: type[BaseModel],
) -> list[str]:
    """Return one problem line per pydantic error, located in the file."""
    problems = []
    for error in exc.errors():
        loc = (*prefix, *(str(part) for part in error["loc"]))
        kind = error["type"]
        field = str(error["loc"][0]) if error["loc"] else ""
        if kind == "extra_forbidden":
            known = sorted(model.model_fields)
            message = f"unknown key {field!r}{did_you_mean(field, known)}; known keys: " + (
                ", ".join(known)
            )
        elif kind == "missing":
            message = f"required key {field!r} is missing; add it (see docs/configuration.md)"
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        else:
            message = f"{error['msg'].lower()} (got {error.get('input')!r})"
        problems.append(problem(path, text, loc, message))
    return problems


def did_you_mean(word: str, choices: list[str]) -> str:
    """Return ' (did you mean X?)' for the closest of ``choices``, or ''."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def problem(path: Path, text: str, loc: tuple[str, ...], message: str) -> str:
    """Return one problem line: ``FILE:LINE: key.path: message``."""
    line = locate(text, loc)
    where = f"{path}:{line}" if line else str(path)
    keypath = ".".join(_quote_key(part) for part in loc)
    return f"{where}: {keypath}: {message}"


def _quote_key(part: str) -> str:
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', text)
    return [a or b or c for a, b, c in parts]


def locate(text: str, loc: tuple[str, ...]) -> int | None:
    """Return the 1-based line in TOML ``text`` that best matches the key path ``loc``."""
    lines = text.splitlines()
    table: list[str] = []
    best: tuple[int, int] | None = None  # (matched depth, line number)
    header = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")
    assignment = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.\-"\' ]+?)\s*=')
    for number, line in enumerate(lines, start=1):
        found = header.match(line)
        if found:
            table = _split_key(found.group(1))
            key_path = table
        else:
            found = assignment.match(line)
            if not found:
                continue
            key_path = table + _split_key(found.group(1))
        depth = 0
        for want, have in zip(loc, key_path, strict=False):
            if want != have:
                break
            depth += 1
        matched = depth == len(key_path) or depth == len(loc)
        if matched and depth > 0 and (best is None or depth > best[0]):
            best = (depth, number)
    return None if best is None else best[1]
