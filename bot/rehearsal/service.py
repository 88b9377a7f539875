"""The rehearsal service: the practitioner asks, the coach reads the question, the persona
answers; /hint, /end (confidence, then the summary) and /cancel.

Every frontend calls this. A rehearsal is stored as a conversation outside any case, with
status 'rehearsing' while it runs (so it is never a flow's active conversation), each
question as an answer (q1, q2, ...) that a supervisor can comment on, and the whole
exchange in the transcript. It never runs safeguarding detection and never raises an alert:
the practitioner's words are role-play. One input is one transaction; a repeated input key
returns the first reply and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from bot.coach import Coach
from bot.messages import msg
from bot.rehearsal.persona import respond
from bot.rehearsal.scenario import Scenario, load_scenarios
from bot.rehearsal.summary import summary_text
from bot.store import Conversation, Store

MAX_QUESTION = 1000
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*10|out of 10)?\s*[.!]?\s*$")


@dataclass
class RehearsalReply:
    conversation_id: int | None
    messages: list[str] = field(default_factory=list)
    status: str = "rehearsing"
    duplicate: bool = False

    def to_json(self) -> dict:
        """Stored with the input key in the shape of a conversation reply, so a reply committed
        but not sent before a crash is sent on restart like any other (bot.conversation.Reply)."""
        return {"conversation_id": self.conversation_id, "status": self.status,
                "prompts": [{"text": m, "kind": "message"} for m in self.messages]}


def snapshot_text(scenario: Scenario) -> str:
    """A minimal flow standing for the scenario in the store, so that access rules, exports
    and reviews treat a rehearsal like any practitioner conversation outside a case."""
    return yaml.safe_dump({
        "id": scenario.flow_id, "version": scenario.version, "title": scenario.title,
        "audience": "practitioner",
        "steps": [{"id": "question", "ask": scenario.situation, "type": "text"}],
    }, sort_keys=False, allow_unicode=True, width=1000)


def _command(text: str) -> str | None:
    word = text.strip().split("@", 1)[0].lower()
    return word[1:] if word in ("/hint", "/end", "/cancel", "/stop", "/help") else None


class RehearsalService:
    def __init__(self, store: Store, scenarios: dict[str, Scenario] | None = None, coach: Coach | None = None):
        self.store = store
        self.scenarios = scenarios if scenarios is not None else load_scenarios()
        self.coach = coach or Coach()

    def listing(self) -> list[Scenario]:
        return sorted(self.scenarios.values(), key=lambda s: s.id)

    def find(self, name: str) -> Scenario | None:
        name = (name or "").strip().lower()
        if name.isdigit() and 1 <= int(name) <= len(self.scenarios):
            return self.listing()[int(name) - 1]
        return self.scenarios.get(name) or self.scenarios.get(name.removeprefix("rehearsal-"))

    def active(self, person_id: int) -> Conversation | None:
        return self.store.active_rehearsal(person_id)

    # -- start -------------------------------------------------------------------------
    def start(self, person_id: int, scenario_id: str, *, input_key: str | None = None,
              frontend: str | None = None, chat_id: str | None = None) -> RehearsalReply:
        scenario = self.find(scenario_id)
        if scenario is None:
            raise KeyError(scenario_id)
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            for old in iter(lambda: self.store.active_rehearsal(person_id), None):  # one at a time
                self.store.update_conversation(old.id, state=old.state, session=old.session, status="cancelled")
            source = snapshot_text(scenario)
            from bot.engine.loader import load_flow_text

            flow, _ = load_flow_text(source, f"<{scenario.flow_id}>")
            self.store.save_snapshot(flow.sha, flow.id, flow.version, flow.source)
            state = {"scenario": scenario.id, "scenario_sha": scenario.sha, "turns": [], "covered": []}
            conv_id = self.store.create_conversation(
                person_id=person_id, flow_id=scenario.flow_id, flow_version=scenario.version, flow_sha=flow.sha,
                state="confidence_before", session=state, status="rehearsing", frontend=frontend, chat_id=chat_id,
            )
            self.store.add_line(conv_id, "in", f"(started {scenario.title})", kind="command", input_key=input_key)
            messages = [msg("rehearsal.started", title=scenario.title, situation=scenario.situation,
                            persona=scenario.persona), msg("rehearsal.confidence_before")]
            reply = self._say(conv_id, messages, "rehearsing")
            if input_key:
                self.store.mark_input(input_key, conv_id, reply.to_json())
        return reply

    # -- every later input ---------------------------------------------------------------
    def handle(self, person_id: int, text: str, *, input_key: str | None = None) -> RehearsalReply:
        text = (text or "").replace("\x00", "")[:MAX_QUESTION]
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            conv = self.store.active_rehearsal(person_id)
            if conv is None:
                reply = RehearsalReply(None, [msg("rehearsal.nothing_active")], "none")
            else:
                reply = self._step(conv, text, input_key)
            if input_key:
                self.store.mark_input(input_key, reply.conversation_id, reply.to_json())
        return reply

    def _step(self, conv: Conversation, text: str, input_key: str | None) -> RehearsalReply:
        state = conv.session
        scenario = self.scenarios.get(state["scenario"])
        command = _command(text)
        self.store.add_line(conv.id, "in", text, kind="command" if command else "answer", input_key=input_key,
                            step_id=None if command else self._step_id(conv, state))
        if command in ("cancel", "stop") or scenario is None:
            return self._finish(conv, state, "cancelled", [msg("rehearsal.cancelled")])
        if conv.state == "confidence_before":
            if command == "end":
                return self._finish(conv, state, "cancelled", [msg("rehearsal.cancelled")])
            value = self._confidence(text)
            if value is None:
                return self._say(conv.id, [msg("rehearsal.confidence_invalid")])
            state["confidence_before"] = value
            self.store.save_answer(conv.id, "confidence_before", value, text, str(value))
            return self._move(conv, state, "asking", [msg("rehearsal.persona_line", persona=scenario.persona,
                                                           text=scenario.opening)])
        if conv.state == "confidence_after":
            value = self._confidence(text)
            if value is None:
                return self._say(conv.id, [msg("rehearsal.confidence_invalid")])
            state["confidence_after"] = value
            self.store.save_answer(conv.id, "confidence_after", value, text, str(value))
            summary = summary_text(scenario, state, self.coach)
            return self._finish(conv, state, "completed", [summary, msg("rehearsal.saved", id=conv.id)])
        # asking
        if command == "hint":
            return self._say(conv.id, [self._hint(state)], kind="info")
        if command == "help":
            return self._say(conv.id, [msg("rehearsal.empty", persona=scenario.persona)], kind="info")
        if command == "end":
            return self._move(conv, state, "confidence_after", [msg("rehearsal.confidence_after")])
        if not text.strip():
            return self._say(conv.id, [msg("rehearsal.empty", persona=scenario.persona)])
        coaching = self.coach.coach(text.strip())
        said, stage = respond(scenario, coaching, state)
        n = len(state["turns"]) + 1
        state["turns"].append({"n": n, "text": text.strip(), "labels": list(coaching.labels),
                               "suggestion": coaching.suggestion, "stage": stage})
        self.store.save_answer(conv.id, f"q{n}", {"labels": list(coaching.labels), "suggestion": coaching.suggestion},
                               text.strip(), text.strip())
        line = msg("rehearsal.persona_line", persona=scenario.persona, text=said)
        return self._move(conv, state, "asking", [line], step_id=f"q{n}")

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _step_id(conv: Conversation, state: dict) -> str | None:
        if conv.state == "asking":
            return f"q{len(state.get('turns', [])) + 1}"
        return conv.state

    @staticmethod
    def _confidence(text: str) -> int | None:
        m = _NUMBER.match(text or "")
        if not m or not 0 <= int(m.group(1)) <= 10:
            return None
        return int(m.group(1))

    def _hint(self, state: dict) -> str:
        turns = state.get("turns", [])
        if not turns:
            return msg("rehearsal.hint_none")
        last = turns[-1]
        names = msg("rehearsal.label_names")
        stages = msg("rehearsal.stage_names")
        coaching = self.coach.coach(last["text"])
        if not coaching.mistakes:
            stage = msg("rehearsal.hint_stage", stage=stages[coaching.stages[0]]) if coaching.stages else ""
            return msg("rehearsal.hint_good", stage=stage)
        text = msg("rehearsal.hint", text=last["text"], labels=", ".join(names.get(label, stages.get(label, label))
                                                                         for label in coaching.labels))
        if coaching.suggestion:
            text += "\n" + msg("rehearsal.hint_try", suggestion=coaching.suggestion)
        return text

    def _say(self, conv_id: int, messages: list[str], status: str = "rehearsing", kind: str = "message",
             step_id: str | None = None) -> RehearsalReply:
        for m in messages:
            self.store.add_line(conv_id, "out", m, kind=kind, step_id=step_id)
        return RehearsalReply(conv_id, messages, status)

    def _move(self, conv: Conversation, state: dict, to: str, messages: list[str], step_id: str | None = None):
        self.store.update_conversation(conv.id, state=to, session=state, status="rehearsing")
        return self._say(conv.id, messages, step_id=step_id)

    def _finish(self, conv: Conversation, state: dict, status: str, messages: list[str]) -> RehearsalReply:
        self.store.update_conversation(conv.id, state="done", session=state, status=status)
        return self._say(conv.id, messages, status)

    @staticmethod
    def _duplicate(seen: dict) -> RehearsalReply:
        data = seen.get("reply") or {}
        return RehearsalReply(seen.get("conversation_id"), [p["text"] for p in data.get("prompts", [])],
                              data.get("status", "none"), duplicate=True)
