"""SVG charts of the dashboard, read back as XML the way a browser test would query them."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import jinja2
import pytest
from markupsafe import Markup

from onwatch.web.charts import (
    OUTCOME_CLASSES,
    Cell,
    Column,
    Series,
    bars,
    fmt_seconds,
    heatmap,
    sparkline,
    strip,
    timeline,
)

NS = "{http://www.w3.org/2000/svg}"
START = 1_800_000_000.0  # 2027-01-15 08:00 UTC
HOUR = 3600.0
DAY = 86400.0
SCRIPT = "<script>alert(1)</script>"


def parse(svg: Markup) -> ET.Element:
    """Parse a chart, checking on the way what the page's Content-Security-Policy forbids."""
    text = str(svg)
    assert "style=" not in text
    assert "<style" not in text
    assert "<script" not in text
    return ET.fromstring(text)


def points(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter() if "point" in e.get("class", "").split()]


def title(element: ET.Element) -> str:
    found = element.find(f"{NS}title")
    assert found is not None and found.text is not None
    return found.text


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text") if e.get("class") == cls]


def time_labels(root: ET.Element) -> list[str]:
    """Return the labels under the x axis, left to right."""
    return [
        e.text or ""
        for e in root.iter(f"{NS}text")
        if e.get("class") == "tick" and e.get("text-anchor") == "middle"
    ]


def links(root: ET.Element) -> dict[str, ET.Element]:
    """Map each link's href to the element it wraps."""
    return {a.attrib["href"]: a[0] for a in root.iter(f"{NS}a")}


CHARTS: dict[str, Callable[[str], Markup]] = {
    "strip": lambda label: strip([Cell("passed", "ok")], label=label),
    "sparkline": lambda label: sparkline([1.0, 2.0], ["a", "b"], label=label),
    "timeline": lambda label: timeline(
        [Series("api", [(START, 1.0)])], label=label, x_range=(START, START + HOUR)
    ),
    "heatmap": lambda label: heatmap(
        ["t"], [Column("r1", "run 1")], {("t", "r1"): Cell("passed", "ok")}, label=label
    ),
    "bars": lambda label: bars([(START, 1.0, "1 s")], label=label, x_range=(START, START + HOUR)),
}


@pytest.fixture
def zone_east_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test with the process in a zone far from UTC."""
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX form: needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("kind", sorted(CHARTS))
def test_every_chart_is_an_accessible_svg_image_with_a_size(kind: str) -> None:
    root = parse(CHARTS[kind]("Pass rate of <api> & co"))
    assert root.tag == f"{NS}svg"
    assert root.get("class") == f"chart chart-{kind}"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Pass rate of <api> & co"
    width, height = root.attrib["width"], root.attrib["height"]
    assert root.get("viewBox") == f"0 0 {width} {height}"


@pytest.mark.parametrize("kind", sorted(CHARTS))
def test_every_chart_escapes_a_script_tag_in_its_label(kind: str) -> None:
    svg = CHARTS[kind](SCRIPT)
    root = parse(svg)
    assert "&lt;script&gt;" in str(svg)
    assert root.get("aria-label") == SCRIPT


def test_it_returns_markup_that_an_autoescaping_template_keeps_as_is() -> None:
    svg = strip([Cell("failed", SCRIPT)], label="runs")
    template = jinja2.Environment(autoescape=True).from_string("<div>{{ chart }}</div>")
    page = template.render(chart=svg)
    assert page == f"<div>{svg}</div>"


def test_it_draws_one_strip_cell_per_run_oldest_first_with_its_title() -> None:
    cells = [Cell("passed", "run 1"), Cell("failed", "run 2"), Cell("timeout", "run 3")]
    found = points(parse(strip(cells, label="runs")))
    assert [title(e) for e in found] == ["run 1", "run 2", "run 3"]
    classes = [e.get("class") for e in found]
    assert classes == ["point o-passed", "point o-failed", "point o-timeout"]
    xs = [float(e.attrib["x"]) for e in found]
    assert xs == sorted(xs)


def test_it_links_strip_cells_that_have_an_href() -> None:
    cells = [Cell("passed", "run 1", "/runs/1"), Cell("error", "run 2")]
    root = parse(strip(cells, label="runs"))
    assert len(points(root)) == 2
    assert title(links(root)["/runs/1"]) == "run 1"
    assert len(links(root)) == 1


@pytest.mark.parametrize("state", sorted(OUTCOME_CLASSES))
def test_it_colours_each_known_state_with_its_class(state: str) -> None:
    (cell,) = points(parse(strip([Cell(state, "x")], label="runs")))
    assert cell.get("class") == f"point o-{state}"


@pytest.mark.parametrize("state", ["", "PASSED", "weird", 'passed" onclick="alert(1)', "a b"])
def test_it_draws_an_unknown_state_as_no_data_without_echoing_it(state: str) -> None:
    svg = strip([Cell(state, "x")], label="runs")
    (cell,) = points(parse(svg))
    assert cell.get("class") == "point o-none"
    assert "onclick" not in str(svg)


def test_it_escapes_a_script_tag_in_every_kind_of_caller_text() -> None:
    svgs = [
        strip([Cell("passed", SCRIPT, "/x?a=<script>")], label="l"),
        sparkline([1.0], [SCRIPT], label="l"),
        timeline(
            [Series(SCRIPT, [(START, 1.0)]), Series("b", [(START, 2.0)], [SCRIPT])],
            label="l",
            x_range=(START, START + HOUR),
        ),
        heatmap(
            [SCRIPT],
            [Column("r", SCRIPT, "/r?<script>")],
            {(SCRIPT, "r"): Cell("failed", SCRIPT)},
            label="l",
            row_hrefs={SCRIPT: "/tests?<script>"},
        ),
        bars([(START, 1.0, SCRIPT)], label="l", x_range=(START, START + HOUR)),
    ]
    for svg in svgs:
        root = parse(svg)
        assert "&lt;script&gt;" in str(svg)
        # Escaped, not dropped: the reader still sees the text as given.
        assert SCRIPT in [e.text for e in root.iter(f"{NS}title")] + texts(root, "legend")


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "https://evil.example/",
        "//evil.example/runs",
        "/\\evil.example/runs",
        " /runs/1",
        "/runs/1\n",
        "/runs/\x00",
    ],
)
def test_it_refuses_links_that_are_not_relative_urls(href: str) -> None:
    with pytest.raises(ValueError, match="relative URLs"):
        strip([Cell("passed", "x", href)], label="runs")
    with pytest.raises(ValueError, match="relative URLs"):
        heatmap(["t"], [Column("r", "r")], {("t", "r"): Cell("passed", "x", href)}, label="l")


def test_it_escapes_the_ampersands_of_a_relative_link() -> None:
    svg = strip([Cell("passed", "x", "/runs?check=api&page=2")], label="runs")
    assert 'href="/runs?check=api&amp;page=2"' in str(svg)
    assert "/runs?check=api&page=2" in links(parse(svg))
    assert "../tests/7" in links(parse(strip([Cell("passed", "x", "../tests/7")], label="l")))


def test_it_keeps_the_svg_well_formed_when_a_title_holds_control_characters() -> None:
    message = "assert \x1b[31mred\x1b[0m\x00 != ok\ttab"
    root = parse(strip([Cell("failed", message)], label="\x07bell"))
    (cell,) = points(root)
    assert title(cell) == "assert \ufffd[31mred\ufffd[0m\ufffd != ok\ttab"
    # The heatmap escapes its titles in bulk, with a NUL between them: check both of its paths.
    for text, shown in [(message, title(cell)), ("\x1b[31mred", "\ufffd[31mred")]:
        grid = heatmap(["t"], [Column("r", "r")], {("t", "r"): Cell("failed", text)}, label="l")
        assert title(points(parse(grid))[0]) == shown


def test_it_draws_one_sparkline_point_per_known_value() -> None:
    root = parse(sparkline([1.0, None, 3.0, 2.0], ["a", "b", "c", "d"], label="duration"))
    assert [title(e) for e in points(root)] == ["a", "c", "d"]


def test_it_breaks_the_sparkline_where_a_value_is_missing() -> None:
    root = parse(sparkline([1.0, 2.0, None, 3.0, 4.0], list("abcde"), label="duration"))
    assert len(root.findall(f"{NS}polyline")) == 2


@pytest.mark.parametrize("values", [[5.0], [2.0, 2.0, 2.0]])
def test_it_draws_a_flat_sparkline_at_mid_height_when_values_do_not_vary(
    values: list[float],
) -> None:
    root = parse(sparkline(values, ["t"] * len(values), label="d", height=24))
    assert {e.get("cy") for e in points(root)} == {"12"}


def test_it_scales_the_sparkline_so_the_largest_value_is_highest() -> None:
    root = parse(sparkline([1.0, 9.0, 5.0], ["lo", "hi", "mid"], label="d"))
    ys = {title(e): float(e.attrib["cy"]) for e in points(root)}
    assert ys["hi"] < ys["mid"] < ys["lo"]


def test_it_refuses_a_sparkline_whose_titles_do_not_match_its_values() -> None:
    with pytest.raises(ValueError, match="titles"):
        sparkline([1.0, 2.0], ["only one"], label="d")


def test_it_draws_one_timeline_point_per_known_value_in_range() -> None:
    api = Series("api", [(START, 1.0), (START + 600, None), (START + 1200, 0.5)])
    # The last point of "web" lies out of range.
    web = Series("web", [(START + 300, 0.2), (START + 2 * DAY, 0.3)])
    root = parse(timeline([api, web], label="durations", x_range=(START, START + HOUR)))
    assert len(points(root)) == 3
    assert texts(root, "legend") == ["api", "web"]
    assert texts(root, "empty") == []


def test_it_titles_timeline_points_with_name_value_and_utc_time_by_default() -> None:
    series = Series("api", [(START, 1.5), (START + 600, 0.35)])
    root = parse(timeline([series], label="d", x_range=(START, START + HOUR), y_unit="s"))
    assert [title(e) for e in points(root)] == [
        "api: 1.5 s at 2027-01-15 08:00 UTC",
        "api: 350 ms at 2027-01-15 08:10 UTC",
    ]


def test_it_uses_the_titles_given_for_timeline_points() -> None:
    series = Series("api", [(START, 1.0), (START + 60, None)], titles=["first", "gap"])
    root = parse(timeline([series], label="d", x_range=(START, START + HOUR)))
    assert [title(e) for e in points(root)] == ["first"]


@pytest.mark.parametrize(
    "series",
    [[], [Series("api", [])], [Series("api", [(START, None)])], [Series("api", [(0.0, 1.0)])]],
)
def test_it_says_no_data_on_an_empty_timeline_but_still_draws_axes(series: list[Series]) -> None:
    root = parse(timeline(series, label="d", x_range=(START, START + HOUR)))
    assert texts(root, "empty") == ["no data in this range"]
    assert points(root) == []
    assert root.findall(f"{NS}line[@class='axis']")


def test_it_labels_times_in_utc_whatever_the_local_zone(zone_east_of_utc: None) -> None:
    root = parse(timeline([], label="d", x_range=(START, START + 2 * HOUR)))
    assert time_labels(root) == ["08:00", "08:30", "09:00", "09:30", "10:00"]


def test_it_labels_days_beyond_a_two_day_range(zone_east_of_utc: None) -> None:
    root = parse(timeline([], label="d", x_range=(START, START + 7 * DAY)))
    days = time_labels(root)
    assert days[0] == "Jan 16"
    assert days[-1] == "Jan 22"


def test_it_labels_percent_gridlines() -> None:
    series = Series("pass rate", [(START, 97.5)])
    root = parse(
        timeline([series], label="d", x_range=(START, START + HOUR), y_range=(0, 100), y_unit="%")
    )
    assert texts(root, "tick")[:3] == ["0%", "50%", "100%"]


def test_it_rounds_the_top_of_an_open_range_up_and_labels_seconds() -> None:
    series = Series("api", [(START, 2.7), (START + 60, 0.1)])
    root = parse(timeline([series], label="d", x_range=(START, START + HOUR), y_unit="s"))
    assert texts(root, "tick")[:3] == ["0 s", "2.5 s", "5 s"]


def test_it_writes_numbers_with_at_most_two_decimals() -> None:
    series = Series("api", [(START + i * 77.7, i / 3) for i in range(40)])
    svg = str(timeline([series], label="d", x_range=(START, START + HOUR)))
    assert re.findall(r"\d+\.\d+", svg)
    assert not re.findall(r"\d+\.\d{3}", svg)


def test_it_draws_one_heatmap_square_per_recorded_result() -> None:
    rows = ["test_a", "test_b"]
    columns = [Column("r1", "run 1", "/runs/1"), Column("r2", "run 2")]
    cells = {
        ("test_a", "r1"): Cell("passed", "a in run 1", "/runs/1/test_a"),
        ("test_a", "r2"): Cell("flaky", "a in run 2"),
        ("test_b", "r2"): Cell("nonsense", "b in run 2"),  # and no result for b in run 1
    }
    root = parse(heatmap(rows, columns, cells, label="tests by run"))
    found = points(root)
    assert [title(e) for e in found] == ["a in run 1", "a in run 2", "b in run 2"]
    assert [e.get("class") for e in found] == ["point o-passed", "point o-flaky", "point o-none"]
    assert title(links(root)["/runs/1/test_a"]) == "a in run 1"
    assert title(links(root)["/runs/1"]) == "run 1"  # the column header


def test_it_truncates_long_row_labels_but_keeps_the_full_name_in_the_title() -> None:
    name = "tests/test_checkout.py::TestPayment::test_it_refunds_a_cancelled_order[visa]"
    root = parse(
        heatmap([name, "test_short"], [], {}, label="l", row_label_width=200, row_hrefs={})
    )
    labels = [e for e in root.iter(f"{NS}text") if e.get("class") == "row-label"]
    shown = [(e.text or "") + "".join(c.tail or "" for c in e) for e in labels]
    assert shown[0].startswith("\u2026") and shown[0].endswith("order[visa]")
    assert len(shown[0]) < len(name)
    assert shown[1] == "test_short"
    assert [title(e) for e in labels] == [name, "test_short"]


def test_it_links_row_labels_given_an_href() -> None:
    root = parse(heatmap(["test_a", "test_b"], [], {}, label="l", row_hrefs={"test_a": "/t/a"}))
    assert title(links(root)["/t/a"]) == "test_a"
    assert len(links(root)) == 1


def test_it_keeps_a_large_heatmap_small() -> None:
    rows = [f"tests/test_checkout.py::test_case_{i}" for i in range(100)]
    columns = [
        Column(f"r{j}", f"run 2026-11-29 {j // 60:02d}:{j % 60:02d} UTC") for j in range(200)
    ]
    # Hover text and links as long as the dashboard's: they are most of the bytes.
    cells = {
        (row, col.key): Cell(
            "failed" if (i + j) % 13 == 0 else "passed",
            f"{col.title[15:]} \u2014 passed in 1.25 s",
            f"/runs/{j}/tests/{i}",
        )
        for i, row in enumerate(rows)
        for j, col in enumerate(columns)
    }
    svg = heatmap(rows, columns, cells, label="tests by run")

    assert len(str(svg).encode()) < 3_000_000
    assert len(points(parse(svg))) == 100 * 200


def test_it_draws_one_bar_per_known_value_coloured_by_state() -> None:
    values = [(START, 0.2, "run 1"), (START + 60, None, "skipped"), (START + 120, 1.4, "run 3")]
    root = parse(
        bars(values, label="d", x_range=(START, START + HOUR), states=["passed", "x", "failed"])
    )
    found = points(root)
    assert [title(e) for e in found] == ["run 1", "run 3"]
    assert [e.get("class") for e in found] == ["point bar o-passed", "point bar o-failed"]
    assert texts(root, "tick")[:3] == ["0 s", "1 s", "2 s"]


def test_it_draws_the_taller_bar_for_the_longer_duration() -> None:
    values = [(START, 0.5, "short"), (START + 60, 2.0, "long")]
    heights = {
        title(e): float(e.attrib["height"])
        for e in points(parse(bars(values, label="d", x_range=(START, START + HOUR))))
    }
    assert heights["long"] > heights["short"] > 0


def test_it_says_no_data_when_no_bar_falls_in_range() -> None:
    root = parse(bars([(START - DAY, 1.0, "old")], label="d", x_range=(START, START + HOUR)))
    assert points(root) == []
    assert texts(root, "empty") == ["no data in this range"]


def test_it_refuses_bar_states_that_do_not_match_the_values() -> None:
    with pytest.raises(ValueError, match="states"):
        bars([(START, 1.0, "a")], label="d", x_range=(START, START + HOUR), states=[])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.0042, "4.2 ms"),
        (0.35, "350 ms"),
        (0.9996, "1 s"),
        (1.5, "1.5 s"),
        (12, "12 s"),
        (59.97, "1 min"),
        (125, "2 min 5 s"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (-2.5, "-2.5 s"),
    ],
)
def test_it_formats_durations_for_people(seconds: float, text: str) -> None:
    assert fmt_seconds(seconds) == text
