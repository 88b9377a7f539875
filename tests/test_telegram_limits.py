"""One person cannot slow the bot for everyone, and nothing is answered into a group
(issue 11, findings 6 and 7).

A per-person token bucket in the Telegram frontend (tight for people without a role, and
a daily cap on what is stored from them), coalesced refusal audits, and private chats
only: anything from a group is ignored and audited once.
"""

import threading
import time

import pytest

from bot.access import Access, Refused
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.frontends.telegram.limits import MEMBER, STRANGER, Limiter, RateLimits, _priority
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot

P1, FAM, FLOODER = 600, 601, 602
GROUP = -1001234567890


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_token_bucket_is_tight_for_strangers_generous_for_members_and_caps_a_day():
    clock = Clock()
    lim = Limiter(RateLimits(stranger_burst=3, stranger_per_minute=6, stranger_per_day=5, member_burst=10,
                             member_per_minute=60), clock=clock, members={P1})
    assert [lim.admit(FLOODER).allowed for _ in range(5)] == [True, True, True, False, False]
    assert [lim.admit(P1).allowed for _ in range(11)] == [True] * 10 + [False]
    clock.t += 10  # strangers earn one update per 10 s
    assert [lim.admit(FLOODER).allowed for _ in range(2)] == [True, False]
    clock.t += 60  # the bucket is full again, but the day's allowance (5) is nearly spent
    assert [lim.admit(FLOODER).allowed for _ in range(3)] == [True, False, False]
    assert lim.take_dropped() == {FLOODER: 5, P1: 1}
    assert lim.take_dropped() == {}


def test_a_person_over_the_limit_is_told_at_most_once_a_minute():
    clock = Clock()
    lim = Limiter(RateLimits(stranger_burst=1, stranger_per_minute=1), clock=clock)
    assert lim.admit(FLOODER).allowed
    told = [lim.admit(FLOODER).tell for _ in range(20)]
    assert told == [True] + [False] * 19
    clock.t += 61
    assert lim.admit(FLOODER).allowed and lim.admit(FLOODER).tell


def test_many_strangers_share_one_budget_and_few_slow_down_notices():
    clock = Clock()
    lim = Limiter(RateLimits(stranger_burst=5, strangers_burst=10, strangers_per_second=5), clock=clock, members={P1})
    verdicts = [lim.admit(7000 + i) for i in range(200)]  # 200 accounts, one message each
    assert sum(v.allowed for v in verdicts) == 10  # the shared burst, not 200
    assert sum(v.tell for v in verdicts) == 3  # a few notices, not 190 replies
    assert lim.admit(P1).allowed  # people with a role are not in that budget
    clock.t += 1
    assert sum(lim.admit(8000 + i).allowed for i in range(50)) == 5


def test_repeated_refusals_are_one_audit_row_with_a_count(store, library):
    access = Access(store, library, Config())
    for i in range(50):
        with pytest.raises(Refused):
            access.open_invite("tg:602", f"BogusCode{i:04d}BogusCode{i:04d}")
    rows = [r for r in store.audit_log() if r["actor"] == "tg:602"]
    assert [(r["action"], r["target"], r["detail"]) for r in rows] == [("invite.open.unknown", "invite:?", "(x50)")]


def _world(db, library):
    store = Store(db)
    service = ConversationService(store, library, safeguarding=SafeguardingConfig.load())
    access = Access(store, library, Config(roles={"practitioner": [P1]}, demo_flow="scaling-checkin"))
    access.seed()
    code, inv = access.invite(f"tg:{P1}", "scaling-checkin", "CASE-L")
    access.open_invite(f"tg:{FAM}", code)
    access.accept_invite(f"tg:{FAM}", inv, lambda p, f, c: service.start(p, f, case_id=c).conversation_id)
    return store, service, access


async def test_a_flood_from_one_account_puts_a_practitioners_cases_first_and_stores_little(tmp_path, library):
    """What the guard ensures, by order and by count, never by the clock (the time /cases
    takes during a flood is measured by ``scripts/chaos flood``): with the store thread
    busy, work for a person with a role waiting beside a flood's work runs first; the
    flood's stored inputs stay within its burst; the flooder is told once."""
    store, service, access = _world(tmp_path / "flood.db", library)
    inputs_before = store.db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
    async with running_bot(service, access=access, limits=RateLimits()) as h:
        executor = h.frontend._db
        executor._max_group = 1  # one call at a time: the order they run in is the order seen here
        busy = threading.Event()
        ran: list[int] = []
        submit, call = executor.submit, executor.call

        def recording_call(loop, fn):
            level = _priority.get()
            if level == STRANGER and not busy.blocked:
                # The flood's first store call stops the store thread (updates are kept in the
                # inbox before they are handled, so a thread busy from the start would hold the
                # polling too): everything after it waits in the queue.
                busy.blocked = True
                submit(busy.wait)  # alone (one call a group): this call and all after it wait
            return call(loop, lambda: (ran.append(level), fn())[1])

        busy.blocked = False
        executor.call = recording_call
        bulky = "i want to die " + "x" * 4000  # disclosure-like and 4 KB
        sent = [h.fake.inject_message(FLOODER, bulky) for _ in range(100)]
        try:
            await h.fake.wait_for(lambda: STRANGER in executor.waiting(), timeout=30)
            before = len(h.fake.messages(P1))
            uid = h.fake.inject_command(P1, "/cases")  # fetched next, kept (a call of the bot's own) and waiting
            sent += [h.fake.inject_message(FLOODER, bulky) for _ in range(2900)]
            await h.fake.wait_for(lambda: MEMBER in executor.waiting(), timeout=30)
            waiting = executor.waiting()
            start = len(ran)  # the store thread is stopped: nothing runs until busy is set
        finally:
            busy.set()
        await h.delivered(uid, timeout=30)
        assert "CASE-L" in h.fake.messages(P1)[before:][-1].text
        members_first = waiting.count(MEMBER)
        assert members_first >= 1 and ran[start:start + members_first] == [MEMBER] * members_first
        await h.fake.wait_for(lambda: h.fake.is_confirmed(sent[-1]), timeout=60)
        await h.frontend.refresh_members()
        told = [m for m in h.fake.messages(FLOODER) if "faster than I can read" in (m.text or "")]
        assert len(told) == 1
    stored = store.db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] - inputs_before - 1  # less /cases
    limits = RateLimits()
    assert stored <= limits.stranger_burst + 2  # the burst, and what refilled while the flood lasted
    [row] = [r for r in store.audit_log() if r["action"] == "rate.limited"]
    dropped = int(row["detail"].rsplit("(x", 1)[1].rstrip(")"))
    assert row["target"] == f"tg:{FLOODER}" and dropped + stored == 3000


LEAD = 603


async def test_a_disclosure_dropped_by_the_rate_limit_still_reaches_the_lead(tmp_path, library):
    """A child typing fast must never have "he hurts me" dropped unseen: the words over the
    limit are not handled or stored as an input, but they are screened, and an alert-tier
    disclosure among them raises the alert (with its words) and shows the help once."""
    store, service, access = _world(tmp_path / "dropped.db", library)
    esc = Escalation(store, service.safeguarding, leads=[LEAD])
    inputs_before = store.db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
    disclosure = "he hurts me when mum is out"
    async with running_bot(service, access=access, limits=RateLimits(), escalation=esc) as h:
        ids = [h.fake.inject_message(FLOODER, f"ok {i}") for i in range(40)]
        ids.append(h.fake.inject_message(FLOODER, disclosure))  # far over the burst: dropped
        ids += [h.fake.inject_message(FLOODER, f"ok again {i}") for i in range(20)]
        await h.fake.wait_for(lambda: all(h.fake.is_confirmed(u) for u in ids), timeout=30)
        await h.fake.wait_for(lambda: [m for m in h.fake.messages(LEAD) if disclosure in (m.text or "")], timeout=15)
        help_text = service.safeguarding.help_for(None)  # nobody knows who this is: both helps
        await h.fake.wait_for(lambda: [m for m in h.fake.messages(FLOODER) if help_text in (m.text or "")],
                              timeout=15)
    [alert] = store.alerts()
    assert disclosure in alert["words"] and alert["person_id"] == store.person(f"tg:{FLOODER}")
    # it was dropped, not handled: no transcript line and no input for it, and few inputs in all
    lines = store.db.execute("SELECT COUNT(*) FROM transcript WHERE text LIKE ?", (f"%{disclosure}%",)).fetchone()[0]
    assert lines == 0
    stored = store.db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] - inputs_before
    assert stored <= RateLimits().stranger_burst + 2


def _group_update(user, text=None, *, chat=GROUP, kind="supergroup", callback=None):
    sender = {"id": user, "is_bot": False, "first_name": "Staff"}
    message = {"message_id": 7, "date": int(time.time()), "chat": {"id": chat, "type": kind, "title": "Team chat"},
               "from": sender, "text": text or "hello"}
    if text and text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if callback:
        return {"callback_query": {"id": "99", "from": sender, "message": {**message, "from": {
            "id": 123456789, "is_bot": True, "first_name": "Bot"}}, "chat_instance": "1", "data": callback}}
    return {"message": message}


async def test_commands_in_a_group_are_ignored_and_audited_once(tmp_path, library):
    store, service, access = _world(tmp_path / "group.db", library)
    conv = store.conversations(person_id=store.person(f"tg:{FAM}"))[0]["id"]
    audit_before = len(store.audit_log())
    async with running_bot(service, access=access) as h:
        h.fake.clear_calls()
        ids = [h.fake.inject_update(_group_update(P1, text)) for text in (
            f"/transcript {conv}", "/invite scaling-checkin CASE-G", "/mydata file", "/cases", "/start",
            "i want to kill myself", "/ack 1")]
        ids.append(h.fake.inject_update(_group_update(FAM, "/mydata file")))
        ids.append(h.fake.inject_update(_group_update(FAM, callback="s:scaling-checkin")))
        ids.append(h.fake.inject_update(_group_update(P1, "/cases", chat=-42, kind="group")))
        await h.fake.wait_for(lambda: all(h.fake.is_confirmed(i) for i in ids), timeout=10)
        await h.fake.wait_for(lambda: len([r for r in store.audit_log() if r["action"] == "chat.group.ignored"]) == 2,
                              timeout=10)
        # the same person in a private chat is answered as usual (and after the group updates)
        before = len(h.fake.messages(P1))
        await h.delivered(h.fake.inject_command(P1, "/cases"))
        assert "CASE-L" in h.fake.messages(P1)[before:][-1].text
        sent = [c for c in h.fake.calls if c.method in ("sendMessage", "sendDocument", "editMessageText",
                                                          "answerCallbackQuery")]
        assert [c.params.get("chat_id") for c in sent] == [P1]
    audits = [(r["target"], r["detail"]) for r in store.audit_log() if r["action"] == "chat.group.ignored"]
    assert audits == [(f"chat:{GROUP}", "supergroup"), ("chat:-42", "group")]
    assert store.alerts() == [] and len(store.conversations()) == 1  # nothing from the group reached the service
    assert [r["action"] for r in store.audit_log()[audit_before:]] == ["chat.group.ignored", "chat.group.ignored",
                                                                       "cases.list"]


async def test_an_update_handed_straight_to_the_application_is_gated_by_its_handler(tmp_path, library):
    """The gate is asked before an update is queued or kept; one handed straight to
    python-telegram-bot's ``process_update`` (by a runner that does not ask it) is gated by
    the handler itself: a person over the limit is not answered and nothing of theirs is stored."""
    from telegram import Update

    service = ConversationService(Store(tmp_path / "straight.db"), library)
    limits = RateLimits(stranger_burst=1, stranger_per_minute=0.001, strangers_burst=100, strangers_per_second=100)
    async with running_bot(service, limits=limits) as h:
        def typed(update_id: int, text: str) -> Update:
            return Update.de_json({"update_id": update_id, "message": {
                "message_id": update_id, "date": int(time.time()), "text": text,
                "from": {"id": FLOODER, "is_bot": False, "first_name": "F"},
                "chat": {"id": FLOODER, "type": "private", "first_name": "F"}}}, h.app.bot)

        await h.app.process_update(typed(900_001, "hello"))  # within the limit: handled
        await h.app.process_update(typed(900_002, "hello again"))  # over it: turned away by the handler
        assert 900_001 in h.frontend.finished and 900_002 not in h.frontend.finished
        assert await h.frontend.db(service.store.seen_input, "tg:900001") is not None
        assert await h.frontend.db(service.store.seen_input, "tg:900002") is None
