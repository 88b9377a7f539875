"""Break the bot on purpose, and check that nothing a person said is lost or doubled.

``python -m benchmarks.chaos`` (``scripts/chaos``) runs, each bounded in time:

kill
    ``restorative-bot serve`` runs as its own process against the fake Bot API server in
    this one, while many simulated users go through a scripted conversation (typing and
    pressing buttons). At random moments the bot is killed with SIGKILL and restarted.
    Users act like people: when no reply comes after the bot is back, they send /start
    and press "Carry on". Checked: every answer a user saw acknowledged (the next question
    arrived) is in the database right after each kill, and exactly once at the end; every
    resume shows the right question (the one after the last answer the bot committed);
    everyone finishes with exactly their own answers.
faults
    The same, without kills, while the fake server answers a stream of calls with 429
    (retry_after), 500, dropped connections and slow replies. Checked: the same, and no
    question is sent twice unless the person asked for it again.
fuzz
    hypothesis, seeded: the YAML loader on mutated flows and arbitrary text; flow files
    of arbitrary bytes (invalid UTF-8, NULs, BOMs) through the loader and through
    ``restorative-bot validate`` / ``chat`` processes; arbitrary text and button values
    through the conversation service; arbitrary messages and callback data (including
    another person's conversation ids) through the real Telegram frontend. Checked: never
    an exception or a traceback, always a clear message.

flood
    ``restorative-bot serve`` with its real rate limits, while many accounts without a
    role send disclosure-like and bulky (4 KB) messages as fast as they can, and the fake
    server delivers about one message a second to one chat, as Telegram does. Meanwhile a
    family member in a case makes a genuine disclosure and the practitioner and the lead
    use commands. Reported: how long the genuine alert takes to reach the lead and the
    practitioner, and how long /cases and /ack take to answer. Checked: every genuine
    alert and command arrives, one open alert per person, what was stored and audited
    stays bounded, and no error in serve's log.

Every run prints what it did and what it found, and exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, start_serve, stop_serve, write_flow
from benchmarks.users import WatchedFake

FLOW_ID = "chaos"
STEPS = ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]
CHOICES = ["Mum", "Dad", "Carer"]

CHAOS_FLOW = f"""id: {FLOW_ID}
version: 1
title: Chaos check-in
audience: family
steps:
  - id: q1
    ask: "[q1] What happened, in a few words?"
    type: text
  - id: q2
    ask: "[q2] On a scale of 0 to 10, where are things now?"
    type: scale
    min: 0
    max: 10
  - id: q3
    ask: "[q3] Who was there?"
    type: choice
    options: [{", ".join(CHOICES)}]
  - id: q4
    ask: "[q4] Did anything help?"
    type: yesno
  - id: q5
    ask: "[q5] What would help next time?"
    type: text
  - id: q6
    ask: "[q6] How many days ago was it?"
    type: number
    min: 0
    max: 365
  - id: q7
    ask: "[q7] Is there anything else?"
    type: text
  - id: done
    say: "[end] Thank you, that is everything."
"""

TAG = re.compile(r"\[(q\d+|end)\]")


def plan_for(user: int, rng: random.Random) -> dict[str, tuple[str, str]]:
    """What this user answers at each question: (typed text or button label, 'type'|'press')."""
    how = lambda: "press" if rng.random() < 0.6 else "type"  # noqa: E731
    return {
        "q1": (f"u{user} it happened at school", "type"),
        "q2": (str(user * 7 % 11), how()),
        "q3": (CHOICES[user % 3], how()),
        "q4": ("Yes" if user % 2 else "No", how()),
        "q5": (f"u{user} would like more time", "type"),
        "q6": (str(user % 365), "type"),
        "q7": (f"u{user} nothing else", "type"),
    }


def expected_shown(plan: dict) -> dict[str, str]:
    """The answers as the store keeps them (``shown``), by running the flow offline."""
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner, Input

    flow, _ = load_flow_text(CHAOS_FLOW, "<chaos>")
    runner = FlowRunner(flow)
    session = runner.start().session
    out = {}
    for step in STEPS:
        result = runner.step(session, Input.from_text(plan[step][0]))
        assert result.accepted, (step, plan[step], [p.text for p in result.prompts])
        out[step] = result.records[0].shown
        session = result.session
    return out


@dataclass
class BotState:
    """What users know about the bot process: whether it is up, since when."""

    up: bool = False
    ready_at: float = 0.0
    polls_at_start: int = 0
    chaos_done: bool = True  # every kill and fault asked for has happened (users carry on until then)


@dataclass
class Report:
    name: str
    users: int = 0
    finished: int = 0
    kills: int = 0
    faults: int = 0
    conversations: int = 0
    inputs: int = 0
    stalls: int = 0  # no reply after the bot was up: the user sent /start to carry on
    resumes: int = 0
    checks: int = 0  # database snapshots checked after kills
    duplicate_questions: int = 0
    error_logs: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    why: dict = field(default_factory=dict)  # what the stalls turned out to be
    figures: dict = field(default_factory=dict)  # measured values to report (flood)

    def saw(self, what: str) -> None:
        self.why[what] = self.why.get(what, 0) + 1

    def line(self) -> str:
        return (f"{self.name}: {self.conversations} conversations, {self.finished}/{self.users} users finished their last,"
                f" {self.inputs} inputs, {self.kills} kills,"
                f" {self.faults} faults, {self.stalls} stalls recovered by /start ({self.resumes} resumes),"
                f" {self.checks} post-kill checks, {self.duplicate_questions} unasked-for repeated questions,"
                f" {self.error_logs} error log lines, {len(self.violations)} violations, {self.seconds:.0f} s"
                + (f"\n  stalls: {self.why}" if self.why else "")) if not self.figures else (
            f"{self.name}: " + ", ".join(f"{k} {v}" for k, v in self.figures.items())
            + f", {self.error_logs} error log lines, {len(self.violations)} violations, {self.seconds:.0f} s")


class ChaosUser:
    def __init__(self, fake: WatchedFake, uid: int, plan: dict, bot: BotState, report: Report, stall: float):
        self.fake, self.id, self.plan, self.bot, self.report, self.stall = fake, uid, plan, bot, report, stall
        self.pos: int | None = None  # index of the question on screen (None: not started)
        self.acked: list[str] = []  # answers acknowledged: the next question arrived
        self.in_flight: str | None = None
        self.question = None  # the message showing the current question
        self.done = False
        self.expect: dict[str, int] = {}  # tagged bot messages this user asked for, by tag
        self.pressed = False
        self.started = 0  # conversations this user has seen begin
        self.completed = 0
        self.trace: list[str] = []
        self.updates: list[int] = []  # every update this user sent, to check none was lost
        self.t0 = time.monotonic()

    # -- waiting like a person: patient while the bot is down ----------------------------
    async def wait(self, before: int, pred, sent_at: float):
        while True:
            m = await self.fake.wait_new(self.id, before, pred, 0.25)
            if m is not None:
                self.note(f"got {(m.text or '')[:50]!r}")
                return m
            if self.bot.up and time.monotonic() - max(sent_at, self.bot.ready_at) > self.stall:
                self.note("no reply: stalled")
                return None

    def _expect(self, tag: str) -> None:
        self.expect[tag] = self.expect.get(tag, 0) + 1

    def _tag_pred(self, tag: str):
        return lambda m: f"[{tag}]" in (m.text or "")

    async def _send(self, text: str) -> tuple[int, float]:
        before = self.fake.count(self.id)
        uid = self.fake.inject_message(self.id, text, first_name=f"U{self.id}")
        self.updates.append(uid)
        self.note(f"sent {text!r} (update {uid})")
        self.report.inputs += 1
        return before, time.monotonic()

    async def _press(self, message, data: str) -> tuple[int, float] | None:
        before = self.fake.count(self.id)
        try:
            uid = self.fake.press_button(self.id, message.message_id, data)
        except (ValueError, KeyError):  # the keyboard has gone (closed): type instead
            self.note(f"could not press {data!r}: no such button now")
            return None
        self.updates.append(uid)
        self.note(f"pressed {data!r} (update {uid})")
        self.report.inputs += 1
        return before, time.monotonic()

    # -- the conversation --------------------------------------------------------------
    def note(self, what: str) -> None:
        self.trace.append(f"{time.monotonic() - self.t0:7.2f} {what}")

    def reset(self) -> None:
        """A new conversation, once the last one is finished."""
        self.pos, self.acked, self.in_flight, self.question, self.done = None, [], None, None, False
        self.note("-- next conversation")

    async def run(self, soft: float, hard: float) -> None:
        """Conversation after conversation until ``soft``; the one under way then is
        finished, if it can be, by ``hard``."""
        while time.monotonic() < hard:
            if self.done:
                self.completed += 1
                if time.monotonic() >= soft and self.bot.chaos_done:
                    return
                self.reset()
                continue
            was = self.pos
            if self.pos is None:
                await self.begin()
            elif self.in_flight is not None:
                await self.recover()  # never answer again before knowing where we are
            else:
                await self.answer()
            if was is None and self.pos is not None:
                self.started += 1

    async def _start_menu(self):
        """Send /start and wait for the flows or resume buttons (None, counted, if none come)."""
        before, t = await self._send("/start")
        m = await self.wait(before, lambda m: any((cb or "")[:2] in ("s:", "r:") for row in self.fake.buttons(m)
                                                  for _, cb in row), t)
        if m is None:
            self.report.stalls += 1
            self.report.saw("no answer to /start")
        return m

    async def begin(self) -> None:
        m = await self._start_menu()
        if m is None:
            return
        datas = [cb for row in self.fake.buttons(m) for _, cb in row]
        if any(d.startswith("r:") for d in datas):  # a conversation of ours is open already
            self.in_flight = "start"
            await self.resume(m)
            return
        if self.pos is not None:
            return
        sent = await self._press(m, f"s:{FLOW_ID}")
        if sent is None:
            return
        self._expect("q1")
        q = await self.wait(sent[0], self._tag_pred("q1"), sent[1])
        if q is None:
            self.report.stalls += 1
            self.report.saw("no first question after choosing the flow")
            return
        self.pos, self.question = 0, q

    async def resume(self, offer) -> None:
        yes = next(cb for row in self.fake.buttons(offer) for _, cb in row if cb.startswith("r:") and cb.endswith(":y"))
        sent = await self._press(offer, yes)
        if sent is None:
            return
        q = await self.wait(sent[0], lambda m: bool(TAG.search(m.text or "")), sent[1])
        if q is None:
            self.report.stalls += 1
            self.report.saw("no question after Carry on")
            return
        self.report.resumes += 1
        tag = TAG.search(q.text).group(1)
        self._expect(tag)  # "Carry on" shows the current question again, as asked
        got = len(STEPS) if tag == "end" else STEPS.index(tag)
        if self.in_flight == "start":  # the flow was started, its first question never came
            self.in_flight = None
            self.report.saw("started, but the first question was never sent")
            if got != 0:
                self.report.violations.append(f"user {self.id}: a fresh conversation resumed at {tag}")
            self.pos, self.question = got, q
            return
        low = 0 if self.pos is None else self.pos
        allowed = {low, low + 1} if self.in_flight else {low}
        if self.in_flight:
            self.report.saw(f"{'answer committed, reply not received in time' if got == low + 1 else 'answer lost before commit'}"
                            f" ({'button' if self.plan[self.in_flight][1] == 'press' and self.pressed else 'typed'})")
        if got not in allowed:
            self.report.violations.append(
                f"user {self.id}: resumed at {tag}, expected {[STEPS[i] if i < len(STEPS) else 'end' for i in sorted(allowed)]}"
                f" (acknowledged: {self.acked}, in flight: {self.in_flight})")
        if self.in_flight and got == low + 1:
            self.acked.append(self.in_flight)
        self.in_flight = None
        if got == len(STEPS):
            self.done = True
            return
        self.pos, self.question = got, q

    async def answer(self) -> None:
        step = STEPS[self.pos]
        value, how = self.plan[step]
        sent = None
        if how == "press" and self.question is not None:
            data = next((cb for row in self.fake.buttons(self.question) for t, cb in row if t.removeprefix("✓ ") == value),
                        None)
            if data is not None:
                sent = await self._press(self.question, data)
        self.pressed = sent is not None
        if sent is None:
            sent = await self._send(value)
        self.in_flight = step
        nxt = STEPS[self.pos + 1] if self.pos + 1 < len(STEPS) else "end"
        self._expect(nxt)
        m = await self.wait(sent[0], self._tag_pred(nxt), sent[1])
        if m is None:
            # No reply though the bot is up: do what a person does, /start and carry on.
            self.report.stalls += 1
            await self.recover()
            return
        self.acked.append(step)
        self.in_flight = None
        if nxt == "end":
            self.done = True
        else:
            self.pos, self.question = self.pos + 1, m

    async def recover(self) -> None:
        """/start, then "Carry on": where does the bot say we are?"""
        if self.done or self.in_flight is None:
            return
        m = await self._start_menu()
        if m is None:
            return
        datas = [cb for row in self.fake.buttons(m) for _, cb in row]
        if any(d.startswith("r:") for d in datas):
            await self.resume(m)
            return
        # The flow menu: nothing open. Only right if the last answer finished the flow.
        self.note("offered the flow menu")
        if self.pos == len(STEPS) - 1:
            self.acked.append(self.in_flight)
            self.in_flight = None
            self.done = True
        else:
            self.report.violations.append(
                f"user {self.id}: conversation gone after {self.acked} (in flight {self.in_flight}): offered the menu")
            self.done = True


# -- checks against the database ----------------------------------------------------------

def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=30)


def _conversations(conn, user: int) -> list[tuple[int, str]]:
    return conn.execute(
        """SELECT c.id, c.status FROM conversations c JOIN people p ON p.id = c.person_id
           WHERE p.key = ? AND c.flow_id = ? ORDER BY c.id""", (f"tg:{user}", FLOW_ID)).fetchall()


def check_acknowledged(db: Path, users: list[ChaosUser], report: Report) -> None:
    """Right after a kill: every acknowledged answer of the conversation under way is stored;
    at most the one in flight more."""
    conn = _db(db)
    try:
        for u in users:
            if u.pos is None or u.done:
                continue
            convs = _conversations(conn, u.id)
            if not convs:
                report.violations.append(f"user {u.id}: a conversation under way is not in the database")
                continue
            rows = conn.execute("SELECT step_id FROM answers WHERE conversation_id = ? AND current = 1",
                                (convs[-1][0],)).fetchall()
            stored = {r[0] for r in rows}
            missing = [s for s in u.acked if s not in stored]
            if missing:
                report.violations.append(f"user {u.id}: acknowledged {missing} not stored after a kill")
            extra = stored - set(u.acked) - ({u.in_flight} if u.in_flight else set())
            if len(extra) > 1:  # the answer being sent right now may land in the new process
                report.violations.append(f"user {u.id}: stored {sorted(extra)} beyond what was acknowledged")
    finally:
        conn.close()
    report.checks += 1


def check_none_lost(db: Path, updates: list[tuple[int, int]], report: Report) -> None:
    """Every update a person sent was handled (its input key is stored), so none was
    confirmed to Telegram and then dropped.
    A lost one is a violation even though the simulated person, like a real one, would
    send /start and carry on."""
    conn = _db(db)
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM inputs")}
        dropped = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'rate.limited'").fetchone()[0]
    finally:
        conn.close()
    lost = [(user, u) for user, u in updates if f"tg:{u}" not in keys]
    if lost and not dropped:
        for user, u in lost[:10]:
            report.violations.append(f"user {user}: update {u} was confirmed to Telegram but never handled (lost)")


def check_final(db: Path, users: list[ChaosUser], report: Report) -> None:
    """Each user's conversations: as many as they began, finished ones complete and exactly
    theirs, every answer stored once, no input applied twice."""
    conn = _db(db)
    try:
        for u in users:
            want = expected_shown(u.plan)
            convs = _conversations(conn, u.id)
            if len(convs) != u.started:
                report.violations.append(f"user {u.id}: {len(convs)} conversations in the database, began {u.started}")
                continue
            report.conversations += len(convs)
            for i, (cid, status) in enumerate(convs):
                rows = conn.execute(
                    "SELECT step_id, shown, revision FROM answers WHERE conversation_id = ? AND current = 1",
                    (cid,)).fetchall()
                got = {s: shown for s, shown, _ in rows}
                last = i == len(convs) - 1
                if not last or u.done:
                    if status != "completed" or got != want:
                        report.violations.append(f"user {u.id}: finished conversation {cid} stored as {status} {got}")
                else:
                    for s in u.acked:
                        if got.get(s) != want[s]:
                            report.violations.append(f"user {u.id}: acknowledged {s}={want[s]!r} stored as {got.get(s)!r}")
                wrong = {s: got[s] for s in got if got[s] != want.get(s)}
                if wrong:
                    report.violations.append(f"user {u.id}: answers not theirs or wrong in {cid}: {wrong}")
                twice = [s for s, _, r in rows if r != 1]
                if twice:
                    report.violations.append(f"user {u.id}: answered more than once in {cid}: {twice}")
                keys = conn.execute(
                    """SELECT input_key, COUNT(*) FROM transcript WHERE conversation_id = ? AND direction = 'in'
                       AND input_key IS NOT NULL GROUP BY input_key HAVING COUNT(*) > 1""", (cid,)).fetchall()
                if keys:
                    report.violations.append(f"user {u.id}: inputs applied twice in {cid}: {keys}")
            if u.done:
                report.finished += 1
    finally:
        conn.close()


def count_repeats(fake: WatchedFake, users: list[ChaosUser], report: Report) -> None:
    """Questions sent again though nobody asked (a resume asks for the current one again)."""
    for u in users:
        got: dict[str, int] = {}
        for msg in fake.bot_msgs.get(u.id, []):
            if m := TAG.search(msg.text or ""):
                got[m.group(1)] = got.get(m.group(1), 0) + 1
        extra = sum(max(0, n - u.expect.get(tag, 0)) for tag, n in got.items())
        report.duplicate_questions += extra
        if extra and len(report.notes) < 8:
            report.notes.append(f"user {u.id} was sent a question again unasked; trace:\n    " + "\n    ".join(u.trace))


def _error_lines(log: Path) -> list[str]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"level": "error"' in line or "Traceback" in line:
            out.append(line[:300])
    return out


# -- the kill and fault runs ----------------------------------------------------------------

async def _wait_up(fake: WatchedFake, proc, bot: BotState, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while fake.polls <= bot.polls_at_start:
        if proc.returncode is not None:
            raise RuntimeError(f"serve exited with {proc.returncode} before polling")
        if time.monotonic() > end:
            raise TimeoutError("serve did not start polling")
        await asyncio.sleep(0.02)
    bot.up, bot.ready_at = True, time.monotonic()


async def run_scenario(name: str, *, duration: float, users: int, seed: int, workdir: Path, kills: bool | int,
                       faults: bool | int, stall: float = 4.0, finish: float = 60.0, log=print) -> Report:
    """``kills`` / ``faults``: True for as many as fit in ``duration``; a number for exactly
    that many, however long they take (users carry on conversations until they are done),
    so that a slow machine runs the same chaos, only slower."""
    rng = random.Random(seed)
    report = Report(name, users=users)
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-", dir=workdir))
    flows = folder / "flows"
    write_flow(flows, FLOW_ID, CHAOS_FLOW)
    db, serve_log = folder / "chaos.db", folder / "serve.log"
    t_start = time.monotonic()
    deadline = t_start + duration
    bot = BotState(chaos_done=not (kills is not True and kills) and not (faults is not True and faults))
    try:
        async with WatchedFake() as fake:
            ids = [900_000 + seed % 1000 * 1000 + i for i in range(users)]
            people = [ChaosUser(fake, u, plan_for(u, rng), bot, report, stall) for u in ids]

            async def serve():
                bot.polls_at_start = fake.polls
                with open(serve_log, "ab") as err:
                    proc = await start_serve(db, fake, folder, flows=[flows], stderr=err, demo_flow=FLOW_ID)
                await _wait_up(fake, proc, bot)
                return proc

            proc = await serve()
            # users start staggered over the first second
            async def person(p: ChaosUser):
                await asyncio.sleep(rng.random())
                await p.run(deadline, deadline + finish)  # until the deadline; then a while to finish

            tasks = [asyncio.create_task(person(p)) for p in people]
            injector = asyncio.create_task(_inject_faults(fake, rng, deadline, report, faults, bot)) if faults else None
            try:
                while kills and ((report.kills < kills) if kills is not True
                                 else time.monotonic() < deadline and not all(t.done() for t in tasks)):
                    await asyncio.sleep(rng.uniform(0.3, 3.0))  # a random moment
                    if kills is True and time.monotonic() >= deadline:
                        break
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    bot.up = False
                    report.kills += 1
                    check_acknowledged(db, people, report)
                    proc = await serve()
                if kills is not True and kills and injector is None:
                    bot.chaos_done = True
                if injector is not None:
                    await injector  # a fixed number: wait for every fault to be taken
                finish_by = max(time.monotonic(), deadline) + finish  # then a while, at most, to finish
                while not all(t.done() for t in tasks) and time.monotonic() < finish_by:
                    await asyncio.sleep(0.1)
                if injector is not None:
                    injector.cancel()
                    fake.clear_faults()
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if not await stop_serve(proc):
                    report.violations.append("serve did not stop on SIGTERM within 20 s")
            count_repeats(fake, people, report)
            sent = [(p.id, u) for p in people for u in p.updates]
        check_final(db, people, report)
        check_none_lost(db, sent, report)
        bad = {int(m.group(1)) for v in report.violations if (m := re.match(r"user (\d+):", v))}
        for p in people:
            if p.id in bad:
                report.notes.append(f"trace of user {p.id}:\n    " + "\n    ".join(p.trace))
        unfinished = [p.id for p in people if not p.done]
        if unfinished:
            report.violations.append(f"{len(unfinished)} users could not finish in time: {unfinished[:10]}")
        errors = _error_lines(serve_log)
        report.error_logs = len(errors)
        if errors:
            report.notes += errors[:5]
        if faults is False and errors:
            report.violations.append(f"{len(errors)} error lines in serve's log, e.g. {errors[0]}")
    except Exception as exc:  # the harness itself must report, not crash
        _harness_failed(report, name, exc, serve_log)
    finally:
        _keep_or_clean(report, folder, workdir / f"chaos-{name}-failed-{seed}", t_start)
    log(report.line())
    return report


def _harness_failed(report, name: str, exc: Exception, serve_log: Path) -> None:
    """The harness itself failed: a violation, with the tail of serve's log to say why."""
    tail = serve_log.read_text(errors="replace")[-3000:] if serve_log.exists() else ""
    report.violations.append(f"{name}: {type(exc).__name__}: {exc}\nserve log tail:\n{tail}")


def _keep_or_clean(report, folder: Path, keep: Path, t_start: float) -> None:
    """Time the run; keep its database and serve log where a violation was found, else delete them."""
    report.seconds = time.monotonic() - t_start
    if report.violations:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.move(str(folder), keep)
        report.notes.append(f"kept the database and serve log in {keep}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


FAULT_METHODS = ["sendMessage", "sendMessage", "editMessageText", "answerCallbackQuery", "getUpdates",
                 "editMessageReplyMarkup"]


async def _inject_faults(fake: WatchedFake, rng: random.Random, deadline: float, report: Report,
                         count: bool | int = True, bot: BotState | None = None) -> None:
    """A steady trickle of faults, at most a few queued at once (so retries can succeed):
    until ``deadline``, or (``count`` a number) exactly that many, each taken by a call."""
    fixed = count is not True
    try:
        await _trickle(fake, rng, deadline, report, count if fixed else None)
    finally:
        if fixed and bot is not None:
            bot.chaos_done = True


async def _trickle(fake: WatchedFake, rng: random.Random, deadline: float, report: Report, count: int | None) -> None:
    while (report.faults < count) if count is not None else time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        if len(fake._faults) >= 3:  # noqa: SLF001 - the queue of faults not yet taken
            continue
        method = rng.choice(FAULT_METHODS)
        kind = rng.choice(["429", "500", "drop", "slow"])
        if kind == "429":
            fake.fail_next(method, status=429, retry_after=1)
        elif kind == "500":
            fake.fail_next(method, status=rng.choice([500, 502, 503]))
        elif kind == "drop":
            fake.fail_next(method, drop_connection=True)
        else:
            fake.fail_next(method, delay=rng.uniform(0.2, 2.0))
        report.faults += 1
    while count is not None and fake._faults:  # noqa: SLF001 - each fault asked for is taken by a call
        await asyncio.sleep(0.05)


# -- the flood ------------------------------------------------------------------------------

FLOOD_PRACTITIONER, FLOOD_FAMILY = 998, 997
FLOOD_TEXTS = ["i want to die", "he hits me and i dont feel safe at home", "i am going to kill myself tonight",
               "someone touches me at night", "nobody feeds us and i am scared"]


def _flood_text(rng: random.Random, user: int, n: int, bulky_kb: int) -> str:
    words = f"{rng.choice(FLOOD_TEXTS)} ({user}-{n})"
    if rng.random() < 0.5:  # bulky: the same words, padded to a few KB
        words += " " + "x" * (bulky_kb * 1024 - len(words) - 1)
    return words


async def run_flood(*, accounts: int, messages: int, seed: int, workdir: Path, chat_interval: float = 1.0,
                    probes: int = 3, bulky_kb: int = 4, timeout: float = 60.0, log=print) -> Report:
    """Many accounts without a role flood the real serve process; genuine alerts and staff
    commands are timed while it lasts (see the module docstring)."""
    from benchmarks.common import LEAD, serve_argv, serve_env
    from benchmarks.users import SimUser, button_data, has, has_button

    rng = random.Random(seed)
    report = Report("flood", users=accounts)
    folder = Path(tempfile.mkdtemp(prefix="chaos-flood-", dir=workdir))
    db, serve_log, config = folder / "flood.db", folder / "serve.log", folder / "flood-config.yaml"
    # the real limits (no 'limits:' section): this part is about them
    config.write_text(f"safeguarding:\n  leads: [{LEAD}]\nroles:\n  practitioner: [{FLOOD_PRACTITIONER}]\n"
                      "demo_flow: scaling-checkin\n", encoding="utf-8")
    t_start = time.monotonic()
    alert_s: list[float] = []
    cases_s: list[float] = []
    ack_s: list[float] = []
    try:
        async with WatchedFake() as fake:
            with open(serve_log, "ab") as err:
                proc = await asyncio.create_subprocess_exec(
                    *serve_argv(db, config), cwd=str(ROOT), env=serve_env(fake.base_url),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err)
            try:
                await _wait_up(fake, proc, BotState())
                pract, fam, lead = (SimUser(fake, u, timeout) for u in (FLOOD_PRACTITIONER, FLOOD_FAMILY, LEAD))
                made = await pract.say("/invite scaling-checkin FLOOD-1 --for adult", has("start="))
                code = re.search(r"start=(\S+)", made.text).group(1)
                consent = await fam.say(f"/start {code}", has_button("i:"))
                await fam.press(consent, button_data(consent, "Yes, start"), has("best hopes"))
                # from now on, like Telegram: about one message a second to one chat, and a
                # 429 Too Many Requests with a retry_after for a send that comes too soon
                fake.chat_send_interval, fake.chat_send_mode = chat_interval, "429"
                flooders = [3_000_000 + seed % 1000 * 1000 + i for i in range(accounts)]
                injected = [0, 0]  # messages, last update id

                async def flood() -> None:
                    for n in range(messages):
                        for u in flooders:
                            injected[1] = fake.inject_message(u, _flood_text(rng, u, n, bulky_kb), first_name="Flood")
                            injected[0] += 1
                        await asyncio.sleep(0.05)  # a round from every account, twenty rounds a second

                flooding = asyncio.create_task(flood())
                for k in range(probes):
                    await asyncio.sleep(0.5 if k == 0 else 1.0)  # the flood is under way
                    words = f"my stepdad hurts me and i am scared to go home, probe {k}"
                    before_lead, before_pract = fake.count(LEAD), fake.count(FLOOD_PRACTITIONER)
                    t0 = time.perf_counter()
                    fake.inject_message(FLOOD_FAMILY, words)
                    got = await fake.wait_new(LEAD, before_lead, has(words), timeout)
                    if got is None:
                        report.violations.append(f"probe {k}: the genuine alert did not reach the lead within {timeout:.0f} s")
                        continue
                    alert_s.append(fake.arrived[(LEAD, got.message_id)] - t0)
                    to_pract = await fake.wait_new(FLOOD_PRACTITIONER, before_pract, has(words), timeout)
                    if to_pract is None:
                        report.violations.append(f"probe {k}: the genuine alert did not reach the practitioner")
                    try:
                        await pract.say("/cases", has("FLOOD-1"))
                        cases_s.append(pract.latencies[-1])
                        alert_id = re.search(r"/ack (\d+)", got.text).group(1)
                        await lead.say(f"/ack {alert_id}", has("Reminders have stopped"))
                        ack_s.append(lead.latencies[-1])
                    except TimeoutError as exc:
                        report.violations.append(f"probe {k}: {exc}")
                await flooding
                await fake.wait_for(lambda: fake.is_confirmed(injected[1]), timeout=timeout)  # all read
                report.inputs = injected[0]
                lead_msgs = fake.count(LEAD)
            finally:
                if not await stop_serve(proc):
                    report.violations.append("serve did not stop on SIGTERM within 20 s")
        conn = _db(db)
        try:
            doubled = conn.execute("""SELECT person_id, COUNT(*) FROM alerts WHERE acknowledged_at IS NULL
                                      GROUP BY person_id HAVING COUNT(*) > 1""").fetchall()
            alerts = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
            stored = conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
            limited = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'rate.limited'").fetchone()[0]
            audit_rows = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        finally:
            conn.close()
        if doubled:
            report.violations.append(f"{len(doubled)} people have more than one open alert")
        if stored > accounts * 25 + 100:
            report.violations.append(f"{stored} inputs stored from {accounts} accounts: the cap did not hold")

        def stat(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}/{max(xs):.2f} s" if xs else "none"

        report.notes.append("genuine alert to lead, each probe: " + ", ".join(f"{x:.2f}" for x in alert_s)
                            + " s; /cases: " + ", ".join(f"{x:.2f}" for x in cases_s) + " s")

        report.figures = {
            "accounts": accounts, "flood messages": report.inputs, "genuine alert to lead (median/max)": stat(alert_s),
            "/cases (median/max)": stat(cases_s), "/ack (median/max)": stat(ack_s), "alerts": alerts,
            "messages to the lead": lead_msgs, "inputs stored": stored, "audit rows": audit_rows,
            "rate-limit audit rows": limited,
        }
        errors = _error_lines(serve_log)
        report.error_logs = len(errors)
        if errors:
            report.violations.append(f"{len(errors)} error lines in serve's log, e.g. {errors[0]}")
    except Exception as exc:  # the harness itself must report, not crash
        _harness_failed(report, "flood", exc, serve_log)
    finally:
        _keep_or_clean(report, folder, workdir / f"chaos-flood-failed-{seed}", t_start)
    log(report.line())
    return report


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
    """kill -9 after an answer is committed and its update confirmed to Telegram, while
    its reply is still on its way: after the restart the person must get that reply.
    (python-telegram-bot confirms an update, by asking for the next ones, as soon as it
    has fetched it, so Telegram will not deliver it again.)"""
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
            fake.fail_next("sendMessage", delay=30)  # the reply to the next answer is slow to go out
            before = fake.count(u)
            uid = fake.inject_message(u, "it happened at school")
            # the answer is committed and its reply is on its way (whether or not the update has
            # been confirmed to Telegram yet: the bot confirms only after handling a batch)
            await fake.wait_for(lambda: fake.calls_to("sendMessage")[-1].status is None, 20)
            committed = 0
            for _ in range(200):
                conn = _db(db)
                committed = conn.execute("SELECT COUNT(*) FROM inputs WHERE key = ?", (f"tg:{uid}",)).fetchone()[0]
                conn.close()
                if committed:
                    break
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            fake.clear_faults()
            if not committed:
                return ["restart check: the answer was not committed before the kill; could not test"]
            proc = await up()
            m = await fake.wait_new(u, before, lambda m: "[q2]" in (m.text or ""), 15)
            if m is None:
                problems.append("after kill -9 and restart, a committed answer's reply (the next question) was never"
                                " sent: the update had been confirmed to Telegram, so it is not delivered again, and"
                                " nothing resends committed replies not yet delivered")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
    return problems


# -- fuzzing --------------------------------------------------------------------------------

LINE_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$", re.S)


def _check_errors(errors, name: str, text: str | None = None) -> None:
    assert errors, "no flow and no error"
    for e in errors:
        s = str(e)
        m = LINE_RE.match(s)
        assert m and m.group("file") == name, f"not file:line:col: message: {s!r}"
        assert int(m.group("line")) >= 1 and int(m.group("col")) >= 1, s
        if text is not None:
            assert int(m.group("line")) <= text.count("\n") + 2, f"line out of range: {s!r}"
        assert "Traceback" not in s, s


def fuzz_loader(examples: int, seed: int) -> int:
    """Mutated flows and arbitrary text through load_flow_text: a flow or clear errors."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis import seed as hseed

    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner, Input
    from benchmarks.common import ten_step_flow

    base = ten_step_flow().splitlines() + CHAOS_FLOW.splitlines()
    pieces = st.sampled_from(base + ["  - id: x", "    next: nowhere", "    type: scale", "    min: 10", "    max: 0",
                                     "    ask: '{{ answers.nope }}'", "    ask: '{% for x in y %}'", "steps: 5",
                                     "    options: []", "    if: answer >", "\t- tab", "id: [", "&a x", "*a",
                                     "    goto: q1", "version: -1", "audience: martians", "    pattern: '('",
                                     "    validate: [{if: answer == 1}]", "    optional: maybe", "%YAML 9.9", "---"])
    mutated = st.lists(pieces, min_size=0, max_size=40).map("\n".join)
    spliced = st.tuples(st.integers(0, len(base)), st.integers(0, len(base)), st.text(max_size=30)).map(
        lambda t: "\n".join(base[:t[0]]) + t[2] + "\n".join(base[t[1]:]))
    count = [0]

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.text(max_size=400), mutated, spliced))
    def prop(text):
        count[0] += 1
        flow, errors = load_flow_text(text, "<fuzz>")
        if flow is None:
            _check_errors(errors, "<fuzz>", text)
            return
        runner = FlowRunner(flow)  # a loaded flow always compiles and runs
        result = runner.start()
        for word in ("yes", "3", "/back", "x" * 50, "/skip", ""):
            if result.finished:
                break
            result = runner.step(result.session, Input.from_text(word))
            assert result.prompts or result.finished

    prop()
    return count[0]


def fuzz_files(examples: int, seed: int, folder: Path) -> int:
    """Arbitrary bytes as flow files: invalid UTF-8, NULs, BOMs, CRLF, huge lines."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis import seed as hseed

    from bot.engine.loader import load_flow_file

    good = CHAOS_FLOW.encode()
    blobs = st.one_of(
        st.binary(max_size=600),
        st.tuples(st.integers(0, len(good)), st.binary(min_size=1, max_size=8)).map(lambda t: good[:t[0]] + t[1] + good[t[0]:]),
        st.sampled_from([b"\xef\xbb\xbf" + good, good.replace(b"\n", b"\r\n"), good + b"\x00", b"\xff\xfe" + good,
                         good.decode().encode("utf-16"), b"id: x\n" + b"a" * 100_000]),
    )
    count = [0]
    path = folder / "fuzz.yaml"

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(blobs)
    def prop(data):
        count[0] += 1
        path.write_bytes(data)
        flow, errors = load_flow_file(path)
        if flow is None:
            _check_errors(errors, str(path))
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                assert flow is None and errors, "invalid UTF-8 accepted"

    prop()
    return count[0]


def cli_processes(folder: Path, invalid_stdin: bool = True) -> list[str]:
    """The CLI on bad files (and, with ``invalid_stdin``, undecodable bytes typed into
    ``chat``): exit codes, messages, never a traceback."""
    import subprocess

    problems = []
    bad = folder / "bad.yaml"
    bad.write_bytes(b"id: x\nversion: 1\ntitle: \xff\xfe broken\n")
    cases = [
        (["validate", str(bad)], None, 1, str(bad) + ":"),
        (["validate", str(folder / "missing.yaml")], None, 1, "missing.yaml"),
        (["chat", "scaling-checkin", "--db", str(folder / "c.db"), "--as", "fuzz", "--for", "adult"],
         b"\x00control\x01\n\x1b[31mred\x07\nok fine\n" + "🙂 émoji ".encode() * 500 + b"\n", None, None),
    ]
    if invalid_stdin:
        cases += [
            (["chat", "scaling-checkin", "--db", str(folder / "c2.db"), "--as", "fuzz2", "--for", "adult"],
             b"\xff\xfe bad bytes\n\xc3\x28\n7\n", None, None),
        ]
    for args, stdin, code, needle in cases:
        p = subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=60)
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if "Traceback" in out + err:
            problems.append(f"restorative-bot {' '.join(args[:2])}: traceback\n{err[-1500:]}")
        if code is not None and p.returncode != code:
            problems.append(f"restorative-bot {' '.join(args[:2])}: exit {p.returncode}, expected {code}: {err[-500:]}")
        if needle and needle not in out + err:
            problems.append(f"restorative-bot {' '.join(args[:2])}: no clear message naming {needle!r}: {out[-300:]} {err[-300:]}")
    return problems


def fuzz_service(examples: int, seed: int, surrogates: bool = True) -> int:
    """Arbitrary text (control characters, emoji, 100 kB, and with ``surrogates`` the lone
    surrogates that undecodable bytes become) and button values through
    ConversationService, in every flow: a reply with something to show, every time."""
    from hypothesis import HealthCheck, example, given, settings, strategies as st
    from hypothesis import seed as hseed

    from benchmarks.common import safeguarding
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.engine.runner import Input
    from bot.store import Store

    library = FlowLibrary.load()
    flows = [f.id for f in library]
    service = ConversationService(Store(":memory:"), library, safeguarding=safeguarding())
    pid = service.person("fuzz:1", "Fuzz")
    anything = st.characters(codec=None, exclude_categories=() if surrogates else ("Cs",))
    odd = ["🙂" * 3000, "\x00\x01\x02\x1b[2J", "a" * 100_000, "\u202e\u200b\ufeff", "/back", "/skip", "/cancel",
           "/repeat", "/help", "/start", "10", "-1", "1e9", "Yes", "no", " ", "", "\n\n", "NaN", "inf", "1,2,3", "0x10",
           "٣", "½", "e\u0301", "\r\n", "\t"]
    if surrogates:
        odd += ["\ud800", "\udcff hello", "caf\udce9"]  # what b"caf\xe9" becomes with errors="surrogateescape"
    texts = st.one_of(st.text(max_size=200), st.text(alphabet=anything, max_size=100), st.sampled_from(odd))
    buttons = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=4),
                        st.floats(allow_nan=True), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    kinds = st.sampled_from(["answer"] * 6 + ["back", "skip", "repeat", "cancel", "help", "continue"])
    count = [0]

    def prop(flow_id, inputs):
        count[0] += 1
        if service.active(pid) is None:
            service.start(pid, flow_id)
        for kind, text, button, as_button in inputs:
            if kind == "answer":
                inp = Input("answer", button=button) if as_button else Input.from_text(text)
            else:
                inp = Input(kind, text=f"/{kind}")
            reply = service.handle(pid, inp)
            if not reply.closed:
                assert reply.prompts, f"nothing to show for {inp!r}"
                assert all((p.text or "").strip() for p in reply.prompts), f"an empty prompt for {inp!r}"
                assert all("Traceback" not in p.text for p in reply.prompts)
            if service.active(pid) is None:
                service.start(pid, flow_id)

    test = given(st.sampled_from(flows), st.lists(st.tuples(kinds, texts, buttons, st.booleans()), min_size=1, max_size=12))(prop)
    for text in odd:  # every odd case at least once, whatever the example budget
        test = example(flows[0], [("answer", text, None, False)])(test)
    test = example(flows[0], [("answer", "", [1, None, {}], True), ("answer", "", float("nan"), True)])(test)
    test = settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))(test)
    hseed(seed)(test)()
    return count[0]


def fuzz_telegram(examples: int, seed: int, folder: Path) -> int:
    """Arbitrary messages and callback data, including forged button presses on another
    person's conversation, through the real Telegram frontend and fake Bot API."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis import seed as hseed

    from benchmarks.common import safeguarding
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.store import Store
    from bot.testing.telegram import running_bot

    class Errors(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    errors = Errors()
    logging.getLogger().addHandler(errors)
    loop = asyncio.new_event_loop()
    library = FlowLibrary.load()
    service = ConversationService(Store(folder / "tg-fuzz.db"), library, safeguarding=safeguarding())
    cm = running_bot(service)
    h = loop.run_until_complete(cm.__aenter__())
    victim = 4_000_001

    async def setup_victim():
        before = len(h.fake.messages(victim))
        h.fake.inject_command(victim, "/start")
        menu = await h.keyboard_after(victim, before)
        uid = h.fake.press_button(victim, menu.message_id, "s:scaling-checkin")
        await h.delivered(uid)
        await h.who(victim, before)  # "Who is filling this in?": a parent or carer
        uid = h.fake.inject_message(victim, "the victim's own hopes")
        await h.delivered(uid)

    loop.run_until_complete(setup_victim())
    victim_conv = service.store.active_conversation(service.store.person(f"tg:{victim}"))
    victim_answers = service.store.answers(victim_conv.id)
    cb_parts = st.one_of(st.sampled_from(["a", "t", "d", "s", "r", "h", "i", "zz", ""]), st.text(max_size=4))
    numbers = st.one_of(st.integers(-5, 10**12), st.just(victim_conv.id)).map(str)
    forged = st.lists(st.one_of(cb_parts, numbers), min_size=1, max_size=5).map(":".join).map(
        lambda s: s.encode()[:64].decode(errors="ignore"))
    actions = st.one_of(
        st.tuples(st.just("text"), st.text(min_size=1, max_size=300).filter(lambda s: s.strip())),
        st.tuples(st.just("text"), st.sampled_from(["/start", "/flows", "/back", "/skip", "/cancel", "/help", "/repeat",
                                                    "/ack", "/ack 99999", "/start bogus-invite", "/mydata", "/nonsense",
                                                    "🙂" * 1000, "\x00\x1b[31m", "x" * 4096])),
        st.tuples(st.just("press"), forged),
        st.tuples(st.just("press"), st.sampled_from([f"a:{victim_conv.id}:1:3", f"r:{victim_conv.id}:n",
                                                     f"h:{victim_conv.id}:n", f"d:{victim_conv.id}:0", "s:nope",
                                                     "s:scaling-checkin", f"t:{victim_conv.id}:0:0"])),
        st.tuples(st.just("photo"), st.just("")),
        st.tuples(st.just("sticker"), st.just("")),
    )
    user_ids = iter(range(4_100_000, 5_000_000))
    count = [0]

    async def play(user: int, steps) -> None:
        for kind, value in steps:
            before = len(h.fake.messages(user))
            answered = len(h.fake.answered_callbacks)
            if kind == "text":
                uid = h.fake.inject_message(user, value)
            elif kind == "press":
                msgs = h.fake.messages(user)
                target = msgs[-1].message_id if msgs else None
                if target is None:  # no bot message yet: get one
                    await h.delivered(h.fake.inject_command(user, "/start"))
                    msgs = h.fake.messages(user)
                    before = len(msgs)
                    target = msgs[-1].message_id
                uid = h.fake.press_button(user, target, value, force=True)
            elif kind == "photo":
                uid = h.fake.inject_photo(user)
            else:
                uid = h.fake.inject_sticker(user)
            await h.delivered(uid, timeout=15)
            if kind == "press":
                await h.fake.wait_for(lambda: len(h.fake.answered_callbacks) > answered, 10)
            else:  # something to read, every time
                await h.fake.wait_for(lambda: len(h.fake.messages(user)) > before, 10)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(actions, min_size=1, max_size=6))
    def prop(steps):
        count[0] += 1
        loop.run_until_complete(play(next(user_ids), steps))
        assert not errors.records, f"error logged: {errors.records[0].getMessage()} {errors.records[0].exc_info}"

    try:
        prop()
        assert service.store.answers(victim_conv.id) == victim_answers, "another person's conversation was changed"
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
        logging.getLogger().removeHandler(errors)
        service.store.close()
    return count[0]


def run_fuzz(examples: int, seed: int, workdir: Path, log=print, telegram_examples: int | None = None,
             undecodable: bool = True) -> Report:
    report = Report("fuzz")
    t0 = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="chaos-fuzz-", dir=workdir))
    parts = [("loader", lambda: fuzz_loader(examples, seed)),
             ("files", lambda: fuzz_files(max(20, examples // 2), seed, folder)),
             ("service", lambda: fuzz_service(examples, seed, surrogates=undecodable)),
             ("telegram", lambda: fuzz_telegram(telegram_examples or max(10, examples // 4), seed, folder))]
    try:
        for name, fn in parts:
            t = time.monotonic()
            try:
                n = fn()
                report.inputs += n
                log(f"  fuzz {name}: {n} examples, no traceback ({time.monotonic() - t:.1f} s)")
            except Exception as exc:  # hypothesis prints the falsifying example
                report.violations.append(f"fuzz {name}: {type(exc).__name__}: {str(exc)[:2000]}")
                log(f"  fuzz {name}: FAILED: {type(exc).__name__}: {str(exc)[:400]}")
        problems = cli_processes(folder, invalid_stdin=undecodable)
        report.violations += problems
        log(f"  fuzz cli processes: {len(problems)} problems")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    log(f"fuzz: {report.inputs} examples, {len(report.violations)} violations, {report.seconds:.0f} s")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="kill, faults, fuzz, flood (default: all)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of kills / faults per run (default 60)")
    parser.add_argument("--users", type=int, default=30, help="simulated users per run (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--examples", type=int, default=300, help="hypothesis examples per fuzz target (default 300)")
    parser.add_argument("--stall", type=float, default=None,
                        help="seconds without a reply (bot up) before a user sends /start to carry on"
                             " (default 4 for kill, 12 for faults: slow replies and 429s are expected there)")
    parser.add_argument("--workdir", default=None, help="where temporary databases go (default: system temp dir)")
    parser.add_argument("--accounts", type=int, default=200, help="flood: accounts without a role (default 200)")
    parser.add_argument("--flood-messages", type=int, default=15,
                        help="flood: messages from each account (default 15; half of them 4 KB)")
    parser.add_argument("--chat-interval", type=float, default=1.0,
                        help="flood: seconds between two messages to one chat, as Telegram allows (default 1)")
    args = parser.parse_args(argv)
    parts = args.parts or ["kill", "faults", "fuzz", "flood"]
    for p in parts:
        if p not in ("kill", "faults", "fuzz", "flood"):
            parser.error(f"unknown part {p!r}; choose from kill, faults, fuzz, flood")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    workdir = Path(args.workdir or tempfile.gettempdir())
    print(f"chaos: seed {seed} (repeat with --seed {seed}), parts {' '.join(parts)}", flush=True)
    reports = []
    if "kill" in parts:
        reports.append(asyncio.run(run_scenario("kill", duration=args.duration, users=args.users, seed=seed,
                                                workdir=workdir, kills=True, faults=False, stall=args.stall or 4)))
    if "faults" in parts:
        reports.append(asyncio.run(run_scenario("faults", duration=args.duration, users=args.users, seed=seed + 1,
                                                workdir=workdir, kills=False, faults=True, stall=args.stall or 12)))
    if "kill" in parts:
        folder = Path(tempfile.mkdtemp(prefix="chaos-restart-", dir=workdir))
        problems = asyncio.run(check_restart_sends_committed_replies(folder))
        shutil.rmtree(folder, ignore_errors=True)
        reports.append(Report("restart-resend", violations=problems))
        print(f"kill -9 with a committed reply still to send: {len(problems)} problems", flush=True)
    if "faults" in parts:
        folder = Path(tempfile.mkdtemp(prefix="chaos-redeliver-", dir=workdir))
        problems = asyncio.run(check_redelivery(folder))
        shutil.rmtree(folder, ignore_errors=True)
        reports.append(Report("redelivery", violations=problems))
        print(f"redelivery after a committed input whose reply failed: {len(problems)} problems", flush=True)
    if "fuzz" in parts:
        reports.append(run_fuzz(args.examples, seed, workdir))
    if "flood" in parts:
        reports.append(asyncio.run(run_flood(accounts=args.accounts, messages=args.flood_messages, seed=seed,
                                             workdir=workdir, chat_interval=args.chat_interval)))
    bad = [v for r in reports for v in r.violations]
    print()
    for r in reports:
        print(r.line())
        for n in r.notes:
            print(f"  note: {n}")
    for v in bad:
        print(f"VIOLATION {v}")
    print(f"\nchaos: {'FAILED' if bad else 'passed'} (seed {seed})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
