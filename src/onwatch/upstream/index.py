"""Poll a Python package index for the releases of one project.

``fetch_releases`` reads the project's page of the index's simple repository API through
``pypi-simple``, asking for PEP 691 JSON and accepting PEP 503 HTML (indexes such as pypiserver
only speak HTML; PyPI, devpi and most hosted indexes speak both), and groups the page's files
into ``Release`` objects by version.

Every way a poll can fail is one exception, ``onwatch.errors.IndexProblem``, whose ``kind``
says which:

    unreachable   no answer: connection refused, name not resolved, TLS failure, timeout,
                  or a URL that cannot be requested at all
    auth          HTTP 401 or 403: credentials missing or refused
    not-found     HTTP 404: no such project on this index (or the URL is not the simple API)
    garbage       a 200 answer that is neither a PEP 691 JSON nor a PEP 503 HTML project page
    http          any other HTTP error status (a 5xx: the index has trouble)

Its message names the index and the project and says what to check. Credentials in the index
URL (``https://user:token@host/simple``) or passed as ``auth`` never appear in it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError
from pypi_simple import (
    ACCEPT_ANY,
    DistributionPackage,
    NoSuchProjectError,
    ProjectPage,
    PyPISimple,
    UnsupportedContentTypeError,
    UnsupportedRepoVersionError,
)

from onwatch.errors import IndexProblem, ProblemKind
from onwatch.upstream.releases import Release, latest, newer_than, settled

# The pure choice of releases lives in ``releases``; it is re-exported here so that a poller
# needs one import for fetching and choosing.
__all__ = [
    "PUBLIC_INDEX",
    "Release",
    "fetch_releases",
    "latest",
    "newer_than",
    "redact",
    "settled",
]

PUBLIC_INDEX = "https://pypi.org/simple"

log = logging.getLogger("onwatch.upstream")

# The userinfo of a URL: everything between "scheme://" and the last "@" before the path.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
# urllib3 starts its messages with the connection ("HTTPConnection(host='h', port=1): "), which
# the message names already.
_CONNECTION_PREFIX = re.compile(r"^(?:<[^>]*>|HTTPS?Connection\([^)]*\)): ")


def fetch_releases(
    index_url: str,
    package: str,
    *,
    timeout: float = 30.0,
    auth: tuple[str, str] | None = None,
) -> list[Release]:
    """Return the releases of ``package`` on the index at ``index_url``, lowest version first.

    ``timeout`` bounds connecting and each wait for data, not the whole transfer. Raise
    ``IndexProblem`` when the index cannot be reached or read.
    """
    where = redact(index_url)
    secrets = _secrets(index_url, auth)

    def problem(kind: ProblemKind, message: str, status: int | None = None) -> IndexProblem:
        return IndexProblem(kind, message, index=where, package=package, status=status)

    # Each problem is raised "from None": the library's exception, chained, would print the
    # request URL with its credentials in every traceback.
    try:
        with PyPISimple(endpoint=index_url, auth=auth, accept=ACCEPT_ANY) as client:
            page = client.get_project_page(package, timeout=timeout)
    except NoSuchProjectError:
        raise problem(
            "not-found",
            f"no project named {package!r} on {where}: check the package name, and that the "
            "index URL is the index's simple API (it usually ends in /simple)",
            404,
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            fix = (
                "check the credentials in the index URL"
                if auth is not None or _USERINFO.match(index_url)
                else "the index needs credentials: put them in the index URL "
                "(https://USER:PASSWORD@host/simple)"
            )
            raise problem(
                "auth",
                f"the index {where} refused access to {package!r} (HTTP {status}): {fix}",
                status,
            ) from None
        fix = (
            "the index has trouble; the next poll tries again"
            if status is not None and status >= 500
            else "check the index URL"
        )
        raise problem(
            "http", f"the index {where} answered HTTP {status} for {package!r}: {fix}", status
        ) from None
    except requests.exceptions.JSONDecodeError:
        # Before RequestException, which it also is: the index did answer.
        raise problem(
            "garbage",
            f"the index {where} answered for {package!r} with a body that is not JSON, "
            "although its content type says PEP 691 JSON: check the index",
        ) from None
    except requests.Timeout:
        raise problem(
            "unreachable",
            f"cannot reach the index {where} for {package!r}: no answer within {timeout:g} s; "
            "check that the index is up and reachable from this host",
        ) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ):
        # Their text repeats the URL, credentials included: none of it goes in the message.
        raise problem(
            "unreachable",
            f"cannot request {package!r} from {where}: it is not a valid http(s) URL; "
            "check the index URL",
        ) from None
    except requests.RequestException as exc:
        reason = _scrub(_transport_reason(exc), secrets)
        raise problem(
            "unreachable",
            f"cannot reach the index {where} for {package!r}: {reason}; "
            "check the index URL and that the index is up and reachable from this host",
        ) from None
    except UnsupportedContentTypeError as exc:
        raise problem(
            "garbage",
            f"the index {where} answered for {package!r} with content type "
            f"{exc.content_type!r}, not a PEP 691 JSON or PEP 503 HTML page: check that the "
            "index URL is the index's simple API (it usually ends in /simple)",
        ) from None
    except UnsupportedRepoVersionError as exc:
        raise problem(
            "garbage",
            f"the index {where} serves {package!r} in simple API version "
            f"{exc.declared_version}, newer than this onwatch reads "
            f"({exc.supported_version}): upgrade onwatch and pypi-simple",
        ) from None
    except (ValueError, Warning) as exc:
        # ValueError: pydantic's validation of a PEP 691 document, an invalid version string
        # in it, HTML that cannot be decoded. Warning: where warnings are errors, the HTML
        # parser's complaint about a body that looks like a URL or XML rather than a page.
        # Either way the index answered, but not with a project page.
        raise problem(
            "garbage",
            f"the index {where} answered for {package!r} with a page that cannot be read "
            f"({_scrub(_describe(exc), secrets)}): check the index",
        ) from None

    if page.repository_version is None and not any(f.version for f in page.packages):
        # A real project page either declares its API version (PEP 629) or links to files. A
        # login page or a web site answering 200 does neither; reading it as "no releases"
        # would hide the problem for ever.
        raise problem(
            "garbage",
            f"the index {where} answered for {package!r} with an HTML page that links to no "
            "package files: check that the index URL is the index's simple API (it usually "
            "ends in /simple) and not a login or web page",
        )
    return _releases(page, package, where)


def redact(url: str) -> str:
    """Return ``url`` with any credentials in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", url)


def _releases(page: ProjectPage, package: str, where: str) -> list[Release]:
    wanted = canonicalize_name(package)
    by_version: dict[Version, list[DistributionPackage]] = {}
    skipped: list[str] = []
    for file in page.packages:
        if file.version is None or file.project is None:
            skipped.append(file.filename)
            continue
        if canonicalize_name(file.project) != wanted:
            skipped.append(file.filename)
            continue
        try:
            version = Version(file.version)
        except InvalidVersion:
            skipped.append(file.filename)
            continue
        # Keyed by Version, so "1.0" and "1.0.0" (equal in PEP 440) are one release.
        by_version.setdefault(version, []).append(file)
    if skipped:
        log.info(
            "%s on %s: left out %d file(s) whose name holds no PEP 440 version of it: %s",
            package,
            where,
            len(skipped),
            ", ".join(skipped[:10]) + (", ..." if len(skipped) > 10 else ""),
        )
    return [
        Release(
            version=str(version),
            files=len(files),
            yanked=all(f.is_yanked for f in files),
            uploaded_at=_earliest(f.upload_time for f in files),
        )
        for version, files in sorted(by_version.items())
    ]


def _earliest(times: Iterable[datetime | None]) -> datetime | None:
    # PEP 700 times are UTC; one written without a zone is read as UTC too, so that it can be
    # compared with an aware "now".
    known = [t if t.tzinfo is not None else t.replace(tzinfo=UTC) for t in times if t]
    return min(known, default=None)


def _secrets(index_url: str, auth: tuple[str, str] | None) -> list[str]:
    found: list[str] = []
    match = _USERINFO.match(index_url)
    if match:
        userinfo = match.group(0)[len(match.group(1)) : -1]
        password = userinfo.partition(":")[2]
        # A lone user name is often a token (https://TOKEN@host/simple): hide it too.
        found += [userinfo, password] if password else [userinfo]
    if auth is not None:
        found.append(auth[1])
    return [secret for secret in found if secret]


def _scrub(text: str, secrets: list[str]) -> str:
    # For text that comes from a library: the messages onwatch writes itself are built from the
    # redacted URL and need no scrubbing (which would mangle them when a secret is short).
    for secret in sorted(secrets, key=len, reverse=True):
        for form in {secret, unquote(secret), quote(secret, safe=""), quote(unquote(secret))}:
            if form:
                text = text.replace(form, "***")
    return text


def _transport_reason(exc: requests.RequestException) -> str:
    # requests wraps urllib3's MaxRetryError, whose "reason" is the socket-level error.
    inner: object = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", None) or inner
    return _CONNECTION_PREFIX.sub("", str(inner)) or type(exc).__name__


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
