"""What a notification says, and that nothing a test run produced can change how it displays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onwatch.channels import render
from onwatch.channels.notification import Event, FailingTest, Notification

OPENED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
HOSTILE_NAME = "tests/test_x.py::test_<script>alert(1)</script>"
HOSTILE_MESSAGE = "\x1b[31mAssertionError\x1b[0m: **bold** [x](http://evil)\nsecond line"


def opened(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "event": Event.INCIDENT_OPENED,
        "key": "inc-1:opened",
        "summary": "checkout is failing: 2 tests failed",
        "check": "checkout",
        "category": "product",
        "failing_tests": (
            FailingTest("tests/test_pay.py::test_card", "AssertionError: expected 200, got 500"),
            FailingTest("tests/test_pay.py::test_refund", "TimeoutError: no answer"),
        ),
        "run_url": "https://onwatch.example/runs/42",
        "opened_at": OPENED,
        "failing_runs": 3,
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


def resolved(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "event": Event.INCIDENT_RESOLVED,
        "key": "inc-1:resolved",
        "summary": "checkout recovered",
        "check": "checkout",
        "category": "product",
        "opened_at": OPENED,
        "resolved_at": OPENED + timedelta(minutes=12, seconds=5),
        "failing_runs": 3,
        "run_url": "https://onwatch.example/runs/57",
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


def test_it_titles_an_opened_incident_with_the_check_and_the_failure_count() -> None:
    title, _ = render.text(opened())
    assert title == "[onwatch] FAILING: checkout — 2 tests failed"


def test_it_puts_the_summary_first_and_says_what_failed_since_when_and_where() -> None:
    _, body = render.text(opened(flaky_runs=2))
    lines = body.splitlines()
    assert lines[0] == "checkout is failing: 2 tests failed"
    assert "Check: checkout" in lines
    assert "- tests/test_pay.py::test_card: AssertionError: expected 200, got 500" in lines
    assert "- tests/test_pay.py::test_refund: TimeoutError: no answer" in lines
    assert "Failing since: 2026-03-14 09:26:53 UTC" in lines
    assert "Failed runs: 3 in a row" in lines
    assert "Flaky runs: 2" in lines
    assert "Category: product" in lines
    assert "Run: https://onwatch.example/runs/42" in lines


def test_it_shows_only_the_first_line_of_an_error() -> None:
    n = opened(failing_tests=(FailingTest("t.py::test_a", "AssertionError: a\n  diff\n  more"),))
    _, body = render.text(n)
    assert "- t.py::test_a: AssertionError: a" in body.splitlines()
    assert "diff" not in body


def test_it_lists_ten_failing_tests_and_counts_the_rest() -> None:
    tests = tuple(FailingTest(f"t.py::test_{i}", f"boom {i}") for i in range(14))
    title, body = render.text(opened(failing_tests=tests))
    assert title.endswith("— 14 tests failed")
    assert "- t.py::test_9: boom 9" in body
    assert "test_10" not in body
    assert "- and 4 more" in body.splitlines()


def test_it_gives_the_outage_duration_on_recovery() -> None:
    title, body = render.text(resolved())
    assert title == "[onwatch] RESOLVED: checkout after 12m 5s"
    assert body.splitlines()[0] == "checkout recovered"
    assert "Outage: 12m 5s (2026-03-14 09:26:53 UTC to 2026-03-14 09:38:58 UTC)" in body


@pytest.mark.parametrize(
    ("notification", "title"),
    [
        (
            opened(event=Event.INCIDENT_REMINDER),
            "[onwatch] STILL FAILING: checkout — 2 tests failed",
        ),
        (
            Notification(
                Event.CHANNEL_FAILING,
                "ch-1",
                "channel mail is failing: connection refused",
                severity="warning",
                details={"channel": "mail", "error": "connection refused"},
            ),
            "[onwatch] onwatch channel 'mail' is failing",
        ),
        (Notification(Event.TEST, "t-1", "This is a test"), "[onwatch] test notification"),
        (
            Notification(
                Event.CHECK_OVERDUE, "o-1", "checkout has not run for 20m", check="checkout"
            ),
            "[onwatch] OVERDUE: checkout",
        ),
    ],
)
def test_it_titles_each_kind_of_event(notification: Notification, title: str) -> None:
    assert render.text(notification)[0] == title


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (45, "45s"), (725, "12m 5s"), (3600, "1h"), (3725, "1h 2m"), (93600, "1d 2h")],
)
def test_it_writes_durations_in_their_two_largest_units(seconds: float, shown: str) -> None:
    assert render.duration(seconds) == shown


def test_clean_removes_terminal_escapes_and_control_characters() -> None:
    raw = "\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07 bell\x07 nul\x00 \u202eevil"
    assert render.clean(raw) == "red link bell nul evil"


def test_clean_keeps_newlines_unless_asked_for_one_line() -> None:
    assert render.clean("a\r\nb\tc") == "a\nb c"
    assert render.clean("a\r\n\n b\tc", one_line=True) == "a b c"


def test_clean_truncates_with_an_ellipsis() -> None:
    assert render.clean("x" * 500, limit=10) == "x" * 9 + "…"


def test_text_keeps_a_hostile_test_name_on_one_line_without_escapes() -> None:
    n = opened(failing_tests=(FailingTest("t.py::test_a\nInjected: line", HOSTILE_MESSAGE),))
    _, body = render.text(n)
    assert "\x1b" not in body
    assert "- t.py::test_a Injected: line: AssertionError: **bold** [x](http://evil)" in body
    assert "Injected: line" not in body.splitlines()


def test_text_shows_a_name_that_looks_like_markup_exactly_as_it_is() -> None:
    n = opened(failing_tests=(FailingTest(HOSTILE_NAME, "<img src=x onerror=alert(1)>"),))
    title, body = render.text(n)
    assert f"- {HOSTILE_NAME}: <img src=x onerror=alert(1)>" in body.splitlines()
    assert title == "[onwatch] FAILING: checkout — 1 test failed"


def test_batch_title_counts_each_kind() -> None:
    other = opened(check="search", key="inc-2:opened", summary="search is failing")
    title, body = render.batch_text([opened(), other, resolved()])
    assert title == "[onwatch] 3 alerts: 2 failing, 1 resolved"
    sections = body.split("\n\n" + render.RULE + "\n\n")
    assert [s.splitlines()[0] for s in sections] == [
        "checkout is failing: 2 tests failed",
        "search is failing",
        "checkout recovered",
    ]


def test_batch_of_one_is_the_plain_message() -> None:
    assert render.batch_text([opened()]) == render.text(opened())


@pytest.mark.parametrize("event", list(Event))
def test_every_kind_of_event_renders_a_title_and_a_body(event: Event) -> None:
    """A new event that the renderer does not know would fail every mail and chat delivery."""
    n = Notification(event, f"{event.value}|1", f"what happened: {event.value}", severity="info")
    title, body = render.text(n)
    assert title.startswith(render.PREFIX) and "\n" not in title
    assert f"what happened: {event.value}" in title + body
