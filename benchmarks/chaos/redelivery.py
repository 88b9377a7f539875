"""Committed input whose reply was not sent: redelivered, or the bot killed before sending; sent once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

from benchmarks.chaos.checks import (
    _db,
)
from benchmarks.chaos.flow import (
    CHAOS_FLOW,
    FLOW_ID,
    TAG,
)
from benchmarks.common import start_serve, write_flow
from benchmarks.users import WatchedFake


async def check_redelivery(folder: Path) -> list[str]:
    """An input committed whose reply could not be sent (every send failed), then the same
    update delivered again: the person must get the committed reply, once. Typed answer
    and button press alike."""
    from benchmarks.common import safeguarding
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.store import Store
    from bot.testing.telegram import running_bot

    problems = []
    service = ConversationService(Store(folder / "redeliver.db"), FlowLibrary.load(), safeguarding=safeguarding())
    async with running_bot(service) as h:
        f, u = h.fake, 31_337
        before = len(f.messages(u))
        f.inject_command(u, "/start")
        menu = await h.keyboard_after(u, before)
        await h.delivered(f.press_button(u, menu.message_id, "s:scaling-checkin"))
        await h.who(u, before)  # "Who is filling this in?": a parent or carer

        async def case(name: str, act, expect: str) -> None:
            f.fail_next("sendMessage", status=500, count=50)  # the bot gives up sending
            f.fail_next("editMessageText", status=500, count=50)
            uid = act()
            with contextlib.suppress(TimeoutError):
                await f.wait_for(lambda: f.is_confirmed(uid) and not f.pending_updates, 10)
            await asyncio.sleep(2.0)  # its retries run out
            f.clear_faults()
            n = len(f.messages(u))
            f.redeliver(uid)
            try:
                await f.wait_for(lambda: any(expect in (m.text or "") for m in f.messages(u)[n:]), 8)
            except TimeoutError:
                got = [(m.text or "")[:60] for m in f.messages(u)[n:]]
                problems.append(f"redelivery after commit ({name}): the committed reply {expect!r} was never sent;"
                                f" got {got} and callback answers {[c.text for c in f.answered_callbacks[-2:]]}")

        await case("typed answer", lambda: f.inject_message(u, "We talk more"), "where are things now")
        scale = next(m for m in reversed(f.messages(u)) if "where are things now" in (m.text or ""))
        data = next(cb for row in f.buttons(scale) for t, cb in row if t == "5")
        await case("button press", lambda: f.press_button(u, scale.message_id, data), "What puts you at 5")
    service.store.close()
    return problems


async def check_restart_sends_committed_replies(folder: Path) -> list[str]:
    """kill -9 between an answer's commit and the record that its reply was delivered
    (the reply is on its way, held by the server, and never arrives): after the restart
    the person gets that reply exactly once, and the conversation goes on with nothing
    lost or sent twice. (python-telegram-bot confirms an update, by asking for the next
    ones, as soon as it has fetched it, so Telegram may not deliver it again.)"""
    problems = []
    flows = folder / "flows"
    write_flow(flows, FLOW_ID, CHAOS_FLOW)
    db, log = folder / "restart.db", folder / "serve.log"
    async with WatchedFake() as fake:
        polls = fake.polls

        async def up():
            nonlocal polls
            with open(log, "ab") as err:
                proc = await start_serve(db, fake, folder, flows=[flows], stderr=err, demo_flow=FLOW_ID)
            end = time.monotonic() + 60
            while fake.polls <= polls and time.monotonic() < end and proc.returncode is None:
                await asyncio.sleep(0.02)
            polls = fake.polls
            return proc

        proc = await up()
        try:
            u = 31_338
            before = fake.count(u)
            fake.inject_command(u, "/start")
            menu = await fake.wait_new(u, before, lambda m: bool(fake.buttons(m)), 20)
            before = fake.count(u)
            fake.press_button(u, menu.message_id, f"s:{FLOW_ID}")
            await fake.wait_new(u, before, lambda m: "[q1]" in (m.text or ""), 20)
            # the reply to the next answer is held, then its connection dropped: it never arrives
            fake.fail_next("sendMessage", delay=30, drop_connection=True)
            before = fake.count(u)
            uid = fake.inject_message(u, "it happened at school")
            # the answer is committed and its reply is on its way (whether or not the update has
            # been confirmed to Telegram yet: the bot confirms only after handling a batch)
            await fake.wait_for(lambda: fake.calls_to("sendMessage")[-1].status is None, 20)
            # a reply goes out only after its input is committed: the answer is in the database
            conn = _db(db)
            row = conn.execute("SELECT delivered_at FROM inputs WHERE key = ?", (f"tg:{uid}",)).fetchone()
            conn.close()
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            fake.clear_faults()
            if row is None:
                return ["restart check: a reply was on its way before its answer was committed"]
            if row[0] is not None:
                return ["restart check: the reply was recorded as delivered before it had arrived"]
            proc = await up()
            m = await fake.wait_new(u, before, lambda m: "[q2]" in (m.text or ""), 15)
            if m is None:
                problems.append("after kill -9 and restart, a committed answer's reply (the next question) was never"
                                " sent: the update had been confirmed to Telegram, so it is not delivered again, and"
                                " nothing resends committed replies not yet delivered")
                return problems
            # the conversation goes on: the next answer, and its reply
            fake.press_button(u, m.message_id, next(cb for row in fake.buttons(m) for (t, cb) in row if t == "4"))
            if await fake.wait_new(u, before, lambda m: "[q3]" in (m.text or ""), 15) is None:
                problems.append("after kill -9 and restart, the next answer got no reply")
            tags = [t for m in fake.bot_msgs.get(u, [])[before:] for t in TAG.findall(m.text or "")]
            if tags != ["q2", "q3"]:
                problems.append(f"after kill -9 between commit and delivery record, the questions sent were {tags},"
                                " not q2 then q3 once each")
            conn = _db(db)
            answers = conn.execute("SELECT step_id, value FROM answers a JOIN conversations c ON c.id ="
                                   " a.conversation_id JOIN people p ON p.id = c.person_id WHERE p.key = ?"
                                   " ORDER BY a.step_id", (f"tg:{u}",)).fetchall()
            conn.close()
            if [(s, v) for s, v in answers] != [("q1", '"it happened at school"'), ("q2", "4")]:
                problems.append(f"after kill -9 between commit and delivery record, the answers kept are {answers}")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
    return problems
