"""Loading onwatch.toml and [tool.onwatch]: defaults, paths, and errors that say where and how."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from onwatch.config import BROWSER_FIX, find_config, load_config
from onwatch.durations import format_duration, parse_duration
from onwatch.errors import ConfigError

GOOD = """\
[onwatch]
database = "sqlite:///data/onwatch.db"
max_parallel = 3

[checks.critical-paths]
tests = ["tests/prod"]
markers = "monitor and not slow"
every = "5m"
timeout = "2m"
retries = 1
env = { BASE_URL = "http://127.0.0.1:8000" }

[checks.hourly]
tests = ["tests/prod/test_a.py::test_x"]
cron = "0 * * * *"
"""


def write(folder: Path, text: str, name: str = "onwatch.toml") -> Path:
    (folder / "tests" / "prod").mkdir(parents=True, exist_ok=True)
    (folder / "tests" / "prod" / "test_a.py").write_text("def test_x():\n    pass\n")
    path = folder / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_it_loads_checks_with_their_settings_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    check = config.checks["critical-paths"]
    assert check.every == 300 and check.timeout == 120 and check.retries == 1
    assert check.pytest_selection() == ["tests/prod", "-m", "monitor and not slow"]
    assert check.env == {"BASE_URL": "http://127.0.0.1:8000"}
    hourly = config.checks["hourly"]
    assert (hourly.cron, hourly.timeout, hourly.retries) == ("0 * * * *", 300, 0)
    assert config.settings.max_parallel == 3
    assert config.checks["critical-paths"].schedule == "every 5m"


def test_relative_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "project", GOOD)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("project/onwatch.toml"))
    assert config.database_url == f"sqlite:///{tmp_path / 'project' / 'data' / 'onwatch.db'}"
    assert config.base_dir == path.parent
    assert config.state_dir == tmp_path / "project" / ".onwatch"


def test_the_default_database_is_an_sqlite_file_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[checks.a]\ntests = ["tests"]\nevery = "1m"\n'))
    assert config.database_url == f"sqlite:///{tmp_path / 'onwatch.db'}"
    assert config.settings.max_parallel == (os.cpu_count() or 1)


@pytest.mark.parametrize("url", ["memory://", "mysql://u:p@db/onwatch"])
def test_a_database_that_keeps_no_runs_is_refused_with_its_line(tmp_path: Path, url: str) -> None:
    path = write(
        tmp_path, f'[onwatch]\ndatabase = "{url}"\n[checks.a]\ntests = ["tests"]\nevery = "1m"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    [problem] = raised.value.problems
    assert f"{path}:2:" in problem and "database" in problem
    assert 'use "sqlite:///onwatch.db"' in problem


def test_it_finds_onwatch_toml_before_pyproject(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, "[tool.onwatch]\n", name="pyproject.toml")
    assert find_config(None, tmp_path) == tmp_path / "onwatch.toml"


def test_it_reads_tool_onwatch_from_pyproject(tmp_path: Path) -> None:
    text = GOOD.replace("[onwatch]", "[tool.onwatch]").replace("[checks.", "[tool.onwatch.checks.")
    write(tmp_path, "[project]\nname = 'x'\n" + text, name="pyproject.toml")
    path = find_config(None, tmp_path)
    assert path.name == "pyproject.toml"
    config = load_config(path)
    assert sorted(config.checks) == ["critical-paths", "hourly"]
    assert config.settings.max_parallel == 3


def test_an_explicit_path_wins_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    other = write(tmp_path, GOOD, name="prod.toml")
    assert find_config(str(other), tmp_path) == other
    with pytest.raises(ConfigError, match="no such config file"):
        find_config(str(tmp_path / "nope.toml"), tmp_path)


def test_no_config_at_all_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="create onwatch.toml"):
        find_config(None, tmp_path)


def test_an_unknown_key_names_file_line_and_the_likely_spelling(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('every = "5m"', 'evry = "5m"'))
    found = problems(path)
    assert (
        f"{path}:8: checks.critical-paths.evry: unknown key 'evry' (did you mean 'every'?)"
        in (found[0])
    )


def test_a_bad_duration_names_its_line_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('timeout = "2m"', 'timeout = "2 minutes"'))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:9: checks.critical-paths.timeout: ")
    assert "'2 minutes' is not a duration" in problem and '"5m"' in problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("retries = 1", "retries = -1").replace(
        'cron = "0 * * * *"', 'cron = "every hour"'
    )
    found = problems(write(tmp_path, text))
    assert len(found) == 2
    assert "checks.critical-paths.retries" in found[0]
    assert "checks.hourly.cron" in found[1] and "not a cron expression" in found[1]


def test_a_check_needs_exactly_one_schedule(tmp_path: Path) -> None:
    both = write(tmp_path, '[checks.a]\ntests = ["tests"]\nevery = "1m"\ncron = "* * * * *"\n')
    assert "exactly one schedule" in problems(both)[0]
    neither = write(tmp_path, '[checks.a]\ntests = ["tests"]\n')
    [problem] = problems(neither)
    assert problem.startswith(f"{neither}:1: checks.a: ") and "exactly one schedule" in problem


def test_missing_tests_and_missing_paths_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[checks.a]\nevery = "1m"\n\n[checks.b]\ntests = ["nope"]\nevery = "1m"\n'
    )
    first, second = problems(path)
    assert first.startswith(f"{path}:1: checks.a.tests: required key 'tests' is missing")
    assert second.startswith(f"{path}:5: checks.b.tests: tests[0] 'nope' does not exist")


@pytest.mark.e2e
def test_files_the_config_names_are_checked_again_when_it_is_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONWATCH_CACHE_DIR", str(tmp_path / "cache"))
    chromium = tmp_path / "bin" / "chromium"
    chromium.parent.mkdir()
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    path = write(tmp_path, GOOD + '\n[browser]\nexecutable = "bin/chromium"\n')
    load_config(path)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    (tmp_path / "tests" / "prod" / "test_a.py").unlink()
    chromium.unlink()
    # A process of its own, as `onwatch once` from cron: it must answer from the cache.
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_REPORT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    *found, pydantic_loaded = done.stdout.splitlines()
    assert pydantic_loaded == "pydantic loaded: False"
    assert found == [
        f"{path}:14: checks.hourly.tests: tests[0] 'tests/prod/test_a.py::test_x' does not "
        f"exist in {tmp_path}; paths are relative to the config file's folder",
        f"{path}:18: browser.executable: 'bin/chromium' does not exist; {BROWSER_FIX}",
    ]
    write(tmp_path, path.read_text())  # the test file is back
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    assert load_config(path).browser_executable == str(chromium)


LOAD_AND_REPORT = """\
import sys
from pathlib import Path

from onwatch.config import load_config
from onwatch.errors import ConfigError

try:
    load_config(Path(sys.argv[1]))
except ConfigError as exc:
    print("\\n".join(exc.problems))
print("pydantic loaded:", "pydantic" in sys.modules)
"""


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[checks.a]\ntests = ["tests"]\nevery = 5m\n')
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3: invalid TOML")


def test_unknown_tables_and_bad_check_names_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, '[check.a]\ntests = ["tests"]\n\n[checks."has space"]\ntests = []\n')
    found = problems(path)
    assert found[0].startswith(f"{path}:1: check: unknown table 'check'")
    assert "did you mean 'checks'" in found[0]
    assert found[1].startswith(f'{path}:4: checks."has space": ')


def test_unknown_checks_are_named_when_selected(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no check named 'nope'"):
        config.select(["nope"])
    assert list(config.select(["hourly"])) == ["hourly"]


def test_the_digest_changes_with_the_check_settings(tmp_path: Path) -> None:
    first = load_config(write(tmp_path, GOOD)).checks["critical-paths"].digest()
    second = (
        load_config(write(tmp_path, GOOD.replace('"5m"', '"6m"'))).checks["critical-paths"].digest()
    )
    assert first != second


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2h", 7200),
        ("500ms", 0.5),
        (90, 90),
        ("1d", 86400),
    ],
)
def test_durations_read_as_people_write_them(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "m5", "-1s", "0s", True])
def test_bad_durations_are_rejected_with_the_fix(text: object) -> None:
    with pytest.raises(ValueError, match="30s"):
        parse_duration(text)


CHANNELS = """\
[onwatch]
notify = ["mail"]

[notify.mail]
url = "mailto://127.0.0.1:2525?from=onwatch@example.com&to=ops@example.com"

[notify.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
headers = { Authorization = "Bearer x" }

[checks.api]
tests = ["tests"]
every = "1m"
notify = ["hook"]
alert_after = 3
remind_every = "1h"

[checks.web]
tests = ["tests"]
every = "1m"

[[silences]]
checks = ["api"]
start = 2026-12-01T22:00:00Z
end = 2026-12-02T01:00:00Z

[[silences]]
cron = "0 2 * * SUN"
duration = "2h"
timezone = "Europe/Paris"
"""


def test_it_loads_channels_alert_settings_and_silences(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CHANNELS))
    assert config.channels["hook"]["type"] == "webhook"
    assert config.channels["mail"]["type"] == "apprise"
    assert config.channels["mail"]["group_window"] == 60
    assert config.channels_of("api") == ["hook"] and config.channels_of("web") == ["mail"]
    api = config.checks["api"]
    assert (api.alert_after, api.recover_after, api.remind_every) == (3, 1, 3600)
    one_off, weekly = config.silences
    assert one_off.checks == ["api"] and one_off.end is not None and one_off.end.hour == 1
    assert weekly.duration == 7200 and weekly.timezone == "Europe/Paris"


def test_unknown_channels_bad_urls_and_half_windows_are_reported(tmp_path: Path) -> None:
    text = (
        CHANNELS.replace('notify = ["hook"]', 'notify = ["hoook"]')
        .replace('url = "http://127.0.0.1:9/hook"', 'url = "127.0.0.1/hook"')
        .replace('duration = "2h"\n', "")
        .replace('checks = ["api"]', 'checks = ["apii"]')
    )
    path = write(tmp_path, text)
    found = problems(path)
    assert any(
        p.startswith(f"{path}:9: notify.hook.url: an http(s) URL is needed")
        and "starts with http://" in p
        for p in found
    )
    assert any("checks.api.notify: no channel named 'hoook'" in p for p in found)
    assert any("silences.1: " in p and "cron and duration" in p for p in found)
    assert any("silences.0.checks: no check named 'apii'" in p for p in found)


def test_an_apprise_url_apprise_does_not_know_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, CHANNELS.replace('url = "mailto://', 'url = "nosuchservice://'))
    found = problems(path)
    [problem] = found  # and no "unknown channel" echo of the same mistake
    assert problem.startswith(
        f"{path}:5: notify.mail.url: 'nosuchservice://…' is not a URL Apprise understands"
    )
    assert "apprise/wiki" in problem


def test_an_unknown_channel_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, CHANNELS.replace('type = "webhook"', 'type = "webhok"'))
    [problem] = problems(path)
    assert problem == (
        f"{path}:8: notify.hook.type: unknown channel type 'webhok' (did you mean 'webhook'?); "
        "known types: alertmanager, apprise, webhook"
    )


def test_a_channel_takes_only_the_keys_of_its_own_type(tmp_path: Path) -> None:
    # group_window is an apprise key: a webhook sends each notification on its own.
    text = CHANNELS.replace('type = "webhook"\n', 'type = "webhook"\ngroup_window = "5m"\n')
    [problem] = problems(write(tmp_path, text))
    assert "notify.hook.group_window: unknown key 'group_window'" in problem
    assert problem.endswith("known keys: headers, timeout, type, url")


def test_each_kind_gets_its_own_defaults(tmp_path: Path) -> None:
    text = CHANNELS + '\n[notify.am]\ntype = "alertmanager"\nurl = "http://127.0.0.1:9093"\n'
    channels = load_config(write(tmp_path, text)).channels
    assert channels["mail"] == {
        "type": "apprise",
        "url": "mailto://127.0.0.1:2525?from=onwatch@example.com&to=ops@example.com",
        "timeout": 10.0,
        "group_window": 60.0,
    }
    assert channels["hook"]["headers"] == {"Authorization": "Bearer x"}
    assert "group_window" not in channels["hook"] and "hold" not in channels["hook"]
    assert (channels["am"]["hold"], channels["am"]["timeout"]) == (86400.0, 10.0)


def test_a_secret_a_channel_header_names_must_be_declared(tmp_path: Path) -> None:
    path = write(tmp_path, CHANNELS.replace("Bearer x", "Bearer ${HOOK_TOKEN}"))
    [problem] = problems(path)
    assert problem.startswith(
        f"{path}:10: notify.hook.headers: ${{HOOK_TOKEN}} names no secret of [onwatch] secrets"
    )


def test_it_loads_a_watch_with_its_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD + '\n[watch.stack]\npackages = ["django", "requests"]\nchecks = ["hourly"]\n',
    )
    watch = load_config(path).watches["stack"]
    assert watch.packages == ["django", "requests"] and watch.checks == ["hourly"]
    assert watch.index == "https://pypi.org/simple/"
    assert (watch.every, watch.prereleases) == (3600, False)
    assert (watch.min_age, watch.requirements, watch.alert_after) == (0.0, None, 3)


def test_a_watch_names_known_checks_an_http_index_and_existing_requirements(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        GOOD
        + '\n[watch.stack]\npackages = ["django"]\nchecks = ["hourly", "nightly"]\n'
        + 'index = "ftp://mirror/simple"\nrequirements = "pyproject.toml[test]"\n'
        + '\n[watch.private]\npackages = ["lib"]\nchecks = ["hourly"]\n'
        + 'index = "https://me:${INDEX_TOKEN}@pkgs.example.com/simple/"\n',
    )
    found = problems(path)
    # In one pass: the bad index does not hide the unknown check or the missing file.
    assert len(found) == 4, found
    assert found[0].startswith(
        f"{path}:19: watch.stack.checks: checks[1]: no check named 'nightly' "
        "(known: critical-paths, hourly)"
    )
    assert f"{path}:20: watch.stack.index: 'ftp://mirror/simple' is not an http(s) URL" in found[1]
    assert found[2].startswith(
        f"{path}:21: watch.stack.requirements: 'pyproject.toml[test]': no such file"
    )
    assert any(
        "watch.private.index: ${INDEX_TOKEN} names no secret of [onwatch] secrets" in p
        for p in found
    )


def test_allowed_hosts_takes_names_wildcards_and_addresses(tmp_path: Path) -> None:
    text = '[onwatch]\nallowed_hosts = ["onwatch.example.com", "*.corp.example", "[::1]", "*"]\n'
    config = load_config(write(tmp_path, text + GOOD.removeprefix("[onwatch]\n")))
    assert config.settings.allowed_hosts == ["onwatch.example.com", "*.corp.example", "[::1]", "*"]


@pytest.mark.parametrize(
    "entry", ["https://onwatch.example.com", "onwatch.example.com:443", "a.*.example", "a b", ""]
)
def test_an_allowed_host_with_scheme_port_or_odd_wildcard_is_refused(
    tmp_path: Path, entry: str
) -> None:
    text = f'[onwatch]\nallowed_hosts = ["{entry}"]\n' + GOOD.removeprefix("[onwatch]\n")
    path = write(tmp_path, text)
    [problem] = problems(path)
    assert problem.startswith(f"{path}:2: onwatch.allowed_hosts: {entry!r} is not a host name")
    assert "without scheme, port or path" in problem


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ('every = "1ms"', "every", "'1ms' is shorter than 1s; write a duration from 1s to 365d"),
        ('every = "0.5s"', "every", "'0.5s' is shorter than 1s; write a duration from 1s to 365d"),
        (
            'every = "99999999999w"',
            "every",
            "'99999999999w' is longer than 365d; write a duration from 1s to 365d",
        ),
        ('every = "366d"', "every", "'366d' is longer than 365d"),
        ("every = inf", "every", "inf is not a duration"),
        ("every = nan", "every", "nan is not a duration"),
        ('timeout = "8d"', "timeout", "'8d' is longer than 7d; write a duration from 1s to 7d"),
        ('timeout = "100ms"', "timeout", "'100ms' is shorter than 1s"),
        ('grace = "400d"', "grace", "'400d' is longer than 365d"),
        ('remind_every = "10ms"', "remind_every", "'10ms' is shorter than 1s"),
    ],
)
def test_intervals_and_timeouts_out_of_range_name_line_value_and_range(
    tmp_path: Path, line: str, key: str, message: str
) -> None:
    path = write(tmp_path, f'[checks.a]\ntests = ["tests"]\nevery = "1m"\n{line}\n')
    if key == "every":
        path.write_text(f'[checks.a]\ntests = ["tests"]\n{line}\n')
    [found] = problems(path)
    assert found.startswith(f"{path}:{3 if key == 'every' else 4}: checks.a.{key}: {message}")


def test_the_bounds_are_inclusive(tmp_path: Path) -> None:
    path = write(tmp_path, '[checks.a]\ntests = ["tests"]\nevery = "1s"\ntimeout = "7d"\n')
    path.write_text(path.read_text() + '\n[checks.b]\ntests = ["tests"]\nevery = "365d"\n')
    config = load_config(path)
    assert (config.checks["a"].every, config.checks["a"].timeout) == (1, 7 * 86400)
    assert config.checks["b"].every == 365 * 86400


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ("[onwatch]", 'heartbeat_every = "1ms"', "onwatch.heartbeat_every: '1ms' is shorter"),
        ("[onwatch]", 'drain_timeout = "30d"', "onwatch.drain_timeout: '30d' is longer than 7d"),
        ("[onwatch]", 'keep_artifacts = "9999d"', "onwatch.keep_artifacts: '9999d' is longer"),
        (
            '[watch.w]\npackages = ["x"]\nchecks = ["a"]',
            'every = "500ms"',
            "watch.w.every: '500ms' is shorter than 1s",
        ),
        (
            '[[silences]]\ncron = "0 2 * * *"',
            'duration = "99999999999w"',
            "silences.0.duration: '99999999999w' is longer than 365d",
        ),
        (
            '[notify.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/"',
            'timeout = "99999999999w"',
            "notify.hook.timeout: '99999999999w' is longer than 3650d",
        ),
    ],
)
def test_every_other_duration_is_bounded_too(
    tmp_path: Path, table: str, line: str, message: str
) -> None:
    text = f'[checks.a]\ntests = ["tests"]\nevery = "1m"\n\n{table}\n{line}\n'
    [found] = problems(write(tmp_path, text))
    assert message in found


def test_a_file_that_is_not_utf8_names_the_byte_its_offset_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.write_bytes(b'[checks.a]\n# caf\xe9\ntests = ["tests"]\nevery = "1m"\n')
    [found] = problems(path)
    assert found.startswith(f"{path}:2: not UTF-8 text")
    assert "byte 0xe9 at offset 16, line 2, column 6" in found and "save the file as UTF-8" in found


def test_a_pyproject_for_onwatch_that_is_not_utf8_is_an_error_not_a_missing_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.onwatch]\nx = '\xff'\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml:2: not UTF-8 text .*offset 20"):
        find_config(None, tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.black]\nx = '\xff'\n")
    with pytest.raises(ConfigError, match="no onwatch.toml here"):
        find_config(None, tmp_path)


def test_schema_reference_and_path_problems_come_in_one_pass_in_file_order(
    tmp_path: Path,
) -> None:
    text = """\
[onwatch]
listen = "nowhere"
notify = ["pager"]

[checks.a]
tests = ["missing"]
every = "1ms"
notify = ["mail"]

[[silences]]
checks = ["a", "ghost"]
cron = "0 2 * * *"
duration = "0s"

[watch.w]
packages = ["django"]
checks = ["a", "b"]
requirements = "nope.txt"
every = "99999999999w"
"""
    path = write(tmp_path, text)
    found = [p.removeprefix(f"{path}:") for p in problems(path)]
    assert [p.split(": ", 2)[:2] for p in found] == [
        ["2", "onwatch.listen"],
        ["3", "onwatch.notify"],
        ["6", "checks.a.tests"],
        ["7", "checks.a.every"],
        ["8", "checks.a.notify"],
        ["10", "silences.0.duration"],
        ["10", "silences.0.checks"],
        ["17", "watch.w.checks"],
        ["18", "watch.w.requirements"],
        ["19", "watch.w.every"],
    ], found
    assert "no channel named 'pager'" in found[1] and "no channel named 'mail'" in found[4]
    assert "no check named 'ghost'" in found[6] and "no check named 'b'" in found[7]


def test_a_bad_secrets_table_is_reported_once_not_again_for_each_placeholder(
    tmp_path: Path,
) -> None:
    text = (
        '[onwatch]\nsecrets = { DB_PASS = "vault:x" }\n'
        'database = "postgresql://u:${DB_PASS}@127.0.0.1/db"\n'
        '\n[checks.a]\ntests = ["tests"]\nevery = "1m"\n'
    )
    [found] = problems(write(tmp_path, text))
    assert "onwatch.secrets" in found


def test_the_cache_key_follows_every_file_that_decides_validity() -> None:
    from onwatch.config.load import VALIDATION_SOURCES

    assert all(source.is_file() for source in VALIDATION_SOURCES)
    assert {source.name for source in VALIDATION_SOURCES} >= {"models.py", "durations.py"}
