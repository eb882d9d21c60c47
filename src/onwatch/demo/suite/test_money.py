"""Deposits credit exactly what was deposited; nonsense amounts are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

pytestmark = [pytest.mark.monitor, pytest.mark.money]


def balance(client: httpx.Client) -> Decimal:
    """Read the account's balance, failing the check if that does not work."""
    response = client.get("/api/account")
    assert response.status_code == 200, f"reading the account answered HTTP {response.status_code}"
    return Decimal(response.json()["balance"])


@pytest.mark.parametrize("amount", ["0.50", "12.34"])
def test_a_deposit_credits_exactly_the_amount(
    logged_in: httpx.Client,
    amount: str,
    record_property: Callable[[str, object], None],
) -> None:
    before = balance(logged_in)

    started = time.perf_counter()
    response = logged_in.post("/api/account/deposit", json={"amount": amount})
    record_property("deposit_latency_ms", round((time.perf_counter() - started) * 1000, 1))

    assert response.status_code == 200, (
        f"depositing {amount} answered HTTP {response.status_code}: {response.text}"
    )
    credited = Decimal(response.json()["transaction"]["amount"])
    assert credited == Decimal(amount), f"deposited {amount} but {credited} was credited"
    # Balances only grow here, and another check may deposit at the same moment: "at least".
    after = balance(logged_in)
    assert after - before >= Decimal(amount), (
        f"the balance went from {before} to {after} after depositing {amount}"
    )


def test_a_deposit_shows_in_the_history(logged_in: httpx.Client) -> None:
    deposited = logged_in.post("/api/account/deposit", json={"amount": "1.00"})
    assert deposited.status_code == 200, f"depositing answered HTTP {deposited.status_code}"
    transaction = deposited.json()["transaction"]

    history = logged_in.get("/api/account").json()["transactions"]

    assert transaction in history, f"deposit {transaction['id']} is missing from the history"


@pytest.mark.parametrize("amount", [0, "10000.01", "lots"])
def test_an_invalid_deposit_is_refused(logged_in: httpx.Client, amount: object) -> None:
    response = logged_in.post("/api/account/deposit", json={"amount": amount})

    assert response.status_code == 422, (
        f"depositing {amount!r} answered HTTP {response.status_code}, expected 422"
    )
