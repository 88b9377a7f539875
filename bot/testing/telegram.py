"""Run the real Telegram frontend against the fake Bot API server, and drive it as users would.

Used by the end-to-end tests, the parity run of flows/tests, benchmarks and chaos runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from telegram import Update

from bot.conversation import ConversationService
from bot.frontends.telegram.app import TelegramFrontend, build_application
from bot.frontends.telegram.polling import polling
from bot.frontends.telegram.render import CHECK
from bot.testing.fake_bot_api import FakeBotAPI

TOKEN = "123456789:TEST-token-for-the-fake-server-only"

# How long a simulated user waits for the bot before the test fails. A ceiling, not a pause:
# every wait returns as soon as its condition holds. It is generous because a 2-core machine
# running other suites beside this one (or a benchmark, as issue 18 asks) can take several
# seconds over fifty parallel conversations; a failing bot still fails, only later.
WAIT = float(os.environ.get("RESTORATIVE_TEST_WAIT", "30"))


@dataclass
class Harness:
    fake: FakeBotAPI
    service: ConversationService
    app: object
    frontend: TelegramFrontend

    async def delivered(self, update_id: int, timeout: float = WAIT) -> None:
        """Wait until the reply to this update has been sent (the store says so). Woken when
        the bot has finished handling the update (or handles it again); the store is asked
        only then."""
        key = f"tg:{update_id}"
        end = time.monotonic() + timeout
        fe = self.frontend
        while True:
            looked = fe.finished_total
            seen = await fe.db(self.service.store.seen_input, key)
            if seen is not None and (seen["delivered"] or not (seen.get("reply") or {}).get("prompts")):
                return
            if not await fe.wait_finished(lambda: update_id in fe.finished and fe.finished_total != looked,
                                          end - time.monotonic()):
                raise TimeoutError(f"update {update_id} was not answered within {timeout}s")

    async def say(self, user_id: int, text: str, **profile) -> list:
        """The user sends ``text`` (a command too: "/start CODE"); once the bot has replied,
        the bot's new messages in the chat. ``profile``: first_name, language_code…"""
        before = len(self.fake.messages(user_id))
        await self.delivered(self.fake.inject_message(user_id, text, **profile))
        return self.fake.messages(user_id)[before:]

    async def press(self, user_id: int, message, label: str) -> list:
        """The user presses the button labelled ``label`` (or ``label`` ticked) under
        ``message``; once the bot has replied, the bot's new messages in the chat."""
        buttons = {t.removeprefix(CHECK): cb for row in self.fake.buttons(message) for (t, cb) in row}
        if label not in buttons:
            raise KeyError(f"no button {label!r} under the message; its buttons: {list(buttons)}")
        before = len(self.fake.messages(user_id))
        await self.delivered(self.fake.press_button(user_id, message.message_id, buttons[label]))
        return self.fake.messages(user_id)[before:]

    async def keyboard_after(self, user_id: int, count_before: int, timeout: float = WAIT):
        """Wait for the first new bot message with buttons in the chat (e.g. after /start)."""
        def found():
            return next((m for m in self.fake.messages(user_id)[count_before:] if self.fake.buttons(m)), None)
        return await self.fake.wait_for(found, timeout)

    async def who(self, user_id: int, count_before: int, respondent: str = "adult", timeout: float = WAIT) -> int:
        """Answer "Who is filling this in?" (asked after choosing a flow from the menu, or after
        accepting an invitation that did not say) by pressing the button for ``respondent``.
        Returns the update id of the press, once its reply has been sent."""
        from bot.messages import msg

        def asked():
            for m in self.fake.messages(user_id)[count_before:]:
                if any((cb or "").startswith(("w:", "s:")) and (cb or "").count(":") == 2
                       for row in self.fake.buttons(m) for (_, cb) in row):
                    return m
            return None
        question = await self.fake.wait_for(asked, timeout)
        buttons = {label: cb for row in self.fake.buttons(question) for (label, cb) in row}
        uid = self.fake.press_button(user_id, question.message_id, buttons[msg(f"respondent.options.{respondent}")])
        await self.delivered(uid)
        return uid

    async def past_who(self, user_id: int, messages: list, respondent: str = "adult") -> list:
        """If ``messages`` (the bot's reply to a flow chosen or an invitation accepted) ask
        "Who is filling this in?", answer it for ``respondent`` and return the reply to that
        instead; otherwise return ``messages`` as they are."""
        asked = next((m for m in messages if any((cb or "").startswith(("w:", "s:")) and (cb or "").count(":") == 2
                                                 for row in self.fake.buttons(m) for (_, cb) in row)), None)
        if asked is None:
            return messages
        before = len(self.fake.messages(user_id))
        buttons = {label: cb for row in self.fake.buttons(asked) for (label, cb) in row}
        from bot.messages import msg

        await self.delivered(self.fake.press_button(user_id, asked.message_id,
                                                    buttons[msg(f"respondent.options.{respondent}")]))
        return self.fake.messages(user_id)[before:]

    async def settle(self, user_id: int, count_before: int, timeout: float = WAIT) -> list:
        """Wait until the bot has finished the last update this user sent, then return the
        bot's messages in the chat after the first ``count_before``."""
        sent = self.fake.updates_from(user_id)
        if sent and not await self.frontend.wait_finished(lambda: sent[-1] in self.frontend.finished, timeout):
            raise TimeoutError(f"update {sent[-1]} from {user_id} was not handled within {timeout}s")
        return self.fake.messages(user_id)[count_before:]


@contextlib.asynccontextmanager
async def running_bot(service: ConversationService, *, fake: FakeBotAPI | None = None, max_rate: float = 1000.0,
                      escalation=None, alert_poll_seconds: float = 0.1, access=None, limits=None, reading=None):
    """The real Application, long-polling the fake server, inside the caller's event loop.

    Simulated users type at machine speed, so the per-person rate limits are off unless
    ``limits`` (a :class:`bot.frontends.telegram.limits.RateLimits`) is given."""
    from bot.frontends.telegram.limits import RateLimits
    own = fake is None
    if own:
        fake = await FakeBotAPI().start()
    app, frontend = build_application(service, TOKEN, api_url=fake.base_url, max_rate=max_rate, read_timeout=5,
                                      escalation=escalation, alert_poll_seconds=alert_poll_seconds, access=access,
                                      limits=limits or RateLimits.unlimited(), reading=reading)
    try:
        async with app:
            await frontend.post_init(app)  # `serve` does this through its polling runner
            await app.start()
            try:
                async with polling(app, frontend, timeout=1, allowed_updates=Update.ALL_TYPES, gate=frontend.gate,
                                   loose=frontend.loose_order):
                    yield Harness(fake, service, app, frontend)
            finally:
                await app.stop()
                await frontend.post_stop(app)
    finally:
        frontend.close()
        if own:
            await fake.stop()


class TelegramDriver:
    """Plays scripted conversations (flows/tests) through Telegram, as a user with buttons.

    It returns the prompts as the core recorded them in the transcript (the same in
    every frontend), after checking that each one reached the chat as a message.
    """

    def __init__(self, harness: Harness, user_id: int):
        self.h = harness
        self.user = user_id
        self.conv_id: int | None = None
        self._seen_lines = 0

    async def _person(self) -> int:
        return await self.h.frontend.db(self.h.service.store.person, f"tg:{self.user}")

    async def _new_prompts(self, messages) -> list[str]:
        lines = await self.h.frontend.db(self.h.service.store.transcript, self.conv_id)
        # a flow's notes for the worker are in the transcript but never sent to the person
        new = [l for l in lines[self._seen_lines:] if l["direction"] == "out" and l["kind"] != "worker_note"]
        self._seen_lines = len(lines)
        shown = "\n".join(m.text or "" for m in messages).replace("\u200f", "")  # right-to-left marks (render.directed)
        for line in new:
            core = line["text"].splitlines()
            # the question wording itself (not the numbered options, which are buttons here)
            key = next((c for c in core if c and not c.startswith("Question ")), core[0] if core else "")
            assert key.split("\n")[0][:40] in shown, f"not sent to Telegram: {key!r}\nsent: {shown!r}"
        return [l["text"] for l in new]

    async def seed_previous(self, flow_id: str, answers: dict) -> None:
        from bot.testing.drivers import seed_previous

        service = self.h.service
        await self.h.frontend.db(seed_previous, service.store, service.library, await self._person(), flow_id, answers)

    async def choose_language(self, tag: str) -> None:
        """/language, then the button with the language's own name (Cymraeg, Polski)."""
        from bot import i18n

        fake = self.h.fake
        before = len(fake.messages(self.user))
        fake.inject_command(self.user, "/language")
        menu = await self.h.keyboard_after(self.user, before)
        data = next(cb for row in fake.buttons(menu) for (text, cb) in row if text == i18n.own_name(tag))
        uid = fake.press_button(self.user, menu.message_id, data)
        await self.h.delivered(uid)

    async def start(self, flow_id: str, respondent: str | None = None, case: dict | None = None,
                    language: str | None = None) -> list[str]:
        fake = self.h.fake
        if language is not None:
            await self.choose_language(language)
        if case is not None:
            return await self._start_in_case(flow_id, respondent, case)
        before = len(fake.messages(self.user))
        fake.inject_command(self.user, "/start")
        menu = await self.h.keyboard_after(self.user, before)
        data = next(cb for row in fake.buttons(menu) for (_, cb) in row if cb == f"s:{flow_id}")
        before = len(fake.messages(self.user))
        uid = fake.press_button(self.user, menu.message_id, data)
        await self.h.delivered(uid)
        choices = await self.h.frontend.db(self.h.service.respondent_choices, flow_id)
        if choices:  # "Who is filling this in?": press the button for the script's respondent
            assert respondent is not None, f"{flow_id} asks who is filling it in: give the script a respondent"
            who = await self.h.keyboard_after(self.user, before)
            wanted = f"s:{flow_id}:{[r for r, _ in choices].index(respondent)}"
            assert any(cb == wanted for row in fake.buttons(who) for (_, cb) in row), fake.buttons(who)
            before = len(fake.messages(self.user))
            uid = fake.press_button(self.user, who.message_id, wanted)
            await self.h.delivered(uid)
        person = await self._person()
        conv = await self.h.frontend.db(self.h.service.store.active_conversation, person)
        if conv is None:  # a flow that ended before asking anything
            convs = await self.h.frontend.db(lambda: self.h.service.store.conversations(person_id=person))
            self.conv_id = convs[-1]["id"]
        else:
            self.conv_id = conv.id
        return await self._new_prompts(fake.messages(self.user)[before:])

    async def _start_in_case(self, flow_id: str, respondent: str | None, case: dict) -> list[str]:
        """A script with ``case:`` texts: the conversation starts in a case that has them, as an
        invitation would start it, and its first messages go out through the frontend."""
        from bot.testing.drivers import script_case

        service, fe = self.h.service, self.h.frontend
        person = await self._person()
        case_id = await fe.db(script_case, service.store, case)
        before = len(self.h.fake.messages(self.user))
        reply = await fe.db(service.start, person, flow_id, frontend="telegram", chat_id=str(self.user),
                            case_id=case_id, respondent=respondent)
        await fe.deliver(self.h.app.bot, self.user, person, reply, None)
        self.conv_id = reply.conversation_id
        return await self._new_prompts(self.h.fake.messages(self.user)[before:])

    async def send(self, text: str) -> list[str]:
        fake = self.h.fake
        if not text.strip():
            # Telegram cannot carry an empty or blank message; the service's answer to one
            # is what a frontend would show, so ask it directly.
            from bot.engine.runner import Input

            reply = await self.h.frontend.db(self.h.service.handle, await self._person(), Input.from_text(text),
                                             conversation_id=self.conv_id)
            lines = await self.h.frontend.db(self.h.service.store.transcript, self.conv_id)
            self._seen_lines = len(lines)
            return [p.plain() for p in reply.prompts]
        before = len(fake.messages(self.user))
        if text.startswith("/"):
            uid = fake.inject_command(self.user, text)
        else:
            uid = fake.inject_message(self.user, text)
        await self.h.delivered(uid)
        return await self._new_prompts(fake.messages(self.user)[before:])

    async def press(self, value: str) -> list[str]:
        fake = self.h.fake
        question = next((m for m in reversed(fake.messages(self.user)) if fake.buttons(m)), None)
        if question is None:
            return await self.send(value)
        buttons = {text.removeprefix(CHECK): cb for row in fake.buttons(question) for (text, cb) in row}
        conv = await self.h.frontend.db(self.h.service.store.conversation, self.conv_id)
        step = self.h.service.runner_for(conv).flow.by_id.get(conv.state)
        labels = {o.id: o.label for o in step.options} if step is not None else {}
        wanted = [v.strip() for v in value.split(",")] if step is not None and step.type == "multi" else [value]
        wanted = [labels.get(v, v) for v in wanted]
        wanted = [{"yes": "Yes", "no": "No"}.get(v.lower(), v) for v in wanted]
        if not all(w in buttons for w in wanted):
            return await self.send(value)  # not a button here: type it instead
        before = len(fake.messages(self.user))
        if step is not None and step.type == "multi":
            qid = question.message_id
            for w in dict.fromkeys(wanted):
                fake.press_button(self.user, qid, buttons[w])
                await fake.wait_for(lambda: any(t == CHECK + w for row in fake.buttons(fake.message(self.user, qid))
                                                for (t, _) in row), 5)
            question = fake.message(self.user, qid)
            done = next(cb for row in fake.buttons(question) for (_, cb) in row if cb.startswith("d:"))
            uid = fake.press_button(self.user, question.message_id, done)
        else:
            uid = fake.press_button(self.user, question.message_id, buttons[wanted[0]])
        await self.h.delivered(uid)
        return await self._new_prompts(fake.messages(self.user)[before:])

    async def answers(self) -> dict:
        rows = await self.h.frontend.db(self.h.service.store.answers, self.conv_id)
        return {a["step_id"]: a["value"] for a in rows}

    async def status(self) -> str:
        conv = await self.h.frontend.db(self.h.service.store.conversation, self.conv_id)
        return conv.status

    async def alerts(self) -> list[str]:
        """The alert texts a lead would be sent for this conversation (the parity harness runs
        without leads; tests/test_telegram_respondent.py checks what a lead receives)."""
        from bot.escalation import Escalation

        store = self.h.service.store

        def texts():
            escalation = Escalation(store, self.h.service.safeguarding, leads=[1])
            return [escalation.text(store.alert_detail(a["id"]), False) for a in store.alerts()
                    if a["conversation_id"] == self.conv_id and not a["practice"]]
        return await self.h.frontend.db(texts)
