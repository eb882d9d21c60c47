"""Bankly's server-rendered pages: log in, the home page and its forms, and the faults admin.

The pages keep their session in a cookie and post plain urlencoded forms, so a browser test
can drive every feature the JSON API offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any, Final, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from onwatch.demo.bank import DEMO_USERS, Account, Bank, DepositIn, MessageIn, SettingsIn
from onwatch.demo.faults import MODES, Faults
from onwatch.demo.inbox import Inbox

HOME_ROOM: Final = "general"
SESSION_COOKIE: Final = "bankly_session"
HomeForm = Literal["settings", "follow", "chat", "deposit"]
NOTICES: Final = {
    "settings": "Settings saved.",
    "follow": "Done.",
    "chat": "Message sent.",
    "deposit": "Deposit received.",
}
_CSS: Final = (
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}"
    "body.dark{background:#1e1f22;color:#ddd}body.dark a{color:#8ab4f8}"
    "form{display:inline}label{display:block;margin:.3rem 0}section{margin:1.5rem 0}"
    ".notice{color:#2a7a2a}.error{color:#b00020}td,th{padding:.2rem .6rem;text-align:left}"
)


def _page(title: str, body: str, *, theme: str = "light", status: int = 200) -> HTMLResponse:
    """Wrap a body in the one layout every page shares."""
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f" · Bankly</title><style>{_CSS}</style></head>"
        f'<body class="{escape(theme)}">{body}</body></html>',
        status_code=status,
    )


def _alert(text: str, kind: str) -> str:
    return f'<p id="{kind}" class="{kind}" role="status">{escape(text)}</p>' if text else ""


def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    users = ", ".join(f"{name} / {password}" for name, password, _ in DEMO_USERS)
    return _page(
        "Log in",
        f"""<h1>Bankly</h1>{_alert(error, "error")}
<form id="login-form" method="post" action="/login">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Log in</button></form>
<p>Demo users: {escape(users)}. Break things at <a href="/admin">/admin</a>.</p>""",
        status=status,
    )


def _person(profile: Mapping[str, Any]) -> str:
    name = escape(profile["username"])
    action = "unfollow" if profile["followed_by_you"] else "follow"
    return (
        f'<li id="user-{name}">{escape(profile["display_name"])} '
        f'(<span class="followers">{profile["followers"]}</span> followers) '
        f'<form method="post" action="/home/follow"><input type="hidden" name="name" '
        f'value="{name}"><button name="action" value="{action}">{action.title()}</button>'
        "</form></li>"
    )


def _home_page(
    bank: Bank, me: Account, notice: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    people = "".join(
        _person(bank.profile(other, me)) for other in bank.accounts.values() if other is not me
    )
    chat = "".join(
        f"<li><b>{escape(m.author)}</b>: {escape(m.text)}</li>"
        for m in bank.messages(HOME_ROOM)[-20:]
    )
    history = "".join(
        f"<li>+{t.amount} (balance {t.balance_after})</li>" for t in list(me.transactions)[:5]
    )
    themes = "".join(
        f"<option{' selected' if t == me.theme else ''}>{t}</option>" for t in ("light", "dark")
    )
    checked = " checked" if me.email_notifications else ""
    name = escape(me.display_name)
    return _page(
        "Home",
        f"""<h1>Hello, <span id="display-name">{name}</span></h1>
<form method="post" action="/logout"><button>Log out</button></form>
{_alert(notice, "notice")}{_alert(error, "error")}
<section><h2>Balance: <span id="balance">{me.balance}</span></h2>
<form id="deposit-form" method="post" action="/home/deposit">
<input name="amount" inputmode="decimal" required> <button>Deposit</button></form>
<ul id="transactions">{history}</ul></section>
<section><h2>#{HOME_ROOM}</h2><ul id="chat-messages">{chat}</ul>
<form id="chat-form" method="post" action="/home/chat">
<input name="text" maxlength="500" required> <button>Send</button></form></section>
<section><h2>People</h2><ul id="people">{people}</ul></section>
<section><h2>Settings</h2><form id="settings-form" method="post" action="/home/settings">
<label>Display name <input name="display_name" value="{name}" required></label>
<label>Theme <select name="theme">{themes}</select></label>
<label><input type="checkbox" name="email_notifications"{checked}> Email notifications</label>
<button>Save</button></form></section>""",
        theme=me.theme,
        status=status,
    )


def _admin_page(faults: Faults, inbox: Inbox, error: str = "", status: int = 200) -> HTMLResponse:
    snapshot = faults.snapshot()
    alerts = (
        "".join(
            f"<li><b>{escape(str(n.get('event')))}</b> {escape(str(n.get('summary')))}</li>"
            for n in inbox.latest()[:20]
        )
        or "<li>none yet</li>"
    )
    rows = "".join(
        f'<tr id="fault-{feature}"><th>{feature}</th><td class="mode">{mode}</td><td>'
        f'<form method="post" action="/admin"><input type="hidden" name="feature" '
        f'value="{feature}">'
        + "".join(
            f'<button name="mode" value="{m}"{" disabled" if m == mode else ""}>{m}</button>'
            for m in MODES
        )
        + "</form></td></tr>"
        for feature, mode in snapshot["faults"].items()
    )
    return _page(
        "Faults",
        f"""<h1>Bankly faults</h1>{_alert(error, "error")}
<p>Break a feature and watch the monitor notice; slow answers after
{snapshot["slow_delay"]:g} s. <code>/healthz</code> stays green either way.</p>
<table id="faults">{rows}</table>
<form method="post" action="/admin"><button name="reset" value="true">Reset all</button></form>
<h2>Alerts onwatch sent</h2>
<ul id="alerts">{alerts}</ul>
<p><a href="/">Back to Bankly</a></p>""",
        status=status,
    )


async def _form(request: Request) -> dict[str, str]:
    """Read a urlencoded form body, keeping the first value of each field."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())


def _submit(bank: Bank, me: Account, form_name: HomeForm, form: Mapping[str, str]) -> None:
    """Carry out one home page form; raise ValidationError or LookupError on bad input."""
    if form_name == "settings":
        bank.save_settings(
            me,
            SettingsIn.model_validate(
                {
                    "display_name": form.get("display_name", ""),
                    "theme": form.get("theme", ""),
                    "email_notifications": "email_notifications" in form,
                }
            ),
        )
    elif form_name == "follow":
        target = bank.accounts.get(form.get("name", ""))
        if target is None or target is me:
            raise LookupError("Pick someone else to follow.")
        (bank.follow if form.get("action") == "follow" else bank.unfollow)(me, target)
    elif form_name == "chat":
        bank.post(HOME_ROOM, me, MessageIn.model_validate({"text": form.get("text", "")}).text)
    else:
        bank.deposit(me, DepositIn.model_validate({"amount": form.get("amount", "")}).amount)


def add_pages(app: FastAPI, bank: Bank, inbox: Inbox) -> None:
    """Register the server-rendered pages, which use a cookie session."""

    @app.get("/")
    async def index(request: Request) -> Response:
        if bank.account_for(request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse("/home", 303)
        return _login_page()

    @app.post("/login")
    async def login_form(request: Request) -> Response:
        form = await _form(request)
        await bank.pace("login")
        token = bank.log_in(form.get("username", ""), form.get("password", ""))
        if token is None:
            return _login_page("Invalid username or password.", 401)
        response = RedirectResponse("/home", 303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax")
        return response

    @app.post("/logout")
    async def logout_form(request: Request) -> Response:
        bank.log_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/home")
    async def home(request: Request, done: str = "") -> Response:
        me = bank.account_for(request.cookies.get(SESSION_COOKIE))
        if me is None:
            return RedirectResponse("/", 303)
        return _home_page(bank, me, notice=NOTICES.get(done, ""))

    @app.post("/home/{form_name}")
    async def home_form(request: Request, form_name: HomeForm) -> Response:
        me = bank.account_for(request.cookies.get(SESSION_COOKIE))
        if me is None:
            return RedirectResponse("/", 303)
        form = await _form(request)
        await bank.pace(form_name)
        try:
            _submit(bank, me, form_name, form)
        except ValidationError as error:
            return _home_page(bank, me, error=_describe(error), status=422)
        except LookupError as error:
            return _home_page(bank, me, error=str(error), status=422)
        return RedirectResponse(f"/home?done={form_name}", 303)

    @app.get("/admin")
    async def admin() -> Response:
        return _admin_page(bank.faults, inbox)

    @app.post("/admin")
    async def admin_form(request: Request) -> Response:
        form = await _form(request)
        changes: dict[str, object] = (
            {"reset": True} if "reset" in form else {form.get("feature", ""): form.get("mode")}
        )
        try:
            bank.faults.apply(changes)
        except ValueError as error:
            return _admin_page(bank.faults, inbox, str(error), 422)
        return RedirectResponse("/admin", 303)
