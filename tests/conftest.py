"""Shared fixtures: one private PostgreSQL server for the whole test run, and one per test."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator

import pytest

from needs import unavailable
from pgserver import PgServer, find_bindir
from receivers import Behaviour, HttpReceiver


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server started for this test session."""
    if find_bindir() is None:
        unavailable("PostgreSQL programs not found: apt-get install postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("no postgres user to run PostgreSQL as: apt-get install postgresql")
    server = PgServer()
    try:
        server.start()
        yield server.url
    finally:
        server.destroy()


@pytest.fixture
def own_postgres(postgres_url: str) -> Iterator[PgServer]:
    """Yield a PostgreSQL server of the test's own, free to be stopped or killed.

    It depends on ``postgres_url`` so that a missing PostgreSQL skips, or fails under CI, with
    the same message.
    """
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[HttpReceiver]:
    """An HTTP receiver on 127.0.0.1 for a whole test module."""
    with HttpReceiver() as running:
        yield running


@pytest.fixture
def receiver(shared_receiver: HttpReceiver) -> HttpReceiver:
    """The module's receiver, reset: answering 200 and with nothing received yet."""
    shared_receiver.behaviour = Behaviour()
    shared_receiver.received.clear()
    return shared_receiver
