"""Channels whose settings name secrets: ``url = "https://hooks.example.com/${HOOK}"``.

``${NAME}`` refers to a secret of ``[onwatch] secrets``, in any text of a channel's settings
(its URL, its header values…). It is looked up at each send (a rotated webhook token is picked
up without a restart) and the channel is rebuilt only when a value changed. A secret that cannot
be looked up fails the delivery as a temporary error, so the outbox retries it and the channel
shows as failing: never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from onwatch.errors import DeliveryError, SecretError
from onwatch.secrets import fill
from onwatch.secrets import placeholders as names_in

if TYPE_CHECKING:
    from onwatch.channels.base import Channel
    from onwatch.channels.notification import Notification

Lookup = Callable[[list[str]], dict[str, str]]
Build = Callable[[str, Mapping[str, Any]], "Channel"]


def placeholders(settings: Mapping[str, Any]) -> list[str]:
    """Return the secret names a channel's settings refer to, each once, in order."""
    return list(dict.fromkeys(name for text in _texts(settings) for name in names_in(text)))


def expand(settings: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Return ``settings`` with each ``${NAME}`` replaced by its value."""
    return {key: _filled(value, values) for key, value in settings.items()}


def _texts(settings: Mapping[str, Any]) -> Iterator[str]:
    for value in settings.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):  # headers: the values may name secrets, not the names
            yield from (v for v in value.values() if isinstance(v, str))


def _filled(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return fill(value, values)
    if isinstance(value, Mapping):
        return {k: fill(v, values) if isinstance(v, str) else v for k, v in value.items()}
    return value


class SecretChannel:
    """A channel built from settings that name secrets, looked up when it sends."""

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        lookup: Lookup,
        build: Build,
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
            try:
                channel = self._build(self.name, expand(self._settings, values))
            except ValueError as exc:
                # A rotated secret may fix it: temporary. The message must not show the values.
                reason = str(exc)
                for value in filter(None, values.values()):
                    reason = reason.replace(value, "****")
                raise DeliveryError(f"{reason} (once its secrets are filled in)") from None
            self._built = (values, channel)
        self._built[1].send(notifications)
