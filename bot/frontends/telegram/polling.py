"""Receiving updates: long polling and the webhook, both through a durable inbox.

An update is *kept* (written to the store's inbox table and committed) before Telegram is
told it arrived: long polling confirms a batch (by asking with the next offset) once it is
kept, and the webhook answers 200 once it is kept. Handling goes on beside the polling:
each chat's updates in order, across batches too, and different chats at the same time.
When an update has been handled, its row leaves the inbox (in the next group commit).

After a crash, what is still in the inbox is handled on restart, in order; what Telegram
sends again (it was not confirmed) and is already kept or being handled is skipped; what
was handled but not yet confirmed comes again and is handled again, which the store's input
keys make change nothing (a reply already sent is not sent twice).

Why keep updates rather than hold the offset at the lowest update not yet handled:
Telegram answers ``getUpdates`` at once while any update at or above the offset is waiting,
so holding the offset for one slow chat (a person whose replies are held by a 429, with
their next message queued behind) would have the poller ask again and again for the same
updates, or wait and delay every other chat's next update. With the inbox the offset moves
on as soon as a batch is kept, which is the lowest update not yet on disk: nothing slow
holds it, and a chat waiting on a 429 delays no other chat.

A ``gate`` (the frontend's private-chat and rate-limit check) is asked before an update is
kept, with the length of its chat's queue: what it turns away is never stored, and it is
confirmed with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import signal
from typing import Callable, Protocol

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter  # noqa: PLC2701 - pinned below 23

from bot.frontends.telegram.parsing import UpdateParser
from bot.frontends.telegram.sending import error_fields

log = logging.getLogger("bot.telegram.polling")

_committed: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("update_committed", default=None)


def mark_committed() -> None:
    """The update being handled is committed (its reply is about to be sent): a stranger's
    next update may start (``loose`` order). Outside the queues this does nothing."""
    ev = _committed.get()
    if ev is not None:
        ev.set()


class Inbox(Protocol):
    # committed; the ids not kept before. ``raw``: update id -> the update's JSON as Telegram
    # sent it (given by the poller), kept instead of the parsed update's to_dict()
    async def keep(self, updates: list[Update], raw: dict[int, dict] | None = None) -> list[int]: ...

    def done(self, update_id: int) -> None: ...  # handled: its row goes (in the next commit)

    async def pending(self, bot) -> list[Update]: ...  # kept and not yet handled, in order


def chat_key(u: Update):
    chat = getattr(u.effective_chat, "id", None)
    return chat if chat is not None else ("update", u.update_id)


class ChatQueues:
    """Each chat's updates in order, across batches; different chats at the same time."""

    def __init__(self, app: Application, inbox: Inbox, gate: Callable[..., bool] | None = None,
                 loose: Callable[[Update], bool] | None = None):
        self.app = app
        self.inbox = inbox
        self.gate = gate
        self.loose = loose  # updates that may start once the chat's previous one is committed
        self.tails: dict[object, asyncio.Task] = {}
        self.pending: dict[object, int] = {}
        self.in_flight: set[int] = set()  # update ids kept and not yet handled
        self.committed: dict[asyncio.Task, asyncio.Event] = {}
        self._lock = asyncio.Lock()  # one batch kept at a time, so each chat's order is the order kept
        self._arriving: list[tuple[Update, asyncio.Future]] = []  # webhook deliveries waiting to be kept
        self._keeper: asyncio.Task | None = None

    async def receive(self, updates: list[Update], raw: dict[int, dict] | None = None) -> None:
        """Gate, keep (committed when this returns) and start handling a batch. ``raw``: each
        update's JSON as received (update id -> dict), what the inbox keeps, if at hand."""
        async with self._lock:
            admitted = []
            for u in sorted(updates, key=lambda u: u.update_id):
                if u.update_id in self.in_flight:
                    continue  # sent again while being handled: once is enough
                key = chat_key(u)
                if self.gate is not None and not self.gate(u, early=True, backlog=self.pending.get(key, 0)):
                    continue
                admitted.append(u)
                self.pending[key] = self.pending.get(key, 0) + 1  # counted at once: the backlog of the next
            if not admitted:
                return
            try:
                await (self.inbox.keep(admitted) if raw is None else self.inbox.keep(admitted, raw))
            except BaseException:
                for u in admitted:
                    self._unpend(chat_key(u))
                raise
            for u in admitted:
                self._start(u, counted=True)

    async def replay(self) -> int:
        """Start handling what was kept and not handled before a restart (gated again)."""
        updates = await self.inbox.pending(self.app.bot)
        async with self._lock:
            for u in updates:
                key = chat_key(u)
                if self.gate is not None and not self.gate(u, early=True, backlog=self.pending.get(key, 0)):
                    self.inbox.done(u.update_id)
                    continue
                self._start(u)
        return len(updates)

    async def put(self, update: Update, raw: dict | None = None) -> None:
        """The webhook's handler calls this before it answers 200 (``raw``: the JSON Telegram
        posted): it returns once the update is kept. Updates that arrive while a batch is
        being kept are kept together, in the next commit (Telegram makes up to 40 deliveries
        at once): one commit for them all, not one each, in turn."""
        done = asyncio.get_running_loop().create_future()
        self._arriving.append((update, done, raw))
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.ensure_future(self._keep_arriving())
        await done

    async def _keep_arriving(self) -> None:
        while self._arriving:
            batch, self._arriving = self._arriving, []
            raw = {u.update_id: r for u, _, r in batch if r is not None}
            try:
                await self.receive([u for u, _, _ in batch], raw or None)
            except BaseException as exc:  # not kept: each delivery fails (Telegram sends it again)
                for _, done, _ in batch:
                    if not done.done():
                        done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for _, done, _ in batch:
                if not done.done():
                    done.set_result(None)

    def _start(self, u: Update, counted: bool = False) -> None:
        key = chat_key(u)
        if not counted:
            self.pending[key] = self.pending.get(key, 0) + 1
        self.in_flight.add(u.update_id)
        loose = self.loose is not None and self.loose(u)
        ev = asyncio.Event()
        task = asyncio.create_task(self._run(self.tails.get(key), u, ev, key, loose))
        self.tails[key] = task
        self.committed[task] = ev

    def _unpend(self, key) -> None:
        self.pending[key] -= 1
        if not self.pending[key]:
            del self.pending[key]

    async def _run(self, before: asyncio.Task | None, u: Update, ev: asyncio.Event, key, loose: bool) -> None:
        try:
            if before is not None:
                # In order: after the chat's previous update has finished, so replies arrive
                # in order. ``loose`` (people without a role): once it is committed, while
                # its replies may still be on their way, paced by Telegram.
                ahead = self.committed.get(before) if loose else None
                with contextlib.suppress(BaseException):
                    if ahead is not None:
                        await ahead.wait()
                    else:
                        await asyncio.shield(before)
            token = _committed.set(ev)
            try:
                await self.app.process_update(u)  # handler errors go to the error handlers, never here
            finally:
                _committed.reset(token)
            self.inbox.done(u.update_id)
        finally:
            ev.set()
            self.in_flight.discard(u.update_id)
            self._unpend(key)
            self.committed.pop(asyncio.current_task(), None)
            if self.tails.get(key) is asyncio.current_task():
                del self.tails[key]

    async def drain(self) -> None:
        """Wait for everything started to be handled to the end."""
        while self.tails:
            await asyncio.gather(*list(self.tails.values()), return_exceptions=True)


async def poll(app: Application, stop: asyncio.Event, inbox: Inbox, *, timeout: int = 30, allowed_updates=None,
               gate: Callable[..., bool] | None = None, loose: Callable[[Update], bool] | None = None) -> None:
    """Fetch, keep, confirm and go on fetching while updates are handled, until ``stop`` is
    set; then finish what was started."""
    queues = ChatQueues(app, inbox, gate, loose)
    try:
        await queues.replay()
        await _poll(app, stop, queues, timeout=timeout, allowed_updates=allowed_updates)
    finally:
        await queues.drain()


async def _poll(app: Application, stop: asyncio.Event, queues: ChatQueues, *, timeout: int, allowed_updates) -> None:
    offset: int | None = None
    delay = 0.5
    parse = UpdateParser()
    while not stop.is_set():
        fetch = asyncio.ensure_future(get_updates(app.bot, offset=offset, timeout=timeout,
                                                  allowed_updates=allowed_updates, parse=parse))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if fetch not in done:  # stopping: a batch fetched now would not be kept; drop it
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            break
        stopping.cancel()
        try:
            updates, raw = fetch.result()
        except (InvalidToken, Conflict):
            raise
        except RetryAfter as exc:
            wait = getattr(exc, "_retry_after", None)
            await _unless_stopped(stop, wait.total_seconds() if wait is not None else float(exc.retry_after))
            continue
        except (NetworkError, TimedOut) as exc:
            log.warning("getUpdates failed, retrying", extra={**error_fields(exc), "delay": delay})
            # The Bot API may be gone for good: a SIGTERM during the back-off (up to 30 s)
            # stops at once rather than when the wait is over.
            await _unless_stopped(stop, delay)
            delay = min(delay * 2, 30)
            continue
        if updates:
            try:
                await queues.receive(updates, raw)  # kept (committed) before they are confirmed
            except Exception as exc:  # noqa: BLE001 - the store could not keep them (disk full, locked)
                # Not kept, so not confirmed: the next getUpdates (same offset) fetches them
                # again. serve goes on answering what it has kept and tries again after a
                # pause, instead of stopping for everyone, children in the middle of a check-in
                # and the leads' alerts included. Only the error's type is logged: its text
                # may quote a row.
                log.error("could not keep received updates, retrying",
                          extra={"error": type(exc).__name__, "delay": delay})
                await _unless_stopped(stop, delay)
                delay = min(delay * 2, 30)
                continue
            offset = updates[-1].update_id + 1  # the next getUpdates confirms them
        delay = 0.5


async def get_updates(bot, *, offset: int | None, timeout: int, allowed_updates=None,
                      parse: Callable = Update.de_json) -> tuple[list[Update], dict[int, dict]]:
    """``Bot.get_updates`` (its request object, timeouts and errors), keeping each update's
    JSON as Telegram sent it: the inbox keeps that, where ``Update.to_dict()`` of the parsed
    update would cost as much again as parsing it (the largest cost per update on the event
    loop, scripts/bench telegram, profiled). Each update is parsed once, here, by ``parse``
    (the poller's :class:`~bot.frontends.telegram.parsing.UpdateParser`). Not through
    the sending limiter: Telegram does not pace getUpdates, and a 429 is waited out above.
    (python-telegram-bot 22, pinned below 23: ``Bot._request[0]`` is the getUpdates request.)"""
    data: dict = {"timeout": timeout}
    if offset is not None:
        data["offset"] = offset
    if allowed_updates is not None:
        data["allowed_updates"] = allowed_updates
    request = bot._request[0]  # noqa: SLF001 - see above
    result = await request.post(f"{bot.base_url}/getUpdates",
                                RequestData([RequestParameter.from_input(k, v) for k, v in data.items()]),
                                read_timeout=(request.read_timeout or 0) + timeout)
    updates, raw = [], {}
    for item in result:
        update = parse(item, bot)
        if update is not None:
            updates.append(update)
            raw[update.update_id] = item
    return updates, raw


async def _unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    waiter = asyncio.ensure_future(stop.wait())
    try:
        # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()


@contextlib.asynccontextmanager
async def polling(app: Application, inbox: Inbox, *, timeout: int = 30, allowed_updates=None, gate=None, loose=None):
    """Run ``poll`` in the background of an initialised, started Application."""
    stop = asyncio.Event()
    task = asyncio.create_task(poll(app, stop, inbox, timeout=timeout, allowed_updates=allowed_updates, gate=gate,
                                    loose=loose))
    try:
        yield task
    finally:
        stop.set()
        await task


async def serving(app: Application, body, stop: asyncio.Event) -> None:
    """``Application.run_polling``'s life cycle around ``body(stop)``, in the running loop:
    initialize, post_init, start, the body, stop, post_stop, shutdown, post_shutdown."""
    async with app:  # initialize ... shutdown
        if app.post_init:
            await app.post_init(app)
        await app.start()
        try:
            await body(stop)
        finally:
            await app.stop()
            if app.post_stop:
                await app.post_stop(app)
    if app.post_shutdown:
        await app.post_shutdown(app)


def _lifecycle(app: Application, body) -> None:
    """Like ``Application.run_polling``: hooks, and a clean stop on SIGINT/SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serving(app, body, stop)

    asyncio.run(main())


def run(app: Application, inbox: Inbox, *, timeout: int = 30, allowed_updates=Update.ALL_TYPES, gate=None,
        loose=None) -> None:
    """Long polling, durable: ``Application.run_polling``'s life cycle around :func:`poll`."""

    async def body(stop: asyncio.Event) -> None:
        await app.bot.delete_webhook()
        await poll(app, stop, inbox, timeout=timeout, allowed_updates=allowed_updates, gate=gate, loose=loose)

    _lifecycle(app, body)


def run_webhook(app: Application, inbox: Inbox, *, listen: str, port: int, url_path: str, webhook_url: str,
                secret_token: str | None, allowed_updates=Update.ALL_TYPES, gate=None, loose=None) -> None:
    """The webhook, durable: python-telegram-bot's own web server and request checks (JSON,
    the secret token), but each update is kept in the inbox before the handler answers 200,
    and handled from there like a polled one."""
    from telegram.ext._utils.webhookhandler import WebhookServer

    async def body(stop: asyncio.Event) -> None:
        queues = ChatQueues(app, inbox, gate, loose)
        path = "/" + url_path.strip("/")
        server = WebhookServer(listen, port, webhook_app(path, app.bot, queues, secret_token), None)
        try:
            await queues.replay()
            await server.serve_forever()
            await app.bot.set_webhook(webhook_url, allowed_updates=allowed_updates, secret_token=secret_token)
            await stop.wait()
        finally:
            await server.shutdown()
            await queues.drain()

    _lifecycle(app, body)


def webhook_app(path: str, bot, queues: ChatQueues, secret_token: str | None):
    """python-telegram-bot's webhook application (its request checks: POST, JSON, the secret
    token), whose handler parses each update with an :class:`UpdateParser` and hands the
    queues the JSON Telegram posted with it, for the inbox to keep as it came (no
    ``to_dict()`` per update); and never logs what was posted (people's words).
    (python-telegram-bot 22, pinned below 23: ``telegram.ext._utils.webhookhandler``.)"""
    from http import HTTPStatus

    import tornado.web
    from telegram.ext import ExtBot
    from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookAppClass

    parse = UpdateParser()

    class KeepingHandler(TelegramHandler):
        async def post(self) -> None:
            self._validate_post()
            data = json.loads(self.request.body.decode())
            self.set_status(HTTPStatus.OK)
            try:
                update = parse(data, self.bot)
            except Exception as exc:
                log.error("a webhook update could not be parsed", extra={"error": type(exc).__name__})
                raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="Update could not be processed") from exc
            if update:
                if isinstance(self.bot, ExtBot):
                    self.bot.insert_callback_data(update)
                await self.update_queue.put(update, data)

    class KeepingApp(WebhookAppClass):
        def __init__(self) -> None:  # WebhookAppClass's, with the handler above
            self.shared_objects = {"bot": bot, "update_queue": queues, "secret_token": secret_token}
            tornado.web.Application.__init__(self, [(rf"{path}/?", KeepingHandler, self.shared_objects)])

    return KeepingApp()


def update_row(u: Update, raw: dict | None = None) -> tuple[int, str | None, str | None, str]:
    """What the inbox keeps of an update: (id, chat, sender's key, the update as JSON): ``raw``,
    the JSON Telegram sent, when at hand, else the parsed update's ``to_dict()``."""
    chat = getattr(u.effective_chat, "id", None)
    user = getattr(u.effective_user, "id", None)
    return (u.update_id, None if chat is None else str(chat), None if user is None else f"tg:{user}",
            json.dumps(raw if raw is not None else u.to_dict(), ensure_ascii=False))
