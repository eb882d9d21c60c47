"""What a test produced is made storable and safe to show before a run leaves the runner."""

from __future__ import annotations

import json
from dataclasses import replace

from onwatch.model import Artifact, Outcome, RunStatus, TestResult
from onwatch.runner.storable import (
    CUT_PROPERTY,
    NODEID_LIMIT,
    PROPERTIES_LIMIT,
    storable_id,
    storable_properties,
    storable_result,
    storable_run,
    storable_text,
)
from records import make_run


def result(**fields: object) -> TestResult:
    base = TestResult(nodeid="t.py::test", outcome=Outcome.FAILED, phase="call", duration=0.1)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_it_keeps_ordinary_text_as_it_is() -> None:
    text = "AssertionError: assert 1 == 2\n\tsee the diff: é ✓ 日本"
    assert storable_text(text, 1_000) is text


def test_it_turns_a_lone_surrogate_into_the_replacement_character() -> None:
    assert storable_text("bad \udcff", 100) == "bad \ufffd"
    storable_text("\ud800x\udfff", 100).encode("utf-8")  # no UnicodeEncodeError


def test_it_drops_colour_codes_and_shows_other_controls_as_escapes() -> None:
    text = "\x1b[31mred\x1b[0m nul\x00 bel\x07 clear\x1b[2J c1\x85 del\x7f"
    assert storable_text(text, 100) == "red nul\\x00 bel\\x07 clear\\x1b[2J c1\\x85 del\\x7f"


def test_it_shows_bidi_controls_as_escapes() -> None:
    text = "a\u202eb\u2066c\u200fd\u061ce"
    assert storable_text(text, 100) == "a\\u202eb\\u2066c\\u200fd\\u061ce"


def test_it_keeps_newlines_and_tabs_in_text_and_escapes_them_in_a_line() -> None:
    assert storable_text("a\r\nb\tc\rd", 100) == "a\nb\tc\\x0dd"
    assert storable_text("a\nb\tc", 100, one_line=True) == "a\\x0ab\\x09c"


def test_it_cuts_long_text_keeping_head_and_tail_and_says_how_much_went() -> None:
    text = "H" * 5_000 + "T" * 5_000
    cut = storable_text(text, 1_000)
    assert len(cut) <= 1_000
    assert cut.startswith("HHH") and cut.endswith("TTT")
    kept = cut.count("H") + cut.count("T")
    assert f"[... {10_000 - kept} characters cut ...]" in cut


def test_a_long_node_id_stays_one_line_bounded_and_distinct() -> None:
    one = "t.py::test[" + "x" * 500_000 + "a" + "x" * 499_999 + "]"
    other = "t.py::test[" + "x" * 500_000 + "b" + "x" * 499_999 + "]"
    assert len(storable_id(one)) <= NODEID_LIMIT
    assert "\n" not in storable_id(one)
    assert storable_id(one) != storable_id(other)  # the cut names a hash of the whole id
    assert storable_id(one) == storable_id(one)  # and the same test keeps its history
    assert storable_id("t.py::test[1]") == "t.py::test[1]"


def test_properties_are_bounded_in_count_and_size_and_fit_a_json_column() -> None:
    many = tuple((f"p{i}", i) for i in range(PROPERTIES_LIMIT + 5))
    kept = storable_properties(many)
    assert len(kept) == PROPERTIES_LIMIT + 1
    assert kept[-1] == (CUT_PROPERTY, "5 more properties cut")
    odd = storable_properties(
        (
            ("nan\x1b", float("nan")),
            ("inf", [float("inf"), {"k\u202e": "v\x00"}]),
            ("big", ["y" * 100] * 1_000),
            ("object", object()),
        )
    )
    values = dict(odd)
    assert values["nan\\x1b"] == "nan"
    assert values["inf"] == ["inf", {"k\\u202e": "v\\x00"}]
    assert isinstance(values["big"], str) and "characters cut" in values["big"]
    assert values["object"].startswith("<object object at")
    json.dumps(odd, allow_nan=False)  # PostgreSQL's JSON refuses NaN and Infinity


def test_a_result_is_cleaned_in_every_field_and_a_clean_one_kept_as_is() -> None:
    clean = result(message="boom", properties=(("k", "v"),))
    assert storable_result(clean) is clean
    dirty = result(
        nodeid="t.py::test[\x00]",
        exception="Error\x1b",
        message="m\u202e",
        traceback="t" * 100_000,
        output="o\x00",
        duration=float("nan"),
        artifacts=(Artifact(kind="html", name="page\u202e.html", size=1),),
    )
    fixed = storable_result(dirty)
    assert fixed.nodeid == "t.py::test[\\x00]"
    assert fixed.exception == "Error\\x1b"
    assert fixed.message == "m\\u202e"
    assert fixed.traceback is not None and len(fixed.traceback) <= 32_000
    assert fixed.output == "o\\x00"
    assert fixed.duration == 0.0
    assert fixed.artifacts[0].name == "page\\u202e.html"


def test_a_run_gets_its_error_and_results_cleaned() -> None:
    run = make_run(status=RunStatus.ERROR)
    assert storable_run(run) is run
    dirty = replace(run, error="pytest died\x00" + "e" * 20_000, results=(result(message="\x1b"),))
    fixed = storable_run(dirty)
    assert fixed.error is not None and fixed.error.startswith("pytest died\\x00")
    assert len(fixed.error) <= 8_000
    assert fixed.results[0].message == "\\x1b"
