"""The Apprise channel delivering mail to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from onwatch.channels import build_channel, render
from onwatch.channels.apprise import Apprise, AppriseSettings
from onwatch.channels.notification import Event, FailingTest, Notification
from onwatch.errors import DeliveryError
from receivers import Mailbox, smtp_server


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=onwatch@example.com&to=ops@example.com"


def failing(check: str = "checkout", nodeid: str = "tests/test_pay.py::test_card") -> Notification:
    return Notification(
        Event.INCIDENT_OPENED,
        f"{check}:opened",
        f"{check} is failing: 1 test failed",
        check=check,
        failing_tests=(FailingTest(nodeid, "AssertionError: expected 200, got 500"),),
        opened_at=datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
        failing_runs=2,
    )


def only_mail(mailbox: Mailbox) -> EmailMessage:
    assert mailbox.arrived.wait(5), "no mail arrived"
    [message] = mailbox.messages
    return message


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_it_mails_the_title_as_subject_and_the_text_as_body(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = build_channel("mail", {"url": mail_url(port), "timeout": 5})
    channel.send([failing()])
    message = only_mail(mailbox)
    assert message["Subject"] == "[onwatch] FAILING: checkout — 1 test failed"
    assert message["To"] == "ops@example.com"
    body = body_of(message)
    assert body.startswith("checkout is failing: 1 test failed")
    assert "tests/test_pay.py::test_card: AssertionError: expected 200, got 500" in body


def test_it_sends_a_batch_as_one_mail(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    resolved = Notification(
        Event.INCIDENT_RESOLVED, "search:resolved", "search recovered", check="search"
    )
    Apprise("mail", AppriseSettings(url=mail_url(port))).send(
        [failing(), failing("login"), resolved]
    )
    message = only_mail(mailbox)
    assert message["Subject"] == "[onwatch] 3 alerts: 2 failing, 1 resolved"
    body = body_of(message)
    for summary in ("checkout is failing", "login is failing", "search recovered"):
        assert summary in body
    assert body.count(render.RULE) == 2


def test_it_delivers_a_hostile_test_name_as_literal_text(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    hostile = "tests/test_x.py::test_<script>alert(1)</script> **bold** \x1b[31mred\x1b[0m"
    Apprise("mail", AppriseSettings(url=mail_url(port))).send([failing(nodeid=hostile)])
    message = only_mail(mailbox)
    assert message.get_content_type() == "text/plain"
    body = body_of(message)
    assert "test_<script>alert(1)</script> **bold** red: AssertionError" in body
    assert "\x1b" not in body


def test_it_retries_when_the_mail_server_is_down() -> None:
    # A bound socket that does not listen refuses connections, like a stopped server.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = mail_url(port).replace("//", "//u:s3cr3tpw@", 1)
        channel = Apprise("mail", AppriseSettings(url=url))
        with pytest.raises(DeliveryError) as caught:
            channel.send([failing()])
    assert caught.value.permanent is False
    message = str(caught.value)
    assert message.startswith("apprise 'mail': ")
    assert f"127.0.0.1:{port}" in message
    assert "s3cr3tpw" not in message


def test_it_refuses_a_url_apprise_does_not_understand() -> None:
    understood = "channel 'mail': url: .*not a URL Apprise understands.*apprise/wiki"
    with pytest.raises(ValueError, match=understood):
        build_channel("mail", {"url": "mailtoo://127.0.0.1?to=ops@example.com"})


def test_it_names_what_is_wrong_with_a_url_without_showing_its_secrets() -> None:
    with pytest.raises(ValueError) as caught:
        build_channel("mail", {"url": "mailto://u:hunter2@127.0.0.1?from=not-an-address"})
    assert "Invalid ~From~ email" in str(caught.value)
    assert "hunter2" not in str(caught.value)
