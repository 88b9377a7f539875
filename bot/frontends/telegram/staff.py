"""Telegram commands for roles: invitations (deep links and consent), practitioner and
supervisor views, comments, and a family's own data. Every rule is in :mod:`bot.access`;
this module only translates commands and renders what it returns.
"""

from __future__ import annotations

import io
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot import respondent as respondents
from bot.access import Access, AmbiguousCase, Refused
from bot.engine.dates import shown
from bot import i18n
from bot.messages import msg
from bot.names import person_label
from bot.reading import Reading, UnknownStep
from bot.review.export import md_escape, md_ident, md_quote, render, status_words

log = logging.getLogger("bot.telegram.staff")


def _key(update: Update) -> str:
    return f"tg:{update.effective_user.id}"


def _shown(reason: str) -> str:
    """A link someone else opened first reads exactly like a code that does not exist; a person
    whose family role an admin revoked is told kindly that it cannot start now."""
    if reason == "family-revoked":
        return "paused"
    return "unknown" if reason in ("taken", "not-opened", "refused") else reason


class StaffCommands:
    def __init__(self, frontend, access: Access):
        self.fe = frontend
        self.access = access
        self.reading = getattr(frontend, "reading", None) or Reading(frontend.service.store, access,
                                                                     leads=access.config.leads)

    def install(self, app: Application) -> None:
        once = self.fe._once
        for name, fn in (("invite", self.on_invite), ("with", self.on_with), ("cases", self.on_cases), ("case", self.on_case),
                         ("transcript", self.on_transcript), ("comment", self.on_comment),
                         ("review", self.on_review), ("mydata", self.on_mydata), ("revoke", self.on_revoke),
                         ("reassign", self.on_reassign), ("missed", self.on_missed), ("pseudonym", self.on_pseudonym),
                         ("privacy", self.on_privacy), ("delete", self.on_delete),
                         ("caseinfo", self.on_caseinfo), ("summary", self.on_summary), ("web", self.on_web),
                         ("trend", self.on_trend)):
            app.add_handler(CommandHandler(name, once(self._not_during_session(fn, after=name == "with")),
                                           filters=filters.ChatType.PRIVATE))

    def _not_during_session(self, fn, after: bool = False):
        """While a worker-present session runs on this device, the child is holding it, and
        may still be in the hand-back minutes after it ends: no staff command (cases,
        transcripts, sign-in links, invitations) answers until then. /with (``after``) does
        in the hand-back: it hands the device on to the next person."""
        return self.fe.not_during_session(fn, after=after)

    async def _say(self, context, update: Update, text: str, markup=None) -> None:
        await self.fe.send_text(context.bot, update.effective_chat.id, text, markup)

    async def _refused(self, context, update: Update) -> None:
        await self._say(context, update, msg("staff.refused"))
        user = update.effective_user
        if user is not None and user.id in self.fe._staff_menus:  # noqa: SLF001 - perhaps their role went:
            await self.fe.sync_menus(context.bot)  # their menu stops offering what they are refused

    async def _try(self, context, update: Update, fn, *args) -> tuple[bool, object]:
        """Call an access function as this person: (True, its result), or (False, None) after
        saying why not (a refusal, or the reason a request could not be done)."""
        try:
            return True, await self.fe.db(fn, _key(update), *args)
        except Refused:
            await self._refused(context, update)
        except AmbiguousCase as exc:
            await self._say(context, update, self._whose_case(exc, update))
        except ValueError as exc:
            await self._say(context, update, str(exc))
        return False, None

    @staticmethod
    def _whose_case(exc: "AmbiguousCase", update: Update) -> str:
        """Two practitioners use this case reference: which one's, as the same command again."""
        command = (update.effective_message.text or "/case").split()[0].split("@")[0] if update.effective_message else "/case"
        return "\n".join([msg("staff.case_whose", ref=exc.ref)] + [
            msg("staff.case_whose_line", name=name, command=command, ref=exc.ref, id=key[3:])
            for key, name in exc.holders if key.startswith("tg:")])

    @staticmethod
    def _ref_and_whose(args: list[str]) -> tuple[str, str | None] | None:
        """'REF' or 'REF ID' (whose case, a practitioner's Telegram id): (REF, their key or None);
        None for anything else."""
        if len(args) == 1:
            return args[0], None
        if len(args) == 2 and args[1].isdigit():
            return args[0], f"tg:{args[1]}"
        return None

    async def _ask(self, context, update: Update, fn, *args):
        """Call an access function as this person; on refusal say so and return None."""
        try:
            return await self.fe.db(fn, _key(update), *args)
        except Refused:
            await self._refused(context, update)
            return None

    # -- invitations ------------------------------------------------------------------------
    @staticmethod
    def _for(args: list[str]) -> tuple[list[str], str | None, bool]:
        """Split '--for young-person' (or '--for=adult') off the arguments:
        (the other arguments, the respondent, whether what followed --for was understood)."""
        rest, respondent, ok = [], None, True
        it = iter(args)
        for arg in it:
            if arg == "--for" or arg.startswith("--for="):
                value = arg.partition("=")[2] if "=" in arg else next(it, "")
                respondent = respondents.parse(value)
                ok = respondent is not None
            else:
                rest.append(arg)
        return rest, respondent, ok

    @staticmethod
    def _lang(args: list[str]) -> tuple[list[str], str | None]:
        """Split '--lang cy' (or '--lang=cy') off the arguments: (the others, the tag or None)."""
        rest, tag = [], None
        it = iter(args)
        for arg in it:
            if arg == "--lang" or arg.startswith("--lang="):
                tag = arg.partition("=")[2] if "=" in arg else next(it, "")
            else:
                rest.append(arg)
        return rest, tag

    async def on_invite(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        rest, lang = self._lang(context.args)
        args, respondent, ok = self._for(rest)
        if len(args) != 2 or not ok:
            await self._say(context, update, msg("staff.invite_usage"))
            return
        flow_id, ref = args
        ok, result = await self._try(context, update, self.access.invite, flow_id, ref, respondent, lang)
        if not ok:
            return
        code, invite_id = result
        link = f"https://t.me/{context.bot.username}?start={code}"
        days = self.access.config.invite_expiry_days
        text = msg("staff.invite_made", link=link, flow=flow_id, ref=ref, days=f"{days:g}", id=invite_id)
        unwritten = await self.fe.db(self.access.unwritten_case_texts, _key(update), flow_id, ref)
        if unwritten:  # the flow shows texts the worker writes for the case: say which are missing
            text += "\n\n" + msg("staff.caseinfo_missing", flow=flow_id, ref=ref, keys=", ".join(unwritten),
                                  key=unwritten[0])
        await self._say(context, update, text)

    async def on_with(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/with CASE FLOW [--for child]: a worker-present session on this device."""
        pid = await self.fe.person(update)
        args, respondent, ok = self._for(context.args)
        if len(args) != 2 or not ok:
            await self._say(context, update, msg("staff.with_usage"))
            return
        ref, flow_id = args
        if await self.fe.db(self.fe.service.active, pid) is not None:
            await self._say(context, update, msg("staff.with_busy"))
            return
        if self.fe.rehearsal is not None and await self.fe.rehearsal.rehearsing(pid):
            # its words would go to the role-play, never screened: the rehearsal ends first
            await self._say(context, update, msg("staff.with_rehearsing"))
            return
        key = f"tg:{update.update_id}"
        chat_id = update.effective_chat.id
        service = self.fe.service
        holder = {}

        def start(person_id, flow, case_id, who, present_id):
            reply = service.start(person_id, flow, input_key=key, frontend="telegram", chat_id=str(chat_id),
                                  case_id=case_id, respondent=who, present_id=present_id)
            holder["reply"] = reply
            return reply.conversation_id

        ok, _ = await self._try(context, update, self.access.start_with, ref, flow_id, start, respondent)
        if not ok:
            return
        conv = holder["reply"].conversation_id
        who = (await self.fe.db(self.fe.service.store.conversation, conv)).respondent
        await self._say(context, update, msg("staff.with_started", ref=ref, who=respondents.described(who)))
        await self.fe.deliver(context.bot, chat_id, pid, holder["reply"], key)

    async def on_revoke(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/revoke CODE|ID: withdraw an invitation link one made (admins: any)."""
        await self.fe.person(update)
        if len(context.args) != 1:
            await self._say(context, update, msg("staff.revoke_usage"))
            return
        ok, invite_id = await self._try(context, update, self.access.revoke_invite_by, context.args[0])
        if not ok:
            return
        await self._say(context, update, msg("staff.revoked", id=invite_id))

    async def on_reassign(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reassign CASE_REF TELEGRAM_ID: a supervisor of both practitioners (or an admin) moves a case."""
        await self.fe.person(update)
        if len(context.args) != 2 or not context.args[1].removeprefix("tg:").isdigit():
            await self._say(context, update, msg("staff.reassign_usage"))
            return
        ref, to = context.args[0], "tg:" + context.args[1].removeprefix("tg:")
        ok, done = await self._try(context, update, self.access.reassign, ref, to)
        if not ok:
            return
        await self._say(context, update, msg("staff.reassigned", ref=done["ref"], to=done["to"].removeprefix("tg:")))

    async def open_link(self, update: Update, context: ContextTypes.DEFAULT_TYPE, code: str) -> None:
        """/start CODE: say who invited them and who will see the answers; ask consent."""
        try:
            view = await self.fe.db(self.access.open_invite, _key(update), code)
        except Refused as exc:
            log.info("invite refused", extra={"reason": exc.reason, "chat": update.effective_chat.id})
            await self._say(context, update, msg(f"staff.link_{_shown(exc.reason)}"))
            return
        if view.language is not None:  # the invitation set it: theirs from now on
            self.fe._languages[update.effective_user.id] = view.language
        if view.language is None:  # no language on the invitation: offer the one Telegram suggests
            await self.fe.offer_language(context.bot, update)
        with i18n.using(view.language or i18n.current()):
            yes = f"i:{view.invite_id}:y"
            markup = InlineKeyboardMarkup([[
                InlineKeyboardButton(msg("staff.consent_yes"), callback_data=yes),
                InlineKeyboardButton(msg("staff.consent_no"), callback_data=f"i:{view.invite_id}:n"),
            ]])
            await self._say(context, update, await self.fe.db(self.access.invitation, view), markup)

    async def on_consent(self, update: Update, context, invite_id: int, yes: bool, respondent: str | None = None) -> None:
        """Yes or no to an invitation; then, if nobody said who is answering and the flow
        admits several, "Who is filling this in?" (buttons ``w:INVITE:N``) before it starts."""
        query = update.callback_query
        await self.fe._answer_query(query)
        await self.fe._remove_markup(query)
        if not yes:
            await self._say(context, update, msg("staff.consent_declined"))
            return
        if respondent is None:
            choices = await self.fe.db(self._ask_who, invite_id)
            if choices:
                markup = InlineKeyboardMarkup([[InlineKeyboardButton(label[:60], callback_data=f"w:{invite_id}:{i}")]
                                               for i, (_, label) in enumerate(choices)])
                await self._say(context, update, msg("respondent.question"), markup)
                return
        pid = await self.fe.person(update)
        key = f"tg:{update.update_id}"
        service = self.fe.service
        holder = {}

        def start(person_id, flow_id, case_id, respondent=None):
            reply = service.start(person_id, flow_id, input_key=key, frontend="telegram",
                                  chat_id=str(update.effective_chat.id), case_id=case_id, respondent=respondent)
            holder["reply"] = reply
            return reply.conversation_id

        try:
            await self.fe.db(self.access.accept_invite, _key(update), invite_id, start, respondent)
        except Refused as exc:
            await self._say(context, update, msg(f"staff.link_{_shown(exc.reason)}"))
            return
        self.fe.limiter.members.add(update.effective_user.id)  # a family member now: their own limits at once
        await self.fe.deliver(context.bot, update.effective_chat.id, pid, holder["reply"], key)

    def _ask_who(self, invite_id: int) -> list[tuple[str, str]]:
        inv = self.access.store.invite(invite_id)
        if inv is None or inv["respondent"]:
            return []
        flow = self.access.library.get(inv["flow_id"])
        return respondents.choices(flow) if flow is not None and respondents.needs_asking(flow, None) else []

    async def on_who(self, update: Update, context, invite_id: int, index: int) -> None:
        """The answer to "Who is filling this in?" for an invitation: start it for them."""
        choices = await self.fe.db(self.access.invite_respondents, invite_id)
        if not 0 <= index < len(choices):
            await self.fe._closed(update.callback_query)
            return
        await self.on_consent(update, context, invite_id, True, choices[index][0])

    # -- practitioner and supervisor views ------------------------------------------------
    async def on_cases(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        rows = await self._ask(context, update, self.access.cases)
        if rows is None:
            return
        if not rows:
            await self._say(context, update, msg("staff.no_cases"))
            return
        lines = [msg("staff.cases_title")]
        for r in rows:
            lines.append(msg("staff.case_line", ref=md_escape(r["ref"]), n=r["conversations"],
                             last=(r["last_activity"] or r["created_at"])[:16].replace("T", " "),
                             who=md_escape(r["practitioner_name"] or r["practitioner_key"])))
        await self._say(context, update, "\n".join(lines))

    async def on_case(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        reminders = getattr(self.fe, "reminders", None)
        cancel = len(context.args) == 3 and context.args[1] == "cancel" and context.args[2].isdigit()
        asked = self._ref_and_whose(context.args)
        if asked is None and not (cancel and reminders is not None):
            await self._say(context, update, msg("staff.case_usage"))
            return
        ref, whose = asked or (context.args[0], None)
        ok, rows = await self._try(context, update, lambda key: self.access.case(key, ref, practitioner=whose))
        if not ok:
            return
        if cancel:  # /case REF cancel ID: a reminder of this case, checked against what this person may see
            await self._say(context, update, await reminders.cancel_in_case(
                _key(update), context.args[0], int(context.args[2]), rows))
            return
        lines = [msg("staff.case_title", ref=context.args[0])]
        flags = [f for c in rows for f in c.get("review_items", ())]
        if flags:
            lines += self._worth_a_look(flags) + [""]
        for c in rows:
            scores = ", ".join(f"{k} {v}" for k, v in c["scores"].items()) or "—"
            if not c["shared"]:
                scores = msg("staff.not_shared_no" if c.get("consent") == "no" else "staff.not_shared")
            lines.append(msg("staff.conversation_line", id=c["id"], flow=c["flow_id"], status=status_words(c["status"]),
                             who=md_escape(person_label(c["person_key"], c["display_name"], c.get("pseudonym"),
                                                        self.access.telegram_names)), scores=scores))
        if not rows:
            lines.append(msg("staff.case_empty"))
        if reminders is not None and rows:
            lines += await reminders.case_lines(_key(update), context.args[0], rows)
        await self._say(context, update, "\n".join(lines))

    async def on_transcript(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        if len(context.args) != 1 or not context.args[0].isdigit():
            await self._say(context, update, msg("staff.transcript_usage"))
            return
        conv_id = int(context.args[0])
        data = await self._ask(context, update, self.access.transcript, conv_id)
        if data is None:
            return
        # Telegram HTML, every text people typed escaped, in whole messages under the limit
        from bot.review.transcript_telegram import LIMIT, messages

        # right to left, every line gains a mark when sent (render.directed): room for them
        limit = LIMIT // 2 if i18n.direction(i18n.current()) == "rtl" else LIMIT
        for text in messages(data, limit):
            await self.fe.send_text(context.bot, update.effective_chat.id, text, parse_mode="HTML")
        doc = io.BytesIO(render([data], "html").encode("utf-8"))
        await self.fe._retry(lambda: context.bot.send_document(
            update.effective_chat.id, document=doc, filename=f"transcript-{conv_id}.html"))

    async def on_summary(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/summary CASE_REF: the coordinator's summary, in Telegram's HTML (bot.review.summary)."""
        from bot.review.summary import build, render_telegram

        await self.fe.person(update)
        asked = self._ref_and_whose(context.args)
        if asked is None:
            await self._say(context, update, msg("summary.usage"))
            return
        ref, whose = asked
        ok, found = await self._try(context, update, lambda key: build(self.access, key, ref, whose))
        if ok:
            for text in render_telegram(found):
                await self.fe.send_text(context.bot, update.effective_chat.id, text, parse_mode="HTML")

    async def on_trend(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/trend CASE_REF: each scale question of the case as a chart (PNG, the website's chart)
        with a short caption, then its numbers as text. Who may see what: Access.case, as the
        website's chart (audited as chart.read); answers not shared are never drawn."""
        import asyncio

        from bot.review import charts
        from bot.review.transcript_telegram import chart_table

        await self.fe.person(update)
        asked = self._ref_and_whose(context.args)
        if asked is None:
            await self._say(context, update, msg("charts.trend_usage"))
            return
        ref, whose = asked
        ok, found = await self._try(context, update, lambda key: charts.case_charts(self.access, key, ref, whose))
        if not ok:
            return
        if not found:
            await self._say(context, update, msg("charts.none"))
            return
        chat_id = update.effective_chat.id
        for chart in found:
            png = await asyncio.get_running_loop().run_in_executor(None, charts.png, chart)
            caption = msg("charts.trend_caption", ref=ref, question=chart.question)
            if len(caption) > 1024:  # Telegram's caption limit: the question is in the table too
                caption = caption[:1023] + "…"
            await self.fe._retry(lambda: context.bot.send_photo(chat_id, photo=png, caption=caption,
                                                                filename=f"trend-{chart.step_id}.png"))
            for text in chart_table(chart):
                await self.fe.send_text(context.bot, chat_id, text, parse_mode="HTML")

    async def on_caseinfo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/caseinfo REF KEY TEXT: write the text flows show as {{ case.KEY }} in case REF (the
        text may run over several lines); /caseinfo REF lists what is written."""
        await self.fe.person(update)
        words = (update.effective_message.text or "").split(None, 3)[1:]
        if len(words) == 1:
            ok, texts = await self._try(context, update, self.access.case_info, words[0])
            if ok:
                lines = [msg("staff.caseinfo_list", ref=md_escape(words[0]))]
                lines += [msg("staff.caseinfo_line", key=md_ident(k), characters=len(v)) for k, v in texts.items()]
                await self._say(context, update, "\n".join(lines) if texts else msg("staff.caseinfo_none", ref=md_escape(words[0])))
            return
        if len(words) < 3:
            await self._say(context, update, msg("staff.caseinfo_usage"))
            return
        ref, key, text = words
        ok, done = await self._try(context, update, self.access.set_case_info, ref, key, text)
        if ok:
            await self._say(context, update, msg("staff.caseinfo_set", ref=md_escape(ref), key=md_ident(key),
                                                 characters=done["characters"]))

    async def on_pseudonym(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/pseudonym ID NAME: what the person who answered conversation ID is called in the case."""
        await self.fe.person(update)
        if len(context.args) < 2 or not context.args[0].lstrip("#").isdigit():
            await self._say(context, update, msg("staff.pseudonym_usage"))
            return
        conv_id, name = int(context.args[0].lstrip("#")), " ".join(context.args[1:])
        ok, ref = await self._try(context, update, self.access.set_pseudonym, conv_id, name)
        if not ok:
            return
        await self._say(context, update, msg("staff.pseudonym_set", id=conv_id, ref=md_escape(ref),
                                             name=md_escape(" ".join(name.split()))))

    async def on_comment(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        if len(context.args) < 2:
            await self._say(context, update, msg("staff.comment_usage"))
            return
        target, words = context.args[0], list(context.args[1:])
        conv, _, step = target.partition("#")
        # internal (staff only) unless the comment starts with "shared:"; "internal:" may be said
        kind = words[0].lower() if words and words[0].lower() in ("shared:", "internal:") else None
        if kind:
            words = words[1:]
        shared = kind == "shared:"
        text = " ".join(words)
        if not conv.isdigit() or not text:
            await self._say(context, update, msg("staff.comment_usage"))
            return
        ok, result = await self._try(context, update, self.access.comment, int(conv), text, step or None, shared)
        if not ok:
            return
        _, notify = result
        await self._say(context, update, msg("staff.comment_saved_shared" if shared else "staff.comment_saved", id=conv))
        if notify and notify.startswith("tg:"):
            who = md_escape(update.effective_user.first_name or "Your supervisor")
            await self.fe.push(context.bot, notify,  # after a worker-present session on their device
                               msg("staff.comment_notice_shared" if shared else "staff.comment_notice",
                                   who=who, id=conv, text="\n".join(md_quote(text))),
                               about_conversation=int(conv))  # it quotes them: erased with them

    def _reason(self, item: dict) -> str:
        labels = getattr(self.fe.service.safeguarding, "concerns", None) or {}
        what = ", ".join(labels.get(c, c) for c in item["concern"].split(",") if c)
        return f"{md_escape(what)}: “{md_escape(item['matched'])}”" if item.get("matched") else md_escape(what)

    def _worth_a_look(self, items: list[dict]) -> list[str]:
        lines = [msg("reading.worth_a_look_title")]
        for f in items:
            when = f["created_at"][:16].replace("T", " ")
            if f["conversation_id"] is None:
                lines.append(msg("reading.worth_a_look_line_no_conversation", id=f["id"], reason=self._reason(f),
                                 when=when, who=md_escape(person_label(f["person_key"], f["display_name"], None,
                                                                       self.access.telegram_names))))
                if f.get("words"):  # no transcript to open: what they wrote, here (sent as plain text)
                    lines.append(msg("reading.worth_a_look_words", words=f["words"]))
            else:
                step = f"#{md_ident(f['step_id'])}" if f.get("step_id") else ""
                lines.append(msg("reading.worth_a_look_line", id=f["id"], conversation=f["conversation_id"], step=step,
                                 reason=self._reason(f), when=when))
        return lines

    async def on_review(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Review-tier items first (practitioners, supervisors, leads), then, for supervisors,
        the transcripts waiting for their review."""
        await self.fe.person(update)
        key = _key(update)
        try:
            flags = await self.fe.db(self.access.worth_a_look, key)
        except Refused:
            flags = None
        supervisor = await self.fe.db(self.access.has, key, "supervisor")
        if flags is None and not supervisor:
            await self._refused(context, update)
            return
        head = self._worth_a_look(flags) + [""] if flags else []
        rows = await self._ask(context, update, self.access.review_queue) if supervisor else []
        if rows is None:
            return
        if not rows:
            await self._say(context, update, "\n".join(head + [msg("staff.review_empty")]))
            return
        lines = head + [msg("staff.review_title")]
        lines += [msg("staff.review_line", id=r["id"], flow=r["flow_id"], ref=r["case_ref"] or "rehearsal",
                      when=r["updated_at"][:16].replace("T", " ")) for r in rows]
        await self._say(context, update, "\n".join(lines))

    async def on_missed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/missed ID#step words: a disclosure the detector missed, recorded verbatim."""
        await self.fe.person(update)
        text = update.effective_message.text or ""
        parts = text.split(None, 2)  # "/missed", "ID#step", the words exactly as typed
        target = parts[1] if len(parts) > 1 else ""
        conv, _, step = target.partition("#")
        if len(parts) < 3 or not conv.isdigit() or not parts[2].strip():
            await self._say(context, update, msg("reading.missed_usage"))
            return
        try:
            missed_id = await self.fe.db(self.reading.record_missed, _key(update), int(conv), step or None, parts[2])
        except Refused:
            await self._refused(context, update)
            return
        except UnknownStep as exc:  # "/missed 12#dad hits me": no space after the number and the step
            await self._say(context, update, msg("reading.missed_unknown_step", conversation=conv,
                                                 steps=", ".join(exc.steps) or "-"))
            return
        await self._say(context, update, msg("reading.missed_saved", id=missed_id, conversation=conv))

    # -- the review website ------------------------------------------------------------------
    async def on_web(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/web: a one-time sign-in link to the review website, for staff (bot.web.signin)."""
        from telegram import LinkPreviewOptions

        from bot.web.server import link_url, signin_for

        await self.fe.person(update)
        base = self.access.config.web_url
        if not base:
            await self._say(context, update, msg("web.telegram.not_set_up"))
            return
        signin = signin_for(self.access)
        ok, code = await self._try(context, update, signin.link)
        if not ok:
            return
        text = msg("web.telegram.link", link=link_url(base, code), minutes=f"{signin.link_life.total_seconds() / 60:g}")
        # no link preview: a preview would fetch the page (it uses nothing, but needs no visit at all)
        await self.fe._retry(lambda: context.bot.send_message(
            update.effective_chat.id, text, link_preview_options=LinkPreviewOptions(is_disabled=True)))

    # -- a family's own data --------------------------------------------------------------
    async def on_mydata(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        data = await self.fe.db(self.access.mydata, _key(update))
        convs = data["conversations"]
        lines = [msg("staff.mydata_title")]
        lines += [msg("staff.mydata_line", id=c["id"], flow=c["flow_id"], status=status_words(c["status"]),
                      when=shown(c["started_at"], weekday=False), who=c["who_can_see"]) for c in convs] or [msg("staff.mydata_none")]
        if data.get("safeguarding_records"):  # counted, never shown here (bot/access.py mydata)
            lines.append(msg("staff.mydata_kept"))
        if convs:
            lines.append(msg("staff.mydata_file"))
        await self._say(context, update, "\n".join(lines))
        if context.args and context.args[0].lower() == "file" and convs:
            from bot.review.export import transcript_data

            store, key = self.fe.service.store, _key(update)
            # a family member's file has no internal (staff-only) comments
            items = [await self.fe.db(lambda cid=c["id"]: transcript_data(
                store, cid, internal_comments=self.access.sees_internal(key, cid))) for c in convs]
            doc = io.BytesIO(render(items, "json").encode("utf-8"))
            await self.fe._retry(lambda: context.bot.send_document(update.effective_chat.id, document=doc,
                                                                   filename="my-data.json"))

    # -- a person's rights (issue 17) ------------------------------------------------------
    async def on_privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.fe.person(update)
        await self._say(context, update, await self.fe.db(self.access.privacy, _key(update)))

    async def on_delete(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/delete: an erasure request, recorded and audited; the practitioner(s) and the
        data-protection contact are told (never the answers); an administrator decides."""
        from bot import erasure

        await self.fe.person(update)
        store = self.fe.service.store
        req = await self.fe.db(erasure.request, store, _key(update), self.access.config.dp_contact)
        variant = "child" if req.child else "default"
        if not req.new:
            await self._say(context, update, msg(f"erasure.already.{variant}", id=req.id,
                                                 date=shown(req.created_at, weekday=False)))
            return
        await self._say(context, update, msg(f"erasure.requested.{variant}", id=req.id))
        reached = 0
        for key in req.recipients:
            if not key.startswith("tg:"):
                continue
            try:
                await self.fe.push(context.bot, key, req.notices[key],  # after a worker-present session on their device
                                   about_person=req.person_id)  # it names them: erased with them
                reached += 1
            except TelegramError as exc:  # one unreachable contact must not stop the others
                log.error("erasure notice not delivered", extra={"request": req.id, "error": type(exc).__name__})
        await self.fe.db(erasure.notified, store, req.id, reached)

