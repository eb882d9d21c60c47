"""What an alert says about a run: its one-line summary and its failure category."""

from __future__ import annotations

from dataclasses import replace

from onwatch.alerting.engine import facts_of
from onwatch.model import Outcome, RunStatus, TestResult
from records import make_run, passed_results

UNAUTHORIZED = (
    "httpx.HTTPStatusError: Client error '401 Unauthorized' for url "
    "'https://shop.example.com/api/orders'"
)
REFUSED = "httpx.ConnectError: [Errno 111] Connection refused"


def failed(
    number: int,
    message: str,
    *,
    exception: str = "AssertionError",
    outcome: Outcome = Outcome.FAILED,
    phase: str = "call",
    category: str | None = None,
) -> TestResult:
    return TestResult(
        nodeid=f"tests/test_shop.py::test_failing_{number}",
        outcome=outcome,
        phase=phase,
        duration=0.2,
        exception=exception,
        message=message,
        category=category,
    )


def test_a_run_of_401s_leads_its_summary_with_invalid_credentials() -> None:
    results = passed_results(8) + tuple(
        failed(i, UNAUTHORIZED, exception="HTTPStatusError") for i in range(12)
    )

    facts = facts_of(make_run(check="shop", status=RunStatus.FAILED, results=results))

    assert facts.summary == (
        "shop is failing: Monitoring credentials look invalid: 12/12 tests got 401;"
        " 12 of 20 tests failed"
    )
    assert facts.category == "credentials"


def test_a_product_failure_keeps_the_plain_summary() -> None:
    results = passed_results(2) + (failed(0, "AssertionError: deposited 12.34, credited 12.00"),)

    facts = facts_of(make_run(check="shop", status=RunStatus.FAILED, results=results))

    assert facts.summary == "shop is failing: 1 of 3 tests failed"
    assert facts.category == "product"


def test_a_run_that_could_not_collect_leads_with_broken_test_code() -> None:
    error = (
        "collection failed (1 error): tests/test_shop.py: "
        "ModuleNotFoundError: No module named 'shopclient'"
    )
    broken = failed(
        0,
        "ModuleNotFoundError: No module named 'shopclient'",
        exception="CollectError",
        outcome=Outcome.ERROR,
        phase="collect",
    )
    run = replace(make_run(check="shop", status=RunStatus.ERROR, results=(broken,)), error=error)

    facts = facts_of(run)

    assert facts.summary == (
        "shop is failing: The test code itself is broken: 1/1 test failed to import or set up"
        f" (ModuleNotFoundError); the run itself failed: {error}"
    )
    assert facts.category == "test-code"


def test_a_timed_out_run_leads_with_the_timeout() -> None:
    error = "run exceeded its timeout of 1m while running tests/test_shop.py::test_failing_0"
    hung = failed(0, "run exceeded its timeout of 1m", exception="", outcome=Outcome.TIMEOUT)
    run = replace(
        make_run(check="shop", status=RunStatus.TIMEOUT, results=passed_results(2) + (hung,)),
        error=error,
    )

    facts = facts_of(run)

    assert facts.summary == f"shop is failing: Tests are timing out: 1/1 test timed out; {error}"
    assert facts.category == "timeout"


def test_the_category_is_the_commonest_even_without_a_majority_for_a_headline() -> None:
    results = (
        failed(0, REFUSED, exception="ConnectError"),
        failed(1, REFUSED, exception="ConnectError"),
        failed(2, UNAUTHORIZED, exception="HTTPStatusError"),
        failed(3, "AssertionError: the basket is empty"),
    )

    facts = facts_of(make_run(check="shop", status=RunStatus.FAILED, results=results))

    assert facts.category == "network"
    assert facts.summary == "shop is failing: 4 of 4 tests failed"


def test_a_category_stored_with_the_result_is_the_one_used() -> None:
    # Recorded with a user's expression that the built-in rules do not know.
    results = tuple(
        failed(i, "AssertionError: upstream payments unavailable", category="network")
        for i in range(3)
    )

    facts = facts_of(make_run(check="shop", status=RunStatus.FAILED, results=results))

    assert facts.category == "network"
    assert facts.summary.startswith("shop is failing: The target looks unreachable: 3/3 tests")


def test_a_passing_run_has_neither_summary_nor_category() -> None:
    facts = facts_of(make_run(check="shop", results=passed_results(3)))

    assert facts.summary == ""
    assert facts.category is None
