"""Serve an ASGI app with uvicorn on a background thread of ``onwatch run``.

The listening socket is bound here, before uvicorn starts, so that a port already in use fails
at once with the operating system's own reason (in use, not permitted, no such address) and the
``listen`` setting that caused it, instead of a uvicorn log line and a ``SystemExit`` in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from onwatch.errors import OnwatchError

__all__ = ["WebServer", "parse_listen", "serve"]

START_TIMEOUT = 15.0


class WebServer:
    """An app served by uvicorn on a background thread; stop it or use it with ``with``."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket
    ) -> None:
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port  # the one bound, useful after asking for port 0
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{netloc}:{port}"
        self._server = server
        self._thread = thread
        self._socket = sock

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down gracefully and wait for its thread; later calls do nothing."""
        self._server.should_exit = True
        self._thread.join(timeout)
        # uvicorn closes the socket on a clean shutdown; this covers the other paths.
        self._socket.close()

    def __enter__(self) -> WebServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WebServer({self.url!r})"


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6) or raise OnwatchError saying why."""
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        sep = ""  # an IPv6 address without brackets: its port cannot be told apart
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise OnwatchError(
            f"listen {listen!r} is not HOST:PORT (e.g. 127.0.0.1:8787 or [::1]:8787); "
            'set [onwatch] listen = "" to turn the web server off'
        )
    return host, int(port_text)


def serve(app: Any, listen: str) -> WebServer:
    """Start ``app`` on ``listen`` (HOST:PORT) in a background thread; return once it serves."""
    host, port = parse_listen(listen)
    sock = _bind(host, port, listen)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        # Runs inside onwatch's own process: leave that process's logging setup alone.
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=_run, args=(server, sock), name=f"onwatch-web-{listen}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise OnwatchError(f"the web server could not start on {listen}")
        time.sleep(0.01)
    return WebServer(server, thread, sock)


def _bind(host: str, port: int, listen: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR: a restart is not refused while old connections
        # linger in TIME_WAIT, but a port another process listens on still is.
        sock = socket.create_server((host, port), family=family)
    except socket.gaierror as exc:
        raise OnwatchError(f"cannot listen on {listen}: unknown host {host!r} ({exc})") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OnwatchError(
            f"cannot listen on {listen}: {reason.lower()}; stop what is using it, or set "
            '[onwatch] listen to a free HOST:PORT ("" turns the web server off)'
        ) from None
    # Accepted connections inherit this. Without it, a response written in two parts waits
    # for the client's delayed ACK: 40 ms added to every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run uvicorn on ``sock`` until it is told to stop."""
    try:
        server.run(sockets=[sock])
    except SystemExit:
        # uvicorn exits when its startup fails; serve() sees the thread end and reports that.
        pass
