"""Simulated Telegram users against the fake Bot API server.

:class:`WatchedFake` is the fake server with per-chat wake-ups (the stock ``wait_for``
wakes every waiter on every change, which with hundreds of users costs more than the bot),
and the arrival time of every bot message, for latency.
"""

from __future__ import annotations

import asyncio
import time

from bot.testing.fake_bot_api import FakeBotAPI, StoredMessage


class WatchedFake(FakeBotAPI):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._chat_events: dict[int, asyncio.Event] = {}
        self.arrived: dict[tuple[int, int], float] = {}
        self.bot_msgs: dict[int, list[StoredMessage]] = {}
        self.polls = 0
        # Telegram's update ids only grow; a fresh fake would start again at 1, and a bot
        # re-using a database would take those for updates it has already handled.
        self._last_update_id = int(time.time() * 1000)

    def _store(self, message: StoredMessage) -> StoredMessage:  # every new message, bot's or user's
        out = super()._store(message)
        if message.from_bot:
            self.arrived[(message.chat_id, message.message_id)] = time.perf_counter()
            self.bot_msgs.setdefault(message.chat_id, []).append(message)
            self._wake(message.chat_id)
        return out

    async def _api_getUpdates(self, **kwargs):
        self.polls += 1
        return await super()._api_getUpdates(**kwargs)

    def _wake(self, chat_id: int) -> None:
        ev = self._chat_events.pop(chat_id, None)
        if ev is not None:
            ev.set()

    def wake_all(self) -> None:
        for chat in list(self._chat_events):
            self._wake(chat)

    def count(self, chat_id: int) -> int:
        return len(self.bot_msgs.get(chat_id, ()))

    async def wait_new(self, chat_id: int, before: int, pred, timeout: float) -> StoredMessage | None:
        """The first bot message after index ``before`` in the chat for which ``pred`` holds."""
        deadline = time.monotonic() + timeout
        seen = before
        while True:
            msgs = self.bot_msgs.get(chat_id, [])
            for m in msgs[seen:]:
                if pred(m):
                    return m
            seen = len(msgs)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ev = self._chat_events.get(chat_id)
            if ev is None:
                ev = self._chat_events[chat_id] = asyncio.Event()
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                pass


def has(text: str):
    return lambda m: text in (m.text or "")


def has_button(data_prefix: str):
    return lambda m: any((cb or "").startswith(data_prefix) for row in FakeBotAPI.buttons(m) for _, cb in row)


def button_data(message: StoredMessage, label: str) -> str:
    for row in FakeBotAPI.buttons(message):
        for text, cb in row:
            if text.removeprefix("✓ ") == label:
                return cb
    raise KeyError(f"no button {label!r} on {message.text!r}")


class SimUser:
    """One user, answering as soon as the bot replies; records reply latencies."""

    def __init__(self, fake: WatchedFake, user_id: int, timeout: float = 30.0):
        self.fake, self.id, self.timeout = fake, user_id, timeout
        self.latencies: list[float] = []
        self.last: StoredMessage | None = None

    async def _await(self, t0: float, before: int, pred, what: str) -> StoredMessage:
        m = await self.fake.wait_new(self.id, before, pred, self.timeout)
        if m is None:
            got = [(x.text or "")[:80] for x in self.fake.bot_msgs.get(self.id, [])[before:]]
            raise TimeoutError(f"user {self.id}: no reply to {what!r} within {self.timeout}s; got {got}")
        self.latencies.append(self.fake.arrived[(self.id, m.message_id)] - t0)
        self.last = m
        return m

    async def say(self, text: str, expect) -> StoredMessage:
        before = self.fake.count(self.id)
        t0 = time.perf_counter()
        self.fake.inject_message(self.id, text, first_name=f"User{self.id}")
        return await self._await(t0, before, expect, text)

    async def press(self, message: StoredMessage, data: str, expect) -> StoredMessage:
        before = self.fake.count(self.id)
        t0 = time.perf_counter()
        self.fake.press_button(self.id, message.message_id, data)
        return await self._await(t0, before, expect, data)
