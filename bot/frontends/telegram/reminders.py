"""Reminders over Telegram (issue 15): sending what bot.schedule hands out, the nudge's
"Carry on" / "Not now" buttons, /reminders (each kind on or off, the person's own quiet
hours and days without reminders) and /stop.

Thin: every rule (what is due, quiet hours, opt-outs, at most N nudges) is in
:mod:`bot.schedule`; this only sends, and reports back what Telegram confirmed.
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot.frontends.telegram.render import CHECK, _data
from bot import i18n
from bot.messages import msg
from bot.schedule import ALL, DAYS, KINDS, QUIET_CHOICES, Schedule, Times

log = logging.getLogger("bot.telegram")


def never_deliverable(exc: TelegramError) -> bool:
    """Telegram will refuse this chat until the person does something (403: blocked the bot,
    or their account is deactivated; 400 'chat not found': never opened a chat with it)."""
    return isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and "chat not found" in str(exc).lower())


def nudge_keyboard(conv_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(msg("schedule.nudge_carry_on"), callback_data=_data("n", conv_id, "y")),
        InlineKeyboardButton(msg("schedule.nudge_not_now"), callback_data=_data("n", conv_id, "n")),
    ]])


def kinds_keyboard(off: set[str]) -> InlineKeyboardMarkup:
    """One button per kind: turn it off (or on again), callback o:<kind index>:<y on | n off>;
    then the quiet hours (q:0:n) and the days (b:7:n) choosers."""
    rows = []
    for i, kind in enumerate(KINDS):
        is_off = ALL in off or kind in off
        label = msg("schedule.turn_on" if is_off else "schedule.turn_off", kind=msg(f"schedule.kinds.{kind}"))
        rows.append([InlineKeyboardButton(label[:60], callback_data=_data("o", i, "y" if is_off else "n"))])
    rows.append([InlineKeyboardButton(msg("schedule.quiet_button"), callback_data=_data("q", 0, "n"))])
    rows.append([InlineKeyboardButton(msg("schedule.days_button"), callback_data=_data("b", len(DAYS), "n"))])
    return InlineKeyboardMarkup(rows)


def _hhmm(t) -> str:
    return f"{t:%H:%M}"


def quiet_keyboard(schedule: Schedule, times: Times) -> InlineKeyboardMarkup:
    """The quiet hours a person may choose, theirs ticked (q:N:y), and Back (b:7:y)."""
    rows = []
    for i, choice in enumerate(QUIET_CHOICES):
        start, until = choice or (_hhmm(schedule.quiet_from), _hhmm(schedule.quiet_until))
        label = msg("schedule.quiet_choice_usual" if choice is None else "schedule.quiet_choice", start=start, until=until)
        rows.append([InlineKeyboardButton((CHECK if i == times.choice else "") + label, callback_data=_data("q", i, "y"))])
    rows.append([InlineKeyboardButton(msg("schedule.back"), callback_data=_data("b", len(DAYS), "y"))])
    return InlineKeyboardMarkup(rows)


def days_keyboard(times: Times) -> InlineKeyboardMarkup:
    """One button per weekday saying whether reminders may come then; pressing turns it over."""
    names = msg("schedule.days")
    rows = []
    for d in DAYS:
        free = d in times.blocked
        label = msg("schedule.day_free" if free else "schedule.day_open", day=names[d])
        rows.append([InlineKeyboardButton(label, callback_data=_data("b", d, "y" if free else "n"))])
    rows.append([InlineKeyboardButton(msg("schedule.back"), callback_data=_data("b", len(DAYS), "y"))])
    return InlineKeyboardMarkup(rows)


class ReminderCommands:
    def __init__(self, frontend, schedule: Schedule):
        self.fe = frontend
        self.schedule = schedule

    def install(self, app: Application) -> None:
        once = self.fe._once
        # during a worker-present session the device is someone else's: /reminders is not
        # answered, and /stop ends the session (as "stop" does), never the worker's reminders
        for name, fn in (("reminders", self.fe.not_during_session(self.on_reminders)),
                         ("stop", self.fe.not_during_session(self.on_stop, stop=True))):
            app.add_handler(CommandHandler(name, once(fn), filters=filters.ChatType.PRIVATE))  # as every handler

    # -- sending ---------------------------------------------------------------------------
    async def dispatch(self, bot) -> int:
        """Send what is due; each item is claimed first and marked sent only once Telegram confirmed."""
        sent = 0
        items = await self.fe.db(self.schedule.due)
        busy = await self.fe.holding() if items else set()
        for item in items:
            if not item.recipient.startswith("tg:"):
                continue
            if item.recipient in busy:
                continue  # a worker-present session runs on their device: still due, sent once it ends
            if not await self.fe.db(self.schedule.claim, item):
                continue  # taken by another pass, or cancelled meanwhile
            # the buttons in the person's language (the text was written in it when scheduled)
            person = await self.fe.db(self.fe.service.store.person_by_key, item.recipient)
            with i18n.using((person or {}).get("language")):
                markup = nudge_keyboard(item.conversation_id) if item.kind == "nudge" and item.conversation_id else None
            try:
                with i18n.using((person or {}).get("language")):
                    await self.fe.send_text(bot, int(item.recipient[3:]), item.text, markup)
            except TelegramError as exc:
                log.error("reminder not delivered", extra={"kind": item.kind, "schedule": item.id,
                                                           "error": type(exc).__name__})
                # blocked, or no chat with the bot: trying again every pass would hold back the
                # supervisor's turn for ever (a staff reminder then reaches the next stage at once)
                await self.fe.db(self.schedule.undeliverable if never_deliverable(exc) else self.schedule.failed, item)
                continue
            await self.fe.db(self.schedule.sent, item)
            sent += 1
            log.info("reminder sent", extra={"kind": item.kind, "schedule": item.id})
        return sent

    # -- the nudge's buttons -----------------------------------------------------------------
    async def on_nudge(self, update: Update, context: ContextTypes.DEFAULT_TYPE, conv_id: int, carry_on: bool) -> None:
        query = update.callback_query
        chat_id = update.effective_chat.id if update.effective_chat else query.from_user.id
        pid = await self.fe.person(update)
        await self.fe._answer_query(query)
        await self.fe._remove_markup(query)
        active = await self.fe.db(self.fe.service.active, pid)
        if active is None or active.id != conv_id:
            await self.fe.send_text(context.bot, chat_id, msg("telegram.closed"))
            return
        if carry_on:
            reply = await self.fe.db(self.fe.service.current, pid)
            await self.fe.send_text(context.bot, chat_id, msg("telegram.resumed"))
            await self.fe.deliver(context.bot, chat_id, pid, reply, None)
        else:
            await self.fe.db(self.schedule.not_now, pid, conv_id)
            await self.fe.send_text(context.bot, chat_id, msg("schedule.nudge_later"))

    # -- /case REF: a practitioner's view of the case's reminders --------------------------
    def _of_case(self, ref: str, conversations: list[dict]) -> list[dict]:
        """The case's waiting reminders this reader may see: ``conversations`` are the rows of
        Access.case, which decides (Access.sees_reminder: of conversations shared with them)."""
        from bot.access import Access

        by_id = {c["id"]: c for c in conversations}
        return [r for r in self.schedule.of_case(ref)
                if r["conversation_id"] in by_id and Access.sees_reminder(by_id[r["conversation_id"]], r)]

    async def case_lines(self, key: str, ref: str, conversations: list[dict]) -> list[str]:
        rows = await self.fe.db(self._of_case, ref, conversations)
        if not rows:
            return ["", msg("schedule.case_none", ref=ref)]
        lines = ["", msg("schedule.case_title", ref=ref)]
        for r in rows:
            who = msg("schedule.to_you") if r["person_key"] == key else msg("schedule.to_person",
                                                                          conversation=r["conversation_id"])
            lines.append(msg("schedule.case_line", id=r["id"], when=self.schedule.local(r["due_at"]),
                             kind=msg(f"schedule.case_kinds.{r['kind']}"), who=who, state=r["state"]))
        lines.append(msg("schedule.case_cancel_hint", ref=ref))
        return lines

    async def cancel_in_case(self, key: str, ref: str, item_id: int, conversations: list[dict]) -> str:
        def cancel() -> bool:
            if item_id not in {r["id"] for r in self._of_case(ref, conversations)}:
                return False
            return self.schedule.cancel_in_case(ref, item_id, key)
        done = await self.fe.db(cancel)
        return msg("schedule.cancelled" if done else "schedule.cancel_unknown", id=item_id, ref=ref)

    # -- /reminders and /stop ------------------------------------------------------------
    async def on_reminders(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        pid = await self.fe.person(update)
        waiting, off = await self.fe.db(self.schedule.of_person, pid)
        if waiting:
            lines = [msg("schedule.list_title")]
            lines += [msg("schedule.list_line", when=self.schedule.local(r["due_at"]),
                          kind=msg(f"schedule.kinds.{r['kind']}")) for r in waiting if r["kind"] in KINDS]
        else:
            lines = [msg("schedule.list_none")]
        turned_off = [msg(f"schedule.kinds.{k}") for k in KINDS if ALL in off or k in off]
        if turned_off:
            lines.append(msg("schedule.list_off", kinds="; ".join(turned_off)))
        times = await self.fe.db(self.schedule.times, pid)
        lines += self._times_lines(times)
        await self.fe.send_text(context.bot, update.effective_chat.id, "\n".join(lines), kinds_keyboard(off))

    async def on_turn(self, update: Update, context: ContextTypes.DEFAULT_TYPE, index: int, on: bool) -> None:
        query = update.callback_query
        pid = await self.fe.person(update)
        await self.fe._answer_query(query)
        if not 0 <= index < len(KINDS):
            await self.fe._remove_markup(query)
            return
        kind = KINDS[index]
        await self.fe.db(self.schedule.turn, pid, kind, not on)
        _, off = await self.fe.db(self.schedule.of_person, pid)
        try:
            await self.fe._retry(lambda: query.edit_message_reply_markup(reply_markup=kinds_keyboard(off)))
        except TelegramError:
            pass
        await self.fe.send_text(context.bot, update.effective_chat.id,
                                msg("schedule.turned_on" if on else "schedule.turned_off",
                                    kind=msg(f"schedule.kinds.{kind}")))

    @staticmethod
    def _times_lines(times: Times) -> list[str]:
        names = msg("schedule.days")
        lines = [msg("schedule.quiet_line", start=_hhmm(times.quiet_from), until=_hhmm(times.quiet_until))]
        if times.blocked:
            lines.append(msg("schedule.days_line", days=", ".join(names[d] for d in sorted(times.blocked))))
        else:
            lines.append(msg("schedule.days_line_any"))
        return lines

    async def _show(self, query, markup) -> None:
        try:
            await self.fe._retry(lambda: query.edit_message_reply_markup(reply_markup=markup))
        except TelegramError:
            pass  # e.g. the message is too old to edit: the choice below is saved all the same

    async def on_quiet(self, update: Update, context: ContextTypes.DEFAULT_TYPE, index: int, choose: bool) -> None:
        """q:0:n shows the quiet hours to choose from; q:N:y chooses one."""
        query = update.callback_query
        pid = await self.fe.person(update)
        await self.fe._answer_query(query)
        if not choose:
            await self._show(query, quiet_keyboard(self.schedule, await self.fe.db(self.schedule.times, pid)))
            return
        if not 0 <= index < len(QUIET_CHOICES):
            await self.fe._remove_markup(query)
            return
        times = await self.fe.db(self.schedule.set_quiet, pid, index)
        await self._show(query, quiet_keyboard(self.schedule, times))
        await self.fe.send_text(context.bot, update.effective_chat.id,
                                msg("schedule.quiet_set", start=_hhmm(times.quiet_from), until=_hhmm(times.quiet_until)))

    async def on_day(self, update: Update, context: ContextTypes.DEFAULT_TYPE, day: int, open_: bool) -> None:
        """b:7:n shows the days, b:7:y goes back to the main buttons; b:D:n keeps weekday D
        free of reminders, b:D:y lets them come on D again."""
        query = update.callback_query
        pid = await self.fe.person(update)
        await self.fe._answer_query(query)
        if day == len(DAYS):
            if open_:
                _, off = await self.fe.db(self.schedule.of_person, pid)
                await self._show(query, kinds_keyboard(off))
            else:
                await self._show(query, days_keyboard(await self.fe.db(self.schedule.times, pid)))
            return
        if day not in DAYS:
            await self.fe._remove_markup(query)
            return
        changed = await self.fe.db(self.schedule.set_day, pid, day, not open_)
        if not changed:
            await self.fe.send_text(context.bot, update.effective_chat.id, msg("schedule.days_all_free"))
            return
        await self._show(query, days_keyboard(await self.fe.db(self.schedule.times, pid)))
        name = msg("schedule.days")[day]
        await self.fe.send_text(context.bot, update.effective_chat.id,
                                msg("schedule.day_opened" if open_ else "schedule.day_freed", day=name))

    async def on_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        pid = await self.fe.person(update)
        await self.fe.db(self.schedule.stop, pid)
        text = msg("schedule.stopped")
        if await self.fe.db(self.fe.service.store.roles_of, pid) & {"practitioner", "supervisor", "admin"}:
            text += "\n\n" + msg("schedule.stopped_staff")  # their duty reminders go on: say so
        await self.fe.send_text(context.bot, update.effective_chat.id, text)
