"""Benchmark 3: simulated users over HTTP on loopback.

The bot runs as its own process (``restorative-bot serve``), long-polling the fake Bot API
server in this process. N users (200 by default) each go through the shipped
``scaling-checkin`` flow at once, typing and pressing buttons, each answering as soon as
the bot replies. Latency = from the update being queued at the fake server to the bot's
reply (the next question) arriving there. Afterwards the database is read back: every
user's answers must be exactly theirs, each stored once.

Baseline: a bare python-telegram-bot echo bot process (same concurrency and connection
pool) with the same number of users each sending the same number of messages.

As deployed (``serve`` with Telegram's 30 messages a second), two runs:
- *all at once*: every person answers each step at the same moment (a barrier between
  steps, as in "200 people answering at once"); the floor is users / 2 / 30 s, the median
  person waiting for half of the round's replies at one call each. The 1.3x target and the
  calls per answer are measured here.
- *free running*: each person answers the moment their reply arrives. Then every person
  always has one answer waiting, and by Little's law the mean wait is at least users / 30 s
  whatever the order of sending (informational, against that floor).
Calls per answer count what Telegram's limit applies to (sendMessage, editMessageText,
editMessageReplyMarkup: calls to a chat); answerCallbackQuery is reported apart.
The bot side is ``restorative-bot serve`` unchanged: nothing here tells it it is measured.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import ROOT, Context, Figure, percentile, serve_env, serve_mode, start_serve, stop_serve
from benchmarks.users import SimUser, WatchedFake, button_data, has, has_button

FLOW = "scaling-checkin"


def expected_answers(u: int) -> dict:
    v = 2 + u % 8
    return {"best_hopes": f"hopes of {u}", "scale_now": v, "not_lower": f"reason of {u}",
            "one_point_up": f"different for {u}", "good_enough": 9, "anything_else": f"nothing else from {u}"}


async def scaling_checkin(user: SimUser, together: asyncio.Barrier | None = None) -> None:
    """One person through the scaling check-in, 9 inputs. With ``together``, every person
    waits at each step until all have their reply, then all answer at once (rounds)."""
    async def turn():
        if together is not None:
            await together.wait()

    u = user.id
    v = 2 + u % 8
    await turn()
    menu = await user.say("/start", has_button("s:"))
    await turn()
    who = await user.press(menu, f"s:{FLOW}", has_button(f"s:{FLOW}:"))  # Who is filling this in?
    await turn()
    await user.press(who, f"s:{FLOW}:0", has("best hopes"))  # a parent or carer
    await turn()
    scale = await user.say(f"hopes of {u}", has("where are things now"))
    await turn()
    await user.press(scale, button_data(scale, str(v)), has(f"What puts you at {v} and not lower"))
    await turn()
    await user.say(f"reason of {u}", has(f"different at {v + 1}"))
    await turn()
    good = await user.say(f"different for {u}", has("good enough"))
    await turn()
    await user.press(good, button_data(good, "9"), has("anything else"))
    await turn()
    await user.say(f"nothing else from {u}", has("Thank you"))


def check_db(db: Path, users: list[int]) -> tuple[int, int, list[str]]:
    """(completed, answers stored, problems): lost, crossed or duplicated answers."""
    from bot.dbkey import decrypting

    conn = decrypting(sqlite3.connect(f"file:{db}?mode=ro", uri=True))
    problems, completed, stored = [], 0, 0
    for u in users:
        rows = conn.execute(
            "SELECT c.id, c.status FROM conversations c JOIN people p ON p.id = c.person_id WHERE p.key = ?",
            (f"tg:{u}",)).fetchall()
        if len(rows) != 1:
            problems.append(f"user {u}: {len(rows)} conversations")
            continue
        cid, status = rows[0]
        completed += status == "completed"
        got = {s: (json.loads(v), r) for s, v, r in conn.execute(
            "SELECT step_id, value, revision FROM answers WHERE conversation_id = ? AND current = 1", (cid,))}
        stored += len(got)
        want = expected_answers(u)
        if {k: v for k, (v, _) in got.items()} != want:
            problems.append(f"user {u}: answers {got} != {want}")
        if any(r != 1 for _, r in got.values()):
            problems.append(f"user {u}: an answer was stored more than once: {got}")
    conn.close()
    return completed, stored, problems


async def _wait_polling(fake: WatchedFake, proc, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while fake.polls == 0:
        if proc.returncode is not None:
            raise RuntimeError(f"bot process exited with {proc.returncode}")
        if time.monotonic() > end:
            raise TimeoutError("bot process never polled")
        await asyncio.sleep(0.05)



# The calls Telegram's 30 messages a second applies to: those to a chat (sendMessage and
# the edits), as python-telegram-bot's own AIORateLimiter counts them. answerCallbackQuery
# (the reply to a button press, shown as a small notice) is not a message to a chat: counted
# apart, not limited; getUpdates neither.
LIMITED_KINDS = ("sendMessage", "editMessageText", "editMessageReplyMarkup")


async def run_bot_once(folder: Path, users: int, max_rate: float | None, rounds: bool = False) -> dict:
    db = folder / f"http-{time.monotonic_ns()}.db"
    async with WatchedFake() as fake:
        err = open(folder / "serve.log", "ab")
        proc = await start_serve(db, fake, folder, stderr=err, max_rate=max_rate, demo_flow=FLOW)
        try:
            await _wait_polling(fake, proc)
            sims = [SimUser(fake, 50_000 + i, timeout=300) for i in range(users)]
            together = asyncio.Barrier(users) if rounds else None
            first_call = len(fake.calls)

            async def one(s: SimUser):
                try:
                    await scaling_checkin(s, together)
                except BaseException:
                    if together is not None:
                        await together.abort()  # nobody waits for a person who will not come
                    raise

            t0 = time.perf_counter()
            results = await asyncio.gather(*(one(s) for s in sims), return_exceptions=True)
            elapsed = time.perf_counter() - t0
            calls = [c for c in fake.calls[first_call:] if c.method != "getUpdates"]
            kinds = dict(Counter(c.method for c in calls))
            limited = sum(1 for c in calls if c.params.get("chat_id") is not None)
        finally:
            await stop_serve(proc)
            err.close()
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    lat = [x for s in sims for x in s.latencies]
    completed, stored, problems = check_db(db, [s.id for s in sims])
    return {"median_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
            "max_ms": max(lat, default=float("nan")) * 1000,
            "completed": completed, "answers_stored": stored, "problems": problems + failures[:5],
            "failures": len(failures), "inputs": len(lat), "elapsed": elapsed, "limited_calls": limited,
            "calls_per_answer": limited / max(1, len(lat)), "calls_by_kind": kinds,
            "step_median_ms": [round(percentile([s.latencies[k] for s in sims if len(s.latencies) > k], 0.5) * 1000)
                               for k in range(max((len(s.latencies) for s in sims), default=0))],
            "step_max_ms": [round(max(s.latencies[k] for s in sims if len(s.latencies) > k) * 1000)
                            for k in range(max((len(s.latencies) for s in sims), default=0))],
            "per_answer_by_kind": {k: round(v / max(1, len(lat)), 3) for k, v in kinds.items()}}


EXTRA: list[str] = []


async def run_echo_once(folder: Path, users: int, messages: int = 8) -> dict:
    async with WatchedFake() as fake:
        err = open(folder / "echo.log", "ab")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.echo_bot", "--api-url", fake.base_url, *EXTRA, cwd=str(ROOT),
            env=serve_env(fake.base_url), stdout=asyncio.subprocess.DEVNULL, stderr=err)
        try:
            await _wait_polling(fake, proc)
            sims = [SimUser(fake, 60_000 + i, timeout=60) for i in range(users)]

            async def one(s: SimUser):
                for k in range(messages):
                    await s.say(f"echo {k} from {s.id}", has(f"echo {k} from {s.id}"))

            await asyncio.gather(*(one(s) for s in sims))
        finally:
            await stop_serve(proc)
            err.close()
    lat = [x for s in sims for x in s.latencies]
    return {"median_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000}


def run(ctx: Context) -> list[Figure]:
    from benchmarks.common import Target

    users = min(ctx.users, 40) if ctx.quick else ctx.users
    runs = min(ctx.runs, 3)
    folder = Path(tempfile.mkdtemp(prefix="bench-http-", dir=ctx.workdir))
    bots, echos = [], []
    try:
        for _ in range(runs):
            bots.append(asyncio.run(run_bot_once(folder, users, max_rate=UNLIMITED)))
            echos.append(asyncio.run(run_echo_once(folder, users)))
            ctx.log(f"  http: bot {bots[-1]['median_ms']:.1f}/{bots[-1]['p99_ms']:.1f} ms,"
                    f" {bots[-1]['completed']}/{users} completed, problems {len(bots[-1]['problems'])};"
                    f" echo {echos[-1]['median_ms']:.1f}/{echos[-1]['p99_ms']:.1f} ms")
        from benchmarks import common

        common.BOT_PROCESS_EXTRA[:] = ["--concurrency", "32"]
        try:
            small_pool = asyncio.run(run_bot_once(folder, users, max_rate=UNLIMITED))
        finally:
            common.BOT_PROCESS_EXTRA[:] = []
        ctx.log(f"  http, build_application(concurrency=32): {small_pool['median_ms']:.0f}/{small_pool['p99_ms']:.0f} ms")
        deployed = asyncio.run(run_bot_once(folder, users, max_rate=None, rounds=True))
        ctx.log(f"  http as deployed (30 msg/s), all answering at once: {deployed['median_ms']:.0f}/"
                f"{deployed['p99_ms']:.0f} ms, {deployed['completed']}/{users} completed in {deployed['elapsed']:.0f} s,"
                f" {deployed['calls_per_answer']:.2f} rate-limited calls per answer {deployed['per_answer_by_kind']};"
                f" median by step {deployed['step_median_ms']} ms, slowest by step {deployed['step_max_ms']} ms")
        free = asyncio.run(run_bot_once(folder, users, max_rate=None))
        ctx.log(f"  http as deployed (30 msg/s), free running: {free['median_ms']:.0f}/{free['p99_ms']:.0f} ms,"
                f" {free['completed']}/{users} completed in {free['elapsed']:.0f} s,"
                f" {free['calls_per_answer']:.2f} rate-limited calls per answer {free['per_answer_by_kind']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    mode = serve_mode()
    everything = bots + [small_pool, deployed, free]
    extra = {"users": users, "serve": mode, "runs": [{k: v for k, v in b.items() if k != "problems"} for b in bots],
             "deployed": {k: v for k, v in deployed.items() if k != "problems"},
             "free_running": {k: v for k, v in free.items() if k != "problems"},
             "problems": [p for b in everything for p in b["problems"]][:20]}
    note = f"{users} users, python-telegram-bot's rate limiter lifted (benchmarks.bot_process --max-rate)"
    lost = [float(users * 6 - b["answers_stored"] + len(b["problems"])) for b in everything]
    deployed_note = (f"restorative-bot serve as shipped ({'real CLI' if mode == 'real' else 'stand-in: lexicon missing'}),"
                     " 30 msg/s overall limit (Telegram's)")
    # Floors from the limit, at one call per answer:
    # - all answering at once (rounds): the replies of a round go out at TELEGRAM_RATE a
    #   second and the median person waits for half of them: users / 2 / rate.
    # - free running (each person answers the moment their reply arrives, so every person
    #   always has one answer waiting): by Little's law the mean wait is users / rate, for
    #   any order of sending that treats people alike; half of that is out of reach.
    floor_ms = users / 2 / TELEGRAM_RATE * 1000
    free_floor_ms = users / TELEGRAM_RATE * 1000
    kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(deployed["per_answer_by_kind"].items()))
    return [
        Figure("http", "http_deployed_calls_per_answer",
               "3. over HTTP, 30 msg/s, all at once: rate-limited calls per answer", "calls",
               [deployed["calls_per_answer"]], targets=[Target("value", "<=", 1.1, "<= 1.1")],
               note=f"calls to a chat ({', '.join(LIMITED_KINDS)}) per input, {users} users; "
                    f"{deployed['limited_calls']} calls; per answer by kind: {kinds}"
                    " (answerCallbackQuery is not a message to a chat: not limited, not counted)"),
        Figure("http", "http_deployed_vs_floor", "3. over HTTP, 30 msg/s, all at once: median latency / floor",
               "x", [deployed["median_ms"] / floor_ms], targets=[Target("value", "<=", 1.3, "<= 1.3x")],
               note=f"floor {floor_ms:.0f} ms = {users} users / 2 / {TELEGRAM_RATE:g} msg/s; every person answers each"
                    f" step at the same moment (a barrier between steps); median {deployed['median_ms']:.0f} ms,"
                    f" p99 {deployed['p99_ms']:.0f} ms"),
        Figure("http", "http_free_vs_floor", "3. over HTTP, 30 msg/s, free running: median latency / floor", "x",
               [free["median_ms"] / free_floor_ms],
               note=f"informational: floor {free_floor_ms:.0f} ms = {users} users / {TELEGRAM_RATE:g} msg/s (Little's"
                    f" law: each person always has one answer waiting); median {free['median_ms']:.0f} ms, p99"
                    f" {free['p99_ms']:.0f} ms, {free['calls_per_answer']:.2f} calls per answer"),
        Figure("http", "http_latency_median", f"3. over HTTP: reply latency median ({users} users)", "ms",
               [b["median_ms"] for b in bots], "bare PTB echo", [e["median_ms"] for e in echos], note=note, extra=extra),
        Figure("http", "http_latency_p99", f"3. over HTTP: reply latency p99 ({users} users)", "ms",
               [b["p99_ms"] for b in bots], "bare PTB echo", [e["p99_ms"] for e in echos], note=note),
        Figure("http", "http_pool32_p99", "3. over HTTP, concurrency=32 (pool 32): latency p99", "ms",
               [small_pool["p99_ms"]], note="informational: build_application(concurrency=32) instead of 256; median"
               f" {small_pool['median_ms']:.0f} ms. httpcore's pool scans every connection per request"),
        Figure("http", "http_deployed_median", "3. over HTTP, 30 msg/s limit, all at once: latency median", "ms",
               [deployed["median_ms"]], note=deployed_note),
        Figure("http", "http_deployed_p99", "3. over HTTP, 30 msg/s limit, all at once: latency p99", "ms",
               [deployed["p99_ms"]], note=deployed_note),
        Figure("http", "http_completed", "3. over HTTP: conversations completed (every run)", "count",
               [float(b["completed"]) for b in everything], targets=[Target("min", ">=", users, f"all {users}")]),
        Figure("http", "http_lost_crossed", "3. over HTTP: answers lost, crossed or duplicated", "count", lost,
               targets=[Target("max", "<=", 0, "0 in every run")]),
    ]


UNLIMITED = 1_000_000.0
TELEGRAM_RATE = 30.0  # serve's default overall limit (messages a second), Telegram's
