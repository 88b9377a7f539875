"""Closing promises are kept or not made (issue 10, item 6).

No shipped flow may tell a person that their worker will check in with them or contact
them: nothing makes a worker do that. A reminder the bot does send (issue 15: a date
question with ``remind:``) may be described, and the closing words must match it.
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


def test_the_check_in_day_schedules_reminders_and_the_closing_says_so_truthfully(library):
    """Issue 15 keeps the promise: the follow-up is a date question that schedules a reminder
    for the person and the case's worker (tests/test_schedule.py sends them), and the
    closing words say exactly that, with its limits, and never that the worker will check in."""
    for flow_id in ("restorative-harmed", "restorative-harmer"):
        flow = library.get(flow_id)
        step = flow.by_id["follow_up"]
        assert step.type == "date" and step.remind is not None, flow_id
        assert (step.remind.who, step.remind.before_hours) == ("both", 24.0), flow_id
        closing = " ".join(flow.by_id["thanks"].text.split())
        assert "will not send you a reminder" not in closing, flow_id
        assert "If you are answering in Telegram on your own phone, this chat sends you a short reminder the day" \
               " before. The reminder does not say what you answered." in closing, flow_id
        assert "If a worker is linked to this conversation, they are reminded too." in closing, flow_id
        assert "practitioner" not in closing.lower(), flow_id  # DOMAIN.md: "your worker"


def test_the_promise_pattern_catches_the_old_wording():
    old = "Thank you for sharing this. Your practitioner will check in with you on the day you chose."
    assert PROMISE.search(old)
    assert not PROMISE.search("The day you chose is saved, so your worker can plan how to check in with you.")


def test_the_fgc_conference_date_reminder_is_described_as_it_is_sent(library):
    flow = library.get("fgc-pre-conference")
    step = flow.by_id["conference_date"]
    assert step.type == "date" and step.optional and step.remind.who == "person"
    closing = " ".join(flow.by_id["closing"].text.split())
    assert "If you gave the date and you use Telegram on your own phone, this chat sends you a reminder the day before." \
           " The reminder does not say what you answered." in closing


def test_the_fgc_review_date_reminder_is_described_as_it_is_sent(library):
    flow = library.get("fgc-review")
    step = flow.by_id["review_date"]
    assert step.type == "date" and step.optional and step.remind.who == "person"
    closing = " ".join(flow.by_id["closing"].text.split())
    assert "If you gave the date of the review and you use Telegram on your own phone, this chat sends you" \
           " a reminder the day before. The reminder does not say what you answered." in closing
    assert "coordinator will remind" not in closing and "worker will" not in closing
