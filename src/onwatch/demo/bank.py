"""The bank behind Bankly: users, sessions, settings, follows, chat and balances, all in memory.

A ``Bank`` is created per app and is where each broken feature goes wrong; the ``*In`` models
are the validated inputs both the JSON API and the HTML forms hand it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from onwatch.demo.faults import Faults

# (username, password, display name): published in the README, this is a demo.
DEMO_USERS: Final = (
    ("alice", "wonderland", "Alice"),
    ("bob", "builder", "Bob"),
    ("carol", "singer", "Carol"),
)
# A monitor logs in and posts every few seconds for days: keep memory bounded.
KEEP_SESSIONS: Final = 1000
KEEP_MESSAGES: Final = 200
KEEP_TRANSACTIONS: Final = 50
CENT: Final = Decimal("0.01")


@dataclass(frozen=True)
class Transaction:
    """One credit on an account."""

    id: int
    amount: Decimal
    balance_after: Decimal
    at: str


@dataclass(frozen=True)
class Message:
    """One chat message in a room."""

    id: int
    room: str
    author: str
    text: str
    sent_at: str


@dataclass
class Account:
    """One customer: credentials, settings and money."""

    username: str
    password: str
    display_name: str
    theme: str = "light"
    email_notifications: bool = True
    balance: Decimal = Decimal("0.00")
    transactions: deque[Transaction] = field(
        default_factory=lambda: deque(maxlen=KEEP_TRANSACTIONS)
    )


DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
ChatText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Amount = Annotated[Decimal, Field(gt=0, le=10000, decimal_places=2, allow_inf_nan=False)]


class LoginIn(BaseModel):
    """Credentials posted to log in."""

    username: str
    password: str


class SettingsIn(BaseModel):
    """A full replacement of a user's settings."""

    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName
    theme: Literal["light", "dark"]
    email_notifications: StrictBool


class MessageIn(BaseModel):
    """A chat message to post."""

    model_config = ConfigDict(extra="forbid")
    text: ChatText


class DepositIn(BaseModel):
    """Money to credit: more than 0, at most 10000, whole cents."""

    model_config = ConfigDict(extra="forbid")
    amount: Amount


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Bank:
    """Everything one demo app knows, and where each broken feature goes wrong."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.accounts = {name: Account(name, pw, shown) for name, pw, shown in DEMO_USERS}
        self.sessions: OrderedDict[str, str] = OrderedDict()
        self.follows: set[tuple[str, str]] = set()
        self.rooms: dict[str, deque[Message]] = {}
        self._ids = itertools.count(1)

    async def pace(self, feature: str) -> None:
        """Stall as long as the feature's fault asks (not at all unless it is slow)."""
        delay = self.faults.delay_for(feature)
        if delay:
            await asyncio.sleep(delay)

    def log_in(self, username: str, password: str) -> str | None:
        """Open a session and return its token, or None for bad credentials."""
        account = self.accounts.get(username)
        if account is None or not secrets.compare_digest(
            account.password.encode(), password.encode()
        ):
            return None
        # Broken: the right password is refused too, like an auth backend gone wrong.
        if self.faults.is_broken("login"):
            return None
        token = secrets.token_urlsafe(24)
        self.sessions[token] = username
        while len(self.sessions) > KEEP_SESSIONS:
            self.sessions.popitem(last=False)
        return token

    def log_out(self, token: str | None) -> None:
        """Close a session if it is open."""
        self.sessions.pop(token or "", None)

    def account_for(self, token: str | None) -> Account | None:
        """Return the account a session token belongs to."""
        name = self.sessions.get(token or "")
        return self.accounts[name] if name else None

    def save_settings(self, account: Account, settings: SettingsIn) -> None:
        """Store new settings (broken: accept them and store nothing)."""
        if self.faults.is_broken("settings"):
            return
        account.display_name = settings.display_name
        account.theme = settings.theme
        account.email_notifications = settings.email_notifications

    def follow(self, follower: Account, target: Account) -> None:
        """Make one user follow another (broken: answer fine, record nothing)."""
        if not self.faults.is_broken("follow"):
            self.follows.add((follower.username, target.username))

    def unfollow(self, follower: Account, target: Account) -> None:
        """Stop one user following another."""
        self.follows.discard((follower.username, target.username))

    def profile(self, target: Account, viewer: Account) -> dict[str, Any]:
        """Describe a user as the viewer sees them."""
        return {
            "username": target.username,
            "display_name": target.display_name,
            "followers": sum(1 for _, followee in self.follows if followee == target.username),
            "following": sum(1 for follower, _ in self.follows if follower == target.username),
            "followed_by_you": (viewer.username, target.username) in self.follows,
        }

    def post(self, room: str, author: Account, text: str) -> Message:
        """Post a message to a room (broken: hand back an id, then drop the message)."""
        message = Message(next(self._ids), room, author.username, text, _now())
        if not self.faults.is_broken("chat"):
            self.rooms.setdefault(room, deque(maxlen=KEEP_MESSAGES)).append(message)
        return message

    def messages(self, room: str, after: int = 0) -> list[Message]:
        """Return a room's messages with an id above ``after``, oldest first."""
        return [m for m in self.rooms.get(room, ()) if m.id > after]

    def deposit(self, account: Account, amount: Decimal) -> Transaction:
        """Credit an account (broken: the cents go missing, as if passed through int())."""
        credited = amount.quantize(CENT)
        if self.faults.is_broken("deposit"):
            credited = credited.to_integral_value(rounding=ROUND_DOWN).quantize(CENT)
        account.balance += credited
        transaction = Transaction(next(self._ids), credited, account.balance, _now())
        account.transactions.appendleft(transaction)
        return transaction
