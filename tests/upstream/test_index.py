"""Polling real package indexes: pypiserver (PEP 503 HTML) and a PEP 691 JSON index."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from needs import free_port
from onwatch.errors import IndexProblem
from onwatch.upstream.index import (
    Release,
    fetch_releases,
    latest,
    newer_than,
    redact,
)
from upstream.indexes import JSON_TYPE, Canned, LockedIndex, Shelf, SimpleIndex, canned_server

DAY = 86400.0


def versions(releases: list[Release]) -> list[str]:
    return [r.version for r in releases]


def assert_hidden(problem: IndexProblem, *secrets: str) -> None:
    """Assert no secret shows in the message, the attributes or a printed traceback."""
    shown = "\n".join(
        [str(problem), repr(problem), str(problem.index), *traceback.format_exception(problem)]
    )
    for secret in secrets:
        assert secret not in shown


@pytest.fixture
def html_only(json_index: SimpleIndex) -> Iterator[SimpleIndex]:
    """The JSON index, answering HTML only for the test's duration."""
    json_index.json = False
    try:
        yield json_index
    finally:
        json_index.json = True


# -- releases -------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_it_sees_each_new_release_on_the_next_poll(
    shelf: Shelf, pypiserver_url: str, json_index: SimpleIndex
) -> None:
    shelf.publish("demo-lib", "1.0", modules={"demo_lib/__init__.py": "def greet(): ...\n"})

    for url in (pypiserver_url, json_index.url):
        assert versions(fetch_releases(url, "demo-lib")) == ["1.0"]

    # 1.1 renames the API; 1.2rc1 is a pre-release. Published while the indexes run.
    shelf.publish("demo-lib", "1.1", modules={"demo_lib/__init__.py": "def hello(): ...\n"})
    shelf.publish("demo-lib", "1.2rc1", modules={"demo_lib/__init__.py": "def hello(): ...\n"})

    for url in (pypiserver_url, json_index.url):
        releases = fetch_releases(url, "demo-lib")
        assert versions(releases) == ["1.0", "1.1", "1.2rc1"]
        now = datetime.now(UTC)
        stable = latest(releases, prereleases=False, min_age=0, now=now)
        preview = latest(releases, prereleases=True, min_age=0, now=now)
        assert stable is not None and stable.version == "1.1"
        assert preview is not None and preview.version == "1.2rc1"
        assert versions(newer_than(releases, "1.0", prereleases=False)) == ["1.1"]
        assert versions(newer_than(releases, "1.0", prereleases=True)) == ["1.1", "1.2rc1"]


@pytest.mark.e2e
def test_it_asks_for_json_and_accepts_html(
    shelf: Shelf, json_index: SimpleIndex, pypiserver_url: str
) -> None:
    shelf.publish("accept-lib", "1.0")

    from_json = fetch_releases(json_index.url, "accept-lib")
    from_html = fetch_releases(pypiserver_url, "accept-lib")

    accept = json_index.accepts[-1]
    assert accept.index(JSON_TYPE) < accept.index("text/html")
    # Only the JSON answer carries upload times (PEP 700); pypiserver's HTML has none.
    assert from_json[0].uploaded_at is not None
    assert from_html == [Release(version="1.0", files=1, yanked=False, uploaded_at=None)]


@pytest.mark.e2e
def test_it_orders_releases_by_pep_440(shelf: Shelf, pypiserver_url: str) -> None:
    for version in ["2.0.post1", "1.10", "2.0", "1.9", "2.0rc1"]:
        shelf.publish("order-lib", version)

    releases = fetch_releases(pypiserver_url, "order-lib")

    assert versions(releases) == ["1.9", "1.10", "2.0rc1", "2.0", "2.0.post1"]
    chosen = latest(releases, prereleases=False, min_age=0, now=datetime.now(UTC))
    assert chosen is not None and chosen.version == "2.0.post1"


@pytest.mark.e2e
def test_it_groups_the_files_of_a_version_and_notes_unparsable_ones(
    shelf: Shelf,
    pypiserver_url: str,
    json_index: SimpleIndex,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shelf.publish("pair-lib", "1.0")
    shelf.add_file("pair_lib-1.0.tar.gz")
    shelf.add_file("pair_lib-1.1.tar.gz")
    shelf.add_file("pair_lib-nightly.tar.gz")

    for url in (pypiserver_url, json_index.url):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="onwatch.upstream"):
            releases = fetch_releases(url, "pair-lib")

        assert [(r.version, r.files) for r in releases] == [("1.0", 2), ("1.1", 1)]
        assert "pair_lib-nightly.tar.gz" in caplog.text


@pytest.mark.parametrize("answer", ["json", "html"])
def test_it_marks_a_release_yanked_only_when_all_its_files_are(
    answer: str, shelf: Shelf, json_index: SimpleIndex, request: pytest.FixtureRequest
) -> None:
    index = json_index if answer == "json" else request.getfixturevalue("html_only")
    project = f"yank-{answer}"
    module = project.replace("-", "_")
    shelf.publish(project, "1.0")
    shelf.add_file(f"{module}-1.0.tar.gz")
    shelf.publish(project, "1.1")
    index.yanked[f"{module}-1.0.tar.gz"] = "a bad sdist"  # the wheel of 1.0 still stands
    index.yanked[f"{module}-1.1-py3-none-any.whl"] = "breaks everything"

    releases = fetch_releases(index.url, project)

    assert [(r.version, r.yanked) for r in releases] == [("1.0", False), ("1.1", True)]
    chosen = latest(releases, prereleases=False, min_age=0, now=datetime.now(UTC))
    assert chosen is not None and chosen.version == "1.0"
    assert newer_than(releases, "1.0", prereleases=True) == []


def test_min_age_holds_back_a_fresh_release_by_its_upload_time(
    shelf: Shelf, json_index: SimpleIndex
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    shelf.publish("age-lib", "1.0", uploaded=now - timedelta(days=3))
    shelf.publish("age-lib", "1.1", uploaded=now - timedelta(hours=1))

    releases = fetch_releases(json_index.url, "age-lib")

    assert [r.uploaded_at for r in releases] == [now - timedelta(days=3), now - timedelta(hours=1)]
    held = latest(releases, prereleases=False, min_age=DAY, now=now)
    later = latest(releases, prereleases=False, min_age=DAY, now=now + timedelta(days=1))
    assert held is not None and held.version == "1.0"
    assert later is not None and later.version == "1.1"


@pytest.mark.e2e
def test_min_age_holds_back_a_fresh_release_by_first_seen_on_html(
    shelf: Shelf, pypiserver_url: str
) -> None:
    shelf.publish("seen-lib", "1.0")
    shelf.publish("seen-lib", "1.1")
    now = datetime.now(UTC)
    first_seen = {"1.0": now - timedelta(days=5), "1.1": now}

    releases = fetch_releases(pypiserver_url, "seen-lib")
    chosen = latest(releases, prereleases=False, min_age=DAY, now=now, first_seen=first_seen)

    assert chosen is not None and chosen.version == "1.0"


def test_a_page_declaring_its_api_version_with_no_files_has_no_releases() -> None:
    page = b'<html><head><meta name="pypi:repository-version" content="1.0"></head></html>'
    with canned_server(Canned(body=page)) as url:
        assert fetch_releases(f"{url}/simple", "empty-lib") == []


# -- poll failures ---------------------------------------------------------------------------------


def test_a_closed_port_is_unreachable() -> None:
    url = f"http://bob:hunter2-token@127.0.0.1:{free_port()}/simple"

    with pytest.raises(IndexProblem) as caught:
        fetch_releases(url, "demo-lib", timeout=5)

    assert caught.value.kind == "unreachable"
    assert "Connection refused" in str(caught.value)
    assert f"http://***@127.0.0.1:{url.rsplit(':', 1)[1]}" in str(caught.value)
    assert_hidden(caught.value, "hunter2-token", "bob")


def test_an_index_that_stopped_is_unreachable(shelf: Shelf) -> None:
    shelf.publish("stop-lib", "1.0")
    index = SimpleIndex(shelf.folder).start()
    assert versions(fetch_releases(index.url, "stop-lib")) == ["1.0"]

    index.stop()

    with pytest.raises(IndexProblem) as caught:
        fetch_releases(index.url, "stop-lib", timeout=5)
    assert caught.value.kind == "unreachable"
    assert index.url in str(caught.value)


def test_an_index_that_never_answers_is_unreachable_after_the_timeout() -> None:
    with canned_server(Canned(hang=True)) as url:
        with pytest.raises(IndexProblem) as caught:
            fetch_releases(f"{url}/simple", "demo-lib", timeout=0.2)

    assert caught.value.kind == "unreachable"
    assert "no answer within 0.2 s" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["pypi.org/simple", "ftp://mirror.example/simple", "http://carol:pa55word@exa mple.com/simple"],
)
def test_a_url_that_cannot_be_requested_is_reported_as_such(url: str) -> None:
    with pytest.raises(IndexProblem) as caught:
        fetch_releases(url, "demo-lib", timeout=5)

    assert caught.value.kind == "unreachable"
    assert "not a valid http(s) URL" in str(caught.value)
    assert_hidden(caught.value, "pa55word", "carol")


@pytest.mark.e2e
def test_an_index_wanting_credentials_is_an_auth_problem(locked_index: LockedIndex) -> None:
    with pytest.raises(IndexProblem) as caught:
        fetch_releases(locked_index.url, "demo-lib")

    assert (caught.value.kind, caught.value.status) == ("auth", 401)
    assert "refused access to 'demo-lib' (HTTP 401)" in str(caught.value)
    assert "needs credentials" in str(caught.value)


@pytest.mark.e2e
def test_refused_credentials_are_an_auth_problem_that_never_shows_them(
    locked_index: LockedIndex,
) -> None:
    wrong = "wrong-Pa55/word"
    url = locked_index.url.replace("://", f"://{locked_index.user}:{quote(wrong, safe='')}@")

    with pytest.raises(IndexProblem) as caught:
        fetch_releases(url, "demo-lib")
    with pytest.raises(IndexProblem) as caught_too:
        fetch_releases(locked_index.url, "demo-lib", auth=(locked_index.user, wrong))

    for problem in (caught.value, caught_too.value):
        assert (problem.kind, problem.status) == ("auth", 403)
        assert "check the credentials in the index URL" in str(problem)
        assert_hidden(problem, wrong, quote(wrong, safe=""), "Pa55")
    assert redact(url) in str(caught.value)


@pytest.mark.e2e
def test_the_right_credentials_open_the_index(shelf: Shelf, locked_index: LockedIndex) -> None:
    shelf.publish("locked-lib", "1.0")
    password = quote(locked_index.password, safe="")
    url = locked_index.url.replace("://", f"://{locked_index.user}:{password}@")

    in_url = fetch_releases(url, "locked-lib")
    as_auth = fetch_releases(
        locked_index.url, "locked-lib", auth=(locked_index.user, locked_index.password)
    )

    assert versions(in_url) == versions(as_auth) == ["1.0"]


@pytest.mark.e2e
def test_an_unknown_project_is_not_found(pypiserver_url: str, json_index: SimpleIndex) -> None:
    for url in (pypiserver_url, json_index.url):
        with pytest.raises(IndexProblem) as caught:
            fetch_releases(url, "no-such-lib")

        assert (caught.value.kind, caught.value.status) == ("not-found", 404)
        assert f"no project named 'no-such-lib' on {url}" in str(caught.value)


@pytest.mark.parametrize(
    ("content_type", "body", "says"),
    [
        ("application/json", b'{"hello": "world"}', "content type 'application/json'"),
        (JSON_TYPE, b"<html>not json</html>", "not JSON"),
        (JSON_TYPE, b'{"name": "x", "files": 3}', "meta: Field required"),
        (JSON_TYPE, b'{"meta": {"api-version": "2.0"}, "name": "x", "files": []}', "2.0"),
        ("text/html", b"<html><body>Maintenance</body></html>", "links to no package files"),
        ("text/html", b'<a href="/login">Sign in</a> <a href="/help">Help</a>', "no package"),
        # The HTML parser warns that this looks like a URL: garbage whether or not warnings
        # are errors (they are in this suite).
        ("text/html", b"https://example.com/", "for 'demo-lib'"),
    ],
    ids=["plain-json", "not-json", "wrong-shape", "api-v2", "html-page", "login-page", "url"],
)
def test_a_200_answer_that_is_no_project_page_is_garbage(
    content_type: str, body: bytes, says: str
) -> None:
    with canned_server(Canned(content_type=content_type, body=body)) as url:
        with pytest.raises(IndexProblem) as caught:
            fetch_releases(f"{url}/simple", "demo-lib")

    assert caught.value.kind == "garbage"
    assert says in str(caught.value)
    assert f"{url}/simple" in str(caught.value)


@pytest.mark.parametrize(("status", "says"), [(500, "has trouble"), (418, "check the index URL")])
def test_other_error_statuses_are_http_problems(status: int, says: str) -> None:
    with canned_server(Canned(status=status, body=b"nope")) as url:
        with pytest.raises(IndexProblem) as caught:
            fetch_releases(f"{url}/simple", "demo-lib")

    assert (caught.value.kind, caught.value.status) == ("http", status)
    assert f"answered HTTP {status} for 'demo-lib'" in str(caught.value)
    assert says in str(caught.value)
