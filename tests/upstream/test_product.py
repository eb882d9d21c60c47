"""The product's dependency set: requirement files read as pip reads them, pins replaced."""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from onwatch.errors import BuildError
from onwatch.upstream.product import (
    exclusive_closure,
    installed_set,
    pinned_version,
    replace_pins,
    requirement_lines,
    requirements_of,
)


def test_a_pip_compile_file_is_read_with_its_includes_and_without_hashes(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("idna==3.7  # via requests\n")
    (tmp_path / "requirements.txt").write_text(
        "# via pip-compile\n-r base.txt\n"
        f"urllib3==1.26.16 \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n"
        "requests==2.31.0\n\n--extra-index-url https://mirror.example/simple/\n-i https://x/simple\n"
    )
    assert requirement_lines("requirements.txt", tmp_path) == [
        "idna==3.7",
        "urllib3==1.26.16",
        "requests==2.31.0",
    ]  # the file's own index is not installed from: only the watch names indexes
    with pytest.raises(BuildError, match="cannot read the requirements .*missing.txt"):
        requirement_lines("missing.txt", tmp_path)


def test_the_watched_packages_pin_is_replaced_not_added_to() -> None:
    lines = ["URLLib3==1.26.16", "requests[socks]==2.31.0", "urllib3_extra==1", "-e ."]
    assert replace_pins(lines, ["urllib3"]) == lines[1:]
    assert replace_pins(lines, ["Requests", "urllib3"]) == lines[2:]


def test_onwatchs_exclusive_closure_keeps_what_another_distribution_needs() -> None:
    graph = {
        "onwatch": {"pydantic", "jinja2", "pytest"},
        "pydantic": {"typing-extensions"},
        "jinja2": {"markupsafe"},
        "markupsafe": set(),
        "pytest": {"pluggy"},
        "pluggy": set(),
        "typing-extensions": set(),
        "pytest-timeout": {"pytest"},  # the product's plugin: pytest stays
        "product-lib": {"typing-extensions"},
    }
    assert exclusive_closure(graph, "onwatch") == {"onwatch", "pydantic", "jinja2", "markupsafe"}
    assert exclusive_closure(graph, "absent") == set()


def test_the_installed_set_leaves_out_onwatch_and_its_libraries() -> None:
    found = {canonicalize_name(line.split("==")[0]) for line in installed_set()}
    onwatch_needs = requirements_of(metadata.requires("onwatch") or [])
    assert "onwatch" not in found and "pip" not in found
    assert not {"pydantic", "sqlalchemy", "jinja2", "fastapi"} & found
    assert onwatch_needs  # the check above compared something


def test_extra_indexes_and_installer_are_checked_where_they_are_written(tmp_path: Path) -> None:
    from onwatch.config import load_config
    from onwatch.errors import ConfigError

    (tmp_path / "tests").mkdir()
    path = tmp_path / "onwatch.toml"
    path.write_text(
        '[checks.api]\ntests = ["tests"]\nevery = "5m"\n\n'
        '[watch.libs]\npackages = ["urllib3"]\nchecks = ["api"]\n'
        'extra_indexes = ["ftp://mirror/simple/", "https://me:${MIRROR_TOKEN}@m.example/simple/"]\n'
        'installer = "conda"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = caught.value.problems
    assert any(
        f"{path}:8: watch.libs.extra_indexes" in p
        and "'ftp://mirror/simple/' is not an http(s)" in p
        for p in found
    ), found
    assert any(f"{path}:9: watch.libs.installer" in p and "'auto'" in p for p in found), found

    path.write_text(path.read_text().replace("ftp://", "https://").replace("conda", "uv"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (
        "watch.libs.extra_indexes: ${MIRROR_TOKEN} names no secret of [onwatch] secrets" in problem
    )

    path.write_text(
        '[onwatch]\nsecrets = { MIRROR_TOKEN = "env:MIRROR_TOKEN" }\n' + path.read_text()
    )
    watch = load_config(path).watches["libs"]
    assert watch.installer == "uv"
    assert watch.extra_indexes == [
        "https://mirror/simple/",
        "https://me:${MIRROR_TOKEN}@m.example/simple/",
    ]


def test_auto_takes_uv_when_installed_else_pip_and_uv_without_uv_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onwatch.upstream.venv import choose_installer

    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))
    monkeypatch.setenv("PATH", str(fake.parent))
    assert (choose_installer("auto"), choose_installer("uv")) == (str(fake), str(fake))
    assert choose_installer("pip") == "pip"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert choose_installer("auto") == "pip"
    with pytest.raises(BuildError, match='installer = "uv" but no uv is on PATH'):
        choose_installer("uv")


def test_only_an_exact_pin_names_a_version_line() -> None:
    lines = ["--index-url https://x/simple/", "Urllib3==1.26.16 ; python_version >= '3'", "idna"]
    assert pinned_version(lines, "urllib3") == "1.26.16"
    assert pinned_version(["urllib3>=1.26,<2"], "urllib3") is None
    assert pinned_version(["urllib3==1.26.*"], "urllib3") is None
    assert pinned_version(["idna==3.4"], "urllib3") is None
    assert pinned_version(None, "urllib3") is None
