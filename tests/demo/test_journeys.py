"""The demo's browser journeys, run by ``onwatch once`` against a real demo app in Chromium."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from browser import chromium_path
from onwatch.cli.demo import write_demo_config
from onwatch.config import Config, load_config
from onwatch.demo.app import DemoServer, serve
from onwatch.state.health import Health
from onwatch.store import open_store
from onwatch.web.app import create_site_app
from onwatch.web.server import serve as serve_web

pytestmark = pytest.mark.e2e

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JOURNEYS = {
    "test_a_customer_logs_in_and_out",
    "test_saved_settings_show_on_the_home_page",
    "test_following_someone_shows_on_their_card",
    "test_a_chat_message_appears_in_the_room",
    "test_a_deposit_shows_in_the_balance",
}


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    chromium_path()  # skips without Chromium (fails under CI) before anything starts
    with serve(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def config(server: DemoServer, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The config `onwatch demo` writes for this app, journeys enabled."""
    return load_config(write_demo_config(tmp_path_factory.mktemp("demo"), server.url))


@pytest.fixture(autouse=True)
def healthy(server: DemoServer) -> Iterator[None]:
    yield
    server.faults.reset()


def run_journeys(config: Config) -> dict[str, Any]:
    """Run the journeys check with `onwatch once --json`; return its run."""
    done = subprocess.run(
        [sys.executable, "-m", "onwatch", "once", "-c", str(config.path), "journeys", "--json"],
        cwd=config.base_dir,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert run["check"] == "journeys"
    return dict(run)


def by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["nodeid"].rpartition("::")[2]: result for result in run["results"]}


def steps(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [value for name, value in result["properties"] if name == "step"]


def test_every_journey_passes_on_a_healthy_app_and_times_its_steps(config: Config) -> None:
    run = run_journeys(config)

    assert run["status"] == "passed", run
    results = by_name(run)
    assert set(results) == JOURNEYS
    for name, result in results.items():
        assert result["outcome"] == "passed", (name, result["message"])
        timed = steps(result)
        assert 2 <= len(timed) <= 3, (name, timed)
        assert all(s["ok"] and 0 <= s["seconds"] <= result["duration"] for s in timed), timed
        assert result["artifacts"] == []  # captures are kept on failure only
    assert [s["name"] for s in steps(results["test_a_deposit_shows_in_the_balance"])] == [
        "log in",
        "deposit 12.34",
        "see the new balance",
    ]


def test_a_broken_deposit_fails_its_journey_with_a_screenshot_on_the_run_page(
    server: DemoServer, config: Config
) -> None:
    server.faults.set("deposit", "broken")

    run = run_journeys(config)

    assert run["status"] == "failed"
    results = by_name(run)
    failed = {name for name, result in results.items() if result["outcome"] != "passed"}
    assert failed == {"test_a_deposit_shows_in_the_balance"}
    journey = results["test_a_deposit_shows_in_the_balance"]
    # The cents went missing: the balance moved by 12.00, and the message says from what to what.
    found = re.search(
        r"deposited 12\.34 on a balance of ([\d.]+), but the page shows ([\d.]+)",
        journey["message"],
    )
    assert found, journey["message"]
    assert Decimal(found[2]) - Decimal(found[1]) == Decimal("12.00")
    assert [(s["name"], s["ok"]) for s in steps(journey)] == [
        ("log in", True),
        ("deposit 12.34", True),
        ("see the new balance", False),
    ]
    kinds = {artifact["kind"]: artifact for artifact in journey["artifacts"]}
    assert {"screenshot", "html", "console"} <= set(kinds)
    screenshot = kinds["screenshot"]
    stored = config.artifacts_dir / screenshot["sha256"][:2] / screenshot["sha256"]
    data = stored.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert hashlib.sha256(data).hexdigest() == screenshot["sha256"]
    assert len(data) == screenshot["size"]
    page = (
        config.artifacts_dir / kinds["html"]["sha256"][:2] / kinds["html"]["sha256"]
    ).read_text()
    assert 'id="balance"' in page  # the page as the journey left it

    # What a person sees: the run's page on the dashboard shows the screenshot, served as a PNG.
    with dashboard(config) as url:
        run_page = httpx.get(f"{url}/runs/{run['id']}", timeout=10)
        assert run_page.status_code == 200
        assert f'<img class="screenshot" src="{screenshot["url"]}"' in run_page.text
        image = httpx.get(url + screenshot["url"], timeout=10)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == data


@contextmanager
def dashboard(config: Config) -> Iterator[str]:
    """Serve the dashboard of ``config``'s database on 127.0.0.1, as `onwatch serve` does."""
    store = open_store(config.database_url)
    try:
        app = create_site_app(config, Health(list(config.checks)), store, tick_limit=math.inf)
        with serve_web(app, "127.0.0.1:0") as web:
            yield web.url
    finally:
        store.close()
