"""A secret planted everywhere a test can leak it appears nowhere onwatch keeps, shows or sends.

One real ``onwatch run`` runs the suite ``tests/fixtures/secrets``, whose tests all fail while
leaking three secrets (one from the environment, a multi-line key from a file, one printed by a
command) through every path a test has: messages, HTTP client errors, header dumps, locals in
tracebacks, output, log records, properties, test ids, over-long messages, every encoded form,
and a browser page's HTML, console and trace. Once the failures are recorded and alerted by
webhook and by mail, the raw bytes of the database, the artifacts, the state folder, the
daemon's log, every webhook body, every mail and every HTTP answer are searched for every form
of every secret.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from browser import chromium_path
from daemon import Daemon
from needs import free_port
from onwatch.masking import MIN_LENGTH, encodings
from receivers import HttpReceiver, Mailbox, smtp_server
from suites import make_project

pytestmark = pytest.mark.e2e

# Slash, plus, equals, ampersand, quote, non-ASCII...: it changes under every encoding, and its
# base64 has "+" or "/" at each byte alignment, so the standard and URL-safe forms differ.
API_TOKEN = 'Pr0d/T0ken+K3y=!&é"~>?'
PEM_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
-----END PRIVATE KEY-----"""
VAULT_TOKEN = "V4ult+T0ken/from=cmd"  # what secrets/vault.sh prints
SECRETS = {"API_TOKEN": API_TOKEN, "PEM_KEY": PEM_KEY, "VAULT_TOKEN": VAULT_TOKEN}
ADMIN_TOKEN = "leak-test-admin-token"
CHECKS = ("leaky", "page")
PLACES = (
    "database",
    "artifacts",
    "state folder",
    "daemon log",
    "any file onwatch wrote",
    "webhook",
    "email",
    "http",
)


def searched_forms() -> dict[bytes, str]:
    """Return every form of every secret to look for, each with a name that hides the value."""
    found: dict[bytes, str] = {}
    for name, value in SECRETS.items():
        forms = list(encodings(value))
        # Written out here too, so that a form dropped from onwatch.masking is still searched.
        forms += [
            ("as written", value),
            ("as httpx, requests and Chromium send it", quote(value, safe="!#$&'()*+,/:;=?@[]~")),
            ("as encodeURIComponent writes it", quote(value, safe="!'()*")),
            ("in a pytest test id", value.encode("unicode_escape").decode()),
            ("in repr() of its bytes", repr(value.encode())[2:-1]),
            ("JSON-escaped in repr()", repr(json.dumps(value))[2:-2]),
            ("JSON-escaped twice", json.dumps(json.dumps(value, ensure_ascii=False))[3:-3]),
        ]
        # A secret cut in two (a message cut to length) leaves one half or more of it.
        half = -(-len(value) // 2)
        forms += [
            ("cut in two (a half or more of it)", value[start : start + half])
            for start in range(len(value) - half + 1)
        ]
        for encoding, text in forms:
            if len(text) >= MIN_LENGTH:
                found.setdefault(text.encode(), f"{name} {encoding}")
    return found


FORMS = searched_forms()


@dataclass
class Leftovers:
    """Everything onwatch kept, showed and sent while and after it ran the leaking suite."""

    root: Path
    inputs: set[Path] = field(default_factory=set)  # the project's files before onwatch ran
    places: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    mails: list[str] = field(default_factory=list)  # decoded headers and parts of each mail
    answers: dict[str, httpx.Response] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # check: its first failed run

    def __repr__(self) -> str:
        return f"Leftovers({self.root})"  # the bytes it holds stay out of failure reports

    def results(self, check: str) -> dict[str, dict[str, Any]]:
        """Return the results of a check's failed run by test name."""
        return {r["nodeid"].split("::")[-1]: r for r in self.runs[check]["results"]}

    def stored(self, artifact: dict[str, Any]) -> bytes:
        """Return the bytes of an artifact as the artifact store keeps them."""
        sha = artifact["sha256"]
        return (self.root / "artifacts" / sha[:2] / sha).read_bytes()


def project(root: Path, listen: str, hook: str, smtp_port: int) -> Path:
    check = {
        "every": "1s",
        "timeout": "60s",
        "alert_after": 1,
        "notify": ["hook", "mail"],
        "secrets": {"PEM_KEY": "file:pem.txt", "VAULT_TOKEN": "cmd:sh secrets/vault.sh"},
    }
    config = make_project(
        root,
        {
            "leaky": {"tests": ["secrets/test_leaks.py"], "pytest_args": ["-l"], **check},
            "page": {
                "tests": ["secrets/test_page.py"],
                "browser": True,
                "screenshots": False,
                "tracing": True,
                **check,
            },
        },
        settings={
            "listen": listen,
            "max_jitter": "1ms",
            "drain_timeout": "1s",
            "secrets": {"API_TOKEN": "env:LEAK_API_TOKEN"},
        },
        suites=("secrets",),
        channels={
            "hook": {"type": "webhook", "url": hook},
            # One mail: the second incident waits for the end of the group window (60 s).
            "mail": {
                "url": f"mailto://127.0.0.1:{smtp_port}?from=onwatch@example.com&to=ops@example.com"
            },
        },
    )
    (root / "pem.txt").write_text(PEM_KEY + "\n")
    return config


def wait_until(condition: Callable[[], bool], what: str, daemon: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or daemon.process.poll() is not None:
            raise AssertionError(f"{what}; daemon log:\n{daemon.log_path.read_text()[-5000:]}")
        time.sleep(0.05)


def opened_checks(receiver: HttpReceiver) -> set[str]:
    bodies = [r.json() for r in list(receiver.received)]
    return {b["check"] for b in bodies if b["event"] == "incident.opened"}


def mail_texts(message: EmailMessage) -> list[str]:
    """Return a mail's headers and every part, decoded from base64 or quoted-printable."""
    texts = [f"{key}: {value}" for key, value in message.items()]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return texts


def fetch_everything(url: str) -> dict[str, httpx.Response]:
    """GET the API, the pages, /metrics, every artifact and a few error pages, as an admin."""
    answers: dict[str, httpx.Response] = {}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:

        def get(path: str) -> httpx.Response:
            answers[path] = client.get(path)
            return answers[path]

        for path in ("/", "/metrics", "/healthz", "/api/v1/checks", "/api/v1/incidents"):
            get(path)
        for check in CHECKS:
            get(f"/checks/{check}")
            get(f"/api/v1/checks/{check}")
        for run in get("/api/v1/runs?limit=500").json()["runs"]:
            get(f"/runs/{run['id']}")
            detail = get(f"/api/v1/runs/{run['id']}").json()
            for result in detail["results"]:
                for artifact in result["artifacts"]:
                    if artifact["url"]:
                        get(artifact["url"])
                # One page per kind of test is enough; they all render the same way.
                nodeid = result["nodeid"]
                if "secret" in nodeid or "encoded_form" not in nodeid:
                    check = run["check"]
                    get(f"/checks/{check}/tests/{quote(nodeid)}")
                    get(f"/api/v1/checks/{check}/history?test={quote(nodeid, safe='')}")
        for path in (
            "/no/such/page",
            "/runs/no-such-run",
            "/checks/no-such-check",
            "/api/v1/runs/no-such-run",
            "/api/v1/runs?limit=many",
            f"/artifacts/{'0' * 64}/page.html",
        ):
            get(path)
    return answers


def expanded(where: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``data`` and, for a zip archive (a Playwright trace), each of its members."""
    yield where, data
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                yield f"{where}!{info.filename}", archive.read(info)


def files(paths: Iterator[Path]) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for path in sorted(paths):
        if path.is_file():
            found += expanded(str(path), path.read_bytes())
    return found


def gather(
    root: Path, daemon: Daemon, receiver: HttpReceiver, mailbox: Mailbox, leftovers: Leftovers
) -> None:
    """Collect the raw bytes of every place onwatch may have left a secret in."""
    written = [p for p in root.rglob("*") if p.is_file() and p not in leftovers.inputs]
    http = []
    for path, answer in leftovers.answers.items():
        head = f"{answer.status_code}\n" + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
        http += expanded(f"GET {path}", head.encode() + answer.content)
    mails: list[tuple[str, bytes]] = []
    for number, (raw, message) in enumerate(zip(mailbox.raw, mailbox.messages, strict=True)):
        mails.append((f"mail {number} as sent", raw))
        texts = mail_texts(message)
        mails += [(f"mail {number} decoded", text.encode()) for text in texts]
        leftovers.mails.append("\n".join(texts))
    leftovers.places = {
        "database": files(root.glob("onwatch.db*")),
        "artifacts": files((root / "artifacts").rglob("*")),
        "state folder": files((root / ".onwatch").rglob("*")),
        "daemon log": files(iter([daemon.log_path])),
        "any file onwatch wrote": files(iter(written)),
        "webhook": [
            (f"webhook {n}", json.dumps(r.headers).encode() + r.body)
            for n, r in enumerate(receiver.received)
        ],
        "email": mails,
        "http": http,
    }
    leftovers.webhooks = [r.json() for r in receiver.received]


@pytest.fixture(scope="module")
def leftovers(tmp_path_factory: pytest.TempPathFactory) -> Leftovers:
    chromium_path()  # skips without Chromium, or fails when CI is set
    root = tmp_path_factory.mktemp("leaks")
    listen = f"127.0.0.1:{free_port()}"
    found = Leftovers(root)
    with HttpReceiver() as receiver, smtp_server() as (mailbox, smtp_port):
        config = project(root, listen, f"{receiver.url}/hook", smtp_port)
        found.inputs = {p for p in root.rglob("*") if p.is_file()}
        env = {"LEAK_API_TOKEN": API_TOKEN, "ONWATCH_TOKEN": ADMIN_TOKEN}
        with Daemon(config, env=env) as daemon:

            def failed() -> set[str]:
                return {r["check"] for r in daemon.runs() if r["status"] == "failed"}

            wait_until(lambda: failed() == set(CHECKS), "no failed run of each check", daemon, 60)
            wait_until(
                lambda: opened_checks(receiver) == set(CHECKS), "no webhook alerts", daemon, 20
            )
            wait_until(lambda: bool(mailbox.messages), "no mail", daemon, 20)
            found.answers = fetch_everything(f"http://{listen}")
            # The write-ahead log is folded into the database file when onwatch stops.
            running = files(root.glob("onwatch.db-*"))
            assert daemon.stop() == 0
        gather(root, daemon, receiver, mailbox, found)
        found.places["database"] += [(f"{where} (while running)", d) for where, d in running]
    runs = found.answers["/api/v1/runs?limit=500"].json()["runs"]
    for check in CHECKS:
        first = next(r for r in reversed(runs) if r["check"] == check and r["status"] == "failed")
        found.runs[check] = found.answers[f"/api/v1/runs/{first['id']}"].json()
    return found


@pytest.mark.parametrize("place", PLACES)
def test_no_form_of_any_secret_is_left_in(place: str, leftovers: Leftovers) -> None:
    searched = leftovers.places[place]
    if place != "state folder":  # empty once every run is recorded
        assert searched, f"nothing was collected from the {place}: the scenario did not run"
    hits = sorted(
        {
            f"{where}: {what}"
            for where, data in searched
            for form, what in FORMS.items()
            if form in data
        }
    )
    assert not hits, f"secrets found in the {place}:\n" + "\n".join(hits)


def test_each_leak_path_reached_onwatch_and_was_masked(leftovers: Leftovers) -> None:
    results = leftovers.results("leaky")
    assert all(r["outcome"] == "failed" for r in results.values())
    token = "[secret:API_TOKEN]"
    assert results["test_assertion_message"]["message"].startswith(
        f"AssertionError: login with token {token} was refused"
    )
    assert f"/x?token={token} failed" in results["test_httpx_error_names_the_url"]["message"]
    for name in (
        "test_requests_error_names_the_url",
        "test_requests_error_names_the_url_as_written",
    ):
        assert f"with url: /x?token={token} " in results[name]["message"]
    dump = results["test_header_dump"]
    assert f"'Authorization': 'Bearer {token}'" in dump["message"]
    # Only the base64 characters that also encode the user name are left around the secret.
    basic = re.findall(
        r"'Basic ([A-Za-z0-9+/]{0,8})\[secret:API_TOKEN\]([A-Za-z0-9+/=]{0,4})'", dump["message"]
    )
    assert len(basic) == 3 and dump["output"].count(token) == 5
    traceback = results["test_locals_in_the_traceback"]["traceback"]
    for local in (
        f"token      = '{token}'",
        f"body       = b'token={token}'",
        "vault      = '[secret:VAULT_TOKEN]'",
        "key        = '[secret:PEM_KEY]'",
        f"settings   = {{'api': {{'token': '{token}'}}}}",
    ):
        assert local in traceback
    printed = results["test_printed_output"]["output"]
    assert f"calling the API with {token}" in printed
    assert "vault said [secret:VAULT_TOKEN]" in printed
    assert printed.count("[secret:PEM_KEY]") >= 1
    logged = results["test_log_record"]["output"]
    assert f"token {token} was rejected" in logged and "[secret:PEM_KEY]" in logged
    assert results["test_recorded_property"]["properties"] == [
        ["token", token],
        ["request", {"headers": {"Authorization": f"Bearer {token}"}}],
        ["vault [secret:VAULT_TOKEN]", "as a key"],
    ]
    assert {"test_a_secret_in_the_test_id[[secret:API_TOKEN]]"} <= set(results)
    assert {"test_a_secret_in_the_test_id[[secret:VAULT_TOKEN]]"} <= set(results)
    cut = results["test_a_message_longer_than_onwatch_keeps"]["message"]
    assert f"x{token}" in cut and "characters cut" in cut
    assert f"x{token}" in results["test_output_longer_than_onwatch_keeps"]["output"]


def test_every_encoded_form_is_masked_whole(leftovers: Leftovers) -> None:
    planted = [r for n, r in leftovers.results("leaky").items() if "encoded_form" in n]
    distinct = {text for value in SECRETS.values() for _, text in encodings(value)}
    assert len(planted) == len(distinct)
    for result in planted:
        name = result["nodeid"].split("[")[1].split("-")[0]
        # Nothing of the form is left around the placeholder: the whole of it was recognised.
        assert result["message"] == f"Failed: the server answered: [secret:{name}]", result[
            "nodeid"
        ]


def test_the_failing_page_keeps_masked_html_console_and_trace_but_no_screenshot(
    leftovers: Leftovers,
) -> None:
    [result] = leftovers.results("page").values()
    token = "[secret:API_TOKEN]"
    assert result["message"].endswith(f"/account?token={token} shows {token}")
    artifacts = {a["kind"]: a for a in result["artifacts"]}
    assert set(artifacts) == {"html", "console", "trace"}
    html = leftovers.stored(artifacts["html"]).decode()
    assert f'<p id="raw">{token}</p>' in html
    assert f'<p id="escaped" title="{token}">{token}</p>' in html
    assert f'href="/next?token={token}"' in html and f'value="{token}"' in html
    assert f"const token = {json.dumps(token)};" in html
    assert re.search(r"Authorization: Basic YWxpY2U6\[secret:API_TOKEN\]", html)
    console = leftovers.stored(artifacts["console"]).decode()
    for line in (
        f"[log] token {token}",
        f"[info] encoded {token}",
        f'[warning] json {{"token":"{token}"}}',
        f"[pageerror] Error: session of {token} expired",
    ):
        assert line in console
    trace = dict(expanded("trace", leftovers.stored(artifacts["trace"])))
    assert any(token.encode() in data for where, data in trace.items() if "!" in where)


def test_the_alerts_say_what_failed_with_the_secrets_masked(leftovers: Leftovers) -> None:
    opened = {b["check"]: b for b in leftovers.webhooks if b["event"] == "incident.opened"}
    assert set(opened) == set(CHECKS)
    for body in opened.values():
        messages = [t["message"] for t in body["failing_tests"]]
        assert any("[secret:API_TOKEN]" in m for m in messages), messages
    mail = leftovers.mails[0]
    assert "leaky is failing" in mail or "page is failing" in mail
    assert "[secret:API_TOKEN]" in mail


def test_the_api_pages_and_metrics_show_the_masked_text(leftovers: Leftovers) -> None:
    answers = leftovers.answers
    metrics = answers["/metrics"].text
    assert 'test="test_leaks.py::test_a_secret_in_the_test_id[[secret:API_TOKEN]]"' in metrics
    run_page = answers[f"/runs/{leftovers.runs['leaky']['id']}"]
    assert run_page.status_code == 200 and "[secret:API_TOKEN]" in run_page.text
    page = leftovers.results("page")["test_account_page"]
    html_url = next(a["url"] for a in page["artifacts"] if a["kind"] == "html")
    assert answers[html_url].status_code == 200
    assert b"[secret:API_TOKEN]" in answers[html_url].content
    for path in ("/no/such/page", "/runs/no-such-run", "/api/v1/runs/no-such-run"):
        assert answers[path].status_code == 404
        assert "Traceback" not in answers[path].text
