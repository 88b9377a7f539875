"""Long polling that confirms an update to Telegram only after it is safe.

python-telegram-bot's Updater asks for the next batch (which confirms the last one to
Telegram) as soon as it has queued a batch, so a crash while an update waits or runs loses
it: Telegram never sends it again. Here the next ``getUpdates`` confirms a batch only when
every update in it is *durable*: handled to the end, or committed and being answered (the
frontend calls :func:`mark_durable` when it first sends a reply, which it only does after
the store has committed the input; a reply committed but never sent is sent again after a
restart). Updates of one chat are handled in order, across batches too; chats at the same
time. After a crash, Telegram re-delivers what was not confirmed, and the store's input
keys make a second delivery change nothing.

Why not wait for the replies too: Telegram delivers about one message a second to one
chat. A batch waiting for every reply would wait for the slowest chat, so one person
sending many messages (or a lead receiving many alerts) would hold up everyone's next
update. A ``gate`` (the frontend's private-chat and rate-limit check) is asked before an
update joins its chat's queue, with the length of that queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
from collections import defaultdict
from typing import Callable

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

log = logging.getLogger("bot.telegram.polling")

_durable: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("durable_update", default=None)


def mark_durable() -> None:
    """The update being handled is committed (its reply is about to be sent): the polling
    loop may confirm it to Telegram. Outside the polling loop this does nothing."""
    ev = _durable.get()
    if ev is not None:
        ev.set()


class ChatQueues:
    """Each chat's updates in order, across batches; different chats at the same time."""

    def __init__(self, app: Application, gate: Callable[..., bool] | None = None,
                 loose: Callable[[Update], bool] | None = None):
        self.app = app
        self.gate = gate
        self.loose = loose  # updates that may start once the chat's previous one is committed
        self.tails: dict[object, asyncio.Task] = {}
        self.pending: dict[object, int] = {}
        self.durable: dict[asyncio.Task, asyncio.Event] = {}

    async def handle(self, updates: list[Update]) -> None:
        """Queue a batch; return when every update in it is durable (or was turned away)."""
        waits = []
        for u in updates:
            chat = getattr(u.effective_chat, "id", None)
            key = chat if chat is not None else ("update", u.update_id)
            if self.gate is not None and not self.gate(u, early=True, backlog=self.pending.get(key, 0)):
                continue
            ev = asyncio.Event()
            waits.append(ev)
            self.pending[key] = self.pending.get(key, 0) + 1
            loose = self.loose is not None and self.loose(u)
            task = asyncio.create_task(self._run(self.tails.get(key), u, ev, key, loose))
            self.tails[key] = task
            self.durable[task] = ev
        if waits:
            await asyncio.gather(*(ev.wait() for ev in waits))

    async def _run(self, before: asyncio.Task | None, u: Update, ev: asyncio.Event, key, loose: bool) -> None:
        try:
            if before is not None:
                # In order: after the chat's previous update has finished, so replies arrive
                # in order. ``loose`` (people without a role): once it is committed, while
                # its replies may still be on their way, paced by Telegram.
                ahead = self.durable.get(before) if loose else None
                with contextlib.suppress(BaseException):
                    if ahead is not None:
                        await ahead.wait()
                    else:
                        await asyncio.shield(before)
            token = _durable.set(ev)
            try:
                await self.app.process_update(u)  # handler errors go to the error handlers, never here
            finally:
                _durable.reset(token)
        finally:
            ev.set()
            self.pending[key] -= 1
            if not self.pending[key]:
                del self.pending[key]
            self.durable.pop(asyncio.current_task(), None)
            if self.tails.get(key) is asyncio.current_task():
                del self.tails[key]

    async def drain(self) -> None:
        """Wait for everything queued to be handled to the end."""
        while self.tails:
            await asyncio.gather(*list(self.tails.values()), return_exceptions=True)


async def handle_batch(app: Application, updates: list[Update]) -> None:
    """Each chat's updates in order, different chats concurrently; wait for all."""
    by_chat: dict[object, list[Update]] = defaultdict(list)
    for u in updates:
        chat = getattr(u.effective_chat, "id", None)
        by_chat[chat if chat is not None else ("update", u.update_id)].append(u)

    async def one_chat(items: list[Update]) -> None:
        for u in items:
            await app.process_update(u)  # handler errors go to the error handlers, never here

    await asyncio.gather(*(one_chat(items) for items in by_chat.values()))


async def poll(app: Application, stop: asyncio.Event, *, timeout: int = 30, allowed_updates=None,
               gate: Callable[..., bool] | None = None, loose: Callable[[Update], bool] | None = None) -> None:
    """Fetch, handle until durable, then confirm (by asking with the next offset), until
    ``stop`` is set; then finish what was queued."""
    queues = ChatQueues(app, gate, loose)
    try:
        await _poll(app, stop, queues, timeout=timeout, allowed_updates=allowed_updates)
    finally:
        await queues.drain()


async def _poll(app: Application, stop: asyncio.Event, queues: ChatQueues, *, timeout: int, allowed_updates) -> None:
    offset: int | None = None
    delay = 0.5
    while not stop.is_set():
        fetch = asyncio.ensure_future(app.bot.get_updates(offset=offset, timeout=timeout, allowed_updates=allowed_updates))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:  # stopping: a batch fetched now would not be confirmed; drop it
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            break
        stopping.cancel()
        try:
            updates = fetch.result()
        except (InvalidToken, Conflict):
            raise
        except RetryAfter as exc:
            await asyncio.sleep(float(getattr(exc.retry_after, "total_seconds", lambda: exc.retry_after)()))
            continue
        except (NetworkError, TimedOut) as exc:
            log.warning("getUpdates failed, retrying", extra={"error": str(exc), "delay": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
            continue
        delay = 0.5
        if updates:
            await queues.handle(list(updates))
            offset = updates[-1].update_id + 1


@contextlib.asynccontextmanager
async def polling(app: Application, *, timeout: int = 30, allowed_updates=None, gate=None, loose=None):
    """Run ``poll`` in the background of an initialised, started Application."""
    stop = asyncio.Event()
    task = asyncio.create_task(poll(app, stop, timeout=timeout, allowed_updates=allowed_updates, gate=gate,
                                    loose=loose))
    try:
        yield task
    finally:
        stop.set()
        await task


def run(app: Application, *, timeout: int = 30, allowed_updates=Update.ALL_TYPES, gate=None, loose=None) -> None:
    """Like ``Application.run_polling`` (hooks, clean stop on SIGINT/SIGTERM), but durable."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with app:  # initialize ... shutdown
            if app.post_init:
                await app.post_init(app)
            await app.bot.delete_webhook()
            await app.start()
            try:
                await poll(app, stop, timeout=timeout, allowed_updates=allowed_updates, gate=gate, loose=loose)
            finally:
                await app.stop()
                if app.post_stop:
                    await app.post_stop(app)
        if app.post_shutdown:
            await app.post_shutdown(app)

    asyncio.run(main())
