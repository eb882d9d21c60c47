"""The banner after a form says only what onwatch wrote: ``?note=`` is a code, never text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from onwatch.errors import TriggerRefused
from web.conftest import ADMIN_TOKEN, Served, make_config, seed
from web.test_auth import csrf_of

NOTE = re.compile(r'<p class="note" role="status">(.*?)</p>', re.S)


def banner(response: httpx.Response) -> list[str]:
    return NOTE.findall(response.text)


@pytest.mark.parametrize(
    "note",
    [
        "Your session expired: call the helpdesk on line Zulu-4471",
        "<b>officialnotice</b>",
        "a run of api has started",
        "silenced%20until%202099",
        "started ",
        "STARTED",
    ],
)
def test_a_note_that_is_no_known_code_shows_nothing(open_site: Served, note: str) -> None:
    with open_site.client() as http:
        response = http.get("/checks/api", params={"note": note})
    assert response.status_code == 200
    assert banner(response) == []
    assert "Zulu-4471" not in response.text and "officialnotice" not in response.text


def test_a_known_code_shows_its_own_words(open_site: Served) -> None:
    with open_site.client() as http:
        assert banner(http.get("/checks/api?note=started")) == ["a run of api has started"]
        # The code names no check: it reads the page's own.
        assert banner(http.get("/checks/web?note=started")) == ["a run of web has started"]
        # A page with no check shows nothing for it.
        assert banner(http.get("/?note=started")) == []


@pytest.fixture
def own_site(tmp_path: Path) -> Iterator[Served]:
    """A site of its own: silences added here must not reach the shared sites."""
    served = Served(seed(make_config(tmp_path), datetime.now(UTC)), listen="0.0.0.0:8787")
    yield served
    served.close()


def test_silenced_says_until_when_the_check_is_silenced_not_what_the_link_says(
    own_site: Served,
) -> None:
    closed_site = own_site
    with closed_site.client(ADMIN_TOKEN) as http:
        # Not silenced: the code alone shows nothing.
        assert banner(http.get("/checks/api?note=silenced")) == []
        response = http.post(
            "/checks/api/silence",
            data={"csrf": csrf_of(closed_site, ADMIN_TOKEN), "duration": "2h", "reason": "t"},
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/checks/api?note=silenced",
        )
        [text] = banner(http.get(response.headers["location"]))
    until = datetime.strptime(text, "silenced until %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    assert abs(until - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)


def test_run_now_returns_with_the_started_code(closed_site: Served) -> None:
    with closed_site.client(ADMIN_TOKEN) as http:
        response = http.post("/checks/web/run", data={"csrf": csrf_of(closed_site, ADMIN_TOKEN)})
        assert response.headers["location"] == "/checks/web?note=started"
        assert banner(http.get(response.headers["location"])) == ["a run of web has started"]


def test_a_refused_run_shows_the_reason_on_an_error_page(closed_site: Served) -> None:
    closed_site.refusal = TriggerRefused("web is running now; its result comes soon", status=409)
    try:
        with closed_site.client(ADMIN_TOKEN) as http:
            csrf = csrf_of(closed_site, ADMIN_TOKEN)
            response = http.post("/checks/web/run", data={"csrf": csrf})
    finally:
        closed_site.refusal = None
    assert response.status_code == 409
    assert "web is running now; its result comes soon" in response.text


@pytest.mark.parametrize("duration", ["99999999999w", "500ms"])
def test_a_silence_out_of_range_from_the_form_is_a_400_naming_the_range(
    closed_site: Served, duration: str
) -> None:
    with closed_site.client(ADMIN_TOKEN) as http:
        response = http.post(
            "/checks/idle/silence",
            data={"csrf": csrf_of(closed_site, ADMIN_TOKEN), "duration": duration},
        )
    assert response.status_code == 400
    assert "write a duration from 1s to 365d" in response.text
