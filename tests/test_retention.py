"""Retention and purge (issue 17 item 1), with a moved clock: every row of every table is
labelled kept or gone as the world is built, and after a purge the whole database is
compared with those labels (not a subset). Held cases are kept; a second purge changes
nothing; a purge killed (SIGKILL) inside a batch leaves a consistent database that the next
run finishes, ending exactly where an uninterrupted purge ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import bot.store
from bot import retention
from bot.cli import main
from bot.config import Config, ConfigError
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.retention import DailyPurge, Retention
from bot.store import Store, iso

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)  # "now", when the purge runs
ANSWERS = ("To argue less at home", "6", "We eat together", "Less shouting", "8", "No")
# a rehearsal's stored flow, as bot/rehearsal writes one: a flow that loads (purge --export asks
# it who may read the conversation)
REHEARSAL_SNAPSHOT = "id: rehearsal-x\nversion: 1\ntitle: A rehearsal\naudience: practitioner\nsteps:\n" \
    "  - id: question\n    ask: What happened?\n"
KEEP_ALWAYS = {"people", "flow_snapshots", "cases", "roles", "teams", "reviews", "reminder_optouts",
               "erasure_requests"}


class Clock:
    def __init__(self):
        self.t = AT

    def ago(self, days: float) -> None:
        self.t = AT - timedelta(days=days)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(bot.store, "now", lambda: iso(c.t))
    return c


def all_rows(store: Store) -> dict[str, set]:
    out = {}
    for (table,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        out[table] = {r[0] for r in store.db.execute(f"SELECT rowid FROM {table}")}
    return out


class World:
    """Builds records at chosen ages and labels each new row kept or gone."""

    def __init__(self, store: Store, library, clock: Clock):
        self.store, self.clock = store, clock
        self.service = ConversationService(store, library)
        self.keep: dict[str, set] = {}
        self.gone: dict[str, set] = {}
        self.n = 0
        before = {t: rows for t, rows in all_rows(store).items() if t != "meta"}  # the key check: never purged
        self.practitioner = store.person("tg:900")
        self.case_a = store.create_case(self.practitioner, "CASE-A")
        self.case_h = store.create_case(self.practitioner, "CASE-H")
        self._label(before, {}, True)

    def _label(self, before: dict[str, set], fate: dict[str, bool], default: bool) -> None:
        after = all_rows(self.store)
        for table, rows in after.items():
            new = rows - before.get(table, set())
            if not new:
                continue
            kept = True if table in KEEP_ALWAYS else fate.get(table, default)
            (self.keep if kept else self.gone).setdefault(table, set()).update(new)

    def conversation(self, age: float, *, status: str, case=None, practice=False, inputs_kept=None,
                     kept: bool, pseudonym: str | None = None) -> int:
        """A conversation by a new person, finished (completed/cancelled) or left in progress."""
        self.n += 1
        self.clock.ago(age)
        before = all_rows(self.store)
        pid = self.store.person(f"tg:{self.n}")
        case_id = {"A": self.case_a, "H": self.case_h, None: None}[case]
        r = self.service.start(pid, "scaling-checkin", case_id=case_id, respondent="adult", practice=practice,
                               input_key=f"in:{self.n}:0")
        conv = r.conversation_id
        if status in ("completed", "in_progress"):
            for i, text in enumerate(ANSWERS[:2] if status == "in_progress" else ANSWERS, 1):
                r = self.service.handle(pid, Input.from_text(text), input_key=f"in:{self.n}:{i}")
                if r.status == "completed":
                    break
            assert r.status == status
        elif status == "cancelled":
            self.service.handle(pid, Input.from_text("Fine"), input_key=f"in:{self.n}:1")
            assert self.service.cancel_active(pid, input_key=f"in:{self.n}:2").status == "cancelled"
        if pseudonym and case_id:
            self.store.set_pseudonym(case_id, pid, pseudonym, "test")
        if inputs_kept is None:
            inputs_kept = age < 30 or case == "H"
        self._label(before, {"inputs": inputs_kept}, kept)
        return conv

    def rehearsal(self, age: float, kept: bool) -> int:
        self.clock.ago(age)
        before = all_rows(self.store)
        pid = self.store.person(f"tg:r{age}")
        self.store.save_snapshot("rehearsal-sha", "rehearsal-x", 1, REHEARSAL_SNAPSHOT)
        conv = self.store.create_conversation(person_id=pid, flow_id="rehearsal-x", flow_version=1,
                                              flow_sha="rehearsal-sha", state="done", session={"turns": []},
                                              status="completed", frontend="telegram", chat_id=None)
        self.store.add_line(conv, "in", "What happened?", kind="answer")
        self._label(before, {}, kept)
        return conv

    def row(self, age: float, kept: bool, make) -> int:
        self.clock.ago(age)
        before = all_rows(self.store)
        out = make()
        self._label(before, {}, kept)
        return out


def build(store: Store, library, clock: Clock) -> World:
    w = World(store, library, clock)
    s = store
    # conversations: completed (730 days), abandoned (180), practice and rehearsals (30)
    done_old = w.conversation(800, status="completed", case="A", kept=False, pseudonym="Parent A")
    w.row(790, False, lambda: s.add_comment(done_old, w.practitioner, "Good progress on the phone rows", None))
    w.conversation(700, status="completed", case="A", kept=True)
    w.conversation(800, status="completed", case="H", kept=True, pseudonym="Carer H")
    w.conversation(200, status="in_progress", case="A", kept=False)
    w.conversation(100, status="in_progress", case="A", kept=True)
    w.conversation(190, status="cancelled", kept=False)
    w.conversation(2000, status="in_progress", case="H", kept=True)
    practice_old = w.conversation(40, status="completed", practice=True, kept=False)
    w.row(40, False, lambda: s.add_alert(conversation_id=practice_old, person_id=w.practitioner, transcript_id=None,
                                         concern="harm", words="practice words about hitting", next_notify_at=None,
                                         practice=True))
    w.conversation(10, status="completed", practice=True, kept=True)
    w.rehearsal(40, kept=False)
    w.rehearsal(5, kept=True)
    # safeguarding (2190 days): an alert keeps its conversation; an open alert is never purged
    kept_by_alert = w.conversation(800, status="completed", case="A", kept=True)
    w.row(800, True, lambda: s.acknowledge_alert(s.add_alert(
        conversation_id=kept_by_alert, person_id=w.practitioner, transcript_id=None, concern="harm",
        words="he hit me last week", next_notify_at=None), "tg:lead"))
    never = w.conversation(2500, status="completed", case="A", kept=True)
    w.row(2500, True, lambda: s.add_alert(conversation_id=never, person_id=w.practitioner, transcript_id=None,
                                          concern="harm", words="nobody acknowledged this", next_notify_at=None))
    both_old = w.conversation(2300, status="completed", case="A", kept=False)
    w.row(2300, False, lambda: s.acknowledge_alert(s.add_alert(
        conversation_id=both_old, person_id=w.practitioner, transcript_id=None, concern="harm",
        words="old acknowledged words", next_notify_at=None), "tg:lead"))
    held_alerted = w.conversation(2300, status="completed", case="H", kept=True)
    w.row(2300, True, lambda: s.acknowledge_alert(s.add_alert(
        conversation_id=held_alerted, person_id=w.practitioner, transcript_id=None, concern="harm",
        words="held case words", next_notify_at=None), "tg:lead"))
    w.row(2200, False, lambda: s.acknowledge_alert(s.add_alert(
        conversation_id=None, person_id=w.practitioner, transcript_id=None, concern="harm",
        words="a stranger's words", next_notify_at=None), "tg:lead"))
    w.row(2200, False, lambda: s.add_alert(conversation_id=None, person_id=w.practitioner, transcript_id=None,
                                           concern="harm", words="practice, never sent", next_notify_at=None,
                                           practice=True))
    recent = w.conversation(100, status="completed", case="A", kept=True)
    w.row(2200, False, lambda: s.acknowledge_review_item(s.add_review_item(
        conversation_id=None, person_id=w.practitioner, transcript_id=None, concern="worry", matched="scared"), "x"))
    w.row(50, True, lambda: s.add_review_item(conversation_id=recent, person_id=w.practitioner, transcript_id=None,
                                              concern="worry", matched="not sleeping"))
    w.row(2200, False, lambda: s.add_missed(conversation_id=None, step_id=None, words="missed old", reported_by="x"))
    w.row(100, True, lambda: s.add_missed(conversation_id=recent, step_id=None, words="missed new", reported_by="x"))
    # invitations (90 days after they end), schedule rows (90 days after sent or cancelled)
    w.row(200, False, lambda: s.add_invite(code_hash="h1", flow_id="scaling-checkin", case_id=w.case_a,
                                           practitioner_id=w.practitioner, expires_at=iso(AT - timedelta(days=193))))
    w.row(120, True, lambda: s.add_invite(code_hash="h2", flow_id="scaling-checkin", case_id=w.case_a,
                                          practitioner_id=w.practitioner, expires_at=iso(AT - timedelta(days=60))))
    w.row(200, True, lambda: s.add_invite(code_hash="h3", flow_id="scaling-checkin", case_id=w.case_h,
                                          practitioner_id=w.practitioner, expires_at=iso(AT - timedelta(days=193))))

    def scheduled(state, case_id=None):
        def make():
            item = s.add_scheduled(person_id=w.practitioner, kind="nudge", text="Carry on when you are ready",
                                   due_at=iso(w.clock.t), why="test", case_id=case_id)
            if state == "sent":
                s.claim_scheduled(item, iso(w.clock.t))
                s.finish_scheduled(item, sent_at=iso(w.clock.t))
            elif state == "cancelled":
                s.cancel_scheduled(ids=[item], by="test")
            return item
        return make

    w.row(100, False, scheduled("sent"))
    w.row(100, True, scheduled("pending"))
    w.row(95, True, scheduled("cancelled", w.case_h))
    w.row(80, True, scheduled("sent"))
    # audit (2190 days); a held case's entries stay
    w.row(2200, False, lambda: s.audit("tg:1", "transcript.read", "conversation:1"))
    w.row(2200, True, lambda: s.audit("tg:1", "export", "case:CASE-H"))
    w.row(2000, True, lambda: s.audit("tg:1", "export", "case:CASE-A"))
    # the website's sign-in (7 days): links used or expired, sessions ended or expired
    staff = w.row(400, True, lambda: s.person("tg:staff"))
    w.row(10, False, lambda: s.add_web_link("l-used-old", staff, iso(AT - timedelta(days=9))) and
          s.use_web_link(s.web_link("l-used-old")["id"], iso(AT - timedelta(days=10))))
    w.row(10, False, lambda: s.add_web_link("l-expired-old", staff, iso(AT - timedelta(days=8))))
    w.row(3, True, lambda: s.add_web_link("l-used-new", staff, iso(AT - timedelta(days=3))) and
          s.use_web_link(s.web_link("l-used-new")["id"], iso(AT - timedelta(days=3))))
    w.row(1, True, lambda: s.add_web_link("l-live", staff, iso(AT + timedelta(minutes=5))))
    w.row(20, False, lambda: s.end_web_session(s.add_web_session("s-ended-old", staff, iso(AT - timedelta(days=1)),
                                                                   iso(AT - timedelta(days=20))), iso(AT - timedelta(days=19))))
    w.row(9, False, lambda: s.add_web_session("s-expired-old", staff, iso(AT - timedelta(days=8)), iso(AT - timedelta(days=9))))
    w.row(5, True, lambda: s.add_web_session("s-expired-new", staff, iso(AT - timedelta(days=5)), iso(AT - timedelta(days=5))))
    w.row(1, True, lambda: s.add_web_session("s-live", staff, iso(AT + timedelta(hours=8)), iso(AT)))
    # the hold itself, and a few inputs with no conversation
    w.row(5, True, lambda: retention.hold(s, "CASE-H", "tg:admin", "court proceedings"))
    w.row(60, False, lambda: s.mark_delivered("tg:update:old"))
    w.row(2, True, lambda: s.mark_delivered("tg:update:new"))
    # updates received and never handled (handled ones leave the inbox at once): with the inputs
    w.row(40, False, lambda: s.inbox_add([(5001, "31", "tg:31", '{"update_id": 5001, "message": {"text": "old"}}')]))
    w.row(2, True, lambda: s.inbox_add([(5002, "32", "tg:32", '{"update_id": 5002, "message": {"text": "new"}}')]))
    return w


def remaining(store: Store) -> dict[str, set]:
    return {t: rows for t, rows in all_rows(store).items() if rows}


def expected(w: World) -> dict[str, set]:
    return {t: rows for t, rows in w.keep.items() if rows}


def test_purge_deletes_exactly_what_is_due_per_type_and_keeps_held_cases(store, library, clock):
    w = build(store, library, clock)
    assert all(w.gone.get(t) for t in ("conversations", "answers", "transcript", "inputs", "alerts", "review_items",
                                       "missed_disclosures", "invites", "schedule", "audit", "comments",
                                       "case_people", "web_links", "web_sessions", "inbox")), w.gone.keys()
    before_audit = max(all_rows(store)["audit"])
    report = retention.purge(store, Retention(), at=AT, batch=3)
    rows = remaining(store)
    rows["audit"] = {r for r in rows["audit"] if r <= before_audit}  # the purge's own entries: below
    assert rows == expected(w)
    assert report.deleted["conversations"] == len(w.gone["conversations"])
    # the audit log has counts, never content
    entries = [a for a in store.audit_log() if a["action"].startswith("purge")]
    assert entries[-1]["action"] == "purge" and f"conversations={len(w.gone['conversations'])}" in entries[-1]["detail"]
    assert {a["action"] for a in entries} == {"purge.batch", "purge"}
    words = ("argue", "phone", "hit", "practice words")
    assert not any(word in (a["detail"] or "") for a in entries for word in words)
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_purge_is_idempotent_and_a_dry_run_deletes_nothing(store, library, clock):
    build(store, library, clock)
    before = remaining(store)
    dry = retention.purge(store, Retention(), at=AT, dry_run=True)
    assert {k: v for k, v in remaining(store).items() if k != "audit"} == \
        {k: v for k, v in before.items() if k != "audit"}
    assert dry.due["completed/conversations"] == 1 and dry.due["practice/conversations"] == 2
    retention.purge(store, Retention(), at=AT)
    after_first = remaining(store)
    again = retention.purge(store, Retention(), at=AT)
    assert again.deleted == {} and again.batches == 0
    after_second = remaining(store)
    assert after_second.pop("audit") > after_first.pop("audit")  # one more "purge: nothing due" entry
    assert after_second == after_first
    assert store.audit_log()[-1]["detail"] == "nothing due"


def test_a_purge_with_a_far_future_date_ends_and_leaves_only_its_own_entries(store, library, clock, monkeypatch):
    """Leftover 6: with a date far ahead (a clock set wrong, or a test moving it), the audit
    entries the purge itself writes were due at once: each batch deleted the last batch's entry
    and wrote another, for ever (and in `serve`, the daily purge held the alert loop with it).
    A run now deletes at most what was due when it began; what became due meanwhile (its own
    entries) is the next run's."""
    build(store, library, clock)
    far = datetime(2999, 1, 1, tzinfo=timezone.utc)
    due = retention.due(store, Retention(), far)
    bound = sum(-(-n // 3) for n in due.values()) + 1  # batches of 3: what was due, and no more

    def progress(n):
        progress.batches += 1
        assert progress.batches <= bound, "the purge does not end"
    progress.batches = 0
    before_audit = max(all_rows(store)["audit"])
    report = retention.purge(store, Retention(), at=far, batch=3, progress=progress)
    assert report.batches == progress.batches <= bound
    assert sum(report.deleted.get(t, 0) for t in ("alerts", "audit")) <= sum(due.values())
    # everything that was due went (held cases and unacknowledged alerts stay, as ever); of the
    # audit log, only this run's own entries are due now (counts, never content)
    assert {k: n for k, n in retention.due(store, Retention(), far).items() if n} == \
        {"audit/audit": len([a for a in store.audit_log() if a["id"] > before_audit])}
    own = [a for a in store.audit_log() if a["id"] > before_audit]
    assert own and {a["action"] for a in own} == {"purge.batch", "purge"}
    again = retention.purge(store, Retention(), at=far, batch=3)  # the next run ends too
    assert again.batches <= len(own) // 3 + 2
    monkeypatch.setattr(retention, "now", lambda: far)  # and the command, on a clock set far ahead
    r = CliRunner().invoke(main, ["purge", "--db", str(store.path)])
    assert r.exit_code == 0 and "purged:" in r.output


def test_releasing_a_hold_lets_the_next_purge_take_the_case(store, library, clock):
    w = build(store, library, clock)
    retention.purge(store, Retention(), at=AT)
    held = [c["id"] for c in store.conversations(case_id=w.case_h)]
    assert len(held) == 3
    retention.release(store, "CASE-H", "tg:admin")
    retention.purge(store, Retention(), at=AT)
    assert store.conversations(case_id=w.case_h) == []  # all three were due, and its old alert too
    assert [a["words"] for a in store.alerts()] == ["he hit me last week", "nobody acknowledged this"]
    assert [a["action"] for a in store.audit_log() if a["target"] == "case:CASE-H"][-1] == "case.release"


def test_never_keeps_a_type_for_ever_and_the_configuration_is_checked(store, library, clock):
    w = build(store, library, clock)
    cfg = Config.from_data(_yaml("retention:\n  completed: never\n  practice: 7\n"), "c.yaml")
    retain = cfg.retention()
    assert retain.days["completed"] is None and retain.days["practice"] == 7 and retain.days["abandoned"] == 180
    retention.purge(store, retain, at=AT)
    assert store.conversation(min(w.gone["conversations"])) is not None  # the old completed one
    with pytest.raises(ConfigError) as e:
        Config.from_data(_yaml("retention:\n  completed: -1\n  transcripts: 5\n"), "c.yaml")
    assert [str(x) for x in e.value.errors] == [
        "c.yaml:2:14: 'completed' must be a number of days above 0, or never (keep for ever), e.g. completed: 730",
        "c.yaml:3:3: unknown record type 'transcripts' under retention; use completed, abandoned, practice, alerts,"
        " audit, invitations, inputs, schedule, web_signin"]


def _yaml(text):
    from bot.engine.yamlpos import parse_yaml

    data, errors = parse_yaml(text, "c.yaml")
    assert not errors
    return data


def test_serve_purges_daily_on_a_moved_clock(store, library, clock):
    w = build(store, library, clock)
    now = {"t": AT}
    clock.t = AT  # the store stamps the audit entry with the same (moved) time
    daily = DailyPurge(store, Retention(), clock=lambda: now["t"])
    assert daily.run() is not None  # never purged yet: due
    assert remaining(store)["conversations"] == w.keep["conversations"]
    assert daily.run() is None  # a purge just ran
    now["t"] = AT + timedelta(hours=23)
    assert daily.run() is None
    now["t"] = AT + timedelta(days=1, minutes=1)
    assert daily.run() is not None


def test_cli_purge_dry_run_then_purge_with_a_progress_bar(tmp_path, library, clock, monkeypatch):
    store = Store(tmp_path / "cli.db")
    w = build(store, library, clock)
    store.close()
    monkeypatch.setattr(retention, "now", lambda: AT)
    r = CliRunner().invoke(main, ["purge", "--dry-run", "--db", str(tmp_path / "cli.db")])
    assert r.exit_code == 0, r.output
    assert "completed/conversations          1 due" in r.output and "nothing deleted" in r.output
    export = tmp_path / "purged.jsonl"
    r = CliRunner().invoke(main, ["purge", "--db", str(tmp_path / "cli.db"), "--export", str(export)])
    assert r.exit_code == 0, r.output
    assert "Purging" in r.output and f"conversations {len(w.gone['conversations'])}" in r.output
    lines = export.read_text().splitlines()
    assert len(lines) == len(w.gone["conversations"]) and oct(export.stat().st_mode & 0o777) == "0o600"
    assert remaining(Store(tmp_path / "cli.db"))["conversations"] == w.keep["conversations"]


def test_purge_export_writes_only_what_export_would(tmp_path, library, clock, monkeypatch):
    """`export` leaves out a conversation whose person said no to sharing; `purge --export`
    wrote its whole transcript to the archive all the same. Now the archive holds what export
    would write: the unshared conversation is counted, not written. The file is readable by
    its owner only, even one that was there before."""
    secret = "I do not want dad at the meeting, he frightens my little sister"
    db = tmp_path / "arch.db"
    store = Store(db)
    service = ConversationService(store, library)
    clock.ago(800)
    case = store.create_case(store.person("tg:900"), "FGC-5")
    young = store.person("tg:1")
    unshared = service.start(young, "fgc-young-person", case_id=case, respondent="young_person").conversation_id
    flow = library.get("fgc-young-person")
    first_text = True
    while (conv := service.active(young)) is not None:
        step = flow.by_id[conv.state]
        if step.id == "share_with_coordinator" or step.type == "yesno":
            inp = Input.from_text("no")
        elif step.type in ("choice", "multi"):
            inp = Input.from_text(step.options[0].id)
        elif step.type == "text":
            inp, first_text = Input.from_text(secret if first_text else "ok"), False
        else:
            inp = Input("skip")
        service.handle(young, inp, conversation_id=conv.id)
    assert store.conversation(unshared).status == "completed" and not first_text
    adult = store.person("tg:2")
    shared = service.start(adult, "scaling-checkin", case_id=case, respondent="adult").conversation_id
    for text in ANSWERS:
        if service.handle(adult, Input.from_text(text)).status == "completed":
            break
    store.close()
    monkeypatch.setattr(retention, "now", lambda: AT)
    refused = CliRunner().invoke(main, ["export", "--session", str(unshared), "--format", "json", "--db", str(db)])
    assert refused.exit_code != 0
    archive = tmp_path / "archive.jsonl"
    archive.write_text("")
    archive.chmod(0o644)
    r = CliRunner().invoke(main, ["purge", "--db", str(db), "--export", str(archive)])
    assert r.exit_code == 0, r.output
    assert "1 conversation(s) not written" in r.output and "conversations 2" in r.output
    text = archive.read_text()
    assert secret not in text
    assert [json.loads(line)["conversation_id"] for line in text.splitlines()] == [shared]
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    after = Store(db)
    assert after.conversation(unshared) is None and after.conversation(shared) is None
    assert [a["detail"] for a in after.audit_log() if a["action"] == "purge.export"] == [
        "1 conversation(s) written; 1 not shared, left out"]


def test_case_hold_needs_a_reason_and_a_known_case(tmp_path, library, clock):
    db = str(tmp_path / "h.db")
    store = Store(db)
    store.create_case(store.person("tg:9"), "FGC-1")
    store.close()
    r = CliRunner().invoke(main, ["case", "hold", "FGC-2", "--reason", "court", "--db", db])
    assert r.exit_code == 2 and "no case FGC-2" in r.output
    r = CliRunner().invoke(main, ["case", "hold", "FGC-1", "--reason", "  ", "--db", db])
    assert r.exit_code == 2 and "--reason" in r.output
    r = CliRunner().invoke(main, ["case", "hold", "FGC-1", "--reason", "court proceedings", "--db", db])
    assert r.exit_code == 0 and "under a legal hold" in r.output
    assert Store(db).held_cases()[0]["hold_reason"] == "court proceedings"
    r = CliRunner().invoke(main, ["case", "release", "FGC-1", "--db", db])
    assert r.exit_code == 0 and "released" in r.output and Store(db).held_cases() == []


KILLER = r"""
import sys
from datetime import datetime
sys.path.insert(0, sys.argv[2])
from bot import retention
from bot.store import Store

store = Store(sys.argv[1])
seen = []

def trace(statement):
    # Inside the third conversation's batch (the first completed one): its answers are deleted, its transcript not yet.
    if statement.startswith("DELETE FROM transcript"):
        seen.append(statement)
        if len(seen) == 3:
            print("mid-batch", flush=True)
            sys.stdin.readline()  # wait here until the test kills us

store.db.conn.set_trace_callback(trace)
retention.purge(store, retention.Retention(), at=datetime.fromisoformat(sys.argv[3]), batch=1)
print("finished", flush=True)
"""


def shape(store: Store) -> dict[int, tuple[int, int, int]]:
    """Each conversation's rows: (answers, transcript lines, inputs)."""
    return {c: tuple(store.db.execute(f"SELECT COUNT(*) FROM {t} WHERE conversation_id = ?", (c,)).fetchone()[0]
                     for t in ("answers", "transcript", "inputs"))
            for c in store.conversation_ids()}


def test_a_purge_killed_mid_batch_leaves_a_consistent_database_and_the_next_run_finishes(tmp_path, library, clock):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    store = Store(a)
    w = build(store, library, clock)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = shape(store)
    store.close()
    shutil.copy(a, b)
    # the reference: an uninterrupted purge
    ref = Store(a)
    retention.purge(ref, Retention(), at=AT)
    # the other copy: SIGKILLed half-way through deleting a conversation, before its batch commits
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(b), str(ROOT), AT.isoformat()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "mid-batch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    half = Store(b)
    assert half.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert half.db.execute("PRAGMA foreign_key_check").fetchall() == []
    mid = remaining(half)
    assert len(ref.conversation_ids()) < len(mid["conversations"]) < len(before)  # stopped part-way through
    assert all(w.keep[t] <= mid.get(t, set()) for t in w.keep)  # nothing that is kept went
    # every conversation still there is whole: the killed batch left no half-deleted one
    now = shape(half)
    assert {c: (n_answers, n_lines) for c, (n_answers, n_lines, _) in now.items()} == \
        {c: (n_answers, n_lines) for c, (n_answers, n_lines, _) in before.items() if c in now}
    batches = [a["action"] for a in half.audit_log() if a["action"].startswith("purge")]
    assert batches and set(batches) == {"purge.batch"}  # committed batches only, no summary yet
    retention.purge(half, Retention(), at=AT)
    done = remaining(half)
    want = remaining(ref)
    done.pop("audit"), want.pop("audit")
    assert done == want


def _disclose(service, pid, case, tag, first):
    """A conversation whose first answer is a disclosure, carried on to its end."""
    r = service.start(pid, "scaling-checkin", case_id=case, respondent="young_person", input_key=f"{tag}:0")
    r = service.handle(pid, Input.from_text(first), input_key=f"{tag}:1")
    i = 2
    while r.status == "in_progress" and i < 20:
        asks = r.prompts and any(getattr(p, "kind", "") == "safeguarding" for p in r.prompts)
        r = service.handle(pid, Input(kind="continue") if asks else Input.from_text("5"), input_key=f"{tag}:{i}")
        i += 1
    return r.conversation_id


def test_every_conversation_an_alert_covers_is_kept_while_the_alert_is(store, library, clock):
    """Review-dp F3: a later disclosure in a second conversation is added to the person's open
    alert (one per person per case), which keeps the FIRST conversation's id. The purge kept
    only what an alert pointed at, so the second conversation, with the flagged lines of the
    later disclosure, was purged at 'completed' while the alert lived on. Both are kept now;
    and the migration back-fills the link for an alert merged before it."""
    from bot.safeguarding import SafeguardingConfig

    service = ConversationService(store, library, safeguarding=SafeguardingConfig.load())
    clock.ago(800)  # past 'completed' (730 days), well within 'alerts' (2190)
    case = store.create_case(store.person("tg:900"), "CASE-F3")
    pid = store.person("tg:77")
    first = _disclose(service, pid, case, "s1", "my dad hits me when he is drunk")
    second = _disclose(service, pid, case, "s2", "he hit me again last night and I am scared to go home")
    [alert] = store.alerts()
    assert alert["conversation_id"] == first and alert["update_count"] >= 1  # one alert, both disclosures
    flagged = store.db.execute("SELECT COUNT(*) FROM transcript WHERE conversation_id = ? AND flagged = 1",
                               (second,)).fetchone()[0]
    assert flagged
    with store.transaction():
        store.acknowledge_alert(alert["id"], "tg:900")  # acknowledged, still within 'alerts'
        for cid in (first, second):
            store.db.execute("UPDATE conversations SET status = 'completed', finished_at = updated_at WHERE id = ?",
                             (cid,))
    retention.purge(store, Retention(), at=AT)
    assert [c["id"] for c in store.conversations(person_id=pid)] == [first, second]
    assert len(store.transcript(second)) and store.alert(alert["id"])

    # an older database: the link table comes with the migration, filled from the flagged lines
    version = store.version
    store.db.execute("DROP TABLE alert_conversations")
    store.db.execute(f"PRAGMA user_version={version - 1}")
    store.migrate()
    assert store.db.execute("SELECT conversation_id FROM alert_conversations WHERE alert_id = ? ORDER BY 1",
                            (alert["id"],)).fetchall() == [(first,), (second,)]
    # once the alert's own time is up, it goes, and the conversations with it
    retention.purge(store, Retention(), at=AT + timedelta(days=2190))
    assert store.conversations(person_id=pid) == [] and store.alert(alert["id"]) is None


def test_the_daily_purge_truncates_the_journal_so_purged_rows_do_not_stay_in_it(store, library, clock):
    """Review-dp F4: in a long-running process the -wal file is reused, not shrunk, so page
    images of the rows a purge deleted stayed in it (secure_delete zeroes the database file
    only). The purge now moves the WAL into the database and truncates it, as erasure does."""
    build(store, library, clock)
    store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # as serve's background checkpointer does
    wal = store.path + "-wal"
    report = DailyPurge(store, Retention(), clock=lambda: AT).run()
    assert report is not None and report.deleted.get("conversations")
    assert os.path.getsize(wal) == 0
    assert "purge.wipe" not in {a["action"] for a in store.audit_log()}  # nobody else was reading
