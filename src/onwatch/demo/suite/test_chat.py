"""Messages posted to a chat room can be read back, in order."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.monitor, pytest.mark.chat]

# A room of its own, so the checks never clutter the rooms people use.
ROOM = "monitoring"


def post(client: httpx.Client, text: str) -> dict[str, Any]:
    """Post a message to the check room, failing the check if it is not accepted."""
    response = client.post(f"/api/chat/{ROOM}/messages", json={"text": text})
    assert response.status_code == 201, (
        f"posting to #{ROOM} answered HTTP {response.status_code}: {response.text}"
    )
    message: dict[str, Any] = response.json()
    return message


def texts_after(client: httpx.Client, message_id: int) -> list[str]:
    """Return the texts of the check room's messages newer than an id."""
    response = client.get(f"/api/chat/{ROOM}/messages", params={"after": message_id})
    assert response.status_code == 200, f"reading #{ROOM} answered HTTP {response.status_code}"
    return [message["text"] for message in response.json()["messages"]]


def test_a_posted_message_can_be_read_back(logged_in: httpx.Client) -> None:
    # A fresh text per run: earlier runs' messages must not make this pass.
    text = f"check {uuid.uuid4().hex}"

    message = post(logged_in, text)

    assert text in texts_after(logged_in, message["id"] - 1), (
        f"message {message['id']} was accepted but is not in #{ROOM}"
    )


def test_reading_after_an_id_returns_only_newer_messages(logged_in: httpx.Client) -> None:
    run = uuid.uuid4().hex
    first = post(logged_in, f"first {run}")
    post(logged_in, f"second {run}")

    texts = texts_after(logged_in, first["id"])

    assert f"second {run}" in texts, f"the newer message is missing from #{ROOM}: {texts}"
    assert f"first {run}" not in texts, f"?after={first['id']} returned that message itself"
