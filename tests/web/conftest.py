"""A seeded installation served for real on 127.0.0.1, shared by the web tests of a session.

``site_history`` stores a known history through the real store (rollups included):

- ``api``: 30 runs, one an hour, 5 tests each. ``test_flaky`` fails every third run, the XSS
  test ``test_<script>alert(1)</script>`` fails in the latest run, so the latest run failed.
- ``web``: 10 passing runs, one every 2 hours, 2 tests each.
- ``idle``: configured, never run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from onwatch.config import Config, load_config
from onwatch.errors import TriggerRefused
from onwatch.model import Outcome, Run, RunStatus, TestResult, Trigger
from onwatch.state.health import Health
from onwatch.store import Store, open_store
from onwatch.web.app import create_site_app
from onwatch.web.auth import hash_token
from onwatch.web.server import WebServer, serve
from suites import make_project

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

READ_TOKEN = "read-" + "r" * 40
ADMIN_TOKEN = "admin-" + "a" * 40
XSS = "<script>alert(1)</script>"
XSS_TEST = f"tests/test_api.py::test_{XSS}"
FLAKY_TEST = "tests/test_api.py::test_flaky"
API_TESTS = [
    "tests/test_api.py::test_login",
    "tests/test_api.py::test_profile",
    FLAKY_TEST,
    "tests/test_api.py::test_search",
    XSS_TEST,
]
API_RUNS = 30
WEB_RUNS = 10


@dataclass(frozen=True)
class History:
    """What was seeded, for tests to compare pages with."""

    config: Config
    now: datetime
    api_runs: list[Run]  # oldest first
    web_runs: list[Run]


def _api_run(index: int, started: datetime) -> Run:
    latest = index == API_RUNS - 1
    results = []
    for nodeid in API_TESTS:
        outcome = Outcome.PASSED
        message = None
        if nodeid == FLAKY_TEST and index % 3 == 0:
            outcome, message = Outcome.FAILED, "AssertionError: expected 200, got 503\nmore"
        if nodeid == XSS_TEST and latest:
            outcome, message = Outcome.FAILED, f"AssertionError: {XSS} in the page"
        results.append(
            TestResult(
                nodeid=nodeid,
                outcome=outcome,
                phase="call",
                duration=0.1 + 0.01 * index,
                message=message,
                traceback=None if message is None else f"Traceback\n  {XSS}\n{message}",
                output=None if message is None else f"captured {XSS}",
            )
        )
    bad = any(r.outcome is Outcome.FAILED for r in results)
    return Run(
        id=str(uuid.uuid4()),
        check="api",
        status=RunStatus.FAILED if bad else RunStatus.PASSED,
        started_at=started,
        finished_at=started + timedelta(seconds=2 + index % 5),
        collected=len(results),
        results=tuple(results),
        trigger=Trigger.SCHEDULE,
        scheduled_for=started,
        host="monitor-1",
        version="0.1.0",
        config_digest="d",
    )


def _web_run(started: datetime) -> Run:
    results = tuple(
        TestResult(
            nodeid=f"tests/test_web.py::test_{n}",
            outcome=Outcome.PASSED,
            phase="call",
            duration=0.2,
        )
        for n in ("home", "search")
    )
    return Run(
        id=str(uuid.uuid4()),
        check="web",
        status=RunStatus.PASSED,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        collected=2,
        results=results,
        trigger=Trigger.SCHEDULE,
        host="monitor-1",
        version="0.1.0",
        config_digest="d",
    )


def seed(config: Config, now: datetime) -> History:
    """Store the documented history into ``config``'s database."""
    store = open_store(config.database_url)
    store.ensure_schema()
    start = now - timedelta(hours=API_RUNS) + timedelta(minutes=5)
    api_runs = [_api_run(i, start + timedelta(hours=i)) for i in range(API_RUNS)]
    web_runs = [
        _web_run(now - timedelta(hours=2 * (WEB_RUNS - i)) + timedelta(minutes=7))
        for i in range(WEB_RUNS)
    ]
    for run in [*api_runs, *web_runs]:
        store.runs.save_run(run)
    store.close()
    return History(config, now, api_runs, web_runs)


@pytest.fixture(scope="session")
def site_history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return seed(
        make_config(tmp_path_factory.mktemp("site")), datetime.now(UTC).replace(microsecond=0)
    )


def make_config(root: Path, **settings: object) -> Config:
    """Write the project of the seeded site (its test files are empty: nothing runs them).

    ``settings`` adds keys of ``[onwatch]``.
    """
    (root / "tests").mkdir(parents=True, exist_ok=True)
    for name in ("test_api.py", "test_web.py", "test_idle.py"):
        (root / "tests" / name).write_text("")
    path = make_project(
        root,
        {
            "api": {"tests": ["tests/test_api.py"], "every": "1h"},
            "web": {"tests": ["tests/test_web.py"], "every": "2h"},
            "idle": {"tests": ["tests/test_idle.py"], "every": "1h"},
        },
        settings={
            "read_tokens": [hash_token(READ_TOKEN)],
            "admin_tokens": [hash_token(ADMIN_TOKEN)],
            **settings,
        },
    )
    return load_config(path)


class Served:
    """A site served on 127.0.0.1 with a fixed auth policy; records triggered runs."""

    def __init__(self, history: History, *, listen: str) -> None:
        self.triggered: list[str] = []
        self.refusal: TriggerRefused | None = None  # raised by the next triggers when set
        self.store: Store = open_store(history.config.database_url)
        health = Health(list(history.config.checks))
        app = create_site_app(
            history.config,
            health,
            self.store,
            tick_limit=60.0,
            trigger=self._trigger,
            listen=listen,
        )
        self.server: WebServer = serve(app, "127.0.0.1:0")
        self.url = self.server.url

    def _trigger(self, name: str) -> str:
        if self.refusal is not None:
            raise self.refusal
        self.triggered.append(name)
        return f"a run of {name} has started"

    def client(self, token: str | None = None) -> httpx.Client:
        """Return a client that sends ``token`` as a bearer token (none when None)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@pytest.fixture(scope="session")
def open_site(site_history: History) -> Iterator[Served]:
    """The site as `onwatch run` serves it on loopback: anonymous callers may read."""
    served = Served(site_history, listen="127.0.0.1:8787")
    yield served
    served.close()


@pytest.fixture(scope="session")
def closed_site(site_history: History) -> Iterator[Served]:
    """The site as served on a public address: every route but /healthz needs a token."""
    served = Served(site_history, listen="0.0.0.0:8787")
    yield served
    served.close()


# --- a real browser (tests/web/test_browser.py) -----------------------------------------------
# Playwright is imported in the fixtures, not at the top: the other web tests run without it.


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless system Chromium for the whole session, closed at its end."""
    from playwright.sync_api import sync_playwright

    from browser import chromium_path, launch

    executable = chromium_path()  # skips (or fails under CI) before starting Playwright
    with sync_playwright() as playwright:
        launched = launch(playwright, executable)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies), closed after the test; waits give up after 5 s."""
    context = browser.new_context()
    context.set_default_timeout(5_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where browser tests save screenshots: $ONWATCH_TEST_ARTIFACTS or build/test-artifacts."""
    default = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    folder = Path(os.environ.get("ONWATCH_TEST_ARTIFACTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
