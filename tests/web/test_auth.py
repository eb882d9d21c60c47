"""Who may call what: every route of the web app for every kind of caller, login, and tokens.

``ROUTES`` is the policy table. It must name exactly the routes the app declares, so a route
added without a decision about who may call it fails ``test_every_route_of_the_app_has_a_policy``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from onwatch.state.health import Health
from onwatch.store import open_store
from onwatch.web.app import create_site_app
from onwatch.web.auth import ADMIN_ENV, READ_ENV, Auth, Role, hash_token, is_loopback
from web.conftest import ADMIN_TOKEN, FLAKY_TEST, READ_TOKEN, History, Served


class Need(Enum):
    """What a caller needs to get the route's own answer."""

    NOTHING = "nothing"
    READ = "read"
    ADMIN = "admin"  # an API call that changes something
    ADMIN_FORM = "admin form"  # a page form that changes something: admin and its CSRF field


@dataclass(frozen=True)
class Route:
    """A declared route, a URL that reaches it, what it needs and what it answers when allowed."""

    method: str
    path: str  # as the app declares it
    url: str  # "{run}" stands for a seeded run's id
    need: Need
    answer: int
    body: dict[str, Any] | None = None

    @property
    def api(self) -> bool:
        """Tell whether a refusal is a 401 for scripts rather than a redirect to the login."""
        return self.url.startswith("/api/") or self.url == "/metrics"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


TEST = quote(FLAKY_TEST, safe="")
ROUTES = [
    Route("GET", "/healthz", "/healthz", Need.NOTHING, 200),
    Route("GET", "/login", "/login?next=%2Fchecks%2Fapi", Need.NOTHING, 200),
    Route("POST", "/login", "/login", Need.NOTHING, 401),  # no token in the form
    Route("GET", "/static/{path}", "/static/style.css", Need.NOTHING, 200),
    Route("GET", "/metrics", "/metrics", Need.READ, 200),
    Route("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", Need.READ, 200),
    Route("GET", "/api/v1/checks", "/api/v1/checks", Need.READ, 200),
    Route("GET", "/api/v1/checks/{name}", "/api/v1/checks/api", Need.READ, 200),
    Route("GET", "/api/v1/runs", "/api/v1/runs?check=api&limit=5", Need.READ, 200),
    Route("GET", "/api/v1/runs/{run_id}", "/api/v1/runs/{run}", Need.READ, 200),
    Route(
        "GET",
        "/api/v1/checks/{name}/history",
        f"/api/v1/checks/api/history?test={TEST}",
        Need.READ,
        200,
    ),
    Route("GET", "/api/v1/incidents", "/api/v1/incidents", Need.READ, 200),
    Route("GET", "/api/v1/watches", "/api/v1/watches", Need.READ, 200),
    Route("POST", "/api/v1/checks/{name}/run", "/api/v1/checks/idle/run", Need.ADMIN, 202),
    Route(
        "POST",
        "/api/v1/silences",
        "/api/v1/silences",
        Need.ADMIN,
        201,
        {"check": "idle", "duration": "5m", "reason": "test_auth"},
    ),
    Route("GET", "/", "/", Need.READ, 200),
    Route("GET", "/checks/{name}", "/checks/api?range=24h", Need.READ, 200),
    Route("GET", "/checks/{name}/tests/{test:path}", f"/checks/api/tests/{TEST}", Need.READ, 200),
    Route("GET", "/runs/{run_id}", "/runs/{run}", Need.READ, 200),
    Route("GET", "/watches", "/watches", Need.READ, 200),
    # The seeded history has no captured files: allowed callers get the "pruned" 404.
    Route("GET", "/artifacts/{sha256}/{name}", f"/artifacts/{'0' * 64}/shot.png", Need.READ, 404),
    Route("POST", "/logout", "/logout", Need.READ, 303),
    Route("POST", "/checks/{name}/run", "/checks/idle/run", Need.ADMIN_FORM, 303),
    Route(
        "POST",
        "/checks/{name}/silence",
        "/checks/idle/silence",
        Need.ADMIN_FORM,
        303,
        {"duration": "5m", "reason": "test_auth"},
    ),
]


@dataclass(frozen=True)
class Caller:
    """Someone calling one of the shared sites, with the role the site should grant."""

    site: str
    token: str | None
    role: Role
    name: str

    def __str__(self) -> str:
        return self.name


CALLERS = [
    Caller("closed", None, Role.ANONYMOUS, "closed-anonymous"),
    Caller("closed", "not-a-known-token", Role.ANONYMOUS, "closed-unknown-token"),
    Caller("closed", READ_TOKEN, Role.READ, "closed-read"),
    Caller("closed", ADMIN_TOKEN, Role.ADMIN, "closed-admin"),
    Caller("open", None, Role.READ, "open-anonymous"),
]


def declared_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Return (method, path) of every route ``app`` serves; HEAD is left out where GET is."""
    # FastAPI 0.12x+ keeps included routers whole; its public walker flattens them.
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(walk(app.routes)) if walk else list(app.routes)
    found = set()
    for route in routes:
        if isinstance(getattr(route, "original_route", route), Mount):
            found.add(("GET", route.path + "/{path}"))
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        found |= {(method, route.path) for method in methods}
    return found


@pytest.fixture(scope="module")
def app(site_history: History) -> Iterator[FastAPI]:
    store = open_store(site_history.config.database_url)
    config = site_history.config
    yield create_site_app(config, Health(list(config.checks)), store, tick_limit=60.0)
    store.close()


def test_every_route_of_the_app_has_a_policy(app: FastAPI) -> None:
    declared = declared_routes(app)
    table = {(r.method, r.path) for r in ROUTES}
    assert declared - table == set(), "routes without a policy in ROUTES"
    assert table - declared == set(), "policies of routes the app no longer has"
    assert len(ROUTES) == len(table), "a route is in ROUTES twice"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_policy_url_reaches_its_route(route: Route) -> None:
    pattern = re.sub(r"\\\{\w+:path\\\}", ".+", re.escape(route.path))
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", pattern)
    assert re.fullmatch(pattern, route.url.split("?")[0].replace("{run}", "a-run-id"))


def csrf_of(site: Served, token: str | None) -> str:
    """Return the CSRF field the check page's forms carry for the holder of ``token``."""
    with site.client(token) as http:
        page = http.get("/checks/idle")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, f"no csrf field on the check page: {page.status_code}"
    return found.group(1)


def call(site: Served, route: Route, token: str | None, url: str) -> httpx.Response:
    with site.client(token) as http:
        if route.method == "GET":
            return http.get(url)
        if route.need is Need.ADMIN:
            return http.post(url, json=route.body)
        form = dict(route.body or {})
        if route.need is Need.ADMIN_FORM:
            # Admins send the field their page carries; nobody else is shown the form.
            form["csrf"] = csrf_of(site, token) if token == ADMIN_TOKEN else "0" * 64
        return http.post(url, data=form)


def assert_secured(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "script-src" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_route_answers_each_caller_as_its_policy_says(
    request: pytest.FixtureRequest, site_history: History, route: Route, caller: Caller
) -> None:
    site: Served = request.getfixturevalue(f"{caller.site}_site")
    url = route.url.replace("{run}", site_history.api_runs[-1].id)
    triggered = len(site.triggered)
    response = call(site, route, caller.token, url)
    assert_secured(response)

    refused = (route.need is Need.READ and caller.role < Role.READ) or (
        route.need in (Need.ADMIN, Need.ADMIN_FORM) and caller.role < Role.ADMIN
    )
    if not refused:
        assert response.status_code == route.answer, response.text
        if route.answer == 303:
            assert not response.headers["location"].startswith("/login?")
    elif caller.role == Role.ANONYMOUS and route.api:
        assert response.status_code == 401, response.text
        assert response.json()["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif caller.role == Role.ANONYMOUS:
        assert response.status_code == 303, response.text
        assert_back_to(response.headers["location"], url if route.method == "GET" else "/")
    else:
        assert response.status_code == 403, response.text
        assert "admin token" in response.text
    changes = route.need in (Need.ADMIN, Need.ADMIN_FORM) and route.url.endswith("/run")
    assert len(site.triggered) == triggered + (changes and not refused)


def assert_back_to(location: str, url: str) -> None:
    """Assert ``location`` is the login page, set to bring the browser back to ``url``."""
    login_page = urlsplit(location)
    assert login_page.path == "/login"
    (target,) = parse_qs(login_page.query)["next"]
    back, asked = urlsplit(target), urlsplit(url)
    assert (unquote(back.path), back.query) == (unquote(asked.path), asked.query)


# -- forms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [{}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": "not hex"}],
    ids=["none", "empty", "wrong", "garbage"],
)
@pytest.mark.parametrize("action", ["run", "silence"])
def test_it_refuses_an_admin_form_without_its_csrf_field(
    closed_site: Served, action: str, form: dict[str, str]
) -> None:
    before = list(closed_site.triggered)
    with closed_site.client(ADMIN_TOKEN) as http:
        response = http.post(f"/checks/idle/{action}", data=form)
    assert response.status_code == 403
    assert "expired" in response.text
    assert closed_site.triggered == before


def test_it_refuses_a_csrf_field_issued_by_another_server(
    open_site: Served, closed_site: Served
) -> None:
    before = list(closed_site.triggered)
    with closed_site.client(ADMIN_TOKEN) as http:
        response = http.post("/checks/idle/run", data={"csrf": csrf_of(open_site, ADMIN_TOKEN)})
    assert response.status_code == 403
    assert closed_site.triggered == before


def test_it_runs_a_check_from_the_admin_form_and_says_so(closed_site: Served) -> None:
    with closed_site.client(ADMIN_TOKEN) as http:
        response = http.post("/checks/web/run", data={"csrf": csrf_of(closed_site, ADMIN_TOKEN)})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/checks/web?note=")
    assert closed_site.triggered[-1] == "web"


# -- login and logout -----------------------------------------------------------------------------


def login(site: Served, token: str, target: str = "/") -> httpx.Response:
    with site.client() as http:
        return http.post("/login", data={"token": token, "next": target})


def test_it_refuses_an_unknown_token_at_login_without_a_cookie(closed_site: Served) -> None:
    response = login(closed_site, "not-a-known-token")
    assert response.status_code == 401
    assert "unknown token" in response.text
    assert "set-cookie" not in response.headers
    assert_secured(response)


@pytest.mark.parametrize("token", [READ_TOKEN, ADMIN_TOKEN], ids=["read", "admin"])
def test_it_sets_an_httponly_strict_cookie_for_a_known_token(
    closed_site: Served, token: str
) -> None:
    response = login(closed_site, token, "/checks/api?range=7d")
    assert response.status_code == 303
    assert response.headers["location"] == "/checks/api?range=7d"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"onwatch_token={token};")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes


def test_the_login_cookie_lets_a_browser_read_a_closed_site(closed_site: Served) -> None:
    cookie = login(closed_site, READ_TOKEN).cookies["onwatch_token"]
    with httpx.Client(base_url=closed_site.url, cookies={"onwatch_token": cookie}) as browser:
        assert browser.get("/checks/api").status_code == 200
        assert browser.get("/api/v1/checks").status_code == 200


def test_the_api_changes_nothing_for_a_login_cookie_alone(closed_site: Served) -> None:
    # A page on another site can make a logged-in browser send its cookie, never a header.
    cookie = login(closed_site, ADMIN_TOKEN).cookies["onwatch_token"]
    triggered = len(closed_site.triggered)
    with httpx.Client(base_url=closed_site.url, cookies={"onwatch_token": cookie}) as browser:
        response = browser.post("/api/v1/checks/api/run")
    assert response.status_code == 403
    assert "Authorization: Bearer" in response.json()["detail"]
    assert len(closed_site.triggered) == triggered


def test_logout_clears_the_cookie(closed_site: Served) -> None:
    with httpx.Client(base_url=closed_site.url) as browser:
        browser.post("/login", data={"token": READ_TOKEN})
        assert browser.get("/").status_code == 200
        response = browser.post("/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith(('onwatch_token="";', "onwatch_token=;"))
        assert "max-age=0" in cookie
        assert "onwatch_token" not in browser.cookies
        assert browser.get("/").status_code == 303


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "http:evil.example", "evil.example", ""],
)
def test_it_refuses_to_send_a_login_to_another_site(closed_site: Served, target: str) -> None:
    response = login(closed_site, READ_TOKEN, target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", ["/\\evil.example/", "/\t/evil.example/", "/%2F/evil.example"])
def test_a_login_target_that_browsers_could_misread_stays_on_this_site(
    closed_site: Served, target: str
) -> None:
    location = login(closed_site, READ_TOKEN, target).headers["location"]
    assert location.startswith("/") and not location.startswith("//")
    assert not re.search(r"[\\\x00-\x20]", location)
    assert httpx.URL(closed_site.url).join(location).host == "127.0.0.1"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/"])
def test_the_login_form_does_not_carry_a_target_on_another_site(
    closed_site: Served, target: str
) -> None:
    with closed_site.client() as http:
        page = http.get("/login", params={"next": target})
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert 'name="next" value="/"' in page.text


# -- Auth -----------------------------------------------------------------------------------------


def closed(**tokens: list[str]) -> Auth:
    return Auth.build(
        listen="0.0.0.0:8787",
        read_hashes=[hash_token(t) for t in tokens.get("read", [])],
        admin_hashes=[hash_token(t) for t in tokens.get("admin", [])],
        environ={},
    )


def test_a_closed_server_grants_each_token_its_own_role() -> None:
    auth = closed(read=["r1", "r2"], admin=["a1"])
    assert [auth.role_of(t) for t in ("r1", "r2", "a1")] == [Role.READ, Role.READ, Role.ADMIN]


@pytest.mark.parametrize("token", [None, "", "wrong", "r1 ", "R1", "a1a1", "sha256:" + "0" * 64])
def test_a_closed_server_treats_a_missing_or_wrong_token_as_anonymous(token: str | None) -> None:
    assert closed(read=["r1"], admin=["a1"]).role_of(token) is Role.ANONYMOUS


def test_a_server_on_loopback_lets_anyone_read_but_only_admins_change() -> None:
    auth = Auth.build(
        listen="127.0.0.1:8787",
        read_hashes=[hash_token("r1")],
        admin_hashes=[hash_token("a1")],
        environ={},
    )
    assert auth.role_of(None) is Role.READ
    assert auth.role_of("wrong") is Role.READ
    assert auth.role_of("r1") is Role.READ
    assert auth.role_of("a1") is Role.ADMIN


def test_a_token_that_is_both_read_and_admin_is_admin() -> None:
    assert closed(read=["both"], admin=["both"]).role_of("both") is Role.ADMIN


def test_it_takes_one_admin_and_one_read_token_from_the_environment() -> None:
    auth = Auth.build(
        listen="0.0.0.0:8787",
        read_hashes=[hash_token("configured")],
        environ={ADMIN_ENV: "from-env-admin", READ_ENV: "from-env-read"},
    )
    assert auth.role_of("from-env-admin") is Role.ADMIN
    assert auth.role_of("from-env-read") is Role.READ
    assert auth.role_of("configured") is Role.READ
    assert auth.role_of("other") is Role.ANONYMOUS


def test_it_ignores_empty_token_variables() -> None:
    auth = Auth.build(listen="0.0.0.0:8787", environ={ADMIN_ENV: "", READ_ENV: ""})
    assert (auth.admin, auth.read) == ((), ())
    assert auth.role_of("") is Role.ANONYMOUS


def test_it_knows_tokens_whatever_the_listen_address() -> None:
    auth = Auth.build(listen="127.0.0.1:8787", read_hashes=[hash_token("r1")], environ={})
    assert auth.knows("r1")
    assert not auth.knows("wrong")
    assert not auth.knows(None)


def test_a_csrf_field_is_bound_to_its_token_and_server() -> None:
    auth = closed(admin=["a1"])
    field = auth.csrf_for("a1")
    assert auth.csrf_ok("a1", field)
    assert not auth.csrf_ok("a2", field)
    assert not auth.csrf_ok("a1", "")
    assert not auth.csrf_ok("a1", None)
    assert not closed(admin=["a1"]).csrf_ok("a1", field)  # a new process, a new secret


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:8787", True),
        ("127.1.2.3:80", True),
        ("[::1]:8787", True),
        ("localhost:8787", True),
        ("0.0.0.0:8787", False),
        ("[::]:8787", False),
        ("10.0.0.1:8787", False),
        ("192.168.1.20:8787", False),
        ("monitor.example.com:8787", False),
        ("localhost.example.com:8787", False),
    ],
)
def test_it_tells_loopback_listen_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback
