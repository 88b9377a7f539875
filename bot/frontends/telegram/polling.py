"""Long polling that confirms an update to Telegram only after it has been handled.

python-telegram-bot's Updater asks for the next batch (which confirms the last one to
Telegram) as soon as it has queued a batch, so a crash while an update waits or runs loses
it: Telegram never sends it again. Here a batch is handled to the end (updates of one chat
in order, chats at the same time) before the next ``getUpdates`` confirms it. After a
crash, Telegram re-delivers what was not confirmed, and the store's input keys make a
second delivery change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import defaultdict

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

log = logging.getLogger("bot.telegram.polling")


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


async def poll(app: Application, stop: asyncio.Event, *, timeout: int = 30, allowed_updates=None) -> None:
    """Fetch, handle, then confirm (by asking with the next offset), until ``stop`` is set."""
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
            await handle_batch(app, list(updates))
            offset = updates[-1].update_id + 1


@contextlib.asynccontextmanager
async def polling(app: Application, *, timeout: int = 30, allowed_updates=None):
    """Run ``poll`` in the background of an initialised, started Application."""
    stop = asyncio.Event()
    task = asyncio.create_task(poll(app, stop, timeout=timeout, allowed_updates=allowed_updates))
    try:
        yield task
    finally:
        stop.set()
        await task


def run(app: Application, *, timeout: int = 30, allowed_updates=Update.ALL_TYPES) -> None:
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
                await poll(app, stop, timeout=timeout, allowed_updates=allowed_updates)
            finally:
                await app.stop()
                if app.post_stop:
                    await app.post_stop(app)
        if app.post_shutdown:
            await app.post_shutdown(app)

    asyncio.run(main())
