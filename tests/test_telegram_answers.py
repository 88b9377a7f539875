"""Over Telegram, a typed answer lands on the question the person saw (issue 10, item 4):
the real python-telegram-bot Application against the fake Bot API (bot/testing/)."""

import types

import pytest

from bot.conversation import ConversationService
from bot.frontends.telegram.app import TelegramFrontend
from bot.messages import msg
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot
from tests.test_telegram import answers_of, start_flow


@pytest.fixture
async def bot(tmp_path, library):
    service = ConversationService(Store(tmp_path / "tg.db"), library, safeguarding=SafeguardingConfig.load())
    async with running_bot(service) as h:
        yield h


def buttons(h, message):
    return [t for row in h.fake.buttons(message) for (t, _) in row]


async def test_a_retype_after_a_slow_reply_does_not_answer_the_next_question(bot):
    h, user = bot, 41
    q1 = (await start_flow(h, user, "three-columns"))[-1]
    assert q1.text.split("\n\n")[-1] == "Question 1\nWhat are you worried about?"  # after the flow's intro
    sends = len(h.fake.calls_to("sendMessage"))
    h.fake.fail_next("sendMessage", delay=0.5)  # the reply to the answer is slow to go out
    first = h.fake.inject_message(user, "The children missing school")
    await h.fake.wait_for(lambda: len(h.fake.calls_to("sendMessage")) > sends, 5)  # committed; reply on its way
    retype = h.fake.inject_message(user, "The children missing school")  # nothing came back yet: typed again
    await h.delivered(first)
    await h.delivered(retype)
    q2, confirm = h.fake.messages(user)[-2:]
    assert q2.text == "Question 2\nWhat's working well?"
    retyped = h.fake.message(user, q2.message_id - 1)  # the retype reached Telegram before the slow reply
    assert (retyped.from_bot, retyped.text) == (False, "The children missing school")
    assert confirm.text == msg("answers.stale", text="The children missing school", question="What's working well?")
    assert buttons(h, confirm) == [msg("answers.stale_yes"), msg("answers.stale_no")]
    assert answers_of(h, user) == {"worried_about": "The children missing school"}  # the next one is unchanged
    transcript = h.service.store.transcript(h.service.store.conversations(
        person_id=h.service.store.person(f"tg:{user}"))[-1]["id"])
    assert [(t["text"], t["step_id"]) for t in transcript if t["direction"] == "in"][-2:] == [
        ("The children missing school", "worried_about"), ("The children missing school", "worried_about")]

    # "No": the question is asked again, and the answer typed after seeing it is the answer
    shown = await h.press(user, confirm, msg("answers.stale_no"))
    assert [m.text for m in shown] == ["Question 2\nWhat's working well?"]
    await h.say(user, "Gran picks them up")
    assert answers_of(h, user) == {"worried_about": "The children missing school",
                                   "working_well": "Gran picks them up"}


async def test_a_reply_to_an_earlier_question_asks_before_it_is_applied(bot):
    h, user = bot, 42
    q1 = (await start_flow(h, user, "three-columns"))[-1]
    await h.say(user, "Missed school")
    before = len(h.fake.messages(user))
    uid = h.fake.inject_message(user, "and being late", reply_to_message_id=q1.message_id)
    await h.delivered(uid)
    [confirm] = h.fake.messages(user)[before:]
    assert confirm.text.startswith("You sent “and being late”")
    assert answers_of(h, user) == {"worried_about": "Missed school"}
    shown = await h.press(user, confirm, msg("answers.stale_yes"))
    assert shown[-1].text == "Question 3\nWhat needs to happen?"
    assert answers_of(h, user) == {"worried_about": "Missed school", "working_well": "and being late"}
    # replying to the question now asked answers it at once
    q3 = shown[-1]
    uid = h.fake.inject_message(user, "A routine", reply_to_message_id=q3.message_id)
    await h.delivered(uid)
    assert answers_of(h, user)["needs_to_happen"] == "A routine"


async def test_typing_the_why_option_in_the_rehearsal_raises_no_alert_and_shows_the_feedback(bot):
    h, user = bot, 43
    await start_flow(h, user, "restorative-rehearsal")
    shown = await h.say(user, "Why did you push him?")
    assert shown[0].text.startswith("The restorative opening is \"What happened?\"")
    assert h.service.store.alerts() == []
    assert answers_of(h, user) == {"opening": "why"}


def test_the_question_seen_is_the_one_replied_to_or_the_last_sent_before_the_message(service):
    fe = TelegramFrontend(service)
    try:
        def message(mid, reply_to=None):
            return types.SimpleNamespace(message_id=mid, reply_to_message=None if reply_to is None
                                         else types.SimpleNamespace(message_id=reply_to))

        assert fe._seen(7, message(5)) is None  # nothing known (e.g. just restarted): the current question
        fe._note_asked(7, 10, 1, "q1")
        fe._note_asked(7, 13, 1, "q2")
        assert fe._seen(7, message(12)) == (1, "q1")  # typed before q2 arrived
        assert fe._seen(7, message(14)) == (1, "q2")
        assert fe._seen(7, message(14, reply_to=10)) == (1, "q1")
        assert fe._seen(7, message(14, reply_to=11)) == (1, "q2")  # a reply to something else: by order
        assert fe._seen(7, message(9)) == (None, None)  # before every question known: not the current one
        for i in range(20):
            fe._note_asked(7, 100 + i, 2, f"s{i}")
        assert len(fe._asked[7]) == 16  # bounded
    finally:
        fe.close()


async def test_a_message_typed_while_the_bot_was_down_does_not_answer_the_question_sent_on_restart(tmp_path, library):
    """The answer was committed but its reply (the next question) never got out; the person,
    seeing nothing, typed again while the bot was down. On restart the bot sends the next
    question it owed, and the message typed before it is not taken as its answer."""
    from bot.testing.fake_bot_api import FakeBotAPI

    db, user = tmp_path / "restart.db", 44
    async with FakeBotAPI() as fake:
        service = ConversationService(Store(db), library, safeguarding=SafeguardingConfig.load())
        async with running_bot(service, fake=fake) as h:
            await start_flow(h, user, "three-columns")
            fake.fail_next("sendMessage", status=500, count=1000)  # nothing more gets out
            first = fake.inject_message(user, "Missed school")
            key = f"tg:{first}"
            await fake.wait_for(lambda: len([c for c in fake.calls_to("sendMessage") if c.fault]) >= 4, 20)
            assert (await h.frontend.db(service.store.seen_input, key)) is not None  # committed
            assert answers_of(h, user) == {"worried_about": "Missed school"}
        fake.clear_faults()
        retype = fake.inject_message(user, "Missed school")  # typed while the bot was down
        service = ConversationService(Store(db), library, safeguarding=SafeguardingConfig.load())
        async with running_bot(service, fake=fake) as h:
            await h.delivered(retype)
            texts = [m.text for m in fake.messages(user) if m.message_id > fake.message(user, first).message_id]
            assert "Question 2\nWhat's working well?" in texts  # the reply owed from before the restart
            assert texts[-1] == msg("answers.stale", text="Missed school", question="What's working well?")
            assert answers_of(h, user) == {"worried_about": "Missed school"}


async def test_yes_under_an_earlier_confirm_never_stores_the_later_text(bot):
    """Two messages typed while the next question was slow: two "is that your answer?". The
    second replaces the first (its buttons go); a press still arriving for the first (its
    edit not yet shown, or an old client) saves nothing, says so and shows the one waiting."""
    h, user = bot, 43
    await start_flow(h, user, "three-columns")
    sends = len(h.fake.calls_to("sendMessage"))
    h.fake.fail_next("sendMessage", delay=0.5)  # the next question is slow to go out
    first = h.fake.inject_message(user, "Missed school")
    await h.fake.wait_for(lambda: len(h.fake.calls_to("sendMessage")) > sends, 5)
    b = h.fake.inject_message(user, "Gran helps")  # both typed before the question arrived
    c = h.fake.inject_message(user, "oops typo")
    for u in (first, b, c):
        await h.delivered(u)
    confirms = [m for m in h.fake.messages(user) if m.from_bot and (m.text or "").startswith("You sent")]
    about_b, about_c = confirms
    assert "Gran helps" in about_b.text and "oops typo" in about_c.text
    await h.fake.wait_for(lambda: not h.fake.buttons(about_b), 5)  # the earlier confirm's buttons are gone
    assert buttons(h, about_c) == [msg("answers.stale_yes"), msg("answers.stale_no")]
    data = {t: cb for row in h.fake.buttons(about_c) for (t, cb) in row}
    assert all(len(cb.encode()) <= 64 for cb in data.values())
    conv = data[msg("answers.stale_yes")].split(":")[1]
    ref_c = int(data[msg("answers.stale_yes")].split(":")[3])
    transcript = h.service.store.transcript(int(conv))
    ref_b = next(t["id"] for t in transcript if t["direction"] == "in" and t["text"] == "Gran helps")
    assert ref_b != ref_c

    # "Yes" as it was under the first confirm, and a button from before they named their text
    for old in (f"p:{conv}:y:{ref_b}", f"p:{conv}:y"):
        before = len(h.fake.messages(user))
        await h.delivered(h.fake.press_button(user, about_b.message_id, old, force=True))  # a stale client
        shown = h.fake.messages(user)[before:]
        assert answers_of(h, user) == {"worried_about": "Missed school"}, old
        assert msg("answers.stale_gone") in shown[0].text, old
        assert shown[-1].text.endswith(about_c.text), old
        assert {t: cb for row in h.fake.buttons(shown[-1]) for (t, cb) in row} == data, old

    # "Yes" under the confirm shown now stores its own words; neither text was lost
    await h.press(user, shown[-1], msg("answers.stale_yes"))
    assert answers_of(h, user) == {"worried_about": "Missed school", "working_well": "oops typo"}
    said = [t["text"] for t in h.service.store.transcript(int(conv)) if t["direction"] == "in"]
    assert "Gran helps" in said and "oops typo" in said
