"""rotate-key re-encrypts in place and survives SIGKILL mid-run (issue 17 item 3); backup makes a
private, still-encrypted online copy, and restore checks a file before it replaces the database
(item 4)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import dbkey
from bot.cli import main
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import PERSON_TEXT, SCHEMA_VERSION, Store, StoreError

ANSWERS = ("Quetzalcoatl picnic hopes", "6", "Xanthippe homework truce", "Zanzibar calmer bedtimes", "8",
           "Ocelot nothing more")


def fill(store, library, people: int) -> dict[int, list[str]]:
    service = ConversationService(store, library)
    out = {}
    for n in range(people):
        pid = store.person(f"tg:{100 + n}", f"Name{n}")
        r = service.start(pid, "scaling-checkin", input_key=f"{n}:0")
        for i, text in enumerate(ANSWERS, 1):
            r = service.handle(pid, Input.from_text(f"{text} {n}"), input_key=f"{n}:{i}")
        out[r.conversation_id] = [line["text"] for line in store.transcript(r.conversation_id)]
    return out


def kids(path, kid: bytes) -> tuple[int, int]:
    """(values under ``kid``, values under another key or in clear), read raw."""
    conn = sqlite3.connect(path)
    mine = other = 0
    try:
        for table, column in PERSON_TEXT:
            for (v,) in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                if dbkey.is_ciphertext(v) and v[4:8] == kid:
                    mine += 1
                else:
                    other += 1
    finally:
        conn.close()
    return mine, other


@pytest.fixture
def keyfile(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "db.key"
    dbkey.write_key_file(path, dbkey.new_key())
    monkeypatch.delenv("RESTORATIVE_DB_KEY")
    monkeypatch.setenv("RESTORATIVE_DB_KEY_FILE", str(path))
    return path


def test_rotate_key_killed_mid_run_resumes_and_every_value_opens_with_the_new_key_only(tmp_path, library,
                                                                                       keyfile):
    db = str(tmp_path / "rot.db")
    store = Store(db)
    said = fill(store, library, 12)
    old = keyfile.read_text()
    store.close()
    cmd = [sys.executable, "-m", "bot", "rotate-key", "--db", db, "--batch", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    pending = dbkey.pending_path(keyfile)
    deadline = time.monotonic() + 60
    new_kid = None
    while time.monotonic() < deadline and proc.poll() is None:  # wait for the rotation to be under way
        if new_kid is None and pending.exists():
            with open(pending) as f:
                text = f.read()
            if text.strip():
                new_kid = dbkey.key_id(dbkey.decode_key(text, "pending"))
        if new_kid is not None and kids(db, new_kid)[0] >= 5:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "rotate-key finished before it could be killed"
    mine, other = kids(db, new_kid)
    assert mine > 0 and other > 0  # killed half way: some values under each key
    assert keyfile.read_text() == old and pending.exists()
    # meanwhile the database still opens and reads with both keys
    s = Store(db)
    assert {c: [line["text"] for line in s.transcript(c)] for c in said} == said
    s.close()
    # the second run finishes the job
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "rotated:" in out.stdout
    assert not pending.exists() and keyfile.read_text() != old
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    new = dbkey.decode_key(keyfile.read_text(), "new")
    assert dbkey.key_id(new) == new_kid
    assert kids(db, new_kid) == (mine + other, 0)
    only_new = Store(db, keyring=dbkey.Keyring(new, "test"))
    assert {c: [line["text"] for line in only_new.transcript(c)] for c in said} == said
    only_new.close()
    with pytest.raises(Exception, match="does not open this database's text"):
        Store(db, keyring=dbkey.Keyring(dbkey.decode_key(old, "old"), "the old key"))
    assert keyfile.read_text().strip() not in out.stdout + out.stderr


def test_rotate_key_encrypts_text_written_before_encryption(tmp_path, library, keyfile):
    db = str(tmp_path / "legacy.db")
    store = Store(db)
    conv = next(iter(fill(store, library, 1)))
    store.db.execute("UPDATE transcript SET text = 'Legacyplain words' WHERE id = 1")  # as an old version left it
    store.close()
    result = CliRunner().invoke(main, ["rotate-key", "--db", db])
    assert result.exit_code == 0, result.output
    s = Store(db)
    assert s.transcript(conv)[0]["text"] == "Legacyplain words"
    assert set(s.key_ids()) == {s.keys.kid.hex()}
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Legacyplain" not in Path(db).read_bytes()


def test_rotate_key_with_the_key_in_the_environment_needs_the_new_one_there(tmp_path, library, monkeypatch):
    db = str(tmp_path / "env.db")
    store = Store(db)
    fill(store, library, 1)
    store.close()  # rotate-key needs the database to itself
    result = CliRunner().invoke(main, ["rotate-key", "--db", db])
    assert result.exit_code != 0 and "RESTORATIVE_DB_NEW_KEY" in result.output
    new = dbkey.encode_key(dbkey.new_key())
    monkeypatch.setenv("RESTORATIVE_DB_NEW_KEY", new)
    result = CliRunner().invoke(main, ["rotate-key", "--db", db])
    assert result.exit_code == 0, result.output
    assert new not in result.output
    monkeypatch.setenv("RESTORATIVE_DB_KEY", new)
    monkeypatch.delenv("RESTORATIVE_DB_NEW_KEY")
    assert set(Store(db).key_ids()) == {dbkey.key_id(dbkey.decode_key(new, "n")).hex()}


def test_backup_is_private_encrypted_and_restore_brings_it_back(tmp_path, library):
    db = str(tmp_path / "live.db")
    store = Store(db)
    said = fill(store, library, 2)
    copy = str(tmp_path / "copy.db")
    result = CliRunner().invoke(main, ["backup", copy, "--db", db])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    data = Path(copy).read_bytes()
    assert [w for w in ("Quetzalcoatl", "Xanthippe", "Name0") if w.encode() in data] == []
    assert not os.path.exists(copy + "-wal")
    # refuses to overwrite without --force
    again = CliRunner().invoke(main, ["backup", copy, "--db", db])
    assert again.exit_code != 0 and "already exists" in again.output
    # later changes are undone by the restore
    later = fill(store, library, 3)
    assert len(later) == 3
    store.close()
    result = CliRunner().invoke(main, ["restore", copy, "--db", db])
    assert result.exit_code == 0, result.output
    s = Store(db)
    ids = [r[0] for r in s.db.execute("SELECT id FROM conversations ORDER BY id")]
    assert ids == sorted(said)
    assert {c: [line["text"] for line in s.transcript(c)] for c in said} == said
    assert [r["action"] for r in s.audit_log()][-1] == "restore"


def test_restore_refuses_a_damaged_foreign_or_newer_file_and_keeps_the_database(tmp_path, library, monkeypatch):
    db = str(tmp_path / "live.db")
    store = Store(db)
    said = fill(store, library, 1)
    good = str(tmp_path / "good.db")
    store.backup_to(good)

    def refused(path, words):
        result = CliRunner().invoke(main, ["restore", path, "--db", db])
        assert result.exit_code != 0 and words in result.output, result.output
        assert "Traceback" not in result.output

    damaged = tmp_path / "damaged.db"
    data = bytearray(Path(good).read_bytes())
    data[4096: 4096 + 12] = b"\x0d" + b"\xff" * 11  # page 2's header overwritten
    damaged.write_bytes(bytes(data))
    refused(str(damaged), "damaged.db")
    newer = tmp_path / "newer.db"
    newer.write_bytes(Path(good).read_bytes())
    c = sqlite3.connect(newer)
    c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    c.close()
    refused(str(newer), "schema version")
    refused(str(tmp_path / "absent.db"), "no such file")
    other_key = dbkey.Keyring(dbkey.new_key(), "other")
    foreign_db = str(tmp_path / "foreign-live.db")
    fill(Store(foreign_db, keyring=other_key), library, 1)
    foreign = str(tmp_path / "foreign.db")
    Store(foreign_db, keyring=other_key).backup_to(foreign)
    refused(foreign, "does not decrypt")
    s = Store(db)
    assert {cid: [line["text"] for line in s.transcript(cid)] for cid in said} == said


def test_rotate_key_and_restore_refuse_while_the_bot_has_the_database_open(tmp_path, library, keyfile):
    """A running bot keeps writing with the key it started with: a rotation finishing beside it
    would leave those values under a key that is then thrown away. So rotate-key and restore
    need the database to themselves, and nothing opens it while they run."""
    db = str(tmp_path / "busy.db")
    bot = Store(db)  # stands for serve (or the web site, or a long command) in another process
    fill(bot, library, 1)
    old = keyfile.read_text()
    good = str(tmp_path / "good.db")
    bot.backup_to(good)
    for args in (["rotate-key", "--db", db], ["restore", good, "--db", db]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and "has this database open; stop it" in result.output, result.output
        assert "Traceback" not in result.output
    assert keyfile.read_text() == old and not dbkey.pending_path(keyfile).exists()
    bot.close()
    rotating = Store(db)
    rotating.exclusive("run rotate-key")
    with pytest.raises(StoreError, match="a key rotation or a restore is running on this database"):
        Store(db)
    rotating.close()
    result = CliRunner().invoke(main, ["rotate-key", "--db", db])
    assert result.exit_code == 0, result.output
    Store(db).close()  # and once it has finished, the bot opens it again
