"""Safeguarding in use: a disclosure typed anywhere gets help at once, an alert is recorded
in the same transaction, sent to the linked practitioner and the leads, and sent again until
acknowledged — across restarts. (Detection itself: tests/test_safeguarding_detect.py.)"""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.escalation import Escalation
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import running_bot
from tests.conftest import flow_from

ROOT = Path(__file__).resolve().parents[1]
BBC = "I'm being forced to have sex and I'm only 12"
LEAD, PRACTITIONER, CHILD, PARENT = 900, 901, 902, 903


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


@pytest.fixture
def sg_service(store, library, safeguarding):
    return ConversationService(store, library, safeguarding=safeguarding)


EVERY_KIND = flow_from("""
id: every-kind
version: 1
title: Every kind of step
audience: child
steps:
  - id: text
    ask: What happened?
  - id: choice
    ask: Who?
    type: choice
    options: [Mum, Dad]
  - id: multi
    ask: What helps?
    type: multi
    options: [Friends, School]
  - id: scale
    ask: How safe?
    type: scale
  - id: yesno
    ask: Shall we go on?
    type: yesno
  - id: number
    ask: How old are you?
    type: number
    min: 4
    max: 18
""")


@pytest.mark.parametrize("audience, must, must_not", [
    ("child", ["Childline", "0800 1111", "999"], []),
    ("family", ["999", "0808 800 5000", "116 123", "85258"], []),
])
def test_disclosure_at_every_kind_of_step(tmp_path, safeguarding, audience, must, must_not):
    from bot.engine.library import FlowLibrary

    flow = flow_from(EVERY_KIND.source.replace("audience: child", f"audience: {audience}"))
    store = Store(tmp_path / "k.db")
    service = ConversationService(store, FlowLibrary([flow]), safeguarding=safeguarding)
    me = service.person("tg:1")
    conv = service.start(me, "every-kind").conversation_id
    answers = ["We had a row", "Mum", "Friends", "5", "yes", "12"]
    for i, step in enumerate(("text", "choice", "multi", "scale", "yesno", "number")):
        words = f"{BBC} (at {step})"
        reply = service.handle(me, Input.from_text(words), conversation_id=conv)
        assert len(reply.alerts) == 1, step
        text = reply.prompts[0].text
        assert reply.prompts[0].kind == "safeguarding"
        for word in must:
            assert word in text, (step, word)
        assert "secret" not in text.lower()
        assert reply.prompts[-1].kind == "offer"
        # one open alert per person: later words are added to it
        [alert] = store.alerts()
        assert alert["words"].endswith(words) and "sexual_abuse" in alert["concern"]
        assert alert["words"].startswith(f"{BBC} (at text)") and alert["update_count"] == i
        flagged = [t for t in store.transcript(conv) if t["flagged"]]
        assert flagged[-1]["text"] == words and flagged[0]["id"] == alert["transcript_id"]
        # carry on: the flow goes on from where it is
        reply = service.handle(me, Input.from_text("carry on"), conversation_id=conv)
        assert reply.prompts and reply.prompts[-1].kind == "question"
        waiting = store.conversation(conv).state
        reply = service.handle(me, Input.from_text(answers[i] if waiting == step else "x"), conversation_id=conv)
    # the text step kept the child's words as their answer
    assert store.answers(conv)[0]["raw"].startswith(BBC)


def test_stop_after_a_disclosure_ends_the_conversation(sg_service):
    me = sg_service.person("tg:2")
    conv = sg_service.start(me, "scaling-checkin").conversation_id
    sg_service.handle(me, Input.from_text("my dad hits me when he is drunk"))
    reply = sg_service.handle(me, Input.from_text("stop"))
    assert reply.status == "cancelled"


def test_disclosure_with_no_conversation_still_alerts(sg_service):
    me = sg_service.person("tg:3")
    reply = sg_service.handle(me, Input.from_text("i want to kms"))
    assert reply.alerts and "116 123" in reply.prompts[0].text and "0800 1111" in reply.prompts[0].text
    alert = sg_service.store.alerts()[-1]
    assert alert["conversation_id"] is None and alert["words"] == "i want to kms"


def test_ordinary_answers_do_not_alert(sg_service):
    me = sg_service.person("tg:4")
    sg_service.start(me, "scaling-checkin")
    for text in ("My brother hit the ball through the window and we argued", "6", "I'm dying to see my nan"):
        reply = sg_service.handle(me, Input.from_text(text))
        assert not reply.alerts, text
    assert sg_service.store.alerts() == []


def test_export_marks_the_flagged_line(sg_service):
    from bot.review.export import export

    me = sg_service.person("tg:5")
    conv = sg_service.start(me, "scaling-checkin").conversation_id
    sg_service.handle(me, Input.from_text("he touches me at night"))
    md = export(sg_service.store, session=conv, fmt="md")
    assert "⚠ **safeguarding flag**" in md and "he touches me at night" in md
    data = json.loads(export(sg_service.store, session=conv, fmt="json"))
    assert [t["text"] for t in data["transcript"] if t["flagged"]] == ["he touches me at night"]
    assert "class='line person flag'" in export(sg_service.store, session=conv, fmt="html")


def test_escalation_schedule_reminders_and_ack(sg_service, safeguarding):
    from datetime import datetime, timedelta, timezone

    esc = Escalation(sg_service.store, safeguarding, leads=[LEAD], repeat_minutes=15)
    me = sg_service.person("tg:6", "Sam")
    sg_service.start(me, "scaling-checkin")
    sg_service.handle(me, Input.from_text("I'm scared to go home tonight"))
    t0 = datetime.now(timezone.utc)
    [first] = esc.due(t0)
    assert first.recipients == [f"tg:{LEAD}"] and not first.repeat
    assert "I'm scared to go home tonight" in first.text and f"/ack {first.alert_id}" in first.text
    esc.sent(first.alert_id, t0)
    assert esc.due(t0 + timedelta(minutes=14)) == []
    [again] = esc.due(t0 + timedelta(minutes=16))
    assert again.repeat and again.text.startswith("REMINDER")
    assert esc.acknowledge(first.alert_id, "tg:12345") == "unknown"  # not a lead: refused, existence not revealed
    assert esc.acknowledge(first.alert_id, f"tg:{LEAD}") == "ok"
    assert esc.acknowledge(first.alert_id, f"tg:{LEAD}") == "already"
    assert esc.due(t0 + timedelta(hours=5)) == []


# --- over Telegram ------------------------------------------------------------------------

def _world(db, library, safeguarding):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [PRACTITIONER]}, leads=[LEAD]))
    access.seed()
    esc = Escalation(store, safeguarding, leads=[LEAD], repeat_minutes=0.01)  # 0.6 s
    return service, access, esc


async def _invite(h, access, flow, family):
    code, inv = await h.frontend.db(access.invite, f"tg:{PRACTITIONER}", flow, "CASE-1")
    before = len(h.fake.messages(family))
    h.fake.inject_command(family, f"/start {code}")
    consent = await h.keyboard_after(family, before)
    data = next(cb for row in h.fake.buttons(consent) for (t, cb) in row if t == "Yes, start")
    before = len(h.fake.messages(family))
    await h.delivered(h.fake.press_button(family, consent.message_id, data))
    if await h.frontend.db(h.service.respondent_choices, flow):  # "Who is filling this in?": a parent
        await h.who(family, before, "adult")
    return h.fake.messages(family)[before:]


async def _with(h, flow):
    """A worker-present session: the practitioner starts the flow for a child on their own device."""
    before = len(h.fake.messages(PRACTITIONER))
    await h.delivered(h.fake.inject_command(PRACTITIONER, f"/with CASE-1 {flow}"))
    return h.fake.messages(PRACTITIONER)[before:]


def _alerts_to(fake, user):
    return [m for m in fake.messages(user) if "safeguarding" in (m.text or "").lower() and "/ack" in (m.text or "")]


@pytest.mark.parametrize("flow, family, must", [
    ("three-houses", PRACTITIONER, "0800 1111"),  # a child, on their worker's device with the worker there
    ("scaling-checkin", PARENT, "0808 800 5000"),
])
async def test_telegram_disclosure_alerts_practitioner_and_lead_until_acknowledged(tmp_path, library, safeguarding,
                                                                                      flow, family, must):
    db = tmp_path / "sg.db"
    service, access, esc = _world(db, library, safeguarding)
    # the worker present sees the help on their own device, and is not sent the alert there
    # (the child is holding it); the lead is told
    told = [LEAD] if family == PRACTITIONER else [PRACTITIONER, LEAD]
    async with FakeBotAPI() as fake:
        async with running_bot(service, fake=fake, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
            if family == PRACTITIONER:
                await _with(h, flow)
            else:
                await _invite(h, access, flow, family)
            before = len(fake.messages(family))
            uid = fake.inject_message(family, "he hits me and i dont feel safe at home")
            await h.delivered(uid)
            shown = "\n".join(m.text for m in fake.messages(family)[before:])
            assert must in shown and "999" in shown
            offer = fake.messages(family)[-1]
            assert [t for row in fake.buttons(offer) for (t, _) in row] == ["Carry on", "Stop for now"]
            # at once to the practitioner holding the case and to the lead
            await fake.wait_for(lambda: all(_alerts_to(fake, who) for who in told), 5)
            assert (_alerts_to(fake, PRACTITIONER) == []) == (family == PRACTITIONER)
            assert "he hits me and i dont feel safe at home" in _alerts_to(fake, LEAD)[0].text
            # again after the timeout, while nobody acknowledges
            await fake.wait_for(lambda: any(m.text.startswith("REMINDER") for m in _alerts_to(fake, LEAD)), 10)
            # the person carries on
            before = len(fake.messages(family))
            await h.delivered(fake.press_button(family, offer.message_id, next(
                cb for row in fake.buttons(offer) for (t, cb) in row if t == "Carry on")))
            pid = await h.frontend.db(service.store.person, f"tg:{family}")
            waiting = (await h.frontend.db(service.current, pid)).prompts[0].text  # (a child sees no counter)
            assert any(waiting in (m.text or "") for m in fake.messages(family)[before:])
        # restart between disclosure and acknowledgement: reminders go on
        service2, access2, esc2 = _world(db, library, safeguarding)
        async with running_bot(service2, fake=fake, access=access2, escalation=esc2, alert_poll_seconds=0.1) as h:
            count = len(_alerts_to(fake, LEAD))
            await fake.wait_for(lambda: len(_alerts_to(fake, LEAD)) > count, 10)
            alert_id = service2.store.alerts()[-1]["id"]
            before = len(fake.messages(LEAD))
            await h.delivered(fake.inject_command(LEAD, f"/ack {alert_id}"))
            assert "acknowledged" in fake.messages(LEAD)[before:][-1].text
            count = len(_alerts_to(fake, LEAD))
            # reminders stopped: a whole pass of the alert loop that began after the next
            # reminder would have been due (0.6 s) has sent nothing more
            loop = asyncio.get_running_loop()
            due, deadline = loop.time() + esc2.repeat.total_seconds(), loop.time() + 20
            while (h.frontend.alert_pass_started or 0) < due and loop.time() < deadline:
                await asyncio.sleep(0.02)  # polling a condition, with a deadline
            assert (h.frontend.alert_pass_started or 0) >= due, "the alert loop stopped making passes"
            assert len(_alerts_to(fake, LEAD)) == count
    store = Store(db)
    [alert] = store.alerts()
    assert alert["acknowledged_by"] == f"tg:{LEAD}" and alert["notify_count"] >= 3


def test_console_shows_the_same_response_and_records_the_alert(tmp_path):
    db = tmp_path / "c.db"
    proc = subprocess.run([sys.executable, "-m", "bot", "chat", "scaling-checkin", "--db", str(db), "--as", "kim",
                           "--for", "adult"],
                          input=f"{BBC}\ncarry on\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "0808 800 5000" in proc.stdout and "999" in proc.stdout
    # "carry on" goes on to the next question (the words were kept as the first one's answer),
    # and does not ask the first again: checked by the questions' own words, not by "best
    # hopes", which is in both (the second's scale label too)
    after = proc.stdout.rsplit("(type “carry on” or “stop”)", 1)[-1]
    assert "Question 2\nOn a scale of 0 to 10" in after and "where are things now?" in after
    assert "What are your best hopes from our talking together?" not in after
    listed = subprocess.run([sys.executable, "-m", "bot", "alerts", "--open", "--db", str(db)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert "OPEN" in listed.stdout and BBC in listed.stdout and "sexual_abuse" in listed.stdout
