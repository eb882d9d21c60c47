"""What every channel kind shares: the ``Channel`` protocol and the keys of every table.

A channel sends a batch of notifications (most often one) and raises ``DeliveryError`` when it
cannot; ``permanent=True`` tells the outbox that retrying is pointless. Its settings are a
pydantic model derived from ``ChannelSettings``, validated when the configuration is loaded and
again when the channel is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from onwatch.durations import Duration
from onwatch.secrets import fill, placeholders

if TYPE_CHECKING:
    from onwatch.channels.notification import Notification

# What ``${NAME}`` becomes while a URL is checked: its value is only known when it is sent.
STAND_IN = "secret-stand-in"


class Channel(Protocol):
    """A configured notification channel."""

    name: str
    # Human channels (mail, chat) get notifications grouped within a short window; machine
    # channels (webhook, Alertmanager) get one event per transition and group on their side.
    grouped: bool

    def send(self, notifications: list[Notification]) -> None:
        """Deliver the notifications, or raise DeliveryError."""
        ...


class ChannelSettings(BaseModel):
    """The keys of every ``[notify.NAME]`` table; each kind adds ``type`` and its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        description="Where notifications go, in the kind's own form; ${NAME} stands for a "
        "secret of [onwatch] secrets.",
    )
    timeout: Duration = Field(
        default=10.0,
        description="Limit of one delivery attempt; a webhook that got no answer in time waits "
        "up to four times as long on the next attempts.",
    )


def with_stand_ins(text: str) -> str:
    """Return ``text`` with each ``${NAME}`` replaced by a stand-in, to check its shape."""
    return fill(text, dict.fromkeys(placeholders(text), STAND_IN))
