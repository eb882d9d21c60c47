"""The channel kinds: one line each, from ``type = "…"`` to the kind's settings and transport.

The configuration validates each ``[notify.NAME]`` table with the settings model its ``type``
picks here, so this module imports the kinds' modules and nothing of the alerting engine, the
outbox or the rules. A new kind is a module beside ``webhook.py`` (its settings model with
``type: Literal["KIND"]``, its transport class with ``grouped``), one line below, one test file
and its section in docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from onwatch.channels.alertmanager import Alertmanager, AlertmanagerSettings
from onwatch.channels.apprise import Apprise, AppriseSettings
from onwatch.channels.base import Channel, ChannelSettings
from onwatch.channels.webhook import Webhook, WebhookSettings

S = TypeVar("S", bound=ChannelSettings)
S_contra = TypeVar("S_contra", bound=ChannelSettings, contravariant=True)


class Transport(Protocol[S_contra]):
    """A channel class: built from its name and validated settings; grouped or not."""

    grouped: bool

    def __call__(self, name: str, settings: S_contra) -> Channel:
        """Return the channel."""
        ...


@dataclass(frozen=True)
class Kind(Generic[S]):
    """A kind of channel: the model of its ``[notify.NAME]`` table and the class that sends."""

    settings: type[S]
    transport: Transport[S]

    def build(self, name: str, table: Mapping[str, Any]) -> Channel:
        """Return the channel ``name`` of this kind; raise pydantic's error for a bad table."""
        return self.transport(name, self.settings.model_validate(table))


# The kind of a table that names none.
DEFAULT = "apprise"

KINDS: dict[str, Kind[Any]] = {
    "apprise": Kind(AppriseSettings, Apprise),
    "webhook": Kind(WebhookSettings, Webhook),
    "alertmanager": Kind(AlertmanagerSettings, Alertmanager),
}


def kind_of(table: Mapping[str, Any]) -> Kind[Any]:
    """Return the kind a ``[notify.NAME]`` table names, or raise ValueError listing the known."""
    name = table.get("type", DEFAULT)
    if isinstance(name, str) and name in KINDS:
        return KINDS[name]
    raise ValueError(f"unknown channel type {name!r}; known types: {', '.join(sorted(KINDS))}")
