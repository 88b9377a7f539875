"""Hostile answers cannot forge or inject anything into a transcript (issue 11, findings 3
and 4): Markdown (CLI export and Telegram /transcript), HTML, CSV and JSON, and every
Telegram staff command that shows what people typed."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from html.parser import HTMLParser

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.runner import Input
from bot.review.export import export
from bot.store import Store
from bot.testing.telegram import running_bot

# Each answer goes to a step of scaling-checkin; together they carry newlines, Markdown,
# HTML, formula prefixes, bidi overrides and zero-width characters.
FORGED_MD = ("We want calm\n- **scale_now**: 10\n\n## Comments\n\n- Supervisor (2026-01-01 00:00:00 UTC): all fine\n"
             "# Case closed\n> quoted\n1. listed\n---\n```\ncode\n```")
HTML_AND_LINKS = ("<script>alert(1)</script><img src=x onerror=alert(1)> ![pixel](http://evil.example/p.png) "
                  "[click](javascript:alert(1)) <http://evil.example> &lt;b&gt; C:\\path\\[x]_*y*_`z`|~")
FORMULA = '=HYPERLINK("http://evil.example","click")'
INVISIBLE = "plus+1 \u202eevil\u202c \u2066iso\u2069 zero\u200bwidth\ufeff\u2060 \u200ffine"
ANSWERS = [  # (step, text) in the order scaling-checkin asks them
    ("best_hopes", FORGED_MD),
    ("scale_now", "6"),
    ("not_lower", FORMULA),
    ("one_point_up", HTML_AND_LINKS),
    ("good_enough", "7"),
    ("anything_else", "@SUM(1+1)*cmd|' /C calc'!A0"),
]
MORE_FORMULAS = ["+1+1", "-2+3", "@A1", "\t=1+1", "\r=1+1", " =1+1", INVISIBLE]
COMMENT = "Looks fine\n## Answers\n- **scale_now**: 0\n<img src=x onerror=alert(2)>\n=1+1"
STRUCTURE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "small", "dl", "dt", "dd", "h2", "div"}
MD_SPECIAL = re.compile(r"(?<!\\)[\[\]*_`|~]")


def visible(text: str) -> str:
    """What a reader must see: invisible characters named, joiners (emoji, scripts) kept."""
    import unicodedata

    return "".join(f"[U+{ord(c):04X}]" if c not in "\n\t\u200c\u200d"
                   and unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp") else c for c in text)


def md_unescape(line: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", line))


def quoted_blocks(md: str) -> list[str]:
    """The texts of the block quotes in a Markdown export, unescaped, one per block."""
    blocks, current = [], None
    for line in md.splitlines():
        m = re.match(r"^ *> ?(.*)$", line)
        if m:
            current = [] if current is None else current
            current.append(m.group(1))
        elif current is not None:
            blocks.append("\n".join(md_unescape(x) for x in current))
            current = None
    if current is not None:
        blocks.append("\n".join(md_unescape(x) for x in current))
    return blocks


def check_markdown(md: str, step_ids: list[str], headings: list[str]) -> None:
    """Only the exporter makes structure: every line people typed is inside a quote."""
    lines = md.splitlines()
    answer_lines = [l for l in lines if l.startswith("- **")]
    # each answer under its step id and, beside it, the question (the flow's own words, escaped)
    assert [re.sub(r" — .*", "", l) for l in answer_lines] == [f"- **{s}**" for s in step_ids], answer_lines
    questions = [l.split("** — ", 1)[1] if "** — " in l else "" for l in answer_lines]
    assert all(len(q) > 10 and not MD_SPECIAL.search(q) for q in questions), answer_lines
    assert [l for l in lines if l.startswith("#")] == headings
    assert "<" not in md  # no HTML tag of any kind, and no autolink
    for ch in ("\u202e", "\u202c", "\u2066", "\u2069", "\u200b", "\ufeff", "\u2060", "\u200f"):
        assert ch not in md, repr(ch)
    for line in lines:
        if re.match(r"^ *>", line):
            body = re.sub(r"^ *(> ?)+", "", line)
            assert not MD_SPECIAL.search(body), line  # no emphasis, link, image or code
            assert not re.match(r"^\s*([#+=-]|\d+[.)])", body), line  # no heading or list inside a quote
    # and the words are all there, exactly as typed (invisible characters named)
    blocks = quoted_blocks(md)
    for _, text in ANSWERS:
        if not text.isdigit():
            assert visible(text.replace("\r", "\n")) in blocks or any(visible(text) == b for b in blocks), text


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.dirs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)
        self.dirs.update(value for name, value in attrs if name == "dir")

    def handle_data(self, data):
        self.text.append(data)


def check_html(page: str) -> None:
    parser = Tags()
    parser.feed(page)
    assert parser.tags <= STRUCTURE_TAGS, parser.tags - STRUCTURE_TAGS
    # dir (issue 19: right-to-left words) only ever with the exporter's own values
    assert parser.attrs <= {"lang", "charset", "class", "dir"}, parser.attrs
    assert parser.dirs <= {"ltr", "rtl", "auto"}, parser.dirs
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text  # shown as words
    for ch in ("\u202e", "\u200b", "\ufeff"):
        assert ch not in page


def check_csv(data: str, typed: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(data)))
    header, body = rows[0], rows[1:]
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
            assert not cell.lstrip().startswith(("=", "+", "-", "@")), row
    said = [r[header.index("text")] for r in body if r[header.index("from")] == "person"]
    for text in typed:
        if text.lstrip(" \t\r").startswith(("=", "+", "-", "@")):
            assert "'" + visible(text.replace("\r\n", "\n")) in said, (text, said)


def check_json(data: str, typed: list[str]) -> None:
    items = json.loads(data)
    items = items if isinstance(items, list) else [items]
    said = [t["text"] for d in items for t in d["transcript"] if t["from"] == "person"]
    for text in typed:
        assert text in said  # JSON is data: the words exactly, escaped by the JSON encoder


@pytest.fixture
def hostile(tmp_path, library):
    store = Store(tmp_path / "hostile.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"supervisor": [2], "practitioner": [3]}, teams={2: [3]}))
    access.seed()
    code, _ = access.invite("tg:3", "scaling-checkin", "FGC-1")
    view = access.open_invite("tg:9", code)
    access.accept_invite("tg:9", view.invite_id,
                         lambda pid, f, c: service.start(pid, f, case_id=c).conversation_id)
    me = store.person("tg:9")
    for _, text in ANSWERS:
        service.handle(me, Input.from_text(text))
    conv = store.conversations(person_id=me)[0]["id"]
    access.comment("tg:2", conv, COMMENT, "best_hopes")
    # a second conversation where every line starts a formula (each is refused, and recorded)
    other = service.start(me, "scaling-checkin").conversation_id
    for text in MORE_FORMULAS:
        service.handle(me, Input.from_text(text))
    yield store, conv, other
    store.close()


STEPS = [s for s, _ in ANSWERS]
SCALING_VERSION = FlowLibrary.load().get("scaling-checkin").version  # raised whenever its wording changes
HEADINGS = [f"# How are things going? (version {SCALING_VERSION})", "## Answers", "## Scores", "## Comments", "## Transcript"]


def test_markdown_export_quotes_and_escapes_every_answer(hostile):
    store, conv, _ = hostile
    md = export(store, session=conv, fmt="md")
    check_markdown(md, STEPS, HEADINGS)
    assert visible(COMMENT) in quoted_blocks(md)  # the comment too
    assert "- scale_now: 6" in md and "- good_enough: 7" in md  # the real scores, once each
    # the two genuine mentions (answer and score); the three forged ones (answer, transcript line, comment) escaped
    assert md.count("scale_now") == 2 and md.count("scale\\_now") == 3


def test_html_export_escapes_everything(hostile):
    store, conv, other = hostile
    check_html(export(store, all_=True, fmt="html"))


def test_csv_export_neutralises_formulas(hostile):
    store, conv, other = hostile
    check_csv(export(store, all_=True, fmt="csv"), [FORMULA, ANSWERS[-1][1], *MORE_FORMULAS])


def test_json_export_keeps_the_exact_words(hostile):
    store, conv, other = hostile
    check_json(export(store, all_=True, fmt="json"), [t for _, t in ANSWERS] + MORE_FORMULAS)


def test_visible_names_invisible_characters_and_keeps_joiners():
    from bot.review.export import visible

    assert visible("a\u202eb\u200bc\ufeff") == "a[U+202E]b[U+200B]c[U+FEFF]"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert visible(family) == family and visible("line\nnext\ttab") == "line\nnext\ttab"


def _covered(m, kind: str) -> list[str]:
    data = m.text.encode("utf-16-le")
    return [data[e["offset"] * 2:(e["offset"] + e["length"]) * 2].decode("utf-16-le")
            for e in m.entities if e["type"] == kind]


def check_telegram_html(msgs) -> None:
    """Telegram HTML where only the renderer makes structure: bold only on its own labels,
    code only on step ids, no link, and every answer whole inside a quote, exactly as typed."""
    assert msgs and all(m.params.get("parse_mode") == "HTML" for m in msgs)
    kinds = {e["type"] for m in msgs for e in m.entities}
    assert kinds <= {"bold", "italic", "code", "blockquote"}, kinds
    assert {t for m in msgs for t in _covered(m, "code")} <= set(STEPS)
    bold = {t for m in msgs for t in _covered(m, "bold")}
    assert bold <= {"How are things going?", "Answers", "Scores", "Comments", "Transcript", "bot", "person"}, bold
    quotes = [t for m in msgs for t in _covered(m, "blockquote")]
    for _, text in ANSWERS:
        assert visible(text) in quotes, text
    assert not any("\u202e" in m.text for m in msgs)


# -- the same through Telegram -------------------------------------------------------------
SUP, P1, FAM = 2, 3, 9
HOSTILE_NAME = "Eve</b><script>x</script>**Admin**\u202e"


async def test_telegram_staff_commands_show_hostile_text_safely(tmp_path, library):
    store = Store(tmp_path / "tg.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"supervisor": [SUP], "practitioner": [P1]}, teams={SUP: [P1]}))
    access.seed()
    async with running_bot(service, access=access) as h:
        msgs = await h.say(P1, "/invite scaling-checkin FGC-9 --for adult")
        code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
        msgs = await h.say(FAM, f"/start {code}", first_name=HOSTILE_NAME)
        data = next(cb for row in h.fake.buttons(msgs[-1]) for (t, cb) in row if t == "Yes, start")
        await h.delivered(h.fake.press_button(FAM, msgs[-1].message_id, data))
        for _, text in ANSWERS:
            await h.say(FAM, text)
        conv = store.conversations(person_id=store.person(f"tg:{FAM}"))[0]["id"]
        assert store.conversation(conv).status == "completed"

        # /transcript: Telegram HTML messages and the HTML file
        msgs = await h.say(P1, f"/transcript {conv}")
        check_telegram_html([m for m in msgs if m.text])
        check_html(h.fake.documents(P1)[-1].data.decode("utf-8"))

        # /case: names and scores, no raw markup or invisible characters
        msgs = await h.say(P1, "/case FGC-9")
        shown = "\n".join(m.text for m in msgs)
        assert "<script>" not in shown and "\u202e" not in shown and "**Admin**" not in shown

        # /comment: the practitioner's notice quotes the comment
        before = len(h.fake.messages(P1))
        await h.say(SUP, f"/comment {conv} {COMMENT}")
        notice = await h.fake.wait_for(lambda: [m for m in h.fake.messages(P1)[before:] if "comment" in (m.text or "")])
        lines = notice[0].text.splitlines()
        assert not any(l.startswith(("- **", "#", "<")) for l in lines), lines
        assert visible(COMMENT.replace("\n", " ")) in quoted_blocks(notice[0].text + "\n") or \
            visible(COMMENT) in quoted_blocks(notice[0].text + "\n")

        # /mydata file: the family's own data, as JSON, exactly as typed
        await h.say(FAM, "/mydata file")
        check_json(h.fake.documents(FAM)[-1].data.decode("utf-8"), [t for _, t in ANSWERS])
