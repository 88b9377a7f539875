"""A simulated person going through the chaos flow: types, presses buttons, carries on after a stall."""

from __future__ import annotations

import time

from benchmarks.chaos.flow import (
    FLOW_ID,
    STEPS,
    TAG,
)
from benchmarks.chaos.report import (
    BotState,
    Report,
)
from benchmarks.users import WatchedFake


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

    async def run(self, soft: float, finish: float) -> None:
        """Conversation after conversation until ``soft`` and until every kill and fault asked
        for has happened (however long that takes on a slow machine); the one under way then
        is finished, if it can be, within ``finish`` seconds."""
        while time.monotonic() < self._hard(soft, finish):
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

    def _hard(self, soft: float, finish: float) -> float:
        """When to give up: ``finish`` seconds after ``soft`` or the end of the chaos, whichever
        is later (not a fixed time: a fixed number of faults may take long to be taken)."""
        if not self.bot.chaos_done:
            return float("inf")
        return max(soft, self.bot.chaos_done_at) + finish

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
