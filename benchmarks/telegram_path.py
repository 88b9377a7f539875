"""Benchmark 2: the Telegram path, in one process, with no network.

The real bot (``build_application`` + ``TelegramFrontend`` + ConversationService + a WAL
file store with ``synchronous=FULL`` and the safeguarding detector in its worker process, as
``serve`` runs it) handles text-message updates
— users answering the 10-question flow — put on the Application's update queue; replies
go to :class:`~benchmarks.transport.MemoryBotAPI`, an in-memory ``BaseRequest``.

What the bot does per update, all of it measured: the per-chat ordering and the gate (rate
limits, private chats only), python-telegram-bot's handler dispatch, one hand-off to the
store thread (already-answered check, safeguarding screen, engine step, one group commit
with fsync), the reply — the next question with its buttons — through its own rate limiter
(``SendLimiter``, lifted to 10^6/s here) and, for an answer typed to a question with
buttons, the edit that closes them; the "delivered" mark goes into the next group commit.
It reads only the new message's id from Telegram's answer (``sending.send_message``);
python-telegram-bot's ``send_message`` would build a whole ``Message`` from it.

Baseline: a bare python-telegram-bot echo bot (``ApplicationBuilder`` defaults, one
``MessageHandler`` replying with the text through ``reply_text``, which does build the
``Message``; no store, no rate limiter, one update at a time) on the same transport, with
the same updates. The ratio bot/echo says how much of the time is python-telegram-bot's
own (issue 18: at least 0.30).
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import TEN_STEP_ANSWERS, TOKEN, Context, Figure, Target, detector_worker, safeguarding
from benchmarks.engine_store import _library
from benchmarks.transport import MemoryBotAPI, text_update


def _updates(users: list[int], bot) -> list:
    from telegram import Update

    out, uid = [], 1000
    for i, text in enumerate(TEN_STEP_ANSWERS):
        for u in users:
            uid += 1
            # numbered after every message the bot has sent so far (MemoryBotAPI numbers from
            # 10,000), as Telegram numbers a chat's messages both ways: the answer is to the
            # question the person saw, not text typed before it arrived
            out.append(Update.de_json(text_update(uid, u, text, 1_000_000 + i), bot))
    return out


async def _drive(app, updates) -> float:
    async with app:
        await app.start()
        try:
            t0 = time.perf_counter()
            for u in updates:
                app.update_queue.put_nowait(u)
            await app.update_queue.join()
            return time.perf_counter() - t0
        finally:
            await app.stop()


async def run_bot(db: Path, users: int, synchronous: str = "FULL", library=None, profile=None) -> float:
    from bot.conversation import ConversationService
    from bot.frontends.telegram.app import build_application, settle_heap
    from bot.store import Store

    from bot.access import Access
    from bot.config import Config

    store = Store(db, synchronous=synchronous)
    detector = safeguarding()
    # as serve runs it: the detector in its worker process (bot/safeguarding_worker.py)
    service = ConversationService(store, library or _library(), safeguarding=detector,
                                  detector_worker=detector_worker() if detector is not None else None)
    access = Access(store, service.library, Config(leads=[999], demo_flow="bench-ten"))
    from bot.frontends.telegram.limits import RateLimits

    app, frontend = build_application(service, TOKEN, max_rate=1_000_000, access=access, limits=RateLimits.unlimited())
    memory = MemoryBotAPI()
    # build_application has no parameter for the transport: swap the Bot's requests
    # before initialize() (see the report: a `request=` hook would make this public).
    app.bot._request = (MemoryBotAPI(), memory)  # noqa: SLF001
    ids = list(range(10_001, 10_001 + users))
    for u in ids:  # conversations already started; the measured updates are the answers
        pid = service.person(f"tg:{u}", f"User{u}")
        service.start(pid, "bench-ten", frontend="telegram", chat_id=str(u))
    updates = _updates(ids, app.bot)
    settle_heap()  # as serve does once everything is built (undone below: runs share the process)
    try:
        if profile is not None:
            profile.enable()
        elapsed = await _drive(app, updates)
        if profile is not None:
            profile.disable()
    finally:
        gc.unfreeze()
        frontend.close()
    done = sum(1 for u in ids if (c := store.conversations(person_id=store.person(f"tg:{u}"))) and c[-1]["status"] == "completed")
    store.close()
    if done != users or memory.calls["sendMessage"] != users * len(TEN_STEP_ANSWERS):
        raise AssertionError(f"bot run incomplete: {done}/{users} completed, calls {dict(memory.calls)}")
    return len(updates) / elapsed


async def run_echo(users: int) -> float:
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    memory = MemoryBotAPI()
    app = ApplicationBuilder().token(TOKEN).request(memory).get_updates_request(MemoryBotAPI()).build()

    async def echo(update, context):
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    updates = _updates(list(range(10_001, 10_001 + users)), app.bot)
    elapsed = await _drive(app, updates)
    if memory.calls["sendMessage"] != len(updates):
        raise AssertionError(f"echo run incomplete: {dict(memory.calls)}")
    return len(updates) / elapsed


def run(ctx: Context) -> list[Figure]:
    users = 30 if ctx.quick else 100
    folder = Path(tempfile.mkdtemp(prefix="bench-tg-", dir=ctx.workdir))
    library = _library()
    figures = []
    try:
        for sync in ("FULL", "NORMAL"):
            bot, echo = [], []
            for i in range(ctx.runs):
                bot.append(asyncio.run(run_bot(folder / f"tg-{sync}-{i}.db", users, sync, library)))
                echo.append(asyncio.run(run_echo(users)))
            ctx.log(f"  telegram {sync}: bot {[round(x) for x in bot]} echo {[round(x) for x in echo]}")
            figures.append(Figure(
                "telegram", f"telegram_{sync.lower()}", f"2. Telegram path updates/s (store synchronous={sync})",
                "updates/s", bot, "bare PTB echo", echo,
                [Target("ratio", ">=", 0.30, "bot/echo >= 0.30")] if sync == "FULL" else [],
                note="as serve runs it" if sync == "FULL" else "informational: the same without fsync per commit",
                extra={"updates_per_run": users * len(TEN_STEP_ANSWERS), "users": users,
                       "safeguarding": safeguarding() is not None}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures
