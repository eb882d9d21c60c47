"""Test doubles that keep what they are given: a notification channel and a log handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from onwatch.channels.notification import Notification


class Hook:
    """A channel that keeps what it is sent."""

    name = "hook"
    grouped = False

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.lock = threading.Lock()

    def send(self, notifications: list[Notification]) -> None:
        with self.lock:
            self.sent += notifications


class Records(logging.Handler):
    """Keeps the records of one logger, whatever the logging setup of the process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        """Return the messages logged at ``level``."""
        return [r.getMessage() for r in self.records if r.levelno == level]

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        """Return the messages logged at ``level`` or above."""
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def named(self, message: str) -> list[logging.LogRecord]:
        """Return the records whose message is ``message``."""
        return [r for r in self.records if r.getMessage() == message]


@contextmanager
def logged(name: str) -> Iterator[Records]:
    """Keep what the logger ``name`` (and those below it) logs at INFO and above, meanwhile."""
    logger = logging.getLogger(name)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
