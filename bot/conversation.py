"""The conversation service: load the conversation, safeguard, run one engine step, commit.

Every frontend calls this and only this. One input = one transaction holding the answer,
the transcript lines (what was received and every prompt shown), the new state, any
safeguarding alert and the processed-input key. The prompts are returned only after the
commit, so a reply the person sees always describes saved state. A repeated input key
changes nothing and returns the reply given the first time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from bot.engine.answers import display
from bot.engine.flow import Flow, Option
from bot.engine.library import FlowLibrary
from bot.engine.runner import FlowRunner, Input, Prompt, Result, Session
from bot.store import Conversation, Store


class Detector(Protocol):
    def detect(self, text: str) -> list: ...
    def response(self, audience: str) -> str: ...


@dataclass
class Reply:
    conversation_id: int | None
    prompts: list[Prompt]
    status: str = "in_progress"
    accepted: bool = True
    duplicate: bool = False  # this input key was handled before; nothing changed
    closed: bool = False  # the input was for a conversation or question that is no longer open
    alerts: list[int] = field(default_factory=list)  # safeguarding alerts raised by this input
    step_id: str | None = None  # the question now waiting for an answer

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Reply":
        prompts = []
        for p in data.get("prompts", []):
            p = dict(p)
            p["options"] = tuple(Option(**o) for o in p.get("options", ()))
            if p.get("progress"):
                p["progress"] = tuple(p["progress"])
            prompts.append(Prompt(**p))
        data = dict(data, prompts=prompts)
        return cls(**data)


def _waiting_step(result_session: Session, flow: Flow) -> str | None:
    state = result_session.state
    return state if state in flow.by_id else None


class ConversationService:
    def __init__(self, store: Store, library: FlowLibrary, *, safeguarding: Detector | None = None,
                 alert_repeat_minutes: float = 15.0):
        self.store = store
        self.library = library
        self.safeguarding = safeguarding
        self.alert_repeat = timedelta(minutes=alert_repeat_minutes)

    # -- people and flows ------------------------------------------------------------
    def person(self, key: str, display_name: str | None = None) -> int:
        with self.store.transaction():
            return self.store.person(key, display_name)

    def flows(self) -> list[Flow]:
        return list(self.library)

    def active(self, person_id: int) -> Conversation | None:
        return self.store.active_conversation(person_id)

    def runner_for(self, conv: Conversation) -> FlowRunner:
        return self.library.runner_for(conv.flow_sha, self.store.snapshot_source(conv.flow_sha), f"<{conv.flow_id} v{conv.flow_version}>")

    # -- the two entry points ----------------------------------------------------------
    def start(self, person_id: int, flow_id: str, *, input_key: str | None = None, frontend: str | None = None,
              chat_id: str | None = None, case_id: int | None = None) -> Reply:
        flow = self.library.get(flow_id)
        if flow is None:
            raise KeyError(flow_id)
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            runner = self.library.runner(flow)
            result = runner.start()
            self.store.save_snapshot(flow.sha, flow.id, flow.version, flow.source)
            conv_id = self.store.create_conversation(
                person_id=person_id, flow_id=flow.id, flow_version=flow.version, flow_sha=flow.sha,
                state=result.session.state, session=result.session.to_json(), status=result.status,
                frontend=frontend, chat_id=chat_id, case_id=case_id,
            )
            self.store.add_line(conv_id, "in", f"(started {flow.title})", kind="command", input_key=input_key)
            self._write_prompts(conv_id, result.prompts)
            reply = Reply(conv_id, result.prompts, result.status, step_id=_waiting_step(result.session, flow))
            if input_key:
                self.store.mark_input(input_key, conv_id, reply.to_json())
        return reply

    def handle(self, person_id: int, inp: Input, *, input_key: str | None = None,
               conversation_id: int | None = None, expect_step: str | None = None) -> Reply:
        """Apply one input to the person's conversation (the active one unless named)."""
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            if conversation_id is not None:
                conv = self.store.conversation(conversation_id)
                if conv is None or conv.person_id != person_id:
                    conv = None
            else:
                conv = self.store.active_conversation(person_id)
            if conv is None or conv.status != "in_progress" or (expect_step is not None and conv.state != expect_step):
                reply = Reply(conv.id if conv else None, [], conv.status if conv else "none", accepted=False, closed=True)
                if input_key:
                    self.store.mark_input(input_key, conv.id if conv else None, reply.to_json())
                return reply
            runner = self.runner_for(conv)
            session = Session.from_json(conv.session)
            said = inp.text if inp.text is not None else self._button_text(runner, session, inp)
            concerns = []
            if self.safeguarding is not None and inp.text and inp.kind == "answer":
                concerns = self.safeguarding.detect(inp.text)
            line_id = self.store.add_line(
                conv.id, "in", said if said is not None else "", kind="answer" if inp.kind == "answer" else "command",
                step_id=session.state, input_key=input_key, flagged=bool(concerns),
            )
            if concerns:
                reply = self._safeguard(conv, runner, session, concerns, inp.text, line_id)
            else:
                result = runner.step(session, inp)
                self._commit_result(conv, result)
                reply = Reply(conv.id, result.prompts, result.status, accepted=result.accepted,
                              closed=result.closed, step_id=_waiting_step(result.session, runner.flow))
            if input_key:
                self.store.mark_input(input_key, conv.id, reply.to_json())
        return reply

    def current(self, person_id: int) -> Reply | None:
        """The question an unfinished conversation is waiting on (for resuming)."""
        conv = self.store.active_conversation(person_id)
        if conv is None:
            return None
        runner = self.runner_for(conv)
        session = Session.from_json(conv.session)
        return Reply(conv.id, runner.current(session), conv.status, step_id=_waiting_step(session, runner.flow))

    def cancel_active(self, person_id: int, input_key: str | None = None) -> Reply | None:
        if self.store.active_conversation(person_id) is None:
            return None
        return self.handle(person_id, Input("cancel"), input_key=input_key)

    # -- internals ---------------------------------------------------------------------
    def _duplicate(self, seen: dict) -> Reply:
        reply = Reply.from_json(seen["reply"]) if seen.get("reply") else Reply(seen.get("conversation_id"), [])
        reply.duplicate = True
        return reply

    def _button_text(self, runner: FlowRunner, session: Session, inp: Input) -> str | None:
        if inp.kind != "answer":
            return f"/{inp.kind}"
        step = runner.flow.by_id.get(session.state)
        if step is None or inp.button is None:
            return None if inp.button is None else str(inp.button)
        try:
            if step.type == "yesno":
                return display(step, str(inp.button).lower() in ("yes", "true", "1"))
            return display(step, inp.button)
        except (KeyError, AttributeError, TypeError):
            return str(inp.button)

    def _commit_result(self, conv: Conversation, result: Result) -> None:
        for rec in result.records:
            self.store.save_answer(conv.id, rec.step_id, rec.value, rec.raw, rec.shown)
        if result.retracted:
            self.store.retract_answers(conv.id, result.retracted)
        if result.records or result.session.state != conv.state or result.status != conv.status:
            self.store.update_conversation(conv.id, state=result.session.state, session=result.session.to_json(),
                                           status=result.status)
        self._write_prompts(conv.id, result.prompts)

    def _write_prompts(self, conv_id: int, prompts: list[Prompt]) -> None:
        for p in prompts:
            self.store.add_line(conv_id, "out", p.plain(), kind=p.kind, step_id=p.step_id)

    def _safeguard(self, conv: Conversation, runner: FlowRunner, session: Session, concerns: list, words: str,
                   line_id: int) -> Reply:
        """A possible disclosure: stop the flow, show help, record an alert in this transaction."""
        audience = runner.flow.audience
        first_due = datetime.now(timezone.utc).replace(microsecond=0)
        concern_ids = ",".join(c.concern for c in concerns)
        alert_id = self.store.add_alert(
            conversation_id=conv.id, person_id=conv.person_id, transcript_id=line_id, concern=concern_ids,
            words=words, next_notify_at=first_due.isoformat().replace("+00:00", "Z"),
        )
        prompts = [Prompt(self.safeguarding.response(audience), kind="safeguarding")]
        offer = getattr(self.safeguarding, "offer", None)
        if offer:
            prompts.append(Prompt(offer() if callable(offer) else str(offer), kind="info"))
        prompts.extend(runner.current(session))
        self._write_prompts(conv.id, prompts)
        self.store.update_conversation(conv.id, state=session.state, session=session.to_json(), status=conv.status)
        return Reply(conv.id, prompts, conv.status, accepted=False, alerts=[alert_id],
                     step_id=_waiting_step(session, runner.flow))


def next_notify_after(minutes: float) -> str:
    t = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = ["ConversationService", "Reply", "next_notify_after"]
