"""The artifact store: files by content, kept once, pruned by age and size, never half written."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from onwatch.artifacts import ArtifactStore


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_it_stores_a_file_under_its_sha256_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    sha, size = store.put(write(tmp_path / "a.png", data))
    again, _ = store.put(write(tmp_path / "b.png", data))

    assert sha == again == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    stored = store.path_of(sha)
    assert stored is not None and stored.read_bytes() == data
    assert stored == tmp_path / "artifacts" / sha[:2] / sha
    assert store.size() == len(data)  # one copy for two results
    assert not list((tmp_path / "artifacts").glob(".incoming-*"))


def test_it_answers_none_for_unknown_or_malformed_names(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert store.path_of("0" * 64) is None
    assert store.path_of("../../etc/passwd") is None
    assert store.path_of("A" * 64) is None


def test_it_prunes_old_files_then_the_oldest_beyond_the_cap(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    now = time.time()
    ages = {"old": 20 * 86400, "week": 7 * 86400, "day": 86400, "new": 60}
    shas = {}
    for name, age in ages.items():
        sha, _ = store.put(write(tmp_path / name, name.encode() * 100))
        path = store.path_of(sha)
        assert path is not None
        os.utime(path, (now - age, now - age))
        shas[name] = sha

    by_age = store.prune(keep_seconds=14 * 86400, max_bytes=10**9, now=now)
    assert (by_age.files, by_age.bytes) == (1, 300)
    assert store.path_of(shas["old"]) is None

    by_size = store.prune(keep_seconds=14 * 86400, max_bytes=700, now=now)
    assert by_size.files == 1  # "week" (400 bytes) goes; "day" + "new" = 600 bytes stay
    assert [n for n in ages if store.path_of(shas[n])] == ["day", "new"]


def test_storing_a_file_again_keeps_it_young(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    sha, _ = store.put(write(tmp_path / "x", b"same screenshot"))
    path = store.path_of(sha)
    assert path is not None
    os.utime(path, (1, 1))
    store.put(write(tmp_path / "y", b"same screenshot"))

    assert store.prune(keep_seconds=3600, max_bytes=10**9).files == 0


def test_onwatch_run_prunes_by_the_configured_retention(tmp_path: Path) -> None:
    from onwatch.config import load_config
    from onwatch.daemon.wiring import _artifact_pruner
    from suites import make_project

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    config = load_config(
        make_project(
            tmp_path,
            {"a": {"tests": ["tests/test_a.py"], "every": "1m"}},
            settings={"keep_artifacts": "1h", "artifacts_max_size": "10MB"},
        )
    )
    store = ArtifactStore(config.artifacts_dir)
    old, _ = store.put(write(tmp_path / "old.png", b"yesterday's screenshot"))
    new, _ = store.put(write(tmp_path / "new.png", b"today's screenshot"))
    path = store.path_of(old)
    assert path is not None
    os.utime(path, (time.time() - 7200, time.time() - 7200))

    prune = _artifact_pruner(config)
    prune()

    assert store.path_of(old) is None
    assert store.path_of(new) is not None
