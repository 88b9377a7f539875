"""Words a family member sends after their conversation has ended (or after /cancel) are never
thrown away (review-sg finding 8): they are kept in their most recent conversation in the case as
a line after the end, unread for the worker under that conversation's consent rules, and the person
is told who can see them. Someone with no case (a stranger, a worker) is answered as before.
Through the real Application against the fake Bot API server."""


import pytest

from bot.messages import msg
from tests.test_telegram_reading import staffed_bot, start_case

SUP, P1, P2, FAM, LEAD, STRANGER = 2, 3, 4, 5, 9, 77
MISSED = "mum was angry & now I have a <bruise> on my leg"  # nothing the (stand-in) word list flags


@pytest.fixture
async def world(tmp_path, library):
    async with staffed_bot(tmp_path / "after.db", library, leads=[LEAD]) as h:
        yield h


def after_end_lines(h, conv):
    return [t for t in h.store.transcript(conv) if t["kind"] == "after_end"]


async def test_words_after_cancel_are_kept_unread_and_the_person_is_told_who_sees_them(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "calmer mornings")
    await h.say(FAM, "/cancel")
    assert h.store.conversation(conv).status == "cancelled"
    read_before = {r["transcript_id"] for r in h.reading.unread()}
    msgs = await h.say(FAM, MISSED)
    [line] = after_end_lines(h, conv)
    assert (line["direction"], line["text"], line["step_id"], line["flagged"]) == ("in", MISSED, None, 0)
    assert [r["transcript_id"] for r in h.reading.unread() if r["transcript_id"] not in read_before] == [line["id"]]
    assert [m.text for m in msgs] == [msg("answers.after_end", title="How are things going?",
                                          who_can_see="Your answers can be seen by you, Test (your worker), "
                                                      "your worker's manager and the people who run this service.")]
    assert h.store.conversation(conv).status == "cancelled"  # nothing else changed
    # the worker reads it, labelled, and it is read
    msgs = await h.say(P1, f"/transcript {conv}")
    text = "\n".join(m.text or "" for m in msgs)
    assert f"{msg('transcripts.kind_after_end')}" in text and MISSED in text
    assert line["id"] not in {r["transcript_id"] for r in h.reading.unread()}


async def test_words_after_the_end_go_to_the_latest_conversation_in_the_case(world):
    h = world
    first = await start_case(h)
    await h.say(FAM, "/cancel")
    await start_case(h)  # a second invitation in the case
    [second] = [c["id"] for c in h.store.conversations(person_id=h.store.person(f"tg:{FAM}")) if c["id"] != first]
    await h.say(FAM, "/cancel")
    await h.say(FAM, MISSED)
    assert [t["text"] for t in after_end_lines(h, second)] == [MISSED]
    assert after_end_lines(h, first) == []


async def test_before_consent_the_words_stay_with_the_person_as_its_answers_do(world):
    h = world
    conv = await start_case(h, flow="fgc-pre-conference")
    await h.say(FAM, "I am her mum")
    await h.say(FAM, "/cancel")
    msgs = await h.say(FAM, MISSED)
    [line] = after_end_lines(h, conv)
    assert line["text"] == MISSED
    assert h.reading.unread() == []  # nobody may read this conversation without the consent: not counted
    assert msgs[-1].text.endswith("Only you can see your answers.")
    msgs = await h.say(FAM, "and ALERTWORD")  # a disclosure still reaches the worker and the lead
    assert msgs[0].text.startswith("HELP")
    assert [r["transcript_id"] for r in h.reading.unread()] == \
        [t["id"] for t in h.store.transcript(conv) if t["flagged"]]


async def test_a_stranger_or_a_worker_is_answered_as_before_and_nothing_is_kept(world):
    h = world
    for who, answer in ((STRANGER, msg("staff.uninvited")), (P1, msg("telegram.choose_flow"))):
        msgs = await h.say(who, MISSED)
        assert [m.text for m in msgs] == [answer]  # as before: what they may start
        assert h.store.conversations(person_id=h.store.person(f"tg:{who}")) == []
    assert h.reading.unread() == [] and h.store.review_items() == []
