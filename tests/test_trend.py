"""/trend CASE_REF in Telegram (the case's chart as a PNG with a caption, then its numbers),
and the case's HTML export with the same chart inside it (issue 16 item 2). Who sees what is
decided by Access.case, as on the website."""

from __future__ import annotations

import base64
import re
import struct
from html.parser import HTMLParser

import pytest

from bot.access import Access
from bot.review.export import export
from bot.testing.telegram import running_bot

import webworld as W

HOSTILE = "Eve</td><script>x</script> &amp; \"q\""
PARENT = "Parent A (an adult (parent, carer or family member))"
YOUNG = "Young person B (a young person (13 to 17))"


@pytest.fixture
def world(store, library):
    access = Access(store, library, W.config())
    access.seed()
    return W.build(W.service_for(store, library), access, names=(HOSTILE, "Young person B"))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_trend_sends_each_chart_as_a_picture_with_its_numbers(world, store):
    async with running_bot(world.service, access=world.access) as h:
        msgs = await h.say(W.P1, f"/trend {world.ref}")
    photos = [m for m in msgs if m.photo is not None]
    texts = [m for m in msgs if m.text is not None]
    # one picture per scale question, in the order first answered, each followed by its table
    assert [("photo" if m.photo else "text") for m in msgs] == ["photo", "text", "photo", "text"]
    width, height = _png_size(photos[0].photo.data)
    assert width > 600 and height > 300
    assert photos[0].caption.startswith(f"Case {world.ref}: “On a scale of 0 to 10")
    assert photos[1].caption == f"Case {world.ref}: “What number would be good enough?”. " \
                                "One line for each person who answered; the numbers follow."
    assert texts[0].params["parse_mode"] == "HTML"
    hostile = f"{HOSTILE} (an adult (parent, carer or family member))"
    assert texts[0].text.splitlines() == [
        "Scores for “" + photos[0].caption.split("“", 1)[1].split("”")[0] + "”",
        f"2026-09-01 10:00 — {hostile}: 3", f"2026-09-01 13:00 — {YOUNG}: 2",
        f"2026-09-08 10:00 — {hostile}: 5", f"2026-09-08 13:00 — {YOUNG}: 2",
        f"2026-09-15 10:00 — {hostile}: 6", f"2026-09-15 13:00 — {YOUNG}: 4"]
    assert {e["type"] for e in texts[0].entities} == {"bold"}  # the name's markup stayed text
    assert "&lt;script&gt;" in texts[0].params["text"]
    actions = [(r["actor"], r["action"]) for r in store.audit_log() if r["action"].startswith("chart.")]
    assert actions == [(f"tg:{W.P1}", "chart.read")]


async def test_trend_refuses_like_the_case_page(world, store):
    async with running_bot(world.service, access=world.access) as h:
        other = await h.say(W.P2, f"/trend {world.ref}")  # another practitioner's case
        unknown = await h.say(W.P1, "/trend NO-SUCH-CASE")
        usage = await h.say(W.P1, "/trend")
    refused = "Sorry, that isn't available to you. If you think it should be, ask your administrator."
    assert [m.text for m in other] == [refused] and [m.text for m in unknown] == [refused]
    assert usage[0].text.startswith("To see a case's scale scores as a chart, send /trend CASE_REF")
    assert not any(m.photo for m in other + unknown + usage)
    actions = [(r["actor"], r["action"]) for r in store.audit_log() if r["action"].startswith("chart.")]
    assert actions == [(f"tg:{W.P2}", "chart.read.refused"), (f"tg:{W.P1}", "chart.read.refused")]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.cells: list[str] = []
        self._cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._cell = tag == "td"

    def handle_endtag(self, tag):
        self._cell = False

    def handle_data(self, data):
        if self._cell:
            self.cells.append(data)


def test_the_case_html_export_holds_the_chart_and_stays_inert(world):
    page = export(world.access.store, case=world.ref, fmt="html")
    parser = _Page()
    parser.feed(page)
    imgs = [(k, v) for t, k, v in parser.attrs if t == "img"]
    srcs = [v for k, v in imgs if k == "src"]
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    _png_size(base64.b64decode(srcs[0].split(",", 1)[1]))  # a real PNG, inside the file
    assert {k for k, _ in imgs} == {"src", "alt"}
    # self-contained and inert: nothing fetched, nothing run
    assert "script" not in parser.tags and "svg" not in parser.tags and "iframe" not in parser.tags
    assert not any(k.startswith("on") or k in ("href", "style") for _, k, _ in parser.attrs)
    assert not re.search(r"(src|href)=['\"](?!data:image/png;base64,)", page)
    # the numbers beside it, the hostile name as words
    assert f"{HOSTILE} (an adult (parent, carer or family member))" in parser.cells
    assert "<script>x</script>" not in page and "&amp;amp;" in page


def test_other_exports_have_no_chart(world):
    assert "data:image/png" not in export(world.access.store, all_=True, fmt="html")
    md = export(world.access.store, case=world.ref, fmt="md")
    assert "data:image" not in md and "<img" not in md
