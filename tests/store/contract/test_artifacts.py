"""The contract of ``ArtifactIndex``: which stored files the results of given checks list."""

from __future__ import annotations

from datetime import timedelta

from onwatch.model import Artifact, Outcome, Run, RunStatus, TestResult
from onwatch.store import Store
from records import T0, make_run


def digest(n: int) -> str:
    return f"{n:064x}"


def with_files(check: str, minute: int, *numbers: int) -> Run:
    """Return a failed run of ``check`` whose one result lists the files ``numbers``."""
    files = tuple(Artifact("screenshot", f"shot-{n}.png", 10, digest(n)) for n in numbers)
    result = TestResult("t::journey", Outcome.FAILED, "call", 1.0, artifacts=files)
    return make_run(check=check, minute=minute, status=RunStatus.FAILED, results=(result,))


def test_it_lists_the_files_of_the_given_checks_only(store: Store) -> None:
    store.runs.save_run(with_files("login", 0, 1, 2))
    store.runs.save_run(with_files("api", 1, 3))

    assert store.artifacts.lists(["login"], digest(1))
    assert store.artifacts.lists(["login", "other"], digest(2))
    assert not store.artifacts.lists(["login"], digest(3))
    assert store.artifacts.lists(["api"], digest(3))
    assert not store.artifacts.lists([], digest(1))
    assert not store.artifacts.lists(["login"], digest(9))


def test_it_sees_files_of_runs_stored_after_its_first_answer(store: Store) -> None:
    store.runs.save_run(with_files("login", 10, 1))
    assert not store.artifacts.lists(["login"], digest(2))

    store.runs.save_run(with_files("login", 20, 2))  # a new run
    assert store.artifacts.lists(["login"], digest(2))

    store.runs.save_run(with_files("login", 5, 3))  # replayed late from the spool: older
    assert store.artifacts.lists(["login"], digest(3))
    assert store.artifacts.lists(["login"], digest(1))


def test_a_file_not_yet_stored_is_not_listed(store: Store) -> None:
    pending = Artifact("screenshot", "shot.png", 10, "", source="/tmp/shot.png")
    result = TestResult("t::a", Outcome.FAILED, "call", 1.0, artifacts=(pending,))
    store.runs.save_run(make_run(check="login", status=RunStatus.FAILED, results=(result,)))
    store.runs.save_run(make_run(check="login", minute=1, started_at=T0 + timedelta(hours=1)))

    assert not store.artifacts.lists(["login"], digest(0))


def test_a_name_that_is_not_a_digest_is_not_listed(store: Store) -> None:
    store.runs.save_run(with_files("login", 0, 1))

    assert not store.artifacts.lists(["login"], "not-hex")
    assert not store.artifacts.lists(["login"], "")
