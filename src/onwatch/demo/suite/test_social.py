"""Following and unfollowing people moves their follower counts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.monitor, pytest.mark.social]


def profile(client: httpx.Client, name: str) -> dict[str, Any]:
    """Fetch a user's profile, failing the check if that does not work."""
    response = client.get(f"/api/users/{name}")
    assert response.status_code == 200, f"profile of {name} answered HTTP {response.status_code}"
    found: dict[str, Any] = response.json()
    return found


def test_following_someone_adds_a_follower(logged_in: httpx.Client) -> None:
    # Start from "not following" whatever an earlier run left behind.
    logged_in.delete("/api/users/bob/follow")
    before = profile(logged_in, "bob")["followers"]

    response = logged_in.post("/api/users/bob/follow")

    assert response.status_code == 200, f"following bob answered HTTP {response.status_code}"
    after = profile(logged_in, "bob")
    assert after["followed_by_you"], "following bob answered 200 but he does not list us"
    assert after["followers"] == before + 1, (
        f"bob's followers went from {before} to {after['followers']} when we followed him"
    )


def test_unfollowing_someone_removes_a_follower(logged_in: httpx.Client) -> None:
    logged_in.post("/api/users/carol/follow")
    before = profile(logged_in, "carol")
    assert before["followed_by_you"], "we followed carol but her profile does not say so"

    response = logged_in.delete("/api/users/carol/follow")

    assert response.status_code == 200, f"unfollowing carol answered HTTP {response.status_code}"
    after = profile(logged_in, "carol")
    assert not after["followed_by_you"], "we unfollowed carol but her profile still lists us"
    assert after["followers"] == before["followers"] - 1, (
        f"carol's followers went from {before['followers']} to {after['followers']}"
        " when we unfollowed her"
    )


def test_an_unknown_user_is_not_found(logged_in: httpx.Client) -> None:
    response = logged_in.get("/api/users/nobody-by-this-name")

    assert response.status_code == 404, (
        f"an unknown user answered HTTP {response.status_code}, expected 404"
    )
