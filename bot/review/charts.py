"""Charts of a case's scale scores over time: one chart per scale question, one line per
person who answered it, drawn by matplotlib (Agg, no display) as SVG or PNG, with the same
numbers as a table for people who cannot see the picture.

Which conversations count is decided by :meth:`bot.access.Access.case` (the one function
behind ``/case`` and the website's case page): answers someone has not agreed to share are
never drawn. Use :func:`case_charts` with a viewer, or :func:`build` with the rows that
function returned.

The wording (axis titles, the table's headings, the alternative text) is in
``bot/messages.yaml`` under ``charts:``. Every text given to matplotlib is drawn as plain
text (``text.parse_math`` off), so a ``$`` in a name is a dollar sign, never mathematics,
and the SVG writer escapes ``<``, ``&`` and quotes.
"""

from __future__ import annotations

import io
import textwrap
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bot.messages import msg
from bot.names import person_label
from bot.respondent import described
from bot.store import from_iso

# Okabe-Ito: told apart by people with any common colour blindness; each line also has its
# own marker and dash pattern, so the chart reads in black and white (printing) too.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":")


@dataclass
class Point:
    when: str  # UTC ISO time the answer was given
    value: int
    conversation_id: int


@dataclass
class Line:
    label: str  # the person, as named in the case (pseudonym), and who they are
    points: list[Point] = field(default_factory=list)


@dataclass
class Chart:
    flow_id: str
    step_id: str
    question: str
    low: int
    high: int
    lines: list[Line] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.flow_id}.{self.step_id}"

    def rows(self) -> list[tuple[str, str, int]]:
        """(date, person, score) in time order: the table beside the chart."""
        out = [(p.when, line.label, p.value) for line in self.lines for p in line.points]
        return [(_day(w), who, v) for w, who, v in sorted(out, key=lambda r: (r[0], r[1]))]

    def description(self) -> str:
        """A sentence for the picture's alternative text."""
        return msg("charts.alt", question=self.question, n=len(self.lines), low=self.low, high=self.high)


def _day(ts: str) -> str:
    return ts[:16].replace("T", " ")


def _question(step) -> str:
    text = " ".join((step.text or "").split())
    if "{{" in text or "{%" in text:  # a template: its wording depends on earlier answers
        return msg("charts.question_fallback", step=step.id)
    return text


def build(store, library, conversations: list[dict], telegram_names: bool = False) -> list[Chart]:
    """Charts from the conversations :meth:`Access.case` returned for a viewer: only those
    marked ``shared`` are read, without the steps in their ``withheld`` (the parts the person
    chose not to share). One chart per (flow, scale step), in the order first answered."""
    shared = [c["id"] for c in conversations if c.get("shared")]
    withheld = {c["id"]: c.get("withheld") or () for c in conversations}
    charts: dict[tuple[str, str], Chart] = {}
    flows: dict[str, object] = {}
    for row in store.scale_points(shared):
        if row["step_id"] in withheld.get(row["conversation_id"], ()):
            continue
        sha = row["flow_sha"]
        if sha not in flows:
            flows[sha] = library.runner_for(sha, lambda s=sha: store.snapshot_source(s)).flow
        step = next((s for s in flows[sha].steps if s.id == row["step_id"]), None)
        if step is None or step.type != "scale":
            continue
        chart = charts.get((row["flow_id"], step.id))
        if chart is None:
            chart = charts[(row["flow_id"], step.id)] = Chart(
                row["flow_id"], step.id, _question(step), step.min if step.min is not None else 0,
                step.max if step.max is not None else 10)
        who = person_label(row["person_key"], row["display_name"], row["pseudonym"], telegram_names)
        if row.get("respondent"):
            who = f"{who} ({described(row['respondent'])})"
        line = next((ln for ln in chart.lines if ln.label == who), None)
        if line is None:
            line = Line(who)
            chart.lines.append(line)
        line.points.append(Point(row["answered_at"], row["value"], row["conversation_id"]))
    return list(charts.values())


def case_charts(access, key: str, ref: str, practitioner: str | None = None) -> list[Chart]:
    """The charts of case ``ref`` as ``key`` may see them (refused like ``/case``: raises
    :class:`bot.access.Refused`, or :class:`bot.access.AmbiguousCase` when two practitioners use
    the reference and ``practitioner`` does not say whose); audited as ``chart.read``."""
    rows = access.case(key, ref, action="chart.read", practitioner=practitioner)
    return build(access.store, access.library, rows, access.telegram_names)


# -- drawing ---------------------------------------------------------------------------------

_READY: list = []


def _matplotlib():
    """matplotlib with the Agg backend and the chart settings, set once for the process
    (``rc_context`` per chart would copy every setting each time). Text is never parsed as
    mathematics; SVG text stays text; SVG ids are stable, so the same chart is the same bytes."""
    import matplotlib

    if not _READY:
        matplotlib.use("Agg", force=False)
        matplotlib.rcParams.update({"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "restorative-bot",
                                    "font.family": "DejaVu Sans", "axes.edgecolor": "#444444", "text.color": "#222222",
                                    "axes.labelcolor": "#222222", "xtick.color": "#222222", "ytick.color": "#222222"})
        _READY.append(True)
    return matplotlib


def _ticks(days: list[float], most: int = 6) -> list[float]:
    """At most ``most`` of the answer dates, spread out, as the x axis ticks."""
    import math

    unique = sorted({math.floor(d) for d in days})  # one tick a day, at midnight (UTC)
    if len(unique) <= most:
        return [float(d) for d in unique]
    step = (len(unique) - 1) / (most - 1)
    return [float(unique[round(i * step)]) for i in range(most)]


def _figure(chart: Chart, width: float, height: float):
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedFormatter, FixedLocator

    # Fixed margins in inches (a layout engine would double the drawing time); the legend,
    # one person a row, goes under the plot and the figure grows to hold it.
    rows = max(1, len(chart.lines))
    title_lines = textwrap.wrap(chart.question, 80)[:3]
    top, bottom = 0.25 + 0.2 * len(title_lines), 0.55 + 0.25 * rows
    height = height + 0.25 * rows
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes((0.8 / width, bottom / height, 1 - 1.1 / width, 1 - (top + bottom) / height))
    days: list[float] = []
    for i, line in enumerate(chart.lines):
        xs = [from_iso(p.when).timestamp() / 86400 for p in line.points]
        days += xs
        ys = [p.value for p in line.points]
        ax.plot(xs, ys, color=COLOURS[i % len(COLOURS)], marker=MARKERS[i % len(MARKERS)],
                linestyle=DASHES[i % len(DASHES)], linewidth=2, markersize=7, label=line.label)
    pad = max(0.5, (chart.high - chart.low) * 0.05)
    ax.set_ylim(chart.low - pad, chart.high + pad)
    # Three labelled ticks (each tick is costly to draw) and a light line at every whole number,
    # drawn as one collection, to read a score by; the exact numbers are in the table.
    ax.yaxis.set_major_locator(FixedLocator(sorted({chart.low, (chart.low + chart.high) // 2, chart.high})))
    if chart.high - chart.low <= 20:
        ax.hlines(range(chart.low, chart.high + 1), 0, 1, transform=ax.get_yaxis_transform(), colors="#e3e3e3",
                  linewidth=0.8, zorder=0)
    if days:
        ticks = _ticks(days)
        span = max(days) - min(days)
        ax.set_xlim(min(days) - max(0.5, span * 0.04), max(days) + max(0.5, span * 0.04))
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FixedFormatter(
            [datetime.fromtimestamp(d * 86400, timezone.utc).strftime("%d %b %Y") for d in ticks]))
    ax.set_ylabel(msg("charts.y_label", low=chart.low, high=chart.high))
    ax.set_title("\n".join(title_lines), fontsize=10, loc="left")
    if chart.lines:
        ax.legend(loc="upper left", bbox_to_anchor=(-0.8 / width * 0.9, -0.45 / (height - top - bottom)),
                  ncols=1, frameon=False, fontsize=9, borderaxespad=0)
    return fig


def _render(chart: Chart, fmt: str, width: float, height: float, dpi: int | None = None) -> bytes:
    """The drawing, kept for the same numbers (a chart changes only when an answer comes in)."""
    key = (fmt, width, height, dpi, chart.key, chart.question, chart.low, chart.high,
           tuple((ln.label, tuple((p.when, p.value) for p in ln.points)) for ln in chart.lines))
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    fig = _figure(chart, width, height)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi or 100, metadata=_metadata(fmt, chart))
    data = buf.getvalue()
    with _LOCK:
        _CACHE[key] = data
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return data


CACHE_SIZE = 256  # drawings kept in memory (a few tens of KB each)
_CACHE: "OrderedDict[tuple, bytes]" = OrderedDict()
_LOCK = threading.Lock()


def _metadata(fmt: str, chart: Chart) -> dict:
    if fmt == "svg":
        return {"Title": chart.question, "Date": None}  # no timestamp: the same chart gives the same bytes
    return {"Title": chart.question, "Software": None}


def svg(chart: Chart, width: float = 7.5, height: float = 3.2) -> str:
    """The chart as a standalone SVG document (text as text, escaped by matplotlib)."""
    return _render(chart, "svg", width, height).decode("utf-8")


def png(chart: Chart, width: float = 7.5, height: float = 3.2, dpi: int = 120) -> bytes:
    """The chart as PNG (e.g. for Telegram's ``/trend``)."""
    return _render(chart, "png", width, height, dpi)
