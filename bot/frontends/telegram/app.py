"""The Telegram frontend: python-telegram-bot v22 handlers around the conversation service.

Thin by design: it translates updates into service calls and prompts into messages.
The service runs in one dedicated thread (SQLite work never blocks the event loop, and
one writer keeps transactions simple). Updates from different chats run concurrently;
updates within one chat keep their order (:class:`PerChatOrder`). A reply is sent only
after the service has committed the input; a re-delivered update whose reply was already
sent sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from telegram import BotCommand, BotCommandScopeChat, InlineKeyboardMarkup, MessageEntity, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.conversation import ConversationService, Reply
from bot.engine.flow import Flow
from bot.engine.runner import Input, Prompt
from bot.frontends.telegram.limits import MEMBER, STRANGER, Limiter, PriorityExecutor, RateLimits, set_priority
from bot.frontends.telegram.polling import mark_committed, update_row
from bot.frontends.telegram.sending import SendLimiter, closing_edit, edit_message, error_fields, send_message
from bot.frontends.telegram.reminders import never_deliverable
from bot.frontends.telegram.render import (
    Callback,
    confirm_keyboard,
    flows_keyboard,
    keyboard,
    hold_keyboard,
    respondent_keyboard,
    directed,
    language_keyboard,
    question_text,
    resume_keyboard,
    offered_from_markup,
    selected_from_markup,
    split_text,
)
from bot import i18n
from bot.messages import msg

#: The roles that make someone a worker, with the workers' command menu (as Store.staff_keys).
WORKER_ROLES = ("practitioner", "supervisor", "admin")

log = logging.getLogger("bot.telegram")

NAV_COMMANDS = ("back", "skip", "repeat", "cancel", "help")

# The input key of the update being handled while "was it handled and answered before?"
# is still to be asked: the first store call the handler makes asks it in the same hand-off
# (one trip to the store thread per update), and nothing is sent before it is asked.
_unchecked: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("unchecked_update", default=None)


# What the update being handled leaves for its end, after its replies have gone: the
# closing edits (an old question's buttons taken away), as coroutine functions run there one
# after another, and the answers to button presses, as tasks already under way beside the
# replies. So a reply never waits behind either; a closing edit costs no task of its own.
_closings: contextvars.ContextVar[list | None] = contextvars.ContextVar("closing_edits", default=None)


class _TypedText(filters.UpdateFilter):
    """``ChatType.PRIVATE & UpdateType.MESSAGE & TEXT & ~COMMAND`` in one test: text typed in
    a private chat, not a command. Almost every update is one (a typed answer), and the four
    filters composed cost python-telegram-bot as much as the rest of choosing the handler."""

    __slots__ = ()

    def filter(self, update: Update) -> bool:
        message = update.message
        if message is None or not message.text or message.chat.type != "private":
            return False
        entities = message.entities
        return not (entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0)


TYPED_TEXT = _TypedText(name="typed text in a private chat")

# What a caption can come with, as the transcript records it (the media itself is never kept).
MEDIA_KINDS = ("photo", "video", "animation", "document", "audio", "voice", "video_note")


def media_kind(message, default: str | None = "file") -> str | None:
    """The kind of picture or file a message carries: ``photo``, ``video``... or ``default``."""
    return next((kind for kind in MEDIA_KINDS if getattr(message, kind, None)), default)


class _AlreadyAnswered(BaseException):
    """This update was handled and answered before: stop handling it. A BaseException, so
    no handler's ``except Exception`` can take it for an error and carry on."""


class PerChatOrder(BaseUpdateProcessor):
    """Concurrent across chats, in order within a chat."""

    def __init__(self, max_concurrent_updates: int = 256, gate: Callable[[object], bool] | None = None):
        super().__init__(max_concurrent_updates)
        self.gate = gate  # decides in memory, before any queueing, whether an update is handled at all
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.gate is not None and not self.gate(update, early=True):
            coroutine.close()  # never started: nothing queued behind the chat's lock, nothing stored
            return
        chat = getattr(getattr(update, "effective_chat", None), "id", None)
        if chat is None:
            await coroutine
            return
        lock = self._locks.get(chat)
        if lock is None:
            lock = self._locks[chat] = asyncio.Lock()
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat] -= 1
            if self._users[chat] == 0:  # forget idle chats so memory stays flat
                del self._users[chat]
                self._locks.pop(chat, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TelegramFrontend:
    def __init__(self, service: ConversationService, *, send_attempts: int = 4, escalation=None,
                 alert_poll_seconds: float = 30.0, access=None, limits: RateLimits | None = None,
                 housekeeping_seconds: float = 30.0, reading=None):
        self.service = service
        self.reading = reading  # bot.reading.Reading: reminders of unread answers and review items
        self.limiter = Limiter(limits or RateLimits())
        self.housekeeping_seconds = housekeeping_seconds
        self._housekeeping_task: asyncio.Task | None = None
        self._groups_seen: set[int] = set()
        self._background: set[asyncio.Task] = set()
        self._gated: set[int] = set()  # update ids admitted early by PerChatOrder
        self._last_screened: dict[int, int] = {}  # user id -> hash of the last dropped words screened
        self._dropped_words: dict[int, list[str]] = {}  # user id -> dropped disclosures not yet recorded
        self._recording: set[int] = set()  # user ids whose dropped disclosures are being recorded
        self.access = access  # None: every flow may be started by anyone (development and tests)
        self.staff = None
        self.escalation = escalation
        self.alert_poll_seconds = alert_poll_seconds
        self._alert_lock = asyncio.Lock()
        self._alert_task: asyncio.Task | None = None
        self._alert_wake = asyncio.Event()
        self.alert_pass_started: float | None = None
        self.send_attempts = send_attempts
        # one thread; people with a role before strangers; the calls waiting are committed together
        self._db = PriorityExecutor("store", group=service.store.run_group)
        self._marks: list[str] = []  # input keys whose replies have gone, to record (_delivered)
        self._handled: list[int] = []  # update ids handled, to leave the inbox (done)
        self._marks_due = False  # a _record_delivered is on its way to the store thread
        self._marks_lock = threading.Lock()
        # chat id -> (message id, text) of the last question sent with buttons, so a typed
        # answer can close its keyboard. Losing it on restart only leaves stale buttons,
        # which answer "this question has closed".
        self._open_keyboards: dict[int, tuple[int, str]] = {}
        # chat id -> message id of the last "is that your answer?" sent (see _send_prompt)
        self._open_confirms: dict[int, int] = {}
        self._persons: dict[int, int] = {}  # Telegram user id -> person id
        self._albums: dict[tuple[int, str], None] = {}  # (chat id, media group id) answered (_album_answered)
        self._languages: dict[int, str | None] = {}  # Telegram user id -> the language they chose (bot/i18n)
        # chat id -> the last few questions sent there: (message id, conversation id, step id).
        # Telegram numbers a chat's messages in the order it received them, both ways, so a
        # typed answer belongs to the last question numbered before it (or the one it replies
        # to): a retype sent before a slow reply arrived is not taken for the next question.
        self._asked: dict[int, list[tuple[int, int, str]]] = {}
        self._bot = None
        # Telegram user ids whose chat shows the workers' menu (set here by sync_menus): when
        # their role goes, their chat's own menu is deleted and everyone's shows again
        self._staff_menus: set[int] = set()
        self._failed_to: set[tuple[int, str]] = set()  # (alert id, recipient key) last failing (_send_notice)
        self._flows: dict[tuple[int, int], Flow] = {}  # (person, conversation) -> flow
        self.rehearsal = None  # bot.frontends.telegram.rehearsal.RehearsalCommands, set by install()
        # update ids whose handler has finished (answered, duplicate or failed), the last
        # few thousand, with an event fired at each: tests and benchmarks wait on these.
        self.finished: dict[int, None] = {}
        self.finished_total = 0
        self._finished_event: asyncio.Event | None = None
        self.reminders = None  # bot.frontends.telegram.reminders.ReminderCommands, when the service has a schedule
        # person key -> notices (text, language) kept back while a worker-present session runs
        # on their device (push); sent once it has ended (dispatch_held)
        self._held_pushes: dict[str, list[tuple[str, str | None]]] = {}
        # serve's: everything loaded at start kept out of full GC passes (settle_heap), never in
        # a test process (frozen objects are never collected)
        self.settle_heap_at_start = False
        # when the leads were last checked (check_leads): again once a day by the alert loop
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # tests move it
        self._leads_checked_at: datetime | None = None

    async def db(self, fn: Callable, *args, **kwargs):
        """Run ``fn`` on the store thread (committed, with whatever else was waiting, before
        this returns). The update's already-answered check, if still to do, goes with it:
        asked by the service itself when ``fn`` is the service's ``handle`` for this very
        update (it reads whether the input was handled before, and its delivery, in the same
        statement as the conversation), else as a call of its own before ``fn``."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # the language in force (bot/i18n) goes with the call
        cell = _unchecked.get()
        if not cell:
            return await self._db.call(loop, lambda: ctx.run(fn, *args, **kwargs))
        key = cell.pop()
        if fn == self.service.handle and kwargs.get("input_key") == key:
            result = await self._db.call(loop, lambda: ctx.run(fn, *args, **kwargs))
            if result.duplicate and result.delivered:  # handled and answered before
                raise _AlreadyAnswered(key)
            return result

        def checked():
            if self.service.already_answered(key):
                return _AlreadyAnswered
            return fn(*args, **kwargs)

        result = await self._db.call(loop, lambda: ctx.run(checked))
        if result is _AlreadyAnswered:
            raise _AlreadyAnswered(key)
        return result

    def _delivered(self, key: str) -> None:
        """The reply to input ``key`` has gone: on record in the next group commit, with every
        other mark made meanwhile (one write for them all, not one each)."""
        with self._marks_lock:
            self._marks.append(key)
            if self._marks_due:
                return  # already on its way to the store thread
            self._marks_due = True
        self._db.defer(self._record_delivered)

    def _record_delivered(self) -> None:  # on the store thread
        """The delivery marks, then the inbox rows of the updates handled, made since the last
        time: one deferred write for them all, in the next group commit."""
        with self._marks_lock:
            keys, self._marks = self._marks, []
            handled, self._handled = self._handled, []
            self._marks_due = False
        if keys:
            self.service.delivered_all(keys)
        if handled:
            self.service.store.inbox_done(handled)

    async def _checked(self) -> None:
        """Before anything goes to Telegram: the already-answered check, if not yet asked."""
        if _unchecked.get():
            await self.db(lambda: None)

    def close(self) -> None:
        self._db.shutdown(wait=True)

    # -- the gate: private chats only, and per-person rate limits -------------------
    def gate(self, update: object, early: bool = False, backlog: int = 0) -> bool:
        """Whether to handle an update at all; decided in memory, before any handler.

        Anything from a group, supergroup or channel is ignored (audited once per chat):
        transcripts and links must never be answered into a shared chat. Then each person's
        token bucket (:mod:`bot.frontends.telegram.limits`).

        Called once per update: before it is queued or kept (``early``: the durable poller and
        webhook, :mod:`bot.frontends.telegram.polling`, and :class:`PerChatOrder` for
        python-telegram-bot's own runners), or else by the handler (every handler is wrapped
        by :meth:`_once`), for an update handed straight to ``process_update``. Not as a
        handler group of its own, which python-telegram-bot would try on every update."""
        uid = getattr(update, "update_id", None)
        if not early and uid in self._gated:
            self._gated.discard(uid)
            return True
        admitted = self._decide(update, backlog)
        if early and admitted and uid is not None:
            if len(self._gated) > 100_000:
                self._gated.clear()
            self._gated.add(uid)
        return admitted

    def loose_order(self, update: object) -> bool:
        """A stranger's update may start once their previous one is committed, before its
        replies (paced by Telegram) have all gone: a flood's replies then hold up nobody.
        People with a role keep strict order, so their replies never cross."""
        user = getattr(update, "effective_user", None)
        return (self.limiter.limits.stranger_loose_order and user is not None
                and user.id not in self.limiter.members)

    def _decide(self, update: object, backlog: int = 0) -> bool:
        chat = getattr(update, "effective_chat", None)
        if chat is not None and chat.type != "private":
            if chat.id not in self._groups_seen:
                self._groups_seen.add(chat.id)
                user = getattr(update, "effective_user", None)
                self._spawn(self._audit_group(chat.id, chat.type, user.id if user else None))
            return False
        user = getattr(update, "effective_user", None)
        if user is None:
            return True
        # Beyond a few updates waiting in their chat's queue, a stranger's chat is still busy
        # with replies Telegram is pacing: more are turned away, like any over the limit.
        if backlog >= self.limiter.limits.stranger_backlog and user.id not in self.limiter.members:
            verdict = self.limiter.refuse(user.id)
        else:
            verdict = self.limiter.admit(user.id)
        if not verdict.allowed:
            self._screen_dropped(update, user, chat)
            if verdict.tell and chat is not None and self._bot is not None:
                self._spawn(self._tell_slow_down(chat.id))
        return verdict.allowed

    # -- a disclosure is never dropped unseen -------------------------------------
    def _screen_dropped(self, update: object, user, chat) -> None:
        """An update over the limit is not handled, but its words are still screened: a
        child typing fast must never have "he hurts me" dropped unseen. The detector runs
        here, in memory (no store work for a flood of ordinary words; the same words
        dropped again from one person are screened once); an alert-tier disclosure is
        queued for :meth:`_record_dropped`, which writes the alert (not the input) through
        the service, ahead of strangers' work, and wakes the leads' notice at once."""
        message = getattr(update, "effective_message", None)
        text = getattr(message, "text", None) or getattr(message, "caption", None)
        if not text or chat is None or getattr(update, "callback_query", None) is not None:
            return
        if Input.from_text(text).kind != "answer":  # a command, not words
            return
        digest = hash(text)
        if self._last_screened.get(user.id) == digest:
            return
        if len(self._last_screened) >= 100_000:
            self._last_screened.clear()
        self._last_screened[user.id] = digest
        if not self.service.screen(text):
            return
        waiting = self._dropped_words.setdefault(user.id, [])
        if user.id not in self.limiter.members and sum(map(len, waiting)) >= self.service.ALERT_WORDS_MAX:
            return  # bounded for strangers: the alert is already on its way with the words before these
        waiting.append(text)
        if len(waiting) == 1 and user.id not in self._recording:
            self._recording.add(user.id)
            self._spawn(self._record_dropped(update, chat.id))

    async def _record_dropped(self, update: Update, chat_id: int) -> None:
        uid = update.effective_user.id
        set_priority(MEMBER)  # an alert is the bot's own work: ahead of any flood
        try:
            while self._dropped_words.get(uid):
                texts = self._dropped_words.pop(uid)
                pid = await self.person(update)
                if self.rehearsal is not None and await self.rehearsal.rehearsing(pid) \
                        and not await self.presenting(pid):
                    continue  # a practitioner's rehearsal is never screened (someone else's words are)
                reply = await self.db(self.service.screen_dropped, pid, texts)
                if reply.alerts and self._bot is not None:
                    self.wake_alerts(self._bot)
                    if reply.prompts:
                        await self.send_prompts(self._bot, chat_id, reply.prompts, None, reply.conversation_id)
        except Exception:  # never break the update loop; the words stay in no log
            log.exception("screening dropped words failed")
        finally:
            self._recording.discard(uid)
            if not self._dropped_words.get(uid):
                self._dropped_words.pop(uid, None)

    async def _closing(self, make: Callable[[], Awaitable[Any]]) -> None:
        """A closing edit (``make()``), low priority and droppable under the limit
        (:mod:`bot.frontends.telegram.sending`). While an update is handled it is left for the
        end of the update, after its replies (and after their delivery is on record); otherwise
        it is awaited here."""
        async def edit():
            with closing_edit():
                await make()
        pending = _closings.get()
        if pending is None:
            await edit()
        else:
            await self._checked()  # nothing goes to Telegram before the update's already-answered check
            pending.append(edit)

    @staticmethod
    async def _finish_closings(closings: list, edits: bool = True) -> None:
        """The end of an update: its closing edits, one after another (only with ``edits``:
        not after a reply that could not be sent, whose update should end at once, ready to be
        handled again), then the answers to its button presses (tasks already under way). A
        failure is logged, never raised: what the update committed and replied stands, and a
        stale button answers "closed"."""
        failures = []
        for item in closings:
            if isinstance(item, asyncio.Task) or not edits:
                continue
            try:
                await item()
            except Exception as exc:  # noqa: BLE001 - logged below
                failures.append(exc)
        tasks = [item for item in closings if isinstance(item, asyncio.Task)]
        if tasks:
            failures += await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in failures:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                log.info("closing edit failed", extra={"error": type(outcome).__name__})

    @staticmethod
    def _beside(coro) -> asyncio.Task:
        """A task for a call made beside the update's replies (awaited at the end of the update).
        Its context is the update's (language, priority) without the update's own lists, which
        hold the task: a task whose context reached back to it would be a reference cycle, left
        for the garbage collector to find, for every closing edit."""
        context = contextvars.copy_context()
        context.run(_closings.set, None)
        context.run(_unchecked.set, None)
        return asyncio.get_running_loop().create_task(coro, context=context)

    def _spawn(self, coro) -> None:
        context = contextvars.copy_context()
        context.run(_unchecked.set, None)  # background work is not the update's: no check to ask
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _audit_group(self, chat_id: int, chat_type: str, user_id: int | None) -> None:
        def write():
            with self.service.store.transaction():
                self.service.store.audit_once(f"tg:{user_id}" if user_id else None, "chat.group.ignored",
                                              f"chat:{chat_id}", chat_type)
        try:
            await self.db(write)
        except Exception:  # an audit failure must not break the update loop
            log.exception("group audit failed")
        log.warning("update from a group chat ignored", extra={"chat": chat_id, "type": chat_type})

    async def _tell_slow_down(self, chat_id: int) -> None:
        try:
            await self.send_text(self._bot, chat_id, msg("telegram.slow_down"))
        except TelegramError:
            pass

    async def refresh_members(self) -> None:
        """Who holds a role (or is a lead), for the rate limits; and the dropped counts, to the audit log."""
        keys = await self.db(self.service.store.role_holder_keys)
        if self.escalation is not None:
            keys |= set(self.escalation.leads)
        self.limiter.members = {int(k[3:]) for k in keys if k.startswith("tg:") and k[3:].isdigit()}
        dropped = self.limiter.take_dropped()
        if dropped:
            def write():
                with self.service.store.transaction():
                    for uid, n in dropped.items():
                        self.service.store.audit_coalesced(f"tg:{uid}", "rate.limited", f"tg:{uid}",
                                                           "updates over the limit, dropped", times=n,
                                                           within_seconds=60)
            await self.db(write)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.housekeeping_seconds)
            try:
                await self.refresh_members()
                if self._bot is not None:
                    await self.sync_menus(self._bot)  # roles granted or revoked meanwhile
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rate-limit housekeeping failed")

    # -- wiring --------------------------------------------------------------------
    def install(self, app: Application) -> None:
        once = self._once
        private = filters.ChatType.PRIVATE  # every handler, as well as the gate
        # Answers first: almost every update is a typed answer or a button press, and
        # python-telegram-bot tries a group's handlers in order (otherwise some thirty
        # commands first). A command is never plain text, so no command is shadowed.
        app.add_handler(CallbackQueryHandler(once(self._private_query(self.on_button))))
        app.add_handler(MessageHandler(TYPED_TEXT, once(self.on_text)))
        # An edited message, before every command handler (python-telegram-bot's CommandHandler
        # also takes edited messages): an edit never moves a conversation on (see on_edit).
        app.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, once(self.on_edit)))
        # Words sent with a picture or file are read as typed text (the media itself is not kept).
        app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE & filters.CAPTION & ~filters.TEXT,
                                       once(self.on_caption)))
        app.add_handler(CommandHandler("start", once(self.on_start), filters=private))  # a link: see open_link
        app.add_handler(CommandHandler("flows", once(self.on_flows), filters=private))
        app.add_handler(CommandHandler("ack", once(self.not_during_session(self.on_ack)), filters=private))
        app.add_handler(CommandHandler("language", once(self.not_during_session(self.on_language)), filters=private))
        if self.access is not None:
            from bot.frontends.telegram.staff import StaffCommands

            self.staff = StaffCommands(self, self.access)
            self.staff.install(app)
        from bot.frontends.telegram.rehearsal import RehearsalCommands

        self.rehearsal = RehearsalCommands(self)
        self.rehearsal.install(app)
        schedule = getattr(self.service, "schedule", None)
        if schedule is None and self.reading is not None:  # reading's reminders are rows of a schedule
            from bot.schedule import Schedule

            schedule = Schedule(self.service.store, clock=self.reading.clock)
        if schedule is not None:
            from bot.frontends.telegram.reminders import ReminderCommands

            self.reminders = ReminderCommands(self, schedule)
            self.reminders.install(app)
        else:  # no reminders to stop: /stop is only words, except that it ends a worker-present session
            app.add_handler(CommandHandler("stop", once(self.not_during_session(self.on_text, stop=True)),
                                           filters=private))
        for name in NAV_COMMANDS:
            app.add_handler(CommandHandler(name, once(self._nav(name)), filters=private))
        # a command none of the above knows: the service answers it like any text
        app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE & filters.COMMAND, once(self.on_text)))
        app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE & ~filters.TEXT, once(self.on_not_text)))
        # Someone blocked or unblocked the bot: nothing to answer, but an alert that could not
        # reach them goes now if they unblocked it (_maybe_reachable; a message from them does too)
        app.add_handler(ChatMemberHandler(self.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_error_handler(self.on_error)

    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone blocked or unblocked the bot: nothing is said or kept."""
        self._maybe_reachable(update, context.bot)

    def _maybe_reachable(self, update: Update, bot) -> None:
        """An alert that reached nobody goes at once when one of its recipients writes to the
        bot or unblocks it (Escalation.reachable); an in-memory check for everyone else."""
        user = update.effective_user
        if user is None or self.escalation is None or f"tg:{user.id}" not in self.escalation.unreached_keys:
            return
        member = update.my_chat_member
        if member is None or member.new_chat_member.status == "member":  # not "they blocked it"
            self._spawn(self._reachable(bot, f"tg:{user.id}"))

    def _held(self, pid: int):
        """Whether someone else may be holding this person's device: True while they run a
        worker-present session on it; during the hand-back after one (worker_present.
        handback_minutes: the person who answered may still have it, and words typed there are
        taken as theirs) the time it ends; else None."""
        active = self.service.active(pid)
        if active is not None and active.present_id == pid:
            return True
        return self.service.handing_back(pid)

    async def presenting(self, pid: int) -> bool:
        """Whether someone else (a child, a family member) may be holding this person's device:
        a worker-present session runs on it, or ended moments ago (the hand-back). Nothing of
        the worker's own shows there meanwhile."""
        return bool(await self.db(self._held, pid))

    async def held_text(self, pid: int) -> str | None:
        """What a worker's own command or button is answered with while someone else may be
        holding their device (None if nobody is)."""
        held = await self.db(self._held, pid)
        if not held:
            return None
        if held is True:
            return msg("staff.with_in_progress")
        return self._handing_back_text(held)

    def _handing_back_text(self, until) -> str:
        left = (until - self.service.clock()).total_seconds()
        return msg("staff.with_handing_back", minutes=max(1, math.ceil(left / 60)))

    def not_during_session(self, fn, stop: bool = False, after: bool = False):
        """A worker's own or staff command (/ack, /language, /rehearse, /reminders...) is
        not answered while a worker-present session runs on their device, nor in the
        hand-back minutes after it ends: the person holding it may be someone else. With
        ``stop`` (/stop) the command ends a running session instead, as "stop" does. With
        ``after`` (/with) it answers in the hand-back (it hands the device on again)."""
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if update.effective_user is not None:
                held = await self.db(self._held, await self.person(update))
                if held is True:
                    if stop:
                        await self._input(update, context, Input("cancel", text="/stop"))
                    else:
                        await self.send_text(context.bot, update.effective_chat.id, msg("staff.with_in_progress"))
                    return
                if held and not after:
                    await self.send_text(context.bot, update.effective_chat.id, self._handing_back_text(held))
                    return
            await fn(update, context)
        return handler

    @staticmethod
    def _private_query(handler):
        """CallbackQueryHandler takes no filters: a button under a message in a group does nothing."""
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            if chat is not None and chat.type != "private":
                return
            await handler(update, context)
        return guarded

    def _once(self, handler):
        """Every update is handled to completion once: a re-delivered update whose replies
        were all sent does nothing; one that crashed half-way is handled again, and the
        service returns its committed reply instead of applying the input twice."""
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if not self.gate(update):  # admitted already if gated early; else decided now
                return
            user = update.effective_user
            set_priority(MEMBER if user is not None and user.id in self.limiter.members else STRANGER)
            self._maybe_reachable(update, context.bot)
            key = f"tg:{update.update_id}"
            # Asked in the handler's first store call (or before its first send), not in a
            # hand-off of its own; and its delivery is recorded in the next group commit.
            token = _unchecked.set([key])
            closings: list = []  # closing edits (coroutine functions) and button answers (tasks)
            closing_token = _closings.set(closings)
            try:
                with i18n.using(await self.language_of(update)):  # everything said in reply, in their language
                    replied = False
                    try:
                        await handler(update, context)
                        replied = True
                    finally:
                        if replied:
                            # The reply has gone: on record now, not after the closing edits,
                            # which may wait long behind other people's replies (or be dropped).
                            # Were the bot killed meanwhile, the reply would otherwise be sent
                            # again on restart, after the person had answered further.
                            self._delivered(key)
                        if closings:
                            await self._finish_closings(closings, edits=replied)
            except _AlreadyAnswered:
                log.info("duplicate update ignored", extra={"update_id": update.update_id})
                return
            finally:
                _closings.reset(closing_token)
                _unchecked.reset(token)
                self._finish(update.update_id)
        return guarded

    def _finish(self, update_id: int) -> None:
        self.finished[update_id] = None
        self.finished_total += 1
        if len(self.finished) > 10_000:
            del self.finished[next(iter(self.finished))]
        event, self._finished_event = self._finished_event, None
        if event is not None:
            event.set()

    async def wait_finished(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (woken as each update's handler finishes, not by sleeping) until
        ``predicate()`` holds; False if it still does not after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            left = end - loop.time()
            if left <= 0:
                return False
            if self._finished_event is None:
                self._finished_event = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished_event.wait(), left)
        return True

    async def language_of(self, update: Update) -> str | None:
        """The language to answer this update in (bot/i18n): the person's, looked up once and
        then kept (bounded); /language and invitations with a language change it here too."""
        user, chat = update.effective_user, update.effective_chat
        if user is None or (chat is not None and chat.type != "private"):
            return None
        if user.id not in self._languages:
            pid = self._persons.get(user.id)
            if pid is None:  # someone not seen since the start: who they are and their language, in one hand-off
                pid, language = await self.db(self._acquaint, f"tg:{user.id}", user.first_name)
                self._persons[user.id] = pid
            else:
                language = await self.db(self.service.language_of, pid)
            if len(self._languages) >= 10_000:
                self._languages.clear()
            self._languages[user.id] = language
        return self._languages[user.id]

    def _acquaint(self, key: str, first_name: str | None) -> tuple[int, str]:  # on the store thread
        pid = self._register(key, first_name)
        return pid, self.service.language_of(pid)

    def commands(self, tag: str | None = None, section: str = "commands") -> list[BotCommand]:
        """A command menu (telegram.commands or telegram.staff_commands), described in ``tag``."""
        with i18n.using(tag or i18n.current()):
            return [BotCommand(name, msg(f"telegram.{section}.{name}")) for name in msg(f"telegram.{section}")]

    def other_commands(self) -> str:
        """For /help: the menu's commands beyond answering questions (reminders, /stop, language,
        privacy...), one per line with the menu's own description, in the language in force."""
        return "\n".join(f"/{c.command} — {c.description}" for c in self.commands() if c.command not in NAV_COMMANDS)

    async def post_init(self, app: Application) -> None:
        if self.settle_heap_at_start:
            settle_heap()
        # One menu per language a person may choose (Telegram shows the one matching their
        # app's language), then the default, in English.
        for tag in self.service.languages_offered():
            if tag != i18n.DEFAULT:
                described = self.commands(tag)
                await self._retry(lambda: app.bot.set_my_commands(described, language_code=tag))
        commands = self.commands(i18n.DEFAULT)
        await self.sync_menus(app.bot, at_start=True)
        await self._retry(lambda: app.bot.set_my_commands(commands))
        if self.rehearsal is not None:  # read once now, not by the first updates all at once
            await self.rehearsal.load()
        self._bot = app.bot
        await self.check_leads(app.bot)
        await self.refresh_members()
        self._housekeeping_task = asyncio.create_task(self._housekeeping())
        await self.resend_undelivered(app.bot)
        if self.reminders is not None:
            await self.db(self.reminders.schedule.recover)
        if self.escalation is not None or self.reading is not None or self.reminders is not None \
                or getattr(self.service, "purger", None) is not None or self.access is not None:
            self._alert_task = asyncio.create_task(self._alert_loop(app.bot))

    @staticmethod
    def _tg_ids(keys) -> set[int]:
        return {int(k[3:]) for k in keys if k.startswith("tg:") and k[3:].isdigit()}

    def _menu_people(self, at_start: bool) -> tuple[set[int], set[int]]:  # on the store thread
        """(workers now, people whose worker's role was revoked): Telegram user ids."""
        store = self.service.store
        revoked = {r["key"] for r in store.role_revocations() if r["role"] in WORKER_ROLES} if at_start else ()
        return self._tg_ids(store.staff_keys()), self._tg_ids(revoked)

    async def sync_menus(self, bot, at_start: bool = False) -> None:
        """Workers' chats show their commands beside everyone's (a family's menu never shows
        them), and a chat whose worker lost the role (`role revoke`, perhaps from the command
        line while the bot runs) shows everyone's again: its own menu is deleted. Telegram
        keeps a chat's menu across restarts, so at start the chats of everyone with a revoked
        worker's role are cleared too. Run at start, at each housekeeping pass (a grant or a
        revocation shows within housekeeping_seconds) and when a worker's command is refused
        to someone whose chat still shows the workers' menu (at once, at their next message)."""
        if self.staff is None:
            return
        workers, revoked = await self.db(self._menu_people, at_start)
        staff_menu = self.commands(i18n.DEFAULT) + self.commands(i18n.DEFAULT, "staff_commands")
        for uid in sorted(workers - self._staff_menus):
            try:
                await self._retry(lambda: bot.set_my_commands(staff_menu, scope=BotCommandScopeChat(uid)))
            except TelegramError as exc:  # e.g. a worker who never opened a chat with the bot
                log.info("staff menu not set", extra={"to": f"tg:{uid}", **error_fields(exc)})
            self._staff_menus.add(uid)  # tried: not again at every pass (the next start tries again)
        for uid in sorted((self._staff_menus | revoked) - workers):
            try:
                await self._retry(lambda: bot.delete_my_commands(scope=BotCommandScopeChat(uid)))
                log.info("staff menu removed: the role was revoked", extra={"to": f"tg:{uid}"})
            except TelegramError as exc:  # a chat the bot cannot reach shows no menu of it either
                log.info("staff menu not removed", extra={"to": f"tg:{uid}", **error_fields(exc)})
            self._staff_menus.discard(uid)

    async def check_leads(self, bot) -> list[str]:
        """Whether every safeguarding lead can be reached: Telegram lets a bot write only to
        someone who has opened a chat with it (and not blocked it). A lead who has not would
        miss every alert, strangers' alerts reach nobody else, and nothing but the log would
        say so. A 'typing…' action is the probe (it sends nothing). The unreachable are logged
        as errors and named to the reachable leads and the admins. Returns their keys; a
        network fault is not counted (the alerts retry)."""
        if self.escalation is None:
            return []
        self._leads_checked_at = self.clock()
        unreachable: list[str] = []
        for key in self.escalation.leads:
            try:
                await self._retry(lambda k=key: bot.send_chat_action(int(k[3:]), "typing"))
            except (BadRequest, Forbidden) as exc:
                unreachable.append(key)
                log.error("safeguarding lead cannot be reached: until they open a chat with the bot, alerts cannot "
                          "reach them", extra={"lead": key, "error": type(exc).__name__})
            except TelegramError as exc:
                log.warning("safeguarding lead not checked", extra={"lead": key, "error": type(exc).__name__})
        if unreachable:
            admins = {r["key"] for r in await self.db(self.service.store.role_list) if r["role"] == "admin"}
            told = (set(self.escalation.leads) - set(unreachable)) | admins
            text = msg("alerts.lead_unreachable", leads=", ".join(unreachable), bot=bot.username or "the bot")
            for key in sorted(told):
                if key.startswith("tg:") and key[3:].isdigit():
                    try:
                        await self.push(bot, key, text)
                    except TelegramError as exc:
                        log.warning("lead check notice not sent", extra={"to": key, "error": type(exc).__name__})
        return unreachable

    LEAD_CHECK_EVERY = timedelta(days=1)

    async def recheck_leads(self, bot) -> list[str] | None:
        """A lead may block the bot after `serve` started, and would be found only when an
        alert to them failed: the alert loop checks the leads again once a day (one 'typing…'
        action per lead), telling the reachable leads and the admins as at start. None when
        no check was due."""
        if self.escalation is None or (self._leads_checked_at is not None
                                       and self.clock() - self._leads_checked_at < self.LEAD_CHECK_EVERY):
            return None
        return await self.check_leads(bot)

    async def post_stop(self, app: Application) -> None:
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping_task
            self._housekeeping_task = None
            with contextlib.suppress(Exception):
                await self.refresh_members()  # the last dropped counts to the audit log
        if self._alert_task is not None:
            self._alert_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alert_task
            self._alert_task = None

    async def resend_undelivered(self, bot) -> int:
        """After a crash between commit and send, Telegram will not deliver the update again
        (python-telegram-bot confirms updates as it fetches them), so the committed reply
        would never reach the person. Send those replies now, once."""
        sent = 0
        for key, pid, reply in await self.db(self.service.undelivered, "tg:"):
            person = await self.db(self.service.store.get_person, pid)
            if not person or not person["key"].startswith("tg:"):
                continue
            try:
                await self.deliver(bot, int(person["key"][3:]), pid, reply, key)
                await self.db(self.service.delivered, key)
                sent += 1
                if key[3:].isdigit():
                    self._finish(int(key[3:]))
            except TelegramError as exc:
                log.warning("undelivered reply not sent", extra={"input": key, **error_fields(exc)})
        if sent:
            log.info("resent replies committed before a restart", extra={"count": sent})
        return sent

    # -- safeguarding alerts -------------------------------------------------------------
    async def _alert_loop(self, bot) -> None:
        """Send due alerts and reminders; the schedule is in the store, so this survives restarts."""
        loop = asyncio.get_running_loop()
        while True:
            self._alert_wake.clear()  # a wake-up during the pass below means: one more pass at once
            started = loop.time()
            for step, failed in ((lambda: self.dispatch_alerts(bot), "alert dispatch failed"),
                                 (lambda: self.dispatch_reminders(bot), "reminder dispatch failed"),
                                 (lambda: self.dispatch_schedule(bot), "schedule dispatch failed"),
                                 (self.daily_purge, "purge failed"),
                                 (lambda: self.dispatch_erasure_outcomes(bot), "erasure outcome dispatch failed"),
                                 (lambda: self.dispatch_held(bot), "held notice dispatch failed"),
                                 (lambda: self.recheck_leads(bot), "lead check failed")):
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep the loop alive whatever one pass met
                    log.exception(failed)
            self.alert_pass_started = started  # the last pass done began then (loop.time()): for tests
            # asyncio.wait, not wait_for: on Python 3.11, wait_for swallows a cancellation that
            # arrives as the event is set, and post_stop then waits for this loop forever.
            waiter = asyncio.ensure_future(self._alert_wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.alert_poll_seconds)
            finally:
                waiter.cancel()

    async def _reachable(self, bot, key: str) -> None:
        """Someone an alert could not reach wrote to the bot: it goes to them now."""
        if await self.db(self.escalation.reachable, key):
            self.wake_alerts(bot)

    def wake_alerts(self, bot) -> None:
        """A new alert is committed: send it now, without making the person's update wait
        for it (the leads' chats are limited to about a message a second, and an update
        waiting on them would hold up everyone's next updates)."""
        if self._alert_task is not None and not self._alert_task.done():
            self._alert_wake.set()
        else:
            self._spawn(self.dispatch_alerts(bot))

    async def dispatch_alerts(self, bot) -> int:
        if self.escalation is None:
            return 0
        sent = 0
        marked: set[int] = set()  # an alert in several recipients' digests counts one notice
        async with self._alert_lock:  # one pass at a time, so nothing goes out twice
            queue = list(await self.db(self.escalation.due))
            while queue:
                # A leads' chat takes about a message a second: before each send, anything
                # urgent that came in since the pass began (a person with a role or a case)
                # goes first, ahead of the flood.
                if sent:
                    urgent = [n for n in await self.db(self.escalation.urgent) if n.alert_ids[0] not in marked]
                    queue = urgent + [n for n in queue if not (set(n.alert_ids) & {u.alert_ids[0] for u in urgent})]
                notice = queue.pop(0)
                if await self._send_notice(bot, notice, marked):
                    sent += 1
        return sent

    FAILED_KEPT = 10_000  # (alert, recipient) pairs remembered as failing, for the log (then forgotten)

    async def _send_notice(self, bot, notice, marked: set[int]) -> bool:
        """Send one notice to each recipient. An error is logged once per alert and recipient
        until a notice reaches them again (class and code only, never Telegram's description).
        A notice that reaches nobody is tried again after the re-alert interval, or at once when
        one of its recipients writes to the bot (Escalation.unreached), with one error line
        per alert when it stops reaching anyone, not one per pass."""
        reached, failed = 0, {}
        for key in notice.recipients:
            if not key.startswith("tg:"):
                continue
            try:
                await self.send_text(bot, int(key[3:]), notice.text)
                reached += 1
                for alert_id in notice.alert_ids:
                    self._failed_to.discard((alert_id, key))
            except TelegramError as exc:
                failed[key] = exc
                new = [a for a in notice.alert_ids if (a, key) not in self._failed_to]
                if new:
                    if len(self._failed_to) >= self.FAILED_KEPT:
                        self._failed_to.clear()
                    self._failed_to.update((a, key) for a in new)
                    log.error("alert not delivered", extra={"alerts": new, "to": key, **error_fields(exc)})
        if not reached:
            if notice.held:  # kept back during a session: its alerts' own notices carry on as scheduled
                return False
            stopped = await self.db(self.escalation.unreached, notice.alert_ids, notice.recipients)
            if stopped:
                log.error("safeguarding alert reached nobody: tried again after the re-alert interval, or at once "
                          "when one of its recipients writes to the bot",
                          extra={"alerts": stopped, "recipients": list(notice.recipients),
                                 "errors": sorted({type(e).__name__ for e in failed.values()})})
            return False
        back = await self.db(self.escalation.reached, notice.alert_ids) if self.escalation.any_unreached else []
        if back:
            log.warning("safeguarding alert reached someone again", extra={"alerts": back})
        if notice.held:  # kept back during a worker-present session: the alerts' schedule is unchanged
            log.warning("safeguarding alert sent after a session", extra={"alerts": notice.alert_ids})
            return True
        # per notice, not per pass: a first notice is on record before the next is sent
        await self.db(self.escalation.sent, [a for a in notice.alert_ids if a not in marked])
        marked.update(notice.alert_ids)
        log.warning("safeguarding alert sent", extra={"alerts": notice.alert_ids, "reminder": notice.repeat,
                                                      "recipients": reached})
        return True

    async def dispatch_reminders(self, bot) -> int:
        """Write the unread-answer and review-item reminders now due (practitioners, then
        supervisors) as rows of the schedule; :meth:`dispatch_schedule` sends them, once.
        Returns how many rows were written."""
        if self.reading is None:
            return 0
        async with self._alert_lock:
            rows = await self.db(self.reading.plan)
        if rows:
            log.info("reminders scheduled", extra={"rows": len(rows)})
        return len(rows)

    async def daily_purge(self):
        """Once a day, delete what is past its retention period (bot.retention), on the store's
        thread: each batch is a short transaction, so replies wait for at most one."""
        purger = getattr(self.service, "purger", None)
        if purger is None or not await self.db(purger.is_due):
            return None
        steps, report = purger.steps(), None
        while (step := await self.db(next, steps, None)) is not None:  # one batch per job: replies go between
            report = step
        log.info("purge done", extra={"batches": report.batches, "rows": sum(report.deleted.values())})
        return report

    # -- while a worker-present session runs, nothing of the worker's reaches their device --
    async def holding(self) -> set[str]:
        """The keys of people running a worker-present session on their device now (someone
        else is holding it): nothing meant for them is sent there (bot.escalation.holding)."""
        if self.escalation is not None:
            return await self.db(self.escalation.holding)
        from bot.escalation import holding

        return await self.db(holding, self.service.store)

    async def push(self, bot, key: str, text: str, *, about_person: int | None = None,
                   about_conversation: int | None = None) -> bool:
        """Send a notice to someone other than the person being answered (a comment notice,
        an erasure request's notice): at once, or, while a worker-present session runs on
        their device, after it has ended: kept in the schedule (bot.schedule.hold_notice, so a
        restart loses nothing; sent by :meth:`dispatch_schedule`), or in memory without one
        (:meth:`dispatch_held`). ``about_person`` / ``about_conversation``: whom it is about
        (quoted or named), so that person's erasure also erases a notice still kept back.
        False if not for Telegram."""
        if not key.startswith("tg:"):
            return False
        if key in await self.holding():
            if self.reminders is not None:
                from bot.schedule import hold_notice

                await self.db(hold_notice, self.service.store, key, text, about_person=about_person,
                              about_conversation=about_conversation)
            else:
                self._held_pushes.setdefault(key, []).append((text, i18n.current()))
            return True
        await self.send_text(bot, int(key[3:]), text)
        return True

    async def dispatch_held(self, bot) -> int:
        """Send the notices kept back from people whose worker-present session has ended."""
        if not self._held_pushes:
            return 0
        busy = await self.holding()
        sent = 0
        for key in [k for k in self._held_pushes if k not in busy]:
            for text, lang in self._held_pushes.pop(key):
                try:
                    with i18n.using(lang):
                        await self.send_text(bot, int(key[3:]), text)
                    sent += 1
                except TelegramError as exc:
                    log.error("held notice not delivered", extra={"error": type(exc).__name__})
        return sent

    def _holding_back(self) -> bool:
        return bool(self._held_pushes) or bool(self.escalation is not None and self.escalation.holds_back)

    async def dispatch_erasure_outcomes(self, bot) -> int:
        """Tell each person the outcome of their erasure request (decided on the command line)."""
        if self.access is None:
            return 0
        from bot import erasure

        store = self.service.store
        sent = 0
        outcomes = await self.db(erasure.untold, store)
        busy = await self.holding() if outcomes else set()
        for outcome in outcomes:
            if not outcome.recipient.startswith("tg:"):
                await self.db(erasure.told, store, outcome.id, False)
                continue
            if outcome.recipient in busy:
                continue  # a worker-present session runs on their device: told at a pass after it ends
            try:
                await self.send_text(bot, int(outcome.recipient[3:]), outcome.text)
            except TelegramError as exc:
                log.error("erasure outcome not delivered", extra={"request": outcome.id, "error": type(exc).__name__})
                if never_deliverable(exc):  # blocked, or no chat: trying at every pass would change nothing
                    await self.db(erasure.told, store, outcome.id, False, "undeliverable: blocked or no chat")
                continue
            await self.db(erasure.told, store, outcome.id)
            sent += 1
        return sent

    async def dispatch_schedule(self, bot) -> int:
        """Send what bot.schedule says is due (nudges, date reminders, unread answers, review items)."""
        if self.reminders is None:
            return 0
        async with self._alert_lock:
            return await self.reminders.dispatch(bot)

    async def on_ack(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id
        await self.person(update)
        arg = context.args[0] if context.args else ""
        if arg[:1] in ("R", "r") and arg[1:].isdigit() and self.staff is not None:  # a review-tier item: /ack R12
            result = await self.db(self.staff.reading.acknowledge, int(arg[1:]), f"tg:{update.effective_user.id}")
            await self.send_text(context.bot, chat_id, msg(f"reading.ack_{result}", id=int(arg[1:])))
            return
        if self.escalation is None or not context.args or not context.args[0].lstrip("#").isdigit():
            await self.send_text(context.bot, chat_id, msg("telegram.ack_usage"))
            return
        alert_id = int(context.args[0].lstrip("#"))
        result, count = await self.db(self.escalation.acknowledge_person, alert_id, f"tg:{update.effective_user.id}")
        name = "ack_ok_all" if result == "ok" and count > 1 else f"ack_{result}"
        await self.send_text(context.bot, chat_id, msg(f"telegram.{name}", id=alert_id, more=count - 1))

    # -- sending, with retries for transient network faults ---------------------
    async def _retry(self, make: Callable[[], Awaitable[Any]]) -> Any:
        await self._checked()
        delay = 0.2
        for attempt in range(1, self.send_attempts + 1):
            try:
                return await make()
            except RetryAfter as exc:  # the rate limiter gave up; wait as told and try again
                if attempt == self.send_attempts:
                    raise
                wait = exc.retry_after  # seconds, or a timedelta (PTB's setting)
                await asyncio.sleep(wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait))
            except (BadRequest, Forbidden):
                raise
            except NetworkError as exc:  # includes TimedOut
                if attempt == self.send_attempts:
                    raise
                log.warning("send failed, retrying", extra={"error": type(exc).__name__, "attempt": attempt})
                await asyncio.sleep(delay)
                delay *= 2

    async def send_text(self, bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                        parse_mode: str | None = None) -> int | None:
        """Send text, split to Telegram's limit. With ``parse_mode`` ("HTML") the caller gives
        whole, escaped messages under the limit (bot.review.summary.render_telegram)."""
        return (await self._send_parts(bot, chat_id, directed(text, i18n.current()), markup, parse_mode))[0]

    async def _send_parts(self, bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                          parse_mode: str | None = None) -> tuple[int | None, str]:
        """Send ``text`` as it is (already ``directed``), split to Telegram's limit, the
        buttons under the last part; (the last part's message id, its text)."""
        parts = split_text(text) if parse_mode is None else [text]
        message_id = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            message_id = await self._retry(lambda: send_message(bot, chat_id, part, markup if last else None,
                                                                parse_mode))
        return message_id, parts[-1]

    async def send_prompts(self, bot, chat_id: int, prompts: list[Prompt], flow: Flow | None, conv_id: int | None) -> None:
        """One Telegram message per question (or offer, or confirmation), with the plain
        messages said before it in the same reply (an intro, "Thank you", a safeguarding
        response) at its head, a blank line between: each reply then costs one of Telegram's
        30 messages a second, not two or three, and reads as one turn. Plain messages with
        no question after them go together as one message. Each part keeps its own language
        and direction (bot/i18n); the transcript keeps every prompt apart, as shown."""
        lead: list[str] = []
        for p in prompts:
            with i18n.using(p.lang):  # each prompt in the language it was written in, hints and buttons too
                if self._plain(p, flow, conv_id):
                    lead.append(directed(p.text, i18n.current()))
                else:
                    await self._send_prompt(bot, chat_id, p, flow, conv_id, lead)
                    lead = []
        if lead:
            await self._send_parts(bot, chat_id, "\n\n".join(lead))

    @staticmethod
    def _plain(p: Prompt, flow: Flow | None, conv_id: int | None) -> bool:
        """A prompt sent as words only, with no buttons and nothing answering it."""
        if conv_id is None:
            return True
        if p.kind == "question":
            return flow is None
        return p.kind not in ("offer", "confirm")

    async def _send_prompt(self, bot, chat_id: int, p: Prompt, flow: Flow | None, conv_id: int | None,
                           lead: list[str] = ()) -> None:
        def joined(text: str) -> str:
            return "\n\n".join([*lead, directed(text, i18n.current())])

        if p.kind == "question":
            markup = keyboard(p, flow, conv_id)
            mid, shown = await self._send_parts(bot, chat_id, joined(question_text(p)), markup)
            if markup is not None and mid is not None:
                self._open_keyboards[chat_id] = (mid, shown)  # closed by an edit that keeps the words
            else:
                self._open_keyboards.pop(chat_id, None)
            self._note_asked(chat_id, mid, conv_id, p.step_id)
        elif p.kind == "offer":
            await self._send_parts(bot, chat_id, joined(p.text), hold_keyboard(conv_id))
        else:  # confirm: it quotes the question now asked
            mid, _ = await self._send_parts(bot, chat_id, joined(p.text), confirm_keyboard(conv_id, p.ref))
            self._note_asked(chat_id, mid, conv_id, p.step_id)
            # a newer confirm replaces the one before (about another text): its buttons go
            earlier = self._open_confirms.pop(chat_id, None)
            if mid is not None:
                self._open_confirms[chat_id] = mid
            if earlier is not None and earlier != mid:
                await self._drop_buttons(bot, chat_id, earlier)

    async def _drop_buttons(self, bot, chat_id: int, message_id: int) -> None:
        async def edit():
            try:
                await self._retry(lambda: edit_message(bot, chat_id, message_id))
            except TelegramError:  # too old, or gone: pressing it says it has closed all the same
                pass
        await self._closing(edit)

    def _note_asked(self, chat_id: int, message_id: int | None, conv_id: int, step_id: str | None) -> None:
        if message_id is None or step_id is None:
            return
        if chat_id not in self._asked and len(self._asked) >= 10_000:
            self._asked.clear()  # bounded; forgetting only means the next answer is not checked
        asked = self._asked.setdefault(chat_id, [])
        asked.append((message_id, conv_id, step_id))
        del asked[:-16]

    def _seen(self, chat_id: int, message) -> tuple[int | None, str | None] | None:
        """The question the person saw when they typed this message: the one it replies to,
        else the last question sent before it. (None, None) if every question known was sent
        after it (e.g. a message typed while the bot was down, answered on restart); None if
        no question is known (then the text answers the question now asked)."""
        asked = self._asked.get(chat_id)
        if not asked or message is None:
            return None
        replied = getattr(message, "reply_to_message", None)
        if replied is not None:
            for mid, conv, step in asked:
                if mid == replied.message_id:
                    return conv, step
        before = [(mid, conv, step) for mid, conv, step in asked if mid < message.message_id]
        if not before:
            return None, None
        _, conv, step = max(before)
        return conv, step

    async def deliver(self, bot, chat_id: int, pid: int, reply: Reply, input_key: str | None) -> None:
        """Send a committed reply, then note that it reached the person."""
        # The reply is committed (and sent again after a restart if it never arrives): a
        # stranger's next update may start now (polling.ChatQueues, loose order).
        mark_committed()
        if reply.duplicate and reply.delivered:
            log.info("duplicate update ignored", extra={"chat": chat_id, "input": input_key})
            return
        flow = None
        if reply.conversation_id is not None and any(p.kind == "question" for p in reply.prompts):
            flow = await self._flow_of(pid, reply.conversation_id)
        await self.send_prompts(bot, chat_id, reply.prompts, flow, reply.conversation_id)
        if reply.alerts and not reply.duplicate:
            self.wake_alerts(bot)  # at once, not at the next poll
        elif reply.status not in ("in_progress", "none") and not reply.duplicate and self._holding_back():
            self.wake_alerts(bot)  # perhaps a worker-present session ended: what was kept back, now

    # -- the inbox: updates kept until handled (bot.frontends.telegram.polling) --------------
    async def keep(self, updates: list[Update], raw: dict[int, dict] | None = None) -> list[int]:
        """Commit received updates to the inbox (with whatever else the store thread has waiting);
        each as Telegram sent it when ``raw`` has it (polling.get_updates)."""
        raw = raw or {}
        rows = [update_row(u, raw.get(u.update_id)) for u in updates]
        return await self.db(self.service.store.inbox_add, rows)

    def done(self, update_id: int) -> None:
        """Handled: the update leaves the inbox in the next group commit, with every other
        update handled meanwhile (one write for them all, with the delivery marks)."""
        with self._marks_lock:
            self._handled.append(update_id)
            if self._marks_due:
                return
            self._marks_due = True
        self._db.defer(self._record_delivered)

    async def pending(self, bot) -> list[Update]:
        """Updates kept before a restart and not handled, in order. One that cannot be read
        (its words erased meanwhile) is dropped."""
        out = []
        for row in await self.db(self.service.store.inbox_pending):
            try:
                update = Update.de_json(json.loads(row["raw"]), bot)
            except (TypeError, ValueError):
                update = None
            if update is None:
                self.done(row["update_id"])
                continue
            out.append(update)
        if out:
            log.info("handling updates kept before a restart", extra={"count": len(out)})
        return out

    # -- people ------------------------------------------------------------------------
    async def person(self, update: Update) -> int:
        user = update.effective_user
        pid = self._persons.get(user.id)
        if pid is None:
            pid = await self.db(self._register, f"tg:{user.id}", user.first_name)
            self._persons[user.id] = pid
        return pid

    def _register(self, key: str, first_name: str | None) -> int:
        """The person's id. Their Telegram first name is stored only for staff (families are
        told who invited them by it) or where the deployment says people_names: telegram;
        anyone else's is dropped, and one stored before is forgotten (bot.names)."""
        keep = self.access is not None and self.access.keeps_name(key)
        pid = self.service.person(key, first_name if keep else None)
        if not keep:
            with self.service.store.transaction():
                self.service.store.forget_name(pid)
        return pid

    # -- handlers --------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id
        pid = await self.person(update)
        key = f"tg:{update.update_id}"
        if context.args:
            held = await self.held_text(pid)
            if held:  # someone else may hold the device: no link opened as the worker
                await self.send_text(context.bot, chat_id, held)
                return
            if self.staff is not None:
                await self.staff.open_link(update, context, context.args[0])
            else:
                log.info("unknown start payload", extra={"chat": chat_id})
                await self.send_text(context.bot, chat_id, msg("telegram.unknown_link"))
            return
        if await self.offer_language(context.bot, update):
            return  # greeted once they have chosen (or kept English)
        if await self._offer_resume(context.bot, chat_id, pid):
            return
        name = update.effective_user.first_name or ""
        if not await self.db(self._startable, update):
            await self.send_text(context.bot, chat_id, msg("staff.uninvited"))
            return
        await self._offer_flows(context.bot, chat_id, update, greet=name)
        log.info("start", extra={"chat": chat_id, "input": key})

    # -- languages (issue 19) ------------------------------------------------------------
    async def offer_language(self, bot, update: Update) -> bool:
        """Someone who has not chosen a language, whose Telegram app is set to one we offer
        (``language_code``), is asked whether to use it: offered, never forced (True if asked)."""
        user = update.effective_user
        pid = await self.person(update)
        tag = i18n.match(getattr(user, "language_code", None), self.service.languages_offered())
        if tag is None or tag == i18n.DEFAULT or await self.db(self.service.store.person_language, pid):
            return False
        with i18n.using(tag):
            await self.send_text(bot, update.effective_chat.id, msg("language.offer", name=i18n.own_name(tag)),
                                 language_keyboard([tag], keep=msg("language.keep")))
        return True

    async def on_language(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/language: buttons with each offered language's own name."""
        await self.person(update)
        await self.send_text(context.bot, update.effective_chat.id, msg("language.choose"),
                             language_keyboard(self.service.languages_offered()))

    async def _choose_language(self, update: Update, context, pid: int, tag: str, key: str) -> None:
        chat_id = update.effective_chat.id
        if tag not in self.service.languages_offered():
            await self.send_text(context.bot, chat_id, msg("language.not_offered"))
            return
        await self._close_keyboard(context.bot, chat_id, None)  # the question in the old language
        reply = await self.db(self.service.set_language, pid, tag, input_key=key)
        self._languages[update.effective_user.id] = tag
        self._flows = {k: v for k, v in self._flows.items() if k[0] != pid}
        with i18n.using(tag):
            await self.deliver(context.bot, chat_id, pid, reply, key)
            if reply.conversation_id is None or reply.status != "in_progress":
                await self._offer_flows(context.bot, chat_id, update, greet=update.effective_user.first_name or "")

    async def _flow_of(self, pid: int, conv_id: int) -> Flow | None:
        """The flow a conversation runs on (fixed for its life, so kept; bounded)."""
        flow = self._flows.get((pid, conv_id))
        if flow is None:
            found = await self.db(self.service.flow_of, pid, conv_id)
            if found is None:
                return None
            if len(self._flows) >= 10_000:
                self._flows.clear()
            flow = self._flows[(pid, conv_id)] = found[1]
        return flow

    async def _offer_resume(self, bot, chat_id: int, pid: int) -> bool:
        """If the person has an unfinished conversation, offer to carry it on (True if so)."""
        active = await self.db(self.service.active, pid)
        if active is None:
            return False
        found = await self.db(self.service.flow_of, pid, active.id)
        title = found[1].title if found else active.flow_id
        await self.send_text(bot, chat_id, msg("telegram.resume_offer", title=title), resume_keyboard(active.id))
        return True

    def _startable(self, update: Update) -> list[Flow]:
        if self.access is None:
            return self.service.flows()
        return self.access.startable_flows(f"tg:{update.effective_user.id}")

    async def _offer_flows(self, bot, chat_id: int, update: Update, greet: str | None = None) -> None:
        """The flows this person may start, as buttons; with ``greet`` (their first name) the
        greeting heads the same message (one message for /start, not two)."""
        flows = await self.db(self._startable, update)
        head = [msg("telegram.greeting", name=greet).replace("Hello .", "Hello.")] if greet is not None else []
        if not flows:
            await self.send_text(bot, chat_id, "\n\n".join(
                [*head, msg("telegram.no_flows") if self.access is None else msg("staff.uninvited")]))
            return
        await self.send_text(bot, chat_id, "\n\n".join([*head, msg("telegram.choose_flow")]),
                             flows_keyboard([f.in_language(i18n.current()) for f in flows]))

    async def on_flows(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.person(update)
        await self._offer_flows(context.bot, update.effective_chat.id, update)

    def _nav(self, kind: str):
        async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._input(update, context, Input(kind, text=f"/{kind}"))
        return handler

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inp = Input.from_text(update.effective_message.text)
        seen = self._seen(update.effective_chat.id, update.effective_message) if inp.kind == "answer" else None
        await self._input(update, context, inp, seen)

    async def on_caption(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A picture, video or file sent with words: the words are read exactly as typed text
        (screened, stored, an answer to the question asked); the person is told, kindly, that
        the media itself is not kept."""
        message = update.effective_message
        await self.person(update)
        self._album_answered(update.effective_chat.id, message)  # its other pictures: nothing more said
        await self.send_text(context.bot, update.effective_chat.id, msg("telegram.caption_read"))
        seen = self._seen(update.effective_chat.id, message)
        await self._input(update, context, Input("answer", text=message.caption, media=media_kind(message)), seen)

    ALBUMS_KEPT = 1_000  # albums (media groups) recently answered, per chat (then forgotten)

    def _album_answered(self, chat_id: int, message) -> bool:
        """Whether this picture belongs to an album (several pictures sent at once, one
        message each) already answered; records that it now is. Bounded; forgetting only
        means a late picture of an old album is answered once more."""
        group = getattr(message, "media_group_id", None)
        if group is None:
            return False
        if (chat_id, group) in self._albums:
            return True
        if len(self._albums) >= self.ALBUMS_KEPT:
            self._albums.pop(next(iter(self._albums)))
        self._albums[(chat_id, group)] = None
        return False

    @staticmethod
    def _message_ref(chat_id: int, message) -> str | None:
        """How the store names a person's message (for an edit of it to find the input it was)."""
        return f"{chat_id}:{message.message_id}" if message is not None else None

    async def on_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message edited after it was sent: never a command, never an answer to the question
        now asked. The service keeps the new words beside the original (unread for the worker)
        and screens them as any answer (help and an alert, or a quiet review item)."""
        message = update.edited_message
        text = (message.text or message.caption) if message is not None else None
        # a caption edited: the words are still a picture's or file's (the media is not kept)
        media = media_kind(message) if text and not message.text else None
        if not text or Input.from_text(text).kind != "answer":
            return  # a picture changed, or a message edited into a command: nothing to keep or do
        chat_id = update.effective_chat.id
        pid = await self.person(update)
        if self.rehearsal is not None and await self.rehearsal.rehearsing(pid) and not await self.presenting(pid):
            return  # a practitioner's own rehearsal is never screened (someone else's words are)
        key = f"tg:{update.update_id}"
        reply = await self.db(self.service.edited, pid, text, input_key=key,
                              original_message=self._message_ref(chat_id, message), media=media)
        if reply.closed and not reply.alerts:
            return  # no conversation, nothing of concern: nothing kept, nothing to say
        if reply.alerts:
            await self._close_keyboard(context.bot, chat_id, None)
        await self.deliver(context.bot, chat_id, pid, reply, key)

    async def _input(self, update: Update, context, inp: Input, seen: tuple | None = None) -> None:
        if self.rehearsal is not None and await self.rehearsal.intercept(update, context, inp):
            return  # a rehearsal under way takes the practitioner's words (never screened, never alerts);
            # never while a worker-present session runs (intercept asks): the words are someone else's
        chat_id = update.effective_chat.id
        pid = await self.person(update)
        key = f"tg:{update.update_id}"
        # Always through the service, even with no conversation open: every free text is
        # checked for a safeguarding disclosure there. The detector itself runs here, before the
        # hand-off (it needs no database), so it overlaps the store thread's work; handle uses
        # the result only for these very words in the context it finds (issue 18).
        self.service.prescreen(pid, inp, input_key=key)
        message = self._message_ref(chat_id, update.message) if inp.kind == "answer" else None
        reply = await self.db(self.service.handle, pid, inp, input_key=key, seen=seen, message=message)
        if reply.closed and not reply.alerts:
            if inp.kind == "help":
                await self.send_text(context.bot, chat_id, msg("navigation.help") + "\n" + self.other_commands())
            elif inp.kind != "answer":
                await self.send_text(context.bot, chat_id, msg("telegram.nothing_active"))
            if not await self.presenting(pid):  # in the hand-back the phone may be in someone else's
                await self._offer_flows(context.bot, chat_id, update)  # hands: not the worker's own menu
            return
        if reply.accepted and not reply.duplicate and reply.answered is not None:
            await self._close_keyboard(context.bot, chat_id, reply.answered)
        elif reply.status == "cancelled" or reply.alerts:
            await self._close_keyboard(context.bot, chat_id, None)
        await self.deliver(context.bot, chat_id, pid, reply, key)
        if inp.kind == "help" and not reply.alerts and not reply.duplicate:  # the menu's other commands
            await self.send_text(context.bot, chat_id, self.other_commands())

    async def _close_keyboard(self, bot, chat_id: int, answered: str | None) -> None:
        opened = self._open_keyboards.pop(chat_id, None)
        if opened is None:
            return
        mid, text = opened
        # the "✓ answer" line right to left too, like the question above it (Urdu, Arabic)
        new_text = f"{text}\n\n{directed(msg('telegram.answered', answer=answered), i18n.current())}" if answered else text

        async def edit():
            try:
                await self._retry(lambda: edit_message(bot, chat_id, mid, new_text[:4096]))
            except BadRequest as exc:  # e.g. message too old to edit: the answer is saved all the same
                log.info("could not close keyboard", extra={"chat": chat_id, **error_fields(exc)})
        await self._closing(edit)

    async def on_not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Something other than words (a picture, a file, a sticker...): told kindly that only
        words are read. A picture or file is also noted in the open conversation's transcript
        (that one was sent, not what: it is not kept), once per album, so a worker reading it
        knows the person tried to show something; the question still waits for words."""
        if update.effective_chat is None:
            return
        pid = await self.person(update)
        message = update.effective_message
        if self._album_answered(update.effective_chat.id, message):
            return  # the album's first picture (or its words) has been answered: once is enough
        kind = media_kind(message, default=None) if message is not None else None
        if kind is not None and not (self.rehearsal is not None and await self.rehearsal.rehearsing(pid)
                                     and not await self.presenting(pid)):
            await self.db(self.service.media_only, pid, kind, input_key=f"tg:{update.update_id}")
        await self.send_text(context.bot, update.effective_chat.id, msg("telegram.not_text"))

    PERSONAL_BUTTONS = frozenset("liwnoqb")  # language, invitation consent and who, nudge, /reminders' buttons

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        chat_id = update.effective_chat.id if update.effective_chat else query.from_user.id
        pid = await self.person(update)
        key = f"tg:{update.update_id}"
        cb = Callback.parse(query.data)
        if cb is None:
            await self._answer_query(query, msg("telegram.closed"))
            return
        held = await self.held_text(pid) if cb.action in self.PERSONAL_BUTTONS else None
        if held:
            # an old button of the worker's own (language, reminders, an invitation) pressed
            # while someone else may hold the device (a worker-present session, or the
            # hand-back just after it): not now
            await self._answer_query(query, held)
            return
        if cb.action == "l":  # /language, or the language Telegram suggested
            await self._answer_query(query)
            await self._remove_markup(query)
            await self._choose_language(update, context, pid, cb.value, key)
            return
        if cb.action == "i" and self.staff is not None:
            await self.staff.on_consent(update, context, cb.conv, cb.value == "y")
            return
        if cb.action == "w" and self.staff is not None:
            await self.staff.on_who(update, context, cb.conv, cb.step)
            return
        if cb.action in ("n", "o", "q", "b") and self.reminders is not None:  # a nudge's buttons; /reminders' buttons
            if cb.action == "n":
                await self.reminders.on_nudge(update, context, cb.conv, cb.value == "y")
            elif cb.action == "o":
                await self.reminders.on_turn(update, context, cb.conv, cb.value == "y")
            elif cb.action == "q":
                await self.reminders.on_quiet(update, context, cb.conv, cb.value == "y")
            else:
                await self.reminders.on_day(update, context, cb.conv, cb.value == "y")
            return
        if cb.action == "s":
            await self._answer_query(query)
            allowed = await self.db(lambda: any(f.id == cb.value for f in self._startable(update)))
            if not allowed:
                await self.send_text(context.bot, chat_id, msg("telegram.closed"))
                return
            held = await self.db(self._held, pid)
            if held and held is not True:
                # the hand-back after a session on this device: a flow started now would be the
                # worker's own, and the words of the child who may still hold it taken as theirs
                await self.send_text(context.bot, chat_id, self._handing_back_text(held))
                return
            if await self._offer_resume(context.bot, chat_id, pid):
                return
            await self._remove_markup(query)
            # Who is filling this in? Asked first when the flow admits several.
            choices = await self.db(self.service.respondent_choices, cb.value) or []
            respondent = None
            if choices:
                if not 1 <= cb.step <= len(choices):
                    await self.send_text(context.bot, chat_id, msg("respondent.question"),
                                         respondent_keyboard(cb.value, choices))
                    return
                respondent = choices[cb.step - 1][0]
            reply = await self.db(self.service.start, pid, cb.value, input_key=key, frontend="telegram",
                                  chat_id=str(chat_id), respondent=respondent)
            await self.deliver(context.bot, chat_id, pid, reply, key)
            return
        if cb.action == "h":  # after a safeguarding response: carry on, or stop for now
            await self._answer_query(query)
            await self._remove_markup(query)
            inp = Input("continue") if cb.value == "y" else Input("cancel")
            reply = await self.db(self.service.handle, pid, inp, input_key=key, conversation_id=cb.conv)
            if reply.closed:
                await self.send_text(context.bot, chat_id, msg("telegram.closed"))
                return
            await self.deliver(context.bot, chat_id, pid, reply, key)
            return
        if cb.action == "p":  # is the text typed for an earlier question the answer to this one?
            await self._answer_query(query)
            await self._remove_markup(query)
            # which waiting text the button was for (none on a button from before they said)
            inp = Input("apply" if cb.value == "y" else "discard", button=cb.step or None)
            reply = await self.db(self.service.handle, pid, inp, input_key=key, conversation_id=cb.conv)
            if reply.closed and not reply.prompts:
                await self.send_text(context.bot, chat_id, msg("telegram.closed"))
                return
            if reply.accepted and reply.answered is not None and not reply.duplicate:
                await self._close_keyboard(context.bot, chat_id, reply.answered)
            await self.deliver(context.bot, chat_id, pid, reply, key)
            return
        if cb.action == "r":
            await self._answer_query(query)
            await self._remove_markup(query)
            active = await self.db(self.service.active, pid)
            if active is None or active.id != cb.conv:
                await self.send_text(context.bot, chat_id, msg("telegram.closed"))
                return
            if cb.value == "y":
                reply = await self.db(self.service.current, pid)
                await self.send_text(context.bot, chat_id, msg("telegram.resumed"))
                await self.deliver(context.bot, chat_id, pid, reply, None)
            else:
                reply = await self.db(self.service.cancel_active, pid, key)
                await self.deliver(context.bot, chat_id, pid, reply, key)
                await self._offer_flows(context.bot, chat_id, update)
            return
        # An answer needs only the flow (fixed for the conversation's life, so kept): the
        # service checks that the question is still open in the same hand-off as it applies
        # the answer. A toggle changes nothing stored, so it asks for the state here.
        if cb.action == "t":
            found = await self.db(self.service.flow_of, pid, cb.conv)
            conv, flow = found if found is not None else (None, None)
        else:
            conv, flow = None, await self._flow_of(pid, cb.conv)
        if flow is None or not (0 <= cb.step < len(flow.steps)):
            await self._closed(query)
            return
        step = flow.steps[cb.step]
        if cb.action == "t":
            if conv.status != "in_progress" or conv.state != step.id:
                await self._closed(query)
                return
            try:
                index = int(cb.value)
                step.options[index]
            except (ValueError, IndexError):
                await self._closed(query)
                return
            markup = query.message.reply_markup if query.message else None
            selected = set(selected_from_markup(markup))
            selected ^= {index}
            offered = offered_from_markup(markup)
            options = tuple(o for i, o in enumerate(step.options) if i in offered) if offered else step.options
            prompt = Prompt(step.text, kind="question", step_id=step.id, type=step.type, options=options)
            await self._answer_query(query)
            buttons = keyboard(prompt, flow, conv.id, frozenset(selected))
            try:
                if query.message is not None:
                    await self._retry(lambda: edit_message(query.get_bot(), chat_id, query.message.message_id,
                                                           markup=buttons))
                else:  # not ours to know where it is
                    await self._retry(lambda: query.edit_message_reply_markup(
                        reply_markup=InlineKeyboardMarkup.de_json(buttons.to_dict(), query.get_bot())))
            except BadRequest as exc:
                log.info("toggle not shown", extra={"chat": chat_id, **error_fields(exc)})
            return
        if cb.action == "d":
            selected = selected_from_markup(query.message.reply_markup if query.message else None)
            button: Any = [step.options[i].id for i in sorted(selected)]
        else:
            button = self._button_value(step, cb.value)
            if button is None:
                await self._closed(query)
                return
        # The service decides whether the question is still open (expect_step), after it has
        # checked whether this very update was already committed: a press re-delivered after
        # a crash gets its committed reply, not "closed".
        reply = await self.db(self.service.handle, pid, Input("answer", button=button), input_key=key,
                              conversation_id=cb.conv, expect_step=step.id)
        if reply.closed:
            await self._closed(query)
            return
        await self._answer_query(query)
        if reply.accepted and reply.answered is not None and not reply.duplicate and query.message is not None:
            opened = self._open_keyboards.get(chat_id)
            if opened and opened[0] == query.message.message_id:
                self._open_keyboards.pop(chat_id, None)
            marked = (f"{query.message.text or ''}\n\n"
                      f"{directed(msg('telegram.answered', answer=reply.answered), i18n.current())}")[:4096]

            async def edit():
                try:
                    await self._retry(lambda: edit_message(query.get_bot(), chat_id, query.message.message_id, marked))
                except BadRequest as exc:
                    log.info("could not mark answer", extra={"chat": chat_id, **error_fields(exc)})
            await self._closing(edit)
        await self.deliver(context.bot, chat_id, pid, reply, key)

    @staticmethod
    def _button_value(step, value: str):
        if step.type == "choice":
            try:
                return step.options[int(value)].id
            except (ValueError, IndexError):
                return None
        if step.type == "yesno":
            return value if value in ("yes", "no") else None
        if step.type == "scale":
            return value if value.lstrip("-").isdigit() else None
        return None

    async def _answer_query(self, query, text: str | None = None) -> None:
        """Answer a button press (the small notice, or just the end of the button's spinner).
        While an update is handled it goes beside the reply, awaited at the end of the update
        like a closing edit: the reply does not wait for it (with hundreds pressing at once,
        each reply would otherwise queue for the limiter only after its own answer's round
        trip). Never before the update's already-answered check."""
        async def answer():
            try:
                await self._retry(lambda: query.answer(text=text))
            except TelegramError as exc:  # an old query can no longer be answered; nothing is lost
                log.info("callback answer failed", extra=error_fields(exc))

        pending = _closings.get()
        if pending is None:
            await answer()
            return
        await self._checked()
        pending.append(self._beside(answer()))

    async def _remove_markup(self, query) -> None:
        async def edit():
            message = query.message
            try:
                if message is None:  # not ours to know where it is
                    await self._retry(lambda: query.edit_message_reply_markup(reply_markup=None))
                else:
                    await self._retry(lambda: edit_message(query.get_bot(), message.chat.id, message.message_id))
            except TelegramError:
                pass
        await self._closing(edit)

    async def _closed(self, query) -> None:
        await self._answer_query(query, msg("telegram.closed"))
        await self._remove_markup(query)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("update failed", exc_info=context.error,
                  extra={"update_id": getattr(update, "update_id", None)})
        chat = getattr(getattr(update, "effective_chat", None), "id", None)
        if chat is not None and not isinstance(context.error, (NetworkError, Forbidden)):
            try:  # never a traceback for the person; what was committed stays committed
                await self.send_text(context.bot, chat, msg("telegram.error"))
            except TelegramError:
                pass


def settle_heap() -> None:
    """Keep what was loaded at start out of the garbage collector's full passes.

    The flows, the safeguarding model, python-telegram-bot and the rest loaded before serving
    are some 100,000 objects that live as long as the process. Left in the collector's oldest
    generation, each full pass (about one per thousand updates under load) walks them all:
    some 60 ms with everything else waiting, about a sixth of the CPU time of an answer
    (scripts/bench telegram, profiled). Called once, when everything is built, just before
    serving (gc.freeze: they are simply never scanned again; nothing else changes)."""
    gc.collect()
    gc.freeze()


def build_application(service: ConversationService, token: str, *, api_url: str | None = None,
                      max_rate: float = 30.0, concurrency: int = 256, connect_timeout: float = 10.0,
                      read_timeout: float = 15.0, escalation=None, alert_poll_seconds: float = 30.0,
                      access=None, limits: RateLimits | None = None, reading=None,
                      request=None) -> tuple[Application, TelegramFrontend]:
    """The Application serve runs, and its frontend. ``request``: a python-telegram-bot
    ``BaseRequest`` to use instead of HTTP (for getUpdates too), e.g. benchmarks.transport."""
    frontend = TelegramFrontend(service, escalation=escalation, alert_poll_seconds=alert_poll_seconds, access=access,
                                limits=limits, reading=reading)
    builder = (
        ApplicationBuilder()
        .token(token)
        .concurrent_updates(PerChatOrder(concurrency, gate=frontend.gate))
        # not AIORateLimiter: questions before closing edits, and one chat's 429 holds no other
        .rate_limiter(SendLimiter(max_rate, max_retries=5))
        .post_init(frontend.post_init)
        .post_stop(frontend.post_stop)
    )
    if request is not None:  # it has its own timeouts and pool (the builder refuses both)
        builder = builder.request(request).get_updates_request(request)
    else:
        builder = (
            builder.connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .get_updates_read_timeout(read_timeout + 30)
            # Not one connection per concurrent update: httpcore scans the whole pool on every
            # request, and a pool of 32 halved p99 reply latency for 200 users (scripts/bench http).
            .connection_pool_size(max(8, min(concurrency, 32)))
        )
    if api_url:
        base = api_url.rstrip("/")
        builder = builder.base_url(base).base_file_url(base.rsplit("/", 1)[0] + "/file/" + base.rsplit("/", 1)[1])
    app = builder.build()
    frontend.install(app)
    return app, frontend


def serve(service: ConversationService, token: str, *, api_url: str | None = None, webhook_url: str | None = None,
          listen: str = "127.0.0.1", port: int = 8443, secret_token: str | None = None, poll_timeout: int = 30,
          escalation=None, alert_poll_seconds: float = 30.0, access=None, limits: RateLimits | None = None, reading=None) -> None:
    app, frontend = build_application(service, token, api_url=api_url, escalation=escalation, limits=limits,
                                      alert_poll_seconds=alert_poll_seconds, access=access, reading=reading)
    service.store.checkpoint_in_background()  # no reply waits for a WAL checkpoint
    frontend.settle_heap_at_start = True  # in post_init: once SIGTERM already means a clean stop
    log.info("serving", extra={"mode": "webhook" if webhook_url else "polling", "api": api_url or "telegram"})
    try:
        if webhook_url:
            from urllib.parse import urlparse

            from bot.frontends.telegram.polling import run_webhook

            run_webhook(app, frontend, listen=listen, port=port, url_path=urlparse(webhook_url).path,
                        webhook_url=webhook_url, secret_token=secret_token, allowed_updates=Update.ALL_TYPES,
                        gate=frontend.gate, loose=frontend.loose_order)
        else:
            from bot.frontends.telegram.polling import run as run_polling

            run_polling(app, frontend, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES, gate=frontend.gate,
                        loose=frontend.loose_order)
    finally:
        frontend.close()
        log.info("stopped")
