"""Captured files on the run page and behind /artifacts: screenshots inline, the rest downloads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onwatch.artifacts import ArtifactStore
from onwatch.model import Artifact, Outcome, Run, RunStatus, TestResult
from onwatch.store import open_store
from records import make_run
from web.conftest import Served, make_config, seed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML = b"<html><body><script>alert('from production')</script>Checkout</body></html>"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Served, Run, dict[str, str]]]:
    config = make_config(tmp_path)
    history = seed(config, datetime.now(UTC))
    files = ArtifactStore(config.artifacts_dir)
    shas = {}
    for name, data in {"png": PNG, "html": HTML, "gone": b"pruned later"}.items():
        (tmp_path / name).write_bytes(data)
        shas[name], _ = files.put(tmp_path / name)
    result = TestResult(
        nodeid="tests/test_api.py::test_checkout",
        outcome=Outcome.FAILED,
        phase="call",
        duration=2.0,
        message="AssertionError: no order number",
        artifacts=(
            Artifact("screenshot", "screenshot.png", len(PNG), shas["png"]),
            Artifact("html", "page.html", len(HTML), shas["html"]),
            Artifact("console", "console.log", 12, shas["gone"]),
        ),
    )
    run = make_run(status=RunStatus.FAILED, results=(result,))
    store = open_store(config.database_url)
    store.runs.save_run(run)
    store.close()
    gone = files.path_of(shas["gone"])
    assert gone is not None
    gone.unlink()  # as a prune would
    served = Served(history, listen="127.0.0.1:8787")
    yield served, run, shas
    served.close()


def test_the_run_page_shows_the_screenshot_inline_and_links_the_rest(
    site: tuple[Served, Run, dict[str, str]],
) -> None:
    served, run, shas = site
    with served.client() as http:
        page = http.get(f"/runs/{run.id}").text

    assert f'<img class="screenshot" src="/artifacts/{shas["png"]}/screenshot.png"' in page
    assert f'href="/artifacts/{shas["html"]}/page.html">html: page.html</a>' in page
    assert "console: console.log (pruned)" in page


def test_a_screenshot_is_served_as_an_image(site: tuple[Served, Run, dict[str, str]]) -> None:
    served, _, shas = site
    with served.client() as http:
        response = http.get(f"/artifacts/{shas['png']}/screenshot.png")

    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert "sandbox" in response.headers["content-security-policy"]


def test_captured_html_is_a_download_never_a_page_of_the_dashboard(
    site: tuple[Served, Run, dict[str, str]],
) -> None:
    served, _, shas = site
    with served.client() as http:
        response = http.get(f"/artifacts/{shas['html']}/page.html")

    assert response.status_code == 200
    assert response.content == HTML
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"] == 'attachment; filename="page.html"'
    assert "sandbox" in response.headers["content-security-policy"]


def test_a_pruned_or_unknown_file_is_a_404_that_says_why(
    site: tuple[Served, Run, dict[str, str]],
) -> None:
    served, _, shas = site
    with served.client() as http:
        pruned = http.get(f"/artifacts/{shas['gone']}/console.log")
        bogus = http.get("/artifacts/..%2F..%2Fonwatch.toml/x")

    assert pruned.status_code == 404 and "pruned" in pruned.text
    assert bogus.status_code == 404


def test_the_api_lists_the_artifacts_of_each_result(
    site: tuple[Served, Run, dict[str, str]],
) -> None:
    served, run, shas = site
    with served.client() as http:
        [result] = http.get(f"/api/v1/runs/{run.id}").json()["results"]

    assert [(a["kind"], a["name"], a["url"]) for a in result["artifacts"]] == [
        ("screenshot", "screenshot.png", f"/artifacts/{shas['png']}/screenshot.png"),
        ("html", "page.html", f"/artifacts/{shas['html']}/page.html"),
        ("console", "console.log", f"/artifacts/{shas['gone']}/console.log"),
    ]
