"""Checks against the database and the fake server: acknowledged answers kept, none lost, none doubled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks.chaos.flow import (
    FLOW_ID,
    TAG,
    expected_shown,
)
from benchmarks.chaos.person import (
    ChaosUser,
)
from benchmarks.chaos.report import (
    Report,
)
from benchmarks.users import WatchedFake

# -- checks against the database ----------------------------------------------------------

def _db(path: Path) -> sqlite3.Connection:
    from bot.dbkey import decrypting

    return decrypting(sqlite3.connect(path, timeout=30))  # the serve process's key, from the environment


def _conversations(conn, user: int) -> list[tuple[int, str]]:
    return conn.execute(
        """SELECT c.id, c.status FROM conversations c JOIN people p ON p.id = c.person_id
           WHERE p.key = ? AND c.flow_id = ? ORDER BY c.id""", (f"tg:{user}", FLOW_ID)).fetchall()


def check_acknowledged(db: Path, users: list[ChaosUser], report: Report) -> None:
    """Right after a kill: every acknowledged answer of the conversation under way is stored;
    at most the one in flight more."""
    conn = _db(db)
    try:
        for u in users:
            if u.pos is None or u.done:
                continue
            convs = _conversations(conn, u.id)
            if not convs:
                report.violations.append(f"user {u.id}: a conversation under way is not in the database")
                continue
            rows = conn.execute("SELECT step_id FROM answers WHERE conversation_id = ? AND current = 1",
                                (convs[-1][0],)).fetchall()
            stored = {r[0] for r in rows}
            missing = [s for s in u.acked if s not in stored]
            if missing:
                report.violations.append(f"user {u.id}: acknowledged {missing} not stored after a kill")
            extra = stored - set(u.acked) - ({u.in_flight} if u.in_flight else set())
            if len(extra) > 1:  # the answer being sent right now may land in the new process
                report.violations.append(f"user {u.id}: stored {sorted(extra)} beyond what was acknowledged")
    finally:
        conn.close()
    report.checks += 1


def check_none_lost(db: Path, updates: list[tuple[int, int]], report: Report) -> None:
    """Every update a person sent was handled (its input key is stored), so none was
    confirmed to Telegram and then dropped.
    A lost one is a violation even though the simulated person, like a real one, would
    send /start and carry on."""
    conn = _db(db)
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM inputs")}
        dropped = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'rate.limited'").fetchone()[0]
    finally:
        conn.close()
    lost = [(user, u) for user, u in updates if f"tg:{u}" not in keys]
    if lost and not dropped:
        for user, u in lost[:10]:
            report.violations.append(f"user {user}: update {u} was confirmed to Telegram but never handled (lost)")


def check_final(db: Path, users: list[ChaosUser], report: Report) -> None:
    """Each user's conversations: as many as they began, finished ones complete and exactly
    theirs, every answer stored once, no input applied twice."""
    conn = _db(db)
    try:
        for u in users:
            want = expected_shown(u.plan)
            convs = _conversations(conn, u.id)
            if len(convs) != u.started:
                report.violations.append(f"user {u.id}: {len(convs)} conversations in the database, began {u.started}")
                continue
            report.conversations += len(convs)
            for i, (cid, status) in enumerate(convs):
                rows = conn.execute(
                    "SELECT step_id, shown, revision FROM answers WHERE conversation_id = ? AND current = 1",
                    (cid,)).fetchall()
                got = {s: shown for s, shown, _ in rows}
                last = i == len(convs) - 1
                if not last or u.done:
                    if status != "completed" or got != want:
                        report.violations.append(f"user {u.id}: finished conversation {cid} stored as {status} {got}")
                else:
                    for s in u.acked:
                        if got.get(s) != want[s]:
                            report.violations.append(f"user {u.id}: acknowledged {s}={want[s]!r} stored as {got.get(s)!r}")
                wrong = {s: got[s] for s in got if got[s] != want.get(s)}
                if wrong:
                    report.violations.append(f"user {u.id}: answers not theirs or wrong in {cid}: {wrong}")
                twice = [s for s, _, r in rows if r != 1]
                if twice:
                    report.violations.append(f"user {u.id}: answered more than once in {cid}: {twice}")
                keys = conn.execute(
                    """SELECT input_key, COUNT(*) FROM transcript WHERE conversation_id = ? AND direction = 'in'
                       AND input_key IS NOT NULL GROUP BY input_key HAVING COUNT(*) > 1""", (cid,)).fetchall()
                if keys:
                    report.violations.append(f"user {u.id}: inputs applied twice in {cid}: {keys}")
            if u.done:
                report.finished += 1
    finally:
        conn.close()


def count_repeats(fake: WatchedFake, users: list[ChaosUser], report: Report) -> None:
    """Questions sent again though nobody asked (a resume asks for the current one again)."""
    for u in users:
        got: dict[str, int] = {}
        for msg in fake.bot_msgs.get(u.id, []):
            if m := TAG.search(msg.text or ""):
                got[m.group(1)] = got.get(m.group(1), 0) + 1
        extra = sum(max(0, n - u.expect.get(tag, 0)) for tag, n in got.items())
        report.duplicate_questions += extra
        if extra and len(report.notes) < 8:
            report.notes.append(f"user {u.id} was sent a question again unasked; trace:\n    " + "\n    ".join(u.trace))


def _error_lines(log: Path) -> list[str]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if '"level": "error"' in line or "Traceback" in line:
            out.append(line[:300])
    return out
