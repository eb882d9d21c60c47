"""The demo's alert inbox: a webhook receiver that shows what onwatch would send to people."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

log = logging.getLogger("onwatch.demo.inbox")
KEEP = 50


class Inbox:
    """Keeps the latest notifications received and logs each one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: deque[dict[str, Any]] = deque(maxlen=KEEP)

    def add(self, payload: dict[str, Any]) -> None:
        """Keep a notification and say it out loud."""
        with self.lock:
            self.received.appendleft(payload)
        log.warning(
            "alert received",
            extra={
                "fields": {
                    "event": payload.get("event"),
                    "summary": str(payload.get("summary", ""))[:300],
                }
            },
        )

    def latest(self) -> list[dict[str, Any]]:
        """Return the notifications kept, newest first."""
        with self.lock:
            return list(self.received)
