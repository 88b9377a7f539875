"""A person's rights over Telegram, against the fake Bot API (issue 17): /privacy says who
sees what (bot.audience), how long things are kept (the retention configuration), that the
chat is not end-to-end encrypted, how to get a copy or ask for deletion, and how to complain
to the ICO, in child-friendly words for a young person; /delete records a request and tells
the worker and the data-protection contact without the answers; the outcome, decided on the
command line, reaches the person; serve's loop purges once a day."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import bot.store
from bot import erasure
from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.retention import DailyPurge
from bot.store import Store, iso
from bot.testing.telegram import running_bot

ADMIN, SUP, P1, FAM, KID, DPO = 1, 2, 3, 5, 6, 8
ANSWERS = ("Aquamarine kitchen peace", "6", "Xylophone teatime talks", "Quokka calmer mornings", "8", "Zeppelin")


def make_world(tmp_path, library, **config):
    store = Store(tmp_path / "rights.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"admin": [ADMIN], "supervisor": [SUP], "practitioner": [P1]},
                                           teams={SUP: [P1]}, **config))
    access.seed()
    return store, service, access


def answer(service, store, user, respondent, case_ref="FGC-3"):
    case = store.create_case(store.person(f"tg:{P1}"), case_ref)
    pid = store.person(f"tg:{user}")
    r = service.start(pid, "scaling-checkin", case_id=case, respondent=respondent)
    for text in ANSWERS:
        r = service.handle(pid, Input.from_text(text))
    assert r.status == "completed"
    return r.conversation_id


async def until(condition, timeout=10.0):
    """Wait for a condition (checked every few milliseconds), failing after ``timeout``."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


ADULT_NOTICE = """Your privacy: how we look after what you tell us

Who sees what
• scaling-checkin: Who can see it: you, your worker, your worker's manager and the people who run this service.
Nobody else in your family sees your answers. Some check-ins ask you first before your answers are shared.

How long things are kept
Answers to a check-in you finished: 2 years, then they are deleted.
Answers to a check-in you stopped or did not finish: 6 months.
If you told us someone might not be safe, the words you used: 6 years, because they are safeguarding records.

But if you tell us that someone is not safe, your worker and the person at the council who keeps children safe will be told, whatever you answer at the end.

Telegram keeps this chat on its own computers: it is not end-to-end encrypted, so it is not as private as talking face to face.

You can ask for a copy of what is stored about you: send /mydata. You can ask for it to be deleted: send /delete. Someone at the council decides, and we tell you here. Some things, like words about someone not being safe, may have to be kept by law; if so, we tell you why.

If you are unhappy with how your information is used, please tell your worker. You can also complain to the Information Commissioner's Office (ICO): ico.org.uk or 0303 123 1113."""


async def test_privacy_tells_an_adult_who_sees_what_how_long_and_their_rights(tmp_path, library):
    store, service, access = make_world(tmp_path, library)
    answer(service, store, FAM, "adult")
    async with running_bot(service, access=access) as h:
        msgs = await h.say(FAM, "/privacy")
    assert [m.text for m in msgs] == [ADULT_NOTICE]
    assert store.audit_log()[-1]["action"] == "privacy.read"


async def test_privacy_for_a_young_person_is_child_friendly_and_follows_the_configuration(tmp_path, library):
    store, service, access = make_world(tmp_path, library, retention_days={"completed": 3650, "abandoned": 30,
                                                                          "alerts": None})
    answer(service, store, KID, "young_person")
    async with running_bot(service, access=access) as h:
        [notice] = await h.say(KID, "/privacy")
    text = notice.text
    assert text.splitlines()[:4] == ["Your privacy: what happens to what you tell us", "", "Who sees it",
                                     "• scaling-checkin: Who can see it: you, your worker, your worker's manager and "
                                     "the people who run this service."]
    assert "What you wrote, once you finish: 10 years. Then it is deleted." in text
    assert "If you stop before the end: 30 days." in text
    assert "your words: until the council decides to delete them." in text
    assert "Telegram keeps a copy of this chat on its computers, so it is not completely private." in text
    assert "To ask for it to be deleted, send /delete." in text and "ico.org.uk or 0303 123 1113" in text
    assert "practitioner" not in text and "end-to-end" not in text  # words for families and children


async def test_privacy_before_any_conversation_says_who_would_see_answers(tmp_path, library):
    store, service, access = make_world(tmp_path, library)
    async with running_bot(service, access=access) as h:
        [notice] = await h.say(FAM, "/privacy")
    assert notice.text.splitlines()[3] == (
        "Your answers will be seen by your worker, your worker's manager and the people who run this service. "
        "Nobody else in your family sees your answers. Some check-ins ask you first before your answers are shared.")


async def test_delete_tells_the_worker_and_the_contact_then_the_person_hears_the_outcome(tmp_path, library):
    store, service, access = make_world(tmp_path, library, dp_contact=DPO)
    conv = answer(service, store, KID, "young_person")
    async with running_bot(service, access=access) as h:
        msgs = await h.say(KID, "/delete")
        [req] = store.erasure_requests()
        assert [m.text for m in msgs] == [
            f"We have your request to delete what is saved about you (number {req['id']}). Someone at the council "
            "will decide and tell you here. Until then nothing is deleted."]
        await until(lambda: h.fake.messages(P1) and h.fake.messages(DPO))
        for who in (P1, DPO):
            [m] = h.fake.messages(who)
            assert m.text == (f"DATA PROTECTION: erasure request #{req['id']} from tg:{KID} (case FGC-3). Some of it "
                              "was given as a child or young person, which weighs in favour of erasure. An "
                              f"administrator decides with: restorative-bot erasure approve {req['id']} --reason "
                              "\"...\" (or refuse). Nothing is deleted until then.")
        again = await h.say(KID, "/delete")
        assert again[0].text.startswith("You already asked on ") and f"(number {req['id']})" in again[0].text
        # an administrator approves on the command line; the bot tells the person
        await h.frontend.db(erasure.approve, store, req["id"], "cli", "asked by the young person")
        await until(lambda: any("is done" in (m.text or "") for m in h.fake.messages(KID)))
    assert h.fake.messages(KID)[-1].text == (
        f"Your request (number {req['id']}) is done: what you wrote and your name have been deleted. Older safety"
        " copies (backups) may still have it until they are deleted on their usual schedule. If one is ever used,"
        " we delete it again.")
    assert {t["text"] for t in store.transcript(conv)} == {"[erased]"}
    assert not any(w in (m.text or "") for who in (P1, DPO) for m in h.fake.messages(who)
                   for w in ("Aquamarine", "Xylophone", "Quokka"))
    actions = [a["action"] for a in store.audit_log() if a["action"].startswith("erasure")]
    assert actions == ["erasure.request", "erasure.notify", "erasure.request.again", "erasure.approve",
                       "erasure.wipe", "erasure.told"]


async def test_a_refusal_reaches_the_person_with_the_reason(tmp_path, library):
    store, service, access = make_world(tmp_path, library)
    answer(service, store, FAM, "adult")
    async with running_bot(service, access=access) as h:
        await h.say(FAM, "/delete")
        [req] = store.erasure_requests()
        await until(lambda: h.fake.messages(ADMIN))  # the contact is the admin role by default
        await h.frontend.db(erasure.refuse, store, req["id"], "cli", "a court has asked us to keep the file")
        await until(lambda: any("not agreed" in (m.text or "") for m in h.fake.messages(FAM)))
    assert h.fake.messages(FAM)[-1].text == (
        f"Your request (number {req['id']}) to delete what is stored about you was not agreed. The reason: a court "
        "has asked us to keep the file. If you are unhappy, tell your worker or complain to the ICO: ico.org.uk or "
        "0303 123 1113.")


async def test_serve_purges_once_a_day_from_its_loop(tmp_path, library, monkeypatch):
    store, service, access = make_world(tmp_path, library)
    with monkeypatch.context() as m:  # answered 800 days ago: past the 730 days kept
        m.setattr(bot.store, "now", lambda: iso(datetime.now(timezone.utc) - timedelta(days=800)))
        conv = answer(service, store, FAM, "adult")
    service.purger = DailyPurge(store, access.config.retention())
    async with running_bot(service, access=access) as h:
        await until(lambda: store.last_audit("purge") is not None)
        assert store.conversation(conv) is None
        first = store.last_audit("purge")["id"]
        assert await h.frontend.daily_purge() is None  # not again the same day
    assert store.last_audit("purge")["id"] == first


async def test_an_outcome_for_someone_who_blocked_the_bot_is_tried_once_not_at_every_pass(tmp_path, library):
    """remind-fix's leftover: the outcome of an erasure request, for someone who has since
    blocked the bot, went back to waiting after the 403, so every pass of the loop called
    Telegram again and logged an error, for ever. It is now recorded as undeliverable."""
    store, service, access = make_world(tmp_path, library)
    answer(service, store, FAM, "adult")
    async with running_bot(service, access=access) as h:
        await h.say(FAM, "/delete")
        [req] = store.erasure_requests()
        await until(lambda: h.fake.messages(ADMIN))
        h.fake.block_user(FAM)
        await h.frontend.db(erasure.refuse, store, req["id"], "cli", "a court has asked us to keep the file")
        refused = lambda: [c for c in h.fake.calls_to("sendMessage")  # noqa: E731
                           if str(c.params.get("chat_id")) == str(FAM) and c.status == 403]
        await h.fake.wait_for(refused)
        await until(lambda: [a for a in store.audit_log() if a["action"] == "erasure.told"])
        for _ in range(3):  # later passes: nothing is left to tell
            assert await h.frontend.dispatch_erasure_outcomes(h.app.bot) == 0
        assert len(refused()) == 1
    [told] = [a for a in store.audit_log() if a["action"] == "erasure.told"]
    assert told["detail"] == "undeliverable: blocked or no chat"


async def test_delete_tells_each_worker_only_of_their_own_case(tmp_path, library):
    """A person in two workers' cases sends /delete: each worker's notice names their own case
    and label only; the data-protection contact's names both (review-priv finding 6)."""
    store, service, access = make_world(tmp_path, library, dp_contact=DPO)
    P2 = 4
    access.grant(None, f"tg:{P2}", "practitioner")
    answer(service, store, FAM, "adult")  # FGC-3, held by P1
    case = store.create_case(store.person(f"tg:{P2}"), "DV-77")
    pid = store.person(f"tg:{FAM}")
    conv = service.start(pid, "scaling-checkin", case_id=case, respondent="adult").conversation_id
    access.set_pseudonym(f"tg:{P2}", conv, "Victim in refuge")
    async with running_bot(service, access=access) as h:
        await h.say(FAM, "/delete")
        await until(lambda: h.fake.messages(P1) and h.fake.messages(P2) and h.fake.messages(DPO))
    [to_p1], [to_p2], [to_dpo] = (h.fake.messages(k) for k in (P1, P2, DPO))
    assert "(case FGC-3)" in to_p1.text and "DV-77" not in to_p1.text and "refuge" not in to_p1.text
    assert "(case DV-77)" in to_p2.text and "Victim in refuge" in to_p2.text and "FGC-3" not in to_p2.text
    assert "FGC-3" in to_dpo.text and "DV-77" in to_dpo.text
