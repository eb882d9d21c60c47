"""Which ``Host`` names the web server answers, so that DNS rebinding reads nothing.

A page on another site can point its own name at 127.0.0.1 (DNS rebinding) and then read a
loopback server as if it were its own origin: the browser sends that name in ``Host``. So the
server answers only the names it is meant to serve: loopback names and addresses, the host of
its ``listen`` address, the host of ``[onwatch] base_url`` and ``[onwatch] allowed_hosts``.
When ``listen`` names no host (``0.0.0.0``, ``[::]``, ``:PORT``), the machine's own addresses
at start-up take its place: an address cannot be rebound, but a name can, so names are only
ever allowed by configuration. Ports are not compared: a proxy may serve the same name on
another port.

Starlette's ``TrustedHostMiddleware`` is not used: its IPv6 and port handling differ between
the versions onwatch supports, and it redirects to ``www.`` names on its own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_NAMES", "HostCheck", "HostPolicy", "host_of", "wildcard_listen"]

LOOPBACK_NAMES = frozenset({"localhost"})
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\s:\[\]/@]+))(?::\d{0,5})?")
REFUSAL = (
    b"400 Bad Request: this server does not answer to the host name in this request. "
    b"Use its address, or add the name to [onwatch] allowed_hosts.\n"
)


def host_of(header: str) -> str | None:
    """Return the host of a ``Host`` header, lower case, without port or brackets; None if bad."""
    found = _HOST.fullmatch(header.strip())
    if found is None:
        return None
    if found["v6"] is not None:
        try:
            return str(ipaddress.IPv6Address(found["v6"]))
        except ValueError:
            return None
    name = found["name"].lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name or None


def wildcard_listen(host: str) -> bool:
    """Tell whether a listen host accepts connections on every address (names no host)."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """The host names and addresses a server answers, and the ``*.domain`` patterns."""

    names: frozenset[str]
    suffixes: tuple[str, ...] = ()
    any_host: bool = False

    @classmethod
    def build(
        cls,
        listen: str,
        allowed: Sequence[str] = (),
        own_addresses: Iterable[str] | None = None,
    ) -> HostPolicy:
        """Return the policy of a server on ``listen`` (HOST:PORT) with ``allowed`` names.

        ``own_addresses`` stands in for the machine's addresses when ``listen`` names no host.
        """
        names = set(LOOPBACK_NAMES)
        listen_host = listen.rpartition(":")[0] if ":" in listen else listen
        if wildcard_listen(listen_host):
            names.update(_normal(a) for a in (own_addresses or _machine_addresses()))
        else:
            names.add(_normal(listen_host))
        suffixes = []
        for entry in allowed:
            entry = entry.strip().lower()
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry != "*":
                names.add(_normal(entry))
        return cls(frozenset(names), tuple(suffixes), any_host="*" in allowed)

    def allows(self, header: str | None) -> bool:
        """Tell whether a request with this ``Host`` header is answered."""
        if self.any_host:
            return True
        host = host_of(header or "")
        if host is None:
            return False
        if host in self.names or host.endswith(self.suffixes):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


class HostCheck:
    """ASGI middleware: answer 400 to any request whose ``Host`` the policy does not allow."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass allowed requests on; refuse the others before any route sees them."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = None
        for key, value in scope.get("headers", ()):
            if key == b"host":
                if host is not None:  # two Host headers: which one would a proxy have read?
                    host = None
                    break
                host = value.decode("latin-1")
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(REFUSAL)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": REFUSAL})


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host_of(host) or host.lower()


def _machine_addresses() -> list[str]:
    import psutil

    addresses = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            # IPv6 link-local addresses carry their interface: fe80::1%eth0.
            address = entry.address.partition("%")[0]
            try:
                addresses.append(str(ipaddress.ip_address(address)))
            except ValueError:
                continue  # a MAC address
    return addresses
