"""Issue 15 over Telegram (the real Application against the fake Bot API): a nudge arrives
after the delay, "Carry on" resumes at the right question, "Not now" stops the nudges,
/reminders and /stop."""

from datetime import datetime, timedelta, timezone

import pytest

from bot.conversation import ConversationService
from bot.messages import msg
from bot.schedule import Schedule
from bot.store import Store
from bot.testing.telegram import running_bot


FAM = 701
T0 = datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc)  # a Monday morning in London
USUAL_TIMES = [msg("schedule.quiet_line", start="20:00", until="08:00"), msg("schedule.days_line_any")]


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "reminders.db")
    clock = {"now": T0}
    schedule = Schedule(store, clock=lambda: clock["now"])
    service = ConversationService(store, library, schedule=schedule)
    async with running_bot(service) as h:
        h.clock = clock
        yield h


async def begin(h, user):
    """Start scaling-checkin as a young person and answer the first question."""
    before = len(h.fake.messages(user))
    h.fake.inject_command(user, "/start")
    menu = await h.keyboard_after(user, before)
    who = await h.press(user, menu, next(t for row in h.fake.buttons(menu) for (t, cb) in row
                                         if cb == "s:scaling-checkin"))
    msgs = await h.press(user, who[-1], msg("respondent.options.young_person")) if h.fake.buttons(who[-1]) else who
    assert "best hopes" in msgs[-1].text.lower()
    msgs = await h.say(user, "that my brother stops taking my phone")
    assert "where are things now" in msgs[-1].text.lower()
    return msgs[-1]


async def nudge_arrives(h, user, at):
    before = len(h.fake.messages(user))
    h.clock["now"] = at  # the loop polls every 0.1 s on this clock
    return (await h.fake.wait_for(lambda: h.fake.messages(user)[before:]))[0]


async def test_a_nudge_arrives_and_carry_on_resumes_at_the_right_question(world):
    h = world
    question = await begin(h, FAM)
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # not yet
    nudge = await nudge_arrives(h, FAM, T0 + timedelta(hours=48, minutes=1))
    assert nudge.text == msg("schedule.nudge")
    assert "brother" not in nudge.text and "phone" not in nudge.text
    assert [t for row in h.fake.buttons(nudge) for (t, _) in row] == [msg("schedule.nudge_carry_on"),
                                                                      msg("schedule.nudge_not_now")]
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # sent once
    before = len(h.fake.messages(FAM))
    h.fake.press_button(FAM, nudge.message_id, next(cb for row in h.fake.buttons(nudge) for (t, cb) in row
                                                    if t == msg("schedule.nudge_carry_on")))
    msgs = await h.fake.wait_for(lambda: (m := h.fake.messages(FAM)[before:]) and len(m) >= 2 and m)
    assert msgs[0].text == msg("telegram.resumed")
    assert msgs[-1].text == question.text  # the question it was waiting on, asked again
    msgs = await h.say(FAM, "6")  # and the conversation goes on from there
    assert "What puts you at 6 and not lower?" in msgs[-1].text


async def test_not_now_stops_the_nudges_for_that_conversation(world):
    h = world
    await begin(h, FAM)
    nudge = await nudge_arrives(h, FAM, T0 + timedelta(hours=48, minutes=1))
    before = len(h.fake.messages(FAM))
    h.fake.press_button(FAM, nudge.message_id, next(cb for row in h.fake.buttons(nudge) for (t, cb) in row
                                                    if t == msg("schedule.nudge_not_now")))
    msgs = await h.fake.wait_for(lambda: h.fake.messages(FAM)[before:])
    assert msgs[-1].text == msg("schedule.nudge_later")
    h.clock["now"] = T0 + timedelta(days=10)
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0
    assert h.service.store.active_conversation(h.service.store.person(f"tg:{FAM}")) is not None  # not cancelled


async def test_reminders_lists_and_turns_off_and_stop_turns_all_off(world):
    h = world
    await begin(h, FAM)
    msgs = await h.say(FAM, "/reminders")
    text = msgs[-1].text
    assert text.splitlines() == [msg("schedule.list_title"),
                                 msg("schedule.list_line", when="Wed 14 Jan, 10:00", kind=msg("schedule.kinds.nudge")),
                                 *USUAL_TIMES]
    off_nudge = msg("schedule.turn_off", kind=msg("schedule.kinds.nudge"))
    listing = h.fake.messages(FAM)[-1]
    data = next(cb for row in h.fake.buttons(listing) for (t, cb) in row if t == off_nudge)
    before = len(h.fake.messages(FAM))
    h.fake.press_button(FAM, listing.message_id, data)
    done = await h.fake.wait_for(lambda: h.fake.messages(FAM)[before:])
    assert done[-1].text == msg("schedule.turned_off", kind=msg("schedule.kinds.nudge"))
    msgs = await h.say(FAM, "/reminders")
    assert msgs[-1].text.splitlines() == [msg("schedule.list_none"),
                                          msg("schedule.list_off", kinds=msg("schedule.kinds.nudge")), *USUAL_TIMES]
    h.clock["now"] = T0 + timedelta(days=3)
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0
    msgs = await h.say(FAM, "/stop")
    assert msgs[-1].text == msg("schedule.stopped")
    msgs = await h.say(FAM, "/reminders")
    assert msgs[-1].text.splitlines()[-3] == msg("schedule.list_off", kinds="; ".join(
        msg(f"schedule.kinds.{k}") for k in ("nudge", "date")))


async def test_a_practitioner_sees_and_cancels_the_reminders_of_their_case_in_case_ref(tmp_path, library):
    import re

    from bot.access import Access
    from bot.config import Config


    P1, P2, FAMILY = 3, 4, 5
    store = Store(tmp_path / "case.db")
    clock = {"now": T0}
    service = ConversationService(store, library, schedule=Schedule(store, clock=lambda: clock["now"]))
    access = Access(store, library, Config(roles={"practitioner": [P1, P2]}))
    access.seed()
    async with running_bot(service, access=access) as h:
        msgs = await h.say(P1, "/invite scaling-checkin FGC-9 --for adult")
        code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
        msgs = await h.say(FAMILY, f"/start {code}")
        msgs = await h.press(FAMILY, msgs[-1], "Yes, start")
        await h.say(FAMILY, "calmer mornings at home")
        conv = store.conversations(person_id=store.person(f"tg:{FAMILY}"))[0]["id"]
        item = store.scheduled_list(person_id=store.person(f"tg:{FAMILY}"))[0]["id"]
        text = (await h.say(P1, "/case FGC-9"))[-1].text
        assert text.splitlines()[-3:] == [
            msg("schedule.case_title", ref="FGC-9"),
            msg("schedule.case_line", id=item, when="Wed 14 Jan, 10:00", kind=msg("schedule.case_kinds.nudge"),
                who=msg("schedule.to_person", conversation=conv), state="pending"),
            msg("schedule.case_cancel_hint", ref="FGC-9")]
        assert "calmer" not in text.split(msg("schedule.case_title", ref="FGC-9"))[1]
        refused = (await h.say(P2, f"/case FGC-9 cancel {item}"))[-1].text
        assert "isn't available to you" in refused  # not their case: nothing cancelled
        assert (await h.say(P1, f"/case FGC-9 cancel {item + 100}"))[-1].text == \
            msg("schedule.cancel_unknown", id=item + 100, ref="FGC-9")
        assert (await h.say(P1, f"/case FGC-9 cancel {item}"))[-1].text == msg("schedule.cancelled", id=item)
        assert (await h.say(P1, "/case FGC-9"))[-1].text.splitlines()[-1] == \
            msg("schedule.case_none", ref="FGC-9")
        clock["now"] = T0 + timedelta(days=5)
        assert await h.frontend.dispatch_schedule(h.app.bot) == 0


async def test_the_menu_and_the_reply_say_stop_is_for_reminders_and_cancel_ends_the_questions(world):
    """/stop and /cancel do different things, and the command menu a person reads says which:
    /stop turns reminders off and does not end the questions; /cancel ends the questions."""
    h = world
    menu = {c["command"]: c["description"] for c in h.fake.commands}
    assert menu["stop"] == msg("telegram.commands.stop")
    assert "reminders" in menu["stop"].lower() and "does not end your questions" in menu["stop"]
    assert "reminder" not in menu["cancel"].lower() and menu["cancel"].startswith("End the questions")
    assert not menu["stop"].lower().startswith(("stop", "end")), "the menu line must not read as ending the questions"
    await begin(h, FAM)
    msgs = await h.say(FAM, "/stop")
    assert msgs[-1].text == msg("schedule.stopped")
    assert "not ended" in msgs[-1].text and "/cancel" in msgs[-1].text
    store = h.service.store
    assert store.active_conversation(store.person(f"tg:{FAM}")) is not None  # the questions go on
    assert "where are things now" in (await h.say(FAM, "/repeat"))[-1].text.lower()


def _button(h, message, text):
    return next(cb for row in h.fake.buttons(message) for (t, cb) in row if t == text)


async def _press_and_read(h, user, message, text):
    before = len(h.fake.messages(user))
    uid = h.fake.press_button(user, message.message_id, _button(h, message, text))
    await h.delivered(uid)
    return h.fake.messages(user)[before:]


async def test_a_person_chooses_quiet_hours_and_a_day_without_reminders_and_the_nudge_waits(world):
    """/reminders' buttons: quiet hours 22:00 to 07:00 and no reminders on Wednesdays; the
    nudge due on Wednesday 10:00 waits for Thursday 07:00 and then arrives."""
    h = world
    await begin(h, FAM)
    await h.say(FAM, "/reminders")
    listing = h.fake.messages(FAM)[-1]
    await _press_and_read(h, FAM, listing, msg("schedule.quiet_button"))
    listing = h.fake.message(FAM, listing.message_id)
    usual = msg("schedule.quiet_choice_usual", start="20:00", until="08:00")
    assert [t for row in h.fake.buttons(listing) for (t, _) in row] == [
        "✓ " + usual, msg("schedule.quiet_choice", start="18:00", until="09:00"),
        msg("schedule.quiet_choice", start="21:00", until="08:00"),
        msg("schedule.quiet_choice", start="22:00", until="07:00"), msg("schedule.back")]
    said = await _press_and_read(h, FAM, listing, msg("schedule.quiet_choice", start="22:00", until="07:00"))
    assert said[-1].text == msg("schedule.quiet_set", start="22:00", until="07:00")
    listing = h.fake.message(FAM, listing.message_id)
    await _press_and_read(h, FAM, listing, msg("schedule.back"))
    listing = h.fake.message(FAM, listing.message_id)
    await _press_and_read(h, FAM, listing, msg("schedule.days_button"))
    listing = h.fake.message(FAM, listing.message_id)
    wednesday = msg("schedule.days")[2]
    said = await _press_and_read(h, FAM, listing, msg("schedule.day_open", day=wednesday))
    assert said[-1].text == msg("schedule.day_freed", day=wednesday)
    listing = h.fake.message(FAM, listing.message_id)
    assert msg("schedule.day_free", day=wednesday) in [t for row in h.fake.buttons(listing) for (t, _) in row]
    msgs = await h.say(FAM, "/reminders")
    assert msgs[-1].text.splitlines()[-2:] == [msg("schedule.quiet_line", start="22:00", until="07:00"),
                                               msg("schedule.days_line", days=wednesday)]
    h.clock["now"] = T0 + timedelta(hours=48, minutes=1)  # Wednesday 10:01: kept free
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0
    assert "Thu 15 Jan, 07:00" in (await h.say(FAM, "/reminders"))[-1].text  # when it will really come
    h.clock["now"] = T0 + timedelta(hours=68, minutes=59)  # Thursday 06:59: still quiet for them
    assert await h.frontend.dispatch_schedule(h.app.bot) == 0
    nudge = await nudge_arrives(h, FAM, T0 + timedelta(hours=69))  # Thursday 07:00
    assert nudge.text == msg("schedule.nudge")


async def test_the_last_open_day_cannot_be_kept_free(world):
    h = world
    await begin(h, FAM)
    schedule = h.frontend.reminders.schedule
    pid = h.service.store.person(f"tg:{FAM}")
    for d in range(6):
        schedule.set_day(pid, d, free=True)
    await h.say(FAM, "/reminders")
    listing = h.fake.messages(FAM)[-1]
    await _press_and_read(h, FAM, listing, msg("schedule.days_button"))
    listing = h.fake.message(FAM, listing.message_id)
    said = await _press_and_read(h, FAM, listing, msg("schedule.day_open", day=msg("schedule.days")[6]))
    assert said[-1].text == msg("schedule.days_all_free")
    assert schedule.times(pid).blocked == frozenset(range(6))


async def test_a_nudge_to_someone_who_blocked_the_bot_is_tried_once_not_at_every_pass(world, caplog):
    """Leftover 2 over Telegram: the 403 sent the nudge back to pending, and every pass of the
    loop (ten a second here) called Telegram again and logged an error, for ever."""
    import logging

    caplog.set_level(logging.INFO)
    h = world
    await begin(h, FAM)
    h.fake.block_user(FAM)
    refused = lambda: [c for c in h.fake.calls_to("sendMessage")  # noqa: E731
                       if str(c.params.get("chat_id")) == str(FAM) and c.status == 403]
    h.clock["now"] = T0 + timedelta(hours=48, minutes=1)
    await h.fake.wait_for(refused)
    store = h.service.store
    await h.fake.wait_for(lambda: store.scheduled_list(states=("undeliverable",)))
    for _ in range(3):  # passes after it: each waits for the one under way
        assert await h.frontend.dispatch_schedule(h.app.bot) == 0
    assert len(refused()) == 1
    assert [(r["kind"], r["state"]) for r in store.scheduled_list(states=("pending", "sending", "undeliverable"))] == \
        [("nudge", "undeliverable")]
    assert len([r for r in caplog.records if r.getMessage() == "reminder not delivered"]) == 1
    assert not [r for r in caplog.records if "brother" in r.getMessage() or msg("schedule.nudge") in r.getMessage()]


async def test_case_ref_lists_no_reminder_of_a_conversation_the_family_did_not_share(tmp_path, library):
    """The pre-conference check-in sends its date reminder to the person only, and nobody
    reads the answers without their consent: its time (09:00 the day before the date they
    gave) is not listed in the worker's /case REF, nor can the worker cancel it, when they
    said no to sharing. Shared, it is listed as ever."""
    import re

    from bot.access import Access
    from bot.config import Config

    P1, NO, YES = 3, 5, 6
    store = Store(tmp_path / "unshared.db")
    clock = {"now": T0}
    service = ConversationService(store, library, schedule=Schedule(store, clock=lambda: clock["now"]))
    access = Access(store, library, Config(roles={"practitioner": [P1]}))
    access.seed()
    flow = library.get("fgc-pre-conference")

    async def answer_all(h, user, share):
        made = await h.say(P1, "/invite fgc-pre-conference FGC-3 --for adult")
        code = re.search(r"\?start=(\S+)", made[-1].text).group(1)
        consent = (await h.say(user, f"/start {code}"))[-1]
        await h.press(user, consent, msg("staff.consent_yes"))
        pid = await h.frontend.db(service.person, f"tg:{user}")
        for _ in range(80):
            conv = await h.frontend.db(service.active, pid)
            if conv is None:
                break
            step = flow.by_id[conv.state]
            if step.id == "conference_date":
                said = "in 10 days"
            elif step.id == "share_with_coordinator":
                said = share
            elif step.type == "yesno":
                said = "no"
            elif step.type in ("choice", "multi"):
                said = step.options[0].id if step.id != "separate_arrangements" else "not_needed"
            else:
                said = "/skip" if step.optional else "Sam, his mum"
            await h.say(user, said)
        [conv] = store.conversations(person_id=pid)
        [date] = [r for r in store.scheduled_list(person_id=pid) if r["kind"] == "date"]
        return conv["id"], date["id"]

    async with running_bot(service, access=access) as h:
        unshared, hidden = await answer_all(h, NO, "no")
        assert not access.can_read(f"tg:{P1}", unshared)
        text = (await h.say(P1, "/case FGC-3"))[-1].text
        assert text.splitlines()[-1] == msg("schedule.case_none", ref="FGC-3")
        assert (await h.say(P1, f"/case FGC-3 cancel {hidden}"))[-1].text == \
            msg("schedule.cancel_unknown", id=hidden, ref="FGC-3")
        assert store.scheduled(hidden)["state"] == "pending"
        shared, shown = await answer_all(h, YES, "yes")
        assert access.can_read(f"tg:{P1}", shared)
        text = (await h.say(P1, "/case FGC-3"))[-1].text
        listed = text.split(msg("schedule.case_title", ref="FGC-3"))[1]
        assert f"• {shown}: " in listed
        assert msg("schedule.to_person", conversation=shared) in listed
        assert msg("schedule.to_person", conversation=unshared) not in listed
