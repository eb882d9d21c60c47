"""Notification transports: one module per kind, each owning its settings; one registry line each.

``notification`` is the record every channel carries and ``render`` turns it into text for
each format (pure, escaping included). ``base`` holds the ``Channel`` protocol and the keys
every kind has, ``registry`` maps each ``type`` to its settings model and transport class,
``secret`` fills ``${NAME}`` at send time. ``build_channel`` turns a validated
``[notify.NAME]`` table into a channel. This package sits below ``config`` and ``alerting``:
it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from onwatch.channels.base import Channel
from onwatch.channels.registry import kind_of
from onwatch.channels.secret import SecretChannel, placeholders

__all__ = ["Channel", "build_channel"]


def build_channel(
    name: str,
    settings: Mapping[str, Any],
    secrets: Callable[[list[str]], dict[str, str]] | None = None,
) -> Channel:
    """Return the channel named ``name`` built from its ``[notify.NAME]`` settings.

    When its settings name secrets (``${NAME}``), ``secrets`` looks them up at each send.
    Raise ValueError, in one line naming the channel, when the settings are not valid.
    """
    try:
        kind = kind_of(settings)
    except ValueError as exc:
        raise ValueError(f"channel '{name}': {exc}") from None
    names = placeholders(settings)
    if not names:
        return _build(name, settings)
    if secrets is None:
        raise ValueError(f"channel '{name}' names secrets ({', '.join(names)}) and no lookup")
    return SecretChannel(name, settings, secrets, _build, kind.transport.grouped)


def _build(name: str, settings: Mapping[str, Any]) -> Channel:
    try:
        return kind_of(settings).build(name, settings)
    except ValidationError as exc:
        # Messages only: pydantic's own text would show the values, secrets included.
        reasons = [
            f"{'.'.join(map(str, error['loc'])) or 'settings'}: "
            + str(error.get("ctx", {}).get("error") or error["msg"])
            for error in exc.errors()
        ]
        raise ValueError(f"channel '{name}': {'; '.join(reasons)}") from None
