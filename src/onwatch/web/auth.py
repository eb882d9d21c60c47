"""Who may see and do what on onwatch's web server: roles, tokens, CSRF.

Three roles: ``anonymous`` sees nothing (except ``/healthz``, the login page and the stylesheet),
``read`` sees every page, the API and ``/metrics``, ``admin`` may also trigger runs and add
silences. Anonymous callers are treated as ``read`` when the server listens on loopback only:
whoever can reach it is already on the machine.

Tokens are never stored: the config holds ``sha256:HEX`` of each (``onwatch token`` makes one),
and ``ONWATCH_TOKEN`` / ``ONWATCH_READ_TOKEN`` name one admin and one read token at run time.
A presented token is hashed and compared with every known hash in constant time, so neither the
answer nor its timing says which hash came close. Browsers carry the token in an HttpOnly,
SameSite=Strict cookie set by the login form; scripts send ``Authorization: Bearer TOKEN``.
Every form that changes something carries a CSRF field bound to the caller's token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "ADMIN_ENV",
    "COOKIE",
    "READ_ENV",
    "Auth",
    "Role",
    "hash_token",
    "is_loopback",
    "new_token",
]

ADMIN_ENV = "ONWATCH_TOKEN"
READ_ENV = "ONWATCH_READ_TOKEN"
COOKIE = "onwatch_token"


class Role(IntEnum):
    """What a caller may do; a higher role may do everything a lower one may."""

    ANONYMOUS = 0
    READ = 1
    ADMIN = 2


def hash_token(token: str) -> str:
    """Return the ``sha256:HEX`` form of a token, as the config stores it."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """Return a new random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(listen: str) -> bool:
    """Tell whether a ``HOST:PORT`` listen address accepts connections from this machine only."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def _digests(hashes: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h.removeprefix("sha256:")) for h in hashes)


@dataclass(frozen=True)
class Auth:
    """The tokens a server accepts, and whether anonymous callers may read."""

    read: tuple[bytes, ...] = ()
    admin: tuple[bytes, ...] = ()
    open_read: bool = True
    # Signs CSRF fields; new per process, so a form older than a restart is refused.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def build(
        cls,
        *,
        listen: str,
        read_hashes: Iterable[str] = (),
        admin_hashes: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Auth:
        """Return the policy of a server on ``listen`` with the configured and env tokens."""
        env = os.environ if environ is None else environ
        read = list(read_hashes)
        admin = list(admin_hashes)
        if env.get(READ_ENV):
            read.append(hash_token(env[READ_ENV]))
        if env.get(ADMIN_ENV):
            admin.append(hash_token(env[ADMIN_ENV]))
        return cls(read=_digests(read), admin=_digests(admin), open_read=is_loopback(listen))

    def role_of(self, token: str | None) -> Role:
        """Return the role a presented token (or none) grants."""
        role = Role.READ if self.open_read else Role.ANONYMOUS
        if not token:
            return role
        digest = hashlib.sha256(token.encode()).digest()
        # Compare with every hash, no early exit: the time taken does not depend on which matched.
        is_admin = False
        is_read = False
        for known in self.admin:
            is_admin |= hmac.compare_digest(digest, known)
        for known in self.read:
            is_read |= hmac.compare_digest(digest, known)
        if is_admin:
            return Role.ADMIN
        if is_read:
            return max(role, Role.READ)
        return role

    def knows(self, token: str | None) -> bool:
        """Tell whether ``token`` is one of the read or admin tokens."""
        closed = Auth(read=self.read, admin=self.admin, open_read=False, secret=self.secret)
        return closed.role_of(token) > Role.ANONYMOUS

    def csrf_for(self, token: str | None) -> str:
        """Return the CSRF field value for forms shown to the holder of ``token``."""
        return hmac.new(self.secret, (token or "").encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None, presented: str | None) -> bool:
        """Tell whether a form's CSRF field belongs to the holder of ``token``."""
        return bool(presented) and hmac.compare_digest(self.csrf_for(token), presented or "")
