"""Why a test failed: credentials, network, timeout, the test code itself, or the product.

A failure is judged by its exception type name, its message and the error lines of its
traceback (pytest's ``E`` lines). The source lines around them are left out: test code that
mentions ``timeout=`` or a helper named ``forbidden_page`` proves nothing. Categories are tried
in this order, and the first that matches wins:

    credentials   the target refused the monitor's credentials: HTTP 401/403, expired tokens
    network       the target could not be reached: DNS, refused or reset connections, TLS
    timeout       the target or the test was too slow
    test-code     the tests themselves are broken: imports, syntax, fixtures, bugs in test files
    product       everything else: the product misbehaved, which is what monitoring is for

The order matters: a login fixture that fails in setup with a 401 is ``credentials``, not
``test-code``. Users add regular expressions per category (``[onwatch] categories``), tried
before the built-in ones of their category. ``Patterns`` holds all of them compiled, so that
categorizing tens of thousands of results compiles nothing.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from onwatch.model import Outcome, TestResult


class Category(StrEnum):
    """Why a failed test failed."""

    CREDENTIALS = "credentials"
    NETWORK = "network"
    TIMEOUT = "timeout"
    TEST_CODE = "test-code"
    PRODUCT = "product"


# The categories that have rules, in the order they are tried; product is what is left.
ORDER: Final = (Category.CREDENTIALS, Category.NETWORK, Category.TIMEOUT, Category.TEST_CODE)
_RANK: Final = {category: rank for rank, category in enumerate(Category)}

_FLAGS: Final = re.IGNORECASE | re.MULTILINE

# A status code counts only as the one received, never as the one expected: "expected 401, got
# 200" is a product bug (the API let a stranger in), not a credentials problem.
_CODE: Final = r"40[13]\b"
_NOT_EXPECTED: Final = r"(?<!expected )(?<!expected: )(?<!expecting )(?<!should be )"
_IMPORT_ERRORS: Final = (
    "ModuleNotFoundError",
    "ImportError",
    "SyntaxError",
    "IndentationError",
    "TabError",
)
_SETUP_LABELS: Final = {*_IMPORT_ERRORS, "fixture not found", "fixture error", "collection error"}

# (label, expression) per category, the most telling first. The label names the evidence in a
# headline, "could not connect (Connection refused)"; "" names it by the text that matched.
_RULES: Final[Mapping[Category, tuple[tuple[str, str], ...]]] = {
    Category.CREDENTIALS: (
        # httpx "Client error '401 Unauthorized'", requests "401 Client Error: Unauthorized",
        # httpx's "<Response [401 Unauthorized]>", Playwright's call log "← 401 Unauthorized".
        ("", r"\b40[13] (?:client error: )?(?:unauthorized|forbidden)\b"),
        ("", rf"\bclient error '{_CODE}"),
        ("", rf"\b{_CODE} client error\b"),
        ("", rf"\bhttp error {_CODE}"),  # urllib
        ("", rf"<response \[{_CODE}\]>"),  # requests
        ("", rf"\brange, was '?{_CODE}"),  # Playwright's expect(response).to_be_ok()
        ("", rf"\bassert {_CODE}"),  # pytest shows the value received first: assert 401 == 200
        ("", rf"\b{_CODE}, message="),  # aiohttp
        ("", rf"{_NOT_EXPECTED}\bstatus(?:[ _]?code)?\s*(?:[:=]=?|is|was|of)?\s*'?{_CODE}"),
        ("", rf"{_NOT_EXPECTED}\bhttp(?:/[\d.]+)?:?\s+(?:status\s+)?{_CODE}"),
        (
            "",
            r"\b(?:got|returned|answered|responded(?: with)?|received)\s+(?:http\s+|status\s+)?"
            + _CODE,
        ),
        ("bad credentials", r"\b(?:bad|invalid|wrong) (?:credentials|username or password)\b"),
        (
            "invalid token",
            r"\b(?:invalid|expired|revoked)[ _-]?(?:(?:access|auth|api|bearer|jwt|session)[ _-]?)?"
            r"token\b",
        ),
        ("invalid token", r"\btoken (?:has been |was |is |has )?(?:expired|revoked|invalid)\b"),
        (
            "invalid token",
            r"\b(?:InvalidToken|ExpiredToken|TokenExpired|ExpiredSignatureError|invalid_grant"
            r"|invalid_client)\b",
        ),
        (
            "failed to authenticate",
            r"\bauthentication (?:failed|required|error)\b|\bnot authenticated\b"
            r"|\bunauthenticated\b|\bAuth(?:entication|orization)?Error\b",
        ),
        ("invalid API key", r"\binvalid[ _-]?api[ _-]?key\b"),
        ("unauthorized", r"\bunauthori[sz]ed\b"),
        ("forbidden", r"\bforbidden\b|\baccess denied\b"),
    ),
    Category.NETWORK: (
        (
            "DNS lookup failed",
            r"name or service not known|nodename nor servname|getaddrinfo failed"
            r"|temporary failure in name resolution|no address associated with hostname"
            r"|failed to resolve|NameResolutionError|could not resolve host|ERR_NAME_NOT_RESOLVED",
        ),
        ("Connection refused", r"connection[ _]?refused|ECONNREFUSED"),
        ("connection reset", r"connection[ _]?reset|ECONNRESET|connection[ _]?aborted"),
        (
            "the server closed the connection",
            r"server disconnected|RemoteDisconnected|connection closed by (?:the )?(?:peer|server)"
            r"|broken[ _]?pipe",
        ),
        (
            "network unreachable",
            r"network is unreachable|no route to host|host is unreachable"
            r"|ERR_INTERNET_DISCONNECTED|ERR_ADDRESS_UNREACHABLE",
        ),
        (
            "TLS error",
            r"\bSSL\w*Error\b|certificate[ _]verify[ _]failed|\[SSL[:\]]|\bssl\.|ERR_CERT_\w+"
            r"|ERR_SSL_\w+|tls handshake",
        ),
        ("", r"net::ERR_\w+"),  # Chromium, through Playwright
        (
            "connection error",
            r"\bConnectError\b|\bConnectionError\b|\bNewConnectionError\b|\bRemoteProtocolError\b",
        ),
    ),
    Category.TIMEOUT: (("", r"timeout|timed[ _]out|deadline[ _]exceeded"),),
    Category.TEST_CODE: (
        ("fixture not found", r"\bfixture '[^'\n]*' not found"),
        ("fixture error", r"\bScopeMismatch\b|recursive dependency involving fixture"),
        # At the start of a line, as Python prints an exception, so that a product's error page
        # quoted inside an assertion message does not count.
        ("", rf"^(?:{'|'.join(_IMPORT_ERRORS)}|NameError|UnboundLocalError)\b"),
    ),
}

# Words one of which every built-in rule of a category needs, looked for in the lowercased text
# first: one quick search rules out most failures, which have nothing to do with the category.
_HINTS: Final[Mapping[Category, tuple[str, ...]]] = {
    Category.CREDENTIALS: (
        "401",
        "403",
        "unauthori",
        "forbidden",
        "credential",
        "username or password",
        "token",
        "invalid_grant",
        "invalid_client",
        "expiredsignature",
        "authenticat",
        "autherror",
        "authorizationerror",
        "apikey",
        "api key",
        "api_key",
        "api-key",
        "access denied",
    ),
    Category.NETWORK: (
        "name or service",
        "nodename",
        "getaddrinfo",
        "name resolution",
        "no address associated",
        "failed to resolve",
        "nameresolution",
        "could not resolve",
        "connection",
        "econn",
        "disconnected",
        "broken",
        "unreachable",
        "no route",
        "err_",
        "ssl",
        "certificate",
        "tls handshake",
        "connecterror",
        "remoteprotocolerror",
    ),
    Category.TEST_CODE: (
        "fixture",
        "scopemismatch",
        *(name.lower() for name in _IMPORT_ERRORS),
        "nameerror",
        "unboundlocalerror",
    ),
}

# Raised inside a test file these are bugs in the test; raised in a library they may be the
# product answering something unexpected.
_TEST_BUGS: Final = frozenset({"AttributeError", "TypeError"})
_TEST_FILE: Final = re.compile(r"(?:^|[/\\])(?:test_[^/\\]*|[^/\\]*_test|conftest)\.py$")
# pytest's "E   message" lines; a literal start keeps the search fast on long tracebacks.
_ERROR_LINE: Final = re.compile(r"\nE(?: +([^\n]*))?(?=\n|\Z)")
_UNINDENTED: Final = re.compile(r"^(?!Traceback \(most recent call last\))(\S.*)$", re.MULTILINE)
# pytest's "path.py:12: Error" (long and short styles) and Python's '  File "path.py", line 12'.
_LOCATION: Final = re.compile(
    r'^(?:(?![E>] )(\S[^\n]*?\.py):\d+(?::|$)|[ \t]*File "([^"\n]+)", line \d+)', re.MULTILINE
)
_STATUS: Final = re.compile(r"\b(40[13])\b")
# Enough for any message and the error lines of a chain of exceptions; a long assertion diff is
# cut in the middle rather than scanned whole for each of thousands of failures.
MAX_TEXT: Final = 8_000


@dataclass(frozen=True, slots=True)
class CategoryRules:
    """One category's expressions: the user's, then the built-in ones."""

    category: Category
    extra: tuple[re.Pattern[str], ...]
    rules: tuple[tuple[str, re.Pattern[str]], ...]
    any_rule: re.Pattern[str]  # the built-in rules as one expression, to decide in one search
    hint: re.Pattern[str] | None  # in the lowercased text, needed for any built-in rule to match

    def matches(self, text: str, lowered: str) -> bool:
        """Tell whether a failure's text (and the same text lowercased) is in this category."""
        if any(pattern.search(text) for pattern in self.extra):
            return True
        if self.hint is not None and self.hint.search(lowered) is None:
            return False
        return self.any_rule.search(text) is not None


@dataclass(frozen=True, slots=True)
class Patterns:
    """Every category's expressions, compiled: build once, then categorize many results."""

    categories: tuple[CategoryRules, ...]

    @classmethod
    def compile(cls, extra: Mapping[str, Sequence[str]] | None = None) -> Patterns:
        """Compile the built-in rules and ``extra`` (category -> regexes); ValueError if bad."""
        extra = extra or {}
        problems = [
            f"categories: unknown category {name!r} (choose from {', '.join(ORDER)})"
            for name in extra
            if name not in ORDER
        ]
        compiled: dict[str, list[re.Pattern[str]]] = {}
        for name, expressions in extra.items():
            for expression in expressions:
                try:
                    compiled.setdefault(name, []).append(re.compile(expression, _FLAGS))
                except re.error as exc:
                    problems.append(
                        f"categories.{name}: {expression!r} is not a valid regular expression"
                        f" ({exc})"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return cls(
            tuple(
                CategoryRules(
                    category=category,
                    extra=tuple(compiled.get(category.value, ())),
                    rules=tuple((label, re.compile(rule, _FLAGS)) for label, rule in rules),
                    any_rule=re.compile("|".join(f"(?:{rule})" for _, rule in rules), _FLAGS),
                    hint=_hint(_HINTS.get(category)),
                )
                for category in ORDER
                for rules in (_RULES[category],)
            )
        )

    def rules_of(self, category: Category) -> CategoryRules | None:
        """Return the expressions of one category (None for product, which has none)."""
        return next((c for c in self.categories if c.category is category), None)


def _hint(words: Sequence[str] | None) -> re.Pattern[str] | None:
    return None if words is None else re.compile("|".join(map(re.escape, words)))


@functools.cache
def builtin_patterns() -> Patterns:
    """Return the built-in rules, compiled once per process."""
    return Patterns.compile()


def _patterns(extra: Mapping[str, Sequence[str]] | Patterns | None) -> Patterns:
    if isinstance(extra, Patterns):
        return extra
    return Patterns.compile(extra) if extra else builtin_patterns()


def failure_text(result: TestResult) -> str:
    """Return what a failure is judged by: its exception type, message and error lines."""
    message = result.message or ""
    errors = ""
    if result.traceback:
        lines = _ERROR_LINE.findall("\n" + result.traceback)
        if not lines:  # Python's own format (--tb=native) or --tb=line: no E lines there
            lines = _UNINDENTED.findall(result.traceback)
        errors = "\n".join(lines)
        if len(errors) > MAX_TEXT:
            errors = f"{errors[: MAX_TEXT // 2]}\n{errors[-MAX_TEXT // 2 :]}"
        if message in errors:  # the message is usually the last error line again
            message = ""
    return f"{result.exception or ''}\n{message}\n{errors}"


def innermost_file(traceback: str) -> str | None:
    """Return the file of the innermost frame of a traceback, the one that raised."""
    last = None
    for found in _LOCATION.finditer(traceback):
        last = found
    if last is None:
        return None
    return last.group(1) or last.group(2)


def _broken_test(result: TestResult) -> bool:
    if result.phase == "collect":
        return True
    if result.exception in _TEST_BUGS and result.traceback:
        path = innermost_file(result.traceback)
        return path is not None and _TEST_FILE.search(path) is not None
    return False


def categorize(
    result: TestResult, extra: Mapping[str, Sequence[str]] | Patterns | None = None
) -> Category | None:
    """Return why a failed, errored or timed-out result failed; None for any other outcome."""
    if not result.outcome.is_bad:
        return None
    patterns = _patterns(extra)
    text = failure_text(result)
    lowered = text.lower()
    for rules in patterns.categories:
        category = rules.category
        if category is Category.TIMEOUT and result.outcome is Outcome.TIMEOUT:
            return category
        if rules.matches(text, lowered):
            return category
        if category is Category.TEST_CODE and _broken_test(result):
            return category
    return Category.PRODUCT


def category_of(
    result: TestResult, extra: Mapping[str, Sequence[str]] | Patterns | None = None
) -> Category | None:
    """Return a result's stored category, computing it for results stored without one."""
    if not result.outcome.is_bad:
        return None
    stored = result.category
    if stored is not None and stored in Category._value2member_map_:
        return Category(stored)
    return categorize(result, extra)


def _failing(results: Iterable[TestResult]) -> list[TestResult]:
    return [r for r in results if r.final and r.outcome.is_bad]


def _by_category(failing: list[TestResult], patterns: Patterns) -> dict[Category, list[TestResult]]:
    grouped: dict[Category, list[TestResult]] = {}
    for result in failing:
        grouped.setdefault(category_of(result, patterns) or Category.PRODUCT, []).append(result)
    return grouped


def _most(grouped: Mapping[Category, Sequence[TestResult]]) -> Category:
    # On a tie the category tried first wins: it is the one that explains the others.
    return max(grouped, key=lambda c: (len(grouped[c]), -_RANK[c]))


def dominant_category(
    results: Sequence[TestResult], extra: Mapping[str, Sequence[str]] | Patterns | None = None
) -> Category | None:
    """Return the category of most failing final results; None when none failed."""
    failing = _failing(results)
    if not failing:
        return None
    return _most(_by_category(failing, _patterns(extra)))


def summarize(
    results: Sequence[TestResult], extra: Mapping[str, Sequence[str]] | Patterns | None = None
) -> str | None:
    """Return a headline when most failing final results share one cause other than the product.

    For example ``Monitoring credentials look invalid: 12/12 tests got 401``; None otherwise.
    """
    failing = _failing(results)
    if not failing:
        return None
    patterns = _patterns(extra)
    grouped = _by_category(failing, patterns)
    top = _most(grouped)
    members = grouped[top]
    if top is Category.PRODUCT or len(members) * 2 <= len(failing):
        return None
    share = f"{len(members)}/{len(failing)} test{'s' * (len(failing) != 1)}"
    if top is Category.CREDENTIALS:
        codes = [_status_code(r, patterns) for r in members]
        found = " or ".join(sorted({c for c in codes if c}))
        if found and all(codes):
            return f"Monitoring credentials look invalid: {share} got {found}"
        detail = f" (HTTP {found})" if found else ""
        return f"Monitoring credentials look invalid: {share} failed to authenticate{detail}"
    if top is Category.TIMEOUT:
        return f"Tests are timing out: {share} timed out"
    label = _commonest(_evidence(r, top, patterns) for r in members)
    detail = f" ({label})" if label else ""
    if top is Category.NETWORK:
        return f"The target looks unreachable: {share} could not connect{detail}"
    what = "failed to import or set up" if label in _SETUP_LABELS else "hit a bug in the tests"
    return f"The test code itself is broken: {share} {what}{detail}"


def _commonest(labels: Iterable[str | None]) -> str | None:
    counted = Counter(label for label in labels if label)
    return counted.most_common(1)[0][0] if counted else None


def _evidence(result: TestResult, category: Category, patterns: Patterns) -> str | None:
    """Return what put a result in its category, in a few words."""
    rules = patterns.rules_of(category)
    if rules is not None:
        text = failure_text(result)
        for pattern in rules.extra:
            if found := pattern.search(text):
                return found.group(0)[:80]
        for label, pattern in rules.rules:
            if found := pattern.search(text):
                return label or found.group(0)[:80]
    if category is Category.TEST_CODE:
        if result.phase == "collect":
            return "collection error"
        return result.exception
    return None


def _status_code(result: TestResult, patterns: Patterns) -> str | None:
    """Return the 401 or 403 a credentials failure names as received, if it names one."""
    rules = patterns.rules_of(Category.CREDENTIALS)
    if rules is None:
        return None
    text = failure_text(result)
    for pattern in (*rules.extra, *(p for _, p in rules.rules)):
        for found in pattern.finditer(text):
            if code := _STATUS.search(found.group(0)):
                return code.group(1)
    return None
