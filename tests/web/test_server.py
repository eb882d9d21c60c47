"""Serving the web app on a background thread: binding, stopping, and a port already taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from onwatch.errors import OnwatchError
from onwatch.state.health import Health
from onwatch.web.app import create_app
from onwatch.web.server import parse_listen, serve


@pytest.fixture
def app() -> FastAPI:
    return create_app(Health(["api"]), db_ok=lambda: True, tick_limit=60)


@pytest.fixture
def taken() -> Iterator[int]:
    """Yield a port on 127.0.0.1 that another socket is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_it_serves_on_a_free_port_and_stops(app: FastAPI) -> None:
    server = serve(app, "127.0.0.1:0")
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=5)


def test_it_can_listen_on_the_same_port_again_after_a_stop(app: FastAPI) -> None:
    with serve(app, "127.0.0.1:0") as first:
        # A connection leaves the port in TIME_WAIT: a restart must still be able to bind.
        assert httpx.get(first.url + "/metrics", timeout=5).status_code == 200
    with serve(app, f"127.0.0.1:{first.port}") as second:
        assert httpx.get(second.url + "/metrics", timeout=5).status_code == 200


def test_a_port_in_use_is_an_onwatch_error_naming_the_address(app: FastAPI, taken: int) -> None:
    with pytest.raises(OnwatchError) as raised:
        serve(app, f"127.0.0.1:{taken}")
    message = str(raised.value)
    assert f"cannot listen on 127.0.0.1:{taken}: address already in use" in message
    assert "[onwatch] listen" in message


@pytest.mark.parametrize("listen", ["8787", "localhost", "127.0.0.1:http", "::1:8787", ":99999"])
def test_a_listen_that_is_not_host_port_is_an_onwatch_error(listen: str) -> None:
    with pytest.raises(OnwatchError, match="is not HOST:PORT"):
        parse_listen(listen)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8787", ("::1", 8787)),
        (":8787", ("", 8787)),
    ],
)
def test_it_reads_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected
