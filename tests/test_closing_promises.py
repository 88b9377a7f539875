"""Closing promises are kept or not made (issue 10, item 6).

Nothing in the product schedules a check-in or reminder yet, so no shipped flow may tell
a person that their worker (or the bot) will check in with them or remind them. The flow
may still ask for a day and say truthfully that it is saved.
"""

import re

import yaml

# "X will check in with you", "will remind you", "will contact you on the day you chose"
PROMISE = re.compile(r"\bwill\s+(?:check\s+in\s+with|remind|contact|get\s+back\s+to)\s+you\b", re.IGNORECASE)


def _texts(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)


def test_no_shipped_flow_promises_a_check_in_nobody_schedules(library):
    promises = []
    for flow in library:
        for text in _texts(yaml.safe_load(flow.source)):
            folded = " ".join(text.split())
            if PROMISE.search(folded):
                promises.append(f"{flow.id}: {folded}")
    assert promises == []


def test_the_check_in_day_is_still_asked_and_the_closing_says_no_reminder_is_sent(library):
    for flow_id in ("restorative-harmed", "restorative-harmer"):
        flow = library.get(flow_id)
        assert flow.by_id["follow_up"].is_question
        closing = " ".join(flow.by_id["thanks"].text.split())
        assert "will not send you a reminder" in closing, flow_id
        assert "practitioner" not in closing.lower(), flow_id  # DOMAIN.md: "your worker"
        assert "your worker" in closing, flow_id


def test_the_promise_pattern_catches_the_old_wording():
    old = "Thank you for sharing this. Your practitioner will check in with you on the day you chose."
    assert PROMISE.search(old)
    assert not PROMISE.search("The day you chose is saved, so your worker can plan how to check in with you.")
