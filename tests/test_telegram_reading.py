"""Issue 12 over Telegram (the real Application against the fake Bot API): a review-tier
answer does not interrupt the family and is at the top of /case and /review; /ack R closes
it; /missed is recorded and audited; reminders reach the practitioner, then the supervisor."""

import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.reading import Reading
from bot.schedule import Schedule
from bot.store import Store
from bot.testing.telegram import running_bot
from tests.test_reading import StandIn


SUP, P1, P2, FAM = 2, 3, 4, 5


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "reading.db")
    service = ConversationService(store, library, safeguarding=StandIn())
    config = Config(leads=[9], roles={"supervisor": [SUP], "practitioner": [P1, P2]}, teams={SUP: [P1]})
    access = Access(store, library, config)
    access.seed()
    clock = {"now": None}
    reading = Reading(store, access, leads=config.leads,
                      clock=lambda: clock["now"] or datetime.now(timezone.utc))
    # the reminders go out through the schedule; answers carry the real time, so no quiet hours here
    service.schedule = Schedule(store, clock=reading.clock, quiet_from="00:00", quiet_until="00:00")
    async with running_bot(service, access=access, reading=reading) as h:
        h.clock, h.reading, h.access = clock, reading, access
        yield h


@contextlib.asynccontextmanager
async def staffed_bot(path, library, leads=(9,)):
    """The bot with SUP supervising P1, P2 on their own, ``leads``, the stand-in word list and the
    reminders of unread answers: the harness, with ``reading``, ``store`` and ``access`` on it."""
    store = Store(path)
    service = ConversationService(store, library, safeguarding=StandIn())
    config = Config(leads=list(leads), roles={"supervisor": [SUP], "practitioner": [P1, P2]}, teams={SUP: [P1]})
    access = Access(store, library, config)
    access.seed()
    reading = Reading(store, access, leads=config.leads, clock=lambda: datetime.now(timezone.utc))
    async with running_bot(service, access=access, reading=reading) as h:
        h.reading, h.store, h.access = reading, store, access
        yield h


async def start_case(h, flow="scaling-checkin", who="adult", practitioner=P1, family=FAM, ref="FGC-9"):
    """The practitioner invites the family member to ``flow`` in case ``ref`` and they start it
    (the Telegram way: /invite, /start CODE, "Yes, start"); their conversation's id."""
    import re

    msgs = await h.say(practitioner, f"/invite {flow} {ref} --for {who}")
    code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
    msgs = await h.say(family, f"/start {code}")
    data = next(cb for row in h.fake.buttons(msgs[-1]) for (t, cb) in row if t == "Yes, start")
    await h.delivered(h.fake.press_button(family, msgs[-1].message_id, data))
    return h.service.store.conversations(person_id=h.service.store.person(f"tg:{family}"))[0]["id"]


async def test_review_item_is_queued_quietly_and_acknowledged(world):
    h = world
    conv = await start_case(h)
    msgs = await h.say(FAM, "mostly fine, REVIEWWORD sometimes")
    assert "HELP" not in "\n".join(m.text or "" for m in msgs)
    assert "where are things now" in msgs[-1].text.lower()  # the next question: not interrupted
    msgs = await h.say(P1, "/case FGC-9")
    text = msgs[-1].text
    assert text.index("Worth a look") < text.index(f"#{conv} scaling-checkin")  # at the top
    assert f"R1 — #{conv} #best_hopes — Worth a look: “REVIEWWORD”" in text
    msgs = await h.say(P1, "/review")
    assert "R1" in msgs[-1].text and "Worth a look" in msgs[-1].text
    msgs = await h.say(P2, "/ack R1")
    assert msgs[-1].text == "There is no item R1 that you can mark."
    msgs = await h.say(P1, "/ack R1")
    assert msgs[-1].text == "R1 marked as looked at. Reminders have stopped."
    msgs = await h.say(P1, "/review")
    assert msgs[-1].text == "Nothing is waiting for review."


async def test_missed_is_recorded_and_audited(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "my uncle comes in my room")
    msgs = await h.say(P1, f"/missed {conv}#best_hopes my uncle comes in my room  (at night)")
    assert msgs[-1].text.startswith("Thank you. Missed disclosure 1 is recorded")
    store = h.service.store
    assert [(m["conversation_id"], m["step_id"], m["words"], m["reported_by"]) for m in store.missed_disclosures()] == \
        [(conv, "best_hopes", "my uncle comes in my room  (at night)", f"tg:{P1}")]
    assert [r["action"] for r in store.audit_log() if r["action"].startswith("safeguarding.missed")] == \
        ["safeguarding.missed"]
    msgs = await h.say(P2, f"/missed {conv} not my case")
    assert "isn't available to you" in msgs[-1].text
    msgs = await h.say(P1, "/missed")
    assert msgs[-1].text.startswith("Send /missed ID#step")
    # no space after the #: "dad" is not a question of the conversation, and the words are not
    # split into a step id that the audit log (in clear, never erased) would keep
    msgs = await h.say(P1, f"/missed {conv}#dad hits me at night")
    assert msgs[-1].text.startswith(f"Nothing was recorded: transcript {conv} has no question with that id.")
    assert "best_hopes" in msgs[-1].text
    assert [r["action"] for r in store.audit_log() if r["action"].startswith("safeguarding.missed")] == \
        ["safeguarding.missed", "safeguarding.missed.refused"]
    assert not any("dad" in (r["detail"] or "") or "dad" in (r["target"] or "") for r in store.audit_log())
    assert len(store.missed_disclosures()) == 1


async def test_unread_reminders_reach_the_practitioner_then_the_supervisor(world):
    h = world
    conv = await start_case(h)
    await h.say(FAM, "hopes for calmer mornings")
    first = h.service.store.unread_answers()[0]["created_at"]
    t0 = datetime.fromisoformat(first.replace("Z", "+00:00"))
    # the reminder loop runs every 0.1 s on this clock; each step waits for what it sends
    h.clock["now"] = t0 + timedelta(hours=47)
    assert await h.frontend.dispatch_reminders(h.app.bot) == 0
    before = len(h.fake.messages(P1))
    h.clock["now"] = t0 + timedelta(hours=48, minutes=1)
    notice = await h.fake.wait_for(lambda: h.fake.messages(P1)[before:])
    assert await h.frontend.dispatch_reminders(h.app.bot) == 0  # written once, not again
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # and sent once
    assert len(h.fake.messages(P1)[before:]) == 1
    [row] = [r for r in h.service.store.scheduled_list(states=("sent",)) if r["kind"] != "nudge"]
    assert (row["kind"], row["seq"], row["text"]) == ("unread", 1, notice[0].text)
    assert f"#{conv} (FGC-9)" in notice[0].text and "calmer" not in notice[0].text
    assert h.fake.messages(SUP) == []
    h.clock["now"] = t0 + timedelta(hours=96, minutes=3)
    told = await h.fake.wait_for(lambda: h.fake.messages(SUP))
    assert len(told) == 1 and "still unread" in told[0].text and "calmer" not in told[0].text


async def test_stop_tells_a_practitioner_their_duty_reminders_go_on_and_they_do(world):
    from bot.messages import msg

    h = world
    await start_case(h)
    await h.say(FAM, "hopes for calmer mornings")
    msgs = await h.say(P1, "/stop")
    assert msgs[-1].text == msg("schedule.stopped") + "\n\n" + msg("schedule.stopped_staff")
    first = h.service.store.unread_answers()[0]["created_at"]
    before = len(h.fake.messages(P1))
    h.clock["now"] = datetime.fromisoformat(first.replace("Z", "+00:00")) + timedelta(hours=48, minutes=1)
    notice = await h.fake.wait_for(lambda: h.fake.messages(P1)[before:])
    assert "FGC-9" in notice[0].text and "calmer" not in notice[0].text
    msgs = await h.say(FAM, "/stop")
    assert msgs[-1].text == msg("schedule.stopped")  # a family member: no word about staff reminders


async def test_a_practitioner_who_blocked_the_bot_does_not_stop_the_supervisor_being_told(world, caplog):
    """Finding r6 over Telegram: the reminder to a practitioner who blocked the bot failed with
    403 on every pass, went back to pending, and neither the supervisor nor a lead was told."""
    import logging

    caplog.set_level(logging.INFO)
    h = world
    await start_case(h)
    await h.say(FAM, "hopes for calmer mornings REVIEWWORD")
    store = h.service.store
    t0 = datetime.fromisoformat(store.unread_answers()[0]["created_at"].replace("Z", "+00:00"))
    h.fake.block_user(P1)
    before = len(h.fake.messages(P1))
    h.clock["now"] = t0 + timedelta(hours=24, minutes=1)  # the review item's reminder falls due
    told = await h.fake.wait_for(lambda: h.fake.messages(SUP))
    assert len(told) == 1 and "cannot reach" in told[0].text and "R1" in told[0].text
    h.clock["now"] = t0 + timedelta(hours=48, minutes=1)  # and the unread answer's
    told = await h.fake.wait_for(lambda: h.fake.messages(SUP)[1:])
    assert len(told) == 1 and "have not been read" in told[0].text and "cannot reach" in told[0].text
    assert len(h.fake.messages(P1)) == before
    rows = lambda: sorted((r["kind"], r["seq"], r["state"]) for r in store.scheduled_list(  # noqa: E731
        states=("pending", "sending", "sent", "undeliverable"), limit=100) if r["kind"] in ("review", "unread"))
    done = [("review", 1, "undeliverable"), ("review", 2, "sent"), ("unread", 1, "undeliverable"), ("unread", 2, "sent")]
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # (waits for the pass under way: nothing left to send)
    assert rows() == done
    words = ("calmer", "REVIEWWORD", "cannot reach", "FGC-9")
    assert not [r.getMessage() for r in caplog.records if any(w in r.getMessage() for w in words)]
    assert [r for r in caplog.records if r.getMessage() == "reminder not delivered"]


async def test_a_revoked_practitioner_cannot_ack_over_telegram(world):
    h = world
    await start_case(h)
    await h.say(FAM, "REVIEWWORD")
    await h.frontend.db(h.access.revoke, None, f"tg:{P1}", "practitioner")
    msgs = await h.say(P1, "/ack R1")
    assert msgs[-1].text == "There is no item R1 that you can mark."
    assert h.service.store.review_item(1)["acknowledged_at"] is None
    msgs = await h.say(SUP, "/ack R1")
    assert msgs[-1].text == "R1 marked as looked at. Reminders have stopped."


async def test_a_case_held_in_the_terminal_reaches_the_supervisor_over_telegram(world, caplog):
    """Leftover 1 through serve's loop: the case's holder works in the terminal (no Telegram
    chat), so their reminder is undeliverable as soon as it falls due and the supervisor is
    told at the next pass; nothing is sent or tried for the holder, no words in the log."""
    import logging

    caplog.set_level(logging.INFO)
    h = world
    store = h.service.store

    def terminal_case() -> int:
        with store.transaction():
            holder = store.person("console:worker")
            store.grant_role(holder, "practitioner", "test")
            store.add_team(store.person(f"tg:{SUP}"), holder)
            case = store.create_case(holder, "TERM-1")
        return h.service.start(store.person(f"tg:{FAM}"), "scaling-checkin", case_id=case, frontend="telegram",
                               chat_id=str(FAM)).conversation_id
    conv = await h.frontend.db(terminal_case)
    await h.say(FAM, "hopes for calmer mornings REVIEWWORD")
    t0 = datetime.fromisoformat(store.unread_answers()[0]["created_at"].replace("Z", "+00:00"))
    h.clock["now"] = t0 + timedelta(hours=24, minutes=1)
    told = await h.fake.wait_for(lambda: h.fake.messages(SUP))
    assert len(told) == 1 and "cannot reach" in told[0].text and "R1" in told[0].text
    assert f"#{conv} (TERM-1)" in told[0].text and "REVIEWWORD" not in told[0].text
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # (after the pass under way)
    rows = sorted((r["kind"], r["seq"], r["state"]) for r in store.scheduled_list(
        states=("pending", "sending", "sent", "undeliverable"), limit=100) if r["kind"] in ("review", "unread"))
    assert rows == [("review", 1, "undeliverable"), ("review", 2, "sent")]
    assert not [r for r in caplog.records if r.getMessage() == "reminder not delivered"]  # nothing tried
    assert not [r.getMessage() for r in caplog.records if "calmer" in r.getMessage() or "TERM-1" in r.getMessage()]
