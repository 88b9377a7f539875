"""Safeguarding detection before the hand-off to the store thread (issue 18).

A frontend may call ``service.prescreen`` on its own thread just before handing an input to
the store thread, so that detection (pure, no database) overlaps the store thread's commit
instead of running on it. It must never change what ``handle`` decides: the result is used
only for the very words and the very detector context ``handle`` then finds; otherwise
``handle`` detects again itself. The detector here is a stand-in whose answers the test
chooses, and which records the thread it ran on."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.runner import Input
from bot.frontends.telegram.limits import PriorityExecutor
from bot.store import Store
from tests.conftest import flow_from


@dataclass(frozen=True)
class Found:
    concern: str
    tier: str
    matched: str


class Recording:
    """ALERTWORD: alert. SHRUGWORD: review, alert after a 0-10 score of 1 or less."""

    concerns = {"physical_abuse": "Physical abuse", "self_harm_suicide": "Self-harm"}

    def __init__(self):
        self.calls: list[tuple[str, dict | None, int]] = []  # (words, context, thread)

    def detect(self, text, context=None):
        self.calls.append((text, context, threading.get_ident()))
        out = []
        if "ALERTWORD" in text:
            out.append(Found("physical_abuse", "alert", "ALERTWORD"))
        if "SHRUGWORD" in text:
            low = context is not None and context.get("score", 10) <= 1
            out.append(Found("self_harm_suicide", "alert" if low else "review", "SHRUGWORD"))
        return out

    def response(self, audience):
        return "HELP: call 999"

    def offer(self):
        return "Would you like to carry on?"


FLOW = flow_from("""
id: prescreen
version: 1
title: Prescreen
audience: family
steps:
  - id: hopes
    ask: What are your hopes?
  - id: scale
    ask: Where are things now?
    type: scale
  - id: why
    ask: Why there?
  - id: more
    ask: Anything more?
""")


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "p.db")
    detector = Recording()
    service = ConversationService(store, FlowLibrary([FLOW]), safeguarding=detector)
    executor = PriorityExecutor("store", group=store.run_group)
    pid = service.person("tg:1")
    executor.submit(service.start, pid, "prescreen", input_key="k0").result(10)
    yield service, detector, executor, pid, store
    executor.shutdown()
    store.close()


def _send(service, executor, pid, key, text):
    """What a frontend does: screen on its own thread, then hand the input to the store thread."""
    inp = Input.from_text(text)
    service.prescreen(pid, inp, input_key=key)
    return executor.submit(service.handle, pid, inp, input_key=key).result(10)


def test_detection_runs_before_the_hand_off_not_on_the_store_thread(world):
    service, detector, executor, pid, store = world
    here = threading.get_ident()
    ordinary = _send(service, executor, pid, "k1", "We talk more at dinner")
    assert ordinary.accepted and ordinary.alerts == [] and ordinary.step_id == "scale"
    assert _send(service, executor, pid, "k2", "7").step_id == "why"  # an option picked: not screened at all
    disclosure = _send(service, executor, pid, "k3", "he hits me ALERTWORD")
    assert len(disclosure.alerts) == 1 and disclosure.prompts[0].kind == "safeguarding"
    assert [a["concern"] for a in store.alerts()] == ["physical_abuse"]
    # each free text was screened once, on the caller's thread (with the score the scale answer
    # gave), never again on the store thread; the option picked was not screened anywhere
    assert [(words, context, thread == here) for words, context, thread in detector.calls] == [
        ("We talk more at dinner", None, True), ("he hits me ALERTWORD", {"score": 7}, True)]
    assert service._prescreened == {}  # nothing kept once handled (the option picked included)


def test_words_screened_in_another_context_are_screened_again(world):
    """Two messages sent quickly: both are screened before either is handled, so the second
    was screened before the score the first gives; the store thread screens it again with it."""
    service, detector, executor, pid, store = world
    _send(service, executor, pid, "k1", "We talk more at dinner")
    score, words = Input.from_text("0"), Input.from_text("SHRUGWORD")
    service.prescreen(pid, score, input_key="k2")
    service.prescreen(pid, words, input_key="k3")  # no score known yet: screened as review
    assert executor.submit(service.handle, pid, score, input_key="k2").result(10).step_id == "why"
    reply = executor.submit(service.handle, pid, words, input_key="k3").result(10)
    assert len(reply.alerts) == 1 and reply.prompts[0].kind == "safeguarding"  # the low score raised it
    assert [(w, c) for w, c, _ in detector.calls][-2:] == [("SHRUGWORD", None), ("SHRUGWORD", {"score": 0})]


def test_a_prescreen_of_other_words_under_the_same_key_is_not_used(world):
    service, detector, executor, pid, store = world
    service.prescreen(pid, Input.from_text("nothing to see"), input_key="k1")
    reply = executor.submit(service.handle, pid, Input.from_text("ALERTWORD"), input_key="k1").result(10)
    assert len(reply.alerts) == 1
    assert [w for w, _, _ in detector.calls] == ["nothing to see", "ALERTWORD"]


def test_a_guess_that_fails_screens_as_if_nothing_were_known(world, monkeypatch):
    """The guess (does it pick an option? which score?) runs outside the store thread's
    context, e.g. an option's condition; if it fails, the words are screened without it and
    the frontend's update goes on."""
    service, detector, executor, pid, store = world

    def broken(*args):
        raise RuntimeError("a condition needed the store thread's context")

    monkeypatch.setattr(service, "_picks", broken)
    service.prescreen(pid, Input.from_text("ALERTWORD"), input_key="k1")
    assert service._prescreened["k1"][1] is None and detector.calls[-1][:2] == ("ALERTWORD", None)


def test_the_guess_keeps_only_the_people_heard_from_most_recently(world, monkeypatch):
    service, detector, executor, pid, store = world
    monkeypatch.setattr(service, "RECENT_MAX", 3)
    a, b, c = (service.person(f"tg:{n}") for n in range(2, 5))
    for n, other in enumerate((a, b)):
        executor.submit(service.start, other, "prescreen", input_key=f"s{n}").result(10)
    assert list(service._recent) == [pid, a, b]
    _send(service, executor, a, "k1", "We talk more at dinner")  # a again: now the most recent
    executor.submit(service.start, c, "prescreen", input_key="s2").result(10)
    assert list(service._recent) == [b, a, c]  # the first person, heard from least recently, went
