"""The contract of ``Store``: the object ``open_store`` returns and its nouns."""

from __future__ import annotations

from onwatch.store import Store


def test_it_answers_a_ping_and_is_at_the_newest_schema_whatever_is_asked_again(
    store: Store,
) -> None:
    assert store.ping() is True
    store.ensure_schema()
    store.ensure_schema()
    assert store.runs.list_runs() == []


def test_its_nouns_are_built_once(store: Store) -> None:
    nouns = (store.runs, store.incidents, store.outbox, store.dashboard, store.upstream)
    again = (store.runs, store.incidents, store.outbox, store.dashboard, store.upstream)
    assert all(a is b for a, b in zip(nouns, again, strict=True))
    assert store.artifacts is store.artifacts
