"""The store: migrations, exactly-once inputs, and one transaction per input."""

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError, _m_missed_audit_words

FIXTURE = Path(__file__).parent / "fixtures" / "db_v1.sqlite"


def test_a_version_1_database_is_upgraded_in_place_with_nothing_lost(tmp_path, library):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    store = Store(db)
    assert store.version == SCHEMA_VERSION > 1
    conv = store.conversation(1)
    assert conv.state == "b" and conv.session["answers"] == {"a": "We argued about the phone"}
    assert conv.case_id is None
    assert [a["raw"] for a in store.answers(1)] == ["We argued about the phone"]
    assert len(store.transcript(1)) == 3
    assert store.seen_input("console:1") is not None
    # and the old conversation carries on, on the flow text it started with
    service = ConversationService(store, library)
    reply = service.handle(1, Input.from_text("My sister"))
    assert reply.status == "completed"
    assert [a["step_id"] for a in store.answers(1)] == ["a", "b"]
    assert store.transcript(1)[-1]["text"] == "Thank you. Your answers are saved."


def test_a_newer_database_is_refused_clearly(tmp_path):
    db = tmp_path / "new.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this restorative-bot"):
        Store(db)


def test_an_older_database_loses_the_missed_words_its_audit_lines_held(tmp_path):
    """/missed once wrote the person's words into the audit line; opening the database with
    this version keeps only the record's number and step there (the words stay, encrypted and
    erasable, in missed_disclosures)."""
    db = tmp_path / "old.db"
    store = Store(db)
    store.audit("tg:3", "safeguarding.missed", "conversation:1", "missed:1 step best_hopes: he hurts me")
    store.audit("tg:3", "safeguarding.missed", "conversation:2", "missed:2 step -: no: really")
    store.audit("tg:3", "role.grant", "tg:4", "practitioner: by the admin")
    store.close()
    from bot.store import MIGRATIONS, _m_missed_audit_words

    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={MIGRATIONS.index(_m_missed_audit_words)}")  # the version before it
    conn.commit()
    conn.close()
    store = Store(db)
    assert store.version == SCHEMA_VERSION
    assert [r["detail"] for r in store.audit_log()][-3:] == \
        ["missed:1 step best_hopes", "missed:2 step -", "practitioner: by the admin"]


def test_not_a_database_is_refused_clearly(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(bad)
    with pytest.raises(StoreError, match="no such database"):
        Store(tmp_path / "missing.db", create=False)


def test_wal_mode(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_repeated_input_key_changes_nothing_and_returns_the_same_reply(service):
    me = service.person("tg:1", "Ann")
    first = service.start(me, "scaling-checkin", input_key="u1")
    again = service.start(me, "scaling-checkin", input_key="u1")
    assert again.duplicate and again.conversation_id == first.conversation_id
    assert [p.text for p in again.prompts] == [p.text for p in first.prompts]
    a = service.handle(me, Input.from_text("to get on"), input_key="u2")
    lines = len(service.store.transcript(first.conversation_id))
    b = service.handle(me, Input.from_text("to get on"), input_key="u2")
    assert b.duplicate and [p.text for p in b.prompts] == [p.text for p in a.prompts]
    assert len(service.store.transcript(first.conversation_id)) == lines
    assert len(service.store.conversations()) == 1
    assert service.store.answers(first.conversation_id)[0]["revision"] == 1


def test_a_failure_mid_input_leaves_no_trace(service, monkeypatch):
    me = service.person("tg:2")
    conv = service.start(me, "scaling-checkin").conversation_id
    before = (len(service.store.transcript(conv)), service.store.conversation(conv).state)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.store, "update_conversation", boom)
    with pytest.raises(RuntimeError):
        service.handle(me, Input.from_text("hopes"), input_key="k1")
    assert (len(service.store.transcript(conv)), service.store.conversation(conv).state) == before
    assert service.store.answers(conv) == []
    assert service.store.seen_input("k1") is None


def test_transcript_keeps_exact_words_and_wording(service):
    me = service.person("tg:3")
    conv = service.start(me, "scaling-checkin").conversation_id
    service.handle(me, Input.from_text("  Stop the  arguing!  "))
    service.handle(me, Input.from_text("seven"))
    lines = service.store.transcript(conv)
    assert [l["text"] for l in lines if l["direction"] == "in"][1:] == ["  Stop the  arguing!  ", "seven"]
    assert any("What puts you at 7 and not lower?" in l["text"] for l in lines)
    answers = {a["step_id"]: a for a in service.store.answers(conv)}
    assert answers["scale_now"]["value"] == 7 and answers["scale_now"]["raw"] == "seven"


def test_a_conversation_continues_on_the_flow_version_it_started_with(tmp_path):
    from bot.engine.library import FlowLibrary

    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "f.yaml").write_text("id: f\nversion: 1\ntitle: F\naudience: family\nsteps:\n  - id: a\n    ask: Old first?\n  - id: b\n    ask: Old second?\n")
    store = Store(tmp_path / "db.sqlite")
    s1 = ConversationService(store, FlowLibrary.load([v1]))
    me = s1.person("console:x")
    s1.start(me, "f")
    s1.handle(me, Input.from_text("one"))
    (v1 / "f.yaml").write_text("id: f\nversion: 2\ntitle: F\naudience: family\nsteps:\n  - id: a\n    ask: New first?\n  - id: c\n    ask: New second?\n")
    s2 = ConversationService(store, FlowLibrary.load([v1]))
    assert s2.current(me).prompts[0].text == "Old second?"
    r = s2.handle(me, Input.from_text("two"))
    assert r.status == "completed"
    assert [a["step_id"] for a in store.answers(1)] == ["a", "b"]
    fresh = s2.start(me, "f")
    assert fresh.prompts[0].text == "New first?"


def _fill(store: Store, upto_bytes: int, limit: int = 4000) -> int:
    """Commit small transactions until the WAL file is past ``upto_bytes`` (or ``limit``)."""
    wal = Path(store.path + "-wal")
    for i in range(limit):
        with store.transaction():
            store.person(f"wal:{i}", "x" * 2000)
        if wal.exists() and wal.stat().st_size > upto_bytes:
            return i + 1
    return limit


def test_no_commit_waits_for_a_checkpoint_once_they_run_in_the_background(tmp_path):
    store = Store(tmp_path / "w.db", synchronous="OFF")
    store.checkpoint_in_background(every=3600)  # the thread will not run in this test's time
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        page = store.db.execute("PRAGMA page_size").fetchone()[0]
        # SQLite's own checkpoint, in a commit, would keep the WAL near 1,000 pages
        _fill(store, 1500 * page)
        assert Path(store.path + "-wal").stat().st_size > 1500 * page
    finally:
        store.close()


def test_the_background_checkpoint_moves_the_wal_into_the_database(tmp_path):
    store = Store(tmp_path / "b.db", synchronous="OFF")
    store.checkpoint_in_background(every=0.01, wal_bytes=64 << 10)
    try:
        _fill(store, 256 << 10)
        deadline = time.monotonic() + 20
        while not any(moved > 0 for _, _, moved in store.checkpoints) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition, with a deadline
        assert any(moved > 0 for _, _, moved in store.checkpoints), store.checkpoints
    finally:
        store.close()
    assert Store(tmp_path / "b.db").db.execute("SELECT COUNT(*) FROM people WHERE key LIKE 'wal:%'").fetchone()[0] > 0


def test_now_writes_the_one_timestamp_format_and_the_time_now():
    from datetime import datetime, timezone

    from bot.store import iso, now

    before = datetime.now(timezone.utc)
    stamps = [now() for _ in range(2000)]
    after = datetime.now(timezone.utc)
    assert stamps == sorted(stamps)  # they compare as text, in time order
    for stamp in stamps[::97] + stamps[-1:]:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert iso(parsed) == stamp  # exactly iso()'s form: UTC, microseconds, 'Z'
        assert before.replace(microsecond=0) <= parsed <= after
