"""Forged Host headers (DNS rebinding) against a real server on 127.0.0.1: refused, no data.

A page on another site that points its own name at 127.0.0.1 makes the browser send that name
in ``Host``; so does ``curl -H "Host: attacker.example:PORT"``. Every kind of route is asked
with forged and proper Host headers over real HTTP; the forged ones must get 400 and none of
the data the proper ones get.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from onwatch.artifacts import ArtifactStore
from onwatch.model import Artifact, Outcome, RunStatus, TestResult
from onwatch.store import open_store
from records import make_run
from web.conftest import Served, make_config, seed

PNG = b"\x89PNG\r\n\x1a\n" + b"secret screenshot" * 4
# TEST-NET-1 (RFC 5737): an address no machine here has.
OTHER_HOST = "192.0.2.7"


@dataclass
class Site:
    served: Served
    port: int
    routes: list[str]  # one of each kind: page, API, /metrics, /healthz, captured file


def _site(root: Path, listen: str, **settings: object) -> Iterator[Site]:
    config = make_config(root, **settings)
    history = seed(config, datetime.now(UTC).replace(microsecond=0))
    source = root / "shot.png"
    source.write_bytes(PNG)
    sha, _ = ArtifactStore(config.artifacts_dir).put(source)
    result = TestResult(
        nodeid="tests/test_api.py::test_checkout",
        outcome=Outcome.FAILED,
        phase="call",
        duration=1.0,
        message="AssertionError: the order page leaked",
        artifacts=(Artifact("screenshot", "shot.png", len(PNG), sha),),
    )
    run = make_run(check="api", status=RunStatus.FAILED, results=(result,))
    store = open_store(config.database_url)
    store.runs.save_run(run)
    store.close()
    served = Served(history, listen=listen)
    routes = [
        "/",
        "/checks/api",
        f"/runs/{run.id}",
        "/api/v1/runs",
        "/api/v1/checks",
        "/metrics",
        "/healthz",
        f"/artifacts/{sha}/shot.png",
    ]
    try:
        yield Site(served, served.server.port, routes)
    finally:
        served.close()


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site as `onwatch run` serves it by default: loopback, anonymous reads allowed."""
    yield from _site(tmp_path_factory.mktemp("loopback"), "127.0.0.1:8787")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A loopback site behind a proxy that passes the public name on."""
    root = tmp_path_factory.mktemp("proxied")
    yield from _site(
        root,
        "127.0.0.1:8787",
        allowed_hosts=["onwatch.example.com", "*.corp.example"],
        base_url="https://dash.example.org/onwatch",
    )


def forged_hosts(port: int) -> list[str]:
    return [
        f"attacker.example:{port}",
        "attacker.example",
        f"localhost.attacker.example:{port}",
        f"127.0.0.1.attacker.example:{port}",
        f"{OTHER_HOST}:{port}",
        OTHER_HOST,
        "",
        " ",
        f"localhost:{port}@attacker.example",
        "2130706433",  # 127.0.0.1 as one number: browsers send it as a name
    ]


def proper_hosts(port: int) -> list[str]:
    return [
        f"127.0.0.1:{port}",
        "127.0.0.1",
        f"localhost:{port}",
        "LOCALHOST",
        f"[::1]:{port}",
        "127.0.0.2",
    ]


def raw_get(port: int, path: str, host_lines: list[str]) -> tuple[int, bytes]:
    """Send a GET with exactly ``host_lines`` as its Host header lines; return status and body."""
    lines = [f"GET {path} HTTP/1.1", *host_lines, "Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_every_forged_host_gets_400_and_no_data_on_every_route(loopback: Site) -> None:
    """Fault: requests with a foreign or malformed Host on every kind of route."""
    sent = refused = 0
    leaks = []
    for path in loopback.routes:
        for host in forged_hosts(loopback.port):
            status, body = raw_get(loopback.port, path, [f"Host: {host}"])
            sent += 1
            refused += status == 400
            if b"api" in body or b"onwatch_" in body or PNG in body:
                leaks.append((path, host))
    print(f"forged Host answered 400: {refused}/{sent}")
    assert (refused, leaks) == (sent, [])


def test_a_request_without_host_or_with_two_is_refused(loopback: Site) -> None:
    """Fault: a Host header that is missing, or sent twice (a proxy may have read either)."""
    for lines in ([], [f"Host: 127.0.0.1:{loopback.port}", "Host: attacker.example"]):
        status, body = raw_get(loopback.port, "/api/v1/runs", lines)
        assert (status, b"runs" in body) == (400, False)


def test_the_refusal_says_why_in_one_plain_line(loopback: Site) -> None:
    """Fault: the curl of the report, a rebinding name on the API of a loopback server."""
    response = httpx.get(
        f"{loopback.served.url}/api/v1/runs",
        headers={"Host": f"attacker.example:{loopback.port}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "allowed_hosts" in response.text
    assert len(response.text.splitlines()) == 1


def test_proper_hosts_still_read_anonymously_on_loopback(loopback: Site) -> None:
    """Control: loopback names and addresses, with or without a port, keep working."""
    answered = []
    for path in loopback.routes:
        for host in proper_hosts(loopback.port):
            status, _ = raw_get(loopback.port, path, [f"Host: {host}"])
            answered.append(status)
    print(f"proper Host answered 200: {answered.count(200)}/{len(answered)}")
    assert answered == [200] * len(answered)


def test_allowed_hosts_admits_the_public_name_and_its_wildcard_only(proxied: Site) -> None:
    """Fault: names near the allowed ones (suffix tricks) behind a proxy's public name."""
    port = proxied.port
    for host in (
        "onwatch.example.com",
        "ONWATCH.example.com:443",
        "a.corp.example",
        "b.a.corp.example",
        "dash.example.org",
    ):
        assert raw_get(port, "/api/v1/checks", [f"Host: {host}"])[0] == 200, host
    for host in (
        "example.com",
        "onwatch.example.com.attacker.example",
        "corp.example",
        "evilcorp.example",
        "onwatch-example.com",
        "example.org",
    ):
        assert raw_get(port, "/api/v1/checks", [f"Host: {host}"])[0] == 400, host


def test_a_server_on_every_address_answers_its_own_addresses_not_another_host(
    tmp_path: Path,
) -> None:
    """Fault: listen on 0.0.0.0, asked with another machine's address and with a name."""
    from onwatch.web.hosts import _machine_addresses
    from web.conftest import READ_TOKEN

    own = [a for a in _machine_addresses() if ":" not in a and not a.startswith("127.")]
    for site in _site(tmp_path, "0.0.0.0:8787"):
        auth = f"Authorization: Bearer {READ_TOKEN}"
        port = site.port
        for host in [f"{a}:{port}" for a in own] + [f"127.0.0.1:{port}"]:
            assert raw_get(port, "/api/v1/checks", [f"Host: {host}", auth])[0] == 200, host
        for host in (f"{OTHER_HOST}:{port}", f"{socket.gethostname()}:{port}"):
            assert raw_get(port, "/api/v1/checks", [f"Host: {host}", auth])[0] == 400, host
