"""The bot's sending limiter: Telegram's overall limit, questions before closing edits, and a
chat told to wait (429) holding up no other chat.

python-telegram-bot's AIORateLimiter sends in arrival order, and when Telegram answers one
call with 429 ("retry after N seconds") it pauses *every* call, so one chat's flood wait
delays every other person's reply (issue 18). Here:

- Calls that carry a ``chat_id`` share one token bucket (``max_rate`` a second, Telegram's
  30 messages a second by default). When more are waiting than can go at once, they go in
  order of kind, then of arrival: questions and replies first, then the edits that close an
  old question's buttons (:func:`closing_edit`).
- When the limit is the bottleneck (more calls waiting than go in ``close_patience``
  seconds), the closing edits waiting are dropped: the caller gets ``True`` as if Telegram
  had accepted the edit. Nothing is lost: a stale button already answers "This question has
  closed". A question or reply is never dropped.
- A 429 holds only the chat it was for (calls without a chat wait alone), for the time
  Telegram gave; that call is tried again, up to ``max_retries`` times, then the
  ``RetryAfter`` goes to the caller.

Calls without a ``chat_id`` (answering a button press, setting the menu) are not paced, as
in python-telegram-bot's own limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
import time
from typing import Any, Callable, Coroutine

from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter  # noqa: PLC2701 - pinned below 23

from bot.frontends.telegram.render import Keyboard

log = logging.getLogger("bot.telegram.sending")

REPLY, CLOSING = 0, 1  # kinds of call, in the order they go when both wait

_kind: contextvars.ContextVar[int] = contextvars.ContextVar("send_kind", default=REPLY)


#: Telegram's HTTP error code behind each error python-telegram-bot raises (it keeps only the description).
_CODES = ((RetryAfter, 429), (Conflict, 409), (Forbidden, 403), (InvalidToken, 401), (BadRequest, 400))


def error_fields(exc: BaseException) -> dict[str, Any]:
    """What a log line says of a failed Bot API call: the error's class and Telegram's error
    code when there is one, never its description (it may quote what was sent or name a chat)."""
    out: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, TelegramError):
        code = next((c for cls, c in _CODES if isinstance(exc, cls)), None)
        if code is not None:
            out["code"] = code
    return out


@contextlib.contextmanager
def closing_edit():
    """Calls made inside are edits that close an old question's buttons: they go after
    questions and replies, and may be dropped when the limit is the bottleneck."""
    token = _kind.set(CLOSING)
    try:
        yield
    finally:
        _kind.reset(token)


async def post(bot, endpoint: str, data: dict[str, Any]) -> Any:
    """Call the Bot API through the bot's rate limiter and its request object, as every
    ``Bot`` method does (``Bot._post``, python-telegram-bot 22, pinned below 23), without the
    layers between that the bot's own calls never need: inserting ``Defaults`` (the bot sets
    none), dropping ``None`` values (it sends none), converting dates, files and Telegram
    objects (a plain ``str`` or ``int`` is sent as it is; anything else is converted exactly
    as python-telegram-bot does), and the debug log lines that would carry the words sent.
    Errors are python-telegram-bot's own (``BaseRequest.post``): a 429 is a ``RetryAfter``
    for the limiter, a 400 a ``BadRequest``."""
    request = bot.request
    url = f"{bot.base_url}/{endpoint}"

    async def call():
        return await request.post(url, RequestData([
            RequestParameter(key, value, None) if type(value) in (str, int) else RequestParameter.from_input(key, value)
            for key, value in data.items()]))

    limiter = bot.rate_limiter
    if limiter is None:
        return await call()
    return await limiter.process_request(call, (), {}, endpoint, data, None)


async def send_message(bot, chat_id: int, text: str, reply_markup=None, parse_mode: str | None = None) -> int:
    """``sendMessage`` through the bot (its rate limiter, retries and errors as usual),
    returning only the new message's id. ``Bot.send_message`` builds a whole ``Message``
    from Telegram's answer (the sender, the chat, every button again), which costs as much
    as the rest of handling the answer; the bot needs only the id."""
    data: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if reply_markup is not None:
        data["reply_markup"] = reply_markup.to_json() if isinstance(reply_markup, Keyboard) else reply_markup
    if parse_mode is not None:
        data["parse_mode"] = parse_mode
    result = await post(bot, "sendMessage", data)
    return int(result["message_id"])


async def edit_message(bot, chat_id: int, message_id: int, text: str | None = None,
                       markup: Keyboard | None = None) -> None:
    """Show a message with ``text`` instead (its buttons taken away), or with ``markup``
    (``text`` None) as its buttons, none if None, without building a ``Message`` from the
    answer (see :func:`send_message`)."""
    data: dict[str, Any] = {"chat_id": chat_id, "message_id": message_id}
    if markup is not None:
        data["reply_markup"] = markup.to_json()
    if text is None:
        await post(bot, "editMessageReplyMarkup", data)
    else:
        data["text"] = text
        await post(bot, "editMessageText", data)


def _seconds(exc: RetryAfter) -> float:
    wait = getattr(exc, "_retry_after", None)  # a timedelta (the public attribute warns in v22)
    return float(wait.total_seconds()) if wait is not None else float(exc.retry_after)


class SendLimiter(BaseRateLimiter[int]):
    def __init__(self, max_rate: float = 30.0, *, burst: float | None = None, max_retries: int = 5,
                 close_patience: float = 1.0, clock: Callable[[], float] = time.monotonic, unpaced_at_once: int = 4):
        self.max_rate = float(max_rate)
        self.burst = float(burst if burst is not None else max(1.0, max_rate))
        self.max_retries = max_retries
        self.close_patience = close_patience
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._heap: list = []  # (kind, seq, future, chat)
        self._seq = itertools.count()
        self._held: dict[object, float] = {}  # chat (or endpoint) -> clock() until which it waits
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.sent = {REPLY: 0, CLOSING: 0}  # paced calls let through, by kind (benchmarks, tests)
        self.dropped = 0  # closing edits dropped
        # Calls without a chat (answering button presses, mostly) in flight at once: Telegram
        # does not pace them, but unbounded they would take every connection of the pool when
        # hundreds press at once, and each reply then waits for one after its turn has come.
        self.unpaced_at_once = unpaced_at_once
        self._unpaced: asyncio.Semaphore | None = None  # made in the loop that uses it

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, _, future, _ in self._heap:
            future.cancel()
        self._heap.clear()
        self._unpaced = None

    def waiting(self) -> list[int]:
        """The kind of each paced call waiting for its turn, in the order they will go."""
        return [item[0] for item in sorted(self._heap, key=lambda item: item[:2]) if not item[2].done()]

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        chat = data.get("chat_id")
        kind = _kind.get()
        key = chat if chat is not None else ("endpoint", endpoint)
        retries = rate_limit_args or self.max_retries
        seq = next(self._seq)
        for attempt in range(retries + 1):
            if chat is not None:
                if not await self._turn(kind, seq, chat):
                    return True  # a closing edit dropped: the stale button answers "closed"
            else:
                wait = self._held.get(key, 0.0) - self.clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                if chat is None:  # not paced, but a few at a time: the connections are the replies'
                    if self._unpaced is None:
                        self._unpaced = asyncio.Semaphore(self.unpaced_at_once)
                    async with self._unpaced:
                        return await callback(*args, **kwargs)
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == retries:
                    log.warning("rate limit hit after retries", extra={"endpoint": endpoint, "retries": retries})
                    raise
                self._held[key] = max(self._held.get(key, 0.0), self.clock() + _seconds(exc) + 0.05)
                log.info("rate limit hit; this chat waits", extra={"endpoint": endpoint, "seconds": _seconds(exc)})
                if self._wake is not None:
                    self._wake.set()
        raise AssertionError("unreachable")

    def _now(self, chat, kind: int = REPLY) -> bool:
        """Take a token at once, if nothing is waiting (so no order to keep), the chat is not
        held and the bucket has one: the common case below the limit, without the hand-off
        to the dispatcher (a future and two turns of the event loop per call). A closing edit
        only while at least two are left: one stays for a reply that comes next, so an edit
        taken at once never makes a reply wait."""
        if self._heap:
            return False
        now = self.clock()
        if self._held.get(chat, 0.0) > now:
            return False
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.max_rate)
        self._at = now
        if self._tokens < (1 if kind == REPLY else 2):
            return False
        self._held.pop(chat, None)
        self._tokens -= 1
        return True

    async def _turn(self, kind: int, seq: int, chat) -> bool:
        """Wait for this call's turn; False if it is a closing edit that was dropped."""
        if self._now(chat, kind):
            self.sent[kind] += 1
            return True
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._dispatch())
        future = loop.create_future()
        heapq.heappush(self._heap, (kind, seq, future, chat))
        self._drop_if_saturated()
        self._wake.set()
        return await future

    def _drop_if_saturated(self) -> None:
        if len(self._heap) <= self.max_rate * self.close_patience:  # not even counting those done
            return
        live = [item for item in self._heap if not item[2].done()]
        if len(live) <= self.max_rate * self.close_patience:
            return
        keep = []
        for item in live:
            if item[0] == CLOSING:
                item[2].set_result(False)
                self.dropped += 1
            else:
                keep.append(item)
        heapq.heapify(keep)
        self._heap = keep

    async def _dispatch(self) -> None:
        while True:
            while self._heap and self._heap[0][2].done():  # cancelled callers, dropped edits
                heapq.heappop(self._heap)
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.max_rate)
            self._at = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.max_rate)
                continue
            parked, chosen = [], None
            while self._heap:
                item = heapq.heappop(self._heap)
                if item[2].done():
                    continue
                if self._held.get(item[3], 0.0) > now:
                    parked.append(item)
                    continue
                self._held.pop(item[3], None)
                chosen = item
                break
            for item in parked:
                heapq.heappush(self._heap, item)
            if chosen is not None:
                self._tokens -= 1
                self.sent[chosen[0]] += 1
                chosen[2].set_result(True)
                await asyncio.sleep(0)  # let the caller go before the next grant
                continue
            # every call waiting is for a chat told to wait: until the first is free, or a new call
            first = min(self._held[item[3]] for item in parked) - now
            self._wake.clear()
            # asyncio.wait, not wait_for: on 3.11 wait_for can swallow the shutdown's cancel
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=max(first, 0.001))
            finally:
                waiter.cancel()
