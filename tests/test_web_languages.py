"""The website's transcript of a conversation held in another language shows the English
question beside the words the person was shown (issue 16; issue 19's languages)."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

from bot.access import Access
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store

import webworld as W
from webclient import sign_in, site_for

BEST_HOPES = "What are your best hopes from our talking together?"
BEST_HOPES_CY = "Beth yw eich gobeithion gorau o'n sgwrs gyda'n gilydd?"


def _conversation(service, access, family: int, language: str | None, answers: list[str]) -> int:
    code, invite_id = access.invite(f"tg:{W.P1}", "scaling-checkin", "CY-1", "adult", language)
    access.open_invite(f"tg:{family}", code)

    def start(person_id, flow_id, case_id, respondent=None):
        return service.start(person_id, flow_id, case_id=case_id, respondent=respondent,
                             **({"language": language} if language else {})).conversation_id

    conv = access.accept_invite(f"tg:{family}", invite_id, start)
    pid = service.person(f"tg:{family}")
    for text in answers:
        service.handle(pid, Input.from_text(text), conversation_id=conv)
    return conv


class _Lines(HTMLParser):
    """Per transcript line (li.line): the text of each of its paragraphs, by class."""

    def __init__(self):
        super().__init__()
        self.lines: list[dict] = []
        self.cls: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "li" and "line" in (a.get("class") or "").split():
            self.lines.append({})
        self.cls.append(a.get("class") if tag == "p" else None)

    def handle_endtag(self, tag):
        self.cls.pop()

    def handle_data(self, data):
        if self.lines and self.cls and self.cls[-1] and data.strip():
            self.lines[-1].setdefault(self.cls[-1], []).append(" ".join(data.split()))


@pytest.fixture
async def site(tmp_path, library):
    path = tmp_path / "cy.db"
    store = Store(path)
    config = dataclasses.replace(W.config(), allow_unreviewed_languages=True)
    access = Access(store, library, config)
    access.seed()
    service = ConversationService(store, library, allow_unreviewed_languages=True)
    convs = {"cy": _conversation(service, access, W.FAM_A, "cy", ["Llai o ffraeo", "6"]),
             "en": _conversation(service, access, W.FAM_B, None, ["Less arguing", "6"])}
    store.close()
    s = site_for(path, library, config)
    yield s, convs
    s.close()
    s.store.close()


async def test_a_welsh_answer_shows_the_english_question_beside_the_welsh_one(site):
    s, convs = site
    c = await sign_in(s, f"tg:{W.P1}")
    page = await c.get(f"/conversations/{convs['cy']}")
    assert page.status_code == 200
    parser = _Lines()
    parser.feed(page.text)
    answer = next(line for line in parser.lines if line.get("text") == ["Llai o ffraeo"])
    assert answer["answer-to"] == [f"Answer to: {BEST_HOPES_CY}"]
    assert answer["answer-to answer-to-en"] == [f"In English: {BEST_HOPES}"]
    assert re.search(r'<p class="answer-to answer-to-en" lang="en" dir="ltr">In English: ', page.text)
    scale = next(line for line in parser.lines if line.get("text") == ["6"])
    assert scale["answer-to answer-to-en"][0].startswith("In English: On a scale of 0 to 10")


async def test_an_english_answer_shows_its_question_once(site):
    s, convs = site
    c = await sign_in(s, f"tg:{W.P1}")
    page = await c.get(f"/conversations/{convs['en']}")
    parser = _Lines()
    parser.feed(page.text)
    answer = next(line for line in parser.lines if line.get("text") == ["Less arguing"])
    assert answer == {"meta": answer["meta"], "answer-to": [f"Answer to: {BEST_HOPES}"], "text": ["Less arguing"]}
    assert "In English:" not in page.text
