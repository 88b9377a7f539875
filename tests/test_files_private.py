"""Files are private (issue 11, finding 9): the process umask, the database and its journal
files, and every export are readable by their owner only; an export never replaces a file
unless told to."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # what most systems give a process: files world-readable
    yield
    os.umask(old)


def test_the_database_and_its_wal_and_shm_files_are_0600(tmp_path, open_umask):
    db = tmp_path / "p.db"
    store = Store(db)
    with store.transaction():
        store.person("tg:1", "Sam")
    assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()  # open, in WAL mode
    assert {name: mode(name) for name in (db, f"{db}-wal", f"{db}-shm")} == {
        db: 0o600, f"{db}-wal": 0o600, f"{db}-shm": 0o600}
    store.close()


def test_an_existing_world_readable_database_is_made_private(tmp_path, open_umask):
    db = tmp_path / "old.db"
    Store(db).close()
    os.chmod(db, 0o644)
    Store(db).close()
    assert mode(db) == 0o600


def test_the_command_line_sets_a_private_umask(open_umask):
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, ["flows"])
    assert result.exit_code == 0, result.output
    now = os.umask(0o022)
    assert now == 0o077


def run_cli(*args, umask=0o022):
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          preexec_fn=lambda: os.umask(umask))


def test_exports_are_0600_and_never_overwrite_without_force(tmp_path):
    db = tmp_path / "e.db"
    chat = subprocess.run([sys.executable, "-m", "bot", "chat", "scaling-checkin", "--db", str(db), "--as", "sam"],
                          input="We talk more\n6\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
                          preexec_fn=lambda: os.umask(0o022))
    assert chat.returncode == 0, chat.stderr
    assert mode(db) == 0o600
    for fmt in ("md", "html", "csv", "json"):
        out = tmp_path / f"t.{fmt}"
        made = run_cli("export", "--all", "--format", fmt, "--out", str(out), "--db", str(db))
        assert made.returncode == 0, made.stderr
        assert mode(out) == 0o600, fmt
        first = out.read_text()
        out.write_text("keep me")
        again = run_cli("export", "--all", "--format", fmt, "--out", str(out), "--db", str(db))
        assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
        assert out.read_text() == "keep me" and "Traceback" not in again.stderr
        os.chmod(out, 0o644)
        forced = run_cli("export", "--all", "--format", fmt, "--out", str(out), "--force", "--db", str(db))
        assert forced.returncode == 0, forced.stderr
        assert out.read_text() == first and mode(out) == 0o600
