"""Fixtures for the Bankly API checks: where the app is, and HTTP clients for it.

Run against any Bankly with ``BASE_URL=http://127.0.0.1:8000 pytest``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

# Every request has a deadline: a slow feature shows up as a slow test, a hung one fails.
TIMEOUT_SECONDS = 5.0


@pytest.fixture(scope="session")
def base_url() -> str:
    """Return the address of the app under test, from BASE_URL."""
    url = os.environ.get("BASE_URL", "").strip()
    if not url:
        pytest.fail(
            "BASE_URL is not set: point it at the app, e.g. BASE_URL=http://127.0.0.1:8000 pytest",
            pytrace=False,
        )
    return url.rstrip("/")


@pytest.fixture(scope="session")
def credentials() -> dict[str, str]:
    """Return the login of the account these checks act as."""
    return {"username": "alice", "password": "wonderland"}


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """Yield an anonymous client for the app."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS) as anonymous:
        yield anonymous


@pytest.fixture
def logged_in(base_url: str, credentials: dict[str, str]) -> Iterator[httpx.Client]:
    """Yield a client logged in as the check account."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS) as session:
        response = session.post("/api/login", json=credentials)
        assert response.status_code == 200, (
            f"cannot log in as {credentials['username']}: "
            f"HTTP {response.status_code} {response.text}"
        )
        session.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield session
