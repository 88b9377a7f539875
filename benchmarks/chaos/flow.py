"""The chaos flow (seven steps tagged [q1]..[end]) and each simulated person's planned answers."""

from __future__ import annotations

import random
import re

FLOW_ID = "chaos"
STEPS = ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]
CHOICES = ["Mum", "Dad", "Carer"]

CHAOS_FLOW = f"""id: {FLOW_ID}
version: 1
title: Chaos check-in
audience: family
steps:
  - id: q1
    ask: "[q1] What happened, in a few words?"
    type: text
  - id: q2
    ask: "[q2] On a scale of 0 to 10, where are things now?"
    type: scale
    min: 0
    max: 10
  - id: q3
    ask: "[q3] Who was there?"
    type: choice
    options: [{", ".join(CHOICES)}]
  - id: q4
    ask: "[q4] Did anything help?"
    type: yesno
  - id: q5
    ask: "[q5] What would help next time?"
    type: text
  - id: q6
    ask: "[q6] How many days ago was it?"
    type: number
    min: 0
    max: 365
  - id: q7
    ask: "[q7] Is there anything else?"
    type: text
  - id: done
    say: "[end] Thank you, that is everything."
"""

TAG = re.compile(r"\[(q\d+|end)\]")


def plan_for(user: int, rng: random.Random) -> dict[str, tuple[str, str]]:
    """What this user answers at each question: (typed text or button label, 'type'|'press')."""
    how = lambda: "press" if rng.random() < 0.6 else "type"  # noqa: E731
    return {
        "q1": (f"u{user} it happened at school", "type"),
        "q2": (str(user * 7 % 11), how()),
        "q3": (CHOICES[user % 3], how()),
        "q4": ("Yes" if user % 2 else "No", how()),
        "q5": (f"u{user} would like more time", "type"),
        "q6": (str(user % 365), "type"),
        "q7": (f"u{user} nothing else", "type"),
    }


def expected_shown(plan: dict) -> dict[str, str]:
    """The answers as the store keeps them (``shown``), by running the flow offline."""
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner, Input

    flow, _ = load_flow_text(CHAOS_FLOW, "<chaos>")
    runner = FlowRunner(flow)
    session = runner.start().session
    out = {}
    for step in STEPS:
        result = runner.step(session, Input.from_text(plan[step][0]))
        assert result.accepted, (step, plan[step], [p.text for p in result.prompts])
        out[step] = result.records[0].shown
        session = result.session
    return out
