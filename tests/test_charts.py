"""bot/review/charts.py: a case's scale scores over time, one line per person, as SVG and
PNG from matplotlib, with the same numbers as a table; only what the viewer may read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bot.access import Access, Refused
from bot.review import charts

import webworld as W


@pytest.fixture
def world(store, library):
    access = Access(store, library, W.config())
    access.seed()
    return W.build(W.service_for(store, library), access)


def test_one_chart_per_scale_question_one_line_per_person_in_time_order(world):
    got = charts.case_charts(world.access, f"tg:{W.P1}", world.ref)
    assert [c.key for c in got] == ["scaling-checkin.scale_now", "scaling-checkin.good_enough"]
    now = got[0]
    step = next(s for s in world.access.library.get("scaling-checkin").steps if s.id == "scale_now")
    assert now.question == " ".join(step.text.split()) and now.question.startswith("On a scale of 0 to 10")
    assert (now.low, now.high) == (0, 10)
    assert [(ln.label, [p.value for p in ln.points]) for ln in now.lines] == [
        ("Parent A (an adult (parent, carer or family member))", [3, 5, 6]),
        ("Young person B (a young person (13 to 17))", [2, 2, 4])]
    assert now.rows() == [
        ("2026-09-01 10:00", "Parent A (an adult (parent, carer or family member))", 3),
        ("2026-09-01 13:00", "Young person B (a young person (13 to 17))", 2),
        ("2026-09-08 10:00", "Parent A (an adult (parent, carer or family member))", 5),
        ("2026-09-08 13:00", "Young person B (a young person (13 to 17))", 2),
        ("2026-09-15 10:00", "Parent A (an adult (parent, carer or family member))", 6),
        ("2026-09-15 13:00", "Young person B (a young person (13 to 17))", 4)]


def test_svg_is_drawn_by_matplotlib_with_a_line_and_markers_per_person(world):
    chart = charts.case_charts(world.access, f"tg:{W.P1}", world.ref)[0]
    svg = charts.svg(chart)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Matplotlib" in svg
    legend = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("id") == "legend_1")
    keys = {id(g) for g in legend.iter("{http://www.w3.org/2000/svg}g")}
    lines = [g for g in root.iter("{http://www.w3.org/2000/svg}g")
             if re.fullmatch(r"line2d_\d+", g.get("id", "")) and id(g) not in keys]
    data_paths = [g for g in lines if any("stroke-width: 2" in (p.get("style") or "")
                                          for p in g.iter("{http://www.w3.org/2000/svg}path"))]
    assert len(data_paths) == 2  # one drawn line per person
    assert "Parent A" in svg and "Young person B" in svg  # text as text (svg.fonttype none)
    assert charts.svg(chart) == svg  # no timestamp: the same chart gives the same bytes


def test_png_is_a_png(world):
    chart = charts.case_charts(world.access, f"tg:{W.P1}", world.ref)[0]
    data = charts.png(chart)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_only_what_the_viewer_may_read_and_refusals_like_case(world, store):
    # the supervisor sees the same scales; the child's Three Houses (not shared) has none anyway
    sup = charts.case_charts(world.access, f"tg:{W.SUP}", world.ref)
    assert [c.key for c in sup] == ["scaling-checkin.scale_now", "scaling-checkin.good_enough"]
    with pytest.raises(Refused):
        charts.case_charts(world.access, f"tg:{W.P2}", world.ref)  # another practitioner's case
    actions = [(r["actor"], r["action"]) for r in store.audit_log() if r["action"].startswith("chart.")]
    assert actions == [(f"tg:{W.SUP}", "chart.read"), (f"tg:{W.P2}", "chart.read.refused")]


def test_conversations_not_shared_are_never_drawn(world):
    rows = world.access.case(f"tg:{W.P1}", world.ref)
    hidden = [dict(r, shared=False) if r["person_key"] == f"tg:{W.FAM_B}" else r for r in rows]
    got = charts.build(world.access.store, world.access.library, hidden)
    assert [ln.label for ln in got[0].lines] == ["Parent A (an adult (parent, carer or family member))"]


def test_names_with_markup_and_dollars_are_plain_text(store, library):
    service = W.service_for(store, library)
    access = Access(store, library, W.config())
    access.seed()
    evil = "<script>alert(1)</script> & \"$x^2$\" '"
    w = W.build(service, access, ref="X<&>\"'", names=(evil, "B $$"))
    chart = charts.case_charts(access, f"tg:{W.P1}", w.ref)[0]
    svg = charts.svg(chart)
    ET.fromstring(svg)
    assert "<script" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in svg
    assert "$x^2$" in svg  # a dollar sign, not mathematics
    assert charts.png(chart)[:4] == b"\x89PNG"


def test_a_withheld_step_is_never_drawn(world):
    # A part the person chose not to share (consent.which) is left out of the charts, as of the
    # transcript: here the young person's "good enough" answers.
    rows = world.access.case(f"tg:{W.P1}", world.ref)
    assert all(r["withheld"] == frozenset() for r in rows)  # nothing withheld from their worker
    part = [dict(r, withheld=frozenset({"good_enough"})) if r["person_key"] == f"tg:{W.FAM_B}" else r for r in rows]
    got = {c.key: [ln.label for ln in c.lines] for c in charts.build(world.access.store, world.access.library, part)}
    assert got == {"scaling-checkin.scale_now": ["Parent A (an adult (parent, carer or family member))",
                                                 "Young person B (a young person (13 to 17))"],
                   "scaling-checkin.good_enough": ["Parent A (an adult (parent, carer or family member))"]}
