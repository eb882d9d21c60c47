"""Real receivers on 127.0.0.1 for notification tests: an HTTP endpoint and a mail server.

``HttpReceiver`` answers every request with the behaviour set on it (``status``, ``delay``, or
``hang`` until stopped), and records what it received. Use it as a context manager.
``smtp_server`` runs an aiosmtpd server whose ``Mailbox`` keeps every message it receives.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from needs import free_port


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Behaviour:
    """How the receiver answers."""

    status: int = 200
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the receiver stops)
    body: bytes = b"{}"


@dataclass
class HttpReceiver:
    """An HTTP server on 127.0.0.1 that records every request."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    received: list[Received] = field(default_factory=list)
    port: int = 0  # 0: any free port; a fixed one lets a receiver come back where one was

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                receiver._handle(self)

            def do_PUT(self) -> None:  # noqa: N802
                receiver._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        # shutdown() waits for serve_forever's next look at its flag: a short poll makes a
        # receiver cheap to stop, so a test may have one of its own.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HttpReceiver:
        """Start serving in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release hanging requests."""
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        behaviour = self.behaviour
        with self.arrived:
            self.received.append(
                Received(
                    method=handler.command,
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
            )
            self.arrived.notify_all()
        if behaviour.hang:
            self.stopping.wait()
            return
        if behaviour.delay:
            time.sleep(behaviour.delay)
        handler.send_response(behaviour.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(behaviour.body)))
        handler.end_headers()
        handler.wfile.write(behaviour.body)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.received)}")
                self.arrived.wait(remaining)
            return list(self.received)

    def wait_for_event(self, event: str, timeout: float = 10.0) -> Received:
        """Wait until a JSON body with ``"event": event`` arrived; return that request."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for received in self.received:
                    if received.json().get("event") == event:
                        return received
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [r.json().get("event") for r in self.received]
                    raise AssertionError(f"expected an {event} request, got {got}")
                self.arrived.wait(remaining)


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives, parsed and as sent."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # each message's bytes as they came over the wire
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.raw.append(bytes(envelope.original_content))
        self.messages.append(message)
        self.arrived.set()
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """Run an SMTP server on a free port of 127.0.0.1; yield its mailbox and port."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
