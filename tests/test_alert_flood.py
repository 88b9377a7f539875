"""Safeguarding alerts that a flood cannot bury (issue 11, findings 1 and 5).

One open alert per person (later words are added to it and notified once more);
reminders to each recipient as one digest; /ack of one alert acknowledges every open alert
of that person; first alerts from people without a role are limited but the first is
never held back; a genuine alert reaches the lead within seconds while other accounts
flood the bot; a disclosure after a conversation has ended joins that conversation's
transcript and case and reaches its practitioner, whose /ack works.
"""

import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.access import Access
from bot.config import Config, ConfigError
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.escalation import Escalation
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import running_bot

LEAD, LEAD2, PRACTITIONER, FAMILY = 800, 801, 802, 803
DISCLOSURE = "he hits me and i dont feel safe at home"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def _world(db, library, safeguarding, **esc):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [PRACTITIONER]}, leads=[LEAD],
                                           demo_flow="scaling-checkin"))
    access.seed()
    esc = Escalation(store, safeguarding, leads=[LEAD], **{"repeat_minutes": 15, **esc})
    return store, service, access, esc


def _in_case(store, service, access, family_key="tg:803", ref="CASE-1"):
    code, inv = access.invite(f"tg:{PRACTITIONER}", "scaling-checkin", ref)
    access.open_invite(family_key, code)
    return access.accept_invite(family_key, inv, lambda p, f, c: service.start(p, f, case_id=c).conversation_id)


# --- the store and the schedule ---------------------------------------------------------

def test_one_open_alert_per_person_and_new_words_renotify_once(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "a.db", library, safeguarding)
    conv = _in_case(store, service, access)
    me = store.person("tg:803")
    service.handle(me, Input.from_text("i am scared of my dad"), conversation_id=conv)
    t0 = datetime.now(timezone.utc) + timedelta(seconds=1)
    [first] = esc.due(t0)
    assert first.recipients == [f"tg:{PRACTITIONER}", f"tg:{LEAD}"] and not first.repeat
    esc.sent(first.alert_id, t0)
    assert esc.due(t0) == []
    service.handle(me, Input.from_text("carry on"), conversation_id=conv)
    service.handle(me, Input.from_text("he hits me when he is drunk"), conversation_id=conv)
    [alert] = store.alerts()  # the same alert, with both sets of words
    assert alert["words"].startswith("i am scared of my dad") and alert["words"].endswith("he hits me when he is drunk")
    [again] = esc.due(t0 + timedelta(seconds=2))  # notified once more, at once
    assert again.alert_id == alert["id"] and "NEW WORDS" in again.text and "he hits me when he is drunk" in again.text
    esc.sent(again.alert_id, t0 + timedelta(seconds=2))
    assert esc.due(t0 + timedelta(minutes=14)) == []  # once: then the ordinary reminders
    [reminder] = esc.due(t0 + timedelta(minutes=18))
    assert reminder.repeat and reminder.text.startswith("REMINDER")


def test_reminders_reach_each_recipient_as_one_digest(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "d.db", library, safeguarding, flood_individual=10)
    esc.leads = [f"tg:{LEAD}", f"tg:{LEAD2}"]
    people = [store.person(f"tg:{9000 + i}", f"Kid{i}") for i in range(5)]
    for pid in people:
        service.handle(pid, Input.from_text(DISCLOSURE))
    t0 = datetime.now(timezone.utc) + timedelta(seconds=1)
    for notice in esc.due(t0):
        esc.sent(notice.alert_ids, t0)
    [digest] = esc.due(t0 + timedelta(minutes=16))  # one message to each lead, not five
    assert digest.recipients == [f"tg:{LEAD}", f"tg:{LEAD2}"]
    ids = sorted(a["id"] for a in store.alerts())
    assert digest.repeat and digest.digest and sorted(digest.alert_ids) == ids
    assert all(f"/ack {i}" in digest.text for i in ids) and digest.text.count(DISCLOSURE) == 5


def test_ack_acknowledges_every_open_alert_of_the_person(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "k.db", library, safeguarding)
    me = store.person("tg:4444")
    other = store.person("tg:4445")
    with store.transaction():  # several open alerts for one person, as an older database may hold
        a1 = store.add_alert(conversation_id=None, person_id=me, transcript_id=None, concern="physical_abuse",
                             words="one", next_notify_at=None)
        a2 = store.add_alert(conversation_id=None, person_id=me, transcript_id=None, concern="physical_abuse",
                             words="two", next_notify_at=None)
        a3 = store.add_alert(conversation_id=None, person_id=other, transcript_id=None, concern="physical_abuse",
                             words="three", next_notify_at=None)
    assert esc.acknowledge(a2, "tg:1") == "unknown"  # not a lead
    assert esc.acknowledge(a2, f"tg:{LEAD}") == "ok"
    acked = {a["id"]: a["acknowledged_by"] for a in store.alerts()}
    assert acked == {a1: f"tg:{LEAD}", a2: f"tg:{LEAD}", a3: None}
    assert esc.acknowledge(a1, f"tg:{LEAD}") == "already"
    assert esc.acknowledge_person(a3, f"tg:{LEAD}") == ("ok", 1)


def test_alerts_from_people_without_a_role_are_limited_but_never_the_first(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "f.db", library, safeguarding, flood_individual=2,
                                         flood_window_seconds=60)
    conv = _in_case(store, service, access)
    strangers = [store.person(f"tg:{7000 + i}") for i in range(8)]
    t0 = datetime.now(timezone.utc) + timedelta(seconds=1)
    service.handle(strangers[0], Input.from_text(DISCLOSURE))
    [first] = esc.due(t0)  # the very first is never held back
    esc.sent(first.alert_ids, t0)
    # the same stranger again: their words join the open alert, and wait for its reminder
    service.handle(strangers[0], Input.from_text("he hits me every day"))
    assert esc.due(t0 + timedelta(seconds=1)) == []
    assert "he hits me every day" in store.alerts()[0]["words"]
    for pid in strangers[1:]:
        service.handle(pid, Input.from_text(DISCLOSURE))
    service.handle(store.person("tg:803"), Input.from_text("my mum hurts me"), conversation_id=conv)
    notices = esc.due(t0 + timedelta(seconds=2))
    genuine = next(a["id"] for a in store.alerts() if a["conversation_id"] == conv)
    assert notices[0].alert_ids == [genuine]  # the person in a case goes first
    alone = [n.alert_ids[0] for n in notices[1:]]
    assert len(alone) == 2 and not any(n.digest for n in notices)  # 2 more strangers alone, the rest wait
    for n in notices:
        esc.sent(n.alert_ids, t0 + timedelta(seconds=2))
    assert esc.due(t0 + timedelta(seconds=30)) == []
    [digest] = esc.due(t0 + timedelta(seconds=63))  # within the window, all the rest at once
    waiting = {a["id"] for a in store.alerts()} - {first.alert_id, genuine, *alone}
    assert digest.digest and set(digest.alert_ids) == waiting and len(waiting) == 5
    assert digest.recipients == [f"tg:{LEAD}"]


# --- over Telegram ------------------------------------------------------------------------

def _alerts_with(fake, user, words):
    return [m for m in fake.messages(user) if words in (m.text or "") and "/ack" in (m.text or "")]


async def _join(h, access, family):
    code, _ = await h.frontend.db(access.invite, f"tg:{PRACTITIONER}", "scaling-checkin", "CASE-1", "adult")
    before = len(h.fake.messages(family))
    h.fake.inject_command(family, f"/start {code}")
    consent = await h.keyboard_after(family, before)
    data = next(cb for row in h.fake.buttons(consent) for (t, cb) in row if t == "Yes, start")
    await h.delivered(h.fake.press_button(family, consent.message_id, data))


async def test_a_genuine_alert_reaches_the_lead_within_seconds_during_a_flood(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "flood.db", library, safeguarding)
    async with FakeBotAPI() as fake:
        async with running_bot(service, fake=fake, access=access, escalation=esc, alert_poll_seconds=0.2) as h:
            await _join(h, access, FAMILY)
            fake.chat_send_interval = 0.2  # Telegram lets a bot send about one message a second to one chat
            flooders = [5000 + i for i in range(60)]
            last = 0
            for n in range(4):
                for user in flooders:
                    last = fake.inject_message(user, f"{DISCLOSURE} {user}-{n}")
            await h.delivered(last, timeout=30)  # the whole flood is in
            genuine = "my stepdad hurts me and i am scared to go home"
            t0 = time.monotonic()
            fake.inject_message(FAMILY, genuine)
            await fake.wait_for(lambda: _alerts_with(fake, LEAD, genuine) and _alerts_with(fake, PRACTITIONER, genuine),
                                timeout=8)
            print(f"genuine alert reached the lead and the practitioner in {time.monotonic() - t0:.2f} s")
            assert len(store.alerts(open_only=True)) == 61  # one per person
            alert_id = next(a["id"] for a in store.alerts() if genuine in a["words"])
            before = len(fake.messages(PRACTITIONER))
            await h.delivered(fake.inject_command(PRACTITIONER, f"/ack {alert_id}"))
            assert "acknowledged" in fake.messages(PRACTITIONER)[before:][-1].text


async def test_a_disclosure_after_the_conversation_ended_reaches_its_practitioner(tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "after.db", library, safeguarding)
    async with FakeBotAPI() as fake:
        async with running_bot(service, fake=fake, access=access, escalation=esc, alert_poll_seconds=0.2) as h:
            await _join(h, access, FAMILY)
            await h.delivered(fake.inject_command(FAMILY, "/cancel"))
            [conv] = store.conversations(person_id=store.person(f"tg:{FAMILY}"))
            assert conv["status"] == "cancelled"
            words = "my uncle touches me when mum is out"
            await h.delivered(fake.inject_message(FAMILY, words))
            assert "999" in fake.last_message(FAMILY).text
            [alert] = store.alerts()
            assert alert["conversation_id"] == conv["id"]
            flagged = [t for t in store.transcript(conv["id"]) if t["flagged"]]
            assert [t["text"] for t in flagged] == [words] and alert["transcript_id"] == flagged[0]["id"]
            await fake.wait_for(lambda: _alerts_with(fake, PRACTITIONER, words) and _alerts_with(fake, LEAD, words), 5)
            before = len(fake.messages(PRACTITIONER))
            await h.delivered(fake.inject_command(PRACTITIONER, f"/ack {alert['id']}"))
            assert "acknowledged" in fake.messages(PRACTITIONER)[before:][-1].text
    assert Store(tmp_path / "after.db").alerts()[0]["acknowledged_by"] == f"tg:{PRACTITIONER}"


# --- trust review: one open alert per person PER CASE; anyone in a case is alerted at once ---

def _webworld(tmp_path, library, **esc):
    import webworld as W

    store = Store(str(tmp_path / "w.db"))
    access = Access(store, library, W.config())
    access.seed()
    service = W.service_for(store, library)
    return W, store, access, service, Escalation(store, SafeguardingConfig.load(), leads=[W.LEAD], **esc)


def test_a_disclosure_in_another_workers_case_is_its_own_alert_for_that_worker(tmp_path, library):
    W, store, access, service, esc = _webworld(tmp_path, library)
    conv_a = W.invited(service, access, W.P1, W.FAM_A, "CASE-A", ["my stepdad hits me with a belt"])
    first = esc.due()
    esc.sent([a for n in first for a in n.alert_ids])
    (alert_a,) = {a for n in first for a in n.alert_ids}
    # the same parent answers in a case of P2's
    conv_b = W.invited(service, access, W.P2, W.FAM_A, "CASE-B", ["I want to kill myself"])
    again = esc.due()
    by_key = {r: n for n in again for r in n.recipients}
    assert f"tg:{W.P2}" in by_key and "kill myself" in by_key[f"tg:{W.P2}"].text     # P2 told at once
    assert not any(f"tg:{W.P1}" in n.recipients and "kill myself" in n.text for n in again)  # P1 never sees it
    (alert_b,) = {a for n in again if f"tg:{W.P2}" in n.recipients for a in n.alert_ids}
    assert alert_b != alert_a
    assert [store.alert(a)["conversation_id"] for a in (alert_a, alert_b)] == [conv_a, conv_b]
    assert "kill myself" not in store.alert_detail(alert_a)["words"]
    assert esc.may_handle(alert_b, f"tg:{W.P2}") and not esc.may_handle(alert_b, f"tg:{W.P1}")
    assert esc.acknowledge_person(alert_b, f"tg:{W.P2}")
    assert store.alert(alert_a)["acknowledged_at"] is None    # P2's /ack leaves P1's alert open


def test_a_childs_second_disclosure_in_a_worker_present_session_goes_at_once(tmp_path, library):
    W, store, access, service, esc = _webworld(tmp_path, library, repeat_minutes=15)
    child = W.with_child(service, access, W.P1, "CASE-A", ["OK", "House of Worries", "House of Good Things",
                                                            "my dad hits me"])
    first = esc.due()
    esc.sent([a for n in first for a in n.alert_ids])
    pid = store.conversation(child).person_id
    service.handle(pid, Input.from_text("he said he will kill me if I tell anyone"), input_key="second",
                   conversation_id=child)
    soon = datetime.now(timezone.utc) + timedelta(seconds=5)   # long before the 15-minute reminder
    after = esc.due(soon)
    assert after and all(set(n.alert_ids) == set(first[0].alert_ids) for n in after)
    assert any(f"tg:{W.LEAD}" in n.recipients and "kill me if I tell" in n.text for n in after)


def test_a_reminder_digest_lists_a_bounded_number_and_points_to_the_rest(tmp_path, library, safeguarding):
    """Trust review finding 12: 1,500 strangers' alerts made a reminder digest of ~424,000
    characters (108 Telegram messages per lead every 15 minutes). Now at most ``digest_lines``
    are listed, with how many more and where to see them; a new alert still goes first."""
    from bot.frontends.telegram.render import split_text

    store, service, access, esc = _world(tmp_path / "d.db", library, safeguarding, repeat_minutes=15,
                                         digest_lines=20)
    conv = _in_case(store, service, access)
    for i in range(45):
        service.handle(store.person(f"tg:{9000 + i}"), Input.from_text(DISCLOSURE + " " + "x" * 150))
    t = datetime.now(timezone.utc)
    for _ in range(3):  # first notices, then the flood digest
        ns = esc.due(t)
        esc.sent([a for n in ns for a in n.alert_ids], t)
        t += timedelta(seconds=61)
    t += timedelta(minutes=16)
    service.handle(store.person("tg:803"), Input.from_text("my mum hurts me"), conversation_id=conv)
    notices = esc.due(t)
    genuine = next(a["id"] for a in store.alerts() if a["conversation_id"] == conv)
    assert notices[0].alert_ids == [genuine] and not notices[0].digest   # the new alert is not behind it
    [digest] = [n for n in notices if n.digest]
    assert digest.repeat and len(digest.alert_ids) == 45                 # every alert is reminded ...
    listed = [line for line in digest.text.split("\n") if line.startswith("#")]
    assert len(listed) == 20                                             # ... 20 are listed
    assert "25 more open alerts" in digest.text and "restorative-bot alerts --open" in digest.text
    assert len(split_text(digest.text)) <= 2


def test_config_digest_lines(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("safeguarding:\n  leads: [1]\n  digest_lines: 5\n")
    assert Config.load(good).digest_lines == 5 and Config().digest_lines == 20
    bad = tmp_path / "bad.yaml"
    bad.write_text("safeguarding:\n  leads: [1]\n  digest_lines: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3:.*digest_lines"):
        Config.load(bad)


def _two_leads(db, library, safeguarding, admin):
    """A service with two safeguarding leads (LEAD, LEAD2) and an admin, for the checks that
    each lead can be reached."""
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"admin": [admin]}, leads=[LEAD, LEAD2]))
    access.seed()
    return service, access, Escalation(store, safeguarding, leads=[LEAD, LEAD2], repeat_minutes=15)


async def test_a_lead_the_bot_cannot_reach_is_named_at_start_to_the_other_leads_and_the_admins(
        tmp_path, library, safeguarding, caplog):
    """Telegram lets a bot write only to someone who opened a chat with it. A lead who never did
    would miss every alert, and a stranger's alert would reach nobody, shown only in the log:
    `serve` checks each lead as it starts, logs the unreachable as an error, and tells the
    leads it can reach and the admins, by name of the key (never any alert's words)."""
    ADMIN = 810
    service, access, esc = _two_leads(tmp_path / "leads.db", library, safeguarding, ADMIN)
    async with FakeBotAPI(strict_chats=True) as fake:
        fake.inject_message(LEAD, "hello")  # LEAD and the admin have opened a chat; LEAD2 has not
        fake.inject_message(ADMIN, "hello")
        caplog.set_level("WARNING")
        async with running_bot(service, fake=fake, access=access, escalation=esc) as h:
            unreachable = f"tg:{LEAD2}"
            assert [r.lead for r in caplog.records if r.getMessage().startswith("safeguarding lead cannot")] == [unreachable]
            for user in (LEAD, ADMIN):
                [notice] = [m.text for m in fake.messages(user) if "cannot be reached" in m.text]
                assert unreachable in notice and f"tg:{LEAD}" not in notice
            assert await h.frontend.check_leads(h.app.bot) == [unreachable]
            fake.inject_message(LEAD2, "hello")
            assert await h.frontend.check_leads(h.app.bot) == []


async def test_a_lead_who_blocks_the_bot_later_is_found_at_the_daily_check(tmp_path, library, safeguarding, caplog):
    """Leftover 7: the leads were checked only when `serve` started, so a lead who blocked the
    bot afterwards was found only when an alert to them failed. `serve` checks again once a
    day (on a clock the test moves) and tells the leads it can reach and the admins, as at start."""
    import asyncio

    ADMIN = 811
    service, access, esc = _two_leads(tmp_path / "daily.db", library, safeguarding, ADMIN)
    async with FakeBotAPI(strict_chats=True) as fake:
        for user in (LEAD, LEAD2, ADMIN):
            fake.inject_message(user, "hello")
        caplog.set_level("INFO")
        async with running_bot(service, fake=fake, access=access, escalation=esc) as h:
            probes = lambda: [c for c in fake.calls_to("sendChatAction")  # noqa: E731
                              if str(c.params.get("chat_id")) == str(LEAD2)]
            told = lambda user: [m.text for m in fake.messages(user) if "cannot be reached" in (m.text or "")]  # noqa: E731
            for user in (LEAD, LEAD2, ADMIN):  # their "hello" answered
                await fake.wait_for(lambda u=user: fake.messages(u))
            assert len(probes()) == 1 and told(LEAD) == [] and told(ADMIN) == []  # all well at start
            start = h.frontend.clock()
            fake.block_user(LEAD2)
            loop = asyncio.get_running_loop()
            mark = loop.time()
            await fake.wait_for(lambda: (h.frontend.alert_pass_started or 0) > mark)  # a whole pass since
            assert len(probes()) == 1 and told(LEAD) == []  # not probed at every pass
            h.frontend.clock = lambda: start + timedelta(hours=23, minutes=59)
            mark = loop.time()
            await fake.wait_for(lambda: (h.frontend.alert_pass_started or 0) > mark)
            assert len(probes()) == 1
            h.frontend.clock = lambda: start + timedelta(days=1, minutes=1)
            for user in (LEAD, ADMIN):
                [notice] = await fake.wait_for(lambda u=user: told(u))
                assert f"tg:{LEAD2}" in notice and f"tg:{LEAD}" not in notice
            mark = loop.time()
            await fake.wait_for(lambda: (h.frontend.alert_pass_started or 0) > mark)
            assert len(probes()) == 2 and len(told(LEAD)) == 1  # once that day, not at every pass
            assert [r.lead for r in caplog.records if r.getMessage().startswith("safeguarding lead cannot")] == \
                [f"tg:{LEAD2}"]
            assert not [r for r in caplog.records if told(LEAD)[0] in r.getMessage()]  # never the notice's text


# --- an alert that reaches nobody -----------------------------------------------------------

def test_an_alert_that_reached_nobody_waits_the_re_alert_interval_unless_someone_can_be_reached(
        tmp_path, library, safeguarding):
    store, service, access, esc = _world(tmp_path / "nobody.db", library, safeguarding)
    pid = store.person("tg:7001")
    service.handle(pid, Input.from_text(DISCLOSURE))
    [alert] = store.alerts()
    t0 = datetime.now(timezone.utc)
    [notice] = esc.due(t0)
    assert notice.recipients == [f"tg:{LEAD}"]
    assert esc.unreached([alert["id"]], notice.recipients, t0) == [alert["id"]]  # the first time: logged
    assert esc.unreached([alert["id"]], notice.recipients, t0) == []  # not again while nothing changed
    assert esc.unreached_keys == {f"tg:{LEAD}"}
    assert esc.due(t0 + timedelta(seconds=1)) == [] and esc.urgent(t0 + timedelta(seconds=1)) == []  # not every pass
    assert [n.alert_ids for n in esc.due(t0 + timedelta(minutes=15))] == [[alert["id"]]]  # the re-alert interval
    assert esc.reachable("tg:999") is False and esc.due(t0 + timedelta(seconds=2)) == []
    assert esc.reachable(f"tg:{LEAD}") is True  # the lead wrote to the bot: at once
    assert [n.alert_ids for n in esc.due(t0 + timedelta(seconds=2))] == [[alert["id"]]]
    assert esc.reached([alert["id"]]) == [alert["id"]] and esc.unreached_keys == frozenset()
    # someone new to try (a second lead, a reassigned case) does not wait either
    esc.unreached([alert["id"]], [f"tg:{LEAD}"], t0)
    esc.leads.append("tg:802")
    assert [n.recipients for n in esc.due(t0 + timedelta(seconds=3))] == [[f"tg:{LEAD}", "tg:802"]]
    store.acknowledge_alert(alert["id"], f"tg:{LEAD}")  # acknowledged: nothing left to wait on
    assert esc.due(t0 + timedelta(seconds=4)) == [] and esc.unreached_keys == frozenset()


async def test_an_alert_to_blocked_recipients_is_logged_once_and_goes_when_one_unblocks(
        tmp_path, library, safeguarding, caplog):
    """Leftover: an alert whose every recipient blocked the bot was tried at every pass of the
    alert loop, with an error line (Telegram's description) each time. Now each failure is
    logged once (class and code), the alert waits the re-alert interval, and it goes as soon as
    a recipient unblocks the bot."""
    import asyncio

    store, service, access, esc = _world(tmp_path / "blocked.db", library, safeguarding)
    async with FakeBotAPI() as fake:
        fake.block_user(LEAD, emit_update=False)
        fake.block_user(PRACTITIONER, emit_update=False)
        caplog.set_level("INFO")
        async with running_bot(service, fake=fake, access=access, escalation=esc, alert_poll_seconds=0.05) as h:
            await _join(h, access, FAMILY)
            await h.delivered(fake.inject_message(FAMILY, DISCLOSURE))
            tries = lambda: [c for c in fake.calls_to("sendMessage")  # noqa: E731
                             if str(c.params.get("chat_id")) in (str(LEAD), str(PRACTITIONER))]
            await fake.wait_for(lambda: len(tries()) == 2)
            loop = asyncio.get_running_loop()
            for _ in range(3):  # three whole passes of the alert loop since
                mark = loop.time()
                await fake.wait_for(lambda: (h.frontend.alert_pass_started or 0) > mark)
            assert len(tries()) == 2  # tried once each, not at every pass
            [alert] = store.alerts()
            assert alert["notify_count"] == 0 and alert["acknowledged_at"] is None
            nobody = [r for r in caplog.records if r.getMessage().startswith("safeguarding alert reached nobody")]
            failed = [r for r in caplog.records if r.getMessage() == "alert not delivered"]
            assert len(nobody) == 1 and nobody[0].alerts == [alert["id"]]
            assert sorted(r.to for r in failed) == sorted([f"tg:{LEAD}", f"tg:{PRACTITIONER}"])
            assert {(r.error, r.code) for r in failed} == {("Forbidden", 403)}
            fake.block_user(LEAD, False)  # the lead unblocks the bot: the alert goes now
            await fake.wait_for(lambda: _alerts_with(fake, LEAD, DISCLOSURE))
            await fake.wait_for(lambda: store.alerts()[0]["notify_count"] == 1)
            assert [r.alerts for r in caplog.records if r.getMessage() == "safeguarding alert reached someone again"] \
                == [[alert["id"]]]
            assert len([r for r in caplog.records if r.getMessage() == "alert not delivered"]) == 2  # still blocked: said once
    for record in caplog.records:  # Telegram's description and the words are in no line
        text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        assert "blocked by the user" not in text and DISCLOSURE not in text
