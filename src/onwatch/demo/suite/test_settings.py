"""Users change their settings and find them saved; bad values are refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.monitor, pytest.mark.settings]


@pytest.fixture
def original(logged_in: httpx.Client) -> Iterator[dict[str, Any]]:
    """Yield the account's settings, and put them back afterwards."""
    response = logged_in.get("/api/settings")
    assert response.status_code == 200, f"reading settings answered HTTP {response.status_code}"
    settings: dict[str, Any] = response.json()
    yield settings
    logged_in.put("/api/settings", json=settings)


def test_changed_settings_are_saved(logged_in: httpx.Client, original: dict[str, Any]) -> None:
    # Flip every field and use a fresh name, so the check means something on every run.
    wanted = {
        "display_name": f"Alice {uuid.uuid4().hex[:6]}",
        "theme": "light" if original["theme"] == "dark" else "dark",
        "email_notifications": not original["email_notifications"],
    }

    response = logged_in.put("/api/settings", json=wanted)

    assert response.status_code == 200, (
        f"saving settings answered HTTP {response.status_code}: {response.text}"
    )
    saved = logged_in.get("/api/settings").json()
    assert saved == wanted, f"settings were accepted but not saved: sent {wanted}, read {saved}"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"theme": "purple"}, id="unknown-theme"),
        pytest.param({"display_name": ""}, id="empty-name"),
    ],
)
def test_invalid_settings_are_refused(
    logged_in: httpx.Client, original: dict[str, Any], change: dict[str, Any]
) -> None:
    response = logged_in.put("/api/settings", json={**original, **change})

    assert response.status_code == 422, (
        f"settings {change} answered HTTP {response.status_code}, expected 422"
    )
