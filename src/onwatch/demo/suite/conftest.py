"""Fixtures for the Bankly checks: where the app is, HTTP clients for it, and a browser.

Run against any Bankly with ``BASE_URL=http://127.0.0.1:8000 pytest``. The browser journeys
drive Chromium (``ONWATCH_BROWSER``, which onwatch sets to the one it found, else
``/usr/bin/chromium``) through Playwright, imported only when a journey runs: the API checks
need neither.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import httpx
import pytest

from onwatch.runner import BROWSER_ENV, CHROMIUM_SERVER_FLAGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Every request has a deadline: a slow feature shows up as a slow test, a hung one fails.
TIMEOUT_SECONDS = 5.0

DEFAULT_CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = CHROMIUM_SERVER_FLAGS


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


def find_chromium() -> str | None:
    """Return the Chromium to drive: ``ONWATCH_BROWSER``, else Debian's; None if there is none."""
    return shutil.which(os.environ.get(BROWSER_ENV) or DEFAULT_CHROMIUM)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Yield a headless Chromium, launched once for all the journeys of a run."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        wanted = os.environ.get(BROWSER_ENV) or DEFAULT_CHROMIUM
        pytest.skip(f"no Chromium at {wanted}: apt-get install chromium, or set {BROWSER_ENV}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """Yield a page of its own (fresh cookies) that resolves paths like ``/home`` on the app."""
    context = browser.new_context(base_url=base_url)
    # The same deadline as the API checks: a hung page fails the journey in seconds, not 30.
    context.set_default_timeout(TIMEOUT_SECONDS * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()
