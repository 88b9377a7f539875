"""Issue 12: the quiet review tier reaches the practitioner without interrupting the person;
nothing is left unread (reminders to the practitioner, then the supervisor, on a clock the
tests move); worries questions thank instead of interrupting; /missed is recorded and audited.

The detector here is a stand-in whose tiers the test chooses, so these tests pin the service,
not the lexicon (the lexicon's tiers are tested in test_safeguarding_detector_tiers.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from bot.access import Access, Refused
from bot.cli import main as cli
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.reading import Reading, split_tiers, tier_of
from bot.review.export import render, transcript_data
from bot.schedule import Schedule

ADMIN, SUP, P1, P2, FAM_A, FAM_B, LEAD = (f"tg:{i}" for i in (1, 2, 3, 4, 5, 6, 9))


@dataclass
class Found:
    concern: str
    tier: str
    matched: str


class Untiered:  # a detector object from before tiers: counts as alert
    concern = "physical_abuse"
    matched = "OLDWORD"


class StandIn:
    """REVIEWWORD is review tier, ALERTWORD alert tier, DANGERWORD immediate danger."""

    concerns = {"worry": "Worth a look", "physical_abuse": "Physical abuse", "immediate_danger": "Immediate danger"}

    def detect(self, text, context=None):
        out = []
        if "SHRUGWORD" in text:  # review, raised to alert after a low score (like the real lexicon's raise:)
            low = context is not None and context.get("score", 10) <= 1
            out.append(Found("self_harm_suicide", "alert" if low else "review", "SHRUGWORD"))
        if "DANGERWORD" in text:
            out.append(Found("immediate_danger", "alert", "DANGERWORD"))
        if "ALERTWORD" in text:
            out.append(Found("physical_abuse", "alert", "ALERTWORD"))
        if "OLDWORD" in text:
            out.append(Untiered())
        if "REVIEWWORD" in text:
            out.append(Found("worry", "review", "REVIEWWORD"))
        return out

    def response(self, audience):
        return "HELP: call 999"

    def offer(self):
        return "Would you like to carry on?"


class World:
    """SUP supervises P1 (case A, family FAM_A); P2 (case B, FAM_B) has no supervisor; LEAD is a lead."""

    def __init__(self, store, library, flow="scaling-checkin"):
        self.store = store
        self.service = ConversationService(store, library, safeguarding=StandIn())
        self.access = Access(store, library, Config(leads=[9], roles={"admin": [1], "supervisor": [2],
                                                                      "practitioner": [3, 4]}, teams={2: [3]}))
        self.access.seed()
        self.t0 = datetime.now(timezone.utc)
        self.clock = self.t0
        self.reading = Reading(store, self.access, leads=[9], read_within_hours=48, review_within_hours=24,
                               clock=lambda: self.clock)
        # answers are stamped with the real time, so these tests run on it: no quiet hours here
        # (tests/test_schedule.py moves a fixed clock through the reminders' quiet hours)
        self.schedule = Schedule(store, clock=lambda: self.clock, quiet_from="00:00", quiet_until="00:00")
        self.conv = {}
        for practitioner, family, label in ((P1, FAM_A, "A"), (P2, FAM_B, "B")):
            code, inv = self.access.invite(practitioner, flow, f"CASE-{label}")
            self.access.open_invite(family, code)
            self.conv[label] = self.access.accept_invite(
                family, inv, lambda pid, fid, cid, **kw: self.service.start(pid, fid, case_id=cid, **kw).conversation_id)

    def say(self, family, text):
        return self.service.handle(self.store.person(family), Input.from_text(text))

    def later(self, hours):
        self.clock = self.t0 + timedelta(hours=hours)
        return self.clock

    def deliver(self, hours):
        """What `serve` does at that time: write the due reminders as schedule rows, then
        send each once. Returns (recipient, kind, stage, text) of what was sent."""
        now = self.later(hours)
        self.reading.plan(now)
        out = []
        for item in self.schedule.due(now):
            if self.schedule.claim(item, now):
                self.schedule.sent(item, now)
                out.append((item.recipient, item.kind, ("practitioner", "supervisor")[item.seq - 1], item.text))
        return out


@pytest.fixture
def world(store, library):
    return World(store, library)


def test_tiers_a_concern_without_tier_is_alert():
    alert, review = split_tiers([Found("a", "review", "x"), Untiered(), Found("b", "alert", "y"), Found("c", "odd", "z")])
    assert [tier_of(c) for c in alert] == ["alert", "alert", "alert"] and [c.concern for c in review] == ["a"]


def test_a_review_item_reaches_the_practitioners_queue_without_interrupting(world):
    w = world
    reply = w.say(FAM_A, "Things are OK but I feel REVIEWWORD at night")
    # not interrupted: the answer is taken and the next question asked, no help, no hold, no alert
    assert [p.kind for p in reply.prompts][-1] == "question" and reply.step_id == "scale_now"
    assert not any(p.kind in ("safeguarding", "offer") for p in reply.prompts) and reply.alerts == []
    assert w.store.alerts() == []
    # the line is marked in the transcript, with its tier
    line = next(t for t in w.store.transcript(w.conv["A"]) if t["direction"] == "in" and "REVIEWWORD" in t["text"])
    assert (line["flagged"], line["tier"]) == (1, "review")
    # and it is at the top of the case practitioner's queue, with the reason
    items = w.access.worth_a_look(P1)
    assert [(i["conversation_id"], i["concern"], i["matched"], i["step_id"]) for i in items] == \
        [(w.conv["A"], "worry", "REVIEWWORD", "best_hopes")]
    assert w.access.worth_a_look(SUP) == items and w.access.worth_a_look(LEAD) == items
    assert w.access.worth_a_look(P2) == []  # not their case
    with pytest.raises(Refused):
        w.access.worth_a_look(FAM_A)
    w.say(FAM_B, "fine")
    case = w.access.case(P1, "CASE-A")
    assert [c["id"] for c in case] == [w.conv["A"]] and [i["id"] for i in case[0]["review_items"]] == [items[0]["id"]]
    # the exports show it as worth a look, not as an alert
    data = transcript_data(w.store, w.conv["A"])
    assert [t["tier"] for t in data["transcript"] if t["flagged"]] == ["review"]
    assert "worth a look" in render([data], "md") and "safeguarding flag" not in render([data], "md")
    # the practitioner marks it looked at; it leaves the queue
    assert w.reading.acknowledge(items[0]["id"], P2) == "unknown"
    assert w.reading.acknowledge(items[0]["id"], P1) == "ok"
    assert w.reading.acknowledge(items[0]["id"], P1) == "already"
    assert w.access.worth_a_look(P1) == []


def test_a_low_score_is_given_to_the_detector_and_can_raise_review_to_alert(world):
    w = world
    w.say(FAM_A, "calmer mornings")
    reply = w.say(FAM_A, "SHRUGWORD")  # at the scale question: free text, but no score yet
    assert reply.alerts == [] and [i["matched"] for i in w.access.worth_a_look(P1)] == ["SHRUGWORD"]
    w.say(FAM_A, "0")
    reply = w.say(FAM_A, "SHRUGWORD")  # after a score of 0: an alert, with help at once
    assert len(reply.alerts) == 1 and [p.kind for p in reply.prompts] == ["safeguarding", "offer"]
    w.say(FAM_B, "hopes")
    w.say(FAM_B, "8")
    assert w.say(FAM_B, "SHRUGWORD").alerts == []  # after an 8 it stays quiet


def test_alert_tier_still_interrupts_and_untiered_concerns_count_as_alert(world):
    w = world
    reply = w.say(FAM_A, "OLDWORD")
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"] and len(reply.alerts) == 1
    assert w.access.worth_a_look(P1) == []  # an alert is not also a review item


def test_review_words_outside_a_conversation_are_queued_quietly(world):
    w = world
    for text in ("hopes", "3", "why", "calmer", "7", "no"):
        w.say(FAM_B, text)
    assert w.store.active_conversation(w.store.person(FAM_B)) is None
    reply = w.say(FAM_B, "REVIEWWORD again")
    assert reply.prompts == [] and reply.alerts == []
    assert [i["conversation_id"] for i in w.access.worth_a_look(P2)] == [w.conv["B"]]


def test_unread_reminds_the_practitioner_then_the_supervisor(world):
    w = world
    w.say(FAM_A, "we want calmer mornings")
    assert [r["step_id"] for r in w.reading.unread()] == ["best_hopes"]
    assert w.deliver(47) == []
    sent = w.deliver(48.01)
    assert [s[:3] for s in sent] == [(P1, "unread", "practitioner")]
    assert f"#{w.conv['A']} (CASE-A)" in sent[0][3] and "calmer" not in sent[0][3]  # where, never the words
    assert w.deliver(60) == []  # reminded once, not every pass
    assert w.deliver(48.01 + 47) == []
    sent = w.deliver(48.01 + 48.01)
    assert [s[:3] for s in sent] == [(SUP, "unread", "supervisor")]
    assert w.deliver(200) == []
    assert [r["action"] for r in w.store.audit_log() if r["action"].startswith("reminder.")] == \
        ["reminder.unread.practitioner", "reminder.unread.supervisor"]


def test_unread_without_a_supervisor_goes_to_the_leads(world):
    w = world
    w.say(FAM_B, "some hopes")
    assert [s[:3] for s in w.deliver(49)] == [(P2, "unread", "practitioner")]
    assert [(s[0], s[2]) for s in w.deliver(98)] == [(LEAD, "supervisor")]


def test_reading_the_transcript_marks_answers_read_but_not_the_writer_nor_the_case_view(world):
    """Read means shown to someone who may read it: the transcript shows the words; the case
    view, /trend and the charts show scores and the review list only, so they mark nothing
    (review-sg finding 5: a glance at /case or /trend stopped every unread reminder)."""
    from bot.review import charts

    w = world
    w.say(FAM_A, "hopes A")
    w.say(FAM_B, "hopes B")
    w.access.transcript(FAM_A, w.conv["A"])  # the person reading their own words does not count
    assert sorted(r["conversation_id"] for r in w.reading.unread()) == [w.conv["A"], w.conv["B"]]
    w.access.transcript(P1, w.conv["A"])
    assert [r["conversation_id"] for r in w.reading.unread()] == [w.conv["B"]]
    w.access.case(P2, "CASE-B")
    charts.case_charts(w.access, P2, "CASE-B")  # /trend and the website's charts
    assert [r["conversation_id"] for r in w.reading.unread()] == [w.conv["B"]]
    w.access.transcript(P2, w.conv["B"])
    assert w.reading.unread() == [] and w.reading.due(w.later(500)) == []


def test_only_free_text_counts_as_unread(world):
    w = world
    w.say(FAM_A, "hopes")
    w.say(FAM_A, "3")  # a scale picked by its number is not free text
    assert [r["step_id"] for r in w.reading.unread()] == ["best_hopes"]


def test_unread_cli_lists_without_the_words(world, tmp_path):
    w = world
    w.say(FAM_A, "private words here")
    runner = CliRunner()
    out = runner.invoke(cli, ["unread", "--db", w.store.path])
    assert out.exit_code == 0, out.output
    assert f"conversation {w.conv['A']}#best_hopes" in out.output and "CASE-A" in out.output
    assert "private words" not in out.output
    out = runner.invoke(cli, ["unread", "--older-than", "48", "--db", w.store.path])
    assert out.exit_code == 0 and out.output.strip() == "Nothing unread for longer than 48 hours."


def test_without_consent_nobody_answers_are_not_counted_until_consent_except_flagged(store, library):
    w = World(store, library, flow="fgc-pre-conference")
    pid = store.person(FAM_A)
    while True:  # answer until the worries question: everything before it is not yet consented
        reply = w.service.current(pid)
        if reply.step_id == "worries":
            break
        w.say(FAM_A, "1" if reply.prompts[-1].options else "something")
    assert w.reading.unread() == []  # answers nobody may read yet: not counted
    w.say(FAM_A, "ALERTWORD at home")  # flagged: counted whatever the consent
    assert [r["step_id"] for r in w.reading.unread()] == ["worries"]


def test_a_flagged_answer_before_consent_is_read_by_the_worker_and_the_lead_and_nothing_else_is(store, library):
    """``without_consent: nobody``: the person is told their worker and the safeguarding lead see
    what worries us, and the reminders of the flagged line go to them; so those two may open
    that line (and the question it answers), audited, whatever the consent; the rest stays
    closed, to them and to everyone else. Before, /transcript was refused to all of them and the
    flagged line could never be read or cleared (review-sg finding 4)."""
    w = World(store, library, flow="fgc-pre-conference")
    pid = store.person(FAM_A)
    said = []
    while True:
        reply = w.service.current(pid)
        if reply.step_id == "worries":
            break
        said.append(f"private answer {len(said)}")
        w.say(FAM_A, "1" if reply.prompts[-1].options else said[-1])
    w.say(FAM_A, "REVIEWWORD at home")
    conv = w.conv["A"]
    with pytest.raises(Refused):
        w.access.transcript(SUP, conv)  # the supervisor was not named to the person: still refused
    for who in (P1, LEAD):
        data = w.access.transcript(who, conv)
        assert [(t["from"], t["step_id"]) for t in data["transcript"]] == [("bot", "worries"), ("person", "worries")]
        assert data["transcript"][-1]["text"] == "REVIEWWORD at home" and data["transcript"][-1]["tier"] == "review"
        assert [a["step_id"] for a in data["answers"]] == ["worries"] and data["scores"] == {}
        assert data["withheld_note"] == "flagged_only"
        for fmt in ("md", "html"):
            out = render([data], fmt)
            assert "Only what raised a safeguarding concern is shown" in out
            assert not any(words in out for words in said)
    assert [r["actor"] for r in store.audit_log() if r["action"] == "transcript.read.flagged_only"] == [P1, LEAD]
    assert w.reading.unread() == []  # the flagged line has been read; the rest is not yet counted


def _to_step(w, pid, step_id, say):
    while True:
        reply = w.service.current(pid)
        if reply.step_id == step_id:
            return
        w.say(FAM_A, say(reply))


def test_the_flagged_only_view_shows_the_flagged_line_not_another_answer_to_the_same_question(store, library):
    """Before consent the worker and the lead see the flagged lines and the question each
    answers, nothing else: not an earlier answer to that question the person replaced with
    /back (unflagged, never shared), nor an unflagged answer that replaced a flagged one."""
    w = World(store, library, flow="fgc-pre-conference")
    pid = store.person(FAM_A)
    _to_step(w, pid, "worries", lambda r: "1" if r.prompts[-1].options else "something private")
    w.say(FAM_A, "my first private worry")
    w.service.handle(pid, Input("back"))
    assert w.service.current(pid).step_id == "worries"
    w.say(FAM_A, "REVIEWWORD at home")
    conv = w.conv["A"]
    for who in (P1, LEAD):
        data = w.access.transcript(who, conv)
        assert [(t["from"], t["step_id"]) for t in data["transcript"]] == [("bot", "worries"), ("person", "worries")]
        assert data["transcript"][-1]["text"] == "REVIEWWORD at home"
        out = "\n".join(render([data], fmt) for fmt in ("md", "html"))
        assert "my first private worry" not in out and "something private" not in out
    # the other way round: the flagged words replaced by unflagged ones
    w.service.handle(pid, Input("back"))
    assert w.service.current(pid).step_id == "worries"
    w.say(FAM_A, "my second private worry")
    data = w.access.transcript(P1, conv)
    assert [t["text"] for t in data["transcript"] if t["from"] == "person"] == ["REVIEWWORD at home"]
    assert data["answers"] == []  # the answer now is the unflagged one
    assert "my second private worry" not in "\n".join(render([data], fmt) for fmt in ("md", "html", "json"))


def test_the_flagged_only_view_does_not_fill_questions_in_with_answers_not_shown(store, library):
    """"What puts it at 3 and not lower?" tells a score kept back: in the flagged-only view the
    questions (those listed as not shown, and the one the flagged line answers) are shown as
    the flow writes them, with nothing filled in."""
    w = World(store, library, flow="fgc-review")
    pid = store.person(FAM_A)
    _to_step(w, pid, "one_point_up", lambda r: "3" if r.step_id == "plan_scale" else
             ("1" if r.prompts[-1].options else "something private"))
    w.say(FAM_A, "REVIEWWORD at home")
    data = w.access.transcript(P1, w.conv["A"])
    assert data["withheld_note"] == "flagged_only" and data["scores"] == {}
    [asked] = [t["text"] for t in data["transcript"] if t["from"] == "bot"]
    assert asked == "What would be different at …?"
    assert "What puts it at … and not lower?" in [q["question_en"] for q in data["withheld"]]
    out = "\n".join(render([data], fmt) for fmt in ("md", "html", "json"))
    assert " at 3" not in out and " at 4" not in out and "something private" not in out


def test_the_purge_archive_keeps_of_an_unshared_conversation_only_its_flagged_lines(store, library):
    """`purge --export` writes what `export` would (Access.archive_record): of a conversation not
    shared with the people who run the service, its flagged lines and the questions they answer
    (what the safeguarding leads may read), or nothing at all; nothing audited as read."""
    w = World(store, library, flow="fgc-pre-conference")
    pid = store.person(FAM_A)
    _to_step(w, pid, "worries", lambda r: "1" if r.prompts[-1].options else "something private")
    assert w.access.archive_record(w.conv["A"]) is None  # nothing flagged: not written
    w.say(FAM_A, "REVIEWWORD at home")
    data = w.access.archive_record(w.conv["A"])
    assert data["withheld_note"] == "flagged_only"
    assert [t["text"] for t in data["transcript"] if t["from"] == "person"] == ["REVIEWWORD at home"]
    assert "something private" not in render([data], "json")
    assert not [r for r in store.audit_log() if r["action"].startswith("transcript.read")]


def test_review_items_remind_the_practitioner_then_the_supervisor(world):
    w = world
    w.say(FAM_A, "REVIEWWORD")
    assert [s for s in w.deliver(23.9) if s[1] == "review"] == []
    sent = [s for s in w.deliver(24.01) if s[1] == "review"]
    assert [(s[0], s[2]) for s in sent] == [(P1, "practitioner")] and "R1" in sent[0][3]
    sent = [s for s in w.deliver(24.01 + 24.01) if s[1] == "review"]
    assert [(s[0], s[2]) for s in sent] == [(SUP, "supervisor")]
    assert [s for s in w.deliver(300) if s[1] == "review"] == []


def test_acknowledged_review_items_are_not_reminded(world):
    w = world
    w.say(FAM_A, "REVIEWWORD")
    w.reading.acknowledge(w.access.worth_a_look(P1)[0]["id"], P1)
    assert [r for r in w.reading.due(w.later(30)) if r.kind == "review"] == []


def test_worries_question_thanks_instead_of_interrupting_but_still_alerts(store, library):
    w = World(store, library, flow="three-columns")
    reply = w.say(FAM_A, "ALERTWORD when he drinks")
    assert [p.kind for p in reply.prompts][0] == "message"
    assert reply.prompts[0].text.splitlines() == [
        "Thank you for telling us. We will make sure your worker sees this.",
        "If you or anyone else is in danger right now, call 999."]
    assert reply.step_id == "working_well" and len(reply.alerts) == 1
    assert [a["words"] for a in store.alerts()] == ["ALERTWORD when he drinks"]
    assert not any(p.kind in ("safeguarding", "offer") for p in reply.prompts)
    # review stays quiet there too
    reply = w.say(FAM_A, "REVIEWWORD")
    assert reply.step_id == "needs_to_happen" and reply.alerts == [] and reply.prompts[-1].kind == "question"
    # an alert at a question that does not ask for worries interrupts as ever
    reply = w.say(FAM_A, "ALERTWORD")
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"]


def test_immediate_danger_at_a_worries_question_gets_the_full_response(store, library):
    w = World(store, library, flow="three-columns")
    reply = w.say(FAM_A, "DANGERWORD")
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"] and len(reply.alerts) == 1


def test_missed_disclosure_is_recorded_verbatim_audited_and_listed(world):
    w = world
    w.say(FAM_A, "my uncle is weird with me")
    words = "my uncle is weird with me — he said \"our secret\""
    missed = w.reading.record_missed(P1, w.conv["A"], "best_hopes", words)
    assert [(m["id"], m["conversation_id"], m["step_id"], m["words"], m["reported_by"])
            for m in w.store.missed_disclosures()] == [(missed, w.conv["A"], "best_hopes", words, P1)]
    audit = [r for r in w.store.audit_log() if r["action"] == "safeguarding.missed"]
    # the audit names the record, never the words (it is kept longer, in clear, and never erased)
    assert [(r["actor"], r["target"], r["detail"]) for r in audit] == \
        [(P1, f"conversation:{w.conv['A']}", f"missed:{missed} step best_hopes")]
    # a lead may too; a practitioner without the case, or a family member, may not (and that is audited)
    w.reading.record_missed(LEAD, w.conv["A"], None, "lead saw it")
    for who in (P2, FAM_A):
        with pytest.raises(Refused):
            w.reading.record_missed(who, w.conv["A"], None, "no")
    assert [r["actor"] for r in w.store.audit_log() if r["action"] == "safeguarding.missed.refused"] == [P2, FAM_A]
    assert len(w.store.missed_disclosures()) == 2
    out = CliRunner().invoke(cli, ["safeguarding", "missed", "--json", "--db", w.store.path])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [(r["id"], r["words"], r["reported_by"], r["step"]) for r in rows] == \
        [(missed, words, P1, "best_hopes"), (missed + 1, "lead saw it", LEAD, None)]


def test_answers_typed_on_the_workers_own_account_are_not_unread(world):
    w = world
    p1 = w.store.person(P1)
    case_id = w.store.case(p1, "CASE-A")["id"]
    conv = w.service.start(p1, "scaling-checkin", case_id=case_id).conversation_id
    w.service.handle(p1, Input.from_text("the child said: more time with dad"), conversation_id=conv)
    w.say(FAM_A, "family words")
    assert [r["conversation_id"] for r in w.reading.unread()] == [w.conv["A"]]


def test_a_reminder_about_many_items_stays_short(world):
    w = world
    for i in range(30):
        w.service.handle(w.store.person(f"tg:{1000 + i}"), Input.from_text("REVIEWWORD"))  # no role, no case
    [reminder] = w.reading.due(w.later(25))
    assert (reminder.recipient, len(reminder.ids)) == (LEAD, 30)
    assert "R20, …" in reminder.text and "R21" not in reminder.text and len(reminder.text) < 1000


# -- issue 15: these reminders are rows of the one schedule table ------------------------------
def _rows(store, kind=None, states=("pending", "sending", "sent", "cancelled")):
    return [r for r in store.scheduled_list(states=states, limit=500) if kind is None or r["kind"] == kind]


def test_unread_and_review_reminders_are_schedule_rows_a_restart_loses_nothing_and_sends_once(world):
    from bot.store import Store

    w = world
    w.say(FAM_A, "we want calmer mornings REVIEWWORD")
    path = w.store.path
    now = w.later(49)
    ids = w.reading.plan(now)
    assert [(r["id"], r["kind"], r["seq"], r["state"]) for r in _rows(w.store)] == \
        [(ids[0], "review", 1, "pending"), (ids[1], "unread", 1, "pending")]
    assert w.reading.plan(now) == [] and w.reading.plan(w.later(60)) == []  # written once
    for r in _rows(w.store):  # to the practitioner, naming the case reference, never the answer
        assert r["person_id"] == w.store.person(P1) and "CASE-A" in r["text"]
        assert "calmer" not in r["text"] and "REVIEWWORD" not in r["text"] and "mornings" not in r["text"]
    w.store.close()  # the bot stops between writing and sending
    store = Store(path)
    schedule = Schedule(store, clock=lambda: now, quiet_from="00:00", quiet_until="00:00")
    schedule.recover(now)
    first = schedule.due(now)
    assert [i.id for i in first] == ids
    assert all(schedule.claim(i, now) for i in first) and not schedule.claim(first[0], now)
    store.close()  # and crashes after claiming, before Telegram confirmed
    later = now + timedelta(minutes=11)
    store = Store(path)
    schedule = Schedule(store, clock=lambda: later, quiet_from="00:00", quiet_until="00:00")
    assert schedule.recover(later) == 2
    sent = [i for i in schedule.due(later) if schedule.claim(i, later)]
    for i in sent:
        schedule.sent(i, later)
    assert [i.id for i in sent] == ids
    assert [r["state"] for r in _rows(store)] == ["sent", "sent"]
    assert store.unread_answers()[0]["reminded_at"] is not None  # the supervisor's clock started when sent
    store.close()
    store = Store(path)
    reading = Reading(store, None, leads=[9], clock=lambda: later)
    schedule = Schedule(store, clock=lambda: later, quiet_from="00:00", quiet_until="00:00")
    assert reading.plan(later + timedelta(hours=23)) == [] and schedule.due(later + timedelta(hours=23)) == []
    assert [r.stage for r in reading.due(later + timedelta(hours=24))] == ["supervisor"]  # the review item, in time
    store.close()


def test_a_practitioners_reminder_waits_for_their_quiet_hours_and_the_supervisor_counts_from_when_it_fell_due(world):
    from zoneinfo import ZoneInfo

    w = world
    w.schedule = Schedule(w.store, clock=lambda: w.clock)  # the usual quiet hours, 20:00 to 08:00 London
    w.say(FAM_A, "we want calmer mornings")
    london = ZoneInfo("Europe/London")
    day = (w.t0 + timedelta(hours=49)).astimezone(london).date() + timedelta(days=1)
    evening = datetime.combine(day, datetime.min.time().replace(hour=21), tzinfo=london)
    morning = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=8), tzinfo=london)
    hours = lambda t: (t - w.t0).total_seconds() / 3600  # noqa: E731
    assert w.deliver(hours(evening)) == []  # written at 21:00, and it waits
    [row] = _rows(w.store, "unread")
    assert datetime.fromisoformat(row["due_at"].replace("Z", "+00:00")) == morning
    assert w.deliver(hours(morning - timedelta(minutes=1))) == []
    assert [s[:3] for s in w.deliver(hours(morning))] == [(P1, "unread", "practitioner")]
    # 48 h from when it fell due (21:00), so 21:00 two days on, in the supervisor's quiet hours too: 08:00
    assert w.deliver(hours(morning + timedelta(hours=47, minutes=59))) == []
    assert [s[:3] for s in w.deliver(hours(morning + timedelta(hours=48)))] == [(SUP, "unread", "supervisor")]


def test_a_reminder_is_dropped_when_everything_in_it_was_read_or_acknowledged_before_it_went_out(world):
    w = world
    w.schedule = Schedule(w.store, clock=lambda: w.clock)  # the usual quiet hours
    w.say(FAM_A, "we want calmer mornings REVIEWWORD")
    from zoneinfo import ZoneInfo

    day = (w.t0 + timedelta(hours=49)).astimezone(ZoneInfo("Europe/London")).date() + timedelta(days=1)
    evening = datetime.combine(day, datetime.min.time().replace(hour=22), tzinfo=ZoneInfo("Europe/London"))
    assert w.deliver((evening - w.t0).total_seconds() / 3600) == []  # written, waiting for the morning
    w.access.transcript(P1, w.conv["A"])  # read that night
    w.reading.acknowledge(w.access.worth_a_look(P1)[0]["id"], P1)
    assert w.deliver((evening - w.t0).total_seconds() / 3600 + 12) == []
    assert [(r["kind"], r["state"]) for r in _rows(w.store)] == [("review", "cancelled"), ("unread", "cancelled")]
    assert w.deliver(500) == []


def test_stop_turns_off_a_persons_own_reminders_not_a_practitioners_duty_reminders(world):
    w = world
    w.say(FAM_A, "we want calmer mornings")
    w.schedule.stop(w.store.person(P1))
    assert [s[:3] for s in w.deliver(49)] == [(P1, "unread", "practitioner")]


def _terminal_case(store, library, supervised=True):
    """A case held in the terminal (the practitioner has no Telegram chat), whose family
    answers over Telegram; with ``supervised`` the holder's supervisor is tg:2. The
    conversation's id."""
    from bot.conversation import ConversationService
    from bot.engine.runner import Input

    service = ConversationService(store, library, safeguarding=StandIn())
    with store.transaction():
        holder = store.person("console:worker")  # a case held in the terminal
        store.grant_role(holder, "practitioner", "test")
        if supervised:
            sup = store.person(SUP)
            store.grant_role(sup, "supervisor", "test")
            store.add_team(sup, holder)
        case = store.create_case(holder, "TERM-1")
    pid = store.person("tg:77")
    conv = service.start(pid, "scaling-checkin", case_id=case).conversation_id
    service.handle(pid, Input.from_text("calmer mornings REVIEWWORD"))
    return conv


def test_a_case_held_in_the_terminal_is_undeliverable_and_the_next_stage_is_told_at_once(store, library):
    """Leftover 1: no row was written for a holder `serve` cannot reach (a case held in the
    terminal), so nothing ever marked the practitioner's stage done and the supervisor, then
    the leads, were never told: the chain stalled. Now the holder's row is written
    'undeliverable' at once (never in the due set), as for a practitioner who blocked the bot."""
    _terminal_case(store, library)
    t0 = datetime.now(timezone.utc)
    clock = {"now": t0}
    reading = Reading(store, None, leads=[9], clock=lambda: clock["now"])
    schedule = Schedule(store, clock=lambda: clock["now"], quiet_from="00:00", quiet_until="00:00")

    def deliver(hours, unreachable=()):
        now = clock["now"] = t0 + timedelta(hours=hours)
        reading.plan(now)
        out = []
        for item in schedule.due(now):
            if schedule.claim(item, now):
                if item.recipient in unreachable:
                    schedule.undeliverable(item, now)
                    continue
                schedule.sent(item, now)
                out.append((item.recipient, item.kind, item.seq, item.text))
        return out

    assert [r.recipient for r in reading.due(t0 + timedelta(hours=25))] == ["console:worker"]
    assert deliver(25) == []  # the holder's reminder: written, and undeliverable at once
    assert [(r["kind"], r["seq"], r["state"]) for r in _rows(store, states=("undeliverable",))] == [("review", 1, "undeliverable")]
    assert _rows(store, states=("pending", "sending", "sent")) == []
    sent = deliver(25.01)  # the next pass: the supervisor, not a day later
    assert [s[:3] for s in sent] == [(SUP, "review", 2)] and "cannot reach" in sent[0][3]
    assert "REVIEWWORD" not in sent[0][3]
    assert deliver(49) == []  # the unread answer: the holder again, undeliverable
    assert [s[:3] for s in deliver(49.01, unreachable={SUP})] == []  # the supervisor blocked the bot
    assert [s[:3] for s in deliver(49.02)] == [(LEAD, "unread", 2)]  # so the leads
    assert deliver(500) == []
    assert [r["action"] for r in store.audit_log() if r["action"].startswith("reminder.")] == [
        "reminder.review.practitioner.undeliverable", "reminder.review.supervisor",
        "reminder.unread.practitioner.undeliverable", "reminder.unread.supervisor.undeliverable",
        "reminder.unread.supervisor"]


def test_a_case_held_in_the_terminal_without_a_supervisor_reaches_the_leads(store, library):
    _terminal_case(store, library, supervised=False)
    t0 = datetime.now(timezone.utc)
    reading = Reading(store, None, leads=[9], clock=lambda: t0)
    schedule = Schedule(store, clock=lambda: t0, quiet_from="00:00", quiet_until="00:00")
    reading.plan(t0 + timedelta(hours=49))
    assert schedule.due(t0 + timedelta(hours=49)) == []
    assert sorted((r.recipient, r.kind, r.stage) for r in reading.due(t0 + timedelta(hours=49.01))) == \
        [(LEAD, "review", "supervisor"), (LEAD, "unread", "supervisor")]


def test_review_items_before_consent_reach_only_the_worker_and_the_leads(tmp_path, library):
    """Trust review finding 10: the young person was told only "your worker and the person at
    the council who keeps children safe will be told"; the worker's supervisor, who may not read
    the conversation, saw its review item (the words and the step) on /review and /case."""
    import webworld as W
    from bot.store import Store

    store = Store(str(tmp_path / "r.db"))
    access = Access(store, library, W.config())
    access.seed()
    service = W.service_for(store, library)
    conv = W.invited(service, access, W.P1, W.FAM_B, "FGC-3", ["/skip", "/skip", "/skip", "I get scared sometimes when mum and dad argue"],
                     flow="fgc-young-person", respondent="young_person")
    assert not access.can_read(f"tg:{W.SUP}", conv)
    items = store.review_items(conversation_ids=[conv])
    assert items and all(i["matched"] for i in items)
    ids = sorted(i["id"] for i in items)
    on_review = {who: sorted(i["id"] for i in access.worth_a_look(f"tg:{who}") if i["conversation_id"] == conv)
                 for who in (W.P1, W.SUP, W.LEAD)}
    assert on_review == {W.P1: ids, W.SUP: [], W.LEAD: ids}
    on_case = {who: sorted(f["id"] for c in access.case(f"tg:{who}", "FGC-3") for f in c["review_items"])
               for who in (W.P1, W.SUP)}
    assert on_case == {W.P1: ids, W.SUP: []}


def test_the_family_reading_their_own_words_is_not_shown_which_were_marked(world):
    """The quiet tier stays quiet: a family member's own /transcript (and /mydata file, perhaps
    on a shared phone) carries no safeguarding marks and no 'worth a look' list; the worker's
    copy of the same conversation has both."""
    w = world
    w.say(FAM_A, "Things are OK but I feel REVIEWWORD at night")
    staff = w.access.transcript(P1, w.conv["A"])
    assert [(t["text"], t["tier"]) for t in staff["transcript"] if t["flagged"]] == \
        [("Things are OK but I feel REVIEWWORD at night", "review")]
    assert [i["matched"] for i in staff["worth_a_look"]] == ["REVIEWWORD"]
    own = w.access.transcript(FAM_A, w.conv["A"])
    assert own["worth_a_look"] == [] and [t for t in own["transcript"] if t["flagged"] or t["tier"]] == []
    assert "Things are OK but I feel REVIEWWORD at night" in [t["text"] for t in own["transcript"]]
    for fmt in ("md", "html", "json"):
        assert "REVIEWWORD" in render([own], fmt) and "worth a look" not in render([own], fmt).lower()


def test_before_consent_a_reminder_is_escalated_to_the_leads_not_to_a_supervisor_who_may_not_open_it(store, library):
    """The supervisor may not read a conversation the young person has not agreed to share,
    so a reminder naming its review item (or its flagged unread answer) would send them to
    something /review and /case do not show them: it goes to the safeguarding leads instead."""
    w = World(store, library, flow="fgc-young-person")
    for text in ("/skip", "/skip", "/skip", "REVIEWWORD"):
        w.say(FAM_A, text)
    assert not w.access.can_read(SUP, w.conv["A"]) and w.access.worth_a_look(P1)
    sent = w.deliver(24.01)
    assert [(s[0], s[1], s[2]) for s in sent] == [(P1, "review", "practitioner")]
    # two days on, the flagged answer (counted as unread even before consent) reminds the worker
    sent = w.deliver(48.02)
    assert [(s[0], s[1], s[2]) for s in sent] == [(P1, "unread", "practitioner"), (LEAD, "review", "supervisor")]
    sent = w.deliver(48.02 + 48.1)
    assert [(s[0], s[1], s[2]) for s in sent] == [(LEAD, "unread", "supervisor")]
    assert w.deliver(300) == []


# -- review-sg findings: nobody who cannot act holds the reminders back ----------------------
def _deliver_failing(w, hours, unreachable):
    """As World.deliver, but Telegram refuses every chat in ``unreachable`` for good (403: they
    blocked the bot): those rows are undeliverable. Returns what was sent, as World.deliver."""
    now = w.later(hours)
    w.reading.plan(now)
    out = []
    for item in w.schedule.due(now):
        if w.schedule.claim(item, now):
            if item.recipient in unreachable:
                w.schedule.undeliverable(item, now)
                continue
            w.schedule.sent(item, now)
            out.append((item.recipient, item.kind, ("practitioner", "supervisor")[item.seq - 1], item.text))
    return out


def test_a_practitioner_who_blocked_the_bot_does_not_hold_back_the_supervisor(world):
    """Finding r6: the practitioner's reminder failed with 403 on every pass and went back to
    pending, and the supervisor's turn waited for it to be sent: nobody was ever told."""
    w = world
    w.say(FAM_A, "we want calmer mornings REVIEWWORD")
    assert _deliver_failing(w, 24.01, {P1}) == []  # the review item's reminder: P1 blocked the bot
    assert [(r["kind"], r["seq"], r["state"]) for r in _rows(w.store, states=("undeliverable",))] == \
        [("review", 1, "undeliverable")]
    sent = _deliver_failing(w, 24.02, {P1})  # the next pass: the supervisor at once, not a day later
    assert [s[:3] for s in sent] == [(SUP, "review", "supervisor")]
    assert "cannot reach" in sent[0][3] and "R1" in sent[0][3] and "REVIEWWORD" not in sent[0][3]
    assert _deliver_failing(w, 48.01, {P1}) == []  # the unread answer: P1 again
    sent = _deliver_failing(w, 48.02, {P1})
    assert [s[:3] for s in sent] == [(SUP, "unread", "supervisor")] and "calmer" not in sent[0][3]
    assert _deliver_failing(w, 400, {P1}) == []  # once each: nothing tried again, nothing repeated
    assert [r["action"] for r in w.store.audit_log() if r["action"].startswith("reminder.")] == [
        "reminder.review.practitioner.undeliverable", "reminder.review.supervisor",
        "reminder.unread.practitioner.undeliverable", "reminder.unread.supervisor"]


def test_a_supervisor_who_cannot_be_reached_either_passes_to_the_leads_once(world):
    w = world
    w.say(FAM_A, "REVIEWWORD")
    assert _deliver_failing(w, 24.01, {P1, SUP}) == []
    assert _deliver_failing(w, 24.02, {P1, SUP}) == []  # the supervisor: blocked too
    assert [s[:3] for s in _deliver_failing(w, 24.03, {P1, SUP})] == [(LEAD, "review", "supervisor")]
    w.say(FAM_A, "5")
    assert _deliver_failing(w, 300, {P1, SUP, LEAD}) == []
    assert [(r["kind"], r["seq"], r["person_id"]) for r in _rows(w.store, states=("undeliverable", "sent"))
            if r["kind"] == "review"] == [("review", 1, w.store.person(P1)), ("review", 2, w.store.person(SUP)),
                                         ("review", 2, w.store.person(LEAD))]


def test_the_supervisors_clock_starts_when_the_practitioners_reminder_fell_due_not_when_it_went(world):
    """A practitioner's days off delay their own reminder, never their supervisor's."""
    from zoneinfo import ZoneInfo

    w = world
    w.say(FAM_A, "we want calmer mornings")
    first_due = (w.t0 + timedelta(hours=49)).astimezone(ZoneInfo("Europe/London")).weekday()
    for d in range(5):  # P1 keeps the next five days free of reminders
        assert w.schedule.set_day(w.store.person(P1), (first_due + d) % 7, True)
    assert w.deliver(49) == []  # due, and waiting for a day P1 works
    assert w.deliver(96.9) == []
    assert [s[:3] for s in w.deliver(97.1)] == [(SUP, "unread", "supervisor")]  # 48 h after it fell due
    assert sorted((r["seq"], r["state"]) for r in _rows(w.store, "unread")) == [(1, "pending"), (2, "sent")]
    assert [s[:3] for s in w.deliver(49 + 24 * 6)] == [(P1, "unread", "practitioner")]  # theirs, on their day back


def test_a_revoked_practitioner_is_not_reminded_and_cannot_ack(world):
    """Finding r3: after their role was revoked the holder still got the reminders, and /ack R1
    stopped every reminder, although they may no longer read the conversation."""
    w = world
    w.say(FAM_A, "we want calmer mornings REVIEWWORD")
    w.say(FAM_B, "some hopes REVIEWWORD")
    w.access.revoke(None, P1, "practitioner")
    w.access.revoke(None, P2, "practitioner")
    assert not w.access.can_read(P1, w.conv["A"])
    item_a = next(i["id"] for i in w.store.review_items() if i["conversation_id"] == w.conv["A"])
    assert w.reading.acknowledge(item_a, P1) == "unknown"
    assert w.store.review_item(item_a)["acknowledged_at"] is None
    # nobody may act on the cases now: P1's supervisor is told (P2 has none: the leads), saying why
    sent = w.deliver(24.01)
    assert sorted(s[:3] for s in sent) == [(SUP, "review", "practitioner"), (LEAD, "review", "practitioner")]
    assert all("does not have access to them now" in s[3] and "REVIEWWORD" not in s[3] for s in sent)
    assert sorted(s[:3] for s in w.deliver(48.02)) == [(SUP, "unread", "practitioner"), (LEAD, "review", "supervisor"),
                                                       (LEAD, "unread", "practitioner")]
    assert sorted(s[:3] for s in w.deliver(96.03)) == [(LEAD, "unread", "supervisor")]
    assert P1 not in {r.recipient for r in w.reading.due(w.later(500))} and w.deliver(500) == []
    assert w.reading.acknowledge(item_a, SUP) == "ok"  # the supervisor still may


def test_a_reminder_waiting_for_the_old_holder_goes_to_the_new_one_after_reassignment(world):
    """Finding r9: a reminder written for P1 (held by P1's days off) still went to P1 after the
    case moved to P2, and P2 was never reminded: stage 1 was spent on P1."""
    from zoneinfo import ZoneInfo

    w = world
    w.say(FAM_A, "we want calmer mornings REVIEWWORD")
    day = (w.t0 + timedelta(hours=24.01)).astimezone(ZoneInfo("Europe/London")).weekday()
    for d in range(3):
        w.schedule.set_day(w.store.person(P1), (day + d) % 7, True)
    assert w.deliver(24.01) == []  # written for P1, waiting
    w.access.reassign(None, "CASE-A", P2)
    sent = w.deliver(24.02)
    assert [s[:3] for s in sent] == [(P2, "review", "practitioner")]
    assert sorted((r["id"], r["seq"], r["state"], r["person_id"]) for r in _rows(w.store, "review"))[-2:] == \
        [(1, 1, "cancelled", w.store.person(P1)), (2, 1, "sent", w.store.person(P2))]
    assert [s[:3] for s in w.deliver(48.04)] == [(P2, "unread", "practitioner"), (LEAD, "review", "supervisor")]
    assert [s[:3] for s in w.deliver(24 * 7)] == [(LEAD, "unread", "supervisor")]
    assert [r.recipient for r in w.reading.due(w.later(900))] == []
    assert not any(r["person_id"] == w.store.person(P1) and r["state"] == "sent" for r in _rows(w.store))


def test_practice_conversations_remind_nobody(store, library):
    """Finding r7: a practice conversation (a trial, whose alerts go to nobody) wrote review
    items and serve reminded the safeguarding leads of them; with a case, its answers counted
    as unread too. Its items stay where the worker practising sees them; nobody is reminded."""
    w = World(store, library)
    trainee = store.person(P1)
    service = w.service
    conv = service.start(trainee, "scaling-checkin", frontend="console", practice=True).conversation_id
    service.handle(trainee, Input.from_text("REVIEWWORD at home"), conversation_id=conv)
    with store.transaction():
        case = store.create_case(trainee, "TRIAL-1")
    fam = store.person("tg:77")
    in_case = service.start(fam, "scaling-checkin", case_id=case, practice=True, chat_id="77").conversation_id
    service.handle(fam, Input.from_text("calmer mornings REVIEWWORD"), conversation_id=in_case)
    assert sorted(i["conversation_id"] for i in store.review_items()) == [conv, in_case]  # kept, as practice alerts are
    assert w.reading.due(w.later(500)) == [] and w.deliver(500) == []


def test_every_supervisor_and_every_lead_is_told_not_only_the_last(store, library):
    """One row per recipient: the items named only the last row, so the others were dropped as
    'nothing left open' before they went (two supervisors, or a lead and a deputy)."""
    w = World(store, library)
    w.access = Access(store, library, Config(leads=[9, 10], roles={"supervisor": [2, 7], "practitioner": [3, 4]},
                                             teams={2: [3], 7: [3]}))
    w.access.seed()
    w.reading = Reading(store, w.access, leads=[9, 10], clock=lambda: w.clock)
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    w.say(FAM_B, "some hopes REVIEWWORD")
    assert sorted(s[:3] for s in w.deliver(24.01)) == [(P1, "review", "practitioner"), (P2, "review", "practitioner")]
    assert sorted(s[0] for s in w.deliver(48.02) if s[1:3] == ("review", "supervisor")) == sorted([
        SUP, "tg:7",  # both of P1's supervisors
        LEAD, "tg:10"])  # P2 has none: both leads
    assert [s for s in w.deliver(300) if s[1] == "review"] == []
    assert {(r["seq"], r["state"]) for r in _rows(w.store, "review")} == {(1, "sent"), (2, "sent")}


def test_a_case_reassigned_after_the_reminder_went_reminds_the_new_holder_before_the_supervisor(world):
    """Finding r9 (b): the reminder had already gone to P1 when the case moved to P2, so P2 was
    never reminded of what they inherited; the supervisor's clock is not set back by it."""
    w = world
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    assert [s[:3] for s in w.deliver(24.01)] == [(P1, "review", "practitioner")]
    w.access.reassign(None, "CASE-A", P2)
    sent = w.deliver(30)
    assert [s[:3] for s in sent] == [(P2, "review", "practitioner")] and "R1" in sent[0][3]
    assert w.deliver(31) == []  # once
    assert [s[:3] for s in w.deliver(48.02) if s[1] == "review"] == [(LEAD, "review", "supervisor")]  # P2 has none
    assert [s for s in w.deliver(400) if s[1] == "review"] == []


# -- several recipients at one stage: one who cannot be reached does not bring the next forward --
def _two_supervisors(store, library):
    """P1 supervised by SUP and tg:7; leads 9 and 10."""
    w = World(store, library)
    w.access = Access(store, library, Config(leads=[9, 10], roles={"supervisor": [2, 7], "practitioner": [3, 4]},
                                             teams={2: [3], 7: [3]}))
    w.access.seed()
    w.reading = Reading(store, w.access, leads=[9, 10], clock=lambda: w.clock)
    return w


def test_one_of_two_recipients_unreachable_at_the_first_stage_does_not_bring_the_next_forward(store, library):
    """Leftover 3: nobody may act on P1's case (role revoked), so its supervisors SUP and tg:7
    are told first; SUP blocked the bot. tg:7 was reached, yet the leads were told at once as
    if nobody had been: the next stage comes forward only when nobody at the stage was reached."""
    w = _two_supervisors(store, library)
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    w.access.revoke(None, P1, "practitioner")
    assert [s[:3] for s in _deliver_failing(w, 24.01, {SUP})] == [("tg:7", "review", "practitioner")]
    assert [s for s in _deliver_failing(w, 24.02, {SUP}) if s[1] == "review"] == []  # not the leads yet
    assert [s for s in _deliver_failing(w, 47.9, {SUP}) if s[1] == "review"] == []
    assert sorted(s[:3] for s in _deliver_failing(w, 48.02, {SUP}) if s[1] == "review") == \
        [("tg:10", "review", "supervisor"), (LEAD, "review", "supervisor")]  # on their own clock


def test_one_of_two_unreachable_at_the_first_stage_waits_for_the_other_then_comes_forward(store, library):
    """The other recipient's reminder is waiting for their day back: the next stage does not
    come forward while it may still reach them; once it cannot either, it does, at once."""
    from zoneinfo import ZoneInfo

    w = _two_supervisors(store, library)
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    w.access.revoke(None, P1, "practitioner")
    day = (w.t0 + timedelta(hours=24.01)).astimezone(ZoneInfo("Europe/London")).weekday()
    for d in range(2):
        w.schedule.set_day(w.store.person("tg:7"), (day + d) % 7, True)
    assert _deliver_failing(w, 24.01, {SUP}) == []  # SUP blocked the bot; tg:7's waits for their day
    assert [s for s in _deliver_failing(w, 24.02, {SUP}) if s[1] == "review"] == []
    assert [s for s in _deliver_failing(w, 47.9, {SUP}) if s[1] == "review"] == []
    # tg:7 may still be reached: the leads' turn is the usual one, 24 h after the reminders fell due
    assert sorted(s[:3] for s in _deliver_failing(w, 48.02, {SUP}) if s[1] == "review") == \
        [("tg:10", "review", "supervisor"), (LEAD, "review", "supervisor")]


def test_one_of_two_supervisors_unreachable_does_not_bring_the_leads_forward(store, library):
    """At the supervisor's stage: tg:7 blocked the bot, SUP's reminder waits for their day back.
    The leads were told at once (the item named only the last row written, tg:7's)."""
    from zoneinfo import ZoneInfo

    w = _two_supervisors(store, library)
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    assert [s[:3] for s in _deliver_failing(w, 24.01, {"tg:7"}) if s[1] == "review"] == \
        [(P1, "review", "practitioner")]
    day = (w.t0 + timedelta(hours=48.02)).astimezone(ZoneInfo("Europe/London")).weekday()
    for d in range(2):
        w.schedule.set_day(w.store.person(SUP), (day + d) % 7, True)
    assert [s for s in _deliver_failing(w, 48.02, {"tg:7"}) if s[1] == "review"] == []
    assert [s for s in _deliver_failing(w, 48.03, {"tg:7"}) if s[1] == "review"] == []  # SUP may still be reached
    assert [s for s in _deliver_failing(w, 60, {"tg:7"}) if s[1] == "review"] == []
    # and when SUP's turn comes, SUP is told; the leads never are
    assert [s[:3] for s in _deliver_failing(w, 48.02 + 48, {"tg:7"}) if s[1] == "review"] == \
        [(SUP, "review", "supervisor")]
    assert [s for s in _deliver_failing(w, 300, {"tg:7"}) if s[1] == "review"] == []


def test_both_supervisors_unreachable_pass_to_the_leads(store, library):
    w = _two_supervisors(store, library)
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    _deliver_failing(w, 24.01, {SUP, "tg:7"})
    assert [s for s in _deliver_failing(w, 48.02, {SUP, "tg:7"}) if s[1] == "review"] == []
    assert sorted(s[:3] for s in _deliver_failing(w, 48.03, {SUP, "tg:7"}) if s[1] == "review") == \
        [("tg:10", "review", "supervisor"), (LEAD, "review", "supervisor")]


def test_a_new_holder_who_cannot_be_reached_still_brings_the_next_stage_at_once(world):
    """The holder's own reminder is alone at its stage: the earlier holder's, sent before the
    case moved, does not count as someone at the stage reached."""
    w = world
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    assert [s[:3] for s in w.deliver(24.01) if s[1] == "review"] == [(P1, "review", "practitioner")]
    w.access.reassign(None, "CASE-A", P2)
    assert [s for s in _deliver_failing(w, 30, {P2}) if s[1] == "review"] == []  # P2 blocked the bot
    assert [s[:3] for s in _deliver_failing(w, 30.01, {P2}) if s[1] == "review"] == \
        [(LEAD, "review", "supervisor")]  # P2 has no supervisor: the leads, at once


# -- one pass, one look at each person's access -----------------------------------------------
def test_one_planning_pass_asks_each_access_question_once(world):
    """Leftover 4: a pass of Reading.plan asked the same access questions twice (once to
    re-check the waiting rows, once to plan), and a supervisor's right to see an item once per
    item; consent once per list. Each question is asked once per pass now, with the same outcome."""
    from zoneinfo import ZoneInfo

    w = world
    w.say(FAM_A, "calmer mornings REVIEWWORD")
    w.say(FAM_A, "4")
    w.say(FAM_A, "we talk more REVIEWWORD")
    day = (w.t0 + timedelta(hours=24.01)).astimezone(ZoneInfo("Europe/London")).weekday()
    for d in range(4):  # P1's reminders wait for their day back: pending rows to re-check
        w.schedule.set_day(w.store.person(P1), (day + d) % 7, True)
    assert w.deliver(24.01) == []
    asked = []
    for name in ("sees_review_item", "consented"):
        real = getattr(w.access, name)

        def counted(*args, _real=real, _name=name):
            asked.append((_name, *args))
            return _real(*args)
        setattr(w.access, name, counted)
    sent = w.deliver(48.02)  # the review items' supervisor stage, with P1's row still waiting
    assert sorted(s[:3] for s in sent) == [(SUP, "review", "supervisor")]
    assert asked and len(asked) == len(set(asked)), sorted(a for a in asked if asked.count(a) > 1)
