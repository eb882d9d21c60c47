"""The outbound heartbeat: ``onwatch run`` pings a dead man's switch while its scheduler works.

The scheduler loop calls ``maybe_ping`` on every cycle, so when the loop stalls (a deadlock, a
stopped process, a dead host) the pings stop and the external service (healthchecks.io, Cronitor,
an Uptime Kuma push monitor...) raises the alarm that onwatch itself can no longer raise.

A ping never holds the loop up: it is sent from a short-lived thread with a short timeout, and
at most one is in flight, so a hanging endpoint costs one thread, not one per cycle. Failures
are counted in ``Health`` (``onwatch_heartbeat_failures_total``) and logged once per streak:
a broken endpoint must not fill the log with one warning a minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from onwatch import __version__
from onwatch.state.health import Health

__all__ = ["Heartbeat"]

# Named as before this module moved into daemon/: the name is in every JSON log line.
log = logging.getLogger("onwatch.heartbeat")
TIMEOUT = 5.0
METHODS = ("GET", "POST")


class Heartbeat:
    """Pings ``url`` at most every ``every`` seconds, from a background thread."""

    def __init__(
        self,
        url: str,
        method: str,
        every: float,
        health: Health,
        *,
        timeout: float = TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"heartbeat method must be GET or POST, not {method!r}")
        self.url = url
        self.method = method
        self.every = every
        self.health = health
        self.timeout = timeout
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_sent = -math.inf
        self._thread: threading.Thread | None = None
        self._failing = 0  # failures in the current streak
        self._closed = False

    def maybe_ping(self, status: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> None:
        """Start a ping with ``status`` (the POST body) if one is due and none is in flight.

        ``status`` may be a function, called only when a ping is due.
        """
        with self._lock:
            if self._closed:
                return
            now = self._monotonic()
            if now - self._last_sent < self.every:
                return
            if self._thread is not None and self._thread.is_alive():
                # The previous ping is still waiting for its answer: its timeout will count it.
                return
            self._last_sent = now
            body = dict(status() if callable(status) else status)
            self._thread = threading.Thread(
                target=self._ping, args=(body,), name="onwatch-heartbeat", daemon=True
            )
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the ping in flight, if any; return False if it is still going."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def close(self) -> None:
        """Send no more pings and let the one in flight finish (within its timeout)."""
        with self._lock:
            self._closed = True
        # Its own timeout bounds the request; the margin covers connecting and reading.
        self.wait(self.timeout * 2 + 1)

    def _ping(self, status: dict[str, Any]) -> None:
        try:
            with httpx.Client(
                timeout=self.timeout, headers={"User-Agent": f"onwatch/{__version__}"}
            ) as client:
                if self.method == "POST":
                    response = client.post(self.url, json=status)
                else:
                    response = client.get(self.url)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}: {str(exc) or 'no answer'}")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid URL: still a failed ping
            # Only the type: the message of an unexpected error may quote the secret URL.
            self._failed(type(exc).__name__)
            return
        if not response.is_success:
            self._failed(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
            return
        self.health.heartbeat_ok()
        if self._failing:
            log.info(
                "heartbeat answered again",
                extra={"fields": {"to": _origin(self.url), "failures": self._failing}},
            )
            self._failing = 0

    def _failed(self, reason: str) -> None:
        self.health.heartbeat_failed()
        self._failing += 1
        if self._failing == 1:
            log.warning(
                "heartbeat ping failed; warning once until it answers again",
                extra={"fields": {"to": _origin(self.url), "error": reason}},
            )


def _origin(url: str) -> str:
    # Ping URLs carry their secret in the path (hc-ping.com/<uuid>): log where, not what.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}"
