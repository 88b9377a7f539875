"""Worker-present sessions over Telegram (`/with CASE FLOW`): the worker hands their phone to a
child or family member. While the session runs, the device is theirs: their words are screened
and go to their session (never to a rehearsal the worker left open), nothing of the worker's
own answers them (/ack, /language, /rehearse, /reminders), and nothing meant for the worker
(other families' alerts, reminders, comment notices) reaches the screen until the session has
ended; /stop ends the session. Just after it ends, the child may still hold the phone: their
words are theirs, not the worker's. A flow that promises nobody reads the answers until the
person agrees is never done on the worker's device."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.messages import msg
from bot.reading import Reading
from bot.respondent import described
from bot.safeguarding import SafeguardingConfig
from bot.schedule import Schedule
from bot.store import Store, iso
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import running_bot

LEAD, WORKER, FAMILY, SUPERVISOR = 960, 961, 962, 963
HOME = "my dad hits me and I am scared to go home"
ABUSE = "my husband beats me and the children"
REMINDER = "Reminder for case CASE-B: the meeting is tomorrow"
COMMENT = "Please look again at the second answer"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def _world(db, library, safeguarding):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [WORKER]}, leads=[LEAD]))
    access.seed()
    return service, access


def _texts(messages) -> list[str]:
    return [m.text or "" for m in messages]


async def _session(h):
    pid = await h.frontend.db(h.service.person, f"tg:{WORKER}")
    return await h.frontend.db(h.service.active, pid)


async def test_with_is_refused_while_a_rehearsal_is_open(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "r.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/rehearse harmer-lunch-queue")
        await h.say(WORKER, "4")  # the rehearsal is under way; the worker leaves it open
        said = _texts(await h.say(WORKER, "/with CASE-1 three-houses"))
        assert said == [msg("staff.with_rehearsing")]
        assert await _session(h) is None
        # once the rehearsal is stopped, the session starts
        await h.say(WORKER, "/cancel")
        said = _texts(await h.say(WORKER, "/with CASE-1 three-houses"))
        assert said[0] == msg("staff.with_started", ref="CASE-1", who=described("child"))
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))
        assert "Childline" in help_
    [alert] = service.store.alerts()
    assert HOME in alert["words"]


async def test_a_childs_words_never_go_to_a_rehearsal_left_open(tmp_path, library, safeguarding):
    """A rehearsal open beside a running session (e.g. both from before the /with check): the
    words typed on the device go to the session, screened, and the lead's alert is raised."""
    service, access = _world(tmp_path / "o.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/rehearse harmer-lunch-queue")
        await h.say(WORKER, "4")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")

        def start(person_id, flow, case_id, who, present_id):
            return service.start(person_id, flow, input_key="direct", frontend="telegram", chat_id=str(WORKER),
                                 case_id=case_id, respondent=who, present_id=present_id).conversation_id

        conv = await h.frontend.db(access.start_with, f"tg:{WORKER}", "CASE-2", "three-houses", start)
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))
        assert "Childline" in help_ and "0800 1111" in help_
        [alert] = service.store.alerts()
        assert alert["conversation_id"] == conv and HOME in alert["words"]
        rehearsal = service.store.active_rehearsal(worker)
        assert rehearsal is not None
        assert HOME not in "\n".join(line["text"] for line in service.store.transcript(rehearsal.id))


async def test_the_workers_own_commands_do_not_answer_during_a_session(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "c.db", library, safeguarding)
    async with running_bot(service, access=access, reading=Reading(service.store, access, leads=[LEAD])) as h:
        await h.say(WORKER, "/with CASE-3 three-houses")
        for command in ("/ack 1", "/language", "/rehearse harmer-lunch-queue", "/reminders", "/hint", "/end",
                        "/start somecode", "/cases"):
            assert _texts(await h.say(WORKER, command)) == [msg("staff.with_in_progress")], command
        assert service.store.active_rehearsal(await h.frontend.db(service.person, f"tg:{WORKER}")) is None
        session = await _session(h)
        assert session is not None and session.flow_id == "three-houses"


async def test_stop_typed_as_a_command_ends_the_session_not_the_workers_reminders(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "s.db", library, safeguarding)
    async with running_bot(service, access=access, reading=Reading(service.store, access, leads=[LEAD])) as h:
        await h.say(WORKER, "/with CASE-4 three-houses")
        said = _texts(await h.say(WORKER, "/stop"))
        assert msg("worker_present.ended") in "\n".join(said)
        assert await _session(h) is None
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        assert service.store.opted_out(worker) == set()
        # in the hand-back minutes the child may still hold the phone: not the worker's /stop yet
        said = _texts(await h.say(WORKER, "/stop"))
        assert said == [msg("staff.with_handing_back", minutes=10)]
        assert service.store.opted_out(worker) == set()
        # afterwards /stop is the worker's own again
        later = datetime.now(timezone.utc) + timedelta(minutes=service.handback.total_seconds() / 60 + 1)
        service.clock = lambda: later
        said = _texts(await h.say(WORKER, "/stop"))
        assert said[0].startswith(msg("schedule.stopped"))
        assert service.store.opted_out(worker) == {"*"}


async def test_stop_ends_the_session_without_reminders_installed(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "n.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/with CASE-5 three-houses")
        said = _texts(await h.say(WORKER, "/stop"))
        assert msg("worker_present.ended") in "\n".join(said)
        assert await _session(h) is None


# -- while the child holds the phone, nothing of the worker's reaches it ----------------------

def _world_with_alerts(db, library, safeguarding, held_after_minutes=0.0, **service_kw):
    """``held_after_minutes``: how long after a session what is meant for the worker is still
    kept off their phone (worker_present.handback_minutes; 0 here unless a test is about it,
    so the tests of the session itself see what is sent as soon as it ends)."""
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding, **service_kw)
    access = Access(store, library, Config(roles={"practitioner": [WORKER], "supervisor": [SUPERVISOR]},
                                           teams={SUPERVISOR: [WORKER]}, leads=[LEAD]))
    access.seed()
    return service, access, Escalation(store, safeguarding, leads=[LEAD], repeat_minutes=60,
                                       present_handback_minutes=held_after_minutes)


async def _family_in_case(h, ref: str) -> int:
    """A parent in another of the worker's cases, invited and consenting: their conversation."""
    made = await h.say(WORKER, f"/invite scaling-checkin {ref} --for adult")
    code = re.search(r"\?start=(\S+)", made[-1].text).group(1)
    consent = (await h.say(FAMILY, f"/start {code}"))[-1]
    await h.press(FAMILY, consent, msg("staff.consent_yes"))
    pid = await h.frontend.db(h.service.person, f"tg:{FAMILY}")
    return (await h.frontend.db(h.service.active, pid)).id


def _alerts_in(fake, user) -> list[str]:
    return [m.text for m in fake.messages(user) if "SAFEGUARDING ALERT" in (m.text or "")]


async def test_another_familys_alert_waits_until_the_session_has_ended(tmp_path, library, safeguarding):
    service, access, esc = _world_with_alerts(tmp_path / "a.db", library, safeguarding)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        await _family_in_case(h, "CASE-B")
        await h.say(WORKER, "/with CASE-A three-houses")  # the child now holds the worker's phone
        await h.say(FAMILY, ABUSE)
        await h.fake.wait_for(lambda: _alerts_in(h.fake, LEAD), 15)
        assert ABUSE in _alerts_in(h.fake, LEAD)[0]
        # the worker is the first recipient of a notice: had it gone to the phone, it would be there
        assert not [m for m in h.fake.messages(WORKER) if ABUSE in (m.text or "")]
        said = "\n".join(_texts(await h.say(WORKER, "stop")))  # the session ends, the phone goes back
        assert msg("worker_present.ended") in said
        await h.fake.wait_for(lambda: _alerts_in(h.fake, WORKER), 15)
        [held] = _alerts_in(h.fake, WORKER)
        assert held.startswith(msg("alerts.held")) and ABUSE in held and "CASE-B" in held
        async with h.frontend._alert_lock:  # the pass that sent it is over
            [alert] = service.store.alerts()
        assert alert["notify_count"] == 1  # sent after the session: the alert's reminders are as they were


async def test_in_the_minutes_after_a_session_another_familys_alert_still_keeps_off_the_phone(
        tmp_path, library, safeguarding):
    """Just after "stop" the child may still hold the phone (words typed then are taken as
    theirs): for worker_present.handback_minutes another family's alert is kept off it too, and
    goes to the lead at once as ever; after that the worker is sent it."""
    service, access, esc = _world_with_alerts(tmp_path / "b.db", library, safeguarding, held_after_minutes=10)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        await _family_in_case(h, "CASE-B")
        await h.say(WORKER, "/with CASE-A three-houses")
        await h.say(WORKER, "stop")
        await h.say(FAMILY, ABUSE)
        await h.fake.wait_for(lambda: _alerts_in(h.fake, LEAD), 15)
        async with h.frontend._alert_lock:  # the pass that sent it to the lead is over
            assert not [m for m in h.fake.messages(WORKER) if ABUSE in (m.text or "")]
        now = datetime.now(timezone.utc)
        assert f"tg:{WORKER}" in esc.holding(now) and f"tg:{WORKER}" not in esc.holding(now + timedelta(minutes=10.5))


async def test_reminders_and_comment_notices_wait_until_the_session_has_ended(tmp_path, library, safeguarding):
    service, access, esc = _world_with_alerts(tmp_path / "r.db", library, safeguarding)
    service.schedule = Schedule(service.store, quiet_from="00:00", quiet_until="00:00")  # never quiet hours
    async with running_bot(service, access=access, escalation=esc) as h:
        conv = await _family_in_case(h, "CASE-B")
        await h.say(WORKER, "/with CASE-A three-houses")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")

        def due_now():
            with service.store.transaction():
                return service.store.add_scheduled(person_id=worker, kind="date", text=REMINDER,
                                                   due_at=iso(datetime.now(timezone.utc) - timedelta(minutes=1)),
                                                   why="test", conversation_id=conv)
        await h.frontend.db(due_now)
        await h.say(SUPERVISOR, f"/comment {conv} {COMMENT}")
        assert await h.frontend.dispatch_schedule(h.app.bot) == 0  # due, and kept waiting
        assert await h.frontend.dispatch_held(h.app.bot) == 0
        shown = "\n".join(_texts(h.fake.messages(WORKER)))
        assert REMINDER not in shown and COMMENT not in shown
        await h.say(WORKER, "stop")
        await h.fake.wait_for(lambda: all(t in "\n".join(_texts(h.fake.messages(WORKER)))
                                          for t in (REMINDER, COMMENT)), 15)


async def test_a_comment_notice_kept_back_during_a_session_survives_a_restart(tmp_path, library, safeguarding):
    """What is kept back from the worker's phone is kept in the store, not in memory: `serve`
    restarting while the session runs loses nothing, and it is sent once the session ends."""
    service, access, esc = _world_with_alerts(tmp_path / "k.db", library, safeguarding)
    service.schedule = Schedule(service.store, quiet_from="00:00", quiet_until="00:00")
    async with FakeBotAPI() as fake:
        async with running_bot(service, fake=fake, access=access, escalation=esc) as h:
            conv = await _family_in_case(h, "CASE-B")
            await h.say(WORKER, "/with CASE-A three-houses")
            await h.say(SUPERVISOR, f"/comment {conv} {COMMENT}")
            assert COMMENT not in "\n".join(_texts(fake.messages(WORKER)))
        async with running_bot(service, fake=fake, access=access, escalation=esc) as h:  # serve restarted
            assert COMMENT not in "\n".join(_texts(fake.messages(WORKER)))
            await h.say(WORKER, "stop")
            await fake.wait_for(lambda: COMMENT in "\n".join(_texts(fake.messages(WORKER))), 15)
            assert sum(COMMENT in t for t in _texts(fake.messages(WORKER))) == 1


# -- after "stop": the child may still be holding the phone -----------------------------------

async def test_words_typed_just_after_a_session_are_the_childs(tmp_path, library, safeguarding):
    service, access, esc = _world_with_alerts(tmp_path / "h.db", library, safeguarding)
    async with running_bot(service, access=access, escalation=esc) as h:
        await h.say(WORKER, "/with CASE-A three-houses")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        session = (await h.frontend.db(service.active, worker)).id
        await h.say(WORKER, "stop")
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))  # the child still has the phone
        assert "Childline" in help_ and "0800 1111" in help_
        assert "NSPCC" not in help_ and "Samaritans" not in help_  # not the help for an adult
        [alert] = service.store.alerts()
        assert alert["conversation_id"] == session and alert["person_id"] != worker and HOME in alert["words"]
        await h.fake.wait_for(lambda: _alerts_in(h.fake, LEAD), 15)
        [notice] = _alerts_in(h.fake, LEAD)
        assert "case CASE-A" in notice and described("child") in notice
        assert described("practitioner") not in notice
        assert HOME in [t["text"] for t in service.store.transcript(session) if t["direction"] == "in"]


async def test_staff_commands_wait_out_the_handback(tmp_path, library, safeguarding):
    """In the hand-back minutes the phone may still be with the child: no staff command shows
    another family's words, the case list or a sign-in link, and no old button of the worker's
    own works; the reply says when they answer again. The child's words there stay theirs, and
    /with (handing the phone on) works. Once the minutes are over, the commands answer again."""
    store = Store(tmp_path / "hb.db")
    service = ConversationService(store, library, safeguarding=safeguarding)  # handback: 10 minutes
    access = Access(store, library, Config(roles={"practitioner": [WORKER]}, leads=[LEAD],
                                           web_url="https://review.example"))
    access.seed()
    async with running_bot(service, access=access, reading=Reading(store, access, leads=[LEAD])) as h:
        conv_b = await _family_in_case(h, "CASE-B")
        await h.say(FAMILY, ABUSE)
        language = (await h.say(WORKER, "/language"))[-1]  # a button of the worker's own, for later
        menu = (await h.say(WORKER, "/flows"))[-1]  # and a flow to start as their own
        await h.say(WORKER, "/with CASE-A three-houses")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        session = (await h.frontend.db(service.active, worker)).id
        await h.say(WORKER, "stop")
        waiting = msg("staff.with_handing_back", minutes=10)
        for command in ("/cases", f"/transcript {conv_b}", "/review", "/case CASE-B", "/web", "/ack 1",
                        "/language", "/reminders", "/rehearse harmer-lunch-queue", "/start somecode"):
            said = _texts(await h.say(WORKER, command))
            assert said == [waiting], command
        shown = "\n".join(_texts(h.fake.messages(WORKER)))
        assert ABUSE not in shown and "https://review.example" not in shown
        await h.press(WORKER, language, "English")
        assert h.fake.answered_callbacks[-1].text == waiting
        assert service.store.person_language(worker) is None
        said = _texts(await h.press(WORKER, menu, next(t for row in h.fake.buttons(menu) for (t, cb) in row
                                                       if cb == "s:scaling-checkin")))
        assert said == [waiting] and service.store.conversations(person_id=worker) == []
        # the child, still holding the phone: their words are theirs, with the help for a child
        help_ = "\n".join(_texts(await h.say(WORKER, HOME)))
        assert "Childline" in help_
        [alert] = [a for a in service.store.alerts() if HOME in (a["words"] or "")]
        assert alert["conversation_id"] == session and alert["person_id"] != worker
        # the minutes left are counted down
        ended = datetime.now(timezone.utc)
        service.clock = lambda: ended + timedelta(minutes=7, seconds=30)
        assert _texts(await h.say(WORKER, "/cases")) == [msg("staff.with_handing_back", minutes=3)]
        # once they are over, the worker's commands answer again
        service.clock = lambda: ended + timedelta(minutes=11)
        read = "\n".join(_texts(await h.say(WORKER, f"/transcript {conv_b}")))
        assert ABUSE in read
        # /with hands the phone on in the hand-back: a session with someone else starts
        service.clock = lambda: datetime.now(timezone.utc)
        await h.say(WORKER, "/with CASE-C three-houses")
        await h.say(WORKER, "stop")
        said = _texts(await h.say(WORKER, "/with CASE-D three-houses"))
        assert said[0] == msg("staff.with_started", ref="CASE-D", who=described("child"))


async def test_after_the_handback_while_words_are_the_workers_again(tmp_path, library, safeguarding):
    service, access, esc = _world_with_alerts(tmp_path / "w.db", library, safeguarding, handback_minutes=0)
    async with running_bot(service, access=access, escalation=esc) as h:
        await h.say(WORKER, "/with CASE-A three-houses")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        session = (await h.frontend.db(service.active, worker)).id
        await h.say(WORKER, "stop")
        await h.say(WORKER, HOME)
        [alert] = service.store.alerts()
        assert alert["person_id"] == worker and alert["conversation_id"] != session


# -- a flow that promises nobody reads the answers until the person agrees --------------------

async def test_with_is_refused_for_a_flow_nobody_reads_without_consent(tmp_path, library, safeguarding):
    service, access = _world(tmp_path / "f.db", library, safeguarding)
    async with running_bot(service, access=access) as h:
        said = _texts(await h.say(WORKER, "/with FGC-9 fgc-young-person --for young-person"))
        assert said == [msg("staff.with_consent_first", flow="fgc-young-person", who=described("young_person"),
                            respondent="young-person")]
        assert service.store.conversations() == []
        assert await _session(h) is None


def test_the_handback_and_idle_times_are_configured(tmp_path):
    from bot.config import ConfigError

    good = tmp_path / "c.yaml"
    good.write_text("worker_present:\n  handback_minutes: 5\n  idle_minutes: 60\n")
    cfg = Config.load(good)
    assert (cfg.present_handback_minutes, cfg.present_idle_minutes) == (5.0, 60.0)
    assert (Config().present_handback_minutes, Config().present_idle_minutes) == (10.0, 120.0)
    bad = tmp_path / "b.yaml"
    bad.write_text("worker_present:\n  handback_minutes: soon\n  handback: 5\n")
    with pytest.raises(ConfigError) as exc:
        Config.load(bad)
    text = str(exc.value)
    assert f"{bad}:2:21:" in text and "'handback_minutes' must be a number of minutes" in text
    assert f"{bad}:3:3:" in text and "unknown key 'handback'" in text


@pytest.mark.parametrize("alerts", [True, False], ids=["escalation", "no-escalation"])
async def test_by_default_a_reminder_due_just_after_stop_waits_the_handback_minutes(tmp_path, library, safeguarding,
                                                                                     alerts):
    """Leftover 5: the default handback (worker_present.handback_minutes: 10, the default of
    Escalation and of escalation.holding) was only tested as passed in. Just after "stop" the
    child may still hold the phone: a reminder due then must not reach it for ten minutes, and
    must reach it after. The session's end is moved back in time instead of waiting."""
    store = Store(tmp_path / "d.db")
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [WORKER]}, leads=[LEAD]))
    access.seed()
    service.schedule = Schedule(store, quiet_from="00:00", quiet_until="00:00")  # never quiet hours
    escalation = Escalation(store, safeguarding, leads=[LEAD]) if alerts else None  # every default
    async with running_bot(service, access=access, escalation=escalation) as h:
        await h.say(WORKER, "/with CASE-A three-houses")
        session = (await _session(h)).id
        await h.say(WORKER, "stop")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")

        def ended(minutes_ago: float) -> None:
            with store.transaction():
                store.db.execute("UPDATE conversations SET finished_at = ? WHERE id = ?",
                                 (iso(datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)), session))

        def due_now():
            with store.transaction():
                store.add_scheduled(person_id=worker, kind="date", text=REMINDER, why="test",
                                    due_at=iso(datetime.now(timezone.utc) - timedelta(minutes=1)))
        await h.frontend.db(due_now)
        shown = lambda: "\n".join(_texts(h.fake.messages(WORKER)))  # noqa: E731
        for minutes_ago in (0, 9):
            await h.frontend.db(ended, minutes_ago)
            await h.frontend.dispatch_schedule(h.app.bot)  # (after the pass under way)
            assert REMINDER not in shown()
        await h.frontend.db(ended, 10.5)
        await h.fake.wait_for(lambda: REMINDER in shown(), 15)
        assert shown().count(REMINDER) == 1


def test_the_handback_is_one_rule_for_what_waits_and_for_whose_words_are_whose(tmp_path, library, safeguarding):
    """escalation.holding (alerts, reminders and notices wait) was time-only, while the service
    also ended the hand-back when the worker started a conversation of their own: alerts were
    kept off a phone back in the worker's hands. Both now ask the store's one rule."""
    from bot.engine.runner import Input

    service, access = _world(tmp_path / "one.db", library, safeguarding)
    esc = Escalation(service.store, safeguarding, leads=[LEAD], present_handback_minutes=10)
    worker = service.person(f"tg:{WORKER}")
    access.start_with(f"tg:{WORKER}", "CASE-H", "three-houses", lambda person, flow, case, respondent, present:
                      service.start(person, flow, case_id=case, respondent=respondent, present_id=present).conversation_id)
    assert f"tg:{WORKER}" in esc.holding()  # the session runs on the worker's device
    service.handle(worker, Input.from_text("stop"))
    assert service.handing_back(worker) is not None and f"tg:{WORKER}" in esc.holding()  # the hand-back
    service.start(worker, "scaling-checkin")  # the worker starts their own: the phone is theirs again
    assert service.handing_back(worker) is None
    assert f"tg:{WORKER}" not in esc.holding()


# -- words sent together with the last answer (review-answers finding 2) ----------------------
# The person on the worker's phone sends the last answer and one more message at once: the last
# answer ends the session, and the second message was kept nowhere (taken as the worker's, who
# has no case conversation) while the phone showed the worker's own flow menu.

LAST_WORDS = "and I also want Dad to come to the meeting"
_ANSWER = {"scale": "5", "yesno": "no", "choice": "1", "number": "3", "multi": "1"}


def _answer_for(service, conv) -> str:
    return _ANSWER.get(service.runner_for(conv).flow.by_id[conv.state].type, "School is hard")


def _after_end_lines(store, conv_id) -> list[dict]:
    return [t for t in store.transcript(conv_id) if t["kind"] == "after_end"]


def _after_end_said(library) -> str:
    """The start of the after-end message, for three-columns (who can see it follows)."""
    return msg("answers.after_end", title=library.get("three-columns").title, who_can_see="").rstrip()


async def test_words_sent_with_the_last_answer_are_kept_in_the_session_not_lost(tmp_path, library, safeguarding):
    store = Store(tmp_path / "last.db")
    service = ConversationService(store, library, safeguarding=safeguarding)  # handback: 10 minutes
    access = Access(store, library, Config(roles={"practitioner": [WORKER]}, leads=[LEAD]))
    access.seed()
    reading = Reading(store, access, leads=[LEAD])
    async with running_bot(service, access=access, reading=reading) as h:
        await h.say(WORKER, "/with CASE-A three-columns --for adult")
        worker = await h.frontend.db(service.person, f"tg:{WORKER}")
        for _ in range(40):  # to the last question
            conv = await h.frontend.db(service.active, worker)
            if conv.state == "anything_else":
                break
            await h.say(WORKER, _answer_for(service, conv))
        session = conv.id
        before = len(h.fake.messages(WORKER))
        last = h.fake.inject_message(WORKER, "School is hard")  # the last answer and one more, together
        more = h.fake.inject_message(WORKER, LAST_WORDS)
        await h.delivered(last)
        await h.delivered(more)
        assert await h.frontend.wait_finished(lambda: more in h.frontend.finished, 30)  # all it sends is sent
        assert store.conversation(session).status == "completed"
        [line] = _after_end_lines(store, session)  # kept with the session's answers, as after the end
        assert (line["direction"], line["text"], line["flagged"]) == ("in", LAST_WORDS, 0)
        assert line["id"] in {r["transcript_id"] for r in reading.unread()}  # unread for its worker
        shown = _texts(h.fake.messages(WORKER)[before:])
        assert shown[-1].startswith(_after_end_said(library))  # the person told who can see them
        assert msg("worker_present.ended") in "\n".join(shown)
        assert msg("telegram.choose_flow") not in "\n".join(shown)  # not the worker's own menu
        assert store.conversations(person_id=worker) == []  # and nothing of the worker's
        # the worker reads it in the session's transcript once the hand-back is over
        service.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=11)
        read = "\n".join(_texts(await h.say(WORKER, f"/transcript {session}")))
        assert LAST_WORDS in read and msg("transcripts.kind_after_end") in read


async def test_in_the_handback_a_command_with_nothing_open_shows_no_workers_menu(tmp_path, library, safeguarding):
    """"/back" (say, to change the last answer) just after a session: nothing is open, and the
    phone may still be in the child's hands: it is told so, without the worker's flow menu.
    Once the hand-back is over, the worker gets their menu as before."""
    service, access = _world(tmp_path / "back.db", library, safeguarding)  # handback: 10 minutes
    async with running_bot(service, access=access) as h:
        await h.say(WORKER, "/with CASE-A three-houses")
        await h.say(WORKER, "stop")
        back = h.fake.inject_message(WORKER, "/back")
        assert await h.frontend.wait_finished(lambda: back in h.frontend.finished, 30)
        said = _texts(h.fake.messages(WORKER))
        assert said[-1] == msg("telegram.nothing_active") and msg("telegram.choose_flow") not in said
        service.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=11)
        h.fake.inject_message(WORKER, "/back")
        await h.fake.wait_for(lambda: _texts(h.fake.messages(WORKER))[-1] == msg("telegram.choose_flow"), 30)
        assert _texts(h.fake.messages(WORKER))[-2:] == [msg("telegram.nothing_active"), msg("telegram.choose_flow")]


def test_words_after_a_sessions_last_answer_are_the_answering_persons_in_the_handback(tmp_path, library,
                                                                                      safeguarding):
    """Service level: during the hand-back, ordinary words with no conversation open are kept
    as after-end words in the session just handed back (unread for its worker); once it is over
    they are the worker's again (who has no case conversation: nothing kept, as before)."""
    from bot.engine.runner import Input

    service, access = _world(tmp_path / "svc.db", library, safeguarding)
    store = service.store
    reading = Reading(store, access, leads=[LEAD])
    worker = service.person(f"tg:{WORKER}")
    session = access.start_with(f"tg:{WORKER}", "CASE-S", "three-columns", respondent="adult",
                                start=lambda person, flow, case, respondent, present: service.start(
                                    person, flow, case_id=case, respondent=respondent,
                                    present_id=present).conversation_id)
    for _ in range(40):
        conv = service.active(worker)
        if conv is None:
            break
        service.handle(worker, Input.from_text(_answer_for(service, conv)), seen=(session, conv.state))
    assert store.conversation(session).status == "completed"
    reply = service.handle(worker, Input.from_text(LAST_WORDS), input_key="k1", seen=(session, "anything_else"))
    assert not reply.closed and reply.conversation_id == session
    assert [p.text for p in reply.prompts][0].startswith(_after_end_said(library))
    [line] = _after_end_lines(store, session)
    assert line["text"] == LAST_WORDS and line["id"] in {r["transcript_id"] for r in reading.unread()}
    # the hand-back over: the words are the worker's, who has no case conversation
    service.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=11)
    reply = service.handle(worker, Input.from_text("the worker's own words"), input_key="k2")
    assert reply.closed and reply.prompts == []
    assert [t["text"] for t in _after_end_lines(store, session)] == [LAST_WORDS]
