"""The webhook channel against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from onwatch import __version__
from onwatch.channels import build_channel
from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.channels.webhook import Patience, Webhook, WebhookSettings
from onwatch.errors import DeliveryError
from receivers import Behaviour, HttpReceiver

NOTIFICATION = Notification(
    Event.INCIDENT_OPENED,
    "inc-7:opened",
    "checkout is failing: 1 test failed",
    check="checkout",
    category="product",
    failing_tests=(FailingTest("tests/test_pay.py::test_card", "AssertionError: 500"),),
    opened_at=datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
    failing_runs=2,
)


@pytest.fixture
def refused() -> Iterator[str]:
    """Yield host:port of a port bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        yield f"{host}:{port}"


def webhook(url: str, **settings: object) -> Webhook:
    return Webhook("ops", WebhookSettings.model_validate({"url": url, **settings}))


def test_it_posts_the_payload_with_an_idempotency_key(receiver: HttpReceiver) -> None:
    channel = build_channel("ops", {"type": "webhook", "url": receiver.url + "/hook"})
    channel.send([NOTIFICATION])
    [request] = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.json() == NOTIFICATION.payload()
    assert request.headers["idempotency-key"] == "inc-7:opened"
    assert request.headers["user-agent"] == f"onwatch/{__version__}"
    assert request.headers["content-type"] == "application/json"


def test_it_sends_configured_headers(receiver: HttpReceiver) -> None:
    webhook(receiver.url, headers={"Authorization": "Bearer t0ken"}).send([NOTIFICATION])
    [request] = receiver.wait_for(1)
    assert request.headers["authorization"] == "Bearer t0ken"


def test_it_posts_once_per_notification(receiver: HttpReceiver) -> None:
    second = Notification(Event.INCIDENT_RESOLVED, "inc-7:resolved", "checkout recovered")
    webhook(receiver.url).send([NOTIFICATION, second])
    keys = [r.headers["idempotency-key"] for r in receiver.wait_for(2)]
    assert keys == ["inc-7:opened", "inc-7:resolved"]


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (429, False)])
def test_it_retries_on_server_errors_and_rate_limits(
    receiver: HttpReceiver, status: int, permanent: bool
) -> None:
    receiver.behaviour = Behaviour(status=status)
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url + "/hook").send([NOTIFICATION])
    assert caught.value.permanent is permanent
    assert str(caught.value) == f"webhook 'ops': HTTP {status} from {receiver.url}/hook"


@pytest.mark.parametrize("status", [400, 404, 410])
def test_it_gives_up_on_client_errors(receiver: HttpReceiver, status: int) -> None:
    receiver.behaviour = Behaviour(status=status)
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url).send([NOTIFICATION])
    assert caught.value.permanent is True


def test_it_gives_up_waiting_for_a_slow_answer_after_the_timeout(receiver: HttpReceiver) -> None:
    receiver.behaviour = Behaviour(delay=2.0)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url, timeout=0.5).send([NOTIFICATION])
    assert time.monotonic() - started < 1.2
    assert caught.value.permanent is False
    assert "no answer within 0.5s" in str(caught.value)


def test_it_waits_longer_after_an_answer_came_too_late_and_back_after_one_in_time(
    receiver: HttpReceiver,
) -> None:
    receiver.behaviour = Behaviour(delay=0.65)
    hook = webhook(receiver.url, timeout=0.3)

    def waited() -> str:
        with pytest.raises(DeliveryError) as caught:
            hook.send([NOTIFICATION])
        return str(caught.value).split("no answer within ")[1].split(" ")[0]

    assert [waited(), waited()] == ["0.3s", "0.6s"]
    hook.send([NOTIFICATION])  # waits 1.2 s: the 0.65 s answer arrives, the third copy is the last
    receiver.behaviour = Behaviour()
    hook.send([NOTIFICATION])  # answered in time: back to the timeout
    receiver.behaviour = Behaviour(delay=0.65)
    assert waited() == "0.3s"
    assert len(receiver.received) == 5


def test_patience_doubles_up_to_four_times_the_timeout() -> None:
    patience = Patience(10.0)
    waits = []
    for _ in range(4):
        patience.unanswered()
        waits.append(patience.wait)
    assert waits == [20.0, 40.0, 40.0, 40.0]
    patience.answered(12.0)  # late, but answered: keep waiting as long
    assert patience.wait == 40.0
    patience.answered(3.0)
    assert patience.wait == 10.0


def test_it_gives_up_on_a_receiver_that_never_answers(receiver: HttpReceiver) -> None:
    receiver.behaviour = Behaviour(hang=True)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        webhook(receiver.url, timeout=0.5).send([NOTIFICATION])
    assert time.monotonic() - started < 1.2
    assert caught.value.permanent is False


def test_it_retries_when_the_receiver_is_down(refused: str) -> None:
    url = f"http://{refused}"
    with pytest.raises(DeliveryError) as caught:
        webhook(url, timeout=2).send([NOTIFICATION])
    assert caught.value.permanent is False
    assert str(caught.value).startswith(f"webhook 'ops': cannot reach {url}/ (")


def test_it_keeps_credentials_out_of_error_messages(receiver: HttpReceiver) -> None:
    receiver.behaviour = Behaviour(status=500)
    host = receiver.url.removeprefix("http://")
    with pytest.raises(DeliveryError) as caught:
        webhook(f"http://user:secret@{host}/hook?token=abc").send([NOTIFICATION])
    message = str(caught.value)
    assert message == f"webhook 'ops': HTTP 500 from http://{host}/hook"
    assert "secret" not in message and "abc" not in message and "user" not in message
    # The credentials still reach the receiver, as basic auth and in the query.
    [request] = receiver.wait_for(1)
    assert request.path == "/hook?token=abc"
    assert request.headers["authorization"].startswith("Basic ")


def test_it_keeps_credentials_out_of_connection_errors(refused: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        webhook(f"http://user:secret@{refused}/hook?token=abc").send([NOTIFICATION])
    assert "secret" not in str(caught.value) and "token" not in str(caught.value)


def test_it_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="channel 'ops': url: .* starts with http:// or https://"):
        build_channel("ops", {"type": "webhook", "url": "ftp://example.com/hook"})
