"""Customers' paths through Bankly's pages in a real browser: log in, change settings, follow
someone, chat and deposit, each checked by what the page then shows.

The API checks prove that each endpoint answers; these prove that a person can get through the
pages. Each journey times its steps (``onwatch.steps.step``), so a slow run shows which step
was slow, and onwatch keeps a screenshot, the HTML and the console of a journey that fails.
Without Playwright or Chromium the journeys are skipped, and the API checks run as before.
"""

from __future__ import annotations

import os
import shutil
import uuid
from decimal import Decimal

import pytest

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:
    pytest.skip(
        "the browser journeys need Playwright: pip install playwright", allow_module_level=True
    )

from onwatch.steps import step

# Looked up as the ``browser`` fixture does: skipping the module here says why in one line.
CHROMIUM = os.environ.get("ONWATCH_BROWSER") or "/usr/bin/chromium"
if shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"the browser journeys need Chromium, and there is none at {CHROMIUM}: "
        "apt-get install chromium, or set ONWATCH_BROWSER",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.monitor, pytest.mark.journey]

# Carol, not alice: the API checks act as alice at the same moments, and a journey's settings
# or follow must not land between one of their writes and the read that checks it.
USERNAME = "carol"
PASSWORD = "singer"
DEPOSIT = Decimal("12.34")  # with cents: a deposit that loses them shows


def submit(page: Page, button: Locator, doing: str) -> None:
    """Click a form's button, wait for the page the app answers with, and fail on its error."""
    with page.expect_navigation():
        button.click()
    error = page.locator("#error")
    assert not error.count(), f"{doing} failed, the page says: {error.inner_text()}"


def log_in(page: Page) -> None:
    """Log in through the login form and land on the home page."""
    page.goto("/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    submit(page, page.get_by_role("button", name="Log in"), f"logging in as {USERNAME}")
    expect(page.locator("#display-name"), "logging in did not reach the home page").to_be_visible()


def test_a_customer_logs_in_and_out(page: Page) -> None:
    with step("open the login page"):
        page.goto("/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()

    with step("log in"):
        log_in(page)

    with step("log out"):
        submit(page, page.get_by_role("button", name="Log out"), "logging out")
        # The session is gone: the home page sends us back to the login form.
        page.goto("/home")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_saved_settings_show_on_the_home_page(page: Page) -> None:
    with step("log in"):
        log_in(page)

    # Flip every field and pick a fresh name, so the journey means something on every run.
    name = f"Carol {uuid.uuid4().hex[:6]}"
    theme = "light" if page.locator("body.dark").count() else "dark"
    with step("save new settings"):
        form = page.locator("#settings-form")
        form.get_by_label("Display name").fill(name)
        form.get_by_label("Theme").select_option(theme)
        notifications = form.get_by_label("Email notifications")
        wanted_notifications = not notifications.is_checked()
        notifications.set_checked(wanted_notifications)
        submit(page, form.get_by_role("button", name="Save"), "saving settings")

    with step("see them on the home page"):
        expect(page.locator("#notice")).to_have_text("Settings saved.")
        greeted = page.locator("#display-name").inner_text()
        assert greeted == name, f"saved the display name {name!r}, but the page greets {greeted!r}"
        assert page.locator(f"body.{theme}").count(), f"saved the {theme} theme, it is not shown"
        assert notifications.is_checked() == wanted_notifications, (
            "saved email notifications "
            f"{'on' if wanted_notifications else 'off'}, but the box says otherwise"
        )


def test_following_someone_shows_on_their_card(page: Page) -> None:
    # Alice: nobody else follows her, and the API checks never count her followers.
    card = page.locator("#user-alice")
    with step("log in"):
        log_in(page)
        unfollow = card.get_by_role("button", name="Unfollow", exact=True)
        if unfollow.count():  # an earlier run left us following her
            submit(page, unfollow, "unfollowing alice")

    with step("follow alice"):
        before = int(card.locator(".followers").inner_text())
        submit(page, card.get_by_role("button", name="Follow", exact=True), "following alice")

    with step("see alice followed"):
        expect(page.locator("#notice")).to_have_text("Done.")
        after = int(card.locator(".followers").inner_text())
        button = card.get_by_role("button").inner_text()
        assert (button, after) == ("Unfollow", before + 1), (
            f"followed alice, but her card says {after} followers (before: {before}) "
            f"and offers to {button}"
        )


def test_a_chat_message_appears_in_the_room(page: Page) -> None:
    text = f"journey {uuid.uuid4().hex[:8]}"
    with step("log in"):
        log_in(page)

    with step("send a message"):
        form = page.locator("#chat-form")
        form.get_by_role("textbox").fill(text)
        submit(page, form.get_by_role("button", name="Send"), "sending a chat message")

    with step("see it in #general"):
        expect(page.locator("#notice")).to_have_text("Message sent.")
        shown = page.locator("#chat-messages li").all_inner_texts()
        assert f"{USERNAME}: {text}" in shown, (
            f"sent {text!r}, but #general shows only: {shown[-3:]}"
        )


def test_a_deposit_shows_in_the_balance(page: Page) -> None:
    with step("log in"):
        log_in(page)

    balance = page.locator("#balance")
    with step(f"deposit {DEPOSIT}"):
        before = Decimal(balance.inner_text())
        form = page.locator("#deposit-form")
        form.get_by_role("textbox").fill(str(DEPOSIT))
        submit(page, form.get_by_role("button", name="Deposit"), f"depositing {DEPOSIT}")

    with step("see the new balance"):
        expect(page.locator("#notice")).to_have_text("Deposit received.")
        # Only these journeys touch carol's money, so the balance must move by exactly this.
        after = Decimal(balance.inner_text())
        assert after == before + DEPOSIT, (
            f"deposited {DEPOSIT} on a balance of {before}, but the page shows {after}"
        )
        latest = page.locator("#transactions li").first.inner_text()
        assert latest.startswith(f"+{DEPOSIT} "), f"the latest transaction reads {latest!r}"
