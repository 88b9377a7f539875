"""Per-person rate limits for the Telegram frontend, decided in memory before any work.

Anyone can write to a bot. Without limits, one account sending thousands of messages
fills the database and queues every other person's reply behind its own (issue 11,
finding 6). Each person has a token bucket: a burst, refilled at a steady rate, tight for
people without a role, generous for families and staff. A person without a role also has
a daily allowance, which caps how many of their inputs are ever stored. What goes over is
dropped before it reaches the store; the count is written to the audit log as one row per
person per minute, and the person is told once per minute to slow down. Many accounts
are one flood: people without a role also share one bucket between them, so a thousand
strangers cannot do what one cannot.

The decision needs no database: who holds a role comes from a set the frontend refreshes
in the background. Someone not yet in it is treated as having no role, which only makes
their limit tighter, never looser.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

_log = logging.getLogger("bot.telegram.store")


@dataclass(frozen=True)
class RateLimits:
    stranger_burst: float = 8  # updates at once, for a person without a role
    stranger_per_minute: float = 12
    stranger_per_day: int = 300  # also the most inputs stored for them in a day
    member_burst: float = 60  # families and staff
    member_per_minute: float = 300
    strangers_burst: float = 10  # all people without a role together: many accounts are one flood
    strangers_per_second: float = 5  # their replies share the bot's ~30 messages a second with everyone
    stranger_backlog: int = 2  # their updates waiting in their chat's queue (replies paced by Telegram)
    stranger_loose_order: bool = True  # their next update may start before their last reply has gone

    @classmethod
    def unlimited(cls) -> "RateLimits":
        big = 1e12
        return cls(big, big, 10**12, big, big, big, big, 10**12, False)


@dataclass
class _Bucket:
    tokens: float
    at: float
    day: int = -1
    today: int = 0
    dropped: int = 0  # since the last audit flush
    told_at: float = -1e18  # when the person was last told to slow down


@dataclass
class Verdict:
    allowed: bool
    tell: bool = False  # over the limit, and not told in the last minute


@dataclass
class Limiter:
    limits: RateLimits = field(default_factory=RateLimits)
    clock: Callable[[], float] = time.monotonic
    members: set[int] = field(default_factory=set)  # Telegram user ids holding a role
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _all: list = field(default_factory=list)  # [tokens, at] shared by every person without a role
    _tells: list = field(default_factory=list)  # [tokens, at] for slow-down notices, shared by all

    def admit(self, user_id: int) -> Verdict:
        member = user_id in self.members
        burst = self.limits.member_burst if member else self.limits.stranger_burst
        rate = (self.limits.member_per_minute if member else self.limits.stranger_per_minute) / 60.0
        now = self.clock()
        b = self._buckets.get(user_id)
        if b is None:
            if len(self._buckets) >= 100_000:  # keep memory flat: forget full, quiet buckets
                self._forget_idle(now)
            b = self._buckets[user_id] = _Bucket(tokens=burst, at=now)
        b.tokens = min(burst, b.tokens + (now - b.at) * rate)
        b.at = now
        day = int(time.time() // 86400)  # the UTC day (a number: a date string cost more than the rest here)
        if b.day != day:
            b.day, b.today = day, 0
        over_day = not member and b.today >= self.limits.stranger_per_day
        if b.tokens >= 1 and not over_day and (member or self._take_shared(now)):
            b.tokens -= 1
            b.today += 1
            return Verdict(True)
        b.dropped += 1
        return Verdict(False, self._tell(b, now))

    def _tell(self, b: _Bucket, now: float) -> bool:
        """Tell this person to slow down? At most once a minute each, and (a thousand
        accounts being one flood) a few a second in all: the notices are replies too."""
        if now - b.told_at < 60.0:
            return False
        if not self._tells:
            self._tells[:] = [3.0, now]
        tokens = min(3.0, self._tells[0] + (now - self._tells[1]) * 0.5)
        self._tells[1] = now
        if tokens < 1:
            self._tells[0] = tokens
            return False
        self._tells[0] = tokens - 1
        b.told_at = now
        return True

    def _take_shared(self, now: float) -> bool:
        if not self._all:
            self._all[:] = [self.limits.strangers_burst, now]
        tokens = min(self.limits.strangers_burst, self._all[0] + (now - self._all[1]) * self.limits.strangers_per_second)
        self._all[1] = now
        if tokens >= 1:
            self._all[0] = tokens - 1
            return True
        self._all[0] = tokens
        return False

    def refuse(self, user_id: int) -> Verdict:
        """Turned away for another reason (their chat is still busy): counted like the rest."""
        now = self.clock()
        b = self._buckets.get(user_id)
        if b is None:
            b = self._buckets[user_id] = _Bucket(tokens=0, at=now)
        b.dropped += 1
        return Verdict(False, self._tell(b, now))

    def take_dropped(self) -> dict[int, int]:
        """Updates dropped per person since the last call (for one audit row each)."""
        out = {}
        for uid, b in self._buckets.items():
            if b.dropped:
                out[uid] = b.dropped
                b.dropped = 0
        return out

    def _forget_idle(self, now: float) -> None:
        for uid in [u for u, b in self._buckets.items() if not b.dropped and now - b.at > 600]:
            del self._buckets[uid]


# -- the store thread, people with a role first ---------------------------------------------

_priority: contextvars.ContextVar[int] = contextvars.ContextVar("store_priority", default=0)

MEMBER, STRANGER = 0, 1


def set_priority(level: int) -> None:
    """Store work done for the update being handled waits behind work of a lower level."""
    _priority.set(level)


_ON_LOOP = object()  # marks a call made through PriorityExecutor.call (an asyncio future, no arguments)


def _settle_on_loop(settled: list) -> None:
    for future, (ok, value) in settled:
        if future.done():  # cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        elif isinstance(value, StopIteration):  # an asyncio future refuses one (as run_in_executor's would)
            future.set_exception(RuntimeError(f"StopIteration from a store call: {value!r}"))
        else:
            future.set_exception(value)


class PriorityExecutor(concurrent.futures.Executor):
    """One thread running submitted calls in order of priority, then of arrival.

    All store work runs on one thread (one writer keeps transactions simple). Plain FIFO
    would put a practitioner's command, or a family member's disclosure, behind everything
    a flood of strangers has already queued; here work for people with a role (and the
    bot's own, such as alerts) goes first, and strangers' work waits its turn.

    With ``group`` (:meth:`bot.store.Store.run_group`), the calls waiting when the thread
    gets to them run together, in that order, as one group commit: one transaction with a
    savepoint each (a call that fails rolls back alone), one fsync for all; each caller gets
    its result only after the commit. Writes handed to :meth:`defer` (such as "this reply
    was delivered") need no answer: they go into the next group, ahead of its calls, or
    into a group of their own when nothing else is waiting."""

    def __init__(self, thread_name: str = "store", group: Callable[[list], list] | None = None,
                 max_group: int = 64):
        self._heap: list = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._group = group
        self._max_group = max_group if group is not None else 1
        self._deferred: list[Callable[[], object]] = []
        self.groups = 0  # group commits run (for benchmarks and tests)
        self._thread = threading.Thread(target=self._work, name=thread_name, daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._push(future, fn, args, kwargs)
        return future

    def _push(self, future, fn, args, kwargs) -> None:
        """Queue ``fn`` at the caller's priority, in arrival order within it."""
        with self._cv:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            heapq.heappush(self._heap, (_priority.get(), next(self._seq), future, fn, args, kwargs))
            self._cv.notify()

    def call(self, loop, fn) -> "asyncio.Future":
        """Like ``loop.run_in_executor(self, fn)``, without the hand-offs between two kinds of
        future: the caller gets an asyncio future, and every result of a group is handed back
        to its loop at once, after the commit (one wake-up of the loop per group, not one per
        call)."""
        future = loop.create_future()
        self._push(future, fn, _ON_LOOP, loop)
        return future

    def defer(self, fn, /, *args, **kwargs) -> None:
        """A write nobody waits for: it goes into the next group commit (before that group's
        calls, so any later call sees it). Without ``group``, it runs as the next call."""
        if self._group is None:
            self.submit(fn, *args, **kwargs)
            return
        with self._cv:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._deferred.append(lambda: fn(*args, **kwargs))
            self._cv.notify()

    def waiting(self) -> list[int]:
        """The priority level of each call waiting to run, in the order they will run."""
        with self._cv:
            return [item[0] for item in sorted(self._heap, key=lambda item: item[:2])]

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._deferred and not self._closed:
                    self._cv.wait()
                if not self._heap and not self._deferred:
                    return
                deferred, self._deferred = self._deferred, []
                items = [heapq.heappop(self._heap) for _ in range(min(self._max_group, len(self._heap)))]
            # a caller who gave up (cancelled) before its call started: the call is not made
            jobs = [item for item in items
                    if (not item[2].cancelled() if item[4] is _ON_LOOP else item[2].set_running_or_notify_cancel())]
            if self._group is None:
                outcomes = []
                for _, _, _, fn, args, kwargs in jobs:
                    try:
                        outcomes.append((True, fn() if args is _ON_LOOP else fn(*args, **kwargs)))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        outcomes.append((False, exc))
                self._settle(jobs, outcomes)
                continue
            calls = deferred + [fn if args is _ON_LOOP else (lambda fn=fn, args=args, kwargs=kwargs: fn(*args, **kwargs))
                                for _, _, _, fn, args, kwargs in jobs]
            try:
                outcomes = self._group(calls)
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                outcomes = [(False, exc)] * len(calls)
            self.groups += 1
            for ok, value in outcomes[:len(deferred)]:
                if not ok:
                    _log.error("a deferred store write failed", exc_info=value)
            self._settle(jobs, outcomes[len(deferred):])

    @staticmethod
    def _settle(jobs: list, outcomes: list) -> None:
        """Hand each caller its outcome: a concurrent future directly, asyncio futures through
        their loop, all of one loop's in one call (each loop is woken once)."""
        by_loop: dict = {}
        for (_, _, future, _fn, args, loop), outcome in zip(jobs, outcomes):
            if args is _ON_LOOP:
                by_loop.setdefault(loop, []).append((future, outcome))
            elif outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_on_loop, settled)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if wait:
            self._thread.join()
