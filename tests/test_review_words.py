"""Review-tier words from someone with no conversation (a stranger, or anyone before their first
flow) are kept on the review item, encrypted like an alert's words, shown to the leads where
review items are shown (/review in Telegram, the website's review page), and erased and purged
by the same rules as alert words (review-sg finding 7). Before, only the matched phrase was
kept: the lead who was reminded could not read what had been said."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.access import Access
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store
from tests.test_reading import StandIn
from tests.test_telegram_reading import staffed_bot

import webworld as W
from webclient import sign_in, site_for

SUP, P1, P2, FAM, LEAD, STRANGER = 2, 3, 4, 5, 9, 77
WORDS = "mum has been <b>stressed</b> & REVIEWWORD on my leg"


@pytest.fixture
async def world(tmp_path, library):
    async with staffed_bot(tmp_path / "words.db", library, leads=[LEAD]) as h:
        yield h


def raw(store, sql, params=()):
    cur = store.db.conn.cursor()
    cur.row_factory = None  # the bytes as stored, not decrypted
    return cur.execute(sql, params).fetchall()


async def test_a_strangers_review_words_are_kept_encrypted_and_shown_to_the_lead(world):
    h = world
    msgs = await h.say(STRANGER, WORDS)
    assert all("REVIEWWORD" not in (m.text or "") for m in msgs)  # quiet: nothing said about it
    [item] = h.store.review_items()
    assert (item["conversation_id"], item["transcript_id"], item["matched"], item["words"]) == \
        (None, None, "REVIEWWORD", WORDS)
    [(stored,)] = raw(h.store, "SELECT words FROM review_items WHERE id = ?", (item["id"],))
    assert isinstance(stored, bytes) and b"stressed" not in stored  # encrypted at rest, as alert words are
    msgs = await h.say(LEAD, "/review")
    text = "\n".join(m.text or "" for m in msgs)
    assert f"R{item['id']} — outside a conversation" in text and f"They wrote: “{WORDS}”" in text
    msgs = await h.say(P1, "/review")  # a practitioner: not their case, not their words
    assert "stressed" not in "\n".join(m.text or "" for m in msgs)


async def test_words_already_in_a_transcript_are_not_copied_onto_the_item(world):
    h = world
    await h.say(P1, "/invite scaling-checkin FGC-9 --for adult")  # P1 is known; their conversation holds words
    service = h.service
    pid = await h.frontend.db(service.person, f"tg:{FAM}")
    reply = await h.frontend.db(service.start, pid, "scaling-checkin", input_key="t:1")
    await h.frontend.db(service.cancel_active, pid, "t:2")
    await h.frontend.db(service.handle, pid, Input.from_text(WORDS), input_key="t:3")
    [item] = h.store.review_items()
    assert item["conversation_id"] == reply.conversation_id and item["transcript_id"] is not None
    assert item["words"] is None
    assert [t["text"] for t in h.store.transcript(reply.conversation_id) if t["id"] == item["transcript_id"]] == [WORDS]


def test_erasure_and_retention_cover_the_words(tmp_path, library):
    from bot import retention

    store = Store(tmp_path / "erase.db")
    service = ConversationService(store, library, safeguarding=StandIn())
    pid = service.person(f"tg:{STRANGER}")
    service.handle(pid, Input.from_text(WORDS), input_key="k:1")
    service.handle(pid, Input.from_text("again REVIEWWORD"), input_key="k:2")
    first, second = (i["id"] for i in store.review_items())
    with store.transaction():  # the safeguarding lead keeps the words: they stay
        counts = store.erase_person(pid, safeguarding=False)
    assert "review_items.words" not in counts and store.review_item(first)["words"] == WORDS
    with store.transaction():  # the lead agrees to erase them
        counts = store.erase_person(pid, safeguarding=True)
    assert counts["review_items.words"] == 2
    assert [store.review_item(i)["words"] for i in (first, second)] == [None, None]
    # retention: an acknowledged item past the alerts' retention goes, words and all
    service.handle(pid, Input.from_text("third REVIEWWORD"), input_key="k:3")
    third = store.review_items()[-1]["id"]
    with store.transaction():
        store.acknowledge_review_item(third, f"tg:{LEAD}")
    rules = retention.Retention.of({"alerts": 1.0, "audit": None})  # review items go with the alerts' rule
    retention.purge(store, rules, at=datetime.now(timezone.utc) + timedelta(hours=12))
    assert store.review_item(third) is not None  # not yet due
    retention.purge(store, rules, at=datetime.now(timezone.utc) + timedelta(days=2))
    assert store.review_item(third) is None
    assert raw(store, "SELECT COUNT(*) FROM review_items WHERE id = ?", (third,)) == [(0,)]


@pytest.fixture
async def site(tmp_path, library):
    path = tmp_path / "site.db"
    store = Store(path)
    service = ConversationService(store, library, safeguarding=StandIn())
    Access(store, library, W.config()).seed()
    pid = service.person(f"tg:{STRANGER}")
    service.handle(pid, Input.from_text(WORDS), input_key="k:1")
    site = site_for(str(path), library, W.config())
    yield site, store
    site.close()
    site.store.close()
    store.close()


async def test_the_review_page_shows_the_words_to_a_lead_escaped(site):
    site, store = site
    lead = await sign_in(site, f"tg:{W.LEAD}")
    page = (await lead.get("/review")).text
    assert "mum has been &lt;b&gt;stressed&lt;/b&gt; &amp; REVIEWWORD on my leg" in page
    assert "<b>stressed</b>" not in page
    practitioner = await sign_in(site, f"tg:{W.P1}")
    assert "stressed" not in (await practitioner.get("/review")).text


async def test_the_transcript_page_labels_an_edit_and_a_line_after_the_end(tmp_path, library):
    """The website shows the two kinds of line that are not answers (review-sg findings 1 and 8)
    with their labels, the words escaped."""
    from bot.messages import msg

    path = tmp_path / "lines.db"
    store = Store(path)
    service = W.service_for(store, library)
    access = Access(store, library, W.config())
    access.seed()
    conv = W.invited(service, access, W.P1, W.FAM_A, "FGC-7", ["calm <mornings>"])
    pid = store.person(f"tg:{W.FAM_A}")
    service.edited(pid, "calm <mornings> & evenings", input_key="e:1", original_key=None)
    service.cancel_active(pid, "e:2")
    service.handle(pid, Input.from_text("one more thing <b>"), input_key="e:3")
    site = site_for(str(path), library, W.config())
    try:
        page = (await (await sign_in(site, f"tg:{W.P1}")).get(f"/conversations/{conv}")).text
    finally:
        site.close()
        site.store.close()
        store.close()
    assert f"<em>{msg('transcripts.kind_edit')}</em>" in page and "calm &lt;mornings&gt; &amp; evenings" in page
    assert f"<em>{msg('transcripts.kind_after_end')}</em>" in page and "one more thing &lt;b&gt;" in page
