"""Hide secret values, and the forms they take once encoded, in every string a run leaves.

``Masker`` knows a set of named secret values. For each it also looks for:

- its URL encodings (``%2F`` in upper and lower case, ``+`` for spaces, and as URL userinfo),
  including the lighter ones of HTTP clients and browsers (``/`` and ``+`` kept, ``é`` as
  ``%C3%A9``) and of JavaScript's ``encodeURIComponent`` and ``URLSearchParams``,
- base64, standard and URL-safe, with or without padding, at any of the three byte alignments
  it can have inside a longer encoded string (``base64("alice:" + secret)`` in a Basic header),
- JSON and HTML escaping, and Python's escapes (``\\xe9`` from ``ascii()`` and in pytest's
  test ids, ``\\xc3\\xa9`` in ``repr()`` of bytes), and those escaped once more (a JSON body
  in ``repr(locals())``, JSON text inside a JSON log line),
- the password, and ``user:password``, of a secret that is itself a URL with credentials,
- each line of a multi-line secret (a PEM key printed line by line).

Every match becomes ``[secret:NAME]``. The module is pure and small: the pytest plugin uses it
in the test process, before a single event is written to disk.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from onwatch.errors import SecretTooShort

MIN_LENGTH = 6
# Characters RFC 3986 leaves unencoded in the userinfo of a URL.
_USERINFO_SAFE = "!$&'()*+,;=:"
# Characters that httpx, requests and browsers leave as they are in a URL they send: only
# what may not appear in a URL at all (non-ASCII, space, quotes, <, >) is percent-encoded.
_URL_CLIENT_SAFE = "!#$&'()*+,/:;=?@[]~"
# Characters JavaScript's encodeURIComponent leaves unencoded, besides letters, digits, _.-~
_URI_COMPONENT_SAFE = "!'()*"


@dataclass(frozen=True, slots=True)
class Hit:
    """One place a secret was found: which secret, in which form, where in the text."""

    name: str
    encoding: str
    start: int
    end: int


def placeholder(name: str) -> str:
    """Return what a secret called ``name`` is replaced with."""
    return f"[secret:{name}]"


def encodings(value: str) -> Iterator[tuple[str, str]]:
    """Yield ``(encoding, text)`` for every form of ``value`` that a run may print."""
    yield "raw", value
    yield from _escaped(value)
    for alphabet, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for form, text in _base64_forms(value.encode("utf-8"), encode):
            yield f"{alphabet}{form}", text
    if "\n" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= MIN_LENGTH:
                yield "line", line
                yield from ((f"line {e}", t) for e, t in _escaped(line))
    parts = urlsplit(value) if "://" in value else None
    if parts is not None and parts.password:
        user = parts.username or ""
        if len(parts.password) >= MIN_LENGTH:
            yield "url password", parts.password
        if user:
            yield "url userinfo", f"{user}:{parts.password}"


def _escaped(value: str) -> Iterator[tuple[str, str]]:
    for encoding, text in (
        ("url", quote(value, safe="")),
        ("url", quote(value)),
        ("url", quote_plus(value)),
        ("url", quote(value, safe=_URL_CLIENT_SAFE)),
        ("url", quote(value, safe=_URI_COMPONENT_SAFE)),
        # URLSearchParams and HTML forms: application/x-www-form-urlencoded, "~" encoded too.
        ("url", quote_plus(value, safe="*").replace("~", "%7E")),
        ("url userinfo", quote(value, safe=_USERINFO_SAFE)),
        ("json", json.dumps(value)[1:-1]),
        ("json", json.dumps(value, ensure_ascii=False)[1:-1]),
        ("json", json.dumps(value)[1:-1].replace("/", "\\/")),  # PHP and others escape "/"
        ("html", html.escape(value)),
        ("html", html.escape(value, quote=False)),
        ("html", html.escape(value).replace("&#x27;", "&#39;")),
        # repr() and ascii() of text, repr() of its UTF-8 bytes, and pytest's test ids.
        ("python", repr(value)[1:-1]),
        ("python", ascii(value)[1:-1]),
        ("python", repr(value.encode("utf-8"))[2:-1]),
        ("python", value.encode("unicode_escape").decode("ascii")),
    ):
        yield encoding, text
        if encoding == "url":
            yield encoding, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)
        elif encoding in ("json", "python"):
            # Escaped once more: a JSON body in repr(locals()), JSON text inside a JSON log
            # line or a Playwright trace. Each escape doubles the backslashes of the first.
            for outer, again in (
                ("json", json.dumps(text)[1:-1]),
                ("json", json.dumps(text, ensure_ascii=False)[1:-1]),
                ("python", repr(text)[1:-1]),
            ):
                if again != text:
                    yield f"{encoding} in {outer}", again


def _base64_forms(data: bytes, encode: Any) -> Iterator[tuple[str, str]]:
    """Yield the base64 characters that depend on ``data`` alone, at each alignment."""
    for lead in range(3):
        encoded = encode(b"\0" * lead + data).decode("ascii")
        start = -(-8 * lead // 6)  # the first character made of data bits only
        end = 8 * (lead + len(data)) // 6  # past the last character made of data bits only
        context = f" after {lead} byte{'s' * (lead != 1)}" if lead else ""
        yield f"{context}", encoded[start:end]
        # At the end of the encoded text the last, partial character and padding follow.
        yield f"{context}, at the end", encoded[start:]
        yield f"{context}, at the end", encoded[start:].rstrip("=")


def _trie_pattern(words: list[Any]) -> Any:
    """Return one regex (str or bytes) matching any of ``words``, the longest at a position.

    A plain alternation of a few hundred forms tries each one at every character; as a trie the
    regex engine follows one branch, which makes masking ten times faster or more.
    """
    empty = words[0][:0]
    trie: dict[Any, Any] = {}
    for word in words:
        node = trie
        for index in range(len(word)):
            node = node.setdefault(word[index : index + 1], {})
        node[empty] = {}  # the word ends here

    def build(node: dict[Any, Any]) -> Any:
        chain = empty
        # Follow single branches in a loop: a long secret would otherwise nest one group per
        # character, past what the regex compiler accepts.
        while len(node) == 1 and empty not in node:
            unit, node = next(iter(node.items()))
            chain += re.escape(unit)
        branches = [re.escape(unit) + build(child) for unit, child in node.items() if unit]
        if not branches:
            return chain
        group = branches[0] if len(branches) == 1 else _group(empty, branches)
        if empty in node:  # a word ends here: the longer ones are optional, and tried first
            return chain + _group(empty, [group]) + (b"?" if isinstance(empty, bytes) else "?")
        return chain + group

    return build(trie)


def _group(empty: Any, branches: list[Any]) -> Any:
    if isinstance(empty, bytes):
        return b"(?:" + b"|".join(branches) + b")"
    return "(?:" + "|".join(branches) + ")"


CUT = "..."
CUT_WINDOW = 512
MIN_CUT = 4  # shorter pieces next to "..." are too likely to be ordinary text


def _head_kept(before: str, form: str) -> int:
    """Return the length of the longest head of ``form`` that ``before`` ends with, or 0."""
    found = 0
    start = before.find(form[:MIN_CUT])
    while start != -1:
        piece = before[start:]
        if len(piece) < len(form) and form.startswith(piece):
            found = max(found, len(piece))
        start = before.find(form[:MIN_CUT], start + 1)
    return found


def _tail_kept(after: str, form: str) -> int:
    """Return the length of the longest tail of ``form`` that ``after`` starts with, or 0."""
    found = 0
    stop = after.find(form[-MIN_CUT:])
    while stop != -1:
        piece = after[: stop + MIN_CUT]
        if len(piece) < len(form) and form.endswith(piece):
            found = max(found, len(piece))
        stop = after.find(form[-MIN_CUT:], stop + 1)
    return found


class Masker:
    """Replaces every known secret value, in all its encodings, with ``[secret:NAME]``."""

    def __init__(self, secrets: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = list(secrets.items() if isinstance(secrets, Mapping) else secrets)
        self.pairs = tuple(dict.fromkeys(pairs))  # a rotated secret keeps its old value too
        forms: dict[str, tuple[str, str]] = {}
        for name, value in self.pairs:
            if len(value) < MIN_LENGTH:
                raise SecretTooShort(
                    f"secret {name} has {len(value)} characters; onwatch masks secrets of "
                    f"{MIN_LENGTH} or more only (a shorter one would hide ordinary text in "
                    "every message): use a longer value"
                )
            for encoding, text in encodings(value):
                if len(text) >= MIN_LENGTH:
                    forms.setdefault(text, (name, encoding))
        self.forms = forms
        self._pattern: re.Pattern[str] | None = (
            re.compile(_trie_pattern(list(forms))) if forms else None
        )
        self._bytes_compiled: re.Pattern[bytes] | None = None

    @property
    def _bytes_pattern(self) -> re.Pattern[bytes] | None:
        # Compiled on first use: a pytest process masks text only, and the compile is most of
        # what a masker costs to build.
        if self._bytes_compiled is None and self.forms:
            words = [text.encode("utf-8") for text in self.forms]
            self._bytes_compiled = re.compile(_trie_pattern(words))
        return self._bytes_compiled

    def __bool__(self) -> bool:
        return bool(self.forms)

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret form replaced, cut ones included."""
        if self._pattern is None or not text:
            return text
        masked = self._pattern.sub(self._replace, text)
        return self._mask_cuts(masked) if CUT in masked else masked

    def _mask_cuts(self, text: str) -> str:
        """Mask what is left of a secret that a shortened repr cut at ``...``.

        pytest and reprlib shorten long values as ``'Account Pr0d/T0k...n+K3y=!'``: neither
        half is a whole form, but the head of one ends right before the ``...`` and the tail of
        one starts right after it.
        """
        spans: list[tuple[int, int, str]] = []
        at = text.find(CUT)
        while at != -1:
            end = at + len(CUT)
            before, after = text[max(0, at - CUT_WINDOW) : at], text[end : end + CUT_WINDOW]
            for form, (name, _) in self.forms.items():
                kept = _head_kept(before, form)
                if kept:
                    spans.append((at - kept, at, name))
                kept = _tail_kept(after, form)
                if kept:
                    spans.append((end, end + kept, name))
            at = text.find(CUT, end)
        if not spans:
            return text
        pieces, position = [], 0
        for start, stop, name in sorted(spans, key=lambda span: (span[0], -span[1])):
            if start < position:
                continue  # inside a longer span taken already
            pieces += [text[position:start], placeholder(name)]
            position = stop
        return "".join([*pieces, text[position:]])

    def mask_optional(self, text: str | None) -> str | None:
        """Return ``text`` masked, or None."""
        return None if text is None else self.mask(text)

    def mask_bytes(self, data: bytes) -> bytes:
        """Return ``data`` with every secret form (as UTF-8) replaced."""
        if self._bytes_pattern is None or not data:
            return data
        return self._bytes_pattern.sub(
            lambda m: placeholder(self.forms[m.group(0).decode("utf-8")][0]).encode(), data
        )

    def mask_value(self, value: Any) -> Any:
        """Return ``value`` with strings masked inside lists, tuples and dicts (keys too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask_value(k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask_value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.mask_value(item) for item in value)
        return value

    def find(self, text: str) -> list[Hit]:
        """Return where secret forms occur in ``text``."""
        if self._pattern is None:
            return []
        return [
            Hit(*self.forms[m.group(0)], m.start(), m.end()) for m in self._pattern.finditer(text)
        ]

    def find_bytes(self, data: bytes) -> list[Hit]:
        """Return where secret forms (as UTF-8) occur in ``data``."""
        if self._bytes_pattern is None:
            return []
        return [
            Hit(*self.forms[m.group(0).decode("utf-8")], m.start(), m.end())
            for m in self._bytes_pattern.finditer(data)
        ]

    def longest(self) -> int:
        """Return the length in bytes of the longest form, for scanning files in chunks."""
        return max((len(text.encode("utf-8")) for text in self.forms), default=0)

    def merged(self, secrets: Mapping[str, str]) -> Masker:
        """Return a masker that also knows ``secrets``; the values it knew stay masked."""
        added = [pair for pair in secrets.items() if pair not in self.pairs]
        return Masker([*self.pairs, *added]) if added else self

    def _replace(self, match: re.Match[str]) -> str:
        return placeholder(self.forms[match.group(0)][0])
