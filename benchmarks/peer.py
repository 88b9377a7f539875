"""Benchmark 6: a peer baseline — the scaling check-in written without this project.

The same check-in (best hopes, where are things now 0-10, what puts you there and not lower,
what would be different one point up, what number would be good enough, anything else) the
way a python-telegram-bot user would write it: a ``ConversationHandler`` whose states are
the questions, answers in ``context.user_data``, and ``PicklePersistence`` (the library's
own recommended persistence, defaults: one file, written every 60 s and on shutdown).

Measured beside our bot (as serve runs it: serve's poller and inbox, safeguarding in its
worker), both polling getUpdates on the same in-memory transport (:mod:`benchmarks.transport`),
with 100, 10,000 and 100,000 conversations already stored (in progress: the pickle's
conversations and user_data; our SQLite database's conversations, answers, transcript and
inputs): updates/s for 100 people answering the whole check-in, counted until their
answers are on disk (the peer's handling, then the one write of its pickle that makes them
durable; ours commits each answer before replying), and the peer's write of its pickle
alone (what it pays, on the event loop, every 60 s).

And what each survives: 20 people answer three of the six questions over HTTP against the
fake Bot API server, the bot process is killed with SIGKILL, restarted, and each person
answers the fourth: counted are the people whose three answers were kept and who were
asked the right next question.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, TOKEN, Context, Figure, Target

ANSWERS = ["we talk more", "6", "we eat together", "less shouting", "8", "nothing else"]
QUESTIONS = [
    "What are your best hopes from our talking together?",
    "On a scale of 0 to 10, where 0 is the worst things have been and 10 is your best hopes met, where are things"
    " now?",
    "What puts you at {scale} and not lower?",
    "What would be different at {up}?",
    "What number would be good enough?",
    "Is there anything else you would like us to know?",
]
THANKS = "Thank you. Your answers are saved for your practitioner."
SIZES = (100, 10_000, 100_000)
USERS = 100
STORED_BASE = 5_000_000_000  # Telegram ids of the stored (already in progress) conversations


# -- the peer: how a python-telegram-bot user writes it ----------------------------------------

def peer_application(pickle_path: Path, request=None, base_url: str | None = None, persistence=None):
    from telegram import Update
    from telegram.ext import (
        ApplicationBuilder,
        CommandHandler,
        ContextTypes,
        ConversationHandler,
        MessageHandler,
        PicklePersistence,
        filters,
    )

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        context.user_data["answers"] = {}
        await update.message.reply_text(QUESTIONS[0])
        return 0

    def step(n: int):
        async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            text = update.message.text.strip()
            answers = context.user_data.setdefault("answers", {})
            if n in (1, 4):
                if not text.isdigit() or not 0 <= int(text) <= 10:
                    await update.message.reply_text("Please send a number from 0 to 10.")
                    return n
            answers[n] = text
            if n + 1 == len(QUESTIONS):
                await update.message.reply_text(THANKS)
                return ConversationHandler.END
            scale = int(answers.get(1, 0))
            await update.message.reply_text(QUESTIONS[n + 1].format(scale=scale, up=scale + 1))
            return n + 1
        return answer

    async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        await update.message.reply_text("Stopped.")
        return ConversationHandler.END

    text = filters.TEXT & ~filters.COMMAND
    handler = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={n: [MessageHandler(text, step(n))] for n in range(len(QUESTIONS))},
        fallbacks=[CommandHandler("cancel", cancel)],
        name="checkin", persistent=True,
    )
    builder = ApplicationBuilder().token(TOKEN).persistence(persistence or PicklePersistence(filepath=pickle_path))
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    if base_url is not None:
        builder = builder.base_url(base_url)
    app = builder.build()
    app.add_handler(handler)
    return app


def prefill_pickle(path: Path, stored: int) -> None:
    """``stored`` conversations in progress (at the third question, two answers given), in
    PicklePersistence's own single-file format."""
    convs = {(STORED_BASE + n, STORED_BASE + n): 2 for n in range(stored)}
    users = {STORED_BASE + n: {"answers": {0: f"hopes of person {n}", 1: str(n % 11)}} for n in range(stored)}
    data = {"conversations": {"checkin": convs}, "user_data": users, "chat_data": {}, "bot_data": {},
            "callback_data": None}
    with path.open("wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)


def _updates(users: list[int], first_id: int, start: bool) -> list[dict]:
    """The people's messages as the Bot API sends them (getUpdates), each round after the last."""
    from benchmarks.transport import text_update

    out, uid = [], first_id
    texts = (["/start"] if start else []) + ANSWERS
    for i, text in enumerate(texts):
        for u in users:
            uid += 1
            out.append(text_update(uid, u, text, 1_000_000 + i))
    return out


async def _drive(app, memory, updates: list[dict]) -> float:
    """The peer polling them with python-telegram-bot's own Updater, until each has its reply."""
    await app.updater.start_polling(timeout=30)
    try:
        t0 = time.perf_counter()
        memory.offer(updates)
        await memory.calls_reach("sendMessage", len(updates))  # one reply per message
        await app.update_queue.join()
        return time.perf_counter() - t0
    finally:
        await app.updater.stop()


async def run_peer(folder: Path, stored: int, estimate_round: bool = False) -> dict:
    """The peer's figures: updates/s handled (in memory), and its persistence round — what
    ``update_persistence`` (every 60 s by default, and at shutdown) takes to put those
    answers on disk. With ``PicklePersistence``'s defaults each changed user, chat and
    conversation rewrites the whole file. ``estimate_round``: time one write and count the
    writes instead of doing them (at 100,000 stored a round takes many minutes)."""
    from benchmarks.transport import MemoryBotAPI

    path = folder / f"peer-{stored}.pickle"
    template = folder.parent / f"peer-template-{stored}.pickle"
    if not template.exists():
        prefill_pickle(template, stored)
    shutil.copyfile(template, path)
    from telegram.ext import PicklePersistence

    writes: list[int] = []
    first: list[float] = []
    quiet: list[bool] = []

    class Counted(PicklePersistence):  # PicklePersistence as it is, its whole-file writes counted and timed
        def _dump_singlefile(self) -> None:
            if quiet:
                return
            writes.append(1)
            if estimate_round and first:
                return
            t0 = time.perf_counter()
            super()._dump_singlefile()
            first.append(time.perf_counter() - t0)

    memory = MemoryBotAPI()
    app = peer_application(path, request=memory, persistence=Counted(filepath=path))
    users = list(range(10_001, 10_001 + USERS))
    async with app:
        await app.start()
        try:
            updates = _updates(users, 1000, start=True)
            handled = await _drive(app, memory, updates)
            writes.clear()
            t0 = time.perf_counter()
            await app.update_persistence()
            round_s = time.perf_counter() - t0
            if estimate_round:
                round_s = len(writes) * first[0]
            round_writes = len(writes)
        finally:
            if estimate_round:
                quiet.append(True)  # no more minutes of writes
            await app.stop()
    done = sum(1 for u in users if len(app.user_data.get(u, {}).get("answers", {})) == len(ANSWERS))
    if done != USERS:
        raise AssertionError(f"peer run incomplete: {done}/{USERS} finished, calls {dict(memory.calls)}")
    if not estimate_round:
        with path.open("rb") as f:
            data = pickle.load(f)
        on_disk = sum(1 for u in users if len(data["user_data"].get(u, {}).get("answers", {})) == len(ANSWERS))
        if on_disk != USERS or len(data["conversations"]["checkin"]) < stored:
            raise AssertionError(f"peer's pickle incomplete: {on_disk}/{USERS} finished on disk")
    return {"handled": len(updates) / handled, "durable": len(updates) / (handled + round_s), "round_s": round_s,
            "writes": round_writes, "write_s": first[0] if first else None, "estimated": estimate_round}


# -- ours, on the same transport --------------------------------------------------------------

def _prefill_ours(path: Path, stored: int, library) -> None:
    """``stored`` conversations of the scaling check-in in progress (two answers given):
    the rows of one real conversation, copied with plain SQL in one transaction."""
    import sqlite3

    from bot.conversation import ConversationService
    from bot.engine.runner import Input
    from bot.store import Store

    store = Store(path)
    service = ConversationService(store, library)
    pid = service.person("tg:1")
    service.start(pid, "scaling-checkin", input_key="tg:t0", frontend="telegram", chat_id="1", respondent="adult")
    for i, text in enumerate(ANSWERS[:2], 1):
        service.handle(pid, Input.from_text(text), input_key=f"tg:t{i}")
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    conv = dict(db.execute("SELECT * FROM conversations").fetchone())
    answers = [dict(r) for r in db.execute("SELECT * FROM answers")]
    lines = [dict(r) for r in db.execute("SELECT * FROM transcript")]
    inputs = [dict(r) for r in db.execute("SELECT * FROM inputs")]
    db.execute("BEGIN")

    def insert(table: str, rows: list[dict]) -> None:
        if rows:
            cols = list(rows[0])
            db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [tuple(r[c] for c in cols) for r in rows])

    for n in range(1, stored):
        person = db.execute("INSERT INTO people (key, created_at) VALUES (?, ?)",
                            (f"tg:{STORED_BASE + n}", conv["started_at"])).lastrowid
        cid = db.execute("INSERT INTO conversations (person_id, flow_id, flow_version, flow_sha, state, session,"
                         " status, frontend, chat_id, respondent, started_at, updated_at) VALUES"
                         " (?, ?, ?, ?, ?, ?, ?, 'telegram', ?, 'adult', ?, ?)",
                         (person, conv["flow_id"], conv["flow_version"], conv["flow_sha"], conv["state"],
                          conv["session"], conv["status"], str(STORED_BASE + n), conv["started_at"],
                          conv["updated_at"])).lastrowid
        insert("answers", [{**{k: v for k, v in a.items() if k != "id"}, "conversation_id": cid} for a in answers])
        insert("transcript", [{**{k: v for k, v in line.items() if k != "id"}, "conversation_id": cid,
                               "input_key": f"tg:s{n}:{line['input_key']}" if line["input_key"] else None}
                              for line in lines])
        insert("inputs", [{**i, "key": f"tg:s{n}:{i['key']}", "conversation_id": cid, "delivered_at": i["created_at"]}
                          for i in inputs])
    db.execute("COMMIT")
    db.close()


async def run_ours(folder: Path, stored: int, library) -> float:
    """Updates/s for the same people and answers through our bot as serve runs it (assembled
    as bot/cli.py serve assembles it, safeguarding in its worker, serve's own poller with the
    inbox: each batch kept, each answer committed, synchronous=FULL, before its reply)."""
    from benchmarks.telegram_path import assemble, serve_until_handled
    from benchmarks.transport import MemoryBotAPI

    path = folder / f"ours-{stored}.db"
    template = folder.parent / f"ours-template-{stored}.db"
    if not template.exists():  # built once per size, copied for each run
        _prefill_ours(template, stored, library)
    shutil.copyfile(template, path)
    memory = MemoryBotAPI()
    app, frontend, service = assemble(path, "FULL", library, memory, demo_flow="scaling-checkin")
    store = service.store
    users = list(range(10_001, 10_001 + USERS))
    for u in users:  # chosen from the menu (buttons, not measured): the measured updates are the answers
        pid = service.person(f"tg:{u}")
        service.start(pid, "scaling-checkin", frontend="telegram", chat_id=str(u), respondent="adult")
    updates = _updates(users, 10**9, start=False)
    elapsed = await serve_until_handled(app, frontend, memory, updates, "our")
    finished = store.db.execute("SELECT COUNT(*) FROM conversations WHERE status = 'completed'").fetchone()[0]
    left = len(store.inbox_pending())
    store.close()
    if finished != USERS or left:
        raise AssertionError(f"our run incomplete: {finished}/{USERS} finished, {left} left in the inbox, "
                             f"calls {dict(memory.calls)}")
    return len(updates) / elapsed


# -- kill -9 mid-flow -------------------------------------------------------------------------

KILL_USERS = 20


async def _say(fake, user: int, text: str, want: str, timeout: float = 30) -> bool:
    before = fake.count(user)
    fake.inject_message(user, text) if not text.startswith("/") else fake.inject_command(user, text)
    return await fake.wait_new(user, before, lambda m: want in (m.text or ""), timeout) is not None


async def _ours_start(fake, user: int) -> bool:
    before = fake.count(user)
    fake.inject_command(user, "/start")
    menu = await fake.wait_new(user, before, lambda m: bool(fake.buttons(m)), 30)
    if menu is None:
        return False
    before = fake.count(user)
    fake.press_button(user, menu.message_id, "s:scaling-checkin")
    first = QUESTIONS[0]
    got = await fake.wait_new(user, before, lambda m: bool(fake.buttons(m)) or first in (m.text or ""), 30)
    if got is None or first in (got.text or ""):
        return got is not None
    from bot.messages import msg  # "Who is filling this in?"

    adult = next((cb for row in fake.buttons(got) for (label, cb) in row if label == msg("respondent.options.adult")),
                 None)
    if adult is None:
        return False
    before = fake.count(user)
    fake.press_button(user, got.message_id, adult)
    return await fake.wait_new(user, before, lambda m: first in (m.text or ""), 30) is not None


async def survives_kill(folder: Path, which: str) -> dict:
    """Three answers each, SIGKILL, restart, the fourth answer: who kept everything."""
    from benchmarks.common import start_serve, stop_serve
    from benchmarks.users import WatchedFake

    users = list(range(31_000, 31_000 + KILL_USERS))
    scale = int(ANSWERS[1])
    after_kill = QUESTIONS[4]  # the reply to the fourth answer, if the first three were kept
    async with WatchedFake() as fake:
        async def up():
            polls = fake.polls
            if which == "peer":
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "benchmarks.peer", "--serve", str(folder / "kill.pickle"), "--api-url",
                    fake.base_url, cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            else:
                proc = await start_serve(folder / "kill.db", fake, folder, demo_flow="scaling-checkin")
            end = time.monotonic() + 60
            while fake.polls <= polls and time.monotonic() < end:
                await asyncio.sleep(0.05)  # until it polls: it is up
            return proc

        proc = await up()
        try:
            async def first_three(u: int) -> bool:
                ok = await (_ours_start(fake, u) if which == "ours" else _say(fake, u, "/start", QUESTIONS[0]))
                ok = ok and await _say(fake, u, ANSWERS[0], "where are things")
                ok = ok and await _say(fake, u, ANSWERS[1], f"{scale} and not lower")
                return ok and await _say(fake, u, ANSWERS[2], f"different at {scale + 1}")

            started = await asyncio.gather(*(first_three(u) for u in users))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            proc = await up()
            kept = await asyncio.gather(*(_say(fake, u, ANSWERS[3], after_kill, 20) for u in users))
        finally:
            await stop_serve(proc)
    return {"answered_three": sum(started), "kept_after_kill": sum(kept), "users": KILL_USERS}


# -- the benchmark -----------------------------------------------------------------------------

def run(ctx: Context) -> list[Figure]:
    from bot.engine.library import FlowLibrary

    library = FlowLibrary.load()
    folder = Path(tempfile.mkdtemp(prefix="bench-peer-", dir=ctx.workdir))
    figures = []
    try:
        sizes = (100, 10_000) if ctx.quick else SIZES
        for stored in sizes:
            ours, durable, handled, rounds = [], [], [], []
            for i in range(min(ctx.runs, 3)):
                sub = folder / f"{stored}-{i}"
                sub.mkdir()
                ours.append(asyncio.run(run_ours(sub, stored, library)))
                peer = asyncio.run(run_peer(sub, stored, estimate_round=stored >= 100_000))
                durable.append(peer["durable"])
                handled.append(peer["handled"])
                rounds.append(peer)
                shutil.rmtree(sub, ignore_errors=True)
            mid = sorted(rounds, key=lambda r: r["round_s"])[len(rounds) // 2]
            ctx.log(f"  peer {stored}: ours {[round(x) for x in ours]} peer durable {[round(x) for x in durable]}"
                    f" peer in memory {[round(x) for x in handled]} round {[round(r['round_s'], 1) for r in rounds]} s")
            figures.append(Figure(
                "peer", f"peer_{stored}", f"6. check-in updates/s with {stored:,} stored conversations, until on disk",
                "updates/s", ours, "PTB ConversationHandler + PicklePersistence", durable,
                [Target("ratio", ">=", 1.0, "ahead of the peer")] if stored == 10_000 else [],
                note=(f"the peer handles {statistics.median(handled):.0f} updates/s in memory, but its answers reach"
                      f" disk only in its persistence round (every 60 s by default): {mid['writes']} rewrites of the"
                      f" whole pickle, {mid['round_s']:.1f} s{' (estimated: one write timed)' if mid['estimated'] else ''},"
                      " on the event loop; ours commits each answer (synchronous=FULL) before replying"),
                extra={"stored": stored, "users": USERS, "answers_each": len(ANSWERS),
                       "peer_in_memory": handled, "peer_rounds": rounds}))
        survived = {}
        for which in ("ours", "peer"):
            sub = folder / f"kill-{which}"
            sub.mkdir()
            survived[which] = asyncio.run(survives_kill(sub, which))
            ctx.log(f"  kill -9 mid-flow, {which}: {survived[which]}")
        figures.append(Figure(
            "peer", "peer_kill", "6b. people whose answers survived kill -9 mid-flow", "people",
            [survived["ours"]["kept_after_kill"]], "PTB ConversationHandler + PicklePersistence",
            [survived["peer"]["kept_after_kill"]], [Target("value", ">=", KILL_USERS, f"all {KILL_USERS}")],
            note="three answers each, SIGKILL, restart, the fourth answer: kept = asked the right next question",
            extra=survived))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _serve_peer(pickle_path: str, api_url: str) -> None:
    """The peer as its own process (for the kill test): long polling, as run_polling does."""
    app = peer_application(Path(pickle_path), base_url=api_url)
    app.run_polling(poll_interval=0, timeout=1, stop_signals=(signal.SIGTERM, signal.SIGINT))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the peer bot, as its own process")
    parser.add_argument("--serve", required=True, metavar="PICKLE")
    parser.add_argument("--api-url", required=True)
    args = parser.parse_args()
    os.environ.pop("TELEGRAM_BOT_TOKEN", None)
    _serve_peer(args.serve, args.api_url)
