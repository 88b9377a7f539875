"""What each answer costs in Telegram's 30 messages a second (issue 18): one message per
answer. The calls the limit applies to are those to a chat (sendMessage and the edits that
close an old question's buttons); answerCallbackQuery, the small notice answering a button
press, is not a message to a chat and is counted apart."""

import asyncio
import json
from collections import Counter

import pytest

from bot.conversation import ConversationService
from bot.store import Store
from bot.testing.telegram import running_bot
from tests.test_telegram import start_flow


@pytest.fixture
async def bot(tmp_path, library):
    service = ConversationService(Store(tmp_path / "calls.db"), library)
    async with running_bot(service) as h:
        yield h


def _calls(h, user, since):
    """(method, kind) of every call since ``since`` for this user's chat, in order."""
    out = []
    for c in h.fake.calls[since:]:
        if c.method == "answerCallbackQuery":
            out.append(c.method)
        elif str(c.params.get("chat_id")) == str(user):
            out.append(c.method)
    return out


async def test_the_scaling_checkin_costs_one_message_per_answer(bot):
    """The route the HTTP benchmark takes (scripts/bench http): 9 inputs, 9 messages."""
    h, u = bot, 61
    since = len(h.fake.calls)
    menu = await h.say(u, "/start")  # greeting and menu: one message
    who = await h.press(u, menu[-1], "How are things going?")
    started = await h.press(u, who[-1], "A parent, carer or other adult in the family")
    scale = await h.say(u, "hopes of 61")
    await h.press(u, scale[-1], "6")
    await h.say(u, "reason of 61")
    good = await h.say(u, "different for 61")
    await h.press(u, good[-1], "9")
    end = await h.say(u, "nothing else from 61")
    assert [len(m) for m in (menu, who, started, scale, good, end)] == [1, 1, 1, 1, 1, 1]
    assert "Thank you" in end[-1].text
    calls = _calls(h, u, since)
    # the closing edits (menu and "who" buttons taken away, pressed answers marked) are
    # sent here: nothing waits behind the limit, so none is dropped (bot.frontends.telegram.sending)
    assert Counter(calls) == {"sendMessage": 9, "answerCallbackQuery": 4, "editMessageReplyMarkup": 2,
                              "editMessageText": 2}
    inputs = 9
    messages = sum(1 for c in calls if c == "sendMessage")
    assert messages / inputs == 1.0


async def test_a_reply_does_not_wait_for_the_answer_to_its_button_press(bot):
    """answerCallbackQuery (ending the button's spinner) goes beside the reply and is awaited
    at the end of the update: with hundreds pressing at once, replies queued for the limit
    only after their own answer's round trip (scripts/bench http, the rounds with buttons)."""
    h, u = bot, 62
    await start_flow(h, u, "scaling-checkin")
    scale = (await h.say(u, "hopes of 62"))[-1]
    answered = len([c for c in h.fake.answered_callbacks if c.user_id == u])
    crawling = asyncio.Event()
    h.fake.fail_next("answerCallbackQuery", hold=crawling)  # the answer to the press waits until set
    before = len(h.fake.messages(u))
    uid = h.fake.press_button(u, scale.message_id, next(
        cb for row in h.fake.buttons(scale) for (t, cb) in row if t == "6"))
    reply = await h.fake.wait_for(lambda: next(
        (m for m in h.fake.messages(u)[before:] if "What puts you at 6 and not lower?" in (m.text or "")), None), 30)
    assert reply is not None
    assert len([c for c in h.fake.answered_callbacks if c.user_id == u]) == answered  # still on its way
    crawling.set()
    # the update ends once the answer has gone too (its reply may be on record as delivered
    # before that, so wait for the update's end, not for the delivery record)
    assert await h.frontend.wait_finished(lambda: uid in h.frontend.finished, 30)
    assert len([c for c in h.fake.answered_callbacks if c.user_id == u]) == answered + 1


async def test_a_reply_is_on_record_as_delivered_without_waiting_for_its_closing_edit(bot):
    """A typed answer closes the old question's buttons with an edit that may wait long
    behind other people's replies. The reply's delivery is recorded as soon as it has gone,
    not after that edit: a bot killed meanwhile sent the reply again on restart, after the
    person had answered on (scripts/bench peer, 6b: 15 of 20 kept, then 20 of 20)."""
    h, u = bot, 63
    await start_flow(h, u, "scaling-checkin")
    await h.say(u, "hopes of 63")  # the scale question, with its buttons
    h.fake.fail_next("editMessageText", retry_after=10)  # closing its buttons waits 10 s (a 429)
    uid = h.fake.inject_message(u, "6")
    await h.fake.wait_for(lambda: any("What puts you at 6 and not lower?" in (m.text or "")
                                      for m in h.fake.messages(u)), 10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 6
    while not (await h.frontend.db(h.service.store.seen_input, f"tg:{uid}"))["delivered"]:
        assert loop.time() < deadline, "the reply's delivery was recorded only after the closing edit"
        await asyncio.sleep(0.05)
    assert uid not in h.frontend.finished  # the update itself still waits for its edit
    await h.delivered(uid, timeout=30)



async def test_a_typed_answer_s_closing_edit_goes_after_its_reply_in_the_same_update_without_a_task(bot):
    """The edit closing the old question's buttons is left for the end of the update, after the
    reply: it costs no task of its own (and so no turn of the event loop to start one), and
    the reply never waits behind it (issue 18)."""
    h, u = bot, 64
    fe = h.frontend
    await start_flow(h, u, "scaling-checkin")
    await h.say(u, "hopes of 64")  # now at the 0-10 question, with buttons
    tasks, beside = [], fe._beside

    def watched(coro):
        tasks.append(coro)
        return beside(coro)

    fe._beside = watched
    try:
        since = len(h.fake.calls)
        uid = h.fake.inject_message(u, "6")  # typed, not pressed: the question's buttons are closed by an edit
        assert await fe.wait_finished(lambda: uid in fe.finished, 10)
    finally:
        fe._beside = beside
    assert tasks == []
    calls = [c for c in h.fake.calls[since:] if str(c.params.get("chat_id")) == str(u)]
    assert [c.method for c in calls] == ["sendMessage", "editMessageText"]
    assert "What puts you at 6 and not lower?" in calls[0].params["text"]
    assert calls[1].params["text"].endswith("6") and "reply_markup" not in calls[1].params


async def test_a_button_answer_s_task_leaves_no_reference_cycle_behind(bot):
    """The task answering a button press beside the replies is freed as soon as it is done:
    its context does not reach back to it (through the update's list of such tasks), so a busy
    bot does not leave one cycle per press for the garbage collector to find."""
    import gc
    import weakref

    h, u = bot, 62
    fe = h.frontend
    await start_flow(h, u, "scaling-checkin")
    scale = (await h.say(u, "hopes of 62"))[-1]  # now at the 0-10 question, with buttons
    refs, beside = [], fe._beside

    def watched(coro):
        task = beside(coro)
        refs.append(weakref.ref(task))
        return task

    fe._beside = watched
    gc.disable()  # freed by reference counting alone, or not at all
    try:
        uid = h.fake.press_button(u, scale.message_id, next(
            cb for row in h.fake.buttons(scale) for (t, cb) in row if t == "6"))
        assert await fe.wait_finished(lambda: uid in fe.finished, 10)
        assert len(refs) == 1
        await h.fake.wait_for(lambda: refs[0]() is None, 10)
    finally:
        gc.enable()
        fe._beside = beside


async def test_the_bot_s_own_sends_go_through_its_limiter_and_log_no_words(bot, caplog):
    """sending.post, the short way to the Bot API for the bot's own messages and edits: each
    call is paced by the bot's limiter, a 429 is waited out and tried again there, and the
    request is what python-telegram-bot would send (buttons as JSON, ids as numbers); and no
    log line carries the words, even with python-telegram-bot's debug logging on (its own
    ``Bot._post`` logs every call's parameters)."""
    import logging

    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    from bot.frontends.telegram.sending import REPLY, edit_message, send_message

    h, u = bot, 65
    limiter = h.app.bot.rate_limiter
    sent = limiter.sent[REPLY]
    caplog.set_level(logging.DEBUG)
    h.fake.fail_next("sendMessage", retry_after=1)  # the first try is told to wait a second
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="x:1"),
                                    InlineKeyboardButton("No", callback_data="x:0")]])
    mid = await send_message(h.app.bot, u, "private words 65", markup)
    await edit_message(h.app.bot, u, mid, "private words 65, answered")
    assert limiter.sent[REPLY] == sent + 3  # the 429, the retry, the edit
    message = next(m for m in h.fake.messages(u) if m.message_id == mid)
    assert message.text == "private words 65, answered"
    assert [c.method for c in h.fake.calls if str(c.params.get("chat_id")) == str(u)] == \
        ["sendMessage", "sendMessage", "editMessageText"]
    first = next(c for c in h.fake.calls if c.method == "sendMessage" and str(c.params.get("chat_id")) == str(u))
    reply_markup = first.params["reply_markup"]
    assert (json.loads(reply_markup) if isinstance(reply_markup, str) else reply_markup) == {"inline_keyboard": [[{"text": "Yes", "callback_data": "x:1"},
                                                                  {"text": "No", "callback_data": "x:0"}]]}
    assert not [r for r in caplog.records if "private words" in r.getMessage() or "private words" in str(r.args)]
