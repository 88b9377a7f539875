"""Issue 13: ``note_for_worker`` is for the worker (transcripts, staff exports, a worker-present
session on the worker's device), never shown to the person answering."""

from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.loader import load_flow_text
from bot.engine.runner import Input
from bot.messages import msg
from bot.review.export import render, transcript_data
from bot.store import Store
from tests.conftest import flow_from

NOTED = """\
id: noted
version: 1
title: Noted
audience: child
steps:
  - id: hello
    say: Hello! Let us draw your houses.
    note_for_worker: Give the child paper and pens before you hand over the device.
  - id: drawing
    ask: What did you draw?
    type: text
    note_for_worker: Write down what the child drew, in their words, after the session.
  - id: bye
    say: Thank you for sharing.
"""

NOTE_1 = msg("worker_present.note", note="Give the child paper and pens before you hand over the device.")
NOTE_2 = msg("worker_present.note", note="Write down what the child drew, in their words, after the session.")


def _service(tmp_path):
    return ConversationService(Store(tmp_path / "n.db"), FlowLibrary([flow_from(NOTED)]))


def test_the_person_never_sees_the_note_but_the_transcript_and_staff_export_keep_it(tmp_path):
    service = _service(tmp_path)
    child = service.person("tg:5")
    reply = service.start(child, "noted")
    assert [p.text for p in reply.prompts] == ["Hello! Let us draw your houses.", "What did you draw?"]
    reply = service.handle(child, Input.from_text("a big tree"))
    assert [p.text for p in reply.prompts] == ["Thank you for sharing."]
    conv = reply.conversation_id
    lines = [(t["kind"], t["text"]) for t in service.store.transcript(conv) if t["direction"] == "out"]
    assert lines == [("worker_note", NOTE_1), ("message", "Hello! Let us draw your houses."),
                     ("worker_note", NOTE_2), ("question", "What did you draw?"), ("message", "Thank you for sharing.")]
    staff = transcript_data(service.store, conv)
    assert [t["text"] for t in staff["transcript"] if t["kind"] == "worker_note"] == [NOTE_1, NOTE_2]
    assert NOTE_2 in render([staff], "md") and "For the worker" in render([staff], "html")
    # the person's own copy (/mydata file) and anything given to the family has no note
    family = transcript_data(service.store, conv, internal_comments=False)
    assert [t["text"] for t in family["transcript"]] == [
        "(started Noted)", "Hello! Let us draw your houses.", "What did you draw?", "a big tree", "Thank you for sharing."]
    assert "For the worker" not in render([family], "json")


def test_a_worker_present_session_shows_the_note_to_the_worker_holding_the_device(tmp_path):
    service = _service(tmp_path)
    worker = service.person("tg:9")
    child = service.present_person("C1")
    reply = service.start(child, "noted", present_id=worker)
    assert [(p.kind, p.text) for p in reply.prompts] == [
        ("worker_note", NOTE_1), ("message", "Hello! Let us draw your houses."),
        ("worker_note", NOTE_2), ("question", "What did you draw?")]


def test_note_for_worker_is_linted_like_other_text():
    _, errors = load_flow_text(NOTED.replace("after the session", "after {{ answers.nope }}"), "n.yaml")
    assert [str(e) for e in errors] == [
        "n.yaml:12:22: the wording of step 'drawing' uses answers.nope, but there is no step 'nope'"]
    _, errors = load_flow_text(NOTED.replace("note_for_worker: Give", "note_for_workr: Give"), "n.yaml")
    assert [str(e) for e in errors] == ["n.yaml:8:5: unknown key 'note_for_workr'; did you mean 'note_for_worker'?"]


async def test_over_telegram_the_worker_sees_the_note_on_their_device_and_a_person_never_does(tmp_path):
    from bot.access import Access
    from bot.config import Config
    from bot.testing.telegram import running_bot
    from tests.test_telegram import start_flow


    present = NOTED.replace("audience: child\n", "audience: child\nrespondents: [child]\nrequires: worker_present\n")
    library = FlowLibrary([flow_from(present), flow_from(NOTED.replace("id: noted", "id: noted-link"))])
    store = Store(tmp_path / "tg.db")
    access = Access(store, library, Config(roles={"practitioner": [10]}))
    access.seed()
    async with running_bot(ConversationService(store, library), access=access) as h:
        # each prompt a paragraph: said together, one message per question (issue 18)
        shown = [part for m in await h.say(10, "/with C1 noted") for part in m.text.split("\n\n")]
        assert NOTE_1 in shown and NOTE_2 in shown
        assert shown.index(NOTE_1) < shown.index("Hello! Let us draw your houses.") < shown.index(NOTE_2)
    # the same notes, in a flow someone answers on their own: never sent to them
    async with running_bot(ConversationService(Store(tmp_path / "tg2.db"), library)) as h:
        seen = [part for m in await start_flow(h, 11, "noted-link", respondent="child") for part in m.text.split("\n\n")]
        assert seen[-1].startswith("What did you draw?") and not any("For the worker" in (t or "") for t in seen)
        assert "For the worker" not in " ".join(m.text or "" for m in h.fake.messages(11))
