"""A rehearsal over Telegram, end to end against the fake Bot API: the practitioner asks,
the persona answers, /hint and /end; the supervisor finds it in /review and comments on one
question; nothing the practitioner types in a rehearsal raises a safeguarding alert."""

import re

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot

ADMIN, SUP, P1, FAM = 1, 2, 3, 5


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "rehearse.db")
    service = ConversationService(store, library, safeguarding=SafeguardingConfig.load())
    access = Access(store, library, Config(roles={"admin": [ADMIN], "supervisor": [SUP], "practitioner": [P1]},
                                           teams={SUP: [P1]}))
    access.seed()
    async with running_bot(service, access=access) as h:
        yield h


async def send(h, user, text):
    before = len(h.fake.messages(user))
    uid = h.fake.inject_command(user, text) if text.startswith("/") else h.fake.inject_message(user, text)
    await h.delivered(uid)
    return [m.text for m in h.fake.messages(user)[before:]]


async def test_rehearse_end_to_end_then_review_and_comment(world):
    h = world
    listing = await send(h, P1, "/rehearse")
    assert "harmer-lunch-queue" in listing[-1] and "sf-follow-up" in listing[-1]
    opened = await send(h, P1, "/rehearse harmer-lunch-queue")
    assert opened[0].startswith("Rehearsal: Kai, who hit another pupil") and "never alerts anyone" in opened[0]
    assert opened[1].startswith("Before you start: how confident")
    assert (await send(h, P1, "4"))[-1].startswith("Kai: *sits down, arms folded*")
    assert await send(h, P1, "Why did you hit Josh?") == ["Kai: Because he deserved it. *looks at the floor*"]
    assert await send(h, P1, "/hint") == ["Your last question: “Why did you hit Josh?”\nCoach: “why”\nTry: “What happened with Josh?”"]
    assert (await send(h, P1, "What happened?"))[-1].startswith("Kai: *pause* We were in the queue.")
    # role-play words that would be a disclosure anywhere else: no safeguarding response, no alert
    said = await send(h, P1, "Has anyone at home hurt you or hit you?")
    assert said == ["Kai: Yeah."]
    assert (await send(h, P1, "Who has been affected by what you have done?"))[-1].startswith("Kai: Josh, obviously.")
    assert (await send(h, P1, "/end"))[-1].startswith("Before the summary")
    summary = await send(h, P1, "6")
    assert summary[0].startswith("Summary: Rehearsal: Kai, who hit another pupil")
    assert "✗ their thinking, then and since, for example: “What were you thinking of at the time?”" in summary[0]
    assert "✗ making things right" in summary[0]
    assert "1. “Why did you hit Josh?” (“why”); try: “What happened with Josh?”" in summary[0]
    assert "Confidence (0 to 10): 4 before, 6 after." in summary[0]
    conv_id = int(re.search(r"Saved as rehearsal (\d+)", summary[1]).group(1))
    assert h.service.store.alerts() == []
    conv = h.service.store.conversation(conv_id)
    assert (conv.status, conv.case_id, conv.flow_id) == ("completed", None, "rehearsal-harmer-lunch-queue")

    # the supervisor sees it for review and comments on one question; the practitioner is told
    review = await send(h, SUP, "/review")
    assert f"#{conv_id}" in review[-1] and "rehearsal-harmer-lunch-queue" in review[-1]
    before = len(h.fake.messages(P1))
    saved = await send(h, SUP, f"/comment {conv_id}#q1 Try starting with what happened, not why.")
    assert "Internal comment saved" in saved[-1]  # internal (staff only) by default
    notice = await h.fake.wait_for(lambda: [m for m in h.fake.messages(P1)[before:] if "internal comment (staff only)" in (m.text or "")])
    assert "not why" in notice[0].text
    assert [(c["step_id"], c["text"]) for c in h.service.store.comments(conv_id)] == [
        ("q1", "Try starting with what happened, not why.")]
    transcript = await send(h, SUP, f"/transcript {conv_id}")
    assert any("Why did you hit Josh?" in (t or "") and "Kai: Because he deserved it." in (t or "") for t in transcript)
    assert "Nothing is waiting" in (await send(h, SUP, "/review"))[-1]


async def test_rehearsal_is_for_staff_and_stops_with_cancel(world):
    h = world
    assert await send(h, FAM, "/rehearse harmer-lunch-queue") == ["Rehearsals are for practitioners and supervisors."]
    assert await send(h, P1, "/hint") == ["There is no rehearsal going on. Send /rehearse to start one."]
    assert (await send(h, P1, "/rehearse 4"))[0].startswith("Rehearsal: Jade")
    assert (await send(h, P1, "3"))[-1].startswith("Jade: Hi.")
    # a rehearsal under way is not yet waiting for review; once stopped it is, like a cancelled conversation
    assert "Nothing is waiting" in (await send(h, SUP, "/review"))[-1]
    assert await send(h, P1, "/cancel") == ["Rehearsal stopped. What you asked so far is saved."]
    assert h.service.store.active_rehearsal(h.service.store.person(f"tg:{P1}")) is None
    assert "rehearsal-sf-first-session (rehearsal)" in (await send(h, SUP, "/review"))[-1]
    # and the practitioner's text goes back to the flows
    assert "/rehearse" not in " ".join(await send(h, P1, "/help"))
