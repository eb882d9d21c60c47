"""The channel kinds' registry and ``build_channel``: each kind validates and builds its own."""

from __future__ import annotations

import pytest

from onwatch.channels import build_channel
from onwatch.channels.base import ChannelSettings
from onwatch.channels.notification import Event, Notification
from onwatch.channels.registry import DEFAULT, KINDS
from onwatch.errors import DeliveryError
from receivers import HttpReceiver

TEST = Notification(Event.TEST, "test.1", "a test notification")
MAIL = "mailto://127.0.0.1:2525?from=onwatch@example.com&to=ops@example.com"


def test_each_registry_line_names_its_kind_by_the_type_its_model_takes() -> None:
    for name, kind in KINDS.items():
        assert issubclass(kind.settings, ChannelSettings)
        assert kind.settings.model_fields["type"].default == name
        assert kind.settings.model_config.get("extra") == "forbid"
    assert DEFAULT in KINDS


def test_a_table_without_a_type_is_an_apprise_channel() -> None:
    channel = build_channel("mail", {"url": MAIL})
    assert type(channel) is KINDS["apprise"].transport
    assert channel.grouped is True


def test_an_unknown_type_names_the_channel_and_the_known_types() -> None:
    with pytest.raises(ValueError) as caught:
        build_channel("ops", {"type": "slack", "url": "https://hooks.example.com"})
    assert str(caught.value) == (
        "channel 'ops': unknown channel type 'slack'; known types: alertmanager, apprise, webhook"
    )


def test_a_key_of_another_kind_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as caught:
        build_channel("ops", {"type": "webhook", "url": "https://x.example", "hold": "1h"})
    assert str(caught.value) == "channel 'ops': hold: Extra inputs are not permitted"


def test_a_channel_naming_secrets_needs_their_lookup() -> None:
    with pytest.raises(ValueError, match=r"channel 'ops' names secrets \(HOOK\)"):
        build_channel("ops", {"type": "webhook", "url": "https://x.example/${HOOK}"})


def test_secrets_fill_the_url_and_headers_when_it_sends(receiver: HttpReceiver) -> None:
    looked_up: list[list[str]] = []

    def lookup(names: list[str]) -> dict[str, str]:
        looked_up.append(names)
        return {"HOOK": "h00k-path", "TOKEN": "t0ken-value"}

    settings = {
        "type": "webhook",
        "url": receiver.url + "/${HOOK}",
        "headers": {"Authorization": "Bearer ${TOKEN}"},
    }
    channel = build_channel("ops", settings, lookup)
    assert channel.grouped is False  # the kind's, known before any secret is looked up
    assert looked_up == []
    channel.send([TEST])
    [request] = receiver.wait_for(1)
    assert request.path == "/h00k-path"
    assert request.headers["authorization"] == "Bearer t0ken-value"
    assert looked_up == [["HOOK", "TOKEN"]]


def test_a_secret_that_breaks_the_url_fails_the_delivery_without_showing_it() -> None:
    settings = {"type": "webhook", "url": "https://${HOST}/hook"}
    channel = build_channel("ops", settings, lambda names: {"HOST": "s3cr3t:no-port"})
    with pytest.raises(DeliveryError) as caught:
        channel.send([TEST])
    assert caught.value.permanent is False  # a rotated secret may fix it
    assert str(caught.value).startswith("channel 'ops': url: ")
    assert "s3cr3t" not in str(caught.value)
