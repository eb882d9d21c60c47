"""Failure categories, judged from real exceptions and the texts real clients produce."""

from __future__ import annotations

import http.server
import importlib
import socket
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pytest

from onwatch.analysis.categorize import (
    Category,
    Patterns,
    categorize,
    dominant_category,
    innermost_file,
    summarize,
)
from onwatch.model import Outcome, TestResult


class Answer(http.server.BaseHTTPRequestHandler):
    """Answers /401, /403, /500 ... with that status, and /slow after a second."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        name = self.path.strip("/")
        if name == "slow":
            time.sleep(1)
            name = "200"
        body = b'{"detail": "see status"}'
        try:
            self.send_response(int(name))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client of /slow gave up first, as it was meant to

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def raised(call: Callable[[], object]) -> BaseException:
    """Return what ``call`` raises."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 (any exception is a sample here)
        return exc
    raise AssertionError("expected an exception")


def failure(
    exc: BaseException,
    *,
    outcome: Outcome = Outcome.FAILED,
    phase: str = "call",
    category: str | None = None,
    final: bool = True,
) -> TestResult:
    """Record ``exc`` the way the plugin does: type name, pytest's message, the traceback."""
    kind = type(exc)
    qualified = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return TestResult(
        nodeid="tests/test_shop.py::test_it",
        outcome=outcome,
        phase=phase,
        duration=0.1,
        exception=kind.__name__,
        message=f"{qualified}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        category=category,
        final=final,
    )


def reported(
    exception: str | None,
    message: str,
    *,
    traceback: str | None = None,
    outcome: Outcome = Outcome.FAILED,
    phase: str = "call",
) -> TestResult:
    """Return a result as the plugin reports it, from texts other tools print."""
    return TestResult(
        nodeid="tests/test_shop.py::test_it",
        outcome=outcome,
        phase=phase,
        duration=0.1,
        exception=exception,
        message=message,
        traceback=traceback,
    )


def status_error(url: str, status: int) -> BaseException:
    return raised(lambda: httpx.get(f"{url}/{status}").raise_for_status())


def status_assertion(url: str, status: int, expected: int = 200) -> BaseException:
    """Fail the way a test asserting a status code fails (this module's asserts are rewritten)."""

    def check() -> None:
        response = httpx.get(f"{url}/{status}")
        assert response.status_code == expected

    return raised(check)


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_an_httpx_401_or_403_is_credentials(url: str, status: int) -> None:
    exc = status_error(url, status)

    assert isinstance(exc, httpx.HTTPStatusError)
    assert categorize(failure(exc)) is Category.CREDENTIALS


def test_an_httpx_500_is_the_product(url: str) -> None:
    assert categorize(failure(status_error(url, 500))) is Category.PRODUCT


def test_a_urllib_403_is_credentials(url: str) -> None:
    exc = raised(lambda: urllib.request.urlopen(f"{url}/403", timeout=5))

    assert isinstance(exc, urllib.error.HTTPError)
    exc.close()  # the error holds the response open
    assert str(exc) == "HTTP Error 403: Forbidden"
    assert categorize(failure(exc)) is Category.CREDENTIALS


def test_an_assertion_that_received_a_401_is_credentials(url: str) -> None:
    exc = status_assertion(url, 401)

    assert "assert 401 == 200" in str(exc)
    assert categorize(failure(exc)) is Category.CREDENTIALS


def test_an_assertion_that_expected_a_401_and_got_200_is_the_product(url: str) -> None:
    exc = status_assertion(url, 200, expected=401)

    assert "assert 200 == 401" in str(exc)
    assert categorize(failure(exc)) is Category.PRODUCT


@pytest.mark.parametrize(
    "message",
    [
        # requests' raise_for_status()
        "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: "
        "https://shop.example.com/api/me",
        # Playwright's expect(response).to_be_ok()
        "AssertionError: Response status expected to be within [200..299] range, was '403'\n"
        "Call log:\n  - → GET https://shop.example.com/api/orders\n  - ← 403 Forbidden",
        "AssertionError: API answered status 401 for GET /api/orders",
        "AssertionError: expected 200, got 403",
        "AssertionError: reading the account answered HTTP 401\nassert 401 == 200",
        "AssertionError: status_code == 401 after login",
        "AssertionError: assert 401 in (200, 201)\n +  where 401 = <Response [401]>.status_code",
        "jwt.exceptions.ExpiredSignatureError: Signature has expired",
        "cryptography.fernet.InvalidToken",
        "shopclient.errors.AuthenticationError: bad credentials for monitor@example.com",
        "AssertionError: login failed: token has expired",
        "AssertionError: {'error': 'invalid_api_key', 'message': 'Invalid API key'}",
        "AssertionError: Access denied for user 'monitor'",
    ],
)
def test_what_clients_print_about_refused_credentials_is_credentials(message: str) -> None:
    exception = message.split(":", 1)[0].rsplit(".", 1)[-1]

    assert categorize(reported(exception, message)) is Category.CREDENTIALS


@pytest.mark.parametrize(
    "message",
    [
        "AssertionError: login with a wrong password answered HTTP 200, expected 401",
        "AssertionError: expected HTTP 403 for a stranger, not 200",
        "AssertionError: assert 200 == 403",
        "AssertionError: deposited 12.34 but 12.00 was credited",
    ],
)
def test_a_401_only_expected_is_not_credentials(message: str) -> None:
    assert categorize(reported("AssertionError", message)) is Category.PRODUCT


def test_a_login_fixture_failing_in_setup_with_a_401_is_credentials_not_test_code() -> None:
    result = reported(
        "AssertionError",
        'AssertionError: cannot log in as alice: HTTP 401 {"detail":"token has been revoked"}',
        outcome=Outcome.ERROR,
        phase="setup",
    )

    assert categorize(result) is Category.CREDENTIALS


# -- network ----------------------------------------------------------------------------------


def test_a_refused_connection_is_network() -> None:
    port = closed_port()
    by_httpx = raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=5))
    by_urllib = raised(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5))

    assert "Connection refused" in str(by_httpx)
    assert categorize(failure(by_httpx)) is Category.NETWORK
    assert categorize(failure(by_urllib)) is Category.NETWORK


def test_a_host_that_does_not_resolve_is_network() -> None:
    exc = raised(lambda: httpx.get("http://nonexistent.invalid/", timeout=5))

    assert isinstance(exc, httpx.ConnectError)
    assert categorize(failure(exc)) is Category.NETWORK


@pytest.mark.parametrize(
    "message",
    [
        "playwright._impl._errors.Error: Page.goto: net::ERR_CONNECTION_REFUSED at "
        'https://shop.example.com/\nCall log:\nnavigating to "https://shop.example.com/"',
        "playwright._impl._errors.Error: Page.goto: net::ERR_NAME_NOT_RESOLVED at "
        "https://shop.example.com/",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='shop.internal', "
        "port=443): Max retries exceeded with url: / (Caused by NameResolutionError("
        '"<urllib3.connection.HTTPSConnection object at 0x7f3a>: Failed to resolve '
        "'shop.internal' ([Errno -2] Name or service not known)\"))",
        "requests.exceptions.SSLError: HTTPSConnectionPool(host='shop.example.com', port=443): "
        "Max retries exceeded with url: / (Caused by SSLError(SSLCertVerificationError(1, "
        "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired "
        "(_ssl.c:1006)')))",
        "httpx.RemoteProtocolError: Server disconnected without sending a response.",
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        "OSError: [Errno 101] Network is unreachable",
    ],
)
def test_what_clients_print_about_unreachable_hosts_is_network(message: str) -> None:
    exception = message.split(":", 1)[0].rsplit(".", 1)[-1]

    assert categorize(reported(exception, message)) is Category.NETWORK


# -- timeout ----------------------------------------------------------------------------------


def test_a_read_timeout_is_timeout(url: str) -> None:
    exc = raised(lambda: httpx.get(f"{url}/slow", timeout=0.1))

    assert isinstance(exc, httpx.ReadTimeout)
    assert categorize(failure(exc)) is Category.TIMEOUT


@pytest.mark.parametrize(
    "message",
    [
        "playwright._impl._errors.TimeoutError: Page.goto: Timeout 30000ms exceeded.\n"
        'Call log:\nnavigating to "https://shop.example.com/", waiting until "load"',
        "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='10.0.0.1', port=443): "
        "Max retries exceeded with url: / (Caused by ConnectTimeoutError("
        "<urllib3.connection.HTTPSConnection object at 0x7f3a>, 'Connection to 10.0.0.1 timed "
        "out. (connect timeout=5)'))",
        "Failed: Timeout (>10.0s) from pytest-timeout.",
    ],
)
def test_what_clients_print_about_slow_answers_is_timeout(message: str) -> None:
    exception = message.split(":", 1)[0].rsplit(".", 1)[-1]

    assert categorize(reported(exception, message)) is Category.TIMEOUT


def test_the_test_in_flight_when_the_run_timed_out_is_timeout() -> None:
    result = reported(None, "run exceeded its timeout of 5m", outcome=Outcome.TIMEOUT)

    assert categorize(result) is Category.TIMEOUT


# -- test code --------------------------------------------------------------------------------


def code_in(path: str, source: str) -> Callable[[], object]:
    """Return a function whose frames are in ``path``, as if it were defined in that file."""
    namespace: dict[str, object] = {}
    exec(compile(source, path, "exec"), namespace)
    function = namespace["check"]
    assert callable(function)
    return function


def test_imports_syntax_and_names_are_test_code() -> None:
    samples = [
        raised(lambda: importlib.import_module("onwatch_has_no_such_module")),
        raised(lambda: compile("def broken(:\n", "test_shop.py", "exec")),
        raised(code_in("/srv/suite/test_shop.py", "def check():\n    return undefined_name\n")),
    ]

    assert [type(exc).__name__ for exc in samples] == [
        "ModuleNotFoundError",
        "SyntaxError",
        "NameError",
    ]
    assert [categorize(failure(exc)) for exc in samples] == [Category.TEST_CODE] * 3


def test_an_attribute_error_is_test_code_only_when_raised_in_a_test_file() -> None:
    source = "def check():\n    return None.total\n"
    in_test = raised(code_in("/srv/suite/test_shop.py", source))
    in_conftest = raised(code_in("/srv/suite/conftest.py", source))
    in_library = raised(code_in("/venv/lib/python3.11/site-packages/shopclient/api.py", source))

    assert categorize(failure(in_test)) is Category.TEST_CODE
    assert categorize(failure(in_conftest)) is Category.TEST_CODE
    assert categorize(failure(in_library)) is Category.PRODUCT


def test_a_pytest_traceback_names_the_innermost_frame() -> None:
    pytest_style = (
        "    def test_totals(client):\n"
        ">       assert client.get('/').json().total == 3\n"
        "E       AttributeError: 'dict' object has no attribute 'total'\n"
        "\n"
        "tests/prod/test_totals.py:12: AttributeError"
    )
    result = reported(
        "AttributeError",
        "AttributeError: 'dict' object has no attribute 'total'",
        traceback=pytest_style,
    )

    assert innermost_file(pytest_style) == "tests/prod/test_totals.py"
    assert categorize(result) is Category.TEST_CODE


def test_a_missing_fixture_and_a_collection_error_are_test_code() -> None:
    missing = reported(
        "FixtureLookupError",
        "fixture 'shop_client' not found",
        traceback="file /srv/suite/test_shop.py, line 54\n"
        "  def test_orders(shop_client):\n"
        "E       fixture 'shop_client' not found\n"
        ">       available fixtures: cache, capfd, monkeypatch, tmp_path\n"
        "\n"
        "/srv/suite/test_shop.py:54",
        outcome=Outcome.ERROR,
        phase="setup",
    )
    collection = reported(
        "CollectError",
        "ModuleNotFoundError: No module named 'shopclient'",
        outcome=Outcome.ERROR,
        phase="collect",
    )

    assert categorize(missing) is Category.TEST_CODE
    assert categorize(collection) is Category.TEST_CODE


# -- what is read, and in which order ---------------------------------------------------------


def test_source_lines_of_a_traceback_prove_nothing() -> None:
    # The test's source mentions a timeout and a forbidden page; only the E line is the error.
    pytest_style = (
        "client = <httpx.Client object at 0x7f3a>\n"
        "\n"
        "    def test_forbidden_page_lists_prices(client):\n"
        "        page = client.get('/forbidden-fruit', timeout=TIMEOUT_SECONDS)\n"
        ">       assert page.json()['prices'] == [3, 4]\n"
        "E       AssertionError: assert [3, 5] == [3, 4]\n"
        "\n"
        "tests/test_shop.py:20: AssertionError"
    )
    result = reported("AssertionError", "assert [3, 5] == [3, 4]", traceback=pytest_style)

    assert categorize(result) is Category.PRODUCT


def test_credentials_come_before_network_and_timeout() -> None:
    result = reported(
        "ReadTimeout",
        "httpx.ReadTimeout: timed out",
        traceback="E   httpx.HTTPStatusError: Client error '401 Unauthorized' for url 'x'\n"
        "E   httpx.ReadTimeout: timed out",
    )

    assert categorize(result) is Category.CREDENTIALS


@pytest.mark.parametrize(
    "outcome", [Outcome.PASSED, Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED, Outcome.FLAKY]
)
def test_outcomes_that_did_not_fail_have_no_category(outcome: Outcome) -> None:
    assert categorize(reported(None, "HTTP 401", outcome=outcome)) is None


def test_the_users_expressions_add_to_their_category() -> None:
    extra = {"credentials": ["session has expired"], "network": [r"upstream \w+ unavailable"]}
    session = reported("AssertionError", "AssertionError: Session has expired, log in again")
    upstream = reported("AssertionError", "AssertionError: upstream payments unavailable")

    assert categorize(session) is Category.PRODUCT
    assert categorize(session, extra) is Category.CREDENTIALS
    assert categorize(upstream, extra) is Category.NETWORK
    assert categorize(upstream, Patterns.compile(extra)) is Category.NETWORK


def test_the_users_expressions_keep_the_order_of_categories() -> None:
    extra = {"timeout": ["maintenance"]}
    result = reported("AssertionError", "AssertionError: got 401 during maintenance")

    assert categorize(result, extra) is Category.CREDENTIALS


def test_bad_expressions_are_reported_together_with_where_they_are() -> None:
    with pytest.raises(ValueError) as raised_error:
        Patterns.compile({"network": ["(unclosed"], "product": ["x"]})

    message = str(raised_error.value)
    assert "categories.network: '(unclosed' is not a valid regular expression" in message
    assert "unknown category 'product'" in message


# -- summaries --------------------------------------------------------------------------------


def test_a_run_of_401s_is_summarized_as_invalid_credentials(url: str) -> None:
    failed = [failure(status_error(url, 401)) for _ in range(10)]
    failed += [failure(status_assertion(url, 401)) for _ in range(2)]

    assert summarize(failed) == "Monitoring credentials look invalid: 12/12 tests got 401"
    assert dominant_category(failed) is Category.CREDENTIALS


def test_mixed_401_and_403_and_words_only_are_summarized_too(url: str) -> None:
    mixed = [failure(status_error(url, 401)), failure(status_error(url, 403))]
    words = [reported("InvalidToken", "cryptography.fernet.InvalidToken")] * 2

    assert summarize(mixed) == "Monitoring credentials look invalid: 2/2 tests got 401 or 403"
    assert (
        summarize(words) == "Monitoring credentials look invalid: 2/2 tests failed to authenticate"
    )


def test_a_run_that_cannot_connect_is_summarized_as_unreachable(url: str) -> None:
    port = closed_port()
    refused = [failure(raised(lambda: httpx.get(f"http://127.0.0.1:{port}/"))) for _ in range(5)]
    product = [failure(status_error(url, 500))]

    assert summarize(refused + product) == (
        "The target looks unreachable: 5/6 tests could not connect (Connection refused)"
    )


def test_timeouts_and_broken_test_code_are_summarized() -> None:
    slow = [reported(None, "run exceeded its timeout of 1m", outcome=Outcome.TIMEOUT)] * 4
    slow += [reported("AssertionError", "AssertionError: 3 != 4")]
    missing = raised(lambda: importlib.import_module("onwatch_has_no_such_module"))
    broken = [failure(missing, outcome=Outcome.ERROR, phase="collect")] * 3

    assert summarize(slow) == "Tests are timing out: 4/5 tests timed out"
    assert summarize(broken) == (
        "The test code itself is broken: 3/3 tests failed to import or set up (ModuleNotFoundError)"
    )


def test_no_headline_when_half_or_fewer_share_a_cause_or_the_product_leads(url: str) -> None:
    half = [failure(status_error(url, 401)), failure(status_error(url, 500))]
    product = [failure(status_error(url, 500))] * 3

    assert summarize(half) is None
    assert summarize(product) is None
    assert dominant_category(product) is Category.PRODUCT
    assert summarize([]) is None and dominant_category([]) is None


def test_only_the_final_attempt_of_each_test_counts(url: str) -> None:
    retried = [
        failure(status_error(url, 500), final=False),
        failure(status_error(url, 401)),
    ]

    assert summarize(retried) == "Monitoring credentials look invalid: 1/1 test got 401"


def test_a_stored_category_is_trusted_over_the_built_in_rules() -> None:
    # A user's expression put these in credentials when the run was recorded.
    stored = [
        TestResult(
            nodeid=f"t.py::test_{i}",
            outcome=Outcome.FAILED,
            phase="call",
            duration=0.1,
            message="AssertionError: Session has expired",
            category="credentials",
        )
        for i in range(3)
    ]

    assert dominant_category(stored) is Category.CREDENTIALS
    assert (
        summarize(stored) == "Monitoring credentials look invalid: 3/3 tests failed to authenticate"
    )
