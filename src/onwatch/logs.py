"""Log lines for people (``key=value``) or for log shippers (one JSON object per line)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Mask = Callable[[str], str]


def _unmasked(text: str) -> str:
    return text


class TextFormatter(logging.Formatter):
    """``2026-11-24T10:00:00Z INFO check=api status=passed ...``, secrets masked."""

    def __init__(self, mask: Mask = _unmasked) -> None:
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(self._line(record))

    def _line(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [stamp, record.levelname, record.getMessage()]
        parts += [f"{key}={_text_value(value)}" for key, value in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the run's fields at the top level, secrets masked."""

    def __init__(self, mask: Mask = _unmasked) -> None:
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        # Masked before encoding: a masked JSON text could lose half of an escape sequence.
        masked = {key: self.mask(v) if isinstance(v, str) else v for key, v in data.items()}
        return json.dumps(masked, default=lambda value: self.mask(str(value)))


def _text_value(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


def configure_logging(level: str = "info", fmt: str = "text", mask: Mask = _unmasked) -> None:
    """Send onwatch's logs to stderr at ``level`` in ``fmt`` (text or json), through ``mask``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(mask) if fmt == "json" else TextFormatter(mask))
    logger = logging.getLogger("onwatch")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
