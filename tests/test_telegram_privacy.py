"""Who sees the answers, over Telegram against the fake Bot API: the demo says that only the
person and the people who run the service see it, at the start, at the end and in /mydata;
after a family says no to sharing an FGC check-in, /mydata, /case, /review and /transcript all
tell the same story."""

import re

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store
from bot.testing.telegram import running_bot

ADMIN, SUP, P1, FAM, STRANGER = 1, 2, 3, 5, 7
REFUSED = "Sorry, that isn't available to you. If you think it should be, ask your administrator."


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "privacy.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"admin": [ADMIN], "supervisor": [SUP], "practitioner": [P1]},
                                           teams={SUP: [P1]}, demo_flow="scaling-checkin"))
    access.seed()
    async with running_bot(service, access=access) as h:
        yield h


async def test_the_demo_says_no_worker_sees_it(world):
    h = world
    msgs = await h.say(STRANGER, "/start")
    assert "practitioner" not in msgs[0].text and "who will see your answers" in msgs[0].text
    msgs = await h.press(STRANGER, msgs[-1], "How are things going?")
    msgs = await h.past_who(STRANGER, msgs)  # "Who is filling this in?" A parent or carer
    assert ("No worker is linked to this conversation, so only you and the people who run this service can see "
            "your answers.") in msgs[0].text
    for text in ("To argue less at home", "6", "We eat together", "Less shouting", "8", "No"):
        msgs = await h.say(STRANGER, text)
    assert msgs[-1].text == "Thank you. Your answers are saved. Your answers can be seen by you and the people who run this service."
    msgs = await h.say(STRANGER, "/mydata")
    assert "Who can see it: you and the people who run this service." in msgs[-1].text
    # and it is so: the administrator may read it; the practitioner and supervisor may not
    conv = h.service.store.conversations(person_id=h.service.store.person(f"tg:{STRANGER}"))[0]["id"]
    assert f"#{conv}" not in (await h.say(SUP, "/review"))[-1].text
    for who in (P1, SUP):
        assert (await h.say(who, f"/transcript {conv}"))[-1].text == REFUSED
    assert any("To argue less at home" in (m.text or "") for m in await h.say(ADMIN, f"/transcript {conv}"))


async def test_after_no_to_sharing_every_view_agrees(world):
    h = world
    msgs = await h.say(P1, "/invite fgc-pre-conference FGC-9 --for adult")
    code = re.search(r"\?start=(\S+)", msgs[-1].text).group(1)
    consent = (await h.say(FAM, f"/start {code}"))[-1]
    assert "Your answers stay with you for now. At the end we will ask whether they can be shared." in consent.text, consent.text
    assert "If you say yes, Test (your worker), your worker's manager and the people who run this service can see them." in consent.text, consent.text
    assert "not end-to-end encrypted" in consent.text and "supervisor" not in consent.text
    assert ("But if you tell us that someone is not safe, your worker and the person at the council who keeps "
            "children safe will be told, whatever you answer at the end.") in consent.text
    msgs = await h.press(FAM, consent, "Yes, start")
    assert "Your answers stay with you for now." in msgs[0].text  # the intro says the same
    # answer the rest through the service (the same database), saying no to sharing at the end
    store, service = h.service.store, h.service
    pid = store.person(f"tg:{FAM}")
    conv = store.conversations(person_id=pid)[0]["id"]
    flow = service.runner_for(store.conversation(conv)).flow
    for _ in range(100):
        c = store.conversation(conv)
        if c.status != "in_progress":
            break
        step = flow.by_id[c.state]
        tries = (["no"] if step.type == "yesno" else [str(i) for i in range(1, len(step.options) + 1)]
                 if step.options else ["5"] if step.type in ("scale", "number") else ["Friday 14 March"])
        assert any(service.handle(pid, Input.from_text(t), conversation_id=conv).accepted for t in tries), step.id
    assert store.conversation(conv).status == "completed"
    assert [a["value"] for a in store.answers(conv) if a["step_id"] == flow.consent_step] == [False]
    msgs = await h.say(FAM, "/mydata")
    assert f"#{conv} fgc-pre-conference — completed" in msgs[-1].text and "Who can see it: only you." in msgs[-1].text
    msgs = await h.say(P1, "/case FGC-9")
    assert f"#{conv}" in msgs[-1].text and "not shared with you (they said no to sharing)" in msgs[-1].text
    assert "Nothing is waiting" in (await h.say(SUP, "/review"))[-1].text
    for who in (P1, SUP, ADMIN):
        assert (await h.say(who, f"/transcript {conv}"))[-1].text == REFUSED


async def test_mydata_says_words_are_kept_in_a_safeguarding_record_without_showing_them(world):
    """Review-dp F7: a disclosure typed outside any conversation is kept (alerts.words) but was in
    no part of /mydata, which said "No conversations." Now /mydata says some of the person's words
    are kept in a safeguarding record and how to ask for a copy; the words, the tier and the
    concern are not shown in the chat (a phone may be shared)."""
    h = world
    store = h.service.store
    pid = store.person(f"tg:{STRANGER}")
    with store.transaction():
        store.add_alert(conversation_id=None, person_id=pid, transcript_id=None, concern="harm",
                        words="Tamarind my stepdad hurts me", next_notify_at=None)
    text = (await h.say(STRANGER, "/mydata"))[-1].text
    assert "No conversations." in text and "kept in a safeguarding record" in text and "ask your worker" in text
    assert not [w for w in ("Tamarind", "harm", "alert", "review") if w in text.lower() or w in text]
    other = (await h.say(FAM, "/mydata"))[-1].text
    assert "safeguarding record" not in other  # only the person whose words they are
