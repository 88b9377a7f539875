"""Who is answering, over Telegram and the terminal (issue 10 items 1, 3 and 5): invitations
say who they are for, the help and the lead's alert follow that, Three Houses is done only
with the worker there on their own device, and practice alerts are never sent by serve."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.messages import msg
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import TOKEN, running_bot

ROOT = Path(__file__).resolve().parents[1]
LEAD, PRACTITIONER, FAMILY, OTHER = 950, 951, 952, 953
HOME = "My dad hits me when I get home"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def _world(db, library, safeguarding):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [PRACTITIONER]}, leads=[LEAD]))
    access.seed()
    return service, access, Escalation(store, safeguarding, leads=[LEAD], repeat_minutes=60)


async def _open_and_consent(h, user, link_message):
    code = re.search(r"\?start=(\S+)", link_message).group(1)
    consent = (await h.say(user, f"/start {code}"))[-1]
    data = next(cb for row in h.fake.buttons(consent) for (t, cb) in row if t == msg("staff.consent_yes"))
    before = len(h.fake.messages(user))
    await h.delivered(h.fake.press_button(user, consent.message_id, data))
    return h.fake.messages(user)[before:]


def _alerts_to(fake, user):
    return [m.text for m in fake.messages(user) if "SAFEGUARDING ALERT" in (m.text or "")]


async def test_a_young_person_invited_as_one_gets_childline_and_the_lead_is_told_who_was_answering(
        tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "y.db", library, safeguarding)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        made = await h.say(PRACTITIONER, "/invite restorative-harmed CASE-Y --for young-person")
        shown = await _open_and_consent(h, FAMILY, made[-1].text)
        # nobody asks who is filling it in: the invitation said
        assert msg("respondent.question") not in [m.text for m in shown]
        assert "What did you think when you realised what had happened?" in shown[-1].text
        help_ = "\n".join(m.text for m in await h.say(FAMILY, HOME))
        assert "Childline" in help_ and "0800 1111" in help_ and "999" in help_
        assert "NSPCC" not in help_ and "0808 800 5000" not in help_  # not the adult line
        assert "may not read this straight away, especially at night or at weekends" in help_
        await h.fake.wait_for(lambda: _alerts_to(h.fake, LEAD), 5)
        [alert] = _alerts_to(h.fake, LEAD)
        assert "Answering: a young person (13 to 17)" in alert and HOME in alert
    conv = service.store.conversations(person_id=service.store.person(f"tg:{FAMILY}"))[0]
    assert conv["respondent"] == "young_person"


async def test_an_adult_reporting_abuse_at_home_gets_the_domestic_abuse_helpline(tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "a.db", library, safeguarding)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        made = await h.say(PRACTITIONER, "/invite restorative-harmed CASE-A --for adult")
        await _open_and_consent(h, FAMILY, made[-1].text)
        help_ = "\n".join(m.text for m in await h.say(FAMILY, "My partner hits me and I am scared to go home"))
        for number in ("999", "0808 800 5000", "116 123", "85258", "0808 2000 247"):
            assert number in help_, number
        assert "Childline" not in help_
        await h.fake.wait_for(lambda: _alerts_to(h.fake, LEAD), 5)
        assert "Answering: an adult (parent, carer or family member)" in _alerts_to(h.fake, LEAD)[0]


async def test_an_invitation_that_does_not_say_asks_who_is_filling_it_in(tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "w.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        made = await h.say(PRACTITIONER, "/invite scaling-checkin CASE-W")
        shown = await _open_and_consent(h, FAMILY, made[-1].text)
        assert shown[-1].text == msg("respondent.question")
        labels = [t for row in h.fake.buttons(shown[-1]) for (t, _) in row]
        assert labels == [msg("respondent.options.adult"), msg("respondent.options.young_person")]
        after = await h.past_who(FAMILY, shown, "young_person")
        assert "best hopes" in after[-1].text
    conv = service.store.conversations(person_id=service.store.person(f"tg:{FAMILY}"))[0]
    assert conv["respondent"] == "young_person"


async def test_inviting_someone_a_flow_is_not_for_is_refused_clearly(tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "r.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        refused = await h.say(PRACTITIONER, "/invite restorative-harmed CASE-R --for child")
        assert refused[-1].text == "'restorative-harmed' is not for child; it is for: young-person, adult."
        link = await h.say(PRACTITIONER, "/invite three-houses CASE-R")
        assert link[-1].text == msg("respondent.worker_present_only", flow="three-houses", title="My Three Houses")
        assert "start=" not in link[-1].text
    assert service.store.db.execute("SELECT COUNT(*) FROM invites").fetchone()[0] == 0


def test_three_houses_cannot_be_sent_as_a_link_from_the_cli_either(tmp_path):
    db = tmp_path / "cli.db"
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot", *a, "--db", str(db)], capture_output=True,  # noqa: E731
                                    text=True, cwd=ROOT, timeout=60)
    assert run("role", "grant", "555", "practitioner").returncode == 0
    refused = run("invite", "three-houses", "--case", "C-1", "--practitioner", "555")
    assert refused.returncode == 2 and "cannot be sent as a link" in refused.stderr and "start=" not in refused.stdout
    made = run("invite", "restorative-harmer", "--case", "C-1", "--practitioner", "555", "--for", "young-person")
    assert made.returncode == 0 and "start=" in made.stdout
    assert Store(db).invite(1)["respondent"] == "young_person"


async def test_a_worker_present_session_records_the_childs_answers_with_the_worker_present(
        tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "p.db", library, safeguarding)
    store = service.store
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        shown = await h.say(PRACTITIONER, "/with CASE-P three-houses")
        assert shown[0].text.startswith("Starting now for case CASE-P.") and "a child (about 8 to 12)" in shown[0].text
        assert shown[-1].text.split("\n\n")[-1].startswith("How are you feeling right now?")  # after the intro
        worker = store.person(f"tg:{PRACTITIONER}")
        conv = store.active_conversation(worker)
        assert (conv.flow_id, conv.respondent, conv.present_id, conv.practice) == ("three-houses", "child", worker, False)
        assert conv.person_id != worker and store.case_by_id(conv.case_id)["ref"] == "CASE-P"
        # the child answers on the worker's device: the answers are the child's
        await h.delivered(h.fake.press_button(PRACTITIONER, shown[-1].message_id, next(
            cb for row in h.fake.buttons(shown[-1]) for (t, cb) in row if t == "Good")))
        assert [a["step_id"] for a in store.answers(conv.id)] == ["feeling_now"]
        assert store.conversations(person_id=worker) == []  # nothing recorded as the worker's own
        # while the child holds the device, no staff command answers (nor a second session)
        for command in ("/cases", "/case CASE-P", f"/transcript {conv.id}", "/invite scaling-checkin X-1",
                        "/with CASE-P three-houses"):
            assert (await h.say(PRACTITIONER, command))[-1].text == msg("staff.with_in_progress"), command
        # "stop" hands the device back
        ended = await h.say(PRACTITIONER, "stop")
        assert ended[-1].text.split("\n\n")[-1] == msg("worker_present.ended")  # after "You have stopped.."
        assert store.conversation(conv.id).status == "cancelled"
        assert store.active_conversation(worker) is None
        # for the hand-back minutes the child may still hold it; after them it is the worker's again
        assert (await h.say(PRACTITIONER, "/cases"))[-1].text == msg("staff.with_handing_back", minutes=10)
        later = datetime.now(timezone.utc) + service.handback + timedelta(minutes=1)
        service.clock = lambda: later
        assert "CASE-P" in (await h.say(PRACTITIONER, "/cases"))[-1].text
        # not for someone who is not a practitioner
        refused = await h.say(OTHER, "/with CASE-P three-houses")
        assert refused[-1].text == msg("staff.refused")


async def test_a_disclosure_in_a_worker_present_session_goes_to_the_lead_not_to_the_screen_the_child_holds(
        tmp_path, library, safeguarding):
    service, access, esc = _world(tmp_path / "d.db", library, safeguarding)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        await h.say(PRACTITIONER, "/with CASE-D three-houses")
        conv = service.store.active_conversation(service.store.person(f"tg:{PRACTITIONER}"))
        service.store.db.execute("UPDATE conversations SET state = 'house_worries' WHERE id = ?", (conv.id,))
        help_ = "\n".join(m.text for m in await h.say(PRACTITIONER, HOME))
        assert "Childline" in help_ and "0800 1111" in help_
        await h.fake.wait_for(lambda: _alerts_to(h.fake, LEAD), 5)
        [alert] = _alerts_to(h.fake, LEAD)
        assert "Answering: a child (about 8 to 12), on " in alert and "present" in alert
        assert _alerts_to(h.fake, PRACTITIONER) == []


def _chat(db, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "bot", "chat", *args, "--db", str(db), "--as", "sam"], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_the_terminal_starts_a_worker_present_session_for_the_child(tmp_path):
    db = tmp_path / "t.db"
    proc = _chat(db, "three-houses", "--case", "CASE-T", "--for", "child", stdin="1\nstop\n")
    assert proc.returncode == 0, proc.stderr
    assert "Worker-present session for case CASE-T" in proc.stdout
    assert msg("worker_present.ended") in proc.stdout
    assert msg("console.practice") not in proc.stdout  # a case: not practice
    store = Store(db)
    [conv] = [store.conversation(i) for i in store.conversation_ids()]
    worker = store.person("console:sam")
    assert (conv.respondent, conv.present_id, conv.practice, conv.status) == ("child", worker, False, "cancelled")
    assert conv.person_id != worker and store.answers(conv.id)[0]["step_id"] == "feeling_now"


def test_in_a_case_the_terminal_is_the_workers_and_the_family_answers_as_themselves(tmp_path):
    """`chat --case REF --as sam` on a family flow: sam is the worker at the terminal, so the
    notice names sam as the person's worker, and the answers are the family member's own,
    with sam recorded as present (not sam answering as his own family)."""
    db = tmp_path / "t.db"
    proc = _chat(db, "scaling-checkin", "--case", "CASE-A", "--for", "adult", stdin="We talk more\nstop\n")
    assert proc.returncode == 0, proc.stderr
    assert "Worker-present session for case CASE-A" in proc.stdout
    assert "will be seen by sam (your worker)" in proc.stdout
    store = Store(db)
    [conv] = [store.conversation(i) for i in store.conversation_ids()]
    worker = store.person("console:sam")
    assert (conv.respondent, conv.present_id, conv.practice) == ("adult", worker, False)
    assert conv.person_id != worker
    assert [(a["step_id"], a["value"]) for a in store.answers(conv.id)] == [("best_hopes", "We talk more")]
    store.close()


def test_terminal_practice_says_plainly_that_nobody_is_told(tmp_path):
    db = tmp_path / "pr.db"
    proc = _chat(db, "restorative-harmed", "--for", "young-person", stdin=f"{HOME}\nstop\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert msg("console.practice") in out
    assert "This is practice, not a case, so nobody is told." in out and "will be told" not in out
    assert "designated safeguarding lead" not in out.lower()
    assert "Childline" in out and re.search(r"\[Practice alert #1 recorded, marked practice", out)
    listed = subprocess.run([sys.executable, "-m", "bot", "alerts", "--db", str(db)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert "PRACTICE (never sent)" in listed.stdout and "answering: a young person (13 to 17)" in listed.stdout
    # a real case in the terminal with no configuration: still no false promise
    real = _chat(db, "restorative-harmed", "--for", "adult", "--case", "CASE-9", stdin=f"{HOME}\nstop\n")
    assert "Nobody is set up to be told here yet." in real.stdout and "will be told" not in real.stdout
    assert "[Alert #2 recorded" in real.stdout


async def test_serve_on_a_database_of_terminal_practice_sends_none_of_its_alerts(tmp_path):
    db = tmp_path / "trials.db"
    for n in range(3):  # terminal trials, each with a disclosure
        proc = _chat(db, "scaling-checkin", "--for", "adult", stdin=f"{HOME} ({n})\nstop\n")
        assert proc.returncode == 0, proc.stderr
    store = Store(db)
    [trial] = store.alerts()  # one open alert per person, holding all three
    assert trial["practice"] == 1 and all(f"{HOME} ({n})" in trial["words"] for n in range(3))
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"safeguarding:\n  leads: [{LEAD}]\n  repeat_minutes: 0.02\ndemo_flow: scaling-checkin\n")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    async with FakeBotAPI() as fake:
        env["TELEGRAM_API_URL"] = fake.base_url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--db", str(db), "--config", str(config), "--alert-poll-seconds", "0.2",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await fake.wait_for(lambda: fake.calls_to("getUpdates"), 20)
            # a real disclosure, typed over Telegram outside any conversation, does reach the lead;
            # the pass that sends it sends every alert due, so a due practice alert would go too
            fake.inject_message(FAMILY, "he hits me and i dont feel safe at home")
            await fake.wait_for(lambda: _alerts_to(fake, LEAD), 20)
        finally:
            proc.terminate()
            await proc.communicate()
    sent = _alerts_to(fake, LEAD)
    assert len(sent) == 1 and "he hits me" in sent[0]
    assert not any(HOME in t for t in sent)
