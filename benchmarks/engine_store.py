"""Benchmark 1: engine + store.

What the service side does (``run_service``, ``run_service_concurrent``): a 10-question flow
answered end to end through ConversationService, with input keys as Telegram sends them and
the real safeguarding check when it loads, into a file database in WAL mode, one process, at
the ``synchronous`` setting named (FULL: the WAL is fsynced at every commit, as serve runs).
Steps = inputs committed (each conversation: the start and ten answers). Per input the
service reads (was the input handled before, the conversation, the person's language), runs
the safeguarding check and the engine step, and writes the answer, the transcript lines, the
new state and the input key with its reply, all in one transaction before the reply is
returned. One at a time (figure 1): a transaction, so a commit and an fsync, per input.
Sixteen at once (figure 1b): each input handed from an event loop to the one store thread,
as the Telegram frontend does, where the inputs waiting together are one group commit: one
transaction with a savepoint each (an input that fails rolls back alone), one commit and one
fsync for the group, every reply returned only after that commit. As in serve, the words are
sent for safeguarding detection to a worker process (bot/safeguarding_worker.py, started
with the service and ready before the clock starts, as serve's is before it polls) just
before the hand-off (``ConversationService.prescreen``; the store thread uses that result
only for the very words and detector context it finds), so the detection runs on the other
core while the store thread works.

What the floor does (``run_floor``): the very same rows (read back from a calibration run of
the service, so the same sizes, encrypted blobs included) written with plain ``sqlite3``
parameterised statements, one ``BEGIN IMMEDIATE ... COMMIT`` per input, same schema
(migrations), WAL, the same ``synchronous`` setting and foreign keys: the same durability, a
commit and an fsync per input at FULL, with no reading, no checking and no Python around the
statements. It is what a store that commits each input alone cannot beat; the service's
group commit may, by sharing one fsync among the inputs that arrive together.

Alongside the speeds the log gives, from one short run of each side that is not timed, the
statements and commits per input (a trace callback on the service's connection).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.common import (TEN_STEP_ANSWERS, Context, Figure, Target, detector_worker, interleaved, safeguarding,
                               ten_step_flow)

STEPS_PER_CONV = 1 + len(TEN_STEP_ANSWERS)


def _library():
    from bot.engine.library import FlowLibrary
    from bot.engine.loader import load_flow_text

    flow, errors = load_flow_text(ten_step_flow(), "<bench-ten>")
    assert flow is not None, errors
    return FlowLibrary([flow])


class PlainKeys:
    """For figure 1c only: a keyring that stores text in clear, to show what encryption costs."""
    kid = b"none"

    def encrypt(self, text):
        return text

    def decrypt(self, blob):
        raise AssertionError("nothing was encrypted")


def run_service(path: Path, conversations: int, synchronous: str, library=None, profile=None,
                keyring=None, trace=None) -> float:
    """Steps per second through the service. ``trace``: given every statement the service
    runs once the people exist (for counting; it slows the run)."""
    from bot.conversation import ConversationService
    from bot.engine.runner import Input
    from bot.store import Store

    store = Store(path, synchronous=synchronous, keyring=keyring)
    service = ConversationService(store, library or _library(), safeguarding=safeguarding())
    people = [service.person(f"bench:{i}", f"Person {i}") for i in range(conversations)]
    inputs = [Input.from_text(a) for a in TEN_STEP_ANSWERS]
    if trace is not None:
        store.db.conn.set_trace_callback(trace)
    if profile is not None:
        profile.enable()
    t0 = time.perf_counter()
    for n, pid in enumerate(people):
        reply = service.start(pid, "bench-ten", input_key=f"b:{n}:0", frontend="bench")
        for i, inp in enumerate(inputs, 1):
            reply = service.handle(pid, inp, input_key=f"b:{n}:{i}")
        if reply.status != "completed":
            raise AssertionError(f"conversation {n} did not complete: {reply}")
    elapsed = time.perf_counter() - t0
    if profile is not None:
        profile.disable()
    store.close()
    return conversations * STEPS_PER_CONV / elapsed


def run_service_concurrent(path: Path, conversations: int, synchronous: str, library=None,
                           concurrency: int = 16, trace=None) -> float:
    """Steps per second through the service with ``concurrency`` conversations answering at
    once, as the Telegram frontend runs it: each input handed from the event loop to the one
    store thread, which commits the inputs waiting together as one group (a savepoint each)."""
    import asyncio
    import contextvars

    from bot.conversation import ConversationService
    from bot.engine.runner import Input
    from bot.frontends.telegram.limits import PriorityExecutor
    from bot.store import Store

    store = Store(path, synchronous=synchronous)
    detector = safeguarding()
    worker = detector_worker() if detector is not None else None
    service = ConversationService(store, library or _library(), safeguarding=detector, detector_worker=worker)
    people = [service.person(f"bench:{i}", f"Person {i}") for i in range(conversations)]
    inputs = [Input.from_text(a) for a in TEN_STEP_ANSWERS]
    if trace is not None:
        store.db.conn.set_trace_callback(trace)
    executor = PriorityExecutor("store", group=store.run_group)

    async def drive() -> float:
        loop = asyncio.get_running_loop()
        todo = list(enumerate(people))

        def db(fn):
            # as the Telegram frontend's hand-off (TelegramFrontend.db): the caller's context goes
            # with the call, and a group's results come back to the loop together, after its commit
            ctx = contextvars.copy_context()
            return executor.call(loop, lambda: ctx.run(fn))

        async def worker():
            while todo:
                n, pid = todo.pop()
                reply = await db(lambda: service.start(pid, "bench-ten", input_key=f"b:{n}:0", frontend="bench"))
                for i, inp in enumerate(inputs, 1):
                    key = f"b:{n}:{i}"
                    # as the Telegram frontend does: the words sent to the safeguarding worker
                    # process just before the hand-off; the store thread takes its result
                    service.prescreen(pid, inp, input_key=key)
                    reply = await db(lambda key=key, inp=inp: service.handle(pid, inp, input_key=key))
                if reply.status != "completed":
                    raise AssertionError(f"conversation {n} did not complete: {reply}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0

    try:
        elapsed = asyncio.run(drive())
    finally:
        executor.shutdown()
        store.close()
    return conversations * STEPS_PER_CONV / elapsed


def _groups(path: Path) -> tuple[list[tuple], list[tuple], list]:
    """The rows one service run wrote, grouped by input (in commit order)."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    people = [tuple(r) for r in db.execute("SELECT id, key, display_name, created_at FROM people ORDER BY id")]
    snaps = [tuple(r) for r in db.execute("SELECT sha, flow_id, version, source, created_at FROM flow_snapshots")]
    convs = {r["id"]: r for r in db.execute("SELECT * FROM conversations")}
    answers = {(r["conversation_id"], r["step_id"]): r for r in db.execute("SELECT * FROM answers")}
    inputs = {r["key"]: r for r in db.execute("SELECT * FROM inputs")}
    groups: list = []
    current = None
    for line in db.execute("SELECT * FROM transcript ORDER BY id"):
        if line["direction"] == "in":
            current = {"conv": convs[line["conversation_id"]], "in": line, "outs": [],
                       "answer": answers.get((line["conversation_id"], line["step_id"])) if line["kind"] == "answer" else None,
                       "input": inputs.get(line["input_key"]), "start": line["kind"] == "command"}
            groups.append(current)
        else:
            current["outs"].append(line)
    db.close()
    return people, snaps, groups


_T = ("INSERT INTO transcript (conversation_id, direction, kind, step_id, text, input_key, created_at, flagged)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _line(r) -> tuple:
    return (r["conversation_id"], r["direction"], r["kind"], r["step_id"], r["text"], r["input_key"], r["created_at"],
            r["flagged"])


def _prepare(groups, snaps) -> list[list[tuple[str, tuple]]]:
    """Each input as the list of (sql, params) it writes."""
    out = []
    for g in groups:
        c, stmts = g["conv"], []
        if g["start"]:
            stmts.append(("INSERT OR IGNORE INTO flow_snapshots (sha, flow_id, version, source, created_at)"
                          " VALUES (?, ?, ?, ?, ?)", snaps[0]))
            stmts.append(("INSERT INTO conversations (id, person_id, flow_id, flow_version, flow_sha, state, session, status,"
                          " frontend, chat_id, case_id, started_at, updated_at, finished_at)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, 'in_progress', ?, ?, ?, ?, ?, NULL)",
                          (c["id"], c["person_id"], c["flow_id"], c["flow_version"], c["flow_sha"], "q1", '{"state": "q1", "answers": {}, "history": []}',
                           c["frontend"], c["chat_id"], c["case_id"], c["started_at"], c["started_at"])))
            stmts.append((_T, _line(g["in"])))
        else:
            stmts.append((_T, _line(g["in"])))
            a = g["answer"]
            if a is not None:
                stmts.append(("INSERT INTO answers (conversation_id, step_id, value, raw, shown, answered_at)"
                              " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, step_id) DO UPDATE SET"
                              " value = excluded.value, raw = excluded.raw, shown = excluded.shown,"
                              " answered_at = excluded.answered_at, revision = revision + 1, current = 1",
                              (a["conversation_id"], a["step_id"], a["value"], a["raw"], a["shown"], a["answered_at"])))
            stmts.append(("UPDATE conversations SET state = ?, session = ?, status = ?, updated_at = ?,"
                          " finished_at = CASE WHEN ? != 'in_progress' THEN ? ELSE finished_at END WHERE id = ?",
                          (c["state"], c["session"], c["status"], c["updated_at"], c["status"], c["updated_at"], c["id"])))
        for o in g["outs"]:
            stmts.append((_T, _line(o)))
        i = g["input"]
        if i is not None:
            stmts.append(("INSERT INTO inputs (key, conversation_id, reply, created_at) VALUES (?, ?, ?, ?)",
                          (i["key"], i["conversation_id"], i["reply"], i["created_at"])))
        out.append(stmts)
    return out


def run_floor(path: Path, schema_from: Path, people, snaps, prepared, synchronous: str) -> float:
    """Steps per second for the same rows through plain sqlite3, one transaction per input."""
    from bot.store import Store

    Store(path, synchronous=synchronous).close()  # same schema (migrations), not timed
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA foreign_keys=ON")
    db.executemany("INSERT INTO people (id, key, display_name, created_at) VALUES (?, ?, ?, ?)", people)
    db.executemany("INSERT INTO flow_snapshots (sha, flow_id, version, source, created_at) VALUES (?, ?, ?, ?, ?)", snaps)
    t0 = time.perf_counter()
    for stmts in prepared:
        db.execute("BEGIN IMMEDIATE")
        for sql, params in stmts:
            db.execute(sql, params)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return len(prepared) / elapsed


def per_input(run, path: Path, conversations: int) -> dict:
    """Statements and commits per input in one (untimed) ``run(path, trace=...)``: at FULL a
    commit is one fsync of the WAL (two more when SQLite checkpoints, which it does rarely)."""
    seen: list[str] = []
    run(path, trace=seen.append)
    steps = conversations * STEPS_PER_CONV
    commits = sum(1 for sql in seen if sql.strip().upper() == "COMMIT")
    return {"statements_per_input": round(len(seen) / steps, 2), "commits_per_input": round(commits / steps, 3)}


def _fresh(folder: Path, name: str) -> Path:
    p = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(p) + suffix).unlink(missing_ok=True)
    return p


def run(ctx: Context) -> list[Figure]:
    conversations = 60 if ctx.quick else 300
    folder = Path(tempfile.mkdtemp(prefix="bench-engine-", dir=ctx.workdir))
    library = _library()
    figures = []
    try:
        for sync in ("FULL", "NORMAL"):
            # one calibration run gives the rows the floor replays
            calib = _fresh(folder, f"calib-{sync}.db")
            run_service(calib, conversations, sync, library)
            people, snaps, groups = _groups(calib)
            prepared = _prepare(groups, snaps)
            assert len(prepared) == conversations * STEPS_PER_CONV, (len(prepared), conversations)
            svc, floor = interleaved(
                ctx.runs,
                lambda: run_service(_fresh(folder, "svc.db"), conversations, sync, library),
                lambda: run_floor(_fresh(folder, "floor.db"), calib, people, snaps, prepared, sync),
            )
            counted = per_input(lambda p, trace: run_service(p, 20, sync, library, trace=trace),
                                _fresh(folder, "count.db"), 20)
            ctx.log(f"  engine+store {sync}: service {[round(x) for x in svc]} floor {[round(x) for x in floor]}"
                    f"; service per input: {counted['statements_per_input']} statements,"
                    f" {counted['commits_per_input']} commits (floor: 1 commit)")
            targets = [Target("value", ">=", 10_000, ">= 10,000 steps/s"), Target("ratio", ">=", 0.40, ">= 40% of floor")]
            figures.append(Figure(
                "engine", f"engine_store_{sync.lower()}",
                f"1. engine+store steps/s (WAL, synchronous={sync})", "steps/s", svc,
                "plain sqlite3", floor, targets if sync == "FULL" else [Target("ratio", ">=", 0.40, ">= 40% of floor")],
                note=("what serve uses: every commit is fsynced" if sync == "FULL" else
                      "informational: durable against a crashed process (kill -9), not against power loss"),
                extra={"conversations": conversations, "steps_per_conversation": STEPS_PER_CONV,
                       "safeguarding": safeguarding() is not None, **counted}))
            if sync == "FULL":
                enc, plain = interleaved(
                    ctx.runs,
                    lambda: run_service(_fresh(folder, "enc.db"), conversations, sync, library),
                    lambda: run_service(_fresh(folder, "plain.db"), conversations, sync, library, keyring=PlainKeys()),
                )
                ctx.log(f"  engine+store {sync}, encrypted {[round(x) for x in enc]} in clear {[round(x) for x in plain]}")
                figures.append(Figure(
                    "engine", "engine_store_encryption",
                    "1c. engine+store steps/s, text fields encrypted (AES-GCM) vs in clear (WAL, synchronous=FULL)",
                    "steps/s", enc, "the same store, text in clear", plain,
                    [Target("ratio", ">=", 0.80, ">= 80% of in clear (issue 17: within 20 %)")],
                    note="the cost of encryption at rest per step (bot/dbkey.py)",
                    extra={"conversations": conversations, "steps_per_conversation": STEPS_PER_CONV}))
                conc, floor2 = interleaved(
                    ctx.runs,
                    lambda: run_service_concurrent(_fresh(folder, "conc.db"), conversations, sync, library),
                    lambda: run_floor(_fresh(folder, "floor.db"), calib, people, snaps, prepared, sync),
                )
                counted16 = per_input(lambda p, trace: run_service_concurrent(p, 64, sync, library, trace=trace),
                                      _fresh(folder, "count16.db"), 64)
                ctx.log(f"  engine+store {sync}, 16 at once: service {[round(x) for x in conc]}"
                        f" floor {[round(x) for x in floor2]}; service per input:"
                        f" {counted16['statements_per_input']} statements, {counted16['commits_per_input']} commits")
                figures.append(Figure(
                    "engine", "engine_store_full_16",
                    "1b. engine+store steps/s, 16 conversations at once (WAL, synchronous=FULL)", "steps/s", conc,
                    "plain sqlite3, a transaction per input", floor2,
                    [Target("ratio", ">=", 1.0, ">= 1.0 x floor")],
                    note="inputs waiting together share one commit (group commit, a savepoint each);"
                         " the floor commits each input alone, as a store without grouping must",
                    extra={"conversations": conversations, "concurrency": 16, "steps_per_conversation": STEPS_PER_CONV,
                           **counted16}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures
