"""Channels whose URL or headers name secrets: ``url = "https://hooks.example.com/${HOOK}"``.

``${NAME}`` refers to a secret of ``[onwatch] secrets``. It is looked up at each send (a rotated
webhook token is picked up without a restart) and the channel is rebuilt only when a value
changed. A secret that cannot be looked up fails the delivery as a temporary error, so the
outbox retries it and the channel shows as failing: never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from onwatch.errors import DeliveryError, SecretError
from onwatch.secrets import fill
from onwatch.secrets import placeholders as names_in

if TYPE_CHECKING:
    from onwatch.alerting.channels import Channel
    from onwatch.alerting.notification import Notification

Lookup = Callable[[list[str]], dict[str, str]]


def placeholders(settings: dict[str, Any]) -> list[str]:
    """Return the secret names a channel's settings refer to, each once, in order."""
    texts = [str(settings.get("url", "")), *dict(settings.get("headers") or {}).values()]
    return list(dict.fromkeys(name for text in texts for name in names_in(text)))


def expand(settings: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Return ``settings`` with each ``${NAME}`` replaced by its value."""

    expanded = dict(settings)
    expanded["url"] = fill(str(settings.get("url", "")), values)
    if settings.get("headers"):
        expanded["headers"] = {
            k: fill(str(v), values) for k, v in dict(settings["headers"]).items()
        }
    return expanded


class SecretChannel:
    """A channel built from settings that name secrets, looked up when it sends."""

    def __init__(
        self,
        name: str,
        settings: dict[str, Any],
        lookup: Lookup,
        build: Callable[[str, dict[str, Any]], Channel],
        grouped: bool,
    ) -> None:
        self.name = name
        self.grouped = grouped
        self._settings = settings
        self._names = placeholders(settings)
        self._lookup = lookup
        self._build = build
        self._built: tuple[dict[str, str], Channel] | None = None

    def send(self, notifications: list[Notification]) -> None:
        """Look the secrets up, then deliver through the channel they complete."""
        try:
            values = self._lookup(self._names)
        except SecretError as exc:
            raise DeliveryError("; ".join(exc.problems)) from None
        if self._built is None or self._built[0] != values:
            self._built = (values, self._build(self.name, expand(self._settings, values)))
        self._built[1].send(notifications)
