"""Roles over Telegram, end to end against the fake Bot API: invitation links, consent,
practitioner and supervisor views, comments and notifications, and refusals that leak nothing."""

import re

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.store import Store
from bot.testing.telegram import running_bot

ADMIN, SUP, P1, P2, FAM_A, FAM_B, STRANGER = 1, 2, 3, 4, 5, 6, 7
REFUSED = "Sorry, that isn't available to you. If you think it should be, ask your administrator."


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "roles.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"admin": [ADMIN], "supervisor": [SUP], "practitioner": [P1, P2]},
                                           teams={SUP: [P1]}))
    access.seed()
    async with running_bot(service, access=access) as h:
        yield h


async def invite_and_answer(h, practitioner, family, ref):
    msgs = await h.say(practitioner, f"/invite scaling-checkin {ref} --for adult")
    link = re.search(r"https://t\.me/\S+\?start=(\S+)", msgs[-1].text)
    assert link, msgs[-1].text
    code = link.group(1)
    msgs = await h.say(family, f"/start {code}")
    consent = msgs[-1]
    assert "has invited you" in consent.text and "will be seen by" in consent.text and "not end-to-end encrypted" in consent.text
    msgs = await h.press(family, consent, "Yes, start")
    assert "best hopes" in msgs[-1].text
    for text in (f"hopes of {family}", "3", f"reason of {family}", "less shouting", "7", "/skip"):
        msgs = await h.say(family, text)
    assert "Thank you" in msgs[-1].text
    return code


async def test_invite_consent_complete_review_comment_notify(world):
    h = world
    code = await invite_and_answer(h, P1, FAM_A, "FGC-7")
    # practitioner sees the case with the scale scores
    msgs = await h.say(P1, "/cases")
    assert "FGC-7" in msgs[-1].text
    msgs = await h.say(P1, "/case FGC-7")
    assert "completed" in msgs[-1].text and "scale_now 3" in msgs[-1].text
    conv_id = int(re.search(r"#(\d+)", msgs[-1].text).group(1))
    msgs = await h.say(P1, f"/transcript {conv_id}")
    assert any(f"hopes of {FAM_A}" in (m.text or "") for m in msgs)
    assert h.fake.documents(P1) and h.fake.documents(P1)[-1].filename == f"transcript-{conv_id}.html"
    # the supervisor sees it waiting for review, comments on one answer; the practitioner is told
    msgs = await h.say(SUP, "/review")
    assert f"#{conv_id}" in msgs[-1].text
    before = len(h.fake.messages(P1))
    msgs = await h.say(SUP, f"/comment {conv_id}#scale_now Good scaling question; try asking what 4 would look like.")
    assert "Internal comment saved" in msgs[-1].text and "staff only" in msgs[-1].text
    notice = await h.fake.wait_for(lambda: [m for m in h.fake.messages(P1)[before:] if "internal comment (staff only) on transcript" in (m.text or "")])
    assert "what 4 would look like" in notice[0].text
    msgs = await h.say(SUP, "/review")
    assert "Nothing is waiting" in msgs[-1].text
    # the family sees its own data and who can see it
    msgs = await h.say(FAM_A, "/mydata")
    assert "scaling-checkin" in msgs[-1].text and "(your worker)" in msgs[-1].text and "(your worker's manager)" in msgs[-1].text
    # the link cannot be used twice; to anyone but its first opener it reads like a code that never existed
    msgs = await h.say(FAM_A, f"/start {code}")
    assert "already been used" in msgs[-1].text
    msgs = await h.say(FAM_B, f"/start {code}")
    assert msgs[-1].text == (await h.say(FAM_B, "/start NoSuchCodeNoSuchCodeNoSuchCode12"))[-1].text


async def test_expired_and_forged_codes(world, monkeypatch):
    h = world
    msgs = await h.say(P1, "/invite scaling-checkin FGC-8")
    code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
    msgs = await h.say(FAM_B, "/start ThisIsNotARealCodeAtAll123456")
    assert "isn't one I recognise" in msgs[-1].text
    from datetime import datetime, timedelta, timezone

    later = datetime.now(timezone.utc) + timedelta(days=30)
    monkeypatch.setattr("bot.access._now", lambda: later)
    msgs = await h.say(FAM_B, f"/start {code}")
    assert "expired" in msgs[-1].text
    actions = [r["action"] for r in h.service.store.audit_log()]
    assert "invite.open.unknown" in actions and "invite.open.expired" in actions


async def test_uninvited_people_get_an_explanation_and_no_flows(world):
    h = world
    before = len(h.fake.messages(STRANGER))
    h.fake.inject_command(STRANGER, "/start")
    msgs = await h.fake.wait_for(lambda: h.fake.messages(STRANGER)[before:])
    assert "please ask your practitioner" in msgs[0].text.lower() or "please open it" in msgs[0].text.lower()
    assert all(not h.fake.buttons(m) for m in h.fake.messages(STRANGER))
    # a forged start button is refused too
    uid = h.fake.press_button(STRANGER, msgs[0].message_id, "s:scaling-checkin", force=True)
    await h.delivered(uid)
    assert h.fake.last_message(STRANGER).text == "This question has closed."
    assert h.service.store.conversations(person_id=h.service.store.person(f"tg:{STRANGER}")) == []


COMMANDS = ["/cases", "/case FGC-A", "/case NO-SUCH", "/transcript {A}", "/transcript 99999", "/comment {A} nice",
            "/comment 99999 nice", "/review"]
ALLOWED = {  # which of COMMANDS each role may use
    ADMIN: {"/cases", "/case FGC-A", "/transcript {A}", "/comment {A} nice", "/review"},
    SUP: {"/cases", "/case FGC-A", "/transcript {A}", "/comment {A} nice", "/review"},
    # /review: a practitioner's queue of review-tier items in their own cases (issue 12)
    P1: {"/cases", "/case FGC-A", "/transcript {A}", "/review"},
    P2: {"/cases", "/review"},  # P2 has a case of their own, but not FGC-A
    FAM_A: {"/transcript {A}"},
    FAM_B: set(),
    STRANGER: set(),
}


async def test_access_matrix_over_telegram(world):
    h = world
    await invite_and_answer(h, P1, FAM_A, "FGC-A")
    await invite_and_answer(h, P2, FAM_B, "FGC-B")
    conv_a = h.service.store.conversations(person_id=h.service.store.person(f"tg:{FAM_A}"))[0]["id"]
    for who, allowed in ALLOWED.items():
        for template in COMMANDS:
            text = template.format(A=conv_a)
            audit_before = len(h.service.store.audit_log())
            msgs = await h.say(who, text)
            shown = "\n".join(m.text or "" for m in msgs)
            if template in allowed:
                assert REFUSED not in shown, (who, text, shown)
            else:
                assert shown == REFUSED, (who, text, shown)  # the same words whether or not it exists
                assert "FGC-A" not in shown and f"hopes of {FAM_A}" not in shown
                refusals = [r for r in h.service.store.audit_log()[audit_before:] if r["action"].endswith(".refused")]
                assert refusals, (who, text)
    # invitations: only practitioners
    for who in (SUP, FAM_A, STRANGER):
        msgs = await h.say(who, "/invite scaling-checkin X-1")
        assert msgs[-1].text == REFUSED
