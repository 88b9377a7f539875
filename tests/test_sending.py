"""The sending limiter (bot/frontends/telegram/sending.py): questions and replies before the
edits that close old buttons, closing edits dropped (never a question) when the limit is the
bottleneck, and a 429 for one chat holding up no other chat (issue 18, item 5)."""

import asyncio
import time

from telegram.error import RetryAfter

from bot.frontends.telegram.sending import CLOSING, REPLY, SendLimiter, closing_edit


async def _call(limiter: SendLimiter, chat: int, label: str, log: list, *, closing: bool = False, fail=None):
    async def callback():
        if fail is not None:
            fail()
        log.append(label)
        return {"ok": label}

    if closing:
        with closing_edit():
            return await limiter.process_request(callback, (), {}, "editMessageText", {"chat_id": chat}, None)
    return await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": chat}, None)


async def test_a_saturated_limiter_sends_every_question_and_reply_before_any_closing_edit():
    # one at a time (burst 1), and more waiting than can go at once; nothing old enough to drop
    limiter = SendLimiter(max_rate=200, burst=1, close_patience=1000)
    log: list[str] = []
    calls = []
    for i in range(6):  # arrivals interleaved: a closing edit, then the reply of the same answer
        calls.append(_call(limiter, 100 + i, f"close {i}", log, closing=True))
        calls.append(_call(limiter, 100 + i, f"reply {i}", log))
    results = await asyncio.gather(*calls)
    await limiter.shutdown()
    assert log == [f"reply {i}" for i in range(6)] + [f"close {i}" for i in range(6)]
    assert results == [{"ok": f"{kind} {i}"} for i in range(6) for kind in ("close", "reply")]
    assert limiter.sent == {REPLY: 6, CLOSING: 6} and limiter.dropped == 0


async def test_under_the_limit_closing_edits_are_dropped_and_questions_never_are():
    # 10 a second, patience half a second: more than 5 waiting means the limit is the bottleneck
    limiter = SendLimiter(max_rate=10, burst=1, close_patience=0.5)
    log: list[str] = []
    closes = [_call(limiter, 200 + i, f"close {i}", log, closing=True) for i in range(4)]
    replies = [_call(limiter, 300 + i, f"reply {i}", log) for i in range(8)]
    late = [_call(limiter, 400, "late close", log, closing=True)]  # arrives while saturated
    results = await asyncio.gather(*closes, *replies, *late)
    await limiter.shutdown()
    assert log == [f"reply {i}" for i in range(8)]  # every reply, in order; no closing edit went
    assert results[:4] == [True] * 4 and results[-1] is True  # a dropped edit looks accepted
    assert results[4:12] == [{"ok": f"reply {i}"} for i in range(8)]
    assert limiter.dropped == 5 and limiter.sent == {REPLY: 8, CLOSING: 0}


async def test_a_closing_edit_goes_when_the_limit_is_not_the_bottleneck():
    limiter = SendLimiter(max_rate=10, burst=1, close_patience=0.5)
    log: list[str] = []
    results = await asyncio.gather(_call(limiter, 1, "close", log, closing=True), _call(limiter, 1, "reply", log))
    await limiter.shutdown()
    assert log == ["reply", "close"] and results == [{"ok": "close"}, {"ok": "reply"}] and limiter.dropped == 0


async def test_a_closing_edit_goes_at_once_when_nothing_waits_and_a_token_stays_for_a_reply():
    """Below the limit a closing edit (sent at the end of its update, after the reply) takes
    its token at once, without the dispatcher, but only while a second token is left: a reply
    arriving next never waits for a token an edit took."""
    now = [0.0]
    limiter = SendLimiter(max_rate=1, burst=3, close_patience=1000, clock=lambda: now[0])
    log: list[str] = []
    assert await _call(limiter, 1, "close A", log, closing=True) == {"ok": "close A"}  # 3 tokens: at once
    assert await _call(limiter, 2, "close B", log, closing=True) == {"ok": "close B"}  # 2 tokens: at once
    assert limiter._task is None  # no dispatcher was needed for them
    # one token left: C queues, as every closing edit did, and a reply arriving in the same
    # turn of the event loop goes first
    c = asyncio.ensure_future(_call(limiter, 3, "close C", log, closing=True))
    reply = asyncio.ensure_future(_call(limiter, 4, "reply", log))
    assert await asyncio.wait_for(reply, 20) == {"ok": "reply"}  # took the last token
    assert not c.done() and limiter.waiting() == [CLOSING]
    limiter.clock = lambda: time.monotonic() + 1000  # from now on time runs: C gets a token
    assert await asyncio.wait_for(c, 20) == {"ok": "close C"}
    await limiter.shutdown()
    assert log == ["close A", "close B", "reply", "close C"] and limiter.sent == {REPLY: 1, CLOSING: 3}


async def test_a_429_for_one_chat_holds_that_chat_only():
    limiter = SendLimiter(max_rate=1000)
    log: list[str] = []
    told = asyncio.Event()

    def flood_wait():
        told.set()
        raise RetryAfter(30)  # chat A must wait half a minute

    held = asyncio.ensure_future(_call(limiter, 1, "A", log, fail=flood_wait))
    await told.wait()
    # chat B's reply goes at once, while A is still held; and a second call for A waits with A
    second_a = asyncio.ensure_future(_call(limiter, 1, "A again", log))
    assert await asyncio.wait_for(_call(limiter, 2, "B", log), 20) == {"ok": "B"}
    assert log == ["B"] and not held.done() and not second_a.done()
    assert limiter.waiting() == [REPLY, REPLY]  # A's two calls
    await limiter.shutdown()
    for task in (held, second_a):
        task.cancel()
    await asyncio.gather(held, second_a, return_exceptions=True)


async def test_a_429_is_retried_after_the_wait_and_then_goes():
    limiter = SendLimiter(max_rate=1000)
    log: list[str] = []
    attempts = []

    def once():
        attempts.append(1)
        if len(attempts) == 1:
            raise RetryAfter(0)

    assert await _call(limiter, 5, "A", log, fail=once) == {"ok": "A"}
    await limiter.shutdown()
    assert len(attempts) == 2 and log == ["A"]


async def test_a_reply_sent_at_once_below_the_limit_never_passes_one_already_waiting():
    """Below the limit a reply takes its token at once, without the dispatcher; but never
    while another call waits, even when a token has come free (order is kept)."""
    now = [0.0]
    limiter = SendLimiter(max_rate=1, burst=1, clock=lambda: now[0])
    log: list[str] = []
    assert await _call(limiter, 1, "A", log) == {"ok": "A"}  # the one token: at once
    assert limiter._task is None  # no dispatcher was needed for it
    b = asyncio.ensure_future(_call(limiter, 2, "B", log))  # no token left: B waits
    while limiter.waiting() != [REPLY]:
        await asyncio.sleep(0)
    for _ in range(10):  # the dispatcher, seeing no token, sleeps for one (a second)
        await asyncio.sleep(0)
    # a token comes free, and C arrives before the dispatcher wakes to give it to B
    limiter.clock = lambda: time.monotonic() + 1000  # from now on time runs (past every moment above)
    c = asyncio.ensure_future(_call(limiter, 3, "C", log))
    assert await asyncio.wait_for(asyncio.gather(b, c), 20) == [{"ok": "B"}, {"ok": "C"}]
    await limiter.shutdown()
    assert log == ["A", "B", "C"] and limiter.sent == {REPLY: 3, CLOSING: 0}


async def test_calls_without_a_chat_go_a_few_at_a_time_and_leave_the_connections_to_replies():
    """answerCallbackQuery is not paced, but hundreds at once would take every connection of
    the pool and each reply would wait for one after its turn had come."""
    limiter = SendLimiter(max_rate=1000, unpaced_at_once=4)
    running, most, release = [0], [0], asyncio.Event()

    async def answer():
        running[0] += 1
        most[0] = max(most[0], running[0])
        await release.wait()
        running[0] -= 1
        return True

    answers = [asyncio.ensure_future(limiter.process_request(answer, (), {}, "answerCallbackQuery",
                                                             {"callback_query_id": str(i)}, None))
               for i in range(20)]
    while running[0] < 4:
        await asyncio.sleep(0)
    log: list[str] = []
    assert await asyncio.wait_for(_call(limiter, 9, "reply", log), 20) == {"ok": "reply"}  # not behind them
    assert running[0] == 4 and most[0] == 4
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*answers), 20) == [True] * 20
    assert most[0] == 4
    await limiter.shutdown()
