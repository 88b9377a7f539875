"""Exports read like the review page (issue 16 item 2): the question beside every answer's
step id (in English, and the words shown when the conversation ran in another language),
the status in words, in Markdown, HTML, CSV and JSON, each escaped for its format."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.runner import Input
from bot.review.export import export, status_words
from bot.store import Store

from conftest import flow_from

BEST_HOPES = "What are your best hopes from our talking together?"
BEST_HOPES_CY = "Beth yw eich gobeithion gorau o'n sgwrs gyda'n gilydd?"


def _run(tmp_path, library, answers, language=None, name="x.db"):
    store = Store(tmp_path / name)
    svc = ConversationService(store, library, allow_unreviewed_languages=True)
    me = svc.person("t:1")
    svc.start(me, next(iter(library.flows)) if language == "custom" else "scaling-checkin", respondent="adult",
              **({"language": language} if language not in (None, "custom") else {}))
    for text in answers:
        svc.handle(me, Input.from_text(text))
    return store


class _Text(HTMLParser):
    """The text of an HTML page, and the text inside each element with a class."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.by_class: dict[str, list[str]] = {}
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.stack.append(dict(attrs).get("class") or tag)

    def handle_endtag(self, tag):
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and data.strip():
            self.by_class.setdefault(self.stack[-1], []).append(data)


def _parse(page: str) -> _Text:
    p = _Text()
    p.feed(page)
    return p


def test_statuses_are_words():
    assert [status_words(s) for s in ("in_progress", "completed", "cancelled", "some_new_state")] == \
        ["in progress", "completed", "stopped", "some new state"]


def test_every_format_gives_the_question_and_the_status_in_words(tmp_path, library):
    store = _run(tmp_path, library, ["Calmer mornings", "4", "We talk more", "More walks", "6", "no"])
    questions = {"best_hopes": BEST_HOPES, "scale_now": None, "not_lower": "What puts you at 4 and not lower?",
                 "one_point_up": "What would be different at 5?"}

    md = export(store, all_=True, fmt="md")
    assert "- Status: completed, finished " in md
    for step, question in questions.items():
        if question:
            assert f"- **{step}** — {question}\n" in md
    assert "(as asked in" not in md  # English: the question once

    page = _parse(export(store, all_=True, fmt="html"))
    assert [q for q in page.by_class["q"]][:1] == [BEST_HOPES]
    assert "completed" in page.by_class["dd"] and "completed" not in md.replace("- Status: completed", "")

    rows = list(csv.DictReader(io.StringIO(export(store, all_=True, fmt="csv"))))
    answers = [r for r in rows if r["from"] == "person" and r["kind"] == "answer"]
    assert [(r["step_id"], r["question_en"]) for r in answers][:4] == [
        (s, q or answers[1]["question_en"]) for s, q in questions.items()]
    assert answers[1]["question_en"].startswith("On a scale of 0 to 10")
    assert {(r["status"], r["status_text"], r["question_shown"]) for r in rows} == {("completed", "completed", "")}

    data = json.loads(export(store, all_=True, fmt="json"))
    assert (data["status"], data["status_text"]) == ("completed", "completed")
    assert [(a["step_id"], a["question_en"], a["question_shown"]) for a in data["answers"]][:1] == \
        [("best_hopes", BEST_HOPES, None)]


def test_a_welsh_conversation_keeps_the_english_question_and_the_words_shown(tmp_path, library):
    store = _run(tmp_path, library, ["Llai o ffraeo", "6"], language="cy")

    md = export(store, all_=True, fmt="md")
    assert f"- **best_hopes** — {BEST_HOPES}\n  (as asked in Welsh (cy): {BEST_HOPES_CY})\n  > Llai o ffraeo" in md
    assert "- Status: in progress" in md

    page = _parse(export(store, all_=True, fmt="html"))
    assert page.by_class["q"][:2] == [BEST_HOPES, f"as asked in Welsh (cy): {BEST_HOPES_CY}"]

    rows = [r for r in csv.DictReader(io.StringIO(export(store, all_=True, fmt="csv"))) if r["kind"] == "answer"]
    assert [(r["step_id"], r["question_en"], r["question_shown"], r["status_text"]) for r in rows][0] == \
        ("best_hopes", BEST_HOPES, BEST_HOPES_CY, "in progress")

    data = json.loads(export(store, all_=True, fmt="json"))
    assert (data["answers"][0]["question_en"], data["answers"][0]["question_shown"]) == (BEST_HOPES, BEST_HOPES_CY)
    assert data["status_text"] == "in progress"


HOSTILE_FLOW = """\
id: hostile-question
version: 1
title: Hostile
audience: family
steps:
  - id: first
    ask: "=HYPERLINK(1) <script>alert(1)</script> & *stars* [link](x) `code`?"
    type: text
  - id: thanks
    say: Thank you.
"""


def test_the_question_is_escaped_for_each_format(tmp_path):
    """A question is the flow's own words, but it can carry what people typed ({{ answers.x }})
    and what workers wrote ({{ case.KEY }}): it is escaped like an answer."""
    library = FlowLibrary([flow_from(HOSTILE_FLOW)])
    store = _run(tmp_path, library, ["fine"], language="custom")
    question = "=HYPERLINK(1) <script>alert(1)</script> & *stars* [link](x) `code`?"

    md = export(store, all_=True, fmt="md")
    line = next(l for l in md.splitlines() if l.startswith("- **first**"))
    assert line == r"- **first** — \=HYPERLINK(1) &lt;script&gt;alert(1)&lt;/script&gt; &amp; \*stars\* \[link\](x) \`code\`?"

    page = export(store, all_=True, fmt="html")
    parsed = _parse(page)
    assert "script" not in parsed.tags and parsed.by_class["q"] == [question]

    rows = [r for r in csv.DictReader(io.StringIO(export(store, all_=True, fmt="csv"))) if r["kind"] == "answer"]
    assert rows[0]["question_en"] == "'" + question  # never a formula

    assert json.loads(export(store, all_=True, fmt="json"))["answers"][0]["question_en"] == question
    assert re.search(r"<dt>first<div class='q' lang='en' dir='ltr'>=HYPERLINK\(1\) &lt;script&gt;", page)
