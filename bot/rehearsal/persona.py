"""What the persona says back: chosen from the scenario by the coach's view of the question
and by the practice stages already covered. Pure: the state is a plain dict kept in the
rehearsal's session."""

from __future__ import annotations

from bot.coach import Coaching
from bot.rehearsal.scenario import Scenario

# The first of these the question has decides the persona's reply.
MISTAKE_ORDER = ("why", "blaming", "lecture", "leading", "multiple", "closed")


def _rotate(scenario: Scenario, key: str, state: dict) -> str:
    counts = state.setdefault("counts", {})
    n = counts.get(key, 0)
    counts[key] = n + 1
    replies = scenario.replies[key]
    return replies[n % len(replies)].say


def respond(scenario: Scenario, coaching: Coaching, state: dict) -> tuple[str, str | None]:
    """(the persona's reply, the stage this question covered or None); updates ``state``.

    A weak question gets the reply for its first mistake (why, blame and lectures close the
    persona down; a closed question gets one word). An open question about a stage gets the
    stage's replies in order, each once, skipping those whose stages are not yet covered;
    a guarded reply (``unless_covered``) answers a stage asked too early, as often as asked.
    """
    covered = state.setdefault("covered", [])
    for key in MISTAKE_ORDER:
        if key in coaching.labels:
            return _rotate(scenario, key, state), None
    stages = coaching.stages
    if not coaching.is_open or not stages:
        return _rotate(scenario, "open", state), None
    stage = stages[0]
    before = list(covered)
    if stage not in covered:
        covered.append(stage)
    items = scenario.replies.get(stage)
    if not items:
        return _rotate(scenario, "open", state), stage
    used = state.setdefault("used", {}).setdefault(stage, [])
    for i, item in enumerate(items):
        if item.fits(before) and (item.guard or i not in used):
            if not item.guard:
                used.append(i)
            return item.say, stage
    return _rotate(scenario, "repeat", state), stage
