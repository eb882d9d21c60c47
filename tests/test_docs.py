"""The docs a user trusts: every config key and every JSON field is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

from onwatch.channels.base import ChannelSettings
from onwatch.channels.registry import KINDS
from onwatch.config import Check, Settings, Silence, Watch
from onwatch.config.models import (
    BrowserModel,
    CheckModel,
    SettingsModel,
    SilenceModel,
    WatchModel,
)
from onwatch.model import CheckStatus, Outcome, Run, RunStatus, TestResult

ROOT = Path(__file__).parent.parent


def documented_keys(path: Path, heading: str) -> set[str]:
    """Return the `key` names in the first column of the first table after ``heading``."""
    lines = path.read_text().split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    keys: set[str] = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        keys.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return keys


def test_every_onwatch_setting_is_documented() -> None:
    documented = documented_keys(ROOT / "docs" / "configuration.md", "## `[onwatch]`")
    assert documented == set(SettingsModel.model_fields)
    assert {f.name for f in fields(Settings)} == set(SettingsModel.model_fields)


def test_every_check_key_is_documented() -> None:
    documented = documented_keys(ROOT / "docs" / "configuration.md", "## `[checks.NAME]`")
    assert documented == set(CheckModel.model_fields)
    assert {f.name for f in fields(Check)} == set(CheckModel.model_fields)


def test_every_key_of_every_channel_kind_is_documented() -> None:
    docs = ROOT / "docs" / "configuration.md"
    common = {"type", *ChannelSettings.model_fields}
    assert documented_keys(docs, "## `[notify.NAME]`") == common
    for name, kind in KINDS.items():
        own = set(kind.settings.model_fields) - common
        heading = f'### `type = "{name}"`'
        assert heading in docs.read_text(), f"no section for channel type {name!r}"
        # A kind without keys of its own says so in its section, with no table to check.
        if own:
            assert documented_keys(docs, heading) == own, name


def test_every_silence_and_browser_key_is_documented() -> None:
    docs = ROOT / "docs" / "configuration.md"
    assert documented_keys(docs, "## `[[silences]]`") == set(SilenceModel.model_fields)
    assert {f.name for f in fields(Silence)} == set(SilenceModel.model_fields)
    assert documented_keys(docs, "## `[browser]`") == set(BrowserModel.model_fields)
    assert documented_keys(docs, "## `[watch.NAME]`") == set(WatchModel.model_fields)
    assert {f.name for f in fields(Watch)} == set(WatchModel.model_fields)


def test_every_field_of_the_json_contracts_is_documented() -> None:
    now = datetime.now(UTC)
    result = TestResult(nodeid="t", outcome=Outcome.PASSED, phase="call", duration=0.1)
    run = Run(
        id="x",
        check="c",
        status=RunStatus.PASSED,
        started_at=now,
        finished_at=now,
        results=(result,),
    )
    status = CheckStatus("c", None, None, None, 0, None)
    docs = ROOT / "docs" / "json.md"
    run_fields = {*run.to_json(), "recorded"}
    assert documented_keys(docs, "Run fields:") >= run_fields
    assert documented_keys(docs, "Result fields:") >= set(result.to_json())
    assert documented_keys(docs, "## `onwatch status --json`") >= set(status.to_json())


def test_every_field_of_the_webhook_payload_is_documented() -> None:
    from onwatch.channels.notification import Event, Notification

    payload = Notification(event=Event.TEST, key="k", summary="s").payload()
    assert documented_keys(ROOT / "docs" / "webhooks.md", "## Payload") >= set(payload)
    section = (ROOT / "docs" / "webhooks.md").read_text().split("## Events", 1)[1]
    events = set(re.findall(r"^\| `([a-z._]+)` \|", section.split("## ", 1)[0], re.M))
    assert events == {e.value for e in Event}


def test_the_readme_opens_with_the_demo_and_test_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_field_of_the_api_is_documented() -> None:
    from pydantic import BaseModel

    from onwatch.web import api

    docs = ROOT / "docs" / "api.md"
    models = [
        value
        for value in vars(api).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]
    assert len(models) > 10
    for model in models:
        documented = documented_keys(docs, f"### `{model.__name__}`")
        assert documented >= set(model.model_fields), model.__name__


def test_every_api_route_is_documented() -> None:
    from fastapi.routing import APIRoute

    from onwatch.web import api

    text = (ROOT / "docs" / "api.md").read_text()
    router = api.build_router(None)  # type: ignore[arg-type] - routes only, never called
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            assert f"`{method} {route.path}`" in text, f"{method} {route.path}"


def test_every_fault_test_file_is_in_docs_reliability_md_and_every_test_named_there_exists() -> (
    None
):
    import ast

    tests = ROOT / "tests"
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = re.findall(r"`((?:tests/[\w/]+/)?test_\w+\.py)::(test_\w+)`", text)
    assert len(named) >= 40
    for file, name in named:
        path = ROOT / file if file.startswith("tests/") else tests / "faults" / file
        module = ast.parse(path.read_text())
        defined = {node.name for node in module.body if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"docs/reliability.md names {file}::{name}, which does not exist"
    cited = {file for file, _ in named}
    for path in sorted((tests / "faults").glob("test_*.py")):
        assert path.name in cited, f"docs/reliability.md says nothing of {path.name}"
