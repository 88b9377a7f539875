"""Drivers that play scripted conversations (bot/engine/scripts.py) through the service."""

from __future__ import annotations

import itertools

from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store


_cases = itertools.count(1)


def script_case(store: Store, texts: dict) -> int:
    """A case held by a script's worker, with the ``case:`` texts of a scripted conversation."""
    with store.transaction():
        n = next(_cases)
        worker = store.person(f"script:worker:{n}", "Script worker")
        case_id = store.create_case(worker, f"SCRIPT-{n}")
        for key, text in texts.items():
            store.set_case_info(case_id, str(key), str(text), "script")
    return case_id


def seed_previous(store: Store, library, person_id: int, flow_id: str, answers: dict) -> int:
    """An earlier conversation on ``flow_id`` by this person, outside any case and finished,
    with these answers: what ``{{ previous.X }}`` reads in a script with ``previous:``."""
    flow = library.get(flow_id)
    with store.transaction():
        store.save_snapshot(flow.sha, flow.id, flow.version, flow.source)
        conv = store.create_conversation(person_id=person_id, flow_id=flow.id, flow_version=flow.version,
                                         flow_sha=flow.sha, state="__end__", session={"state": "__end__"},
                                         status="completed", frontend="script", chat_id=None)
        for step_id, value in answers.items():
            store.save_answer(conv, step_id, value, str(value), str(value))
    return conv


class ServiceDriver:
    """Plays a script through the conversation service and the store, as a frontend would."""

    _ids = itertools.count(1)

    def __init__(self, service: ConversationService):
        self.service = service
        self.person = service.person(f"script:{next(self._ids)}", "Script")
        self.conv_id: int | None = None
        self._keys = itertools.count(1)

    @classmethod
    def in_memory(cls, library, safeguarding=None) -> "ServiceDriver":
        return cls(ConversationService(Store(":memory:"), library, safeguarding=safeguarding))

    def _key(self) -> str:
        return f"script:{self.person}:{next(self._keys)}"

    def start(self, flow_id: str, respondent: str | None = None, case: dict | None = None,
              language: str | None = None) -> list[str]:
        case_id = script_case(self.service.store, case) if case is not None else None
        reply = self.service.start(self.person, flow_id, input_key=self._key(), frontend="script",
                                   respondent=respondent, case_id=case_id, language=language)
        self.conv_id = reply.conversation_id
        return [p.plain() for p in reply.prompts]

    def seed_previous(self, flow_id: str, answers: dict) -> None:
        seed_previous(self.service.store, self.service.library, self.person, flow_id, answers)

    def send(self, text: str) -> list[str]:
        reply = self.service.handle(self.person, Input.from_text(text), input_key=self._key(), conversation_id=self.conv_id)
        return [p.plain() for p in reply.prompts]

    def press(self, value: str) -> list[str]:
        conv = self.service.store.conversation(self.conv_id)
        step = self.service.runner_for(conv).flow.by_id.get(conv.state)
        button = value
        if step is not None and step.type in ("choice", "multi"):
            for opt in step.options:
                if value in (opt.id, opt.label):
                    button = opt.id
            if step.type == "multi":
                button = [b.strip() for b in value.split(",")]
                button = [next((o.id for o in step.options if b in (o.id, o.label)), b) for b in button]
        reply = self.service.handle(self.person, Input("answer", button=button), input_key=self._key(),
                                    conversation_id=self.conv_id)
        return [p.plain() for p in reply.prompts]

    def answers(self) -> dict:
        return {a["step_id"]: a["value"] for a in self.service.store.answers(self.conv_id)}

    def status(self) -> str:
        return self.service.store.conversation(self.conv_id).status

    def alerts(self) -> list[str]:
        """The first notice a lead is sent for each alert of this conversation (as `serve` sends it)."""
        from bot.escalation import Escalation

        store = self.service.store
        escalation = Escalation(store, self.service.safeguarding, leads=[1])
        return [escalation.text(store.alert_detail(a["id"]), False) for a in store.alerts()
                if a["conversation_id"] == self.conv_id and not a["practice"]]


class RehearsalDriver:
    """Plays a rehearsal script (flows/tests/rehearsal/) through the rehearsal service."""

    _ids = itertools.count(1)

    def __init__(self, service):
        self.service = service
        with service.store.transaction():
            self.person = service.store.person(f"script:rehearsal:{next(self._ids)}", "Script")
        self.conv_id: int | None = None
        self._keys = itertools.count(1)

    @classmethod
    def in_memory(cls) -> "RehearsalDriver":
        from bot.rehearsal.service import RehearsalService

        return cls(RehearsalService(Store(":memory:")))

    def _key(self) -> str:
        return f"script:rehearsal:{self.person}:{next(self._keys)}"

    def start(self, scenario_id: str) -> list[str]:
        reply = self.service.start(self.person, scenario_id, input_key=self._key(), frontend="script")
        self.conv_id = reply.conversation_id
        return reply.messages

    def send(self, text: str) -> list[str]:
        return self.service.handle(self.person, text, input_key=self._key()).messages

    press = send

    def answers(self) -> dict:
        return {a["step_id"]: a["value"] if a["step_id"].startswith("confidence") else a["raw"]
                for a in self.service.store.answers(self.conv_id)}

    def status(self) -> str:
        return self.service.store.conversation(self.conv_id).status
