"""Package indexes for the upstream tests, started once per session on 127.0.0.1.

All serve one folder (``shelf``) that tests publish wheels into while the indexes run. Each test
publishes under project names of its own, so the tests do not depend on one another's order.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from collections.abc import Iterator

import pytest

from needs import unavailable
from upstream.indexes import (
    LockedIndex,
    Pypiserver,
    Pypiservers,
    Shelf,
    SimpleIndex,
    start_pypiserver,
)


@pytest.fixture(scope="session")
def shelf(tmp_path_factory: pytest.TempPathFactory) -> Shelf:
    """The folder every index of the session serves."""
    return Shelf(tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="session")
def pypiservers(shelf: Shelf, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pypiservers]:
    """Yield an open and a locked pypiserver, both serving ``shelf`` (HTML only)."""
    if importlib.util.find_spec("pypiserver") is None:
        unavailable("pypiserver is not installed: pip install -e '.[dev]'")
    home = tmp_path_factory.mktemp("pypiserver")
    user, password = "alice", "s3cret-Pa55/word"
    # An Apache "{SHA}" entry, which pypiserver's htpasswd reader (passlib) accepts; written by
    # hand so that the test process does not import passlib.
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    htpasswd = home / "htpasswd"
    htpasswd.write_text(f"{user}:{{SHA}}{digest}\n")
    # Both start at once: each takes most of a second to import and bind.
    servers: list[Pypiserver] = []
    try:
        servers.append(start_pypiserver(shelf.folder, home))
        servers.append(start_pypiserver(shelf.folder, home, htpasswd=htpasswd))
        for server in servers:
            server.wait_until_ready()
        yield Pypiservers(servers[0].url, LockedIndex(servers[1].url, user, password))
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def pypiserver_url(pypiservers: Pypiservers) -> str:
    """The simple API URL of a pypiserver serving ``shelf``."""
    return pypiservers.open


@pytest.fixture(scope="session")
def locked_index(pypiservers: Pypiservers) -> LockedIndex:
    """A pypiserver serving ``shelf`` that answers 401/403 without the right user."""
    return pypiservers.locked


@pytest.fixture(scope="session")
def json_index(shelf: Shelf) -> Iterator[SimpleIndex]:
    """Yield a PEP 691 index serving ``shelf`` (JSON to clients that accept it, else HTML)."""
    index = SimpleIndex(shelf.folder).start()
    try:
        yield index
    finally:
        index.stop()
