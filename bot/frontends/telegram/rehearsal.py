"""Rehearsals over Telegram: /rehearse [SCENARIO], then questions, /hint, /end, /cancel.

Thin: every rule is in bot.rehearsal.service. While a rehearsal is under way, the
practitioner's text goes to it (never to a flow and never to safeguarding detection: the
words are role-play, and a rehearsal never alerts anyone).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot.engine.runner import Input
from bot.messages import msg
from bot.rehearsal.service import RehearsalService

ROLES = ("practitioner", "supervisor", "admin")


class RehearsalCommands:
    def __init__(self, frontend, service: RehearsalService | None = None):
        self.fe = frontend
        self.service = service or RehearsalService(frontend.service.store)
        # people with a rehearsal under way, so that other people's text costs no database call
        # here; read from the store once (a restart keeps every rehearsal), then kept up to date
        self._active: set[int] | None = None

    def install(self, app: Application) -> None:
        once = self.fe._once
        for name, fn in (("rehearse", self.on_rehearse), ("hint", self.on_hint), ("end", self.on_end)):
            app.add_handler(CommandHandler(name, once(self.fe.not_during_session(fn)),
                                           filters=filters.ChatType.PRIVATE))  # as every handler

    def _allowed(self, update: Update) -> bool:
        access = self.fe.access
        return access is None or access.has(f"tg:{update.effective_user.id}", *ROLES)

    async def _send(self, context, update: Update, messages: list[str]) -> None:
        for text in messages:
            await self.fe.send_text(context.bot, update.effective_chat.id, text)

    async def on_rehearse(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        pid = await self.fe.person(update)
        if not await self.fe.db(self._allowed, update):
            await self._send(context, update, [msg("rehearsal.not_allowed")])
            return
        if not context.args:
            lines = [msg("rehearsal.choose")]
            lines += [msg("rehearsal.choose_line", n=n, title=s.title, id=s.id)
                      for n, s in enumerate(self.service.listing(), 1)]
            await self._send(context, update, ["\n".join(lines)])
            return
        name = " ".join(context.args)
        scenario = self.service.find(name)
        if scenario is None:
            await self._send(context, update, [msg("rehearsal.unknown", name=name[:100])])
            return
        reply = await self.fe.db(self.service.start, pid, scenario.id, input_key=f"tg:{update.update_id}",
                                 frontend="telegram", chat_id=str(update.effective_chat.id))
        await self._note(pid, reply)
        await self._send(context, update, reply.messages)

    async def _note(self, pid: int, reply) -> None:
        active = await self._people()
        if reply.status == "rehearsing":
            active.add(pid)
        else:
            active.discard(pid)

    async def rehearsing(self, pid: int) -> bool:
        """Whether this person has a rehearsal under way (their words are never screened)."""
        return pid in await self._people()

    async def load(self) -> None:
        """Read who has a rehearsal under way (at start, before any update: otherwise every
        person's first update, all at once after a restart, would each ask the store)."""
        await self._people()

    async def _people(self) -> set[int]:
        if self._active is None:
            self._active = await self.fe.db(self.service.store.rehearsing_people)
        return self._active

    async def _command(self, update: Update, context, text: str) -> None:
        pid = await self.fe.person(update)
        reply = await self.fe.db(self.service.handle, pid, text, input_key=f"tg:{update.update_id}")
        if reply.conversation_id is not None:
            await self._note(pid, reply)
        await self._send(context, update, reply.messages)

    async def on_hint(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._command(update, context, "/hint")

    async def on_end(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._command(update, context, "/end")

    async def intercept(self, update: Update, context, inp: Input) -> bool:
        """Route text (and /cancel, /help) to a rehearsal under way; False if there is none."""
        pid = await self.fe.person(update)
        if pid not in await self._people():
            return False
        if await self.fe.presenting(pid):
            return False  # someone else holds the device (/with): their words go to their session, screened
        text = inp.text if inp.text is not None else f"/{inp.kind}"
        await self._command(update, context, text)
        return True
