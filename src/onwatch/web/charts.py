"""Server-side SVG charts for the dashboard: data in, SVG markup out, no I/O.

Every function returns ``markupsafe.Markup`` so autoescaping templates embed it as is. The pages
run under a strict Content-Security-Policy, so the SVG carries no ``style`` attributes and no
``<style>`` or ``<script>`` elements: colours come from CSS classes in the dashboard stylesheet.

Classes for the stylesheet: the root has ``chart chart-KIND``; outcomes and run statuses are
``o-passed``, ``o-failed`` ... (``OUTCOME_CLASSES``), ``o-none`` for no data or an unknown state;
every data point has ``point`` (timeline and sparkline dots also ``line-N``, bars also ``bar``);
lines are ``line line-N`` (N is the series index); the frame uses ``axis``, ``grid``, ``tick``,
``legend`` and ``empty``; the heatmap adds ``row-label`` and ``col`` (its run header).

Each data point has a ``<title>`` child, which browsers show on hover. ``None`` values draw no
point, and timeline or bars points whose x lies outside ``x_range`` are not drawn either. Every
piece of caller text is escaped; hrefs must be relative URLs (``/runs/7``, ``?page=2``,
``../x``), anything else raises ``ValueError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

OUTCOME_CLASSES: frozenset[str] = frozenset(
    {"passed", "failed", "error", "skipped", "xfailed", "xpassed", "timeout", "flaky", "none"}
)
# Built once: the heatmap looks a class up per cell, and caller text never reaches a class.
_STATE_CLASS = {state: "o-" + state for state in OUTCOME_CLASSES}

_SVG_NS = "http://www.w3.org/2000/svg"
_CHAR_WIDTH = 6.2  # rough width of one label character at the stylesheet's small font size
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_DAY = 86400
_NO_DATA = "no data in this range"

# Characters XML 1.0 forbids even as references, so caller text holding one becomes U+FFFD.
# NUL is left out: the bulk escape uses it as a separator and replaces it by other means.
_XML_FORBIDDEN = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Hrefs must be relative URLs: no scheme, no "//" or backslash, no whitespace or control
# characters, so that a browser can only resolve them against the dashboard's own origin.
_SCHEME = re.compile(r" [A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass(frozen=True, slots=True)
class Cell:
    """One coloured square: a test outcome or a run status, with hover text and a link."""

    state: str
    title: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a timeline: (epoch seconds, y) points in x order; y ``None`` is a gap."""

    name: str
    points: Sequence[tuple[float, float | None]]
    titles: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class Column:
    """One heatmap column, usually a run, oldest first."""

    key: str
    title: str
    href: str | None = None


@dataclass(frozen=True, slots=True)
class _Plot:
    """The plotting area of a chart with axes, and the data ranges it maps."""

    left: float
    top: float
    right: float
    bottom: float
    x0: float
    x1: float
    y0: float
    y1: float

    def sx(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def sy(self, y: float) -> float:
        # Values beyond the range stick to the edge; their titles still tell the real value.
        y = min(max(y, self.y0), self.y1)
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)


def fmt_seconds(value: float) -> str:
    """Format a duration for people: "350 ms", "1.5 s", "2 min 5 s", "3 h 10 min"."""
    if value < 0:
        return "-" + fmt_seconds(-value)
    if value == 0:
        return "0 s"
    if round(value * 1000) < 1000:
        ms = value * 1000
        return f"{_num(ms, 1)} ms" if ms < 10 else f"{round(ms)} ms"
    if round(value, 1) < 60:
        return f"{_num(value, 1)} s"
    total = round(value)
    if total < 3600:
        minutes, seconds = divmod(total, 60)
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(total // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def strip(
    cells: Sequence[Cell], *, label: str, cell_width: int = 8, height: int = 18, gap: int = 1
) -> Markup:
    """Draw one coloured rect per cell, left to right, oldest first."""
    step = cell_width + gap
    size = f'y="0" width="{cell_width}" height="{height}"'
    # Escaped in bulk: the overview draws thousands of cells.
    titles = _esc_many([c.title for c in cells])
    hrefs = iter(_hrefs([c.href for c in cells if c.href]))
    parts = []
    for i, (c, title) in enumerate(zip(cells, titles, strict=True)):
        rect = f'<rect class="point {_state(c.state)}" x="{i * step}" {size}>'
        inner = f"{rect}<title>{title}</title></rect>"
        parts.append(f'<a href="{next(hrefs)}">{inner}</a>' if c.href else inner)
    width = max(len(cells) * step - gap, cell_width)
    return _svg("strip", label, width, height, parts)


def sparkline(
    values: Sequence[float | None],
    titles: Sequence[str],
    *,
    label: str,
    width: int = 120,
    height: int = 24,
) -> Markup:
    """Draw values as a small line scaled to their min..max, with one hoverable dot per value."""
    _check_lengths("titles", titles, len(values))
    pad = 2.0
    known = [v for v in values if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    step = (width - 2 * pad) / (len(values) - 1) if len(values) > 1 else 0.0
    coords: list[tuple[float, float] | None] = []
    for i, v in enumerate(values):
        x = pad + i * step if step else width / 2
        y = height / 2 if hi == lo else pad + (hi - (v or 0.0)) / (hi - lo) * (height - 2 * pad)
        coords.append(None if v is None else (x, y))
    parts = _polylines(coords, "line line-0")
    for xy, title in zip(coords, _esc_many(list(titles)), strict=True):
        if xy is not None:
            parts.append(
                f'<circle class="point line-0" cx="{_num(xy[0])}" cy="{_num(xy[1])}" r="2">'
                f"<title>{title}</title></circle>"
            )
    return _svg("sparkline", label, width, height, parts)


def timeline(
    series: Sequence[Series],
    *,
    label: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float] | None = None,
    y_unit: str = "",
    width: int = 720,
    height: int = 180,
) -> Markup:
    """Draw series as lines over UTC time, with axes, y gridlines, a legend and hoverable dots."""
    for s in series:
        if s.titles is not None:
            _check_lengths(f"titles of series {s.name!r}", s.titles, len(s.points))
    x0, x1 = _span(*x_range)
    ys = [y for s in series for x, y in s.points if y is not None and x0 <= x <= x1]
    y0, y1 = y_range or (0.0, _nice_ceiling(max(ys, default=0.0), y_unit))
    plot = _Plot(64, 10, width - 12, height - 34, x0, x1, *_span(y0, y1))
    parts = _frame(plot, y_unit)
    drawn = 0
    for index, s in enumerate(series):
        coords: list[tuple[float, float] | None] = [
            (plot.sx(x), plot.sy(y)) if y is not None and plot.x0 <= x <= plot.x1 else None
            for x, y in s.points
        ]
        parts.extend(_polylines(coords, f"line line-{index}"))
        for i, ((x, y), xy) in enumerate(zip(s.points, coords, strict=True)):
            if xy is None or y is None:
                continue
            title = s.titles[i] if s.titles is not None else _default_title(s.name, x, y, y_unit)
            parts.append(_dot(xy, f"point line-{index}", title))
            drawn += 1
    if not drawn:
        parts.append(_empty(plot))
    parts.extend(_legend([s.name for s in series], plot.left, height - 6))
    return _svg("timeline", label, width, height, parts)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[Column],
    cells: Mapping[tuple[str, str], Cell],
    *,
    label: str,
    cell: int = 10,
    row_label_width: int = 260,
    row_hrefs: Mapping[str, str] | None = None,
) -> Markup:
    """Draw tests (rows) against runs (columns), one coloured square per recorded cell."""
    # A pixel of gap between squares; sizes stay whole numbers to keep the markup short.
    side, header = max(cell - 1, 1), max(cell // 2, 1)
    size = f'width="{side}" height="{side}"'
    xs = [str(row_label_width + j * cell) for j in range(len(columns))]
    parts: list[str] = []
    for x, col in zip(xs, columns, strict=True):
        rect = f'<rect class="col" x="{x}" y="0" width="{side}" height="{header}">'
        parts.append(_element(rect, col.title, col.href))
    top = header + 2
    max_chars = max(int((row_label_width - 8) / _CHAR_WIDTH), 2)
    row_hrefs = row_hrefs or {}
    keys = [col.key for col in columns]
    # None for a missing result; a list of existing objects keeps the garbage collector idle.
    drawn = [[cells.get((name, key)) for key in keys] for name in rows]
    flat = [c for row in drawn for c in row if c is not None]
    # Escaped in bulk: the big grids are what must stay fast.
    titles = iter(_esc_many([c.title for c in flat]))
    hrefs = iter(_hrefs([c.href for c in flat if c.href]))
    state_class = _STATE_CLASS.get  # no helper call per square
    for i, (name, row) in enumerate(zip(rows, drawn, strict=True)):
        # One translated group per row saves a y attribute on every square.
        parts.append(f'<g transform="translate(0 {top + i * cell})">')
        # Long names lose their start, not their end: node ids share the file path prefix.
        short = name if len(name) <= max_chars else "\u2026" + name[len(name) - max_chars + 1 :]
        text = (
            f'<text class="row-label" x="{row_label_width - 6}" y="{_num(cell / 2)}" '
            f'text-anchor="end" dominant-baseline="central">'
        )
        parts.append(_element(text, name, row_hrefs.get(name), f"{_esc(short)}</text>"))
        parts.extend(
            [
                f'<a href="{next(hrefs)}"><rect class="point {state_class(c.state, "o-none")}" '
                f'x="{x}" {size}><title>{next(titles)}</title></rect></a>'
                if c.href
                else f'<rect class="point {state_class(c.state, "o-none")}" x="{x}" {size}>'
                f"<title>{next(titles)}</title></rect>"
                for x, c in zip(xs, row, strict=True)
                if c is not None
            ]
        )
        parts.append("</g>")
    width = row_label_width + len(columns) * cell
    return _svg("heatmap", label, width, top + len(rows) * cell, parts)


def bars(
    values: Sequence[tuple[float, float | None, str]],
    *,
    label: str,
    x_range: tuple[float, float],
    y_unit: str = "s",
    width: int = 720,
    height: int = 160,
    states: Sequence[str] | None = None,
) -> Markup:
    """Draw one bar per (epoch seconds, y, title) over UTC time, coloured by its state if given."""
    if states is not None:
        _check_lengths("states", states, len(values))
    x0, x1 = _span(*x_range)
    ys = [y for x, y, _ in values if y is not None and x0 <= x <= x1]
    y1 = _nice_ceiling(max(ys, default=0.0), y_unit)
    plot = _Plot(64, 10, width - 12, height - 20, x0, x1, 0.0, y1)
    parts = _frame(plot, y_unit)
    bar_width = min(max((plot.right - plot.left) / max(len(values), 1) * 0.7, 1.0), 10.0)
    base = plot.sy(plot.y0)
    drawn = 0
    for i, (x, y, title) in enumerate(values):
        if y is None or not plot.x0 <= x <= plot.x1:
            continue
        # At least a pixel tall, so a zero-length bar can still be hovered.
        top = min(plot.sy(y), base - 1)
        cls = f"point bar {_state(states[i])}" if states is not None else "point bar"
        parts.append(
            f'<rect class="{cls}" x="{_num(plot.sx(x) - bar_width / 2)}" y="{_num(top)}" '
            f'width="{_num(bar_width)}" height="{_num(base - top)}">'
            f"<title>{_esc(title)}</title></rect>"
        )
        drawn += 1
    if not drawn:
        parts.append(_empty(plot))
    return _svg("bars", label, width, height, parts)


# --- markup helpers ---------------------------------------------------------------------------


def _esc(text: str) -> str:
    """Escape text for an SVG text node or a double-quoted attribute."""
    if not text.isprintable():
        text = _XML_FORBIDDEN.sub("\ufffd", text).replace("\x00", "\ufffd")
    return str(escape(text))


def _esc_many(texts: Sequence[str]) -> list[str]:
    """Escape many texts at once: a few passes in C beat thousands of small calls."""
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a text holds the separator itself
        return [_esc(text) for text in texts]
    if not "".join(texts).isprintable():
        joined = _XML_FORBIDDEN.sub("\ufffd", joined)
    # str.split, not Markup.split, which would wrap every piece in a Markup again.
    return str.split(escape(joined), "\x00")


def _state(state: str) -> str:
    return _STATE_CLASS.get(state, "o-none")


def _hrefs(hrefs: Sequence[str]) -> list[str]:
    """Check that every href is a relative URL and escape them all."""
    # Hrefs may not hold spaces, so a space can separate them, and one in front of each lets a
    # single search find a scheme or "//" at the start of any of them.
    joined = " " + " ".join(hrefs)
    if hrefs and not _all_relative(joined, len(hrefs)):
        bad = next((h for h in hrefs if not _all_relative(" " + h, 1)), hrefs[0])
        raise ValueError(f"chart links must be relative URLs, got {bad!r}")
    return str.split(escape(joined[1:]), " ") if hrefs else []


def _all_relative(joined: str, count: int) -> bool:
    return (
        joined.count(" ") == count
        and joined.isprintable()
        and "\\" not in joined
        and " //" not in joined
        and not _SCHEME.search(joined)
    )


def _element(open_tag: str, title: str, href: str | None, close: str = "</rect>") -> str:
    """Join an element, its hover title and its closing markup, wrapped in a link if any."""
    inner = f"{open_tag}<title>{_esc(title)}</title>{close}"
    return f'<a href="{_hrefs([href])[0]}">{inner}</a>' if href else inner


def _svg(kind: str, label: str, width: float, height: float, parts: Iterable[str]) -> Markup:
    w, h = _num(width), _num(height)
    head = (
        f'<svg xmlns="{_SVG_NS}" class="chart chart-{kind}" role="img" '
        f'aria-label="{_esc(label)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
    )
    return Markup("".join([head, *parts, "</svg>"]))


def _num(value: float, decimals: int = 2) -> str:
    """Write a number with at most ``decimals`` decimals and no trailing zeros."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"
    return "0" if text in ("-0", "") else text


def _dot(xy: tuple[float, float], cls: str, title: str) -> str:
    return (
        f'<circle class="{cls}" cx="{_num(xy[0])}" cy="{_num(xy[1])}" r="2">'
        f"<title>{_esc(title)}</title></circle>"
    )


def _polylines(coords: Sequence[tuple[float, float] | None], cls: str) -> list[str]:
    """Draw one polyline per run of consecutive known points, so gaps stay visible."""
    lines: list[str] = []
    run: list[str] = []
    for xy in [*coords, None]:
        if xy is not None:
            run.append(f"{_num(xy[0])},{_num(xy[1])}")
            continue
        if len(run) > 1:
            lines.append(f'<polyline class="{cls}" fill="none" points="{" ".join(run)}"/>')
        run = []
    return lines


def _check_lengths(what: str, items: Sequence[object], expected: int) -> None:
    if len(items) != expected:
        raise ValueError(f"{what} has {len(items)} items, expected {expected}")


# --- axes -------------------------------------------------------------------------------------


def _span(lo: float, hi: float) -> tuple[float, float]:
    """Widen an empty or reversed range so that scaling never divides by zero."""
    return (lo, hi) if hi > lo else (lo, lo + 1)


def _nice_ceiling(value: float, y_unit: str) -> float:
    """Round a maximum up to 1, 2, 2.5 or 5 times a power of ten (of minutes past 60 s)."""
    if value <= 0:
        return 100.0 if y_unit == "%" else 1.0
    if y_unit == "s" and value > 60:
        return _nice_ceiling(value / 60, "") * 60
    power = 10.0 ** math.floor(math.log10(value))
    factors = (1.0, 2.0, 2.5, 5.0)
    return next((f * power for f in factors if value <= f * power * (1 + 1e-9)), 10 * power)


def _fmt_value(value: float, y_unit: str) -> str:
    if y_unit == "s":
        return fmt_seconds(value)
    if y_unit == "%":
        return f"{_num(value, 1)}%"
    return f"{_num(value)} {y_unit}" if y_unit else _num(value)


def _frame(plot: _Plot, y_unit: str) -> list[str]:
    """Draw the axes, three labelled y gridlines and UTC time ticks along x."""
    left, right, top, bottom = (_num(v) for v in (plot.left, plot.right, plot.top, plot.bottom))
    parts: list[str] = []
    for value in (plot.y0, (plot.y0 + plot.y1) / 2, plot.y1):
        y = _num(plot.sy(value))
        parts.append(f'<line class="grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{_num(plot.left - 4)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="central">{_esc(_fmt_value(value, y_unit))}</text>'
        )
    parts.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>')
    tick_end, label_y = _num(plot.bottom + 3), _num(plot.bottom + 14)
    for t in _time_ticks(plot.x0, plot.x1, max(2, int((plot.right - plot.left) // 90))):
        x = _num(plot.sx(t))
        parts.append(
            f'<line class="axis" x1="{x}" y1="{bottom}" x2="{x}" y2="{tick_end}"/>'
            f'<text class="tick" x="{x}" y="{label_y}" text-anchor="middle">'
            f"{_fmt_time(t, plot.x1 - plot.x0)}</text>"
        )
    return parts


def _time_ticks(start: float, end: float, most: int) -> list[float]:
    """Pick round UTC instants (whole minutes, hours or days) between start and end."""
    span = end - start
    steps = _TIME_STEPS if span <= 2 * _DAY else ()
    step = next((s for s in steps if span / s <= most), 0)
    if not step:
        step = _DAY * max(1, math.ceil(span / _DAY / most))
    # Epoch seconds count from a UTC midnight, so multiples of a day land on UTC midnights.
    first = math.ceil(start / step) * step
    return [float(t) for t in range(first, math.floor(end) + 1, step)]


def _fmt_time(t: float, span: float) -> str:
    when = datetime.fromtimestamp(t, UTC)
    # Month names from a fixed table: strftime("%b") would follow the server's locale.
    return f"{when:%H:%M}" if span <= 2 * _DAY else f"{_MONTHS[when.month - 1]} {when:%d}"


def _default_title(name: str, x: float, y: float, y_unit: str) -> str:
    return f"{name}: {_fmt_value(y, y_unit)} at {datetime.fromtimestamp(x, UTC):%Y-%m-%d %H:%M} UTC"


def _empty(plot: _Plot) -> str:
    return (
        f'<text class="empty" x="{_num((plot.left + plot.right) / 2)}" '
        f'y="{_num((plot.top + plot.bottom) / 2)}" text-anchor="middle">{_NO_DATA}</text>'
    )


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    parts: list[str] = []
    for index, name in enumerate(names):
        parts.append(
            f'<line class="line line-{index}" x1="{_num(x)}" y1="{_num(y - 4)}" '
            f'x2="{_num(x + 14)}" y2="{_num(y - 4)}"/>'
            f'<text class="legend" x="{_num(x + 18)}" y="{_num(y)}">{_esc(name)}</text>'
        )
        x += 34 + len(name) * _CHAR_WIDTH
    return parts
