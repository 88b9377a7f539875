"""Benchmark 2: the Telegram path, in one process, with no network.

The real bot, assembled as ``restorative-bot serve`` assembles it (bot/cli.py ``serve``: a
configuration with a lead, the access rules seeded, escalation, reading reminders, the
schedule, the daily purge, the conversation service over an encrypted WAL file store with
``synchronous=FULL`` and the background checkpointer, the safeguarding detector in its
worker process, ``build_application`` and the frontend's start-up with its alert loop),
run by serve's own durable poller (``polling.poll``): the users' answers to the
10-question flow come from ``getUpdates`` on :class:`~benchmarks.transport.MemoryBotAPI`,
an in-memory ``BaseRequest``, and everything serve does per update is measured:

- parsing the batch (python-telegram-bot's ``get_updates``), the gate (private chats only,
  rate limits), and the durable inbox: each batch's raw updates committed (with fsync)
  before the next ``getUpdates`` confirms them;
- per chat in order: python-telegram-bot's handler dispatch, one hand-off to the store
  thread (already-answered check, safeguarding screen, engine step, one group commit with
  fsync), the reply — the next question with its buttons — through the bot's own rate
  limiter (``SendLimiter``, lifted to 10^6/s here) and, for an answer typed to a question
  with buttons, the edit that closes them; the "delivered" mark and the update leaving the
  inbox go into the next group commit, which the run waits for.

Baseline: a bare python-telegram-bot echo bot (``ApplicationBuilder`` defaults, PTB's own
``Updater.start_polling`` on the same transport, one ``MessageHandler`` replying with the
text through ``reply_text``; no store, no rate limiter, one update at a time), with the
same updates. The ratio bot/echo says how much of the time is python-telegram-bot's own
(issue 18: at least 0.30).
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import LEAD, TEN_STEP_ANSWERS, TOKEN, Context, Figure, Target, detector_worker, safeguarding
from benchmarks.engine_store import _library
from benchmarks.transport import MemoryBotAPI, text_update


def _updates(users: list[int]) -> list[dict]:
    """The users' answers, as the Bot API sends them: each round of answers after the last."""
    out, uid = [], 1000
    for i, text in enumerate(TEN_STEP_ANSWERS):
        for u in users:
            uid += 1
            # numbered after every message the bot has sent so far (MemoryBotAPI numbers from
            # 10,000), as Telegram numbers a chat's messages both ways: the answer is to the
            # question the person saw, not text typed before it arrived
            out.append(text_update(uid, u, text, 1_000_000 + i))
    return out


def assemble(db: Path, synchronous: str, library, memory: MemoryBotAPI, demo_flow: str = "bench-ten"):
    """The bot as bot/cli.py ``serve`` assembles it, on ``memory`` instead of HTTP; with the
    rate limits of people answering at machine speed, and the sending limit lifted."""
    from bot.access import Access
    from bot.config import Config
    from bot.conversation import ConversationService
    from bot.escalation import Escalation
    from bot.frontends.telegram.app import build_application
    from bot.frontends.telegram.limits import RateLimits
    from bot.reading import Reading
    from bot.retention import DailyPurge
    from bot.store import Store

    config = Config(leads=[LEAD], demo_flow=demo_flow)
    store = Store(db, synchronous=synchronous, keyring=config.keyring(create=True))  # encrypted, as always
    detector = safeguarding()
    service = ConversationService(store, library, safeguarding=detector, leads_configured=True,
                                  out_of_hours=config.out_of_hours, handback_minutes=config.present_handback_minutes,
                                  allow_unreviewed_languages=bool(config.allow_unreviewed_languages))
    # as serve runs it: the detector in its worker process (bot/safeguarding_worker.py)
    service.detector_worker = detector_worker() if detector is not None else None
    access = Access(store, library, config)
    access.seed()
    escalation = Escalation(store, detector, leads=config.leads, repeat_minutes=config.repeat_minutes,
                            telegram_names=config.people_names == "telegram",
                            present_idle_minutes=config.present_idle_minutes,
                            digest_lines=config.digest_lines) if detector is not None else None
    reading = Reading(store, access, leads=config.leads, read_within_hours=config.read_within_hours,
                      review_within_hours=config.review_within_hours)
    service.schedule = config.schedule(store)
    service.purger = DailyPurge(store, config.retention())
    app, frontend = build_application(service, TOKEN, max_rate=1_000_000, escalation=escalation, access=access,
                                      limits=RateLimits.unlimited(), reading=reading, request=memory)
    store.checkpoint_in_background()  # as serve: no reply waits for a WAL checkpoint
    return app, frontend, service


async def serve_until_handled(app, frontend, memory: MemoryBotAPI, updates: list[dict], what: str,
                              profile=None) -> float:
    """Run serve's own poller (polling.run) on ``memory`` until every update is handled and its
    inbox row and delivery mark are committed; the seconds that took. Closes the frontend."""
    from telegram import Update

    from bot.frontends.telegram.app import settle_heap
    from bot.frontends.telegram.polling import polling, serving

    elapsed = 0.0

    async def body(stop: asyncio.Event) -> None:
        nonlocal elapsed
        settle_heap()  # as serve does once everything is built (undone below: runs share the process)
        await app.bot.delete_webhook()
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        async with polling(app, frontend, timeout=30, allowed_updates=Update.ALL_TYPES, gate=frontend.gate,
                           loose=frontend.loose_order):
            memory.offer(updates)
            if not await frontend.wait_finished(lambda: frontend.finished_total >= len(updates), 600):
                raise AssertionError(f"{what} run stuck: {frontend.finished_total}/{len(updates)} handled")
        await frontend.db(lambda: None)  # the last deferred writes (inbox rows gone, delivered) committed
        elapsed = time.perf_counter() - t0
        if profile is not None:
            profile.disable()

    try:
        await serving(app, body, asyncio.Event())
    finally:
        gc.unfreeze()
        frontend.close()
    return elapsed


async def run_bot(db: Path, users: int, synchronous: str = "FULL", library=None, profile=None) -> float:
    memory = MemoryBotAPI()
    app, frontend, service = assemble(db, synchronous, library or _library(), memory)
    store = service.store
    ids = list(range(10_001, 10_001 + users))
    for u in ids:  # conversations already started; the measured updates are the answers
        pid = service.person(f"tg:{u}", None)
        service.start(pid, "bench-ten", frontend="telegram", chat_id=str(u))
    updates = _updates(ids)
    kept = 0
    keep = frontend.keep

    async def counted_keep(batch, raw=None):  # to check below that every update went through the inbox
        nonlocal kept
        kept += len(batch)
        return await keep(batch, raw)

    frontend.keep = counted_keep
    elapsed = await serve_until_handled(app, frontend, memory, updates, "bot", profile)
    done = sum(1 for u in ids if (c := store.conversations(person_id=store.person(f"tg:{u}"))) and c[-1]["status"] == "completed")
    left = len(store.inbox_pending())
    store.close()
    if done != users or memory.calls["sendMessage"] != users * len(TEN_STEP_ANSWERS) or kept != len(updates) or left:
        raise AssertionError(f"bot run incomplete: {done}/{users} completed, {kept} kept, {left} left in the inbox, "
                             f"calls {dict(memory.calls)}")
    return len(updates) / elapsed


async def run_echo(users: int, polled: bool = True) -> float:
    """The bare echo, polling the transport with PTB's own ``Updater``; or, not ``polled``,
    fed updates already parsed, straight onto its update queue (no transport, no parsing:
    the baseline before the Telegram path was measured from ``getUpdates``)."""
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, filters

    memory = MemoryBotAPI()
    app = ApplicationBuilder().token(TOKEN).request(memory).get_updates_request(memory).build()

    async def echo(update, context):
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    updates = _updates(list(range(10_001, 10_001 + users)))
    parsed = [] if polled else [Update.de_json(u, app.bot) for u in updates]
    async with app:
        await app.start()
        if polled:
            await app.updater.start_polling(timeout=30)
        try:
            t0 = time.perf_counter()
            if polled:
                memory.offer(updates)
                await memory.calls_reach("sendMessage", len(updates))
            else:
                for u in parsed:
                    app.update_queue.put_nowait(u)
            await app.update_queue.join()
            elapsed = time.perf_counter() - t0
        finally:
            if polled:
                await app.updater.stop()
            await app.stop()
    if memory.calls["sendMessage"] != len(updates):
        raise AssertionError(f"echo run incomplete: {dict(memory.calls)}")
    return len(updates) / elapsed


def run(ctx: Context) -> list[Figure]:
    users = 30 if ctx.quick else 100
    folder = Path(tempfile.mkdtemp(prefix="bench-tg-", dir=ctx.workdir))
    library = _library()
    figures = []
    extra = {"updates_per_run": users * len(TEN_STEP_ANSWERS), "users": users, "safeguarding": safeguarding() is not None}
    try:
        for sync in ("FULL", "NORMAL"):
            bot, echo, fed = [], [], []
            for i in range(ctx.runs):
                bot.append(asyncio.run(run_bot(folder / f"tg-{sync}-{i}.db", users, sync, library)))
                echo.append(asyncio.run(run_echo(users)))
                if sync == "FULL":
                    fed.append(asyncio.run(run_echo(users, polled=False)))
            ctx.log(f"  telegram {sync}: bot {[round(x) for x in bot]} echo {[round(x) for x in echo]}"
                    + (f" echo fed parsed updates {[round(x) for x in fed]}" if fed else ""))
            figures.append(Figure(
                "telegram", f"telegram_{sync.lower()}", f"2. Telegram path updates/s (store synchronous={sync})",
                "updates/s", bot, "bare PTB echo", echo,
                [Target("ratio", ">=", 0.30, "bot/echo >= 0.30")] if sync == "FULL" else [],
                note="as serve runs it, inbox included; both poll getUpdates on the same transport" if sync == "FULL"
                else "informational: the same without fsync per commit",
                extra=extra))
            if fed:
                figures.append(Figure(
                    "telegram", "telegram_full_vs_fed_echo",
                    "2b. The same bot runs vs an echo fed parsed updates (no transport)", "updates/s", bot,
                    "echo fed parsed updates", fed, [],
                    note="informational: the baseline before the path was measured from getUpdates "
                         "(the echo then neither polled nor parsed)", extra=extra))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures
