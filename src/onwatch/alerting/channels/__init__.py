"""Notification transports: one module per kind, a shared protocol, one registry line each.

A channel sends a batch of notifications (most often one) and raises ``DeliveryError`` when it
cannot; ``permanent=True`` tells the outbox that retrying is pointless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from onwatch.alerting.notification import Notification


class Channel(Protocol):
    """A configured notification channel."""

    name: str
    # Human channels (mail, chat) get notifications grouped within a short window; machine
    # channels (webhook, Alertmanager) get one event per transition and group on their side.
    grouped: bool

    def send(self, notifications: list[Notification]) -> None:
        """Deliver the notifications, or raise DeliveryError."""
        ...


def build_channel(
    name: str,
    settings: dict[str, Any],
    secrets: Callable[[list[str]], dict[str, str]] | None = None,
) -> Channel:
    """Return the channel named ``name`` built from its validated ``[notify.NAME]`` settings.

    When its URL or headers name secrets (``${NAME}``), ``secrets`` looks them up at each send;
    without it they are filled with a stand-in, which is enough to validate the settings.
    """
    from onwatch.alerting.channels.secret import SecretChannel, expand, placeholders

    names = placeholders(settings)
    if names:
        if secrets is None:
            return _build(name, expand(settings, dict.fromkeys(names, "secret-stand-in")))
        grouped = settings.get("type", "apprise") == "apprise"
        return SecretChannel(name, settings, secrets, _build, grouped)
    return _build(name, settings)


def _build(name: str, settings: dict[str, Any]) -> Channel:
    kind = settings.get("type", "apprise")
    if kind == "webhook":
        from onwatch.alerting.channels.webhook import Webhook

        return Webhook(name, settings)
    if kind == "alertmanager":
        from onwatch.alerting.channels.alertmanager import Alertmanager

        return Alertmanager(name, settings)
    if kind == "apprise":
        from onwatch.alerting.channels.apprise import Apprise

        return Apprise(name, settings)
    raise ValueError(f"unknown channel type {kind!r}")
