"""The run contract: the plugin's event lines and pytest's exit status become a run's verdict.

Every test here feeds ``parse`` the bytes a pytest process leaves in its events file (one JSON
object per line, shaped as ``runner.plugin`` writes them) and its exit status, and checks what a
user sees: the run's status and error, the count of collected tests and each test's outcome. No
process is started; tests/runner/test_execute.py runs real pytest processes for each path once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from onwatch.model import Outcome, RunStatus, TestResult
from onwatch.runner.parse import (
    RunAttempt,
    Verdict,
    describe_exit,
    merge_attempts,
    parse_events,
    retry_candidates,
    useful_output,
    verdict,
)
from onwatch.runner.process import EventTail

TIMEOUT_TEXT = "run exceeded its timeout of 3s"
SELECTION = "tests/smoke -m 'monitor'"
T1, T2, T3 = ("test_shop.py::test_home", "test_shop.py::test_login", "test_shop.py::test_cart")


def start(attempt: int = 1) -> dict[str, Any]:
    return {"event": "start", "pid": 4242, "attempt": attempt, "rootdir": "/srv/suite"}


def collected(count: int) -> dict[str, Any]:
    return {"event": "collected", "count": count}


def begin(nodeid: str) -> dict[str, Any]:
    return {"event": "begin", "nodeid": nodeid}


def result(
    nodeid: str, outcome: str = "passed", phase: str = "call", **fields: Any
) -> dict[str, Any]:
    """Return a result event with every field the plugin writes."""
    event = {
        "event": "result",
        "nodeid": nodeid,
        "outcome": outcome,
        "phase": phase,
        "duration": 0.25,
        "attempt": 1,
        "exception": None,
        "message": None,
        "traceback": None,
        "output": None,
        "properties": [],
        "artifacts": [],
    }
    event.update(fields)
    return event


def failure(nodeid: str, message: str = "AssertionError: total is 0") -> dict[str, Any]:
    return result(
        nodeid,
        "failed",
        exception="AssertionError",
        message=message,
        traceback=f"    def test():\n>       assert total\nE       {message}\n\ntest_shop.py:9",
        output="--- Captured stdout call ---\nloading cart\n",
    )


def collect_error(nodeid: str, message: str) -> dict[str, Any]:
    return {
        "event": "collect_error",
        "nodeid": nodeid,
        "message": message,
        "traceback": f"ImportError while importing test module '{nodeid}'.\nE   {message}",
    }


def finished(status: int) -> dict[str, Any]:
    return {"event": "finished", "exitstatus": status}


def lines(*events: dict[str, Any]) -> bytes:
    """Return events as the plugin writes them: compact JSON, one per line."""
    return b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)


def ran(*events: dict[str, Any], returncode: int | None, number: int = 1, **how: Any) -> RunAttempt:
    """Return an attempt whose events file held ``events`` and whose process exited so."""
    return RunAttempt(
        number=number, events=parse_events(lines(*events)), returncode=returncode, **how
    )


def judge(*attempts: RunAttempt) -> Verdict:
    return verdict(list(attempts), SELECTION, TIMEOUT_TEXT)


def outcomes(decided: Verdict) -> dict[str, Outcome]:
    """Return the final outcome of each test, by node id."""
    return {r.nodeid: r.outcome for r in decided.results if r.final}


def history(decided: Verdict, nodeid: str) -> list[tuple[int, Outcome, bool]]:
    """Return every attempt of one test as (attempt, outcome, final)."""
    return [(r.attempt, r.outcome, r.final) for r in decided.results if r.nodeid == nodeid]


def only(decided: Verdict, nodeid: str) -> TestResult:
    [found] = [r for r in decided.results if r.nodeid == nodeid and r.final]
    return found


# A session that ended normally


def test_a_session_where_every_test_passes_is_a_passed_run_with_no_error() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            result(T2),
            finished(0),
            returncode=0,
        )
    )
    assert (decided.status, decided.error, decided.collected) == (RunStatus.PASSED, None, 2)
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.PASSED}
    assert only(decided, T1).category is None  # only failures get a category


def test_a_failed_test_fails_the_run_and_keeps_what_pytest_said_about_it() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            failure(T2),
            finished(1),
            returncode=1,
        )
    )
    assert (decided.status, decided.error) == (RunStatus.FAILED, None)
    failed = only(decided, T2)
    assert (failed.outcome, failed.phase, failed.exception) == (
        Outcome.FAILED,
        "call",
        "AssertionError",
    )
    assert failed.message == "AssertionError: total is 0"
    assert failed.traceback is not None and "assert total" in failed.traceback
    assert failed.output == "--- Captured stdout call ---\nloading cart\n"
    assert (failed.duration, failed.attempt, failed.final) == (0.25, 1, True)
    assert failed.category == "product"


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_an_error_in_a_fixture_fails_the_run_and_names_its_phase(phase: str) -> None:
    broken = result(
        T1, "error", phase, exception="RuntimeError", message="RuntimeError: no database"
    )
    decided = judge(ran(start(), collected(1), begin(T1), broken, finished(1), returncode=1))
    # The tests ran: a broken fixture fails the run, it is not an error of the run itself.
    assert (decided.status, decided.error) == (RunStatus.FAILED, None)
    errored = only(decided, T1)
    assert (errored.outcome, errored.phase, errored.exception) == (
        Outcome.ERROR,
        phase,
        "RuntimeError",
    )
    assert errored.category is not None


def test_skips_xfails_and_xpasses_keep_the_run_green_and_keep_their_reasons() -> None:
    decided = judge(
        ran(
            start(),
            collected(3),
            begin(T1),
            result(T1, "skipped", exception="Skipped", message="Skipped: not today"),
            begin(T2),
            result(T2, "xfailed", exception="ValueError", message="known bug"),
            begin(T3),
            result(T3, "xpassed", message="unexpectedly passed: fixed already?"),
            finished(0),
            returncode=0,
        )
    )
    assert decided.status is RunStatus.PASSED
    assert outcomes(decided) == {T1: Outcome.SKIPPED, T2: Outcome.XFAILED, T3: Outcome.XPASSED}
    assert only(decided, T1).message == "Skipped: not today"
    assert only(decided, T3).message == "unexpectedly passed: fixed already?"


def test_an_outcome_the_contract_does_not_know_is_an_error_not_a_pass() -> None:
    odd = {"event": "result", "nodeid": T1, "outcome": "rerun"}  # and no other field
    decided = judge(ran(start(), collected(1), begin(T1), odd, finished(0), returncode=0))
    assert decided.status is RunStatus.FAILED
    errored = only(decided, T1)
    assert (errored.outcome, errored.phase, errored.duration) == (Outcome.ERROR, "call", 0.0)


def test_user_properties_and_captured_files_reach_the_result() -> None:
    screenshot = {"kind": "screenshot", "name": "page.png", "size": 2048, "path": "/tmp/a/p.png"}
    passed = result(
        T1,
        properties=[["latency_ms", 12], ["region", "eu"]],
        artifacts=[screenshot, {"name": "no-path.txt"}, "not a dict"],
        artifact_errors=["trace: the browser was closed"],
    )
    decided = judge(ran(start(), collected(1), begin(T1), passed, finished(0), returncode=0))
    kept = only(decided, T1)
    assert kept.properties == (
        ("latency_ms", 12),
        ("region", "eu"),
        ("onwatch.artifact_errors", ["trace: the browser was closed"]),
    )
    [artifact] = kept.artifacts  # an entry without a path or a name is not a file
    assert (artifact.kind, artifact.name, artifact.size, artifact.source) == (
        "screenshot",
        "page.png",
        2048,
        "/tmp/a/p.png",
    )


def test_the_attempt_number_comes_from_the_process_not_from_the_event() -> None:
    decided = judge(
        ran(start(), collected(1), begin(T1), failure(T1), finished(1), returncode=1),
        ran(
            start(2),
            collected(1),
            begin(T1),
            result(T1, attempt=7),
            finished(0),
            returncode=0,
            number=2,
        ),
    )
    assert history(decided, T1) == [(1, Outcome.FAILED, False), (2, Outcome.FLAKY, True)]


# A process killed mid-write or mid-test


def test_a_truncated_last_line_is_dropped_and_every_finished_test_kept() -> None:
    whole = lines(start(), collected(3), begin(T1), result(T1), begin(T2))
    torn = lines(failure(T2))[:40]  # the process was killed inside this write
    decided = judge(RunAttempt(number=1, events=parse_events(whole + torn), returncode=-9))
    assert decided.status is RunStatus.ERROR
    assert decided.error == f"pytest died (killed by SIGKILL) while running {T2}"
    assert decided.collected == 3
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.ERROR}
    assert only(decided, T2).message == (
        "the test process died (killed by SIGKILL) during this test"
    )


def test_a_garbled_line_in_the_middle_costs_only_that_line() -> None:
    data = lines(start(), collected(2), begin(T1), result(T1))
    data += b'{"event":"result","nodeid":\n'  # half a line, then the writer went on
    data += b'\n   \n[1, 2]\n"a string"\n42\nnull\n'  # blank lines and JSON that is no event
    data += lines(begin(T2), result(T2), finished(0))
    events = parse_events(data)
    assert [e["event"] for e in events] == [
        "start",
        "collected",
        "begin",
        "result",
        "begin",
        "result",
        "finished",
    ]
    decided = judge(RunAttempt(number=1, events=events, returncode=0))
    assert decided.status is RunStatus.PASSED
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.PASSED}


def test_a_process_killed_between_two_tests_blames_no_test() -> None:
    decided = judge(ran(start(), collected(3), begin(T1), result(T1), returncode=-15))
    assert (decided.status, decided.error) == (RunStatus.ERROR, "pytest died (killed by SIGTERM)")
    assert outcomes(decided) == {T1: Outcome.PASSED}


def test_a_test_that_ends_its_own_process_quietly_is_still_a_dead_run() -> None:
    # os._exit(0) in a test: a clean exit code, but the session never finished.
    decided = judge(ran(start(), collected(2), begin(T1), returncode=0))
    assert decided.status is RunStatus.ERROR
    assert decided.error == f"pytest died (exit code 0) while running {T1}"
    assert outcomes(decided) == {T1: Outcome.ERROR}


def test_a_finished_session_ignores_a_test_that_never_reported() -> None:
    # The session ended: a begin without a result is not a test in flight.
    decided = judge(
        ran(start(), collected(1), begin(T1), result(T1), begin(T2), finished(0), returncode=0)
    )
    assert decided.status is RunStatus.PASSED
    assert outcomes(decided) == {T1: Outcome.PASSED}


# Nothing to run, or nothing that could be collected


def test_a_selection_that_collects_nothing_is_a_run_error_naming_the_selection() -> None:
    decided = judge(ran(start(), collected(0), finished(5), returncode=5))
    assert decided.status is RunStatus.ERROR
    assert decided.error == (
        f"the selection collected no tests ({SELECTION}); check the paths, -m and -k"
    )
    assert (decided.collected, decided.results) == (0, ())


def test_a_collection_error_is_a_run_error_with_the_module_and_its_first_line() -> None:
    message = "ModuleNotFoundError: No module named 'no_such_package'\nsecond line"
    decided = judge(
        ran(
            start(),
            collect_error("test_import.py", message),
            collected(1),
            finished(2),
            returncode=2,
        )
    )
    assert decided.status is RunStatus.ERROR
    assert decided.error == (
        "collection failed (1 error): test_import.py: "
        "ModuleNotFoundError: No module named 'no_such_package'"
    )
    [broken] = decided.results
    assert (broken.nodeid, broken.outcome, broken.phase, broken.exception) == (
        "test_import.py",
        Outcome.ERROR,
        "collect",
        "CollectError",
    )
    assert broken.message == message
    assert broken.traceback is not None and "ImportError while importing" in broken.traceback
    assert broken.category == "test-code"


def test_several_collection_errors_are_counted_and_the_first_is_named() -> None:
    decided = judge(
        ran(
            start(),
            collect_error("test_a.py", "SyntaxError: invalid syntax"),
            collect_error("", "ERROR: file or directory not found: gone/"),
            collected(0),
            finished(4),
            returncode=4,
        )
    )
    assert decided.error == "collection failed (2 errors): test_a.py: SyntaxError: invalid syntax"
    assert [r.nodeid for r in decided.results] == ["test_a.py", "<collection>"]


def test_a_conftest_that_cannot_be_imported_is_explained_from_pytests_output() -> None:
    # pytest stops before the plugin loads: the events file stays empty.
    output = (
        "ImportError while loading conftest '/srv/suite/conftest.py'.\n"
        "conftest.py:1: in <module>\n"
        "    import module_that_does_not_exist\n"
        "E   ModuleNotFoundError: No module named 'module_that_does_not_exist'\n"
    )
    decided = judge(RunAttempt(number=1, events=parse_events(b""), returncode=4, output=output))
    assert decided.status is RunStatus.ERROR
    assert decided.error == (
        "pytest failed before collecting tests (exit code 4, usage error): "
        "E   ModuleNotFoundError: No module named 'module_that_does_not_exist'"
    )
    assert (decided.collected, decided.results) == (None, ())


def test_a_usage_error_names_the_bad_argument() -> None:
    output = (
        "ERROR: usage: python -m pytest [options] [file_or_dir] [file_or_dir] [...]\n"
        "python -m pytest: error: unrecognized arguments: --no-such-option\n"
        "  inifile: /srv/suite/pytest.ini\n"
    )
    decided = judge(RunAttempt(number=1, events=[], returncode=4, output=output))
    assert decided.error == (
        "pytest failed before collecting tests (exit code 4, usage error): "
        "python -m pytest: error: unrecognized arguments: --no-such-option"
    )


def test_a_process_that_left_no_events_and_no_output_still_says_how_it_ended() -> None:
    decided = judge(RunAttempt(number=1, events=parse_events(b""), returncode=-11))
    assert (decided.status, decided.error) == (
        RunStatus.ERROR,
        "pytest failed before collecting tests (killed by SIGSEGV)",
    )


# pytest's own exit statuses


@pytest.mark.parametrize(
    ("returncode", "meaning"),
    [
        (2, "exit code 2, interrupted"),
        (3, "exit code 3, internal error"),
        (4, "exit code 4, usage error"),
        (7, "exit code 7"),
        (-15, "killed by SIGTERM"),  # after the session had finished
    ],
)
def test_a_session_that_ends_with_an_unexpected_status_is_a_run_error(
    returncode: int, meaning: str
) -> None:
    output = (
        "INTERNALERROR> Traceback (most recent call last):\n"
        'INTERNALERROR>   File "plugin.py", line 3, in pytest_runtest_logreport\n'
        "INTERNALERROR> RuntimeError: a plugin broke\n"
    )
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            result(T2),
            finished(returncode if returncode >= 0 else 0),
            returncode=returncode,
            output=output,
        )
    )
    assert decided.status is RunStatus.ERROR
    assert decided.error == (
        f"pytest ended with {meaning}: INTERNALERROR> RuntimeError: a plugin broke"
    )
    # Even then, what ran is kept.
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.PASSED}


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        (None, "no exit code"),
        (0, "exit code 0"),
        (1, "exit code 1, some tests failed"),
        (5, "exit code 5, no tests collected"),
        (137, "exit code 137"),
        (-9, "killed by SIGKILL"),
        (-200, "killed by signal 200"),
    ],
)
def test_exit_statuses_are_described_in_words(returncode: int | None, words: str) -> None:
    assert describe_exit(returncode) == words


def test_only_the_lines_that_explain_a_failure_are_kept_from_pytests_output() -> None:
    assert useful_output("collecting\nE   ValueError: bad\nnoise\nE   second\n") == (
        "E   ValueError: bad\nE   second"
    )
    assert useful_output("one\nKeyError: 'x'\ntwo\n") == "KeyError: 'x'"
    noise = "".join(f"line {n}\n" for n in range(100))
    assert useful_output(noise).splitlines() == [f"line {n}" for n in range(70, 100)]
    assert useful_output("") == ""


# Stopped from outside: the timeout, or onwatch shutting down


def test_a_timeout_names_the_test_in_flight_and_the_progress() -> None:
    decided = judge(
        ran(
            start(),
            collected(3),
            begin(T1),
            result(T1),
            begin(T2),
            returncode=-15,
            timed_out=True,
        )
    )
    assert decided.status is RunStatus.TIMEOUT
    assert decided.error == f"{TIMEOUT_TEXT} while running {T2} (1 of 3 tests finished)"
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.TIMEOUT}
    hung = only(decided, T2)
    assert (hung.message, hung.category) == (TIMEOUT_TEXT, "timeout")


def test_a_timeout_between_two_tests_blames_no_test() -> None:
    decided = judge(
        ran(start(), collected(3), begin(T1), result(T1), returncode=-9, timed_out=True)
    )
    assert decided.error == f"{TIMEOUT_TEXT} (1 of 3 tests finished)"
    assert outcomes(decided) == {T1: Outcome.PASSED}


def test_a_timeout_during_collection_reports_no_progress() -> None:
    decided = judge(ran(start(), returncode=-15, timed_out=True))
    assert (decided.status, decided.error, decided.collected) == (
        RunStatus.TIMEOUT,
        TIMEOUT_TEXT,
        None,
    )


def test_a_timeout_wins_over_a_collection_error_seen_before_it() -> None:
    decided = judge(
        ran(
            start(),
            collect_error("test_a.py", "SyntaxError: bad"),
            collected(1),
            begin(T1),
            returncode=-15,
            timed_out=True,
        )
    )
    assert decided.status is RunStatus.TIMEOUT


def test_onwatch_stopping_mid_test_is_an_interrupted_run_error() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            returncode=-15,
            interrupted=True,
        )
    )
    assert decided.status is RunStatus.ERROR
    assert (
        decided.error == f"interrupted: onwatch stopped while running {T2} (1 of 2 tests finished)"
    )
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.ERROR}
    assert only(decided, T2).message == "interrupted: onwatch stopped while this test ran"


def test_a_run_recovered_without_any_events_is_interrupted_with_nothing_to_show() -> None:
    # What ``Runner.recover`` builds when a dead onwatch left no events file behind.
    decided = judge(RunAttempt(number=1, events=[], returncode=None, interrupted=True))
    assert (decided.status, decided.error, decided.collected, decided.results) == (
        RunStatus.ERROR,
        "interrupted: onwatch stopped",
        None,
        (),
    )


# Retries: the first attempt runs the selection, later ones what failed


def test_a_test_that_passes_on_retry_is_flaky_and_the_run_passes() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            failure(T2),
            finished(1),
            returncode=1,
        ),
        ran(start(2), collected(1), begin(T2), result(T2), finished(0), returncode=0, number=2),
    )
    assert (decided.status, decided.error, decided.collected) == (RunStatus.PASSED, None, 2)
    assert history(decided, T1) == [(1, Outcome.PASSED, True)]
    assert history(decided, T2) == [(1, Outcome.FAILED, False), (2, Outcome.FLAKY, True)]
    first = next(r for r in decided.results if r.nodeid == T2 and r.attempt == 1)
    assert first.category == "product"  # the failed attempt keeps why it failed


def test_a_test_that_fails_every_attempt_fails_the_run() -> None:
    decided = judge(
        ran(start(), collected(1), begin(T1), failure(T1), finished(1), returncode=1),
        ran(start(2), collected(1), begin(T1), failure(T1), finished(1), returncode=1, number=2),
        ran(
            start(3),
            collected(1),
            begin(T1),
            result(T1, "error", "setup"),
            finished(1),
            returncode=1,
            number=3,
        ),
    )
    assert decided.status is RunStatus.FAILED
    assert history(decided, T1) == [
        (1, Outcome.FAILED, False),
        (2, Outcome.FAILED, False),
        (3, Outcome.ERROR, True),
    ]


def test_a_pass_after_two_failures_is_flaky() -> None:
    merged = merge_attempts(
        [
            TestResult(T1, Outcome.ERROR, "setup", 0.1, attempt=1),
            TestResult(T1, Outcome.FAILED, "call", 0.1, attempt=2),
            TestResult(T1, Outcome.PASSED, "call", 0.1, attempt=3),
        ]
    )
    assert [(r.outcome, r.final) for r in merged] == [
        (Outcome.ERROR, False),
        (Outcome.FAILED, False),
        (Outcome.FLAKY, True),
    ]


def test_a_retry_whose_process_dies_makes_the_run_an_error() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            failure(T2),
            finished(1),
            returncode=1,
        ),
        ran(start(2), collected(1), begin(T2), returncode=-9, number=2),
    )
    assert decided.status is RunStatus.ERROR
    assert decided.error == f"pytest died (killed by SIGKILL) while running {T2}"
    assert history(decided, T2) == [(1, Outcome.FAILED, False), (2, Outcome.ERROR, True)]
    assert decided.collected == 2  # the count is the first attempt's, the full selection


def test_a_retry_that_cannot_start_makes_the_run_an_error_and_keeps_the_first_results() -> None:
    decided = judge(
        ran(start(), collected(1), begin(T1), failure(T1), finished(1), returncode=1),
        RunAttempt(number=2, events=[], returncode=4, output="E   ImportError: gone\n"),
    )
    assert decided.error == (
        "pytest failed before collecting tests (exit code 4, usage error): E   ImportError: gone"
    )
    assert history(decided, T1) == [(1, Outcome.FAILED, True)]


def test_a_timeout_during_a_retry_is_a_timeout_run() -> None:
    decided = judge(
        ran(
            start(),
            collected(2),
            begin(T1),
            result(T1),
            begin(T2),
            failure(T2),
            finished(1),
            returncode=1,
        ),
        ran(start(2), collected(1), begin(T2), returncode=-15, number=2, timed_out=True),
    )
    assert decided.status is RunStatus.TIMEOUT
    assert decided.error == f"{TIMEOUT_TEXT} while running {T2} (1 of 2 tests finished)"
    assert history(decided, T2) == [(1, Outcome.FAILED, False), (2, Outcome.TIMEOUT, True)]


def test_only_final_failures_and_errors_outside_collection_are_retried() -> None:
    decided = judge(
        ran(
            start(),
            collect_error("test_broken.py", "SyntaxError: bad"),
            collected(5),
            begin(T1),
            failure(T1),
            begin(T2),
            result(T2, "error", "setup"),
            begin(T3),
            result(T3, "skipped"),
            begin("t.py::test_x"),
            result("t.py::test_x", "xfailed"),
            begin("t.py::test_ok"),
            result("t.py::test_ok"),
            finished(1),
            returncode=1,
        )
    )
    assert retry_candidates(decided.results) == [T1, T2]
    # What was already retried into a pass, or timed out, is not run again.
    assert (
        retry_candidates(
            merge_attempts(
                [
                    TestResult(T1, Outcome.FAILED, "call", 0.1, attempt=1),
                    TestResult(T1, Outcome.PASSED, "call", 0.1, attempt=2),
                    TestResult(T2, Outcome.TIMEOUT, "call", 0.0, attempt=1),
                ]
            )
        )
        == []
    )


# Bytes that are not clean text


def test_a_line_with_bytes_that_are_not_utf8_keeps_its_result() -> None:
    data = lines(start(), collected(1), begin(T1))
    data += lines(failure(T1, "AssertionError: got CAFE")).replace(b"CAFE", b"caf\xe9 \xff")
    data += lines(finished(1))
    decided = judge(RunAttempt(number=1, events=parse_events(data), returncode=1))
    assert decided.status is RunStatus.FAILED
    assert only(decided, T1).message == "AssertionError: got caf\ufffd \ufffd"


def test_an_escaped_lone_surrogate_becomes_a_replacement_character() -> None:
    # A test can fail with a message no encoder accepts: assert False, "bad \ud800 text".
    # The plugin escapes it into valid JSON; the parser must not hand it to the store as is.
    message = "AssertionError: bad \ud800 text \U0001f600"
    decided = judge(
        ran(
            start(),
            collect_error("test_\udcff.py", "SyntaxError: \udfff"),
            collected(1),
            begin(T1),
            failure(T1, message),
            finished(1),
            returncode=1,
        )
    )
    failed = only(decided, T1)
    assert failed.message == "AssertionError: bad \ufffd text \U0001f600"  # a real pair stays
    assert decided.error == "collection failed (1 error): test_\ufffd.py: SyntaxError: \ufffd"
    for text in (decided.error, *(f"{r.nodeid}{r.message}{r.traceback}" for r in decided.results)):
        text.encode("utf-8")  # every sink (terminal, SQL, JSON) can take it


def test_an_empty_events_file_is_no_events() -> None:
    assert parse_events(b"") == []
    assert parse_events(b"\n\n") == []


# The live reader: a run in progress is read as it is written


def test_the_live_reader_takes_a_line_only_once_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "run.1.events"
    seen: list[dict[str, Any]] = []
    tail = EventTail(path, seen.append)
    written = lines(start(), collected(1), begin(T1), result(T1), finished(0))
    cut = written.index(b'{"event":"result"') + 30
    path.write_bytes(written[:cut])
    tail.read()
    assert [e["event"] for e in seen] == ["start", "collected", "begin"]
    with path.open("ab") as handle:
        handle.write(written[cut:])
    tail.read()
    tail.read()  # nothing new: nothing is delivered twice
    assert [e["event"] for e in seen] == ["start", "collected", "begin", "result", "finished"]
    assert tail.events == seen
    assert seen[3]["nodeid"] == T1


def test_lines_of_the_wrong_shape_that_a_test_wrote_are_dropped_or_mended() -> None:
    # The events file is named in the tests' environment: a test can write anything to it.
    forged = [
        {"event": "collected", "count": "many"},
        {"event": 7},
        {"event": "result", "nodeid": 5},
        {"event": "begin", "nodeid": None},
        result(
            T2,
            "failed",
            duration="slow",
            message={"not": "text"},
            properties="p",
            artifacts=[{"path": "/x", "name": "n", "size": "big"}],
        ),
    ]
    decided = judge(ran(start(), collected(2), *forged, result(T1), finished(1), returncode=1))
    assert decided.status is RunStatus.FAILED and decided.collected == 2
    mended = only(decided, T2)
    assert mended.duration == 0.0
    assert mended.message == '{"not": "text"}'
    assert mended.properties == ()
    assert [a.size for a in mended.artifacts] == [0]
    assert outcomes(decided) == {T1: Outcome.PASSED, T2: Outcome.FAILED}


def test_processes_left_running_are_named_in_the_error_of_any_run() -> None:
    killed = ("pid 10: sleep 600", "pid 11: chromium --headless")
    passed = ran(start(), collected(1), result(T1), finished(0), returncode=0, killed=killed)
    assert judge(passed).status is RunStatus.PASSED
    assert judge(passed).error == (
        "onwatch killed 2 processes the tests left running:\n"
        "- pid 10: sleep 600\n- pid 11: chromium --headless"
    )
    stopped = ran(start(), collected(1), begin(T1), returncode=-15, interrupted=True, killed=killed)
    error = judge(stopped).error or ""
    assert error.startswith("interrupted: onwatch stopped while running")
    assert error.endswith(
        "\n\nonwatch killed 2 processes the tests left running:\n"
        "- pid 10: sleep 600\n- pid 11: chromium --headless"
    )
