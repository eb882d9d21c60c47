"""The alerting commands: ``onwatch silence`` and ``onwatch notify test``."""

from __future__ import annotations

import os
import sys
import uuid
from datetime import timedelta

from onwatch.cli.exits import EXIT_FAILED, EXIT_OK
from onwatch.config import Config
from onwatch.errors import ConfigError, DeliveryError


def silence(config: Config, check: str | None, duration: str, reason: str) -> int:
    """Hold the alerts of one check (or all) for ``duration``; runs go on being recorded."""
    from onwatch.durations import INTERVAL_RANGE, bounded_duration
    from onwatch.model import utcnow
    from onwatch.store import open_store

    if check is not None:
        config.select([check])
    try:
        seconds = bounded_duration(duration, *INTERVAL_RANGE)
    except ValueError as exc:
        raise ConfigError([f"--for: {exc}"]) from None
    store = open_store(config.database_url)
    try:
        store.ensure_schema()
        now = utcnow()
        ends = now + timedelta(seconds=seconds)
        store.incidents.add_silence(check, now, ends, reason)
    finally:
        store.close()
    who = check or "every check"
    why = f": {reason}" if reason else ""
    print(f"silenced {who} until {ends:%Y-%m-%d %H:%M:%S} UTC{why}")
    return EXIT_OK


def notify_test(config: Config, channel: str) -> int:
    """Send a test notification through one channel, now, and say how it went."""
    from onwatch.channels import build_channel
    from onwatch.channels.notification import Event, Notification

    if channel not in config.channels:
        known = ", ".join(sorted(config.channels)) or "none; add a [notify.NAME] table"
        raise ConfigError([f"{config.path}: no channel named {channel!r} (known: {known})"])
    from onwatch.secrets import Keeper

    keeper = Keeper(config.base_dir)
    lookup = keeper.resolver(config.settings.secrets)
    transport = build_channel(channel, config.channels[channel], lookup)
    host = os.uname().nodename
    notification = Notification(
        event=Event.TEST,
        key=f"test.{uuid.uuid4()}",
        summary=f"onwatch test notification from {host} to channel '{channel}'",
        severity="info",
        details={"host": host},
    )
    try:
        transport.send([notification])
    except DeliveryError as exc:
        kind = "permanent" if exc.permanent else "temporary"
        print(f"{channel}: NOT sent ({kind} error): {keeper.mask(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{channel}: sent")
    return EXIT_OK
