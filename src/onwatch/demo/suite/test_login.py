"""Logging in, and the API refusing anyone who has not."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.monitor, pytest.mark.login]


def test_the_right_password_gets_a_token(client: httpx.Client, credentials: dict[str, str]) -> None:
    response = client.post("/api/login", json=credentials)

    assert response.status_code == 200, (
        f"login with the right password answered HTTP {response.status_code}: {response.text}"
    )
    assert response.json().get("token"), "login answered 200 but gave no token"


def test_a_wrong_password_is_refused(client: httpx.Client, credentials: dict[str, str]) -> None:
    wrong = {**credentials, "password": credentials["password"] + "-not"}

    response = client.post("/api/login", json=wrong)

    assert response.status_code == 401, (
        f"login with a wrong password answered HTTP {response.status_code}, expected 401"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/settings"),
        ("GET", "/api/account"),
        ("GET", "/api/chat/monitoring/messages"),
    ],
)
def test_the_api_needs_a_token(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 401, (
        f"{method} {path} with a made-up token answered HTTP {response.status_code}"
    )
