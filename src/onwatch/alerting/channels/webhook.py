"""Webhook: POST each notification's versioned JSON payload (docs/webhooks.md) to a URL.

``post_json`` and ``safe_url`` are shared with the Alertmanager channel, which speaks the same
HTTP with another body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from onwatch import __version__
from onwatch.alerting.render import clean
from onwatch.durations import parse_duration
from onwatch.errors import DeliveryError

if TYPE_CHECKING:
    from onwatch.alerting.notification import Notification

USER_AGENT = f"onwatch/{__version__}"
# Answers that mean "not now": request timeout, too early, rate limited. Every 5xx too.
TEMPORARY_STATUSES = frozenset({408, 425, 429})


class Webhook:
    """Send one POST per notification."""

    grouped = False

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.url = check_url(name, settings["url"])
        self.timeout = parse_duration(settings.get("timeout", 10))
        self.headers: dict[str, str] = dict(settings.get("headers") or {})

    def send(self, notifications: list[Notification]) -> None:
        """POST each notification's payload, or raise DeliveryError."""
        for n in notifications:
            post_json(
                f"webhook '{self.name}'",
                self.url,
                n.payload(),
                headers={**self.headers, "Idempotency-Key": n.key},
                timeout=self.timeout,
            )


def check_url(name: str, url: object) -> str:
    """Return ``url`` if it is an http(s) URL, else raise ValueError naming the channel."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL as exc:
        raise ValueError(f"channel '{name}': url is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"channel '{name}': url must start with http:// or https://")
    return str(url)


def safe_url(url: str) -> str:
    """Return ``url`` as scheme://host[:port]/path: no user, password or query (tokens)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host  # IPv6
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def post_json(
    label: str, url: str, body: Any, *, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST ``body`` as JSON; return the 2xx response or raise DeliveryError."""
    where = safe_url(url)
    try:
        with httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}) as client:
            response = client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise DeliveryError(f"{label}: no answer within {timeout:g}s from {where}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
        reason = _reason(exc, url)
        raise DeliveryError(f"{label}: cannot reach {where} ({reason})") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # A request httpx refuses to make (bad URL, unsupported scheme) will never succeed.
        reason = _reason(exc, url)
        raise DeliveryError(f"{label}: cannot send to {where} ({reason})", permanent=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    temporary = status in TEMPORARY_STATUSES or status >= 500
    raise DeliveryError(f"{label}: HTTP {status} from {where}", permanent=not temporary)


def _reason(exc: Exception, url: str) -> str:
    # httpx messages name the OS error, but make sure no part of the URL's secrets slips through.
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
