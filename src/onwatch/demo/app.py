"""Bankly, the demo "production" app: a tiny social bank whose features can be broken on purpose.

Six features (``login``, ``settings``, ``follow``, ``chat``, ``deposit``, ``auth``) each run in
one of three modes: ``ok``, ``broken`` (misbehaves the way a bad deploy would, mostly with a
cheerful 2xx; broken ``auth`` answers 401 to every authenticated API call, as if the monitoring
account's token had been revoked) or ``slow`` (answers after a delay). ``/healthz`` stays green
whatever is broken: catching that gap is what the monitoring suite is for.

This module builds the app and its JSON API and serves it; the faults live in ``faults``, the
in-memory state in ``bank`` (one ``Bank`` per app) and the HTML pages in ``pages``. Serve it
with ``serve()`` from code or ``python -m onwatch.demo.app`` from a shell; flip faults at
``/admin`` or ``/admin/faults``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request

from onwatch.demo.bank import (
    DEMO_USERS,
    Account,
    Bank,
    DepositIn,
    LoginIn,
    Message,
    MessageIn,
    SettingsIn,
    Transaction,
)
from onwatch.demo.faults import DEFAULT_DELAY, FEATURES, MODES, Faults
from onwatch.demo.inbox import Inbox
from onwatch.demo.pages import add_pages
from onwatch.errors import OnwatchError

if TYPE_CHECKING:
    from onwatch.web.server import WebServer

# `onwatch demo` and other callers start the demo through this module: keep its names here.
__all__ = [
    "DEFAULT_DELAY",
    "FEATURES",
    "MODES",
    "DemoServer",
    "Faults",
    "create_app",
    "main",
    "serve",
]

RoomName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
AfterId = Annotated[int, Query(ge=0)]


def _settings_json(account: Account) -> dict[str, Any]:
    return {
        "display_name": account.display_name,
        "theme": account.theme,
        "email_notifications": account.email_notifications,
    }


def _transaction_json(transaction: Transaction) -> dict[str, Any]:
    return {
        "id": transaction.id,
        "amount": str(transaction.amount),
        "balance_after": str(transaction.balance_after),
        "at": transaction.at,
    }


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "room": message.room,
        "author": message.author,
        "text": message.text,
        "sent_at": message.sent_at,
    }


def _bank(request: Request) -> Bank:
    bank: Bank = request.app.state.bank
    return bank


async def _api_account(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Account:
    """Return the account behind the bearer token, or answer 401."""
    bank = _bank(request)
    await bank.pace("auth")
    scheme, _, token = (authorization or "").partition(" ")
    account = bank.account_for(token.strip()) if scheme.lower() == "bearer" else None
    if account is None:
        raise HTTPException(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    # Broken: a valid session is refused, as when the monitoring account's token is revoked.
    if bank.faults.is_broken("auth"):
        raise HTTPException(
            401,
            "token has been revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return account


ApiAccount = Annotated[Account, Depends(_api_account)]


def _other_user(bank: Bank, name: str) -> Account:
    """Return a user by name, or answer 404."""
    account = bank.accounts.get(name)
    if account is None:
        raise HTTPException(404, f"no user named {name!r}")
    return account


def _add_api(app: FastAPI, bank: Bank, inbox: Inbox) -> None:
    """Register the JSON API on the app."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/login")
    async def login(body: LoginIn) -> dict[str, str]:
        await bank.pace("login")
        token = bank.log_in(body.username, body.password)
        if token is None:
            raise HTTPException(401, "invalid username or password")
        return {"token": token}

    @app.get("/api/settings")
    async def get_settings(me: ApiAccount) -> dict[str, Any]:
        await bank.pace("settings")
        return _settings_json(me)

    @app.put("/api/settings")
    async def put_settings(me: ApiAccount, body: SettingsIn) -> dict[str, Any]:
        await bank.pace("settings")
        bank.save_settings(me, body)
        # Echo what was asked, not what was stored: that is how a lost write looks from outside.
        return body.model_dump()

    @app.get("/api/users/{name}")
    async def get_user(me: ApiAccount, name: str) -> dict[str, Any]:
        await bank.pace("follow")
        return bank.profile(_other_user(bank, name), me)

    @app.post("/api/users/{name}/follow")
    async def follow(me: ApiAccount, name: str) -> dict[str, Any]:
        await bank.pace("follow")
        target = _other_user(bank, name)
        if target is me:
            raise HTTPException(400, "you cannot follow yourself")
        bank.follow(me, target)
        return bank.profile(target, me)

    @app.delete("/api/users/{name}/follow")
    async def unfollow(me: ApiAccount, name: str) -> dict[str, Any]:
        await bank.pace("follow")
        target = _other_user(bank, name)
        bank.unfollow(me, target)
        return bank.profile(target, me)

    @app.post("/api/chat/{room}/messages", status_code=201)
    async def post_message(me: ApiAccount, room: RoomName, body: MessageIn) -> dict[str, Any]:
        await bank.pace("chat")
        return _message_json(bank.post(room, me, body.text))

    @app.get("/api/chat/{room}/messages")
    async def get_messages(me: ApiAccount, room: RoomName, after: AfterId = 0) -> dict[str, Any]:
        await bank.pace("chat")
        return {"room": room, "messages": [_message_json(m) for m in bank.messages(room, after)]}

    @app.post("/api/account/deposit")
    async def deposit(me: ApiAccount, body: DepositIn) -> dict[str, Any]:
        await bank.pace("deposit")
        transaction = bank.deposit(me, body.amount)
        return {"balance": str(me.balance), "transaction": _transaction_json(transaction)}

    @app.get("/api/account")
    async def account(me: ApiAccount) -> dict[str, Any]:
        await bank.pace("deposit")
        return {
            "username": me.username,
            "balance": str(me.balance),
            "transactions": [_transaction_json(t) for t in list(me.transactions)[:10]],
        }

    @app.get("/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return bank.faults.snapshot()

    @app.put("/admin/faults")
    async def put_faults(changes: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            bank.faults.apply(changes)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        return bank.faults.snapshot()

    @app.delete("/admin/faults")
    async def delete_faults() -> dict[str, Any]:
        bank.faults.reset()
        return bank.faults.snapshot()

    # onwatch demo points a webhook channel here, so a newcomer sees the alerts it sends.
    @app.post("/admin/inbox")
    async def receive_alert(payload: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
        inbox.add(payload)
        return {"status": "received"}

    @app.get("/admin/inbox")
    async def alerts() -> dict[str, Any]:
        return {"notifications": inbox.latest()}


def create_app(faults: Faults | None = None) -> FastAPI:
    """Build a fresh demo app with its own in-memory bank."""
    bank = Bank(faults if faults is not None else Faults())
    # The interactive docs pull their scripts from a CDN; the demo must work offline.
    app = FastAPI(title="Bankly (onwatch demo)", docs_url=None, redoc_url=None)
    app.state.bank = bank
    app.state.faults = bank.faults
    inbox = Inbox()
    app.state.inbox = inbox
    _add_api(app, bank, inbox)
    add_pages(app, bank, inbox)
    return app


class DemoServer:
    """The demo app served on a background thread; stop it or use it with ``with``."""

    def __init__(self, web: WebServer, faults: Faults) -> None:
        self.url = web.url
        self.faults = faults
        self._web = web

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down gracefully and wait for its thread; later calls do nothing."""
        self._web.stop(timeout)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DemoServer({self.url!r}, faults={self.faults!r})"


def serve(host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None) -> DemoServer:
    """Start the demo app on a background thread and return once it accepts connections."""
    from onwatch.web.server import serve as serve_app

    faults = faults if faults is not None else Faults()
    netloc = f"[{host}]" if ":" in host else host
    try:
        web = serve_app(create_app(faults), f"{netloc}:{port}")
    except OnwatchError as exc:
        raise OnwatchError(f"the demo app could not start on {host}:{port}: {exc}") from None
    return DemoServer(web, faults)


def main(argv: list[str] | None = None) -> int:
    """Serve the demo app in the foreground until interrupted (Ctrl-C, SIGINT or SIGTERM)."""
    # First thing: started from a background shell or nohup, SIGINT arrives ignored, and
    # Ctrl-C would never stop the app.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(
        prog="python -m onwatch.demo.app",
        description="Serve Bankly, the onwatch demo app, whose features can be broken on purpose.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--faults",
        default="",
        metavar="SPEC",
        help='start with faults on, e.g. "chat=broken,deposit=slow"',
    )
    parser.add_argument("--slow-delay", type=float, default=DEFAULT_DELAY, metavar="SECONDS")
    args = parser.parse_args(argv)
    try:
        faults = Faults.parse(args.faults, delay=args.slow_delay)
    except ValueError as error:
        parser.error(str(error))
    try:
        server = serve(args.host, args.port, faults)
    except OnwatchError as error:
        parser.exit(2, f"{error}\n")
    with server:
        users = ", ".join(f"{name}/{password}" for name, password, _ in DEMO_USERS)
        print(
            f"Bankly is up at {server.url} (users {users}); faults at {server.url}/admin."
            " Ctrl-C stops it.",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
