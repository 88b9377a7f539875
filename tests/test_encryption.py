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
        store.add_review_item(conversation_id=None, person_id=pid, transcript_id=None, concern="worry",
                              matched="Alarm", words="Reviewwords")  # outside any conversation: the words too
        store.add_missed(conversation_id=conv, step_id="x", words="Missedwords", reported_by="tg:9")
        store.add_comment(conv, store.person("tg:9"), "Commentwords", None)
        store.add_scheduled(person_id=pid, kind="nudge", text="Nudgewords", due_at="2099-01-01T00:00:00Z", why="t",
                            conversation_id=conv)
        store.inbox_add([(77, "1", "tg:a1", '{"update_id": 77, "message": {"text": "Inboxwords"}}')])
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


def test_a_key_file_named_in_the_configuration_is_made_there_and_used_by_every_command(tmp_path):
    """data_protection: key_file: in the YAML configuration (relative to the file) holds the key:
    the first run makes it there (0600) and not at the default place, and later commands, given
    the same configuration, read the answers; without it they are refused in words."""
    (tmp_path / "deploy").mkdir()
    config = tmp_path / "deploy" / "config.yaml"
    config.write_text("data_protection:\n  key_file: keys/db.key\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTORATIVE_DB_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home-config")
    db = tmp_path / "cfgkey.db"

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=120)

    out = cli("chat", "scaling-checkin", "--db", str(db), "--as", "sam", "--for", "adult", "--config", str(config),
              stdin="\n".join(ANSWERS) + "\n")
    assert out.returncode == 0, out.stderr
    key = tmp_path / "deploy" / "keys" / "db.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert str(key) in out.stderr and key.read_text().strip() not in out.stdout + out.stderr
    assert not (tmp_path / "home-config").exists()  # no second key at the default place
    assert not [w for w in WORDS if w.encode() in raw(db)]
    env["RESTORATIVE_CONFIG"] = str(config)  # the configuration from the environment works the same
    shown = cli("export", "--all", "--format", "json", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert all(w in shown.stdout for w in WORDS)
    key.unlink()
    refused = cli("export", "--all", "--format", "json", "--db", str(db))
    assert refused.returncode != 0 and "data_protection: key_file:" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout


def test_a_bad_key_file_setting_is_reported_at_its_line():
    from bot.config import Config, ConfigError
    from bot.engine.yamlpos import parse_yaml

    data, _ = parse_yaml("data_protection:\n  contact: admin\n  key_file: [a, b]\n", "c.yaml")
    with pytest.raises(ConfigError) as e:
        Config.from_data(data, "c.yaml")
    assert [str(x) for x in e.value.errors] == [
        "c.yaml:3:13: 'key_file' must be the path of the database key file, e.g. key_file: /etc/restorative-bot/db.key"]


def test_a_lost_key_file_is_never_replaced_and_a_wrong_key_is_caught_whatever_the_text(tmp_path, monkeypatch):
    """Review-dp F5: a database whose only text is a worker's case text (no answer, no name yet)
    accepted any key, and with the default key file gone a NEW key was made for it, so text
    ended up under two keys. Now no key is made for a database that exists (the person is told
    which file to put back, without a traceback), and the check value in `meta` catches a
    wrong key whatever the database holds."""
    from click.testing import CliRunner

    from bot.cli import main

    monkeypatch.delenv("RESTORATIVE_DB_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    db = str(tmp_path / "case-only.db")
    store = Store(db)  # the first run makes the default key file
    key_file = dbkey.default_key_path()
    assert key_file.exists()
    with store.transaction():
        case = store.create_case(store.person("tg:3"), "FGC-9")
    store.set_case_info(case, "danger_statement", "Kumquat statement")
    store.close()

    key_file.unlink()  # the key file is lost
    with pytest.raises(StoreError, match="Put back the key file") as refused:
        Store(db)
    assert str(key_file) in str(refused.value) and not key_file.exists()  # named, and not made again
    result = CliRunner().invoke(main, ["erasure", "list", "--db", db])
    assert result.exit_code != 0 and "Put back the key file" in result.output
    assert "Traceback" not in result.output and not key_file.exists()

    monkeypatch.setenv("RESTORATIVE_DB_KEY", dbkey.encode_key(dbkey.new_key()))  # some other key
    with pytest.raises(StoreError, match="does not open this database's text"):
        Store(db)
