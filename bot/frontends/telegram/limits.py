"""Per-person rate limits for the Telegram frontend, decided in memory before any work.

Anyone can write to a bot. Without limits, one account sending thousands of messages
fills the database and queues every other person's reply behind its own (issue 11,
finding 6). Each person has a token bucket: a burst, refilled at a steady rate, tight for
people without a role, generous for families and staff. A person without a role also has
a daily allowance, which caps how many of their inputs are ever stored. What goes over is
dropped before it reaches the store; the count is written to the audit log as one row per
person per minute, and the person is told once per minute to slow down.

The decision needs no database: who holds a role comes from a set the frontend refreshes
in the background. Someone not yet in it is treated as having no role, which only makes
their limit tighter, never looser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable


@dataclass(frozen=True)
class RateLimits:
    stranger_burst: float = 20  # updates at once, for a person without a role
    stranger_per_minute: float = 30
    stranger_per_day: int = 500  # also the most inputs stored for them in a day
    member_burst: float = 60  # families and staff
    member_per_minute: float = 300

    @classmethod
    def unlimited(cls) -> "RateLimits":
        big = 1e12
        return cls(big, big, 10**12, big, big)


@dataclass
class _Bucket:
    tokens: float
    at: float
    day: str = ""
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
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if b.day != day:
            b.day, b.today = day, 0
        over_day = not member and b.today >= self.limits.stranger_per_day
        if b.tokens >= 1 and not over_day:
            b.tokens -= 1
            b.today += 1
            return Verdict(True)
        b.dropped += 1
        tell = now - b.told_at >= 60.0
        if tell:
            b.told_at = now
        return Verdict(False, tell)

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
