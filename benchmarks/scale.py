"""Benchmark 4: scale.

Generates a database like a busy council's (fast: plain SQL, one transaction): 100,000
conversations, each in progress at question 11 of a 12-question flow with 10 answers given
(1,000,000 answers), 22 transcript lines each (2.2 million), 11 processed inputs each
with their stored replies, 1,000 practitioners holding 10 cases of 10 conversations.
The row shapes (session JSON, reply JSON, transcript wording) are copied from one real
conversation run through the service first.

Then times, on random targets (cold rows), each through the library call a frontend or
the CLI makes: resume a conversation (``ConversationService.current``), answer the
question it waits on (``handle``), render one transcript (``transcript_data`` +
``render``), list a case as its practitioner (``Access.case``), export one case
(``review.export.export``). Baseline: the same calls on a database of 1,000 conversations
built the same way (ratio ~1 means the cost does not grow with the database).

And the resident memory (VmRSS from /proc) of ``restorative-bot serve`` on that
database, after hundreds of those people answered through Telegram (the fake Bot API),
against ``serve`` on an empty database answering the same number of people.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Context, Figure, Target, long_flow, rss_mb, safeguarding, serve_mode, start_serve, write_flow

FLOW_ID = "scale-long"
QUESTIONS = 12
ANSWERED = 10
PER_CASE = 10
CASES_PER_PRACTITIONER = 10
SMALL = 1_000  # the baseline database
USER_BASE = 7_000_000_000  # Telegram ids of the generated people: tg:{USER_BASE + n}


def _template(folder: Path, flow_text: str) -> dict:
    """Run one conversation through the real service and keep the shapes of its rows."""
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import Input
    from bot.store import Store

    flow, errors = load_flow_text(flow_text, "<scale>")
    assert flow is not None, errors
    store = Store(folder / "template.db")
    service = ConversationService(store, FlowLibrary([flow]))
    pid = service.person("tg:1", "Template")
    service.start(pid, FLOW_ID, input_key="tg:1", frontend="telegram", chat_id="1")
    for k in range(1, ANSWERED + 1):
        service.handle(pid, Input.from_text(f"answer {k} from person 1"), input_key=f"tg:{k + 1}")
    conv = store.db.execute("SELECT * FROM conversations").fetchone()
    cols = [c[0] for c in store.db.execute("SELECT * FROM conversations").description]
    conv = dict(zip(cols, conv))
    lines = [dict(zip(("direction", "kind", "step_id", "text", "input_key"), r)) for r in store.db.execute(
        "SELECT direction, kind, step_id, text, input_key FROM transcript ORDER BY id")]
    replies = [r[0] for r in store.db.execute("SELECT reply FROM inputs ORDER BY rowid")]
    snap = store.db.execute("SELECT sha, flow_id, version, source, created_at FROM flow_snapshots").fetchone()
    store.close()
    return {"conv": conv, "lines": lines, "replies": replies, "snap": snap, "flow": flow}


def _key(n: int, template_key: str) -> str:
    """Update ids far above any the fake server hands out in this run."""
    return f"tg:{10**12 + n * 100 + int(template_key[3:])}"


def generate(path: Path, conversations: int, flow_text: str, log=lambda s: None) -> dict:
    """Write the database; returns facts about it (counts, ids to sample)."""
    from bot.store import Store

    t0 = time.perf_counter()
    tpl = _template(path.parent, flow_text)
    Store(path).close()  # the schema, by the real migrations
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-200000")
    db.execute("BEGIN")
    # An hour ago: a fixed date had become older than the retention of an abandoned conversation
    # (180 days), so serve's daily purge deleted every generated conversation at start and the
    # people were then greeted as uninvited ("This bot is used with a worker ...").
    from datetime import datetime, timedelta, timezone

    from bot.store import iso
    ts = iso(datetime.now(timezone.utc) - timedelta(hours=1))
    sha = tpl["snap"][0]
    db.execute("INSERT INTO flow_snapshots (sha, flow_id, version, source, created_at) VALUES (?, ?, ?, ?, ?)", tpl["snap"])
    practitioners = max(1, conversations // (PER_CASE * CASES_PER_PRACTITIONER))
    cases = practitioners * CASES_PER_PRACTITIONER
    # people: practitioners first, then the families (one conversation each)
    db.executemany("INSERT INTO people (id, key, display_name, created_at) VALUES (?, ?, ?, ?)",
                   ((p + 1, f"tg:{USER_BASE - 1 - p}", f"Practitioner {p}", ts) for p in range(practitioners)))
    db.executemany("INSERT INTO roles (person_id, role, granted_by, granted_at) VALUES (?, 'practitioner', 'bench', ?)",
                   ((p + 1, ts) for p in range(practitioners)))
    db.executemany("INSERT INTO cases (id, ref, practitioner_id, created_at) VALUES (?, ?, ?, ?)",
                   ((k + 1, f"CASE-{k + 1:06d}", k // CASES_PER_PRACTITIONER + 1, ts) for k in range(cases)))
    fam0 = practitioners + 1
    db.executemany("INSERT INTO people (id, key, display_name, created_at) VALUES (?, ?, ?, ?)",
                   ((fam0 + n, f"tg:{USER_BASE + n}", f"Person {n}", ts) for n in range(conversations)))
    conv = tpl["conv"]
    session_tpl = conv["session"]
    db.executemany(
        """INSERT INTO conversations (id, person_id, flow_id, flow_version, flow_sha, state, session, status, frontend,
           chat_id, case_id, started_at, updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'in_progress', 'telegram',
           ?, ?, ?, ?, NULL)""",
        ((n + 1, fam0 + n, FLOW_ID, 1, sha, conv["state"], session_tpl.replace("person 1", f"person {n}"),
          str(USER_BASE + n), n // PER_CASE % cases + 1, ts, ts) for n in range(conversations)))
    db.executemany(
        "INSERT INTO answers (conversation_id, step_id, value, raw, shown, answered_at) VALUES (?, ?, ?, ?, ?, ?)",
        ((n + 1, f"q{k}", json.dumps(f"answer {k} from person {n}"), f"answer {k} from person {n}",
          f"answer {k} from person {n}", ts) for n in range(conversations) for k in range(1, ANSWERED + 1)))
    lines = tpl["lines"]
    db.executemany(
        """INSERT INTO transcript (conversation_id, direction, kind, step_id, text, input_key, created_at, flagged)
           VALUES (?, ?, ?, ?, ?, ?, ?, 0)""",
        ((n + 1, ln["direction"], ln["kind"], ln["step_id"], ln["text"].replace("person 1", f"person {n}"),
          _key(n, ln["input_key"]) if ln["input_key"] else None, ts)
         for n in range(conversations) for ln in lines))
    replies = tpl["replies"]
    db.executemany("INSERT INTO inputs (key, conversation_id, reply, created_at, delivered_at) VALUES (?, ?, ?, ?, ?)",
                   ((_key(n, f"tg:{i + 1}"), n + 1, r, ts, ts) for n in range(conversations) for i, r in enumerate(replies)))
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("conversations", "answers", "transcript", "inputs", "people", "cases")}
    db.close()
    counts["seconds"] = time.perf_counter() - t0
    counts["mb"] = path.stat().st_size / 1e6
    counts["practitioners"] = practitioners
    log(f"  scale: generated {counts} ")
    return counts


class Ops:
    """The timed calls, on one database."""

    def __init__(self, path: Path, flow_text: str, facts: dict, seed: int):
        from bot.access import Access
        from bot.conversation import ConversationService
        from bot.engine.library import FlowLibrary
        from bot.engine.loader import load_flow_text
        from bot.store import Store

        flow, _ = load_flow_text(flow_text, "<scale>")
        self.store = Store(path)
        self.store.checkpoint_in_background()  # as serve runs it: no answer waits for a WAL checkpoint
        library = FlowLibrary([flow])
        self.service = ConversationService(self.store, library, safeguarding=safeguarding())
        self.access = Access(self.store, library)
        self.facts = facts
        self.rng = random.Random(seed)
        self.n = facts["conversations"]
        self.fam0 = facts["practitioners"] + 1
        self.answered: set[int] = set()
        self.key = 0

    def _conv(self) -> int:
        if len(self.answered) >= self.n:
            raise RuntimeError("every conversation was used; generate a bigger database or take fewer samples")
        while True:
            n = self.rng.randrange(self.n)
            if n not in self.answered:
                return n

    def resume(self) -> float:
        n = self._conv()
        t0 = time.perf_counter()
        reply = self.service.current(self.fam0 + n)
        dt = time.perf_counter() - t0
        assert reply is not None and reply.prompts and reply.step_id == f"q{ANSWERED + 1}", reply
        return dt

    def answer(self) -> float:
        n = self._conv()
        self.answered.add(n)
        self.key += 1
        from bot.engine.runner import Input

        t0 = time.perf_counter()
        reply = self.service.handle(self.fam0 + n, Input.from_text(f"late answer from {n}"), input_key=f"bench:{self.key}:{n}")
        dt = time.perf_counter() - t0
        assert reply.accepted and reply.step_id == f"q{ANSWERED + 2}", reply
        return dt

    def transcript(self) -> float:
        from bot.review.export import render, transcript_data

        n = self._conv()
        t0 = time.perf_counter()
        text = render([transcript_data(self.store, n + 1)], "md")
        dt = time.perf_counter() - t0
        assert f"person {n}" in text
        return dt

    def list_case(self) -> float:
        k = self.rng.randrange(self.facts["cases"]) + 1
        practitioner = self.store.case_by_id(k)["practitioner_id"]
        key = self.store.get_person(practitioner)["key"]
        t0 = time.perf_counter()
        rows = self.access.case(key, f"CASE-{k:06d}")
        dt = time.perf_counter() - t0
        assert len(rows) == min(PER_CASE, self.n), len(rows)
        return dt

    def export_case(self) -> float:
        from bot.review.export import export

        k = self.rng.randrange(self.facts["cases"]) + 1
        t0 = time.perf_counter()
        text = export(self.store, case=f"CASE-{k:06d}", fmt="md")
        dt = time.perf_counter() - t0
        assert text.count("## Transcript") == min(PER_CASE, self.n)
        return dt

    def close(self) -> None:
        self.store.close()


OPS = [("resume", "resume a conversation (service.current)"), ("answer", "answer its next question (service.handle)"),
       ("transcript", "render one transcript (md)"), ("list_case", "list a case (Access.case)"),
       ("export_case", "export one case (10 conversations, md)")]


async def _drive_rss(db: Path, folder: Path, flows: Path, users: list[int], answer: bool, log) -> dict:
    from benchmarks.users import SimUser, WatchedFake, has

    async with WatchedFake() as fake:
        err = open(folder / "serve-rss.log", "ab")
        proc = await start_serve(db, fake, folder, flows=[flows], stderr=err)
        try:
            end = time.monotonic() + 90
            while fake.polls == 0:
                if proc.returncode is not None or time.monotonic() > end:
                    raise RuntimeError(f"serve did not start (exit {proc.returncode}); see {folder / 'serve-rss.log'}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            idle = rss_mb(proc.pid)
            sims = [SimUser(fake, u, timeout=120) for u in users]
            sem = asyncio.Semaphore(50)

            async def one(s: SimUser):
                async with sem:
                    if answer:
                        await s.say("a late answer", has(f"Question {ANSWERED + 2},"))
                    else:
                        await s.say("/start", lambda m: True)  # uninvited: one message, no conversation

            t0 = time.monotonic()
            try:
                await asyncio.gather(*(one(s) for s in sims))
            except TimeoutError as exc:
                err.flush()
                errors = [ln for ln in (folder / "serve-rss.log").read_text(errors="replace").splitlines()
                          if '"level": "error"' in ln]
                raise TimeoutError(f"{exc}\nserve logged {len(errors)} errors, e.g.\n" + "\n".join(errors[:2])) from None
            busy = rss_mb(proc.pid)
            log(f"  scale: serve rss idle {idle[0]:.1f} MB, after {len(users)} users {busy[0]:.1f} MB"
                f" (peak {busy[1]:.1f}) in {time.monotonic() - t0:.0f} s")
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
            err.close()
    return {"idle": idle[0], "rss": busy[0], "hwm": busy[1]}


def run(ctx: Context) -> list[Figure]:
    n = 10_000 if ctx.quick else ctx.scale_conversations
    k = 10 if ctx.quick else 25  # samples per operation per run
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=ctx.workdir))
    flow_text = long_flow(FLOW_ID, QUESTIONS)
    flows = folder / "flows"
    write_flow(flows, FLOW_ID, flow_text)
    try:
        big_path, small_path = folder / "big.db", folder / "small.db"
        (folder / "big").mkdir()
        (folder / "small").mkdir()
        big_facts = generate(folder / "big" / "scale.db", n, flow_text, ctx.log)
        small_facts = generate(folder / "small" / "scale.db", SMALL, flow_text, ctx.log)
        big_path, small_path = folder / "big" / "scale.db", folder / "small" / "scale.db"
        big = Ops(big_path, flow_text, big_facts, seed=1)
        small = Ops(small_path, flow_text, small_facts, seed=2)
        figures = []
        for op, label in OPS:
            per_run_big, per_run_small, worst, worst_big, worst_small = [], [], 0.0, [], []
            for _ in range(ctx.runs):
                xs = [getattr(big, op)() * 1000 for _ in range(k)]
                ys = [getattr(small, op)() * 1000 for _ in range(k)]
                per_run_big.append(statistics.median(xs))
                per_run_small.append(statistics.median(ys))
                worst = max(worst, max(xs))
                worst_big.append(max(xs))
                worst_small.append(max(ys))
            ctx.log(f"  scale {op}: big {[round(x, 2) for x in per_run_big]} ms small {[round(x, 2) for x in per_run_small]} ms"
                    f" worst {worst:.1f} ms")
            figures.append(Figure("scale", f"scale_{op}", f"4. {n:,} conversations: {label}", "ms", per_run_big,
                                  f"{SMALL:,} conversations", per_run_small,
                                  [Target("value", "<=", 50, "< 50 ms")] if op != "answer" else [],
                                  note=f"median of {k} random targets per run; slowest single call {worst:.1f} ms",
                                  extra={"worst_ms": worst}))
            if op == "answer":
                figures.append(Figure("scale", "scale_answer_slowest", f"4. {n:,} conversations: slowest single answer",
                                      "ms", worst_big, f"{SMALL:,} conversations", worst_small,
                                      [Target("max", "<=", 100, "< 100 ms")],
                                      note=f"the slowest of {k} answers in each run"))
        big.close()
        small.close()
        figures[0].extra["database"] = big_facts
        # memory of serve, driven by people whose conversation still waits at question 11
        users_n = 100 if ctx.quick else 600
        rng = random.Random(3)
        fresh = sorted(set(range(n)) - big.answered)
        rss, base = [], []
        for r in range(min(ctx.runs, 3)):
            picked = rng.sample(fresh, users_n)
            fresh = sorted(set(fresh) - set(picked))
            rss.append(asyncio.run(_drive_rss(big_path, folder, flows, [USER_BASE + i for i in picked], True, ctx.log)))
            empty = folder / f"empty-{r}"
            empty.mkdir()
            base.append(asyncio.run(_drive_rss(empty / "empty.db", folder, flows,
                                               [USER_BASE + 10**6 + r * users_n + i for i in range(users_n)], False,
                                               ctx.log)))
        figures.append(Figure(
            "scale", "scale_serve_rss", f"4. serve RSS, {n:,} conversations in progress", "MB", [x["rss"] for x in rss],
            "empty database", [x["rss"] for x in base], [Target("value", "<=", 150, "< 150 MB")],
            note=(f"serve={serve_mode()}; after {users_n} of those people answered over Telegram (fake Bot API);"
                  f" idle after start {statistics.median(x['idle'] for x in rss):.1f} MB,"
                  f" peak {max(x['hwm'] for x in rss):.1f} MB"),
            extra={"big": rss, "empty": base, "users": users_n}))
        return figures
    finally:
        shutil.rmtree(folder, ignore_errors=True)
