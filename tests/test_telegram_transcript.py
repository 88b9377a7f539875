"""/transcript in Telegram reads like the review page (issue 16 item 2): Telegram HTML
messages (bold labels, the question beside each answer, people's words in quotes), every text
people typed escaped, each message whole and under Telegram's limit, and the HTML file."""

from __future__ import annotations

import re

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.review import transcript_telegram as tt
from bot.store import Store
from bot.testing.fake_bot_api import parse_entities
from bot.testing.telegram import running_bot

SUP, P1, FAM = 2, 3, 9
SCRIPT = "<script>alert(1)</script>"
AMP = "Tom & Jerry &amp; friends"
BOLD = "<b>not bold</b> <i>nor this</i> <a href='x'>link</a>"
LABELS = {"How are things going?", "Answers", "Scores", "Comments", "Transcript", "bot", "person",
          "safeguarding flag", "worth a look (safeguarding review)",
          "Worth a look (safeguarding review, not yet looked at)"}


def _world(tmp_path, library, answers):
    store = Store(tmp_path / "t.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"supervisor": [SUP], "practitioner": [P1]}, teams={SUP: [P1]}))
    access.seed()
    code, _ = access.invite(f"tg:{P1}", "scaling-checkin", "FGC-7", "adult")
    view = access.open_invite(f"tg:{FAM}", code)
    access.accept_invite(f"tg:{FAM}", view.invite_id,
                         lambda pid, f, c, respondent=None: service.start(pid, f, case_id=c,
                                                                          respondent=respondent).conversation_id)
    me = store.person(f"tg:{FAM}")
    for text in answers:
        service.handle(me, Input.from_text(text))
    conv = store.conversations(person_id=me)[0]["id"]
    return store, service, access, conv


async def _transcript(h, user, conv):
    before = len(h.fake.messages(user))
    uid = h.fake.inject_message(user, f"/transcript {conv}")
    await h.delivered(uid)
    await h.fake.wait_for(lambda: any(m.document is not None for m in h.fake.messages(user)[before:]))
    return h.fake.messages(user)[before:]


def _covered(m, kind: str) -> list[str]:
    """The texts an entity type covers in a message (offsets in UTF-16 units)."""
    data = m.text.encode("utf-16-le")
    return [data[e["offset"] * 2:(e["offset"] + e["length"]) * 2].decode("utf-16-le")
            for e in m.entities if e["type"] == kind]


async def test_markup_in_answers_arrives_as_text(tmp_path, library):
    store, service, access, conv = _world(tmp_path, library, [SCRIPT, "6", AMP, BOLD, "7", "no"])
    async with running_bot(service, access=access) as h:
        msgs = await _transcript(h, P1, conv)
    texts = [m for m in msgs if m.text is not None]
    assert texts and all(m.params.get("parse_mode") == "HTML" for m in texts)
    raw = "\n".join(m.params["text"] for m in texts)
    shown = "\n".join(m.text for m in texts)
    # sent escaped ...
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw and SCRIPT not in raw
    assert "Tom &amp; Jerry &amp;amp; friends" in raw
    assert "&lt;b&gt;not bold&lt;/b&gt;" in raw and "<a " not in raw
    # ... so Telegram shows the words exactly as typed, and none of them as formatting
    for typed in (SCRIPT, AMP, BOLD):
        assert typed in shown
    bold = {t for m in texts for t in _covered(m, "bold")}
    assert bold <= LABELS | {f"Case: FGC-7"}, bold - LABELS
    assert not any(m.entities and e["type"] in ("text_link", "italic") and "nor this" in t
                   for m in texts for e in m.entities for t in _covered(m, e["type"]))
    quotes = [t for m in texts for t in _covered(m, "blockquote")]
    assert SCRIPT in quotes and AMP in quotes and BOLD in quotes
    # the page's reading: the question beside the answer, the status in words
    assert "best_hopes — What are your best hopes from our talking together?\n" + SCRIPT in shown
    assert "Status: completed, finished " in shown
    # and the HTML file, as before
    doc = next(m.document for m in msgs if m.document is not None)
    assert doc.filename == f"transcript-{conv}.html"
    page = doc.data.decode("utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and SCRIPT not in page


async def test_a_long_transcript_splits_into_whole_messages(tmp_path, library):
    words = [f"w{i}&<b>" for i in range(500)]  # each word escapes to 14 characters
    long_answer = " ".join(words)  # about 5,000 characters escaped: more than one message
    store, service, access, conv = _world(tmp_path, library, [long_answer, "6", long_answer[:3000], "x" * 3000])
    async with running_bot(service, access=access) as h:
        msgs = await _transcript(h, P1, conv)
    texts = [m for m in msgs if m.text is not None]
    assert len(texts) >= 4
    for m in texts:
        assert tt.units(m.params["text"]) <= 4096  # as sent: under the limit before parsing, too
        text, entities = parse_entities(m.params["text"], "HTML")  # whole: every tag closed
        assert text.strip() == m.text
    quotes = [t for m in texts for t in _covered(m, "blockquote")]
    # the long answer is there in full, in order, cut only between words
    start = next(i for i, q in enumerate(quotes) if q.startswith("w0&<b>"))
    joined, i = quotes[start], start
    while joined != long_answer:
        i += 1
        assert long_answer.startswith(joined + " " + quotes[i]), (joined[-40:], quotes[i][:40])
        joined += " " + quotes[i]
    assert i > start  # it did need more than one message


def _data(answer: str, question: str = "What happened?") -> dict:
    return {"conversation_id": 1, "flow": {"title": "T <&>", "version": 1}, "person": {"name": "A&B", "key": "k"},
            "status": "completed", "status_text": "completed", "started_at": "2026-01-01T00:00:00Z",
            "finished_at": None, "language": "en", "case": None, "worth_a_look": [], "scores": {},
            "comments": [], "transcript": [],
            "answers": [{"step_id": "s", "question_en": question, "question_shown": None, "shown": answer,
                         "raw": answer}]}


def test_every_piece_is_whole_and_fits_at_any_limit():
    """Cut at many limits: every message parses as Telegram HTML (tags closed, no entity cut),
    fits, and together they hold every character of the answer."""
    answer = ("Tom & Jerry <b>x</b> " * 40 + "a" * 700 + " \u202eend\U0001F600 " + "é&" * 300).strip()
    for limit in (200, 333, 512, 1000, 4000):
        out = tt.messages(_data(answer), limit)
        quotes = []
        for piece in out:
            assert tt.units(piece) <= limit, (limit, piece)
            text, entities = parse_entities(piece, "HTML")
            data = text.encode("utf-16-le")
            quotes += [data[e["offset"] * 2:(e["offset"] + e["length"]) * 2].decode("utf-16-le")
                       for e in entities if e["type"] == "blockquote"]
        assert re.sub(r"\s", "", "".join(quotes)) == re.sub(r"\s", "", answer.replace("\u202e", "[U+202E]")), limit


def test_a_very_long_question_gets_blocks_of_its_own():
    out = tt.messages(_data("fine", "Q&" * 1500), 1000)
    italic = []
    for piece in out:
        assert tt.units(piece) <= 1000
        text, entities = parse_entities(piece, "HTML")
        italic += [text[e["offset"]:e["offset"] + e["length"]] for e in entities if e["type"] == "italic"]
    assert len(out) >= 4 and "".join(italic) == "Q&" * 1500  # cut between characters, never inside "&amp;"
    assert out[-1].endswith("<blockquote>fine</blockquote>\n\n<b>Transcript</b>")
