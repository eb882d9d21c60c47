"""Webhook: POST each notification's versioned JSON payload (docs/webhooks.md) to a URL.

``HttpSettings``, ``post_json`` and ``safe_url`` are shared with the Alertmanager channel, which
speaks the same HTTP with another body. httpx is imported where it is used: validating a
configuration imports every kind's module, and most configurations have no HTTP channel.
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from onwatch import __version__
from onwatch.channels.base import ChannelSettings, with_stand_ins
from onwatch.channels.render import clean
from onwatch.errors import DeliveryError

if TYPE_CHECKING:
    import ssl

    import httpx

    from onwatch.channels.notification import Notification

USER_AGENT = f"onwatch/{__version__}"
# Answers that mean "not now": request timeout, too early, rate limited. Every 5xx too.
TEMPORARY_STATUSES = frozenset({408, 425, 429})
# After a request went unanswered within the timeout, the next ones wait twice as long, up to
# this many times the timeout.
PATIENCE_LIMIT = 4.0


class Patience:
    """How long a channel waits for an answer: longer after the last one came too late.

    A request that got no answer in time may still have been acted on: the receiver then gets
    one copy per attempt. Waiting longer next time lets a slow receiver's answer arrive, so that
    it gets a few copies rather than one per attempt. An answer in time brings the wait back.
    """

    def __init__(self, timeout: float, *, limit: float = PATIENCE_LIMIT) -> None:
        self.timeout = timeout
        self.wait = timeout  # for the next request
        self.longest = timeout * max(1.0, limit)

    def unanswered(self) -> None:
        """Note that a request sent whole got no answer within ``wait``."""
        self.wait = min(self.wait * 2, self.longest)

    def answered(self, seconds: float) -> None:
        """Note an answer that took ``seconds``."""
        if seconds <= self.timeout:
            self.wait = self.timeout


class HttpSettings(ChannelSettings):
    """The keys of a channel that POSTs to an http(s) URL."""

    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers, e.g. an Authorization header; values may hold ${NAME}.",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        check_url(url)
        return url


class WebhookSettings(HttpSettings):
    """A ``[notify.NAME]`` table with ``type = "webhook"``."""

    type: Literal["webhook"] = Field(
        default="webhook", description="webhook: a JSON POST of the versioned payload."
    )


class Webhook:
    """Send one POST per notification."""

    grouped = False

    def __init__(self, name: str, settings: WebhookSettings) -> None:
        self.name = name
        self.url = settings.url
        self.timeout = settings.timeout
        self.headers = dict(settings.headers)
        self.patience = Patience(settings.timeout)

    def send(self, notifications: list[Notification]) -> None:
        """POST each notification's payload, or raise DeliveryError."""
        for n in notifications:
            # Every copy of one notification carries its key: a receiver drops the repeats.
            post_json(
                f"webhook '{self.name}'",
                self.url,
                n.payload(),
                headers={**self.headers, "Idempotency-Key": n.key},
                timeout=self.patience,
            )


def check_url(url: str) -> None:
    """Raise ValueError unless ``url`` (where ``${NAME}`` may stand) is an http(s) URL."""
    import httpx

    try:
        parsed = httpx.URL(with_stand_ins(url))
    except httpx.InvalidURL as exc:
        raise ValueError(f"{url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(
            f"an http(s) URL is needed: it starts with http:// or https:// and names a host "
            f"(got {url!r})"
        )


def safe_url(url: str) -> str:
    """Return ``url`` as scheme://host[:port]/path: no user, password or query (tokens)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host  # IPv6
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def post_json(
    label: str, url: str, body: Any, *, headers: dict[str, str], timeout: float | Patience
) -> httpx.Response:
    """POST ``body`` as JSON; return the 2xx response or raise DeliveryError.

    With a ``Patience``, wait as long as it says and tell it how the answer came.
    """
    import httpx

    patience = timeout if isinstance(timeout, Patience) else None
    wait = timeout.wait if isinstance(timeout, Patience) else timeout
    where = safe_url(url)
    started = time.monotonic()
    try:
        with httpx.Client(
            timeout=wait, headers={"User-Agent": USER_AGENT}, verify=_tls_context()
        ) as client:
            response = client.post(url, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        if patience is not None and isinstance(exc, httpx.ReadTimeout):
            patience.unanswered()  # sent whole, maybe acted on: wait longer next time
        raise DeliveryError(f"{label}: no answer within {wait:g}s from {where}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
        reason = _reason(exc, url)
        raise DeliveryError(f"{label}: cannot reach {where} ({reason})") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # A request httpx refuses to make (bad URL, unsupported scheme) will never succeed.
        reason = _reason(exc, url)
        raise DeliveryError(f"{label}: cannot send to {where} ({reason})", permanent=True) from None
    if patience is not None:
        patience.answered(time.monotonic() - started)
    status = response.status_code
    if 200 <= status < 300:
        return response
    temporary = status in TEMPORARY_STATUSES or status >= 500
    raise DeliveryError(f"{label}: HTTP {status} from {where}", permanent=not temporary)


@cache
def _tls_context() -> ssl.SSLContext:
    """Return the certificate store every send shares, loaded once."""
    # Loading it is most of the cost of a send to a fast receiver (some 50 ms): made afresh for
    # each one, it capped a channel at a few deliveries a second.
    import httpx

    return httpx.create_ssl_context()


def _reason(exc: Exception, url: str) -> str:
    # httpx messages name the OS error, but make sure no part of the URL's secrets slips through.
    import httpx

    text = clean(str(exc), one_line=True, limit=200) or type(exc).__name__
    secrets = [url]
    try:
        parsed = httpx.URL(url)
        secrets += [parsed.password or "", parsed.query.decode(errors="replace")]
    except httpx.InvalidURL:
        pass
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return text
