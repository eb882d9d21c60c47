"""The web commands: ``onwatch serve`` (pages and API, no runs) and ``onwatch token``."""

from __future__ import annotations

import gc
import math
import signal
import threading
from types import FrameType

from onwatch.cli.exits import EXIT_OK
from onwatch.config import Config

# How long a refresh in flight may hold up the exit: the database reads it does are quick.
STOP_SECONDS = 10.0


def serve(config: Config, listen: str | None, *, log_level: str, log_format: str) -> int:
    """Serve the dashboard and API of ``config``'s database until SIGINT or SIGTERM."""
    import logging

    from onwatch.errors import ConfigError
    from onwatch.logs import configure_logging
    from onwatch.state.feed import HealthFeed
    from onwatch.state.health import Health
    from onwatch.state.service import StateService
    from onwatch.store import open_store
    from onwatch.web.app import create_site_app
    from onwatch.web.server import serve as serve_app

    configure_logging(log_level, log_format)
    address = listen or config.settings.listen
    if not address:
        raise ConfigError(["[onwatch] listen is empty: pass --listen HOST:PORT to serve pages"])
    store = open_store(config.database_url)
    store.ensure_schema()
    health = Health([name for name, check in config.checks.items() if check.enabled])
    # No check runs in this process: /metrics shows what the database knows, read again every
    # few seconds (never on a scrape), with no watchdog here to judge lateness.
    feed = HealthFeed(StateService(config, store), health, overdue=True)
    feed.refresh()
    # No scheduler runs in this process: /healthz reports on the database only.
    app = create_site_app(config, health, store, tick_limit=math.inf, listen=address)
    stop = threading.Event()
    following = threading.Thread(
        target=feed.follow, args=(stop,), name="onwatch-health-feed", daemon=True
    )
    gc.collect()
    gc.freeze()  # what is loaded now lives as long as the process: keep it out of collections

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    following.start()
    with serve_app(app, address) as server:
        logging.getLogger("onwatch.web").info(
            "serving the dashboard", extra={"fields": {"url": server.url}}
        )
        print(f"onwatch: dashboard at {server.url}/", flush=True)
        stop.wait()
    following.join(timeout=STOP_SECONDS)
    store.close()
    return EXIT_OK


def token(role: str) -> int:
    """Print a new random token and the config line that lets it in."""
    from onwatch.web.auth import hash_token, new_token

    value = new_token()
    key = "admin_tokens" if role == "admin" else "read_tokens"
    print(f"token: {value}")
    print("add its hash to [onwatch] in onwatch.toml (the token itself is not stored):")
    print(f'{key} = ["{hash_token(value)}"]')
    print("send it as  Authorization: Bearer TOKEN  or paste it into the login page.")
    return EXIT_OK
