"""Encryption at rest (issue 17 item 3): every PERSON_TEXT column is stored encrypted with a key
held outside the database; a stolen database file and its WAL yield no answer's words; the
wrong key is refused in words; the first run makes a private key file and says where."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from bot import dbkey
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import PERSON_TEXT, Store, StoreError

ANSWERS = ("Quetzalcoatl picnic hopes", "6", "Xanthippe homework truce", "Zanzibar calmer bedtimes", "8",
           "Ocelot nothing more")
WORDS = ("Quetzalcoatl", "Xanthippe", "Zanzibar", "Ocelot")


def raw(path) -> bytes:
    data = open(path, "rb").read()
    if os.path.exists(f"{path}-wal"):
        data += open(f"{path}-wal", "rb").read()
    return data


def answer(store, library, tag="a"):
    service = ConversationService(store, library)
    pid = store.person(f"tg:{tag}1", "Philomena")
    r = service.start(pid, "scaling-checkin", input_key=f"{tag}:0")
    for i, text in enumerate(ANSWERS, 1):
        r = service.handle(pid, Input.from_text(text), input_key=f"{tag}:{i}")
    assert r.status == "completed"
    return r.conversation_id


def test_a_stolen_database_and_wal_yield_no_answer_words(tmp_path, library):
    store = Store(tmp_path / "enc.db")
    conv = answer(store, library)
    # the WAL before the checkpoint
    assert os.path.getsize(store.path + "-wal") > 0
    data = raw(store.path)
    assert [w for w in WORDS + ("Philomena",) if w.encode() in data] == []
    # and the database file itself after one
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = raw(store.path)
    assert [w for w in WORDS + ("Philomena",) if w.encode() in data] == []
    # while the store reads them back (a transcript, answers, the name)
    said = [line["text"] for line in store.transcript(conv) if line["kind"] == "answer"]
    assert said == list(ANSWERS)
    assert [a["raw"] for a in store.answers(conv)] == list(ANSWERS)
    store.close()
    again = Store(tmp_path / "enc.db")
    assert [line["text"] for line in again.transcript(conv) if line["kind"] == "answer"] == list(ANSWERS)


def test_every_person_text_column_is_stored_as_ciphertext(tmp_path, library):
    """Each PERSON_TEXT column written through the store holds only prefixed ciphertext."""
    store = Store(tmp_path / "cols.db")
    conv = answer(store, library)
    pid = store.person("tg:a1")
    with store.transaction():
        case = store.create_case(store.person("tg:9"), "FGC-1")
        store.set_conversation_case(conv, case)
        store.set_pseudonym(case, pid, "Pseudonymia", "tg:9")
        store.set_case_info(case, "danger_statement", "Danger words", "tg:9")
        line = store.add_line(conv, "in", "Alarmwords", kind="answer", flagged=True)
        store.add_alert(conversation_id=conv, person_id=pid, transcript_id=line, concern="harm", words="Alarmwords",
                        next_notify_at=None)
        store.add_review_item(conversation_id=conv, person_id=pid, transcript_id=line, concern="worry",
                              matched="Alarm")
        store.add_missed(conversation_id=conv, step_id="x", words="Missedwords", reported_by="tg:9")
        store.add_comment(conv, store.person("tg:9"), "Commentwords", None)
        store.add_scheduled(person_id=pid, kind="nudge", text="Nudgewords", due_at="2099-01-01T00:00:00Z", why="t",
                            conversation_id=conv)
    cur = store.db.conn.cursor()
    cur.row_factory = None  # the values as stored
    plain = {}
    for table, column in PERSON_TEXT:
        values = [v for (v,) in cur.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")]
        assert values, f"{table}.{column}: nothing written by this test"
        plain[f"{table}.{column}"] = [v for v in values if not dbkey.is_ciphertext(v)]
    assert plain == {name: [] for name in plain}


def test_the_wrong_key_is_refused_in_words(tmp_path, library, monkeypatch):
    store = Store(tmp_path / "k.db")
    answer(store, library)
    store.close()
    monkeypatch.setenv("RESTORATIVE_DB_KEY", dbkey.encode_key(dbkey.new_key()))
    with pytest.raises(StoreError, match="does not open this database's text"):
        Store(tmp_path / "k.db")
    # and through the command line: a sentence, no traceback, no key
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "bot", "export", "--all", "--db", str(tmp_path / "k.db")],
                         capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "does not open this database's text" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert env["RESTORATIVE_DB_KEY"] not in out.stderr + out.stdout


def test_the_first_run_makes_a_private_key_file_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RESTORATIVE_DB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    keys = dbkey.load_keyring()
    path = tmp_path / "cfg" / "restorative-bot" / "db.key"
    assert keys.key_file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    err = capsys.readouterr().err
    assert str(path) in err and path.read_text().strip() not in err
    assert dbkey.load_keyring().current == keys.current  # the second run reads the same key
    assert capsys.readouterr().err == ""


def test_a_damaged_or_foreign_key_file_is_refused_in_words(tmp_path, monkeypatch):
    monkeypatch.delenv("RESTORATIVE_DB_KEY")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    monkeypatch.setenv("RESTORATIVE_DB_KEY_FILE", str(bad))
    with pytest.raises(StoreError, match="not a restorative-bot database key"):
        Store(tmp_path / "x.db")
    monkeypatch.setenv("RESTORATIVE_DB_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(StoreError, match="no database key file"):
        Store(tmp_path / "x.db")


def test_a_tampered_value_does_not_decrypt():
    keys = dbkey.Keyring(dbkey.new_key(), "test")
    blob = bytearray(keys.encrypt("hello"))
    blob[-1] ^= 1
    with pytest.raises(dbkey.WrongKey):
        keys.decrypt(bytes(blob))
    assert keys.decrypt(keys.encrypt("hello")) == "hello"
