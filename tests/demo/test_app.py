"""The demo app, driven over HTTP on a real loopback server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from onwatch.demo.app import FEATURES, DemoServer, Faults, serve
from onwatch.errors import OnwatchError

SLOW = 0.3


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with serve(port=0, faults=Faults(delay=SLOW)) as running:
        yield running


@pytest.fixture(autouse=True)
def healthy(server: DemoServer) -> Iterator[None]:
    """Leave every feature healthy for the next test, whatever this one broke."""
    yield
    server.faults.apply({"reset": True, "slow_delay": SLOW})


@pytest.fixture
def anon(server: DemoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def logged_in(server: DemoServer, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.post("/api/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client


@pytest.fixture
def alice(server: DemoServer) -> Iterator[httpx.Client]:
    yield from logged_in(server, "alice", "wonderland")


@pytest.fixture
def bob(server: DemoServer) -> Iterator[httpx.Client]:
    yield from logged_in(server, "bob", "builder")


def set_faults(client: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = client.put("/admin/faults", json=changes)
    assert response.status_code == 200, response.text
    snapshot: dict[str, Any] = response.json()
    return snapshot


def balance(client: httpx.Client) -> Decimal:
    return Decimal(client.get("/api/account").json()["balance"])


def followers(client: httpx.Client, name: str) -> int:
    count: int = client.get(f"/api/users/{name}").json()["followers"]
    return count


def room_texts(client: httpx.Client, room: str, after: int = 0) -> list[str]:
    response = client.get(f"/api/chat/{room}/messages", params={"after": after})
    assert response.status_code == 200, response.text
    return [message["text"] for message in response.json()["messages"]]


def test_serve_reports_the_real_port(server: DemoServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert int(server.url.rsplit(":", 1)[1]) > 0
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


def test_stop_is_idempotent_and_closes_the_port() -> None:
    with serve() as running:
        url = running.url
        running.stop()
        running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_serve_raises_when_the_port_is_taken(server: DemoServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])

    with pytest.raises(OnwatchError, match=f"could not start on 127.0.0.1:{port}"):
        serve(port=port)


def test_it_logs_in_with_the_right_password(anon: httpx.Client) -> None:
    response = anon.post("/api/login", json={"username": "alice", "password": "wonderland"})

    assert response.status_code == 200
    assert response.json()["token"]


@pytest.mark.parametrize(("username", "password"), [("alice", "builder"), ("mallory", "x")])
def test_it_refuses_bad_credentials(anon: httpx.Client, username: str, password: str) -> None:
    response = anon.post("/api/login", json={"username": username, "password": password})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/settings"),
        ("PUT", "/api/settings"),
        ("GET", "/api/users/bob"),
        ("POST", "/api/users/bob/follow"),
        ("GET", "/api/chat/general/messages"),
        ("POST", "/api/account/deposit"),
        ("GET", "/api/account"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer forged", "Basic YWxpY2U6d29uZGVybGFuZA=="])
def test_the_api_answers_401_without_a_valid_token(
    anon: httpx.Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = anon.request(method, path, headers=headers)

    assert response.status_code == 401


def test_it_saves_settings_and_reads_them_back(alice: httpx.Client) -> None:
    wanted = {"display_name": "Alice W.", "theme": "dark", "email_notifications": False}

    assert alice.put("/api/settings", json=wanted).json() == wanted
    assert alice.get("/api/settings").json() == wanted


@pytest.mark.parametrize(
    "change",
    [
        {"theme": "purple"},
        {"display_name": ""},
        {"display_name": "x" * 41},
        {"email_notifications": "yes"},
        {"colour": "red"},
    ],
)
def test_it_rejects_invalid_settings(alice: httpx.Client, change: dict[str, Any]) -> None:
    before = alice.get("/api/settings").json()

    response = alice.put("/api/settings", json={**before, **change})

    assert response.status_code == 422
    assert alice.get("/api/settings").json() == before


def test_following_and_unfollowing_move_the_follower_count(alice: httpx.Client) -> None:
    alice.delete("/api/users/carol/follow")
    before = followers(alice, "carol")

    followed = alice.post("/api/users/carol/follow").json()
    assert followed["followers"] == before + 1
    assert followed["followed_by_you"] is True
    assert alice.get("/api/users/alice").json()["following"] >= 1

    unfollowed = alice.delete("/api/users/carol/follow").json()
    assert unfollowed["followers"] == before
    assert unfollowed["followed_by_you"] is False


def test_following_twice_counts_once(alice: httpx.Client) -> None:
    alice.post("/api/users/bob/follow")
    count = followers(alice, "bob")

    alice.post("/api/users/bob/follow")

    assert followers(alice, "bob") == count


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/users/zed"),
        ("POST", "/api/users/zed/follow"),
        ("DELETE", "/api/users/zed/follow"),
    ],
)
def test_an_unknown_user_is_404(alice: httpx.Client, method: str, path: str) -> None:
    assert alice.request(method, path).status_code == 404


def test_nobody_can_follow_themselves(alice: httpx.Client) -> None:
    assert alice.post("/api/users/alice/follow").status_code == 400


def test_chat_returns_messages_after_an_id(alice: httpx.Client, bob: httpx.Client) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    first = alice.post(f"/api/chat/{room}/messages", json={"text": "hi bob"})
    bob.post(f"/api/chat/{room}/messages", json={"text": "hi alice"})

    assert first.status_code == 201
    assert first.json()["author"] == "alice"
    assert room_texts(bob, room) == ["hi bob", "hi alice"]
    assert room_texts(bob, room, after=first.json()["id"]) == ["hi alice"]


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 501}, {}])
def test_chat_rejects_empty_and_huge_messages(alice: httpx.Client, body: dict[str, Any]) -> None:
    assert alice.post("/api/chat/general/messages", json=body).status_code == 422


@pytest.mark.parametrize("amount", ["12.34", 0.5, 10000, "0.01"])
def test_a_deposit_adds_exactly_the_amount(alice: httpx.Client, amount: str | float) -> None:
    before = balance(alice)

    response = alice.post("/api/account/deposit", json={"amount": amount})

    assert response.status_code == 200
    expected = before + Decimal(str(amount))
    assert Decimal(response.json()["balance"]) == expected
    assert balance(alice) == expected
    assert alice.get("/api/account").json()["transactions"][0] == response.json()["transaction"]


@pytest.mark.parametrize("amount", [0, -5, "10000.01", "0.001", "abc", "NaN", True, None])
def test_an_invalid_deposit_is_422_and_changes_nothing(alice: httpx.Client, amount: Any) -> None:
    before = balance(alice)

    response = alice.post("/api/account/deposit", json={"amount": amount})

    assert response.status_code == 422
    assert balance(alice) == before


def test_broken_login_refuses_the_right_password(anon: httpx.Client) -> None:
    set_faults(anon, login="broken")

    response = anon.post("/api/login", json={"username": "alice", "password": "wonderland"})

    assert response.status_code == 401


def test_broken_auth_refuses_valid_tokens_while_logging_in_still_works(
    alice: httpx.Client, anon: httpx.Client
) -> None:
    set_faults(anon, auth="broken")

    login = anon.post("/api/login", json={"username": "bob", "password": "builder"})
    fresh = {"Authorization": f"Bearer {login.json()['token']}"}
    refused = [
        alice.get("/api/account"),
        alice.post("/api/account/deposit", json={"amount": "1"}),
        anon.get("/api/settings", headers=fresh),
    ]

    assert login.status_code == 200
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert {r.json()["detail"] for r in refused} == {"token has been revoked"}
    forged = anon.get("/api/settings", headers={"Authorization": "Bearer forged"})
    assert forged.json()["detail"] == "missing or invalid bearer token"
    set_faults(anon, reset=True)
    assert alice.get("/api/account").status_code == 200


def test_broken_settings_are_accepted_but_not_saved(alice: httpx.Client) -> None:
    before = alice.get("/api/settings").json()
    set_faults(alice, settings="broken")

    response = alice.put("/api/settings", json={**before, "display_name": "Lost"})

    assert response.status_code == 200
    assert alice.get("/api/settings").json() == before


def test_broken_follow_does_not_count(alice: httpx.Client) -> None:
    alice.delete("/api/users/bob/follow")
    before = followers(alice, "bob")
    set_faults(alice, follow="broken")

    assert alice.post("/api/users/bob/follow").status_code == 200
    assert followers(alice, "bob") == before


def test_broken_chat_drops_messages(alice: httpx.Client) -> None:
    set_faults(alice, chat="broken")

    posted = alice.post("/api/chat/general/messages", json={"text": "into the void"})

    assert posted.status_code == 201
    assert "into the void" not in room_texts(alice, "general", after=posted.json()["id"] - 1)


def test_broken_deposit_credits_the_wrong_amount(alice: httpx.Client) -> None:
    before = balance(alice)
    set_faults(alice, deposit="broken")

    response = alice.post("/api/account/deposit", json={"amount": "12.34"})

    assert response.status_code == 200
    assert balance(alice) - before == Decimal("12.00")


def test_resetting_faults_over_http_heals_every_feature(alice: httpx.Client) -> None:
    set_faults(alice, **dict.fromkeys(FEATURES, "broken"))

    assert set_faults(alice, reset=True)["faults"] == dict.fromkeys(FEATURES, "ok")
    before = balance(alice)
    alice.post("/api/account/deposit", json={"amount": "12.34"})
    assert balance(alice) - before == Decimal("12.34")


def test_deleting_faults_resets_them(alice: httpx.Client) -> None:
    set_faults(alice, chat="broken", deposit="slow")

    assert alice.delete("/admin/faults").json()["faults"] == dict.fromkeys(FEATURES, "ok")
    assert alice.get("/admin/faults").json()["faults"]["chat"] == "ok"


def test_put_faults_rejects_bad_changes_naming_every_problem(anon: httpx.Client) -> None:
    response = anon.put("/admin/faults", json={"nope": "broken", "chat": "dead", "reset": 1})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "unknown feature 'nope'" in detail
    assert "unknown mode 'dead' for chat" in detail
    assert "reset must be true or false" in detail
    assert anon.get("/admin/faults").json()["faults"]["chat"] == "ok"


def test_healthz_stays_green_while_everything_is_broken(anon: httpx.Client) -> None:
    set_faults(anon, **dict.fromkeys(FEATURES, "broken"))

    assert anon.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("feature", "method", "path", "body"),
    [
        pytest.param(
            "login",
            "POST",
            "/api/login",
            {"username": "alice", "password": "wonderland"},
            id="login",
        ),
        pytest.param("settings", "GET", "/api/settings", None, id="settings"),
        pytest.param("follow", "GET", "/api/users/bob", None, id="follow"),
        pytest.param("chat", "POST", "/api/chat/general/messages", {"text": "slowly"}, id="chat"),
        pytest.param("deposit", "POST", "/api/account/deposit", {"amount": "1"}, id="deposit"),
        pytest.param("auth", "GET", "/api/account", None, id="auth"),
    ],
)
def test_a_slow_feature_answers_after_the_delay(
    alice: httpx.Client, feature: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    set_faults(alice, **{feature: "slow"})

    started = time.monotonic()
    response = alice.request(method, path, json=body)
    elapsed = time.monotonic() - started

    assert response.is_success
    assert elapsed >= SLOW


def test_the_slow_delay_can_be_changed_at_run_time(alice: httpx.Client) -> None:
    set_faults(alice, chat="slow", slow_delay=0.6)

    started = time.monotonic()
    alice.get("/api/chat/general/messages")

    assert time.monotonic() - started >= 0.6


def test_the_login_page_has_a_form(anon: httpx.Client) -> None:
    page = anon.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="login-form"' in page.text
    assert "<script" not in page.text


def test_home_sends_visitors_without_a_session_to_the_login_page(anon: httpx.Client) -> None:
    response = anon.get("/home")

    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_wrong_password_in_the_form_shows_an_error(anon: httpx.Client) -> None:
    page = anon.post("/login", data={"username": "alice", "password": "nope"})

    assert page.status_code == 401
    assert "Invalid username or password." in page.text
    assert "bankly_session" not in anon.cookies


def test_html_pages_work_with_a_cookie_session(anon: httpx.Client, bob: httpx.Client) -> None:
    bob.post("/api/chat/general/messages", json={"text": "<script>alert('pwned')</script>"})
    login = anon.post("/login", data={"username": "carol", "password": "singer"})
    assert login.status_code == 303
    assert login.headers["location"] == "/home"

    deposit = anon.post("/home/deposit", data={"amount": "7.25"})
    anon.post("/home/settings", data={"display_name": "Carol <b>", "theme": "dark"})
    anon.post("/home/chat", data={"text": "from the form"})
    anon.post("/home/follow", data={"name": "bob", "action": "follow"})
    home = anon.get("/home").text

    assert deposit.headers["location"] == "/home?done=deposit"
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in home
    assert "<script>" not in home
    assert "Carol &lt;b&gt;" in home
    assert '<body class="dark">' in home
    assert '<span id="balance">7.25</span>' in home
    assert "from the form" in home
    assert "Unfollow" in home.split('id="user-bob"', 1)[1].split("</li>", 1)[0]
    assert bob.get("/api/users/carol").json()["display_name"] == "Carol <b>"


def test_a_bad_form_value_shows_the_problem(anon: httpx.Client) -> None:
    anon.post("/login", data={"username": "alice", "password": "wonderland"})

    page = anon.post("/home/deposit", data={"amount": "-3"})

    assert page.status_code == 422
    assert 'id="error"' in page.text
    assert "greater than 0" in page.text


def test_the_admin_page_flips_a_fault(anon: httpx.Client) -> None:
    assert 'id="fault-chat"' in anon.get("/admin").text

    response = anon.post("/admin", data={"feature": "chat", "mode": "broken"})

    assert response.status_code == 303
    assert anon.get("/admin/faults").json()["faults"]["chat"] == "broken"
    anon.post("/admin", data={"reset": "true"})
    assert anon.get("/admin/faults").json()["faults"]["chat"] == "ok"


def test_faults_parse_reads_a_spec() -> None:
    faults = Faults.parse(" chat=broken, deposit = slow ,", delay=0.5)

    assert faults.snapshot() == {
        "faults": {
            "login": "ok",
            "settings": "ok",
            "follow": "ok",
            "chat": "broken",
            "deposit": "slow",
            "auth": "ok",
        },
        "slow_delay": 0.5,
    }
    assert str(faults) == "chat=broken,deposit=slow"
    assert str(Faults.parse("")) == ""


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ("chat=broke", ["unknown mode 'broke' for chat (choose from ok, broken, slow)"]),
        ("bank=broken", ["unknown feature 'bank' (choose from login, settings, follow, chat,"]),
        ("chat", ["'chat' is not feature=mode"]),
        ("chat=, money=slow", ["unknown mode '' for chat", "unknown feature 'money'"]),
    ],
)
def test_faults_parse_names_every_problem(spec: str, problems: list[str]) -> None:
    with pytest.raises(ValueError, match="invalid faults") as raised:
        Faults.parse(spec)

    for problem in problems:
        assert problem in str(raised.value)


@pytest.mark.e2e
def test_importing_the_demo_package_does_not_load_the_web_stack() -> None:
    code = "import sys, onwatch.demo; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["False", "False"]


def _ignore_sigint() -> None:
    """Start as a shell's background job or nohup starts a program: with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.e2e
def test_it_runs_in_the_foreground_from_the_command_line() -> None:
    command = [sys.executable, "-m", "onwatch.demo.app", "--port", "0", "--faults", "chat=slow"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            url = banner.split(" at ", 1)[1].split()[0]
            assert httpx.get(f"{url}/admin/faults").json()["faults"]["chat"] == "slow"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # never leave a server behind to trouble the next tests
                process.wait()
                raise
    assert process.returncode == 0


@pytest.mark.e2e
def test_the_command_line_rejects_bad_faults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "onwatch.demo.app", "--faults", "chat=gone"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )

    assert result.returncode == 2
    assert "unknown mode 'gone' for chat" in result.stderr


def test_logging_out_ends_the_cookie_session(anon: httpx.Client) -> None:
    anon.post("/login", data={"username": "bob", "password": "builder"})
    assert anon.get("/").headers["location"] == "/home"

    anon.post("/logout")

    assert anon.get("/home").headers["location"] == "/"
