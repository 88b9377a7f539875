"""Progress never goes backwards and its total never changes mid-flow (issue 10, item 4).

Walks every scripted conversation in flows/tests (every shipped flow, every path they
take) through the service, and checks each question's "Question n [of N]": n goes up by
one with each answer (the same when a question is asked again; one less only when the
person sends /back, which shows the earlier question with the number it had), the total is
the same from the first question to the last, n never passes it, and a child sees no counter.
"""

import pytest

from bot.conversation import ConversationService
from bot.engine.library import DEFAULT_FLOWS
from bot.engine.runner import Input
from bot.engine.scripts import load_scripts, play
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.drivers import ServiceDriver
from tests.conftest import flow_from

CONVERSATIONS, ERRORS = load_scripts([DEFAULT_FLOWS / "tests"])


class Recording(ConversationService):
    """The service, noting every input and the questions it showed in reply."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, list]] = []  # (input kind, progress of each question shown)

    def _note(self, kind, reply):
        self.log.append((kind, [p.progress for p in reply.prompts if p.kind == "question"]))
        return reply

    def start(self, *args, **kwargs):
        return self._note("start", super().start(*args, **kwargs))

    def handle(self, person_id, inp, **kwargs):
        return self._note(inp.kind, super().handle(person_id, inp, **kwargs))


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def check(log, audience) -> list[str]:
    """What is wrong with the progress shown along one conversation (nothing: [])."""
    problems, last, total = [], None, "unset"
    for step, (kind, shown) in enumerate(log):
        for progress in shown:
            if audience == "child":
                if progress is not None:
                    problems.append(f"input {step} ({kind}): a child was shown {progress}")
                continue
            n, this_total = progress
            if total == "unset":
                total = this_total
            if this_total != total:
                problems.append(f"input {step} ({kind}): total changed from {total} to {this_total}")
            if total is not None and n > total:
                problems.append(f"input {step} ({kind}): question {n} of {total}")
            if last is not None:
                allowed = {last - 1, last} if kind == "back" else {last, last + 1}  # /back at the first: refused
                if n not in allowed:
                    problems.append(f"input {step} ({kind}): question {n} after question {last}")
            last = n
    return problems


def test_every_shipped_flow_is_walked():
    assert not ERRORS
    from bot.engine.library import FlowLibrary

    assert {c.flow for c in CONVERSATIONS} == {f.id for f in FlowLibrary.load()}


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=lambda c: f"{c.flow}:{c.name}")
def test_progress_never_goes_backwards_and_its_total_never_changes(conv, library, safeguarding):
    service = Recording(Store(":memory:"), library, safeguarding=safeguarding)
    outcome = play(conv, ServiceDriver(service))
    assert outcome.ok, "\n".join(outcome.failures)
    assert sum(len(shown) for _, shown in service.log) >= 1
    assert check(service.log, library.get(conv.flow).audience) == []


def test_the_check_catches_a_counter_that_goes_back_or_a_total_that_changes():
    # the shapes reported in issue 10: Three Houses 6, 8, 7 of 9; FGC 14 of 20, then 15 of 19
    assert check([("answer", [(6, 9)]), ("answer", [(8, 9)]), ("answer", [(7, 9)])], "family")
    assert check([("answer", [(14, 20)]), ("answer", [(15, 19)])], "family")
    assert check([("start", [(1, None)]), ("answer", [(2, None)]), ("back", [(1, None)])], "family") == []
    assert check([("start", [(1, None)])], "child")


MIXED = flow_from("""
id: mixed
version: 1
title: For a family, a child among them
audience: family
respondents: [child, adult]
steps:
  - id: hopes
    ask: What are your best hopes?
  - id: scale
    ask: Where are things now?
    type: scale
  - id: better
    ask: What would be better?
""")


@pytest.mark.parametrize("respondent, counter", [("child", False), ("adult", True)])
def test_a_child_answering_a_family_flow_sees_no_counter(safeguarding, respondent, counter):
    from bot.engine.library import FlowLibrary

    service = ConversationService(Store(":memory:"), FlowLibrary([MIXED]), safeguarding=safeguarding)
    me = service.person("tg:7")
    reply = service.start(me, "mixed", respondent=respondent)
    shown = [reply] + [service.handle(me, Input.from_text(t)) for t in ("We talk more", "6")]
    questions = [p for r in shown for p in r.prompts if p.kind == "question"]
    assert len(questions) == 3
    assert [p.progress for p in questions] == ([(1, 3), (2, 3), (3, 3)] if counter else [None] * 3)
    lines = [line["text"] for line in service.store.transcript(reply.conversation_id) if line["direction"] == "out"]
    assert any(text.startswith("Question") for text in lines) == counter
    assert (service.current(me).prompts[0].progress is None) == (not counter)
