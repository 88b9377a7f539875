"""The store: every table, migration and query (the only module with SQL).

SQLite through sqlite-utils, in WAL mode. Each input to a conversation is committed in
one transaction (answer + transcript lines + new state + processed-input key) before a
reply is sent; in a server, the inputs waiting together share one commit (:meth:`Store.run_group`:
a savepoint each, so one that fails rolls back alone). Timestamps are UTC ISO 8601. The schema version lives in
``PRAGMA user_version``; :data:`MIGRATIONS` upgrades an older database in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from bot import dbkey

DEFAULT_DB = "restorative.db"
_log = logging.getLogger("bot.store")


def iso(t: datetime) -> str:
    """The one timestamp format in the database (UTC, microseconds, 'Z'): they compare as text."""
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """The inverse of :func:`iso`: an aware UTC datetime from a stored timestamp."""
    return datetime.fromisoformat(text)


def _i18n():
    """bot.i18n, imported on first use (it imports the store's neighbours), then kept."""
    global _i18n_module
    if _i18n_module is None:
        from bot import i18n as _i18n_module
    return _i18n_module


_i18n_module = None
# json.dumps for what an input writes (its state, answer and reply: about 3 per input on the
# store thread): the same text, without the check for circular references (plain data from
# the engine, never circular), which is a fifth of the time it takes.
_dumps = json.JSONEncoder(check_circular=False).encode
_SECOND: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def now() -> str:
    """The time now, as :func:`iso` writes it. Several rows are written per input, so the
    date and time to the second are formatted once a second, not for every row."""
    global _SECOND
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _SECOND
    if cached[0] != second:
        cached = _SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micro:06d}Z"


def default_db_path() -> str:
    return os.environ.get("RESTORATIVE_DB") or DEFAULT_DB


_REPEATS = re.compile(r"^(?:(.*) )?\(x(\d+)\)$", re.S)


def _repeats(detail: str | None) -> tuple[str | None, int]:
    """('denied', 3) from 'denied (x3)'; (detail, 1) when it carries no count."""
    m = _REPEATS.match(detail or "")
    if not m:
        return detail, 1
    return m.group(1), int(m.group(2))


class StoreError(Exception):
    """A database that cannot be opened or used; the message is for people."""


PRIVATE_MODE = 0o600


def private_file(path: str | Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and -shm
    files the database's mode), and take group and other access away from an existing one."""
    path = str(path)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))
    except OSError:
        return  # e.g. a read-only folder: sqlite3 reports the problem in its own words
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, PRIVATE_MODE)
        except OSError:
            pass


# --- migrations --------------------------------------------------------------------
# Never edit a released migration: add a new one. tests/fixtures/db_v1.sqlite was made
# by migration 1 and must keep upgrading cleanly.

def _m1_core(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,          -- 'tg:12345', 'console:alex'
            display_name TEXT,                 -- # person-text (a name)
            created_at TEXT NOT NULL
        );
        CREATE TABLE flow_snapshots (
            sha TEXT PRIMARY KEY,              -- sha256 of the flow file's text
            flow_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            flow_id TEXT NOT NULL,
            flow_version INTEGER NOT NULL,
            flow_sha TEXT NOT NULL REFERENCES flow_snapshots(sha),
            state TEXT NOT NULL,
            session TEXT NOT NULL,             -- JSON: answers so far, path taken  # person-text
            status TEXT NOT NULL DEFAULT 'in_progress',  -- in_progress | completed | cancelled
            frontend TEXT,
            chat_id TEXT,
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX idx_conversations_person ON conversations(person_id, status);
        CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            step_id TEXT NOT NULL,
            value TEXT,                        -- JSON of the parsed value  # person-text
            raw TEXT,                          -- exactly what was typed or pressed  # person-text
            shown TEXT,                        -- the answer as read back to the person  # person-text
            revision INTEGER NOT NULL DEFAULT 1,
            current INTEGER NOT NULL DEFAULT 1,
            answered_at TEXT NOT NULL,
            UNIQUE (conversation_id, step_id)
        );
        CREATE TABLE transcript (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            direction TEXT NOT NULL,           -- 'in' (from the person) | 'out' (from the bot)
            kind TEXT,                         -- question | message | error | info | answer | command
            step_id TEXT,
            text TEXT NOT NULL,                -- # person-text (both ways: questions read answers back)
            input_key TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_transcript_conversation ON transcript(conversation_id, id);
        CREATE TABLE inputs (
            key TEXT PRIMARY KEY,              -- e.g. 'tg:update:123': a repeated key changes nothing
            conversation_id INTEGER,
            reply TEXT,                        -- JSON of the prompts returned the first time  # person-text
            created_at TEXT NOT NULL
        );
        """
    )


def _m2_cases_alerts_audit(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL,
            practitioner_id INTEGER REFERENCES people(id),
            created_at TEXT NOT NULL,
            UNIQUE (practitioner_id, ref)
        );
        ALTER TABLE conversations ADD COLUMN case_id INTEGER REFERENCES cases(id);
        CREATE INDEX idx_conversations_case ON conversations(case_id);
        ALTER TABLE transcript ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER REFERENCES conversations(id),
            person_id INTEGER REFERENCES people(id),
            transcript_id INTEGER REFERENCES transcript(id),
            concern TEXT NOT NULL,
            words TEXT NOT NULL,               -- verbatim  # person-text
            created_at TEXT NOT NULL,
            notify_count INTEGER NOT NULL DEFAULT 0,
            next_notify_at TEXT,
            acknowledged_at TEXT,
            acknowledged_by TEXT
        );
        CREATE INDEX idx_alerts_open ON alerts(acknowledged_at, next_notify_at);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            actor TEXT,
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_audit_time ON audit(created_at);
        """
    )


def _m3_delivery(db: sqlite_utils.Database) -> None:
    # When a reply has reached the person: a re-delivered input whose reply was never
    # sent (crash between commit and send) gets its reply sent again, and only then.
    db.executescript("ALTER TABLE inputs ADD COLUMN delivered_at TEXT;")


def _m4_access(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE roles (
            person_id INTEGER NOT NULL REFERENCES people(id),
            role TEXT NOT NULL,                -- admin | supervisor | practitioner | family
            granted_by TEXT,
            granted_at TEXT NOT NULL,
            PRIMARY KEY (person_id, role)
        );
        CREATE TABLE teams (
            supervisor_id INTEGER NOT NULL REFERENCES people(id),
            practitioner_id INTEGER NOT NULL REFERENCES people(id),
            created_at TEXT NOT NULL,
            PRIMARY KEY (supervisor_id, practitioner_id)
        );
        CREATE INDEX idx_teams_practitioner ON teams(practitioner_id);
        CREATE TABLE invites (
            id INTEGER PRIMARY KEY,
            code_hash TEXT NOT NULL UNIQUE,    -- sha256 of the code: the code itself is never stored
            flow_id TEXT NOT NULL,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            practitioner_id INTEGER NOT NULL REFERENCES people(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            opened_by INTEGER REFERENCES people(id),
            used_at TEXT,
            used_by INTEGER REFERENCES people(id),
            conversation_id INTEGER REFERENCES conversations(id),
            revoked_at TEXT
        );
        CREATE TABLE comments (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            step_id TEXT,                      -- a comment on one answer, or NULL for the whole transcript
            author_id INTEGER NOT NULL REFERENCES people(id),
            text TEXT NOT NULL,                -- # person-text (staff's words about the answers, may quote them)
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_comments_conversation ON comments(conversation_id);
        CREATE TABLE reviews (
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            supervisor_id INTEGER NOT NULL REFERENCES people(id),
            reviewed_at TEXT NOT NULL,
            PRIMARY KEY (conversation_id, supervisor_id)
        );
        CREATE INDEX idx_cases_practitioner ON cases(practitioner_id);
        CREATE INDEX idx_audit_actor ON audit(actor, created_at);
        """
    )


def _m5_undelivered(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE INDEX idx_inputs_undelivered ON inputs(created_at) WHERE delivered_at IS NULL AND reply IS NOT NULL;
        CREATE INDEX idx_inputs_conversation ON inputs(conversation_id, created_at);
        """
    )


def _m8_respondent_practice(db: sqlite_utils.Database) -> None:
    # Who is answering (bot/respondent.py), who was present (a worker-present session on the
    # worker's device), and practice: a conversation that is not a case. Practice alerts are
    # recorded and shown but never sent to leads. Terminal conversations before this
    # migration had no case and were trials: they, and their alerts, become practice, so a
    # `serve` on a database used for trials sends none of them.
    db.executescript(
        """
        ALTER TABLE conversations ADD COLUMN respondent TEXT;  -- child | young_person | adult | practitioner | NULL
        ALTER TABLE conversations ADD COLUMN practice INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE conversations ADD COLUMN present_id INTEGER REFERENCES people(id);
        ALTER TABLE invites ADD COLUMN respondent TEXT;
        ALTER TABLE alerts ADD COLUMN practice INTEGER NOT NULL DEFAULT 0;
        UPDATE conversations SET practice = 1 WHERE frontend = 'console' AND case_id IS NULL;
        UPDATE alerts SET practice = 1, next_notify_at = NULL
         WHERE conversation_id IN (SELECT id FROM conversations WHERE practice = 1)
            OR (conversation_id IS NULL AND person_id IN (SELECT id FROM people WHERE key LIKE 'console:%'));
        """
    )


def _m_alert_per_person(db: sqlite_utils.Database) -> None:
    # One open alert per person: later words are added to it (update_count) and notified
    # once more; notified_updates says how many of those updates a notice has carried.
    db.executescript(
        """
        ALTER TABLE alerts ADD COLUMN update_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alerts ADD COLUMN notified_updates INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alerts ADD COLUMN updated_at TEXT;
        CREATE INDEX idx_alerts_person_open ON alerts(person_id) WHERE acknowledged_at IS NULL;
        CREATE INDEX idx_audit_action_target ON audit(action, target);
        CREATE INDEX idx_invites_practitioner ON invites(practitioner_id);
        """
    )


def _m_quiet_review_unread_missed(db: sqlite_utils.Database) -> None:
    # Issue 12: the quiet "review" safeguarding tier, nothing left unread, missed disclosures.
    db.executescript(
        """
        ALTER TABLE transcript ADD COLUMN tier TEXT;          -- alert | review | NULL (not flagged)
        CREATE TABLE review_items (                             -- quiet tier: queued, never interrupts
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER REFERENCES conversations(id),
            person_id INTEGER NOT NULL REFERENCES people(id),
            transcript_id INTEGER REFERENCES transcript(id),
            concern TEXT NOT NULL,                              -- concern ids, comma separated
            matched TEXT,                                       -- the phrase that matched (the reason)  # person-text
            created_at TEXT NOT NULL,
            reminded_at TEXT,                                   -- the practitioner was reminded
            escalated_at TEXT,                                  -- then their supervisor was told
            acknowledged_at TEXT,
            acknowledged_by TEXT
        );
        CREATE INDEX idx_review_items_open ON review_items(acknowledged_at, created_at);
        CREATE INDEX idx_review_items_conversation ON review_items(conversation_id);
        CREATE TABLE unread (                                   -- free-text answers nobody has read yet
            transcript_id INTEGER PRIMARY KEY REFERENCES transcript(id),
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            flagged INTEGER NOT NULL DEFAULT 0,                 -- counted even without consent
            created_at TEXT NOT NULL,
            read_at TEXT,
            read_by TEXT,
            reminded_at TEXT,
            escalated_at TEXT
        );
        CREATE INDEX idx_unread_open ON unread(read_at, created_at);
        CREATE INDEX idx_unread_conversation ON unread(conversation_id, read_at);
        CREATE TABLE missed_disclosures (                       -- /missed: what the lexicon did not catch
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER REFERENCES conversations(id),
            step_id TEXT,
            words TEXT NOT NULL,                                -- verbatim, as the practitioner gave them  # person-text
            reported_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


def _m_comment_visibility(db: sqlite_utils.Database) -> None:
    # internal: staff only (every comment before this migration was written as one);
    # shared: the family sees it too.
    db.executescript("ALTER TABLE comments ADD COLUMN visibility TEXT NOT NULL DEFAULT 'internal';")


def _m_schedule(db: sqlite_utils.Database) -> None:
    # Issue 15: the one table of due messages (bot/schedule.py). A row is written in the same
    # transaction as the answer that caused it; `serve` claims it (pending -> sending), sends
    # it, and marks it sent only once Telegram has confirmed. Texts never carry answers.
    db.executescript(
        """
        CREATE TABLE schedule (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),   -- who receives it
            kind TEXT NOT NULL,                                 -- nudge | date | ...
            text TEXT NOT NULL,                                 -- what is sent (no answer content)  # person-text
            due_at TEXT NOT NULL,                               -- when (UTC)
            why TEXT NOT NULL,                                  -- e.g. 'conversation 12 unfinished'
            conversation_id INTEGER REFERENCES conversations(id),
            case_id INTEGER REFERENCES cases(id),
            step_id TEXT,
            seq INTEGER NOT NULL DEFAULT 1,                     -- the n-th of its kind for this conversation
            state TEXT NOT NULL DEFAULT 'pending',              -- pending | sending | sent | cancelled
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            cancelled_by TEXT
        );
        CREATE INDEX idx_schedule_due ON schedule(state, due_at);
        CREATE INDEX idx_schedule_conversation ON schedule(conversation_id, kind, state);
        CREATE INDEX idx_schedule_person ON schedule(person_id, state);
        CREATE TABLE reminder_optouts (                         -- /reminders and /stop
            person_id INTEGER NOT NULL REFERENCES people(id),
            kind TEXT NOT NULL,                                 -- a kind, or '*' for all
            created_at TEXT NOT NULL,
            PRIMARY KEY (person_id, kind)
        );
        """
    )


def _m_pseudonyms(db: sqlite_utils.Database) -> None:
    # Minimisation: the name a practitioner chooses for each person in a case, used in
    # exports, alerts and lists instead of anything Telegram says about them.
    db.executescript(
        """
        CREATE TABLE case_people (
            case_id INTEGER NOT NULL REFERENCES cases(id),
            person_id INTEGER NOT NULL REFERENCES people(id),
            pseudonym TEXT NOT NULL,                   -- # person-text (a name)
            set_by TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (case_id, person_id)
        );
        """
    )


def _m_reminder_times(db: sqlite_utils.Database) -> None:
    # Issue 15: a person's own quiet hours and days without reminders (/reminders). No row, or
    # NULL quiet hours: the deployment's. Local time is the deployment's time zone.
    db.executescript(
        """
        CREATE TABLE reminder_times (
            person_id INTEGER PRIMARY KEY REFERENCES people(id),
            quiet_from TEXT,                                    -- 'HH:MM' local, NULL: the deployment's
            quiet_until TEXT,
            blocked_days TEXT NOT NULL DEFAULT '',              -- weekdays without reminders, 0 Monday .. 6 Sunday, e.g. '5,6'
            updated_at TEXT NOT NULL
        );
        """
    )


def _m_data_protection(db: sqlite_utils.Database) -> None:
    # Issue 17: legal holds on cases (never purged until released), erasure requests, and
    # conversations erased at their person's request (kept as a dated, empty record).
    db.executescript(
        """
        ALTER TABLE cases ADD COLUMN held_at TEXT;            -- a legal hold: never purged until released
        ALTER TABLE cases ADD COLUMN held_by TEXT;
        ALTER TABLE cases ADD COLUMN hold_reason TEXT;        -- staff's reason for the hold (no names, no answers)
        ALTER TABLE conversations ADD COLUMN erased_at TEXT;  -- its person's words erased at their request
        CREATE TABLE erasure_requests (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',              -- open | approved | refused
            decided_at TEXT,
            decided_by TEXT,
            reason TEXT,                                      -- the administrator's reason (no answers)
            alert_words TEXT,                                 -- erase | keep: the safeguarding lead's choice
            counts TEXT,                                      -- JSON: rows erased per table (never content)
            told_at TEXT                                      -- the person was told the outcome
        );
        CREATE INDEX idx_erasure_open ON erasure_requests(status, person_id);
        CREATE INDEX idx_inputs_created ON inputs(created_at);
        CREATE INDEX idx_conversations_updated ON conversations(updated_at);
        """
    )


def _m_present_index(db: sqlite_utils.Database) -> None:
    # Issue 18: every input asks for a worker-present session the person is running; without
    # this index that is a scan of every conversation (5 ms at 10,000, 50 ms at 100,000).
    db.executescript(
        "CREATE INDEX idx_conversations_present ON conversations(present_id, status) WHERE present_id IS NOT NULL;"
    )


def _m_reading_on_schedule(db: sqlite_utils.Database) -> None:
    # Issue 15: the unread-answer and review-item reminders are rows of the schedule table.
    # remind_id / escalate_id: the row that tells the practitioner / the supervisor about
    # this item (written once, so a restart neither loses nor repeats it); reminded_at /
    # escalated_at are set when that row is confirmed sent. Plain ids, not foreign keys: the
    # retention purge deletes old sent rows of the schedule while their items may stay.
    db.executescript(
        """
        ALTER TABLE unread ADD COLUMN remind_id INTEGER;         -- schedule.id
        ALTER TABLE unread ADD COLUMN escalate_id INTEGER;       -- schedule.id
        ALTER TABLE review_items ADD COLUMN remind_id INTEGER;   -- schedule.id
        ALTER TABLE review_items ADD COLUMN escalate_id INTEGER; -- schedule.id
        CREATE INDEX idx_unread_remind ON unread(remind_id);
        CREATE INDEX idx_unread_escalate ON unread(escalate_id);
        CREATE INDEX idx_review_items_remind ON review_items(remind_id);
        CREATE INDEX idx_review_items_escalate ON review_items(escalate_id);
        """
    )


# Words the practitioner writes for one case (danger statements, safety goals, bottom lines),
# shown inside flows as {{ case.KEY }} (issue 13). case_info.text is words about a family.
def _m_case_info(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE case_info (
            case_id INTEGER NOT NULL REFERENCES cases(id),
            key TEXT NOT NULL,                -- e.g. danger_statement
            text TEXT NOT NULL,               -- # person-text: the practitioner's words about the family
            set_by TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (case_id, key)
        );
        """
    )


def _m_web_signin(db: sqlite_utils.Database) -> None:
    # Issue 16: the review website's sign-in. A one-time link (sent by /web in Telegram or
    # printed by `restorative-bot web-link`) starts a session; only hashes are stored.
    db.executescript(
        """
        CREATE TABLE web_links (
            id INTEGER PRIMARY KEY,
            code_hash TEXT NOT NULL UNIQUE,     -- sha256 of the code: the code itself is never stored
            person_id INTEGER NOT NULL REFERENCES people(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );
        CREATE TABLE web_sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,    -- sha256 of the cookie's value
            person_id INTEGER NOT NULL REFERENCES people(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,           -- at the latest
            last_seen_at TEXT NOT NULL,         -- idle sessions end too
            ended_at TEXT
        );
        CREATE INDEX idx_web_sessions_person ON web_sessions(person_id);
        CREATE INDEX idx_web_links_person ON web_links(person_id);
        CREATE INDEX idx_unread_open_conversation ON unread(conversation_id) WHERE read_at IS NULL;
        CREATE INDEX idx_alerts_conversation ON alerts(conversation_id);
        """
    )


def _m_languages(db: sqlite_utils.Database) -> None:
    # Issue 19: the language a person chose (people), the language a conversation is in now
    # (it may switch mid-flow with /language), the language each transcript line was shown
    # or written in, and the language an invitation sets (--lang). Tags as in bot/locale/languages.yaml.
    db.executescript(
        """
        ALTER TABLE people ADD COLUMN language TEXT;
        ALTER TABLE conversations ADD COLUMN language TEXT;
        ALTER TABLE transcript ADD COLUMN language TEXT;
        ALTER TABLE invites ADD COLUMN language TEXT;
        """
    )


def _m_web_indexes(db: sqlite_utils.Database) -> None:
    # Issue 16: the website's lists on a large database (scripts/bench web): a case's latest
    # activity and its finished conversations come from the index alone.
    db.executescript("""
        CREATE INDEX idx_conversations_case_status ON conversations(case_id, status, updated_at);
        CREATE INDEX IF NOT EXISTS idx_conversations_updated ON conversations(updated_at);
    """)


def _m_inbox(db: sqlite_utils.Database) -> None:
    # Issue 18: updates kept on disk from the moment they are received until they have been
    # handled. Long polling confirms an update to Telegram, and the webhook answers 200, only
    # once it is here; a crash before it is handled loses nothing (it is handled on restart,
    # once: the input keys make a second handling change nothing). Rows go when handled.
    db.executescript(
        """
        CREATE TABLE inbox (
            update_id INTEGER PRIMARY KEY,      -- Telegram's update id: handled in this order per chat
            chat TEXT,                          -- the chat's id; NULL for an update without a chat
            person_key TEXT,                    -- 'tg:<user id>' of the sender (erasure finds their rows by it)
            raw TEXT,                           -- the update as received, JSON  # person-text
            received_at TEXT NOT NULL
        );
        """
    )


def _m_missed_audit_words(db: sqlite_utils.Database) -> None:
    # /missed wrote the person's words into the audit line ("missed:N step S: words"); the audit
    # is kept six years, in clear, and never erased. Keep the record's number and step only.
    db.execute("UPDATE audit SET detail = substr(detail, 1, instr(detail, ': ') - 1)"
               " WHERE action = 'safeguarding.missed' AND instr(detail, ': ') > 0")


def _m_reading_escalate_after(db: sqlite_utils.Database) -> None:
    # Review-sg finding 2: the supervisor's turn no longer waits for the practitioner's reminder
    # to be confirmed sent (a practitioner who blocked the bot held every escalation for ever).
    # escalate_after: when the supervisor's reminder falls due, set when the practitioner's
    # reminder fell due (that time plus the window), or at once when it could not be delivered.
    for table in ("unread", "review_items"):
        if "escalate_after" not in db[table].columns_dict:  # (a test may replay the migrations before it)
            db.execute(f"ALTER TABLE {table} ADD COLUMN escalate_after TEXT")


def _m_review_item_words(db: sqlite_utils.Database) -> None:
    # A review item from someone with no conversation (a stranger, anyone before their first
    # flow) has no transcript line to point at: its words are kept on the item itself, encrypted
    # and erased like an alert's words, so the lead reminded of it can read what was said.
    if "words" in db["review_items"].columns_dict:  # run once already (a database marked one version back)
        return
    db.executescript(
        """
        ALTER TABLE review_items ADD COLUMN words TEXT;  -- verbatim, when no transcript line holds them  # person-text
        """
    )


def _m_reminder_links(db: sqlite_utils.Database) -> None:
    # A reminder about the same items may go to several people (two supervisors, two leads),
    # one schedule row each; the items' remind_id / escalate_id name only the last, so the
    # others were dropped as "nothing left open" and never sent. Each row's items, here.
    if "reminder_links" in db.table_names():  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        CREATE TABLE reminder_links (
            schedule_id INTEGER NOT NULL REFERENCES schedule(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                 -- unread (item: transcript id) | review (item: review item id)
            item_id INTEGER NOT NULL,
            PRIMARY KEY (schedule_id, item_id)
        );
        INSERT OR IGNORE INTO reminder_links SELECT remind_id, 'unread', transcript_id FROM unread
            WHERE remind_id IN (SELECT id FROM schedule);
        INSERT OR IGNORE INTO reminder_links SELECT escalate_id, 'unread', transcript_id FROM unread
            WHERE escalate_id IN (SELECT id FROM schedule);
        INSERT OR IGNORE INTO reminder_links SELECT remind_id, 'review', id FROM review_items
            WHERE remind_id IN (SELECT id FROM schedule);
        INSERT OR IGNORE INTO reminder_links SELECT escalate_id, 'review', id FROM review_items
            WHERE escalate_id IN (SELECT id FROM schedule);
        """
    )


def _m_input_media(db: sqlite_utils.Database) -> None:
    # Words sent with a picture or file are read as typed text and the media is not kept; the
    # line says so wherever it is read, so a reviewer knows the words came with something else.
    if "media" in db["inputs"].columns_dict:  # (a test may replay the migrations before it)
        return
    db.executescript("ALTER TABLE inputs ADD COLUMN media TEXT;  -- photo | video | document | ... | NULL")


def _m_access_revocations(db: sqlite_utils.Database) -> None:
    # Review-priv finding 1: `serve` (and `web-link`) seed the roles and teams the configuration
    # lists, and a role taken away with `role revoke` came back at the next start, unaudited; a
    # supervisor moved to another team in the configuration kept the old team for ever. Now a
    # revocation (and a `team remove`) is recorded, and seeding respects it until a person grants
    # it again; a team link says where it came from, so one the configuration no longer lists goes.
    if "role_revocations" in db.table_names():  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        CREATE TABLE role_revocations (                 -- `role revoke`: the configuration never grants it back
            person_id INTEGER NOT NULL REFERENCES people(id),
            role TEXT NOT NULL,
            revoked_by TEXT,                            -- 'cli' or the admin's key
            revoked_at TEXT NOT NULL,
            PRIMARY KEY (person_id, role)
        );
        CREATE TABLE team_removals (                    -- `team remove`: the configuration never adds it back
            supervisor_id INTEGER NOT NULL REFERENCES people(id),
            practitioner_id INTEGER NOT NULL REFERENCES people(id),
            removed_by TEXT,
            removed_at TEXT NOT NULL,
            PRIMARY KEY (supervisor_id, practitioner_id)
        );
        ALTER TABLE teams ADD COLUMN added_by TEXT;     -- 'config' (goes when the configuration stops listing it) | who ran `team add`
        -- a link with a `team add` on record was added by a person; the rest came from the configuration
        UPDATE teams SET added_by = COALESCE((
            SELECT a.actor FROM audit a JOIN people s ON s.key = a.target JOIN people p ON p.key = a.detail
             WHERE a.action = 'team.add' AND s.id = teams.supervisor_id AND p.id = teams.practitioner_id
             ORDER BY a.id DESC LIMIT 1), 'config');
        -- a role whose last grant or revoke on record is a revoke stays revoked
        INSERT OR IGNORE INTO role_revocations (person_id, role, revoked_by, revoked_at)
            SELECT p.id, a.detail, a.actor, a.created_at FROM audit a JOIN people p ON p.key = a.target
             WHERE a.action = 'role.revoke' AND a.detail IS NOT NULL
               AND a.id = (SELECT MAX(b.id) FROM audit b WHERE b.target = a.target AND b.detail = a.detail
                            AND b.action IN ('role.grant', 'role.revoke'));
        """
    )
    # and if the configuration silently gave it back since, it goes again (on record)
    db.execute("""INSERT INTO audit (actor, action, target, detail, created_at)
                  SELECT 'migration', 'role.revoke', p.key, r.role, ? FROM roles r JOIN people p ON p.id = r.person_id
                    JOIN role_revocations v ON v.person_id = r.person_id AND v.role = r.role
                   WHERE r.granted_by = 'config'""", (now(),))
    db.execute("""DELETE FROM roles WHERE granted_by = 'config' AND EXISTS (
                  SELECT 1 FROM role_revocations v WHERE v.person_id = roles.person_id AND v.role = roles.role)""")


def _m_input_message(db: sqlite_utils.Database) -> None:
    # An edited message is kept beside the line the original wrote: which input that was is
    # looked up by the message's Telegram reference ("<chat id>:<message id>"), here, so an
    # edit after a restart still finds it (it was held in the frontend's memory only).
    if "message" in db["inputs"].columns_dict:  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        ALTER TABLE inputs ADD COLUMN message TEXT;  -- '<chat id>:<message id>' of the message it was, or NULL
        CREATE INDEX IF NOT EXISTS inputs_message ON inputs(message) WHERE message IS NOT NULL;
        """
    )


def _m_notice_about(db: sqlite_utils.Database) -> None:
    # Review-dp F1: a notice kept back for a worker (a comment quoting a family's words, an
    # erasure request naming the person) was a schedule row for the WORKER, so erasing the person
    # it was about missed it. It now records whom it is about, and erasure matches that too.
    if "about_person_id" in db["schedule"].columns_dict:  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        ALTER TABLE schedule ADD COLUMN about_person_id INTEGER REFERENCES people(id);  -- a held notice's subject
        CREATE INDEX IF NOT EXISTS idx_schedule_about ON schedule(about_person_id);
        """
    )


def _m_key_check(db: sqlite_utils.Database) -> None:
    # Review-dp F5: the key was checked only against the newest text of three columns, so a
    # database whose text lay elsewhere (a worker's case texts before any answer; everything
    # erased but the kept safeguarding words) accepted any key, and a lost key file was silently
    # replaced by a new one. The store writes one encrypted check value here (at the first open
    # after this migration) and tests it at every open.
    if "meta" in db.table_names():  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,                      -- e.g. key_check
            value BLOB                                  -- key_check: a fixed text, encrypted  # person-text
        );
        """
    )


def _m_alert_conversations(db: sqlite_utils.Database) -> None:
    # Review-dp F3: a later disclosure in a second conversation is added to the person's open
    # alert, which keeps the first conversation's id; the purge kept only conversations an alert
    # pointed at, so the second one (with its flagged lines) went while the alert lived. Every
    # conversation an alert covers is recorded here, and the purge keeps them all. Back-filled:
    # the alert's own conversation, and each conversation of the same person in the same case
    # (or outside any case, as the alert) with a flagged line from the alert's time on.
    if "alert_conversations" in db.table_names():  # (a test may replay the migrations before it)
        return
    db.executescript(
        """
        CREATE TABLE alert_conversations (
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            PRIMARY KEY (alert_id, conversation_id)
        );
        CREATE INDEX idx_alert_conversations_conversation ON alert_conversations(conversation_id);
        INSERT OR IGNORE INTO alert_conversations (alert_id, conversation_id)
            SELECT id, conversation_id FROM alerts WHERE conversation_id IS NOT NULL;
        INSERT OR IGNORE INTO alert_conversations (alert_id, conversation_id)
            SELECT a.id, c.id FROM alerts a JOIN conversations ac ON ac.id = a.conversation_id
              JOIN conversations c ON c.person_id = a.person_id AND c.case_id IS ac.case_id
             WHERE EXISTS (SELECT 1 FROM transcript t WHERE t.conversation_id = c.id AND t.flagged = 1
                           AND t.created_at >= a.created_at);
        """
    )


MIGRATIONS = [_m1_core, _m2_cases_alerts_audit, _m3_delivery, _m4_access, _m5_undelivered, _m_alert_per_person,
              _m_quiet_review_unread_missed, _m8_respondent_practice, _m_comment_visibility, _m_schedule,
              _m_pseudonyms, _m_reminder_times, _m_data_protection, _m_present_index, _m_reading_on_schedule,
              _m_case_info, _m_web_signin, _m_web_indexes, _m_languages, _m_inbox,
              _m_missed_audit_words, _m_reading_escalate_after, _m_review_item_words, _m_reminder_links,
              _m_input_media, _m_access_revocations, _m_input_message, _m_notice_about, _m_key_check,
              _m_alert_conversations]
SCHEMA_VERSION = len(MIGRATIONS)


# --- a person's words: one list (issue 17) --------------------------------------------
# Every column that can hold a person's words or name is marked ``# person-text`` where it
# is defined, and listed here with the rows that are one person's and what erasure writes
# in their place. Erasure works from this list alone, so a new column cannot be forgotten:
# tests/test_person_text.py fails while any text column is in neither PERSON_TEXT nor
# NOT_PERSON_TEXT, or a marker and this list disagree. Encryption at rest uses it too.

ERASED = "[erased]"
_MINE = "conversation_id IN (SELECT id FROM conversations WHERE person_id = :pid)"


def _kept_records(pid: str) -> dict[str, str]:
    """Per kind, a count of the safeguarding records that still hold the words of person ``pid``
    (an SQL expression): alerts, review items and missed disclosures whose
    words an erasure with ``--alert-words erase`` has not replaced. What /mydata and the erasure
    request say is kept."""
    return {
        "alerts": f"(SELECT COUNT(*) FROM alerts a WHERE a.person_id = {pid} AND a.words IS NOT '{ERASED}')",
        "review_items": f"(SELECT COUNT(*) FROM review_items r WHERE r.person_id = {pid}"
                        " AND (r.words IS NOT NULL OR r.matched IS NOT NULL))",
        "missed": f"(SELECT COUNT(*) FROM missed_disclosures m WHERE m.words IS NOT '{ERASED}' AND m.conversation_id IN"
                  f" (SELECT c.id FROM conversations c WHERE c.person_id = {pid}))",
    }


@dataclass(frozen=True)
class PersonText:
    rows: str  # SQL condition choosing one person's rows (:pid is the person's id)
    erased: str | None = ERASED  # what erasure writes instead (None: NULL)
    safeguarding: bool = False  # a safeguarding record: erased only where the lead agrees


PERSON_TEXT: dict[tuple[str, str], PersonText] = {
    ("people", "display_name"): PersonText("id = :pid", None),
    ("conversations", "session"): PersonText("person_id = :pid", "{}"),
    ("answers", "value"): PersonText(_MINE, "null"),
    ("answers", "raw"): PersonText(_MINE),
    ("answers", "shown"): PersonText(_MINE),
    ("transcript", "text"): PersonText(_MINE),
    ("inputs", "reply"): PersonText(_MINE, None),
    ("comments", "text"): PersonText(_MINE),
    # a notice kept back for a worker about someone (about_person_id) is that someone's too
    ("schedule", "text"): PersonText("person_id = :pid OR about_person_id = :pid OR " + _MINE),
    ("case_people", "pseudonym"): PersonText("person_id = :pid"),
    ("alerts", "words"): PersonText("person_id = :pid", safeguarding=True),
    ("review_items", "matched"): PersonText("person_id = :pid", None, safeguarding=True),
    ("review_items", "words"): PersonText("person_id = :pid", None, safeguarding=True),
    ("missed_disclosures", "words"): PersonText(_MINE, safeguarding=True),
    # The worker's own texts for a case (danger statements, bottom lines; issue 13): about the
    # family, so encrypted like the rest, but the council's record rather than one person's
    # words, so one person's erasure leaves them (no rows are theirs); the worker edits or
    # removes them with `case set` / /caseinfo.
    ("case_info", "text"): PersonText("1 = 0"),
    # An update received and not yet handled (issue 18): the words of a message, as sent.
    ("inbox", "raw"): PersonText("person_key = (SELECT key FROM people WHERE id = :pid)", None),
    # The key check (review-dp F5): nobody's words, but encrypted like them, so rotate-key
    # re-encrypts it and a backup's check reads it; no person's rows.
    ("meta", "value"): PersonText("1 = 0"),
}

# Text columns that never hold a person's words: ids, keys, times, states, flow wording,
# staff's reasons. Say why when adding one.
NOT_PERSON_TEXT: dict[str, tuple[str, ...]] = {
    "people": ("key", "created_at", "language"),  # 'tg:<id>': kept to record that an erasure was done; a language tag
    "flow_snapshots": ("sha", "flow_id", "source", "created_at"),  # the flow file, not answers
    "conversations": ("flow_id", "flow_sha", "state", "status", "frontend", "chat_id", "started_at", "updated_at",
                      "finished_at", "respondent", "erased_at", "language"),  # language: a tag such as cy
    "answers": ("step_id", "answered_at"),
    "transcript": ("direction", "kind", "step_id", "input_key", "created_at", "tier", "language"),
    # media: a kind such as photo, never the media; message: '<chat id>:<message id>', ids only
    "inputs": ("key", "created_at", "delivered_at", "media", "message"),
    "cases": ("ref", "created_at", "held_at", "held_by", "hold_reason"),  # refs and reasons carry no names
    "alerts": ("concern", "created_at", "next_notify_at", "acknowledged_at", "acknowledged_by", "updated_at"),
    "audit": ("actor", "action", "target", "detail", "created_at"),  # counts and ids, never content
    "roles": ("role", "granted_by", "granted_at"),
    "teams": ("created_at", "added_by"),  # added_by: 'config' or who ran `team add` (a key or 'cli')
    "role_revocations": ("role", "revoked_by", "revoked_at"),
    "team_removals": ("removed_by", "removed_at"),
    "invites": ("code_hash", "flow_id", "created_at", "expires_at", "used_at", "revoked_at", "respondent", "language"),
    "comments": ("step_id", "created_at", "visibility"),
    "reviews": ("reviewed_at",),
    "review_items": ("concern", "created_at", "reminded_at", "escalated_at", "acknowledged_at", "acknowledged_by",
                     "escalate_after"),
    "unread": ("created_at", "read_at", "read_by", "reminded_at", "escalated_at", "escalate_after"),
    "reminder_links": ("kind",),
    "missed_disclosures": ("step_id", "reported_by", "created_at"),
    "schedule": ("kind", "due_at", "why", "step_id", "state", "created_at", "claimed_at", "sent_at", "cancelled_by"),
    "reminder_optouts": ("kind", "created_at"),
    "reminder_times": ("quiet_from", "quiet_until", "blocked_days", "updated_at"),  # times and weekdays
    "case_people": ("set_by", "updated_at"),
    "case_info": ("key", "set_by", "updated_at"),  # a key like danger_statement; who wrote it and when
    "erasure_requests": ("created_at", "status", "decided_at", "decided_by", "reason", "alert_words", "counts",
                         "told_at"),
    "web_links": ("code_hash", "created_at", "expires_at", "used_at"),  # sign-in links: a hash and times
    "web_sessions": ("token_hash", "created_at", "expires_at", "last_seen_at", "ended_at"),  # a hash and times
    "inbox": ("chat", "person_key", "received_at"),  # ids and a time; the update itself is person-text
    "meta": ("name",),  # the name of a setting such as key_check
}

# --- retention: what each record type means, as SQL (bot/retention.py runs it) ---------
# A case under a legal hold is never purged: every condition below leaves its rows alone.


def _not_held(conversation_col: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM conversations hc JOIN cases hk ON hk.id = hc.case_id"
            f" WHERE hc.id = {conversation_col} AND hk.held_at IS NOT NULL)")


_PRACTICE = "(c.practice = 1 OR (c.case_id IS NULL AND c.flow_id LIKE 'rehearsal-%'))"
_CASE_NOT_HELD = "NOT EXISTS (SELECT 1 FROM cases hk WHERE hk.id = c.case_id AND hk.held_at IS NOT NULL)"
_NO_SAFEGUARDING = ("NOT EXISTS (SELECT 1 FROM alerts a WHERE a.conversation_id = c.id)"
                    " AND NOT EXISTS (SELECT 1 FROM alert_conversations l WHERE l.conversation_id = c.id)"
                    " AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.conversation_id = c.id)"
                    " AND NOT EXISTS (SELECT 1 FROM missed_disclosures m WHERE m.conversation_id = c.id)")

# (record type, table, alias, condition with :cutoff). Order matters: safeguarding records
# first, so a conversation whose alerts have just gone may follow in the same run.
PURGE_RULES: list[tuple[str, str, str]] = [
    ("alerts", "alerts", f"""(x.acknowledged_at IS NOT NULL OR x.practice = 1)
        AND MAX(x.created_at, COALESCE(x.updated_at, x.created_at), COALESCE(x.acknowledged_at, x.created_at)) < :cutoff
        AND {_not_held('x.conversation_id')}"""),
    ("alerts", "review_items", f"""x.acknowledged_at IS NOT NULL
        AND MAX(x.created_at, x.acknowledged_at) < :cutoff AND {_not_held('x.conversation_id')}"""),
    ("alerts", "missed_disclosures", f"x.created_at < :cutoff AND {_not_held('x.conversation_id')}"),
    ("practice", "conversations", f"""{_PRACTICE} AND c.updated_at < :cutoff AND {_CASE_NOT_HELD}"""),
    ("completed", "conversations", f"""NOT {_PRACTICE} AND c.status = 'completed'
        AND COALESCE(c.finished_at, c.updated_at) < :cutoff AND {_CASE_NOT_HELD} AND {_NO_SAFEGUARDING}"""),
    ("abandoned", "conversations", f"""NOT {_PRACTICE} AND c.status != 'completed'
        AND c.updated_at < :cutoff AND {_CASE_NOT_HELD} AND {_NO_SAFEGUARDING}"""),
    ("invitations", "invites", """COALESCE(x.used_at, x.revoked_at, x.expires_at) < :cutoff
        AND NOT EXISTS (SELECT 1 FROM cases hk WHERE hk.id = x.case_id AND hk.held_at IS NOT NULL)"""),
    ("inputs", "inputs", f"x.created_at < :cutoff AND {_not_held('x.conversation_id')}"),
    # Handled updates leave the inbox at once; one received and never handled (the bot stopped
    # for good before it could) goes with the inputs.
    ("inputs", "inbox", "x.received_at < :cutoff"),
    ("schedule", "schedule", f"""x.state IN ('sent', 'cancelled', 'undeliverable') AND COALESCE(x.sent_at, x.created_at) < :cutoff
        AND {_not_held('x.conversation_id')}
        AND NOT EXISTS (SELECT 1 FROM cases hk WHERE hk.id = x.case_id AND hk.held_at IS NOT NULL)"""),
    # the review website's sign-in: a link once used or expired, a session once ended or expired
    # (only hashes and times; who signed in when stays in the audit log)
    ("web_signin", "web_links", "COALESCE(x.used_at, x.expires_at) < :cutoff"),
    ("web_signin", "web_sessions", "MIN(COALESCE(x.ended_at, x.expires_at), x.expires_at) < :cutoff"),
    ("audit", "audit", """x.created_at < :cutoff
        AND NOT EXISTS (SELECT 1 FROM cases hk WHERE hk.held_at IS NOT NULL AND x.target = 'case:' || hk.ref)
        AND NOT EXISTS (SELECT 1 FROM conversations hc JOIN cases hk ON hk.id = hc.case_id
                        WHERE hk.held_at IS NOT NULL AND x.target = 'conversation:' || hc.id)"""),
]
RECORD_TYPES = ("completed", "abandoned", "practice", "alerts", "audit", "invitations", "inputs", "schedule",
                "web_signin")


@dataclass
class Conversation:
    id: int
    person_id: int
    flow_id: str
    flow_version: int
    flow_sha: str
    state: str
    session: dict
    status: str
    started_at: str
    updated_at: str
    finished_at: str | None
    case_id: int | None = None
    frontend: str | None = None
    chat_id: str | None = None
    respondent: str | None = None  # child | young_person | adult | practitioner | None (not known)
    practice: bool = False  # not a case: alerts are recorded and shown, never sent to leads
    present_id: int | None = None  # the worker present (a worker-present session on their device)
    language: str | None = None  # the language it is in now (None: English, as before issue 19)

    @classmethod
    def from_row(cls, row: dict) -> "Conversation":
        return cls(
            id=row["id"], person_id=row["person_id"], flow_id=row["flow_id"], flow_version=row["flow_version"],
            flow_sha=row["flow_sha"], state=row["state"], session=json.loads(row["session"]), status=row["status"],
            started_at=row["started_at"], updated_at=row["updated_at"], finished_at=row["finished_at"],
            case_id=row.get("case_id"), frontend=row.get("frontend"), chat_id=row.get("chat_id"),
            respondent=row.get("respondent"), practice=bool(row.get("practice")), present_id=row.get("present_id"),
            language=row.get("language"),
        )


class _Transaction:
    """:meth:`Store.transaction`'s context manager."""

    __slots__ = ("store", "conn", "kind", "name")

    JOIN, SAVEPOINT, OUTER = 0, 1, 2

    def __init__(self, store: "Store"):
        self.store = store

    def __enter__(self) -> None:
        store = self.store
        self.conn = conn = store.db.conn
        if conn.in_transaction:
            if store._tx_owner != threading.get_ident():
                self.kind = self.JOIN  # another thread's transaction: joined, as before
                return None
            # Named by depth, not numbered: the same few statement texts every time, so they stay
            # in the connection's statement cache instead of pushing the answer's INSERTs out of it.
            store._savepoints += 1
            self.name = name = f"sp{store._savepoints}"
            try:
                conn.execute(f"SAVEPOINT {name}")
            except BaseException:
                store._savepoints -= 1
                raise
            self.kind = self.SAVEPOINT
            return None
        conn.execute("BEGIN IMMEDIATE")
        store._tx_owner = threading.get_ident()
        self.kind = self.OUTER
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        kind = self.kind
        if kind == self.JOIN:
            return False
        store, conn = self.store, self.conn
        if kind == self.SAVEPOINT:
            name = self.name
            try:
                if exc_type is not None:
                    if conn.in_transaction:  # some errors (disk full, I/O) have rolled back everything
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                else:
                    conn.execute(f"RELEASE {name}")
            finally:
                store._savepoints -= 1
            return False
        if exc_type is not None:
            store._tx_owner = None
            store._after_commit = []
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # e.g. busy or disk full: nothing of it is kept
                conn.execute("ROLLBACK")
            raise
        finally:
            store._tx_owner = None
            after, store._after_commit = store._after_commit, []
        for fn in after if not conn.in_transaction else ():
            try:
                fn()
            except Exception:  # the transaction is committed: this must not undo its callers' success
                _log.exception("work after a commit failed")
        return False


class Store:
    def __init__(self, path: str | Path | None = None, *, synchronous: str = "FULL", create: bool = True,
                 keyring: dbkey.Keyring | None = None):
        self.path = str(path or default_db_path())
        if self.path != ":memory:":
            p = Path(self.path)
            if not create and not p.exists():
                raise StoreError(f"{self.path}: no such database; start a conversation first or check --db")
            if p.exists() and p.is_dir():
                raise StoreError(f"{self.path}: is a folder, not a database file")
            if not p.parent.exists():
                raise StoreError(f"{self.path}: the folder {p.parent} does not exist")
        # A database that already has content never gets a new key: a lost key file must be
        # put back, not replaced (text under two keys could never all be read again).
        existed = self.path != ":memory:" and os.path.isfile(self.path) and os.path.getsize(self.path) > 0
        if self.path != ":memory:":
            private_file(self.path)
        self._lock = self._take_lock()
        try:
            self.keys = keyring or dbkey.load_keyring(create=not existed)
        except dbkey.KeyError_ as exc:
            self._release_lock()
            raise StoreError(f"{self.path}: {exc}" if existed else str(exc)) from None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = self._decrypting_row
            self.db = sqlite_utils.Database(conn)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.execute("PRAGMA foreign_keys=ON")
            # freed pages and cells are overwritten with zeros, so erased or purged words do not
            # linger in the file (issue 17)
            self.db.execute("PRAGMA secure_delete=ON")
            self.migrate()
            self.check_key()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the database ({exc}); is it a restorative-bot database?") from None

    # -- encryption at rest (issue 17; bot/dbkey.py) -----------------------------------
    # Every PERSON_TEXT column is written through _e() and read back through the connection's
    # row factory, which decrypts any value carrying the ciphertext prefix, whatever query
    # selected it. So no SQL may compare, search, group or order by those columns: it would
    # see ciphertext (previous_answer filters skipped answers in Python for this reason).

    def _e(self, text: str | None) -> bytes | None:
        return self.keys.encrypt(text)

    def _decrypting_row(self, cursor, row: tuple) -> tuple:
        if bytes not in map(type, row):  # no blob at all (the usual row): scanned in C
            return row
        decrypt, magic = self.keys.decrypt, dbkey.MAGIC
        return tuple([decrypt(x) if type(x) is bytes and x[:4] == magic else x for x in row])

    KEY_CHECK = "restorative-bot key check"

    def check_key(self) -> None:
        """Refuse, in words, a key that does not decrypt this database's text.

        The check value in ``meta`` (written at the first open with a key: a new database, or
        an older one after the migration) must decrypt to :attr:`KEY_CHECK`. Before writing it
        to an older database, the newest encrypted value of every PERSON_TEXT column is tried,
        so a wrong key is never sealed in as the right one."""
        raw = self.db.conn.cursor()
        raw.row_factory = None  # the bytes as stored, not decrypted
        try:
            row = raw.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
            if row is not None:
                if not (dbkey.is_ciphertext(row[0]) and self.keys.decrypt(row[0]) == self.KEY_CHECK):
                    raise dbkey.WrongKey(self.keys.source)
                return
            for table, column in PERSON_TEXT:
                value = raw.execute(f"SELECT {column} FROM {table} WHERE typeof({column}) = 'blob'"
                                    " ORDER BY rowid DESC LIMIT 1").fetchone()
                if value is not None and dbkey.is_ciphertext(value[0]):
                    self.keys.decrypt(value[0])
        except dbkey.KeyError_ as exc:
            self.db.conn.close()
            self._release_lock()
            raise StoreError(f"{self.path}: {exc}") from None
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('key_check', ?)",
                            (self._e(self.KEY_CHECK),))

    def close(self) -> None:
        self.stop_checkpoints()
        self.db.conn.close()
        self._release_lock()

    # -- who is using the database (issue 17: rotate-key and restore need it to themselves) --
    # Every Store holds a shared lock on ``<db>.lock`` while open; rotate-key and restore
    # upgrade theirs to exclusive, so they refuse while the bot, the web site or another command
    # has the database open (a running bot would go on writing with the old key), and those
    # refuse to start while a rotation or restore runs.

    def _take_lock(self):
        if self.path == ":memory:":
            return None
        name = self.path + ".lock"
        fd = os.open(name, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"{self.path}: a key rotation or a restore is running on this database;"
                             " try again when it has finished") from None
        return fd

    def _release_lock(self) -> None:
        fd, self._lock = getattr(self, "_lock", None), None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its lock

    def __del__(self) -> None:
        self._release_lock()

    def exclusive(self, doing: str) -> None:
        """Have the database to this Store alone until it closes, or refuse in words."""
        if self._lock is None:
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{self.path}: another restorative-bot process (the bot, the web site or a"
                             f" command) has this database open; stop it, then {doing} again") from None

    # -- checkpoints off the reply path ------------------------------------------------
    _checkpointer: threading.Thread | None = None

    def checkpoint_in_background(self, *, every: float = 0.5, wal_bytes: int = 4 << 20) -> None:
        """Move the WAL into the database from a thread of its own, never in a commit.

        By default SQLite checkpoints inside the commit that takes the WAL past 1,000
        pages, so about one answer in a few thousand waits half a second for it (issue 18).
        For a long-running server: ``wal_autocheckpoint=0`` on the connection that writes,
        and a PASSIVE checkpoint (it never waits for, nor blocks, readers or the writer) on
        a second connection, whenever the WAL has grown past ``wal_bytes``, checked every
        ``every`` seconds. Short-lived commands keep SQLite's own checkpoints."""
        if self.path == ":memory:" or self._checkpointer is not None:
            return
        self.checkpoints: list[tuple[int, int, int]] = []  # (busy, WAL frames, frames moved), the last few
        self._checkpoint_stop = threading.Event()
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        wal = self.path + "-wal"

        def work() -> None:
            try:
                while not self._checkpoint_stop.wait(every):
                    try:
                        if os.path.getsize(wal) < wal_bytes:
                            continue
                        result = tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
                    except (OSError, sqlite3.Error):
                        continue  # no WAL yet, or busy: the next round tries again
                    self.checkpoints = (self.checkpoints + [result])[-10:]
            finally:
                conn.close()

        self._checkpointer = threading.Thread(target=work, name="checkpoint", daemon=True)
        self._checkpointer.start()

    def stop_checkpoints(self) -> None:
        if self._checkpointer is not None:
            self._checkpoint_stop.set()
            self._checkpointer.join()
            self._checkpointer = None

    # -- schema ----------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, upto: int | None = None) -> int:
        target = SCHEMA_VERSION if upto is None else upto
        current = self.version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the database is schema version {current}, newer than this restorative-bot"
                f" ({SCHEMA_VERSION}); upgrade restorative-bot"
            )
        for number in range(current + 1, target + 1):
            with self.transaction():
                MIGRATIONS[number - 1](self.db)
                self.db.execute(f"PRAGMA user_version={number}")
        return self.version

    _tx_owner: int | None = None  # the thread whose transaction is open
    _after_commit: list = []  # what after_commit() queued while it was open (set per instance when used)
    _savepoints = 0

    def transaction(self) -> "_Transaction":
        """One write transaction. Nested use on the same thread is a savepoint inside the
        outer one: what it wrote is rolled back alone if it raises (as a transaction of
        its own would be) and committed with the outer one otherwise. (Another thread
        finding a transaction open joins it, as before.)

        A plain context manager object rather than a generator (every input opens one, and
        in a group commit it is a savepoint each): the same steps, for a third of the calls."""
        return _Transaction(self)

    def run_group(self, calls: list) -> list[tuple[bool, Any]]:
        """Group commit: run ``calls`` (functions of no arguments) in one write transaction and
        commit them together (one fsync for all).

        Each call behaves as it would alone: every ``transaction()`` it opens is a savepoint
        here, rolled back alone if it raises (so one failing input rolls back alone) and
        committed with the group otherwise; a refusal audited in a transaction of its own
        after a rollback stays audited. Returns, in order, ``(True, result)`` or
        ``(False, exception)`` for each call. If the commit itself fails, or an error rolled
        back the whole transaction, every call gets that error: nothing of the group is kept."""
        outcomes: list[tuple[bool, Any]] = []
        conn = self.db.conn
        try:
            with self.transaction():
                for fn in calls:
                    if not conn.in_transaction:
                        raise StoreError("the group's transaction was rolled back by an earlier error")
                    try:
                        outcomes.append((True, fn()))
                    except Exception as exc:  # noqa: BLE001 - handed back to that call's caller
                        outcomes.append((False, exc))
                if not conn.in_transaction:
                    raise StoreError("the group's transaction was rolled back by an error")
        except Exception as exc:  # noqa: BLE001 - the whole group failed
            return [(False, o[1] if not o[0] else exc) for o in outcomes] + [(False, exc)] * (len(calls) - len(outcomes))
        return outcomes

    def _one(self, sql: str, params=()) -> dict | None:
        cur = self.db.execute(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row))

    def _all(self, sql: str, params=()) -> list[dict]:
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    # -- people ----------------------------------------------------------------------
    def person(self, key: str, display_name: str | None = None) -> int:
        row = self._one("SELECT id, display_name FROM people WHERE key = ?", (key,))
        if row:
            if display_name and row["display_name"] != display_name:
                self.db.execute("UPDATE people SET display_name = ? WHERE id = ?", (self._e(display_name), row["id"]))
            return row["id"]
        cur = self.db.execute(
            "INSERT INTO people (key, display_name, created_at) VALUES (?, ?, ?)", (key, self._e(display_name), now())
        )
        return cur.lastrowid

    def get_person(self, person_id: int) -> dict | None:
        return self._one("SELECT * FROM people WHERE id = ?", (person_id,))

    def person_language(self, person_id: int) -> str | None:
        row = self._one("SELECT language FROM people WHERE id = ?", (person_id,))
        return row["language"] if row else None

    def set_person_language(self, person_id: int, language: str | None) -> None:
        self.db.execute("UPDATE people SET language = ? WHERE id = ?", (language, person_id))

    def set_conversation_language(self, conversation_id: int, language: str | None) -> None:
        self.db.execute("UPDATE conversations SET language = ? WHERE id = ?", (language, conversation_id))

    # -- flows -------------------------------------------------------------------------
    def save_snapshot(self, sha: str, flow_id: str, version: int, source: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO flow_snapshots (sha, flow_id, version, source, created_at) VALUES (?, ?, ?, ?, ?)",
            (sha, flow_id, version, source, now()),
        )

    def snapshot_source(self, sha: str) -> str | None:
        row = self._one("SELECT source FROM flow_snapshots WHERE sha = ?", (sha,))
        return row["source"] if row else None

    # -- conversations -----------------------------------------------------------------
    def create_conversation(self, *, person_id: int, flow_id: str, flow_version: int, flow_sha: str, state: str,
                            session: dict, status: str, frontend: str | None, chat_id: str | None,
                            case_id: int | None = None, respondent: str | None = None, practice: bool = False,
                            present_id: int | None = None, language: str | None = None) -> int:
        t = now()
        cur = self.db.execute(
            """INSERT INTO conversations (person_id, flow_id, flow_version, flow_sha, state, session, status,
               frontend, chat_id, case_id, started_at, updated_at, finished_at, respondent, practice, present_id,
               language)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (person_id, flow_id, flow_version, flow_sha, state, self._e(_dumps(session)), status, frontend, chat_id,
             case_id, t, t, t if status != "in_progress" else None, respondent, 1 if practice else 0, present_id,
             language),
        )
        return cur.lastrowid

    def update_conversation(self, conversation_id: int, *, state: str, session: dict, status: str) -> None:
        t = now()
        self.db.conn.execute(
            """UPDATE conversations SET state = ?, session = ?, status = ?, updated_at = ?,
               finished_at = CASE WHEN ? != 'in_progress' THEN ? ELSE finished_at END WHERE id = ?""",
            (state, self.keys.encrypt(_dumps(session)), status, t, status, t, conversation_id),
        )

    def conversation(self, conversation_id: int) -> Conversation | None:
        row = self._one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return Conversation.from_row(row) if row else None

    def active_conversation(self, person_id: int) -> Conversation | None:
        """The person's open conversation: their own, or a worker-present session they are
        running on their device for someone else (the newest of either)."""
        row = self._one(
            "SELECT * FROM conversations WHERE person_id = ? AND status = 'in_progress' ORDER BY id DESC LIMIT 1",
            (person_id,),
        )
        present = self._one(
            "SELECT * FROM conversations WHERE present_id = ? AND status = 'in_progress' ORDER BY id DESC LIMIT 1",
            (person_id,),
        )
        if present is not None and (row is None or present["id"] > row["id"]):
            row = present
        return Conversation.from_row(row) if row else None

    # The columns Conversation is built from, in its order (read by position on the hot path).
    _CONVERSATION = ("id", "person_id", "flow_id", "flow_version", "flow_sha", "state", "session", "status",
                     "started_at", "updated_at", "finished_at", "case_id", "frontend", "chat_id", "respondent",
                     "practice", "present_id", "language")
    _OPEN_OF = ("MAX(COALESCE((SELECT id FROM conversations WHERE person_id = :pid AND status = 'in_progress'"
                " ORDER BY id DESC LIMIT 1), 0), COALESCE((SELECT id FROM conversations WHERE present_id = :pid"
                " AND status = 'in_progress' ORDER BY id DESC LIMIT 1), 0))")
    _INPUT_CONTEXT = ("SELECT p.language, i.key, i.conversation_id, i.reply, i.delivered_at, "
                      + ", ".join(f"c.{col}" for col in _CONVERSATION) + " FROM people p"
                      " LEFT JOIN inputs i ON i.key = :key LEFT JOIN conversations c ON c.id = {conv}"
                      " WHERE p.id = :pid")
    _INPUT_CONTEXT_OPEN = _INPUT_CONTEXT.format(conv=_OPEN_OF)
    _INPUT_CONTEXT_NAMED = _INPUT_CONTEXT.format(conv=":cid")

    def input_context(self, person_id: int, conversation_id: int | None,
                      key: str | None) -> tuple[dict | None, Conversation | None, str | None] | None:
        """What handling an input needs first, in one statement: whether input ``key`` was
        handled before (as :meth:`seen_input`), the conversation named (any person's: the
        caller decides whose it may be) or else the person's open one (as
        :meth:`active_conversation`), and the language the person chose (as
        :meth:`person_language`). None for a person not in the database (nothing is read
        then: ask :meth:`seen_input` alone)."""
        sql = self._INPUT_CONTEXT_OPEN if conversation_id is None else self._INPUT_CONTEXT_NAMED
        row = self.db.conn.execute(sql, {"pid": person_id, "cid": conversation_id, "key": key}).fetchone()
        if row is None:
            return None
        seen = None
        if row[1] is not None:
            seen = {"conversation_id": row[2], "reply": json.loads(row[3]) if row[3] else None,
                    "delivered": row[4] is not None}
        conv = None
        if row[5] is not None:
            (cid, pid, flow_id, flow_version, flow_sha, state, session, status, started_at, updated_at, finished_at,
             case_id, frontend, chat_id, respondent, practice, present_id, language) = row[5:]
            conv = Conversation(cid, pid, flow_id, flow_version, flow_sha, state, json.loads(session), status,
                                started_at, updated_at, finished_at, case_id, frontend, chat_id, respondent,
                                bool(practice), present_id, language)
        return seen, conv, row[0]

    def rehearsing_people(self) -> set[int]:
        """Everyone with a rehearsal under way (a frontend keeps this in memory)."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT person_id FROM conversations WHERE status = 'rehearsing'")}

    def presenting_keys(self, active_since: str) -> set[str]:
        """The keys of the people running a worker-present session on their own device now
        (someone else is holding it; touched since ``active_since``): nothing meant for them
        is sent to that device until it ends."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT p.key FROM conversations c JOIN people p ON p.id = c.present_id"
            " WHERE c.present_id IS NOT NULL AND c.status = 'in_progress' AND c.updated_at >= ?", (active_since,))}

    # The hand-back, one rule for what waits (alerts, reminders, notices: escalation.holding)
    # and for whose words are whose and what answers (ConversationService.handing_back): a
    # worker-present session on the worker's device ended at or after ``since``, and the worker
    # has started no conversation of their own since (then the device is back in their hands).
    _HANDED_BACK = ("c.present_id IS NOT NULL AND c.status != 'in_progress' AND c.finished_at >= ?"
                    " AND NOT EXISTS (SELECT 1 FROM conversations o WHERE o.person_id = c.present_id AND o.id > c.id)")

    def handed_back_keys(self, since: str) -> set[str]:
        """The keys of the people in the hand-back after a worker-present session on their own
        device (see ``_HANDED_BACK``): the person who answered may still be holding it."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT p.key FROM conversations c JOIN people p ON p.id = c.present_id"
            f" WHERE {self._HANDED_BACK}", (since,))}

    def handed_back_session(self, present_id: int, since: str) -> Conversation | None:
        """The newest worker-present session run on this person's device whose hand-back lasts
        (see ``_HANDED_BACK``): the device may still be in the hands of the person who answered."""
        row = self._one(f"SELECT * FROM conversations c WHERE c.present_id = ? AND {self._HANDED_BACK}"
                        " ORDER BY c.id DESC LIMIT 1", (present_id, since))
        return Conversation.from_row(row) if row else None

    def active_rehearsal(self, person_id: int) -> Conversation | None:
        """The person's rehearsal under way (status 'rehearsing': never a flow's active conversation)."""
        row = self._one(
            "SELECT * FROM conversations WHERE person_id = ? AND status = 'rehearsing' ORDER BY id DESC LIMIT 1",
            (person_id,),
        )
        return Conversation.from_row(row) if row else None

    def latest_conversation(self, person_id: int) -> Conversation | None:
        """The person's most recent conversation, whatever its status."""
        row = self._one("SELECT * FROM conversations WHERE person_id = ? ORDER BY id DESC LIMIT 1", (person_id,))
        return Conversation.from_row(row) if row else None

    def latest_case_conversation(self, person_id: int) -> Conversation | None:
        """The person's most recent conversation in a case (as the one answering), whatever its
        status; not one whose words were erased at their request."""
        row = self._one("SELECT * FROM conversations WHERE person_id = ? AND case_id IS NOT NULL AND erased_at IS NULL"
                        " ORDER BY id DESC LIMIT 1", (person_id,))
        return Conversation.from_row(row) if row else None

    def conversations(self, *, person_id: int | None = None, case_id: int | None = None,
                      limit: int | None = None) -> list[dict]:
        where, params = [], []
        if person_id is not None:
            where.append("c.person_id = ?")
            params.append(person_id)
        if case_id is not None:
            where.append("c.case_id = ?")
            params.append(case_id)
        sql = """SELECT c.id, c.flow_id, c.flow_version, c.status, c.started_at, c.updated_at, c.finished_at,
                        c.person_id, c.case_id, p.key AS person_key, p.display_name, c.respondent, c.practice,
                        c.present_id, (SELECT cp.pseudonym FROM case_people cp WHERE cp.case_id = c.case_id AND cp.person_id = c.person_id) AS pseudonym
                 FROM conversations c JOIN people p ON p.id = c.person_id"""
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._all(sql, params)

    def conversation_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM conversations ORDER BY id").fetchall()]

    # -- answers and transcript ------------------------------------------------------
    def save_answer(self, conversation_id: int, step_id: str, value: Any, raw: str | None, shown: str) -> None:
        encrypt = self.keys.encrypt
        self.db.conn.execute(
            """INSERT INTO answers (conversation_id, step_id, value, raw, shown, answered_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (conversation_id, step_id) DO UPDATE SET
                 value = excluded.value, raw = excluded.raw, shown = excluded.shown,
                 answered_at = excluded.answered_at, revision = revision + 1, current = 1""",
            (conversation_id, step_id, encrypt(_dumps(value)), encrypt(raw), encrypt(shown), now()),
        )

    def retract_answers(self, conversation_id: int, step_ids: list[str]) -> None:
        for step_id in step_ids:
            self.db.execute(
                "UPDATE answers SET current = 0 WHERE conversation_id = ? AND step_id = ?", (conversation_id, step_id)
            )

    def answers(self, conversation_id: int, current_only: bool = True) -> list[dict]:
        sql = "SELECT step_id, value, raw, shown, revision, current, answered_at FROM answers WHERE conversation_id = ?"
        if current_only:
            sql += " AND current = 1"
        rows = self._all(sql + " ORDER BY answered_at, id", (conversation_id,))
        for r in rows:
            r["value"] = json.loads(r["value"]) if r["value"] is not None else None
        return rows

    def previous_answer(self, person_id: int, case_id: int | None, step_id: str, before: int | None = None) -> Any:
        """``{{ previous.X }}`` in a flow: the person's own most recent answer to a question with
        id ``step_id`` in an earlier conversation in the same case (outside any case: in their
        earlier conversations outside any case), before conversation ``before``; None if there
        is none. Only their own answers, so nobody is shown what someone else said; rehearsals,
        skipped questions and answers left behind by /back do not count."""
        # values are encrypted, so a skipped answer ('null') is passed over here, not in SQL
        for (value,) in self.db.conn.execute(
            """SELECT a.value FROM answers a JOIN conversations c ON c.id = a.conversation_id
               WHERE c.person_id = ? AND c.case_id IS ? AND a.step_id = ? AND a.current = 1
                 AND c.status != 'rehearsing' AND a.value IS NOT NULL
                 AND (? IS NULL OR c.id < ?)
               ORDER BY c.id DESC""",
            (person_id, case_id, step_id, before, before),
        ):
            if value != "null":
                return json.loads(value)
        return None

    def add_line(self, conversation_id: int, direction: str, text: str, *, kind: str | None = None,
                 step_id: str | None = None, input_key: str | None = None, flagged: bool = False,
                 tier: str | None = None, language: str | None = None) -> int:
        """``tier``: the safeguarding tier of a flagged line (alert, or review: quiet);
        ``language``: the language the line was shown or written in (default: the one in
        force, bot/i18n)."""
        if flagged and tier is None:
            tier = "alert"
        if language is None:
            language = _i18n().current()
        return self.db.conn.execute(
            """INSERT INTO transcript (conversation_id, direction, kind, step_id, text, input_key, created_at, flagged,
               tier, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (conversation_id, direction, kind, step_id, self.keys.encrypt(text), input_key, now(),
             1 if flagged or tier else 0, tier, language),
        ).lastrowid

    def transcript(self, conversation_id: int) -> list[dict]:
        return self._all(
            # with the kind of media (a picture, a file) the person's words came with, if any
            "SELECT t.id, t.direction, t.kind, t.step_id, t.text, t.created_at, t.flagged, t.tier, t.language,"
            " i.media FROM transcript t LEFT JOIN inputs i ON i.key = t.input_key AND t.direction = 'in'"
            " WHERE t.conversation_id = ? ORDER BY t.id",
            (conversation_id,),
        )

    def input_line(self, key: str) -> dict | None:
        """The line an input wrote (what the person sent), by its input key: its id, conversation
        and step; None if the input wrote none. Read through the input's conversation, so only
        that conversation's lines are looked at."""
        return self._one(
            """SELECT t.id, t.conversation_id, t.step_id FROM inputs i JOIN transcript t
               ON t.conversation_id = i.conversation_id AND t.input_key = i.key
               WHERE i.key = ? AND t.direction = 'in' ORDER BY t.id LIMIT 1""", (key,))

    # -- exactly-once inputs ---------------------------------------------------------
    def seen_input(self, key: str) -> dict | None:
        row = self._one("SELECT conversation_id, reply, delivered_at FROM inputs WHERE key = ?", (key,))
        if row is None:
            return None
        return {"conversation_id": row["conversation_id"], "reply": json.loads(row["reply"]) if row["reply"] else None,
                "delivered": row["delivered_at"] is not None}

    def undelivered_replies(self, since: str, key_prefix: str) -> list[dict]:
        """Committed replies never recorded as sent, each the newest input of the device it
        answered, in any of its conversations (a reply the device has since moved past, in that
        conversation or a later one, is not worth sending). The device is the person's own, or
        in a worker-present session the worker's (``present_id``): ``person_id`` and
        ``person_key`` name who the reply goes back to."""
        rows = self._all(
            """SELECT i.key, i.conversation_id, i.reply, p.key AS person_key, p.id AS person_id
               FROM inputs i JOIN conversations c ON c.id = i.conversation_id
               JOIN people p ON p.id = COALESCE(c.present_id, c.person_id)
               WHERE i.delivered_at IS NULL AND i.reply IS NOT NULL AND i.created_at >= ? AND i.key LIKE ?
                 AND i.created_at = (SELECT MAX(j.created_at) FROM inputs j WHERE j.conversation_id IN (
                       SELECT id FROM conversations WHERE person_id = p.id AND present_id IS NULL
                       UNION ALL SELECT id FROM conversations WHERE present_id = p.id))
               ORDER BY i.created_at""",
            (since, key_prefix + "%"),
        )
        for r in rows:
            r["reply"] = json.loads(r["reply"])
        return rows

    # -- the inbox: updates received, not yet handled (issue 18) --------------------------
    def inbox_add(self, rows: list[tuple[int, str | None, str | None, str]]) -> list[int]:
        """Keep received updates ``(update id, chat, person key, raw JSON)`` until handled.
        Returns the ids that were not already kept (a re-delivery of one kept is ignored)."""
        new, t = [], now()
        with self.transaction():
            for update_id, chat, person_key, raw in rows:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO inbox (update_id, chat, person_key, raw, received_at) VALUES (?, ?, ?, ?, ?)",
                    (update_id, chat, person_key, self._e(raw), t))
                if cur.rowcount:
                    new.append(update_id)
        return new

    def inbox_done(self, update_ids: list[int]) -> None:
        """These updates have been handled: their words leave the inbox now."""
        self.db.conn.executemany("DELETE FROM inbox WHERE update_id = ?", [(u,) for u in update_ids])

    def inbox_pending(self) -> list[dict]:
        """Updates kept and not yet handled, in the order received (``update_id``, ``raw``)."""
        return self._all("SELECT update_id, raw FROM inbox ORDER BY update_id")

    def mark_delivered(self, key: str) -> None:
        t = now()
        self.db.execute(
            "INSERT INTO inputs (key, conversation_id, reply, created_at, delivered_at) VALUES (?, NULL, NULL, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET delivered_at = COALESCE(inputs.delivered_at, excluded.delivered_at)",
            (key, t, t),
        )

    def mark_input(self, key: str, conversation_id: int | None, reply: Any, media: str | None = None,
                   message: str | None = None) -> None:
        """``media``: the kind of picture or file the words came with (not kept), if any;
        ``message``: the frontend's reference to the message it was (for a later edit of it)."""
        self.db.conn.execute(
            "INSERT INTO inputs (key, conversation_id, reply, created_at, media, message) VALUES (?, ?, ?, ?, ?, ?)",
            (key, conversation_id, self.keys.encrypt(_dumps(reply)), now(), media, message),
        )

    def input_of_message(self, message: str) -> dict | None:
        """The input a message was (its key and media), by the frontend's reference to it
        (``mark_input``'s ``message``); None if unknown (never seen, or purged)."""
        return self._one("SELECT key, media FROM inputs WHERE message = ? ORDER BY rowid DESC LIMIT 1", (message,))

    # -- alerts (safeguarding) -------------------------------------------------------
    def add_alert(self, *, conversation_id: int | None, person_id: int, transcript_id: int | None, concern: str,
                  words: str, next_notify_at: str | None, practice: bool = False) -> int:
        """A practice alert is recorded but never due: nothing sends it to anyone."""
        cur = self.db.execute(
            """INSERT INTO alerts (conversation_id, person_id, transcript_id, concern, words, created_at, next_notify_at,
                                   practice)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (conversation_id, person_id, transcript_id, concern, self._e(words), now(), None if practice else next_notify_at,
             1 if practice else 0),
        )
        self._covers(cur.lastrowid, conversation_id)
        return cur.lastrowid

    def _covers(self, alert_id: int, conversation_id: int | None) -> None:
        """The alert covers this conversation: the purge keeps every conversation an alert covers."""
        if conversation_id is not None:
            self.db.execute("INSERT OR IGNORE INTO alert_conversations (alert_id, conversation_id) VALUES (?, ?)",
                            (alert_id, conversation_id))

    def open_alert_of(self, person_id: int, practice: bool = False) -> dict | None:
        """The person's open (unacknowledged) alert, the newest if an old database has several;
        practice alerts and real ones are kept apart (a real one is never folded into practice)."""
        return self._one(
            "SELECT * FROM alerts WHERE person_id = ? AND acknowledged_at IS NULL AND practice = ?"
            " ORDER BY id DESC LIMIT 1",
            (person_id, 1 if practice else 0))

    def open_alert_in_case(self, person_id: int, case_id: int | None, practice: bool = False) -> dict | None:
        """The person's open alert in this case (``None``: raised outside any case), the newest
        if several: one open alert per person per case, so words said in one practitioner's
        case are never folded into an alert another practitioner handles."""
        return self._one(
            "SELECT a.* FROM alerts a LEFT JOIN conversations c ON c.id = a.conversation_id"
            " WHERE a.person_id = ? AND a.acknowledged_at IS NULL AND a.practice = ? AND c.case_id IS ?"
            " ORDER BY a.id DESC LIMIT 1",
            (person_id, 1 if practice else 0, case_id))

    def add_to_alert(self, alert_id: int, *, concern: str, words: str, conversation_id: int | None,
                     transcript_id: int | None, next_notify_at: str | None) -> None:
        """Later words from the same person: appended to the open alert. ``next_notify_at``
        None keeps the schedule as it is (the next reminder carries the new words)."""
        self.db.execute(
            """UPDATE alerts SET concern = ?, words = ?, update_count = update_count + 1, updated_at = ?,
                      conversation_id = COALESCE(conversation_id, ?), transcript_id = COALESCE(transcript_id, ?),
                      next_notify_at = CASE WHEN ? IS NULL THEN next_notify_at
                                            WHEN next_notify_at IS NULL OR next_notify_at > ? THEN ?
                                            ELSE next_notify_at END
               WHERE id = ?""",
            (concern, self._e(words), now(), conversation_id, transcript_id, next_notify_at, next_notify_at, next_notify_at,
             alert_id),
        )
        self._covers(alert_id, conversation_id)

    def alerts(self, open_only: bool = False) -> list[dict]:
        sql = """SELECT a.*, p.key AS person_key, p.display_name, c.flow_id, c.respondent, c.present_id,
                        (SELECT cp.pseudonym FROM case_people cp WHERE cp.case_id = c.case_id AND cp.person_id = a.person_id) AS pseudonym, (SELECT k2.ref FROM cases k2 WHERE k2.id = c.case_id) AS case_ref
                 FROM alerts a JOIN people p ON p.id = a.person_id
                 LEFT JOIN conversations c ON c.id = a.conversation_id"""
        if open_only:
            sql += " WHERE a.acknowledged_at IS NULL"
        return self._all(sql + " ORDER BY a.id", ())

    def alert(self, alert_id: int) -> dict | None:
        return self._one("SELECT * FROM alerts WHERE id = ?", (alert_id,))

    def alert_detail(self, alert_id: int) -> dict | None:
        return self._one(
            """SELECT a.*, p.key AS person_key, p.display_name, c.flow_id, c.respondent, c.present_id,
                      c.status AS conversation_status, w.display_name AS present_name, w.key AS present_key,
                      (SELECT cp.pseudonym FROM case_people cp WHERE cp.case_id = c.case_id AND cp.person_id = a.person_id) AS pseudonym, (SELECT k2.ref FROM cases k2 WHERE k2.id = c.case_id) AS case_ref
               FROM alerts a JOIN people p ON p.id = a.person_id
               LEFT JOIN conversations c ON c.id = a.conversation_id
               LEFT JOIN people w ON w.id = c.present_id WHERE a.id = ?""",
            (alert_id,),
        )

    def alert_practitioner_key(self, alert_id: int) -> str | None:
        """The practitioner who holds the case the alert's conversation belongs to, while
        they still hold the practitioner role (a revoked role cuts them off at once)."""
        row = self._one(
            """SELECT pr.key FROM alerts a JOIN conversations c ON c.id = a.conversation_id
               JOIN cases k ON k.id = c.case_id JOIN people pr ON pr.id = k.practitioner_id
               JOIN roles r ON r.person_id = pr.id AND r.role = 'practitioner'
               WHERE a.id = ?""",
            (alert_id,),
        )
        return row["key"] if row else None

    def due_alerts(self, at: str) -> list[dict]:
        """Open alerts due a notice, with whether their person holds a role or a case
        (``known``: their alerts go first and are never held back by the flood limit)."""
        return self._all(
            """SELECT a.*, (EXISTS (SELECT 1 FROM roles r WHERE r.person_id = a.person_id)
                            OR EXISTS (SELECT 1 FROM conversations c WHERE c.id = a.conversation_id
                                       AND c.case_id IS NOT NULL)) AS known
               FROM alerts a
               WHERE a.acknowledged_at IS NULL AND a.next_notify_at IS NOT NULL AND a.next_notify_at <= ?
                 AND a.practice = 0
               ORDER BY a.id""",
            (at,),
        )

    def mark_alert_notified(self, alert_id: int, next_notify_at: str | None) -> None:
        self.db.execute(
            """UPDATE alerts SET notify_count = notify_count + 1, next_notify_at = ?, notified_updates = update_count
               WHERE id = ? AND acknowledged_at IS NULL""",
            (next_notify_at, alert_id),
        )

    def acknowledge_alert(self, alert_id: int, by: str) -> bool:
        cur = self.db.execute(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?, next_notify_at = NULL WHERE id = ? AND acknowledged_at IS NULL",
            (now(), by, alert_id),
        )
        return cur.rowcount == 1

    def open_alert_ids_of(self, person_id: int) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM alerts WHERE person_id = ? AND acknowledged_at IS NULL ORDER BY id", (person_id,)).fetchall()]

    # -- roles, teams, cases, invites, comments (access) -------------------------------
    def person_by_key(self, key: str) -> dict | None:
        return self._one("SELECT * FROM people WHERE key = ?", (key,))

    def roles_of(self, person_id: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT role FROM roles WHERE person_id = ?", (person_id,)).fetchall()}

    def grant_role(self, person_id: int, role: str, by: str | None) -> bool:
        cur = self.db.execute("INSERT OR IGNORE INTO roles (person_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?)",
                              (person_id, role, by, now()))
        return cur.rowcount == 1

    def revoke_role(self, person_id: int, role: str, by: str | None = None) -> bool:
        """Take the role away and record that a person did (``by``): seeding from the
        configuration never grants it back until :meth:`unrevoke_role` (a `role grant`)."""
        self.db.execute("INSERT OR REPLACE INTO role_revocations (person_id, role, revoked_by, revoked_at)"
                        " VALUES (?, ?, ?, ?)", (person_id, role, by, now()))
        return self.db.execute("DELETE FROM roles WHERE person_id = ? AND role = ?", (person_id, role)).rowcount == 1

    def unrevoke_role(self, person_id: int, role: str) -> None:
        self.db.execute("DELETE FROM role_revocations WHERE person_id = ? AND role = ?", (person_id, role))

    def role_revoked(self, person_id: int, role: str) -> bool:
        return self._one("SELECT 1 AS x FROM role_revocations WHERE person_id = ? AND role = ?",
                         (person_id, role)) is not None

    def role_revocations(self) -> list[dict]:
        return self._all(
            """SELECT p.key, v.role, v.revoked_by, v.revoked_at FROM role_revocations v
               JOIN people p ON p.id = v.person_id ORDER BY v.role, p.key""")

    def role_list(self) -> list[dict]:
        return self._all(
            """SELECT p.key, p.display_name, r.role, r.granted_by, r.granted_at FROM roles r
               JOIN people p ON p.id = r.person_id ORDER BY r.role, p.key""")

    def add_team(self, supervisor_id: int, practitioner_id: int, by: str = "config") -> bool:
        """Link a supervisor to a practitioner; True if the link is new. ``by``: 'config' for a
        link the configuration lists (it goes when the configuration stops listing it), else
        who added it (a link a person added stays: one the configuration also listed becomes theirs)."""
        cur = self.db.execute("INSERT OR IGNORE INTO teams (supervisor_id, practitioner_id, created_at, added_by)"
                              " VALUES (?, ?, ?, ?)", (supervisor_id, practitioner_id, now(), by))
        if cur.rowcount == 1:
            return True
        if by != "config":
            self.db.execute("UPDATE teams SET added_by = ? WHERE supervisor_id = ? AND practitioner_id = ?"
                            " AND added_by = 'config'", (by, supervisor_id, practitioner_id))
        return False

    def remove_team(self, supervisor_id: int, practitioner_id: int, by: str | None = None) -> bool:
        """Remove the link; True if there was one. ``by`` (a person: 'cli' or a key) also records
        the removal, so the configuration never adds the link back until `team add`."""
        if by is not None:
            self.db.execute("INSERT OR REPLACE INTO team_removals (supervisor_id, practitioner_id, removed_by, removed_at)"
                            " VALUES (?, ?, ?, ?)", (supervisor_id, practitioner_id, by, now()))
        return self.db.execute("DELETE FROM teams WHERE supervisor_id = ? AND practitioner_id = ?",
                               (supervisor_id, practitioner_id)).rowcount == 1

    def unremove_team(self, supervisor_id: int, practitioner_id: int) -> None:
        self.db.execute("DELETE FROM team_removals WHERE supervisor_id = ? AND practitioner_id = ?",
                        (supervisor_id, practitioner_id))

    def team_removed(self, supervisor_id: int, practitioner_id: int) -> bool:
        return self._one("SELECT 1 AS x FROM team_removals WHERE supervisor_id = ? AND practitioner_id = ?",
                         (supervisor_id, practitioner_id)) is not None

    def team_links(self) -> list[dict]:
        """Every supervisor-practitioner link with the keys and who added it."""
        return self._all(
            """SELECT t.supervisor_id, s.key AS supervisor_key, t.practitioner_id, p.key AS practitioner_key,
                      t.added_by, t.created_at FROM teams t
               JOIN people s ON s.id = t.supervisor_id JOIN people p ON p.id = t.practitioner_id
               ORDER BY s.key, p.key""")

    def supervises(self, supervisor_id: int, practitioner_id: int) -> bool:
        return self._one("SELECT 1 AS x FROM teams WHERE supervisor_id = ? AND practitioner_id = ?",
                         (supervisor_id, practitioner_id)) is not None

    def team_of(self, supervisor_id: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT practitioner_id FROM teams WHERE supervisor_id = ?",
                                              (supervisor_id,)).fetchall()]

    def supervisors_of(self, practitioner_id: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT supervisor_id FROM teams WHERE practitioner_id = ? ORDER BY supervisor_id",
                                              (practitioner_id,)).fetchall()]

    def case(self, practitioner_id: int, ref: str) -> dict | None:
        return self._one("SELECT * FROM cases WHERE practitioner_id = ? AND ref = ?", (practitioner_id, ref))

    def case_by_id(self, case_id: int) -> dict | None:
        return self._one("SELECT * FROM cases WHERE id = ?", (case_id,))

    def cases_by_ref(self, ref: str) -> list[dict]:
        return self._all("SELECT * FROM cases WHERE ref = ? ORDER BY id", (ref,))

    def create_case(self, practitioner_id: int, ref: str) -> int:
        existing = self.case(practitioner_id, ref)
        if existing:
            return existing["id"]
        return self.db.execute("INSERT INTO cases (ref, practitioner_id, created_at) VALUES (?, ?, ?)",
                               (ref, practitioner_id, now())).lastrowid

    def case_holders(self) -> list[int]:
        """Everyone holding at least one case."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT practitioner_id FROM cases").fetchall()]

    def practitioner_ids(self) -> list[int]:
        """Everyone who holds the practitioner role now."""
        return [r[0] for r in self.db.execute("SELECT person_id FROM roles WHERE role = 'practitioner'").fetchall()]

    def cases_of(self, practitioner_ids: list[int]) -> list[dict]:
        if not practitioner_ids:
            return []
        marks = ",".join("?" * len(practitioner_ids))
        return self._all(
            f"""SELECT k.id, k.ref, k.practitioner_id, p.key AS practitioner_key, p.display_name AS practitioner_name,
                       k.created_at, COUNT(c.id) AS conversations, MAX(c.updated_at) AS last_activity
                FROM cases k JOIN people p ON p.id = k.practitioner_id
                LEFT JOIN conversations c ON c.case_id = k.id
                WHERE k.practitioner_id IN ({marks}) GROUP BY k.id ORDER BY COALESCE(MAX(c.updated_at), k.created_at) DESC""",
            practitioner_ids)

    def cases_page(self, practitioner_ids: list[int] | None, first: set[int], limit: int) -> tuple[list[dict], int]:
        """(rows like :meth:`cases_of`, how many cases in all) for a list shown ``limit`` at a
        time: the cases in ``first`` (needing attention) and then the most recently active,
        without aggregating every case of a large service (``practitioner_ids`` None: all)."""
        where, params = ("k.practitioner_id IN (" + ",".join("?" * len(practitioner_ids)) + ")",
                         list(practitioner_ids)) if practitioner_ids is not None else ("1", [])
        if practitioner_ids is not None and not practitioner_ids:
            return [], 0
        total = self.db.execute(f"SELECT COUNT(*) FROM cases k WHERE {where}", params).fetchone()[0]
        if total <= limit:
            rows = self._cases_where(where, params)
        else:
            ids = list(dict.fromkeys(sorted(first)))
            batch = limit * 20
            offset = 0
            while len(ids) < len(first) + limit:  # newest conversations first, by index, until enough cases
                found = [r[0] for r in self.db.execute(
                    f"""SELECT c.case_id FROM conversations c JOIN cases k ON k.id = c.case_id WHERE {where}
                        ORDER BY c.updated_at DESC LIMIT ? OFFSET ?""", [*params, batch, offset])]
                ids.extend(i for i in dict.fromkeys(found) if i not in ids)
                if len(found) < batch:
                    break
                offset += batch
            if len(ids) < len(first) + limit:  # cases without any conversation yet, newest first
                ids += [r[0] for r in self.db.execute(
                    f"""SELECT k.id FROM cases k WHERE {where} AND NOT EXISTS
                        (SELECT 1 FROM conversations c WHERE c.case_id = k.id) ORDER BY k.created_at DESC LIMIT ?""",
                    [*params, limit])]
            ids = ids[:len(first) + limit]
            rows = self._cases_where(f"{where} AND k.id IN ({','.join('?' * len(ids))})", [*params, *ids]) if ids else []
            rows = rows[:limit] if len(rows) > limit and not first else rows
        return rows, total

    def _cases_where(self, where: str, params: list) -> list[dict]:
        return self._all(
            f"""SELECT k.id, k.ref, k.practitioner_id, p.key AS practitioner_key, p.display_name AS practitioner_name,
                       k.created_at, COUNT(c.id) AS conversations, MAX(c.updated_at) AS last_activity
                FROM cases k JOIN people p ON p.id = k.practitioner_id
                LEFT JOIN conversations c ON c.case_id = k.id
                WHERE {where} GROUP BY k.id ORDER BY COALESCE(MAX(c.updated_at), k.created_at) DESC""", params)

    def attention_case_ids(self) -> set[int]:
        """Cases with an open alert, an open review-tier item or an unread answer."""
        return {r[0] for r in self.db.execute(
            """SELECT c.case_id FROM alerts a JOIN conversations c ON c.id = a.conversation_id
               WHERE a.acknowledged_at IS NULL AND a.practice = 0 AND c.case_id IS NOT NULL
               UNION SELECT c.case_id FROM review_items r JOIN conversations c ON c.id = r.conversation_id
               WHERE r.acknowledged_at IS NULL AND c.case_id IS NOT NULL
               UNION SELECT c.case_id FROM unread u JOIN conversations c ON c.id = u.conversation_id
               WHERE u.read_at IS NULL AND c.case_id IS NOT NULL""")}

    def set_respondent(self, conversation_id: int, respondent: str | None) -> None:
        self.db.execute("UPDATE conversations SET respondent = ? WHERE id = ?", (respondent, conversation_id))

    def set_conversation_case(self, conversation_id: int, case_id: int) -> None:
        self.db.execute("UPDATE conversations SET case_id = ? WHERE id = ?", (case_id, conversation_id))

    def scale_scores(self, conversation_id: int) -> list[dict]:
        """Numeric answers (scales and numbers) of a conversation, for summaries."""
        return [r for r in self.answers(conversation_id) if isinstance(r["value"], int) and not isinstance(r["value"], bool)]

    def scale_points(self, conversation_ids: list[int]) -> list[dict]:
        """Whole-number answers of these conversations with when they were given and the flow
        text they were asked in (``flow_sha``), oldest first: the points of a case's charts
        (bot/review/charts.py keeps those of scale questions)."""
        if not conversation_ids:
            return []
        marks = ",".join("?" * len(conversation_ids))
        rows = self._all(
            f"""SELECT a.conversation_id, a.step_id, a.value, a.answered_at, c.flow_id, c.flow_sha, c.person_id,
                       c.respondent, p.key AS person_key, p.display_name,
                       (SELECT cp.pseudonym FROM case_people cp WHERE cp.case_id = c.case_id
                          AND cp.person_id = c.person_id) AS pseudonym
                FROM answers a JOIN conversations c ON c.id = a.conversation_id JOIN people p ON p.id = c.person_id
                WHERE a.conversation_id IN ({marks}) AND a.current = 1
                ORDER BY a.answered_at, a.id""", list(conversation_ids))
        out = []
        for r in rows:
            value = json.loads(r["value"]) if r["value"] is not None else None
            if isinstance(value, int) and not isinstance(value, bool):
                r["value"] = value
                out.append(r)
        return out

    def add_invite(self, *, code_hash: str, flow_id: str, case_id: int, practitioner_id: int, expires_at: str,
                   respondent: str | None = None, language: str | None = None) -> int:
        return self.db.execute(
            """INSERT INTO invites (code_hash, flow_id, case_id, practitioner_id, created_at, expires_at, respondent,
               language) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (code_hash, flow_id, case_id, practitioner_id, now(), expires_at, respondent, language)).lastrowid

    def invite_by_hash(self, code_hash: str) -> dict | None:
        return self._one("SELECT * FROM invites WHERE code_hash = ?", (code_hash,))

    def invite(self, invite_id: int) -> dict | None:
        return self._one("SELECT * FROM invites WHERE id = ?", (invite_id,))

    def open_invite(self, invite_id: int, person_id: int) -> None:
        self.db.execute("UPDATE invites SET opened_by = ? WHERE id = ?", (person_id, invite_id))

    def use_invite(self, invite_id: int, person_id: int, conversation_id: int) -> bool:
        cur = self.db.execute(
            "UPDATE invites SET used_at = ?, used_by = ?, conversation_id = ? WHERE id = ? AND used_at IS NULL",
            (now(), person_id, conversation_id, invite_id))
        return cur.rowcount == 1

    def revoke_invite(self, invite_id: int) -> bool:
        cur = self.db.execute("UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND used_at IS NULL",
                              (now(), invite_id))
        return cur.rowcount == 1

    def withdraw_invites_of(self, practitioner_id: int) -> list[int]:
        """Revoke every open (unused, unrevoked) invitation the practitioner made; their ids."""
        ids = [r[0] for r in self.db.execute(
            "SELECT id FROM invites WHERE practitioner_id = ? AND used_at IS NULL AND revoked_at IS NULL",
            (practitioner_id,)).fetchall()]
        for invite_id in ids:
            self.revoke_invite(invite_id)
        return ids

    def invites(self, practitioner_id: int | None = None, open_only: bool = False) -> list[dict]:
        where, params = [], []
        if practitioner_id is not None:
            where.append("i.practitioner_id = ?")
            params.append(practitioner_id)
        if open_only:
            where.append("i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at >= ?")
            params.append(now())
        sql = """SELECT i.id, i.flow_id, i.created_at, i.expires_at, i.opened_by, i.used_at, i.revoked_at,
                        i.conversation_id, k.ref AS case_ref, p.key AS practitioner_key
                 FROM invites i JOIN cases k ON k.id = i.case_id JOIN people p ON p.id = i.practitioner_id"""
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._all(sql + " ORDER BY i.id", params)

    def reassign_case(self, case_id: int, practitioner_id: int) -> None:
        """The case, and its open invitations, now belong to another practitioner."""
        self.db.execute("UPDATE cases SET practitioner_id = ? WHERE id = ?", (practitioner_id, case_id))
        self.db.execute("UPDATE invites SET practitioner_id = ? WHERE case_id = ? AND used_at IS NULL",
                        (practitioner_id, case_id))

    def set_pseudonym(self, case_id: int, person_id: int, pseudonym: str, by: str | None) -> None:
        self.db.execute(
            """INSERT INTO case_people (case_id, person_id, pseudonym, set_by, updated_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (case_id, person_id) DO UPDATE SET pseudonym = excluded.pseudonym,
                 set_by = excluded.set_by, updated_at = excluded.updated_at""",
            (case_id, person_id, self._e(pseudonym), by, now()))

    def pseudonym(self, case_id: int | None, person_id: int) -> str | None:
        if case_id is None:
            return None
        row = self._one("SELECT pseudonym FROM case_people WHERE case_id = ? AND person_id = ?", (case_id, person_id))
        return row["pseudonym"] if row else None

    # -- per-case content the practitioner writes (issue 13) -----------------------------
    def _case_id(self, case: int | str) -> int:
        """A case id, or the one case with this reference (several practitioners may use the same
        reference: then say which by passing the case id)."""
        if isinstance(case, int):
            if self.case_by_id(case) is None:
                raise StoreError(f"there is no case {case}")
            return case
        rows = self.cases_by_ref(case)
        if not rows:
            raise StoreError(f"there is no case '{case}'")
        if len(rows) > 1:
            raise StoreError(f"more than one practitioner has a case '{case}'; say which case it is")
        return rows[0]["id"]

    def set_case_info(self, case: int | str, key: str, text: str | None, set_by: str | None = None) -> None:
        """Set (or, with ``text`` None, remove) the practitioner's ``key`` text for a case."""
        case_id = self._case_id(case)
        if text is None:
            self.db.execute("DELETE FROM case_info WHERE case_id = ? AND key = ?", (case_id, key))
            return
        self.db.execute(
            """INSERT INTO case_info (case_id, key, text, set_by, updated_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (case_id, key) DO UPDATE SET text = excluded.text, set_by = excluded.set_by,
                 updated_at = excluded.updated_at""",
            (case_id, key, self._e(text), set_by, now()))

    def case_info(self, case: int | str) -> dict[str, str]:
        """Every text the practitioner has written for the case, by key."""
        case_id = self._case_id(case)
        return {r["key"]: r["text"] for r in self._all("SELECT key, text FROM case_info WHERE case_id = ? ORDER BY key",
                                                       (case_id,))}

    def case_info_rows(self, case_id: int) -> list[dict]:
        """The same with who set each and when (for the case view)."""
        return self._all("SELECT key, text, set_by, updated_at FROM case_info WHERE case_id = ? ORDER BY key", (case_id,))

    def forget_name(self, person_id: int) -> None:
        """Minimisation: drop a stored display name (e.g. a family member's Telegram first name)."""
        self.db.execute("UPDATE people SET display_name = NULL WHERE id = ? AND display_name IS NOT NULL", (person_id,))

    def add_comment(self, conversation_id: int, author_id: int, text: str, step_id: str | None,
                    visibility: str = "internal") -> int:
        if visibility not in ("internal", "shared"):
            raise ValueError(f"a comment is internal or shared, not {visibility!r}")
        return self.db.execute(
            "INSERT INTO comments (conversation_id, step_id, author_id, text, created_at, visibility) VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, step_id, author_id, self._e(text), now(), visibility)).lastrowid

    def comments(self, conversation_id: int, shared_only: bool = False) -> list[dict]:
        """A conversation's comments; ``shared_only`` leaves out the internal (staff-only) ones."""
        return self._all(
            """SELECT m.id, m.step_id, m.text, m.created_at, m.visibility, p.key AS author_key,
                      p.display_name AS author_name
               FROM comments m JOIN people p ON p.id = m.author_id
               WHERE m.conversation_id = ? AND (? = 0 OR m.visibility = 'shared') ORDER BY m.id""",
            (conversation_id, 1 if shared_only else 0))

    def mark_reviewed(self, conversation_id: int, supervisor_id: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO reviews (conversation_id, supervisor_id, reviewed_at) VALUES (?, ?, ?)",
                        (conversation_id, supervisor_id, now()))

    def unreviewed(self, practitioner_ids: list[int], supervisor_id: int) -> list[dict]:
        """Conversations in the practitioners' cases, or their own rehearsals, not reviewed by this supervisor.

        Two indexed halves (cases by practitioner, then their conversations by case and status;
        rehearsals by person) instead of one OR that would read every conversation."""
        if not practitioner_ids:
            return []
        marks = ",".join("?" * len(practitioner_ids))
        return self._all(
            f"""SELECT c.id, c.flow_id, c.status, c.updated_at, k.ref AS case_ref, k.practitioner_id
                FROM cases k JOIN conversations c ON c.case_id = k.id
                WHERE k.practitioner_id IN ({marks}) AND c.status NOT IN ('in_progress', 'rehearsing')
                  AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.conversation_id = c.id AND r.supervisor_id = ?)
                UNION ALL
                SELECT c.id, c.flow_id, c.status, c.updated_at, NULL AS case_ref, c.person_id AS practitioner_id
                FROM conversations c
                WHERE c.case_id IS NULL AND c.person_id IN ({marks}) AND c.status NOT IN ('in_progress', 'rehearsing')
                  AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.conversation_id = c.id AND r.supervisor_id = ?)
                ORDER BY 4, 1""",
            [*practitioner_ids, supervisor_id, *practitioner_ids, supervisor_id])

    def conversation_owner(self, conversation_id: int) -> dict | None:
        """Who a conversation belongs to: its person, and the practitioner holding its case."""
        return self._one(
            """SELECT c.id, c.person_id, c.case_id, k.practitioner_id, k.ref AS case_ref
               FROM conversations c LEFT JOIN cases k ON k.id = c.case_id WHERE c.id = ?""", (conversation_id,))

    def data_about(self, person_id: int) -> dict:
        """What /mydata shows. ``safeguarding_records``: how many safeguarding records (alerts,
        review items, missed disclosures, one total, no tier) hold the person's words; the words
        are not shown in the chat (see bot/access.py ``mydata``)."""
        return {
            "person": self.get_person(person_id),
            "conversations": self.conversations(person_id=person_id),
            "roles": sorted(self.roles_of(person_id)),
            "safeguarding_records": self.db.execute(
                "SELECT " + " + ".join(_kept_records(":pid").values()), {"pid": person_id}).fetchone()[0],
        }

    # -- audit -----------------------------------------------------------------------
    def audit(self, actor: str | None, action: str, target: str | None = None, detail: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO audit (actor, action, target, detail, created_at) VALUES (?, ?, ?, ?, ?)",
            (actor, action, target, detail, now()),
        )

    def audit_coalesced(self, actor: str | None, action: str, target: str | None = None, detail: str | None = None,
                        *, within_seconds: float = 600.0, times: int = 1) -> None:
        """Like :meth:`audit`, but the same entry again within ``within_seconds`` counts on
        the existing row ("(x3)") instead of adding one: a stranger repeating a refused
        request cannot grow the log one row at a time."""
        since = iso(datetime.now(timezone.utc) - timedelta(seconds=within_seconds))
        row = self._one(
            """SELECT id, detail FROM audit WHERE actor IS ? AND action = ? AND target IS ? AND created_at >= ?
               ORDER BY id DESC LIMIT 1""", (actor, action, target, since))
        if row is not None:
            base, count = _repeats(row["detail"])
            if base == detail:
                suffix = f"(x{count + times})"
                self.db.execute("UPDATE audit SET detail = ? WHERE id = ?",
                                (f"{base} {suffix}" if base else suffix, row["id"]))
                return
        self.audit(actor, action, target, f"{detail} (x{times})" if times > 1 and detail else
                   f"(x{times})" if times > 1 else detail)

    def audit_once(self, actor: str | None, action: str, target: str, detail: str | None = None) -> bool:
        """Write the entry unless one with this action and target exists; True if written."""
        if self._one("SELECT 1 AS x FROM audit WHERE action = ? AND target = ? LIMIT 1", (action, target)):
            return False
        self.audit(actor, action, target, detail)
        return True

    def staff_keys(self) -> set[str]:
        """Keys of everyone holding a worker's role (practitioner, supervisor or admin)."""
        return {r[0] for r in self.db.execute(
            """SELECT DISTINCT p.key FROM roles r JOIN people p ON p.id = r.person_id
               WHERE r.role IN ('practitioner', 'supervisor', 'admin')""").fetchall()}

    def role_holder_keys(self) -> set[str]:
        """Keys of everyone holding any role (for the frontend's rate limits)."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT p.key FROM roles r JOIN people p ON p.id = r.person_id").fetchall()}

    def audit_log(self, since: str | None = None) -> list[dict]:
        if since:
            return self._all("SELECT * FROM audit WHERE created_at >= ? ORDER BY id", (since,))
        return self._all("SELECT * FROM audit ORDER BY id", ())

    def audit_page(self, limit: int = 100, before_id: int | None = None) -> list[dict]:
        """The newest audit entries first, ``limit`` at a time (``before_id``: the next page)."""
        if before_id is not None:
            return self._all("SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?", (before_id, limit))
        return self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # -- the review website's sign-in (bot/web/signin.py) ----------------------------------
    def add_web_link(self, code_hash: str, person_id: int, expires_at: str) -> int:
        return self.db.execute("INSERT INTO web_links (code_hash, person_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                               (code_hash, person_id, now(), expires_at)).lastrowid

    def web_link(self, code_hash: str) -> dict | None:
        return self._one("SELECT l.*, p.key AS person_key FROM web_links l JOIN people p ON p.id = l.person_id"
                         " WHERE l.code_hash = ?", (code_hash,))

    def use_web_link(self, link_id: int, at: str) -> bool:
        """Mark the link used; False if it already was (it works once)."""
        return self.db.execute("UPDATE web_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
                               (at, link_id)).rowcount == 1

    def add_web_session(self, token_hash: str, person_id: int, expires_at: str, at: str) -> int:
        return self.db.execute(
            "INSERT INTO web_sessions (token_hash, person_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash, person_id, at, expires_at, at)).lastrowid

    def web_session(self, token_hash: str) -> dict | None:
        return self._one("SELECT s.*, p.key AS person_key FROM web_sessions s JOIN people p ON p.id = s.person_id"
                         " WHERE s.token_hash = ?", (token_hash,))

    def touch_web_session(self, session_id: int, at: str) -> None:
        self.db.execute("UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", (at, session_id))

    def end_web_session(self, session_id: int, at: str) -> bool:
        return self.db.execute("UPDATE web_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                               (at, session_id)).rowcount == 1

    def end_web_sessions_of(self, person_id: int, at: str) -> int:
        return self.db.execute("UPDATE web_sessions SET ended_at = ? WHERE person_id = ? AND ended_at IS NULL",
                               (at, person_id)).rowcount

    def case_activity(self, case_ids: list[int]) -> dict[int, dict]:
        """For the website's list of cases: per case, unread free-text answers by conversation
        ((count, flagged count): bot.reading decides which count), open safeguarding alerts and
        open review-tier items. Read from those (small) tables, then kept for ``case_ids``."""
        out = {k: {"unread_by_conversation": {}, "alerts": 0, "review_items": 0} for k in case_ids}
        if not case_ids:
            return out
        for cid, conv, n, flagged in self.db.execute(
                """SELECT c.case_id, u.conversation_id, COUNT(*), SUM(u.flagged) FROM unread u
                   JOIN conversations c ON c.id = u.conversation_id
                   WHERE u.read_at IS NULL AND c.case_id IS NOT NULL GROUP BY u.conversation_id"""):
            if cid in out:
                out[cid]["unread_by_conversation"][conv] = (n, flagged or 0)
        for cid, n in self.db.execute(
                """SELECT c.case_id, COUNT(*) FROM alerts a JOIN conversations c ON c.id = a.conversation_id
                   WHERE a.acknowledged_at IS NULL AND a.practice = 0 AND c.case_id IS NOT NULL GROUP BY c.case_id"""):
            if cid in out:
                out[cid]["alerts"] = n
        for cid, n in self.db.execute(
                """SELECT c.case_id, COUNT(*) FROM review_items r JOIN conversations c ON c.id = r.conversation_id
                   WHERE r.acknowledged_at IS NULL AND c.case_id IS NOT NULL GROUP BY c.case_id"""):
            if cid in out:
                out[cid]["review_items"] = n
        return out

    # -- quiet review tier, unread answers, missed disclosures (issue 12) ---------------
    def add_review_item(self, *, conversation_id: int | None, person_id: int, transcript_id: int | None,
                        concern: str, matched: str | None, words: str | None = None) -> int:
        """``words``: the person's words, kept on the item only when no transcript line holds them."""
        return self.db.execute(
            """INSERT INTO review_items (conversation_id, person_id, transcript_id, concern, matched, created_at, words)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (conversation_id, person_id, transcript_id, concern, self._e(matched), now(), self._e(words))).lastrowid

    _REVIEW_ITEM = """SELECT r.*, c.flow_id, c.case_id, k.ref AS case_ref, k.practitioner_id,
                             p.key AS person_key, p.display_name, t.step_id, COALESCE(c.practice, 0) AS practice
                      FROM review_items r JOIN people p ON p.id = r.person_id
                      LEFT JOIN conversations c ON c.id = r.conversation_id
                      LEFT JOIN cases k ON k.id = c.case_id
                      LEFT JOIN transcript t ON t.id = r.transcript_id"""

    def review_item(self, item_id: int) -> dict | None:
        return self._one(self._REVIEW_ITEM + " WHERE r.id = ?", (item_id,))

    def review_items(self, *, practitioner_ids: list[int] | None = None, conversation_ids: list[int] | None = None,
                     open_only: bool = True) -> list[dict]:
        """Review items, oldest first; ``practitioner_ids`` None means every practitioner's
        (and those outside any case); an empty list means none."""
        where, params = [], []
        if open_only:
            where.append("r.acknowledged_at IS NULL")
        if practitioner_ids is not None:
            where.append(f"k.practitioner_id IN ({','.join('?' * len(practitioner_ids)) or 'NULL'})")
            params += practitioner_ids
        if conversation_ids is not None:
            where.append(f"r.conversation_id IN ({','.join('?' * len(conversation_ids)) or 'NULL'})")
            params += conversation_ids
        sql = self._REVIEW_ITEM + (" WHERE " + " AND ".join(where) if where else "")
        return self._all(sql + " ORDER BY r.created_at, r.id", params)

    def review_items_due(self, *, remind_before: str, escalate_before: str,
                         now: str | None = None) -> tuple[list[dict], list[dict]]:
        """:meth:`reading_due` for review items."""
        return self.reading_due("review", remind_before=remind_before, escalate_before=escalate_before, now=now)

    _UNREAD_ITEM = """SELECT u.*, c.practice, t.step_id, c.flow_id, c.flow_sha, c.person_id, k.ref AS case_ref,
                             k.practitioner_id, pr.key AS practitioner_key, pr.display_name AS practitioner_name
                      FROM unread u JOIN transcript t ON t.id = u.transcript_id
                      JOIN conversations c ON c.id = u.conversation_id
                      LEFT JOIN cases k ON k.id = c.case_id LEFT JOIN people pr ON pr.id = k.practitioner_id"""

    def reading_due(self, kind: str, *, remind_before: str, escalate_before: str,
                    now: str | None = None) -> tuple[list[dict], list[dict]]:
        """The one rule of when the reminders of unread answers (``kind`` 'unread') and review
        items ('review') fall due. Open items to remind the practitioner about (created before
        ``remind_before``, not yet reminded), and those to tell the supervisor about: their
        practitioner's reminder fell due (its row is written, whether or not it could be sent)
        and its ``escalate_after`` has come by ``now`` (items reminded before that column
        existed: reminded before ``escalate_before``); not yet escalated, or escalated by rows
        none of which could be delivered (``escalate_state``, ``escalate_key``: the caller
        decides whom next). Unread answers are only looked at once ``remind_before`` has come
        for them, for either stage."""
        # (and, for a handover, those whose practitioner's reminder went to someone other than
        # the case's holder now, before the supervisor was told: ``remind_person_id`` says who)
        base, key, done, order = {"review": (self._REVIEW_ITEM, "id", "acknowledged_at", "x.id"),
                                  "unread": (self._UNREAD_ITEM, "transcript_id", "read_at",
                                             "x.created_at, x.transcript_id")}[kind]
        old_enough = " AND x.created_at <= :remind_before" if kind == "unread" else ""
        params = {"remind_before": remind_before, "escalate_before": escalate_before, "now": now or escalate_before}
        remind = self._all(f"""SELECT x.*, rs.state AS remind_state, rs.person_id AS remind_person_id
                               FROM ({base}) x
                               LEFT JOIN schedule rs ON rs.id = x.remind_id
                               WHERE x.{done} IS NULL AND x.created_at <= :remind_before
                                 AND ((x.reminded_at IS NULL AND {self._NO_ROW.format(column='x.remind_id')})
                                      OR (x.escalated_at IS NULL AND rs.state IN ('sent', 'undeliverable')
                                          AND rs.person_id != x.practitioner_id))
                               ORDER BY {order}""", params)
        escalate = self._all(
            f"""SELECT x.*, rs.state AS remind_state, es.state AS escalate_state, ep.key AS escalate_key
                FROM ({base}) x LEFT JOIN schedule rs ON rs.id = x.remind_id
                LEFT JOIN schedule es ON es.id = x.escalate_id LEFT JOIN people ep ON ep.id = es.person_id
                WHERE x.{done} IS NULL AND x.escalated_at IS NULL{old_enough}
                  AND (x.reminded_at IS NOT NULL OR NOT {self._NO_ROW.format(column='x.remind_id')})
                  AND ((x.escalate_after IS NOT NULL AND x.escalate_after <= :now)
                       OR (x.escalate_after IS NULL AND x.reminded_at IS NOT NULL AND x.reminded_at <= :escalate_before))
                  AND ({self._NO_ROW.format(column='x.escalate_id')}
                       OR (es.state = 'undeliverable' AND NOT {self._waiting(kind, f'x.{key}', 2)}))
                ORDER BY {order}""", params)
        return remind, escalate

    # an item not yet given a reminder row (or whose row was cancelled)
    _NO_ROW = "({column} IS NULL OR {column} IN (SELECT id FROM schedule WHERE state = 'cancelled'))"

    @staticmethod
    def _waiting(kind: str, item: str, seq: int, states: str = "'pending', 'sending'", other_than: str = "0") -> str:
        """SQL: a row of this stage (``seq``) about the item that may still reach its recipient
        (or, with 'sent' among ``states``, did): while one does, a recipient at the same stage
        who could not be reached does not bring the next stage forward."""
        return f"""EXISTS (SELECT 1 FROM reminder_links wl JOIN schedule ws ON ws.id = wl.schedule_id
                           WHERE wl.kind = '{kind}' AND wl.item_id = {item} AND ws.seq = {seq}
                             AND ws.id != {other_than} AND ws.state IN ({states}))"""

    def acknowledge_review_item(self, item_id: int, by: str) -> bool:
        cur = self.db.execute(
            "UPDATE review_items SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL",
            (now(), by, item_id))
        return cur.rowcount == 1

    def add_unread(self, transcript_id: int, conversation_id: int, flagged: bool) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO unread (transcript_id, conversation_id, flagged, created_at) VALUES (?, ?, ?, ?)",
            (transcript_id, conversation_id, 1 if flagged else 0, now()))

    def mark_read(self, conversation_id: int, by: str, except_steps=()) -> int:
        """Everything unread in the conversation has now been read by ``by``, except the answers
        to ``except_steps`` (not shown to them)."""
        skip = sorted(except_steps)
        sql = "UPDATE unread SET read_at = ?, read_by = ? WHERE conversation_id = ? AND read_at IS NULL"
        if skip:
            sql += (" AND transcript_id NOT IN (SELECT id FROM transcript WHERE conversation_id = ? AND step_id IN"
                    f" ({', '.join('?' * len(skip))}))")
        return self.db.execute(sql, (now(), by, conversation_id, *((conversation_id, *skip) if skip else ()))).rowcount

    def unread_answers(self, older_than: str | None = None) -> list[dict]:
        """Unread free-text answers (oldest first), with their case, its practitioner and the
        flow (when their reminders fall due: :meth:`reading_due`)."""
        sql = self._UNREAD_ITEM + " WHERE u.read_at IS NULL"
        params: list = []
        if older_than is not None:
            sql += " AND u.created_at <= ?"
            params.append(older_than)
        return self._all(sql + " ORDER BY u.created_at, u.transcript_id", params)

    def supervisor_keys(self, practitioner_id: int) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT p.key FROM teams t JOIN people p ON p.id = t.supervisor_id WHERE t.practitioner_id = ? ORDER BY p.id",
            (practitioner_id,)).fetchall()]

    def line_steps(self, conversation_id: int) -> dict[str | None, bool]:
        """The steps a conversation's transcript has lines at (None: lines outside any step),
        each with whether any of its lines is flagged; read without decrypting a word."""
        return {step: bool(flagged) for step, flagged in self.db.conn.execute(
            "SELECT step_id, MAX(flagged) FROM transcript WHERE conversation_id = ? GROUP BY step_id",
            (conversation_id,))}

    def add_missed(self, *, conversation_id: int | None, step_id: str | None, words: str, reported_by: str) -> int:
        return self.db.execute(
            "INSERT INTO missed_disclosures (conversation_id, step_id, words, reported_by, created_at) VALUES (?, ?, ?, ?, ?)",
            (conversation_id, step_id, self._e(words), reported_by, now())).lastrowid

    def missed_disclosures(self) -> list[dict]:
        return self._all("""SELECT m.*, c.flow_id FROM missed_disclosures m
                            LEFT JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id""")

    # -- the schedule of due messages (bot/schedule.py) ------------------------------------
    def add_scheduled(self, *, person_id: int, kind: str, text: str, due_at: str, why: str,
                      conversation_id: int | None = None, case_id: int | None = None, step_id: str | None = None,
                      seq: int = 1, about_person_id: int | None = None) -> int:
        cur = self.db.execute(
            """INSERT INTO schedule (person_id, kind, text, due_at, why, conversation_id, case_id, step_id, seq,
               created_at, about_person_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (person_id, kind, self._e(text), due_at, why, conversation_id, case_id, step_id, seq, now(),
             about_person_id),
        )
        return cur.lastrowid

    def held_notice_recipients(self, about_person_id: int) -> list[int]:
        """Who has a notice about this person still waiting (kind 'notice', pending or being sent)."""
        return [r[0] for r in self.db.execute(
            """SELECT DISTINCT person_id FROM schedule WHERE kind = 'notice' AND about_person_id = ?
               AND state IN ('pending', 'sending') ORDER BY person_id""", (about_person_id,)).fetchall()]

    def scheduled(self, item_id: int) -> dict | None:
        return self._one("SELECT * FROM schedule WHERE id = ?", (item_id,))

    def scheduled_for_conversation(self, conversation_id: int, kind: str, states: tuple[str, ...]) -> list[dict]:
        marks = ",".join("?" * len(states))
        return self._all(f"SELECT * FROM schedule WHERE conversation_id = ? AND kind = ? AND state IN ({marks})"
                         " ORDER BY id", (conversation_id, kind, *states))

    def move_scheduled(self, conversation_id: int, kind: str, due_at: str) -> bool:
        """Give the conversation's pending item of this kind a new time; False if none is pending."""
        cur = self.db.execute("UPDATE schedule SET due_at = ? WHERE conversation_id = ? AND kind = ? AND state = 'pending'",
                              (due_at, conversation_id, kind))
        return cur.rowcount > 0

    def cancel_scheduled(self, *, ids: list[int] | None = None, conversation_id: int | None = None,
                         kind: str | None = None, person_id: int | None = None, step_id: str | None = None,
                         by: str) -> int:
        """Cancel pending rows chosen by id, conversation, kind and/or person (all given must match)."""
        where, params = ["state = 'pending'"], []
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            params.extend(ids)
        for column, value in (("conversation_id", conversation_id), ("kind", kind), ("person_id", person_id),
                              ("step_id", step_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        cur = self.db.execute(f"UPDATE schedule SET state = 'cancelled', cancelled_by = ? WHERE {' AND '.join(where)}",
                              (by, *params))
        return cur.rowcount

    def due_scheduled(self, at: str, limit: int = 100) -> list[dict]:
        """Pending rows due by ``at``, oldest first, with the recipient's key and the conversation's status."""
        return self._all(
            """SELECT s.*, p.key AS person_key, c.status AS conversation_status, c.chat_id AS chat_id
               FROM schedule s JOIN people p ON p.id = s.person_id
               LEFT JOIN conversations c ON c.id = s.conversation_id
               WHERE s.state = 'pending' AND s.due_at <= ? ORDER BY s.due_at, s.id LIMIT ?""",
            (at, limit),
        )

    def claim_scheduled(self, item_id: int, at: str) -> bool:
        """pending -> sending; False if someone else claimed it, or it was cancelled or sent."""
        cur = self.db.execute("UPDATE schedule SET state = 'sending', claimed_at = ? WHERE id = ? AND state = 'pending'",
                              (at, item_id))
        return cur.rowcount == 1

    def finish_scheduled(self, item_id: int, *, sent_at: str | None) -> bool:
        """sending -> sent (``sent_at``), or back to pending when the send failed (None)."""
        if sent_at is None:
            cur = self.db.execute("UPDATE schedule SET state = 'pending', claimed_at = NULL WHERE id = ? AND state = 'sending'",
                                  (item_id,))
        else:
            cur = self.db.execute("UPDATE schedule SET state = 'sent', sent_at = ? WHERE id = ? AND state = 'sending'",
                                  (sent_at, item_id))
        return cur.rowcount == 1

    def unclaim_stale_scheduled(self, claimed_before: str) -> int:
        """Rows left 'sending' by a crash between claim and confirmation go back to pending
        (like replies committed but not recorded as sent: sent again, at least once)."""
        cur = self.db.execute("UPDATE schedule SET state = 'pending', claimed_at = NULL"
                              " WHERE state = 'sending' AND claimed_at < ?", (claimed_before,))
        return cur.rowcount

    def scheduled_list(self, *, person_id: int | None = None, case_ids: list[int] | None = None,
                       conversation_id: int | None = None, states: tuple[str, ...] = ("pending",),
                       limit: int = 50) -> list[dict]:
        where, params = [f"s.state IN ({','.join('?' * len(states))})"], list(states)
        if person_id is not None:
            where.append("s.person_id = ?")
            params.append(person_id)
        if conversation_id is not None:
            where.append("s.conversation_id = ?")
            params.append(conversation_id)
        if case_ids is not None:
            where.append(f"(s.case_id IN ({','.join('?' * len(case_ids))}) OR c.case_id IN ({','.join('?' * len(case_ids))}))"
                         if case_ids else "0")
            params.extend(case_ids)
            params.extend(case_ids)
        return self._all(
            f"""SELECT s.*, p.key AS person_key FROM schedule s JOIN people p ON p.id = s.person_id
                LEFT JOIN conversations c ON c.id = s.conversation_id
                WHERE {' AND '.join(where)} ORDER BY s.due_at, s.id LIMIT ?""", (*params, limit))

    def opt_out(self, person_id: int, kind: str, off: bool = True) -> None:
        if off:
            self.db.execute("INSERT OR IGNORE INTO reminder_optouts (person_id, kind, created_at) VALUES (?, ?, ?)",
                            (person_id, kind, now()))
        else:
            self.db.execute("DELETE FROM reminder_optouts WHERE person_id = ? AND kind = ?", (person_id, kind))

    def opted_out(self, person_id: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT kind FROM reminder_optouts WHERE person_id = ?", (person_id,))}

    def reminder_times(self, person_id: int) -> dict:
        """A person's own quiet hours (None: the deployment's) and days without reminders."""
        row = self._one("SELECT quiet_from, quiet_until, blocked_days FROM reminder_times WHERE person_id = ?",
                        (person_id,))
        if row is None:
            return {"quiet_from": None, "quiet_until": None, "blocked_days": set()}
        days = {int(d) for d in row["blocked_days"].split(",") if d}
        return {"quiet_from": row["quiet_from"], "quiet_until": row["quiet_until"], "blocked_days": days}

    def set_reminder_times(self, person_id: int, *, quiet: tuple[str, str] | None | bool = False,
                           blocked_days: set[int] | None = None) -> None:
        """Change a person's quiet hours (a (from, until) pair, None for the deployment's; False
        leaves them) and/or their days without reminders (None leaves them)."""
        self.db.execute("INSERT OR IGNORE INTO reminder_times (person_id, updated_at) VALUES (?, ?)", (person_id, now()))
        if quiet is not False:
            start, until = quiet if quiet else (None, None)
            self.db.execute("UPDATE reminder_times SET quiet_from = ?, quiet_until = ?, updated_at = ? WHERE person_id = ?",
                            (start, until, now(), person_id))
        if blocked_days is not None:
            self.db.execute("UPDATE reminder_times SET blocked_days = ?, updated_at = ? WHERE person_id = ?",
                            (",".join(str(d) for d in sorted(blocked_days)), now(), person_id))

    def defer_scheduled(self, item_id: int, due_at: str) -> bool:
        """A pending row falls in its recipient's quiet hours or a day without reminders: it
        waits until ``due_at`` (so it leaves the due set, and /reminders shows the real time)."""
        cur = self.db.execute("UPDATE schedule SET due_at = ? WHERE id = ? AND state = 'pending'", (due_at, item_id))
        return cur.rowcount == 1

    # -- unread-answer and review-item reminders as schedule rows (bot/reading.py) ------------
    _READING = {"unread": ("unread", "transcript_id", "read_at"), "review": ("review_items", "id", "acknowledged_at")}

    def link_reminder(self, kind: str, stage: int, item_ids: list[int], schedule_id: int,
                      escalate_after: str | None = None) -> None:
        """The row ``schedule_id`` tells about these items: stage 1 the practitioner, 2 the supervisor.
        ``escalate_after`` (stage 1): when the supervisor's turn comes, sent or not."""
        table, key, _ = self._READING[kind]
        self.db.conn.executemany("INSERT OR IGNORE INTO reminder_links (schedule_id, kind, item_id) VALUES (?, ?, ?)",
                                 [(schedule_id, kind, i) for i in item_ids])
        if stage == 1 and escalate_after is not None:
            # the supervisor's clock runs from the first practitioner's reminder (a handover keeps it)
            self.db.conn.executemany(f"UPDATE {table} SET remind_id = ?, escalate_after = COALESCE(escalate_after, ?)"
                                     f" WHERE {key} = ?",
                                     [(schedule_id, escalate_after, i) for i in item_ids])
            return
        column = "remind_id" if stage == 1 else "escalate_id"
        self.db.conn.executemany(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", [(schedule_id, i) for i in item_ids])

    def scheduled_undeliverable(self, schedule_id: int) -> bool:
        """pending or sending -> undeliverable: it can never reach its recipient (not tried again)."""
        return self.db.execute("UPDATE schedule SET state = 'undeliverable', claimed_at = NULL"
                               " WHERE id = ? AND state IN ('pending', 'sending')", (schedule_id,)).rowcount == 1

    def reminder_undeliverable(self, kind: str, stage: int, schedule_id: int, at: str) -> int:
        """The row could never reach its recipient (they blocked the bot, have no chat with it,
        or are not on Telegram at all): it is 'undeliverable', and for the practitioner's stage
        the supervisor's turn comes at once (``at``) for each item nobody else at this stage
        was, or may still be, reached about (several recipients at one stage: the supervisors
        of a case nobody may act on). The case holder's own reminder is alone at its stage
        (an earlier holder's, before a handover, does not count). How many items are open."""
        self.scheduled_undeliverable(schedule_id)
        table, key, done = self._READING[kind]
        if stage == 1:
            holder = (f"(SELECT k.practitioner_id FROM conversations c JOIN cases k ON k.id = c.case_id"
                      f" WHERE c.id = {table}.conversation_id)")
            others = self._waiting(kind, f"{table}.{key}", 1, "'pending', 'sending', 'sent'", "?")
            self.db.execute(f"""UPDATE {table} SET escalate_after = ? WHERE {key} IN ({self._LINKED})
                                  AND escalated_at IS NULL
                                  AND ((SELECT person_id FROM schedule WHERE id = ?) IS {holder} OR NOT {others})""",
                            (at, schedule_id, schedule_id, schedule_id))
        return self.reminder_items_open(kind, stage, schedule_id)

    def pending_reading_rows(self) -> list[dict]:
        """The unread-answer and review-item reminders not yet sent (state 'pending'), one
        entry per row and open item: the row's id, kind, stage (seq) and recipient's key, and
        the item's conversation and current case holder (to check the row is still right)."""
        out = []
        for kind, (table, key, done) in self._READING.items():
            out += self._all(
                f"""SELECT s.id, s.kind, s.seq, p.key AS person_key, x.conversation_id, k.practitioner_id
                    FROM schedule s JOIN people p ON p.id = s.person_id
                    JOIN reminder_links l ON l.schedule_id = s.id JOIN {table} x ON x.{key} = l.item_id
                    LEFT JOIN conversations c ON c.id = x.conversation_id LEFT JOIN cases k ON k.id = c.case_id
                    WHERE s.state = 'pending' AND s.kind = ? AND x.{done} IS NULL
                    ORDER BY s.id""", (kind,))
        return out

    def reminder_sent(self, kind: str, stage: int, schedule_id: int, at: str) -> int:
        """The row went out: its items are reminded (stage 1) or escalated (stage 2) at ``at``."""
        table, key, _ = self._READING[kind]
        column = "reminded_at" if stage == 1 else "escalated_at"
        return self.db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} IN ({self._LINKED}) AND {column} IS NULL",
                               (at, schedule_id)).rowcount

    _LINKED = "SELECT item_id FROM reminder_links WHERE schedule_id = ?"  # a row's items

    def reminder_items_open(self, kind: str, stage: int, schedule_id: int) -> int:
        """How many of the row's items are still unread / not acknowledged."""
        table, key, done = self._READING[kind]
        return self.db.execute(f"SELECT count(*) FROM {table} WHERE {key} IN ({self._LINKED}) AND {done} IS NULL",
                               (schedule_id,)).fetchone()[0]

    # -- legal holds (issue 17) ----------------------------------------------------------
    def hold_case(self, case_id: int, by: str, reason: str) -> bool:
        """Put the case under a legal hold; False if it already was (the first reason stays)."""
        cur = self.db.execute("UPDATE cases SET held_at = ?, held_by = ?, hold_reason = ? WHERE id = ? AND held_at IS NULL",
                              (now(), by, reason, case_id))
        return cur.rowcount == 1

    def release_case(self, case_id: int) -> bool:
        cur = self.db.execute("UPDATE cases SET held_at = NULL, held_by = NULL, hold_reason = NULL"
                              " WHERE id = ? AND held_at IS NOT NULL", (case_id,))
        return cur.rowcount == 1

    def held_cases(self) -> list[dict]:
        return self._all("SELECT * FROM cases WHERE held_at IS NOT NULL ORDER BY ref, id")

    # -- retention: purge in batches (bot/retention.py) ------------------------------------
    @staticmethod
    def _purge_from(rule: int) -> tuple[str, str, str, str, str]:
        kind, table, where = PURGE_RULES[rule]
        alias = "c" if table == "conversations" else "x"
        key = "id" if table == "conversations" else "rowid"
        return kind, table, alias, where, key

    def purge_count(self, rule: int, cutoff: str) -> int:
        _, table, alias, where, _key = self._purge_from(rule)
        return self.db.execute(f"SELECT COUNT(*) FROM {table} {alias} WHERE {where}", {"cutoff": cutoff}).fetchone()[0]

    def purge_due(self, rule: int, cutoff: str, limit: int) -> list[int]:
        """Up to ``limit`` row ids of this rule's table that are due, oldest first."""
        _, table, alias, where, key = self._purge_from(rule)
        return [r[0] for r in self.db.execute(
            f"SELECT {alias}.{key} FROM {table} {alias} WHERE {where} ORDER BY {alias}.{key} LIMIT :limit",
            {"cutoff": cutoff, "limit": limit}).fetchall()]

    def purge_rows(self, rule: int, ids: list[int]) -> dict[str, int]:
        """Delete these rows of the rule's table (a conversation with everything hanging on it);
        rows deleted per table. Call inside a transaction."""
        _, table, _alias, _where, key = self._purge_from(rule)
        if not ids:
            return {}
        if table == "conversations":
            return self.delete_conversations(ids)
        marks = ",".join("?" * len(ids))
        return {table: self.db.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", ids).rowcount}

    def delete_conversations(self, ids: list[int]) -> dict[str, int]:
        """Delete conversations and every row that hangs on them; a person's pseudonym in a case
        goes with their last conversation there (unless the case is held)."""
        marks = ",".join("?" * len(ids))
        pairs = self.db.execute(f"SELECT DISTINCT case_id, person_id FROM conversations WHERE id IN ({marks})"
                                " AND case_id IS NOT NULL", ids).fetchall()
        counts: dict[str, int] = {}
        for table in ("unread", "reviews", "comments", "answers", "alerts", "review_items", "missed_disclosures",
                      "schedule", "inputs", "transcript", "conversations"):
            column = "id" if table == "conversations" else "conversation_id"
            n = self.db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids).rowcount
            if n:
                counts[table] = n
            if table == "inputs":  # an invitation outlives the conversation it led to (its own retention)
                self.db.execute(f"UPDATE invites SET conversation_id = NULL WHERE conversation_id IN ({marks})", ids)
        for case_id, person_id in pairs:
            n = self.db.execute(
                """DELETE FROM case_people WHERE case_id = ? AND person_id = ?
                   AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.case_id = ? AND c.person_id = ?)
                   AND NOT EXISTS (SELECT 1 FROM cases k WHERE k.id = ? AND k.held_at IS NOT NULL)""",
                (case_id, person_id, case_id, person_id, case_id)).rowcount
            if n:
                counts["case_people"] = counts.get("case_people", 0) + n
        return counts

    def last_audit(self, action: str) -> dict | None:
        return self._one("SELECT * FROM audit WHERE action = ? ORDER BY id DESC LIMIT 1", (action,))

    # -- erasure requests (bot/erasure.py) ---------------------------------------------------
    def add_erasure_request(self, person_id: int) -> int:
        return self.db.execute("INSERT INTO erasure_requests (person_id, created_at) VALUES (?, ?)",
                               (person_id, now())).lastrowid

    _ERASURE = """SELECT e.*, p.key AS person_key, p.display_name, p.language,
                         EXISTS (SELECT 1 FROM conversations c WHERE c.person_id = e.person_id
                                 AND c.respondent IN ('child', 'young_person')) AS as_child,
                         (SELECT COUNT(*) FROM conversations c WHERE c.person_id = e.person_id) AS conversations,
                         (SELECT group_concat(DISTINCT k.ref) FROM conversations c JOIN cases k ON k.id = c.case_id
                          WHERE c.person_id = e.person_id) AS case_refs,
                         (SELECT group_concat(DISTINCT k.ref) FROM conversations c JOIN cases k ON k.id = c.case_id
                          WHERE c.person_id = e.person_id AND k.held_at IS NOT NULL) AS held_refs,
                         """ + ", ".join(f"{sql} AS {kind}" for kind, sql in _kept_records("e.person_id").items()) + """
                  FROM erasure_requests e JOIN people p ON p.id = e.person_id"""

    def erasure_request(self, request_id: int) -> dict | None:
        return self._one(self._ERASURE + " WHERE e.id = ?", (request_id,))

    def erasure_requests(self, status: str | None = None) -> list[dict]:
        if status is None:
            return self._all(self._ERASURE + " ORDER BY e.id")
        return self._all(self._ERASURE + " WHERE e.status = ? ORDER BY e.id", (status,))

    def open_erasure_request(self, person_id: int) -> dict | None:
        return self._one(self._ERASURE + " WHERE e.person_id = ? AND e.status = 'open' ORDER BY e.id DESC LIMIT 1",
                         (person_id,))

    def decide_erasure(self, request_id: int, *, status: str, by: str, reason: str, alert_words: str | None,
                       counts: dict | None) -> bool:
        cur = self.db.execute(
            """UPDATE erasure_requests SET status = ?, decided_at = ?, decided_by = ?, reason = ?, alert_words = ?,
               counts = ? WHERE id = ? AND status = 'open'""",
            (status, now(), by, reason, alert_words, json.dumps(counts) if counts is not None else None, request_id))
        return cur.rowcount == 1

    def erasures_untold(self) -> list[dict]:
        """Decided requests whose person has not yet been told the outcome."""
        return self._all(self._ERASURE + " WHERE e.status != 'open' AND e.told_at IS NULL ORDER BY e.id")

    def mark_erasure_told(self, request_id: int) -> bool:
        return self.db.execute("UPDATE erasure_requests SET told_at = ? WHERE id = ? AND told_at IS NULL",
                               (now(), request_id)).rowcount == 1

    def person_case_practitioners(self, person_id: int) -> list[dict]:
        """The cases a person answered in, with the key of the practitioner holding each."""
        return self._all("""SELECT DISTINCT k.id, k.ref, k.practitioner_id, pr.key AS practitioner_key FROM conversations c
                            JOIN cases k ON k.id = c.case_id JOIN people pr ON pr.id = k.practitioner_id
                            WHERE c.person_id = ? ORDER BY k.id""", (person_id,))

    def erase_person(self, person_id: int, *, safeguarding: bool) -> dict[str, int]:
        """Erase one person's words and name from every column in :data:`PERSON_TEXT` (the
        safeguarding records only if ``safeguarding``); rows changed per table.column. Their
        conversations stay as dated, empty records (``erased_at``); an unfinished one is
        cancelled, and nothing more is sent to them about it. Call inside a transaction."""
        t = now()
        params = {"pid": person_id}
        counts: dict[str, int] = {}
        for (table, column), spec in PERSON_TEXT.items():
            if spec.safeguarding and not safeguarding:
                continue
            n = self.db.execute(
                f"UPDATE {table} SET {column} = :erased WHERE ({spec.rows}) AND {column} IS NOT :erased",
                {**params, "erased": spec.erased}).rowcount
            if n:
                counts[f"{table}.{column}"] = n
        n = self.db.execute(f"DELETE FROM unread WHERE {_MINE}", params).rowcount
        if n:
            counts["unread"] = n
        self.db.execute(f"UPDATE schedule SET state = 'cancelled', cancelled_by = 'erasure'"
                        f" WHERE state IN ('pending', 'sending') AND (person_id = :pid OR about_person_id = :pid"
                        f" OR {_MINE})", params)
        self.db.execute("""UPDATE conversations SET erased_at = :t,
                           status = CASE WHEN status IN ('in_progress', 'rehearsing') THEN 'cancelled' ELSE status END
                           WHERE person_id = :pid""", {**params, "t": t})
        return counts

    # -- key rotation, backup and restore (issue 17 items 3, 4; bot/dbkeys_admin.py) ------
    def reencrypt_batch(self, table: str, column: str, after: int, limit: int) -> tuple[int | None, int]:
        """Re-encrypt with the current key up to ``limit`` values of ``table.column`` after rowid
        ``after`` (plaintext from before encryption too), in one transaction of its own. Values
        already under the current key are left alone, so a re-run after a crash resumes where
        it stopped. Returns (the last rowid looked at or None when the column is done, values changed)."""
        assert (table, column) in PERSON_TEXT
        kid = self.keys.kid
        with self.transaction():
            cur = self.db.conn.cursor()
            cur.row_factory = None
            rows = cur.execute(f"SELECT rowid, {column} FROM {table} WHERE rowid > ? AND {column} IS NOT NULL"
                               " ORDER BY rowid LIMIT ?", (after, limit)).fetchall()
            changed = []
            for rowid, value in rows:
                if dbkey.is_ciphertext(value):
                    if value[4:8] == kid:
                        continue
                    value = self.keys.decrypt(value)
                elif isinstance(value, bytes):
                    continue  # not ours: never rewritten
                changed.append((self._e(str(value)), rowid))
            if changed:
                cur.executemany(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", changed)
        return (rows[-1][0] if len(rows) == limit else None), len(changed)

    def key_ids(self) -> dict[str, int]:
        """How many stored values each key id (hex) encrypts, and 'plain' for unencrypted text,
        over every PERSON_TEXT column."""
        counts: dict[str, int] = {}
        cur = self.db.conn.cursor()
        cur.row_factory = None
        for table, column in PERSON_TEXT:
            for (value,) in cur.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                name = value[4:8].hex() if dbkey.is_ciphertext(value) else "plain"
                counts[name] = counts.get(name, 0) + 1
        return counts

    def count_person_text(self) -> int:
        return sum(self.db.execute(f"SELECT COUNT({c}) FROM {t}").fetchone()[0] for t, c in PERSON_TEXT)

    def backup_to(self, dest: str | Path) -> None:
        """A consistent online copy through SQLite's backup API, written to a private file."""
        dest = str(dest)
        tmp = dest + ".partial"
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE))
        try:
            target = sqlite3.connect(tmp)
            try:
                self.db.conn.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
            os.chmod(tmp, PRIVATE_MODE)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def check_backup(self, source: str | Path) -> list[str]:
        """What is wrong with a backup file before it may replace this database: integrity,
        schema version, and whether this store's key decrypts its text. Empty when it is fine."""
        source = str(source)
        if not os.path.isfile(source):
            return [f"{source}: no such file"]
        try:
            conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            return [f"{source}: cannot open it ({exc})"]
        problems: list[str] = []
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if result != ["ok"]:
                return [f"{source}: the integrity check failed: {'; '.join(result[:3])}"]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < 1 or version > SCHEMA_VERSION:
                problems.append(f"{source}: schema version {version}; this restorative-bot reads 1 to {SCHEMA_VERSION}")
                return problems
            samples = 0
            for table, column in PERSON_TEXT:
                try:
                    rows = conn.execute(f"SELECT {column} FROM {table} WHERE typeof({column}) = 'blob'"
                                        " ORDER BY rowid DESC LIMIT 3").fetchall()
                except sqlite3.Error:
                    continue  # an older schema without this column
                for (value,) in rows:
                    if dbkey.is_ciphertext(value):
                        samples += 1
                        try:
                            self.keys.decrypt(value)
                        except dbkey.KeyError_:
                            return [f"{source}: the current database key does not decrypt its text"
                                    f" ({table}.{column}); restore it with the key it was made with"]
        except sqlite3.DatabaseError as exc:
            return [f"{source}: not a restorative-bot database ({exc})"]
        finally:
            conn.close()
        return problems

    def restore_from(self, source: str | Path) -> list[tuple[int, dict[str, int]]]:
        """Replace this database's content with a checked backup, through the backup API (so
        the WAL and any other connection see one consistent change).

        A backup made before an approved erasure still holds the person's words, and lacks the
        request. So the erasure requests (and their audit lines) are read from this database
        first; the backup is copied to a private staging file beside it, where they are put
        back and every approved erasure is done again (:meth:`erase_person`, as approval does)
        in one transaction; only then does the staged copy replace this database. Returns
        (request id, values erased again) for each approved request."""
        problems = self.check_backup(source)
        if problems:
            raise StoreError("; ".join(problems))
        carried = self.erasure_records()
        near = os.path.dirname(os.path.abspath(self.path)) if self.path != ":memory:" else None
        folder = tempfile.mkdtemp(prefix=".restore-", dir=near)
        staged = os.path.join(folder, "restore.db")
        try:
            private_file(staged)
            src, dst = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(staged)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            stage = Store(staged, keyring=self.keys)
            try:
                with stage.transaction():
                    reapplied = stage.carry_erasures(carried)
            finally:
                stage.close()
            conn = sqlite3.connect(f"file:{staged}?mode=ro", uri=True)
            try:
                conn.backup(self.db.conn)
            finally:
                conn.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.migrate()
        return reapplied

    def erasure_records(self) -> dict[str, list[dict]]:
        """Every erasure request (with its person's key) and every erasure audit line: what a
        restore must carry over from the database it replaces."""
        return {
            "requests": self._all("SELECT e.*, p.key AS person_key FROM erasure_requests e"
                                  " JOIN people p ON p.id = e.person_id ORDER BY e.id"),
            "audit": self._all("SELECT actor, action, target, detail, created_at FROM audit"
                               " WHERE action LIKE 'erasure.%' ORDER BY id"),
        }

    def carry_erasures(self, records: dict[str, list[dict]]) -> list[tuple[int, dict[str, int]]]:
        """Put back the erasure requests and audit lines of :meth:`erasure_records` (as they
        were in the replaced database), and erase again each approved request's person, with
        the safeguarding choice recorded then. Call inside a transaction."""
        reapplied = []
        for row in records["requests"]:
            pid = self.person(row["person_key"])
            values = (pid, row["created_at"], row["status"], row["decided_at"], row["decided_by"], row["reason"],
                      row["alert_words"], row["counts"], row["told_at"])
            have = self._one("SELECT person_id FROM erasure_requests WHERE id = ?", (row["id"],))
            if have is not None and have["person_id"] == pid:
                self.db.execute("""UPDATE erasure_requests SET person_id = ?, created_at = ?, status = ?, decided_at = ?,
                                   decided_by = ?, reason = ?, alert_words = ?, counts = ?, told_at = ? WHERE id = ?""",
                                values + (row["id"],))
                rid = row["id"]
            else:
                rid = self.db.execute(
                    """INSERT INTO erasure_requests (id, person_id, created_at, status, decided_at, decided_by, reason,
                       alert_words, counts, told_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    ((row["id"] if have is None else None),) + values).lastrowid
            if row["status"] == "approved":
                reapplied.append((rid, self.erase_person(pid, safeguarding=row["alert_words"] == "erase")))
        for line in records["audit"]:
            self.db.execute(
                """INSERT INTO audit (actor, action, target, detail, created_at) SELECT :actor, :action, :target, :detail,
                   :created_at WHERE NOT EXISTS (SELECT 1 FROM audit WHERE action = :action AND target IS :target
                   AND created_at = :created_at AND actor IS :actor)""", line)
        for rid, counts in reapplied:
            self.audit("cli", "erasure.reapply", f"erasure:{rid}",
                       "after a restore; " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing stored"))
        return reapplied

    def text_columns(self) -> list[tuple[str, str]]:
        """Every (table, column) whose declared type could hold text (for tests and checks)."""
        out = []
        for (table,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall():
            for row in self.db.execute(f"PRAGMA table_info({table})").fetchall():
                kind = (row[2] or "").upper()
                if not any(x in kind for x in ("INT", "REAL", "FLOA", "DOUB")):
                    out.append((table, row[1]))
        return out

    def wipe_free_space(self, wait_ms: int = 10_000) -> bool | None:
        """After an erasure: move the WAL into the database and truncate it, so old page images
        holding the words go (secure_delete has zeroed the freed cells and pages). False if
        another connection (a running bot) kept reading for ``wait_ms``: try again later. None
        inside a transaction (a group commit, a caller's): SQLite refuses a checkpoint there, so
        it runs just after that commits."""
        if self.path == ":memory:":
            return True

        def wipe() -> bool:
            before = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
            self.db.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
            try:
                busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                self.db.execute(f"PRAGMA busy_timeout={int(before)}")
            return busy == 0

        if self.db.conn.in_transaction:
            self.after_commit(wipe)
            return None
        return wipe()

    def after_commit(self, fn) -> None:
        """Run ``fn`` now, or, inside a transaction, just after it commits (for work SQLite
        refuses inside one, such as a checkpoint). Dropped if the transaction rolls back."""
        if not self.db.conn.in_transaction:
            fn()
        else:
            if self._after_commit is Store._after_commit:
                self._after_commit = []
            self._after_commit.append(fn)

