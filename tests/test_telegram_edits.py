"""Words that arrive other than as a typed message are never lost (review-sg finding 1): the
words sent with a picture (its caption) are read as typed text, and a message edited after it
was sent is kept beside the answer it changes, counted unread and screened like any answer,
without moving the conversation on or asking anything again. Through the real Application
against the fake Bot API server."""

from datetime import datetime, timezone

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.messages import msg
from bot.reading import Reading
from bot.review.export import line_note, render, transcript_data
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot
from tests.test_reading import StandIn
from tests.test_telegram_reading import start_case

SUP, P1, P2, FAM, LEAD, STRANGER = 2, 3, 4, 5, 9, 77


@pytest.fixture(scope="module")
def real_detector():
    return SafeguardingConfig.load()


def _world(tmp_path, library, detector):
    store = Store(tmp_path / "edits.db")
    service = ConversationService(store, library, safeguarding=detector)
    config = Config(leads=[LEAD], roles={"supervisor": [SUP], "practitioner": [P1, P2]}, teams={SUP: [P1]})
    access = Access(store, library, config)
    access.seed()
    reading = Reading(store, access, leads=config.leads, clock=lambda: datetime.now(timezone.utc))
    escalation = Escalation(store, detector, leads=[LEAD], repeat_minutes=15)
    return service, access, reading, escalation


@pytest.fixture
async def world(tmp_path, library):
    service, access, reading, _ = _world(tmp_path, library, StandIn())  # no escalation: the stand-in writes no notices
    async with running_bot(service, access=access, reading=reading) as h:
        h.reading, h.store = reading, service.store
        yield h


@pytest.fixture
async def real_world(tmp_path, library, real_detector):
    service, access, reading, escalation = _world(tmp_path, library, real_detector)
    async with running_bot(service, access=access, reading=reading, escalation=escalation) as h:
        h.reading, h.store = reading, service.store
        yield h




def last_typed(h, user, text):
    """The message id of the user's own message with this text."""
    return max(m.message_id for m in h.fake._chat_log[user] if not m.from_bot and m.text == text)  # noqa: SLF001


async def edit(h, user, message_id, text):
    """The user edits their message; once the bot has handled the edit, its new messages."""
    before = len(h.fake.messages(user))
    uid = h.fake.inject_edited_message(user, message_id, text)
    assert await h.frontend.wait_finished(lambda: uid in h.frontend.finished, 30)
    return h.fake.messages(user)[before:]


async def photo(h, user, caption, album=None):
    before = len(h.fake.messages(user))
    uid = h.fake.inject_photo(user, caption=caption, media_group_id=album)
    await h.delivered(uid)
    return h.fake.messages(user)[before:]


async def album_photo(h, user, album):
    """A further picture of an album, without words: once the bot has handled it, its new messages."""
    before = len(h.fake.messages(user))
    uid = h.fake.inject_photo(user, media_group_id=album)
    assert await h.frontend.wait_finished(lambda: uid in h.frontend.finished, 30)
    return h.fake.messages(user)[before:]


def lines_in(h, conv):
    return [(t["kind"], t["step_id"], t["text"], t["tier"]) for t in h.store.transcript(conv) if t["direction"] == "in"]


# -- captions ---------------------------------------------------------------------------------

async def test_a_caption_answers_the_question_like_typed_text(world):
    h = world
    conv = await start_case(h)
    msgs = await photo(h, FAM, "calmer mornings")
    assert msgs[0].text == msg("telegram.caption_read")  # told kindly that the picture is not kept
    assert "where are things now" in msgs[-1].text.lower()  # the next question: it was an answer
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)} == {"best_hopes": "calmer mornings"}
    assert lines_in(h, conv)[-1] == ("answer", "best_hopes", "calmer mornings", None)
    assert [r["transcript_id"] for r in h.reading.unread()] == \
        [t["id"] for t in h.store.transcript(conv) if t["text"] == "calmer mornings"]


async def test_the_transcript_says_the_words_came_with_a_picture_that_was_not_kept(world):
    h = world
    conv = await start_case(h)
    await photo(h, FAM, "calmer mornings")
    await h.say(FAM, "7")
    lines = {t["text"]: t.get("media") for t in h.store.transcript(conv) if t["direction"] == "in"}
    assert (lines["calmer mornings"], lines["7"]) == ("photo", None)
    data = transcript_data(h.store, conv)
    noted = {t["text"]: line_note(t) for t in data["transcript"] if t["from"] == "person"}
    assert (noted["calmer mornings"], noted["7"]) == (msg("transcripts.with_media"), "")
    for fmt in ("md", "html", "csv"):  # every export says so beside the words
        out = render([data], fmt)
        assert out.count(msg("transcripts.with_media") if fmt != "csv" else ",photo") == 1, fmt


async def test_an_album_is_answered_once_not_once_per_picture(world):
    h = world
    conv = await start_case(h)
    first = await photo(h, FAM, "calmer mornings", album="a1")
    assert first[0].text == msg("telegram.caption_read")
    assert await album_photo(h, FAM, "a1") == []  # the album's other pictures: nothing more said
    assert await album_photo(h, FAM, "a1") == []
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)} == {"best_hopes": "calmer mornings"}
    # a picture on its own, outside that album, is still told that only words are read
    alone = await album_photo(h, FAM, None)
    assert [m.text for m in alone] == [msg("telegram.not_text")]
    # an album whose first picture came without words: told once, not once per picture
    assert [m.text for m in await album_photo(h, FAM, "a2")] == [msg("telegram.not_text")]
    assert await album_photo(h, FAM, "a2") == []


async def test_a_disclosure_in_a_caption_alerts_with_help_for_a_young_person(real_world):
    h = real_world
    conv = await start_case(h, who="young_person")
    words = "my dad hit me with a belt, look at my arm"
    msgs = await photo(h, FAM, words)
    said = "\n".join(m.text or "" for m in msgs)
    assert "0800 1111" in said  # Childline, for a young person
    [alert] = h.store.alerts()
    assert (alert["conversation_id"], alert["words"]) == (conv, words)
    assert lines_in(h, conv)[-1][:3] == ("answer", "best_hopes", words)
    await h.fake.wait_for(lambda: h.fake.messages(LEAD))  # the lead is told


# -- edits ------------------------------------------------------------------------------------

async def test_an_edit_is_kept_beside_the_answer_and_moves_nothing(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    question = h.fake.messages(FAM)[-1].text
    before = h.store.conversation(conv)
    msgs = await edit(h, FAM, last_typed(h, FAM, "calmer mornings"), "calmer mornings & <fewer> rows")
    assert [m.text for m in msgs] == [msg("answers.edit_kept")]  # no question asked again
    after = h.store.conversation(conv)
    assert (after.state, after.status, after.session) == (before.state, before.status, before.session)
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)} == {"best_hopes": "calmer mornings"}
    assert lines_in(h, conv)[-2:] == [("answer", "best_hopes", "calmer mornings", None),
                                      ("edit", "best_hopes", "calmer mornings & <fewer> rows", None)]
    edit_line = [t["id"] for t in h.store.transcript(conv) if t["kind"] == "edit"]
    assert [r["transcript_id"] for r in h.reading.unread()][-1:] == edit_line  # unread for the worker
    # the question now waiting still takes the next answer
    msgs = await h.say(FAM, "7")
    assert msgs[-1].text != question and {a["step_id"] for a in h.store.answers(conv)} == {"best_hopes", "scale_now"}


async def test_an_edit_into_a_disclosure_alerts_without_asking_again(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    state = h.store.conversation(conv).state
    msgs = await edit(h, FAM, last_typed(h, FAM, "calmer mornings"), "calmer mornings. ALERTWORD")
    # the help and the choice after any disclosure; no question sent again
    assert [m.text for m in msgs] == ["HELP: call 999\n\nWould you like to carry on?"]
    [alert] = h.store.alerts()
    assert (alert["conversation_id"], alert["words"]) == (conv, "calmer mornings. ALERTWORD")
    assert lines_in(h, conv)[-1] == ("edit", "best_hopes", "calmer mornings. ALERTWORD", "alert")
    assert h.store.conversation(conv).state == state
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)} == {"best_hopes": "calmer mornings"}


async def test_an_edit_into_review_words_is_queued_quietly(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    msgs = await edit(h, FAM, last_typed(h, FAM, "calmer mornings"), "calmer mornings, REVIEWWORD")
    assert [m.text for m in msgs] == [msg("answers.edit_kept")]  # the same words as any edit: quiet
    [item] = h.store.review_items()
    line = h.store.transcript(conv)[-2]  # the edit, then the bot's few words
    assert (item["conversation_id"], item["transcript_id"], item["matched"]) == (conv, line["id"], "REVIEWWORD")
    assert (line["kind"], line["tier"]) == ("edit", "review")
    assert h.store.alerts() == []


async def test_a_message_edited_into_a_command_does_nothing(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    msgs = await edit(h, FAM, last_typed(h, FAM, "calmer mornings"), "/cancel")
    assert msgs == []
    assert h.store.conversation(conv).status == "in_progress"
    assert [k for k, *_ in lines_in(h, conv)].count("edit") == 0


async def test_an_edit_without_consent_follows_the_answers_rules(world):
    h = world
    conv = await start_case(h, flow="fgc-pre-conference")
    await h.say(FAM, "I am her mum")
    mid = last_typed(h, FAM, "I am her mum")
    await edit(h, FAM, mid, "I am her mum and carer")
    assert h.reading.unread() == []  # nobody may read the answers before consent: not counted
    await edit(h, FAM, mid, "I am her mum. ALERTWORD")
    flagged = [t["id"] for t in h.store.transcript(conv) if t["kind"] == "edit" and t["tier"] == "alert"]
    assert [r["transcript_id"] for r in h.reading.unread()] == flagged  # flagged: counted whatever the consent


async def test_a_strangers_edit_keeps_only_a_disclosure(world):
    h = world
    await h.say(STRANGER, "hello")
    mid = last_typed(h, STRANGER, "hello")
    assert await edit(h, STRANGER, mid, "hello there") == []
    assert h.store.conversations(person_id=h.store.person(f"tg:{STRANGER}")) == []
    msgs = await edit(h, STRANGER, mid, "hello ALERTWORD")
    assert [m.text for m in msgs] == ["HELP: call 999\n\nHELP: call 999"]  # not knowing who: for a child and an adult
    [alert] = h.store.alerts()
    assert (alert["conversation_id"], alert["words"]) == (None, "hello ALERTWORD")


async def test_the_edit_line_reads_as_an_edit_everywhere_and_escaped(world):
    from bot.review.export import export, transcript_data
    from bot.review.transcript_telegram import blocks, pack

    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    await edit(h, FAM, last_typed(h, FAM, "calmer mornings"), "calmer <b>mornings</b> & *more*")
    label = msg("transcripts.kind_edit")
    html = export(h.store, session=conv, fmt="html")
    assert f"person · {label}" in html and "calmer &lt;b&gt;mornings&lt;/b&gt; &amp; *more*" in html
    md = export(h.store, session=conv, fmt="md")
    assert "**person** · " in md and f" · *{label}*\n> calmer &lt;b&gt;mornings&lt;/b&gt; &amp; \\*more\\*" in md
    csv = export(h.store, session=conv, fmt="csv")
    assert ",edit,best_hopes,calmer <b>mornings</b> & *more*," in csv
    sent = "\n".join(pack(blocks(transcript_data(h.store, conv))))
    assert f"<i>{label}</i>" in sent and "calmer &lt;b&gt;mornings&lt;/b&gt; &amp; *more*" in sent
    # the worker reading it in Telegram
    msgs = await h.say(P1, f"/transcript {conv}")
    text = "\n".join(m.text or "" for m in msgs)
    assert label in text and "calmer <b>mornings</b> & *more*" in text


async def test_an_edit_on_the_workers_device_is_the_childs_at_the_worries_question(real_world):
    """A worker-present session (/with): the child edits their worries answer into a disclosure.
    The words are the child's (the alert names the session, the help is a child's), and at a
    worries question the child is thanked and told who will see it, not interrupted."""
    h = real_world
    await h.say(P1, "/with CASE-1 three-houses")
    for answer in ("OK", "House of Worries", "House of Dreams", "school"):
        await h.say(P1, answer)
    session = h.store.active_conversation(h.store.person(f"tg:{P1}"))
    assert session.present_id == h.store.person(f"tg:{P1}") and session.state == "worries_check"
    words = "school. my dad hits me and I am scared to go home"
    msgs = await edit(h, P1, last_typed(h, P1, "school"), words)
    said = "\n".join(m.text or "" for m in msgs)
    assert said.startswith(msg("concerns.expected_thanks")) and "999" in said
    assert "carry on" not in said.lower()  # thanked, not interrupted (the typed answer's rule at this question)
    [alert] = h.store.alerts()
    assert (alert["conversation_id"], alert["person_id"], alert["words"]) == (session.id, session.person_id, words)
    after = h.store.conversation(session.id)
    assert (after.state, after.status) == ("worries_check", "in_progress")  # nothing moved on
    assert lines_in(h, session.id)[-1] == ("edit", "house_worries", words, "alert")


# -- pictures without words, edited captions, edits after a restart ---------------------------

async def test_a_picture_without_words_is_noted_in_the_transcript_and_answers_nothing(world):
    h = world
    conv = await start_case(h)
    question = h.fake.messages(FAM)[-1].text
    msgs = await album_photo(h, FAM, None)  # a picture on its own, no words
    assert [m.text for m in msgs] == [msg("telegram.not_text")]
    assert h.store.answers(conv) == [] and h.store.conversation(conv).state == "best_hopes"  # still waits for words
    [line] = [t for t in h.store.transcript(conv) if t["direction"] == "in" and t["kind"] == "media"]
    assert (line["step_id"], line["text"], line["media"]) == ("best_hopes", "", "photo")
    noted = [line_note(t) for t in transcript_data(h.store, conv)["transcript"] if t["kind"] == "media"]
    assert noted == [msg("transcripts.with_media")]  # the reviewer sees that something was shown
    assert h.reading.unread() == []  # no words to read
    await album_photo(h, FAM, "a3")
    await album_photo(h, FAM, "a3")  # an album: noted once
    assert [t["kind"] for t in h.store.transcript(conv) if t["direction"] == "in"].count("media") == 2
    msgs = await h.say(FAM, "calmer mornings")  # the words that follow answer the question
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)} == {"best_hopes": "calmer mornings"}
    assert "where are things now" in msgs[-1].text.lower() and question != msgs[-1].text
    # someone with no conversation: nothing kept, as for their words
    await album_photo(h, STRANGER, None)
    assert h.store.conversations(person_id=h.store.person(f"tg:{STRANGER}")) == []


async def test_an_edited_caption_keeps_the_picture_marker(world):
    h = world
    conv = await start_case(h)
    await photo(h, FAM, "calmer mornings")
    mid = max(m.message_id for m in h.fake._chat_log[FAM] if not m.from_bot and m.caption == "calmer mornings")  # noqa: SLF001
    msgs = await edit(h, FAM, mid, "calmer mornings and evenings")
    assert [m.text for m in msgs] == [msg("answers.edit_kept")]
    [line] = [t for t in h.store.transcript(conv) if t["kind"] == "edit"]
    assert (line["step_id"], line["text"], line["media"]) == ("best_hopes", "calmer mornings and evenings", "photo")
    [noted] = [line_note(t) for t in transcript_data(h.store, conv)["transcript"] if t["kind"] == "edit"]
    assert noted == f"{msg('transcripts.kind_edit')}; {msg('transcripts.with_media')}"


async def test_a_caption_waiting_for_is_this_your_answer_keeps_the_picture_marker(world):
    """The pending path: words sent with a picture as a reply to an earlier question are asked
    about ("is that your answer to it?") before they are applied; the line keeps its marker
    whichever the person says."""
    from bot.messages import msg as m

    h = world
    conv = await start_case(h, flow="three-columns")
    q1 = h.fake.messages(FAM)[-1]
    await h.say(FAM, "Missed school")
    confirm = (await photo_reply(h, FAM, "and being late", q1.message_id))[-1]
    assert confirm.text.startswith("You sent “and being late”")
    await h.press(FAM, confirm, m("answers.stale_yes"))
    assert {a["step_id"]: a["value"] for a in h.store.answers(conv)}["working_well"] == "and being late"
    lines = [(t["text"], t["media"]) for t in h.store.transcript(conv) if t["direction"] == "in"]
    assert ("and being late", "photo") in lines


async def photo_reply(h, user, caption, reply_to):
    before = len(h.fake.messages(user))
    await h.delivered(h.fake.inject_photo(user, caption=caption, reply_to_message_id=reply_to))
    return h.fake.messages(user)[before:]


async def test_an_edit_after_a_restart_is_kept_beside_the_answer_it_changes(tmp_path, library):
    """The message -> input mapping was in the frontend's memory only: an edit after a restart
    named no question (or, with message ids reused, the wrong one). It is in the store now."""
    from bot.testing.fake_bot_api import FakeBotAPI

    service, access, reading, _ = _world(tmp_path, library, StandIn())
    async with FakeBotAPI() as fake:
        async with running_bot(service, fake=fake, access=access, reading=reading) as h:
            h.reading, h.store = reading, service.store
            conv = await start_case(h)
            await h.say(FAM, "calmer mornings")
            await photo(h, FAM, "7")
            mid = last_typed(h, FAM, "calmer mornings")
        async with running_bot(service, fake=fake, access=access, reading=reading) as h:  # restarted
            h.reading, h.store = reading, service.store
            await edit(h, FAM, mid, "calmer mornings, and calmer evenings")
    edits = [(t["step_id"], t["text"]) for t in service.store.transcript(conv) if t["kind"] == "edit"]
    assert edits == [("best_hopes", "calmer mornings, and calmer evenings")]
