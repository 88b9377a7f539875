"""The terminal frontend, driven as a user would: piped stdin, EOF, resume, and SIGKILL."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args, stdin="", env=None, **kw):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60, **kw)


def test_piped_chat_then_export_json(tmp_path, library):
    db = tmp_path / "chat.db"
    answers = "We stop arguing\n12\nsix\nWe still eat together\nLess shouting\n8\n/skip\n"
    proc = run_cli(["chat", "scaling-checkin", "--db", str(db), "--as", "sam", "--for", "adult"], answers)
    assert proc.returncode == 0, proc.stderr
    assert "Please choose a whole number from 0 to 10." in proc.stdout
    assert "What puts you at 6 and not lower?" in proc.stdout
    assert "What would be different at 7?" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    out = run_cli(["export", "--session", "1", "--format", "json", "--db", str(db)])
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    shipped = library.get("scaling-checkin")
    assert data["flow"] == {"id": shipped.id, "version": shipped.version, "title": shipped.title, "sha256": shipped.sha}
    assert data["person"]["name"] == "sam" and data["status"] == "completed"
    got = {a["step_id"]: a["value"] for a in data["answers"]}
    assert got == {"best_hopes": "We stop arguing", "scale_now": 6, "not_lower": "We still eat together",
                   "one_point_up": "Less shouting", "good_enough": 8, "anything_else": None}
    said = [t["text"] for t in data["transcript"] if t["from"] == "person"]
    assert "12" in said and "six" in said
    for fmt, marker in (("md", "# How are things going?"), ("html", "<!doctype html>"), ("csv", "conversation_id,flow_id")):
        res = run_cli(["export", "--all", "--format", fmt, "--db", str(db)])
        assert res.returncode == 0 and marker in res.stdout


def test_eof_saves_and_a_later_chat_offers_to_resume(tmp_path):
    db = tmp_path / "r.db"
    first = run_cli(["chat", "scaling-checkin", "--db", str(db), "--as", "kim", "--for", "adult"], "Talk more\n4\n")
    assert first.returncode == 0 and "Goodbye" in first.stdout
    second = run_cli(["chat", "--db", str(db), "--as", "kim"], "yes\nWe laugh sometimes\n")
    assert "You have an unfinished conversation" in second.stdout
    assert "What puts you at 4 and not lower?" in second.stdout
    store = Store(db)
    assert {a["step_id"] for a in store.answers(1)} == {"best_hopes", "scale_now", "not_lower"}


def test_chat_without_flow_lists_and_picks(tmp_path):
    # the flow is for a parent or a young person, so who is filling it in is asked first
    proc = run_cli(["chat", "--db", str(tmp_path / "p.db"), "--as", "lee"], "scaling-checkin\nteenager\n2\nhopes\n")
    assert "Which conversation would you like to start?" in proc.stdout
    assert "How are things going? (scaling-checkin)" in proc.stdout
    assert "Who is filling this in?\n1. A parent, carer or other adult in the family\n2. A young person (13 to 17)\n" in proc.stdout
    assert "Please choose by the number or the words." in proc.stdout  # "teenager" is not one of them
    assert "where are things now?" in proc.stdout
    store = Store(tmp_path / "p.db")
    assert store.conversation(1).respondent == "young_person" and store.conversation(1).practice


def test_bad_arguments_give_one_clear_line(tmp_path):
    proc = run_cli(["chat", "no-such-flow", "--db", str(tmp_path / "x.db")])
    assert proc.returncode == 2 and "no flow called 'no-such-flow'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(["export", "--session", "1", "--db", str(tmp_path / "missing.db")])
    assert proc.returncode == 2 and "no such database" in proc.stderr
    proc = run_cli(["export", "--db", str(tmp_path / "missing.db")])
    assert proc.returncode == 2 and "--session ID, --case REF or --all" in proc.stderr
    bad = tmp_path / "bad.db"
    bad.write_text("nope" * 1000)
    proc = run_cli(["export", "--all", "--db", str(bad)])
    assert proc.returncode == 2 and "cannot open the database" in proc.stderr


# --- crash safety ---------------------------------------------------------------------

ANSWERS = {  # question wording -> the answer this person gives to it
    "What are your best hopes": "We talk more",
    "where are things now?": "6",
    "and not lower?": "We eat together",
    "What would be different at 7?": "Less shouting",
    "What number would be good enough?": "8",
    "Is there anything else": "/skip",
}
EXPECTED = {"best_hopes": "We talk more", "scale_now": 6, "not_lower": "We eat together",
            "one_point_up": "Less shouting", "good_enough": 8, "anything_else": None}


class Chat:
    def __init__(self, db, who):
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "chat", "scaling-checkin", "--db", str(db), "--as", who,
                                      "--for", "adult"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, bufsize=1)
        self.out = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.out += line

    def wait_for(self, predicate, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if predicate(self.out):
                    return True
            time.sleep(0.002)
        return False

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def _pending_question(out: str):
    """The wording key of the last question shown, if the output ends with one."""
    tail = out.rsplit("Question ", 1)
    if len(tail) < 2:
        return None
    for key in ANSWERS:
        if key in tail[1]:
            return key
    return None


def _completed(db, who):
    if not db.exists():
        return False
    store = Store(db)
    try:
        return any(c["status"] == "completed" for c in store.conversations() if c["display_name"] == who)
    finally:
        store.close()


def _converse_with_kills(db, who, rng):
    """Answer every question, killing the process at random moments; returns the number of kills."""
    kills = 0
    for _ in range(80):
        if _completed(db, who):
            return kills  # the last answer was committed just before a kill: this person is done
        chat = Chat(db, who)
        assert chat.wait_for(lambda o: "Question " in o or "unfinished conversation" in o), chat.out
        if "unfinished conversation" in chat.out:
            chat.send("yes")
            assert chat.wait_for(lambda o: "Carrying on" in o and _pending_question(o.split("Carrying on", 1)[1])), chat.out
        while True:
            key = _pending_question(chat.out)
            seen = len(chat.out)
            chat.send(ANSWERS[key])
            if rng.random() < 0.6:
                time.sleep(rng.uniform(0, 0.02))
                chat.kill()
                kills += 1
                break
            ok = chat.wait_for(lambda o: len(o) > seen and ("Thank you" in o[seen:] or _pending_question(o[seen:])))
            assert ok, chat.out
            if "Thank you" in chat.out[seen:]:
                chat.proc.stdin.close()
                chat.proc.wait(10)
                return kills
    raise AssertionError(f"{who}'s conversation never finished")


def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1234")))
    db = tmp_path / "kill.db"
    people = [f"pat{i}" for i in range(int(os.environ.get("CHAOS_PEOPLE", "4")))]
    kills = sum(_converse_with_kills(db, who, rng) for who in people)
    assert kills >= 2 * len(people), kills
    store = Store(db)
    convs = store.conversations()
    assert sorted(c["display_name"] for c in convs) == people  # one conversation each, none restarted
    for conv in convs:
        assert conv["status"] == "completed"
        rows = store.answers(conv["id"])
        assert {r["step_id"]: r["value"] for r in rows} == EXPECTED
        assert all(r["revision"] == 1 for r in rows), rows  # no answer recorded twice
        accepted = [t for t in store.transcript(conv["id"]) if t["direction"] == "in" and t["kind"] == "answer"]
        assert len(accepted) == len(EXPECTED) - 1  # every typed answer once; the skip is a command


class Answering:
    """A stdin that answers whatever the console's conversation asks now with a plain, valid
    answer (so these tests follow the flows as they are revised); EOF once it has finished."""

    KINDS = {"date": "in two weeks", "scale": "5", "number": "3", "yesno": "no", "choice": "1", "multi": "1"}

    def __init__(self, service, key):
        self.service, self.key = service, key

    def readline(self):
        pid = self.service.store.person(self.key)
        if self.service.active(pid) is None:
            return ""
        reply = self.service.current(pid)
        question = next((p for p in reversed(reply.prompts) if p.kind == "question"), None)
        return self.KINDS.get(question.type if question else None, "calmer mornings") + "\n"


def _console_world(tmp_path, library):
    from datetime import datetime, timezone

    from bot.conversation import ConversationService
    from bot.schedule import Schedule

    store = Store(tmp_path / "w.db")
    schedule = Schedule(store, clock=lambda: datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc))
    return store, ConversationService(store, library, schedule=schedule)


def test_a_chat_in_the_terminal_records_no_reminder_it_cannot_send_and_says_so(tmp_path, library):
    """Issue 15: `chat` uses the same schedule as `serve`, but a terminal has no chat to send
    to, so nothing is recorded for it (a row nobody can send would wait forever) and the chat
    ends by saying so; the flow's closing words only promise a reminder in Telegram."""
    import io

    from bot.frontends.console import run_console
    from bot.messages import msg

    store, service = _console_world(tmp_path, library)
    out = io.StringIO()
    assert run_console(service, "console:kim", "kim", "restorative-harmed", Answering(service, "console:kim"), out,
                       respondent="young_person", case_ref="RJ-3") == 0
    assert store.conversations()[0]["status"] == "completed"
    assert out.getvalue().rstrip().endswith(msg("console.no_reminder.date"))
    assert msg("console.no_reminder.nudge") not in out.getvalue()  # finished: nothing to nudge
    assert store.scheduled_list(states=("pending", "sending", "sent", "cancelled")) == []
    store.close()
    db = tmp_path / "t.db"  # through the CLI: left half-way, no nudge can come either
    left = run_cli(["chat", "scaling-checkin", "--db", str(db), "--as", "jo", "--for", "adult"], "Talk more\n")
    assert left.returncode == 0 and msg("console.no_reminder.nudge") in left.stdout
    assert left.stdout.index(msg("console.no_reminder.nudge")) < left.stdout.index("Goodbye")
    assert msg("console.no_reminder.date") not in left.stdout  # no date given
    store = Store(db)
    assert store.scheduled_list(states=("pending", "sending", "sent", "cancelled")) == []
    store.close()


def test_the_terminal_lists_a_reminder_recorded_for_a_worker_serve_can_reach(tmp_path, library):
    import io

    from bot.frontends.console import Console
    from bot.messages import msg

    store, service = _console_world(tmp_path, library)
    with store.transaction():
        case = store.create_case(store.person("tg:900"), "RJ-4")  # held by a worker on Telegram
    out = io.StringIO()
    console = Console(service, "console:kim", "kim", Answering(service, "console:kim"), out)
    assert console.run("restorative-harmed", respondent="young_person", case_id=case, practice=False) == 0
    assert out.getvalue().rstrip().endswith(  # what the chat ends with
        "\n".join([msg("console.reminders_recorded"),
                   msg("console.reminders_line", when="Sun 25 Jan, 09:00", kind=msg("schedule.case_kinds.date"),
                       who=msg("console.to_worker")),
                   "", msg("console.no_reminder.date_you")]))
    assert [(r["person_id"], r["kind"]) for r in store.scheduled_list()] == [(store.person("tg:900"), "date")]
    store.close()


def test_the_terminal_refuses_a_flow_that_promises_nobody_reads_before_consent(tmp_path):
    """As /with on Telegram: 'fgc-young-person' tells the young person nobody, their worker
    included, reads the answers until they say yes; at the worker's terminal (chat --case)
    the worker sees every word, so it is refused, named or chosen from the list, and nothing
    is recorded."""
    db = tmp_path / "c.db"
    proc = run_cli(["chat", "fgc-young-person", "--db", str(db), "--case", "FGC-7", "--for", "young-person"], "hi\n")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "At this terminal you would see every word" in proc.stderr
    assert "restorative-bot invite create fgc-young-person --case FGC-7" in proc.stderr
    proc = run_cli(["chat", "--db", str(db), "--case", "FGC-7", "--as", "lee"], "fgc-young-person\nhi\n")
    assert proc.returncode == 0 and "At this terminal you would see every word" in proc.stdout
    store = Store(db)
    assert store.db.execute("select count(*) from conversations").fetchone()[0] == 0
    # without --case it is the worker's own practice, which nobody else is promised anything about
    proc = run_cli(["chat", "fgc-young-person", "--db", str(tmp_path / "p.db"), "--for", "young-person"], "")
    assert proc.returncode == 0 and "At this terminal" not in proc.stdout + proc.stderr
