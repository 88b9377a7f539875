"""Who is answering (bot/respondent.py): stored on conversations and invitations, declared
by flows, validated, and set from the terminal and invitations. Practice conversations
(terminal, no case) keep their alerts to themselves."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot.conversation import ConversationService
from bot.engine.loader import load_flow_text
from bot.engine.runner import Input
from bot.safeguarding import SafeguardingConfig
from bot.store import MIGRATIONS, Store
from tests.conftest import flow_from

ROOT = Path(__file__).resolve().parents[1]
DISCLOSURE = "my dad hits me"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


def test_a_conversation_keeps_its_respondent_practice_and_who_was_present(store, service):
    me = service.person("tg:1")
    worker = service.person("tg:2")
    conv = service.start(me, "scaling-checkin", respondent="young_person", practice=True, present_id=worker)
    got = store.conversation(conv.conversation_id)
    assert (got.respondent, got.practice, got.present_id) == ("young_person", True, worker)
    plain = store.conversation(service.start(service.person("tg:3"), "scaling-checkin").conversation_id)
    assert (plain.respondent, plain.practice, plain.present_id) == (None, False, None)
    store.set_respondent(plain.id, "adult")
    assert store.conversation(plain.id).respondent == "adult"


def test_a_flow_for_one_kind_of_person_sets_it_without_asking(store, service):
    child = store.conversation(service.start(service.person("tg:1"), "three-houses").conversation_id)
    assert child.respondent == "child"
    rehearsal = store.conversation(service.start(service.person("tg:2"), "restorative-rehearsal").conversation_id)
    assert rehearsal.respondent == "practitioner"


def test_a_respondent_the_flow_is_not_for_is_refused_with_a_clear_message(service):
    with pytest.raises(ValueError) as exc:
        service.start(service.person("tg:1"), "three-houses", respondent="adult")
    assert str(exc.value) == "'three-houses' is not for adult; it is for: child."


@pytest.mark.parametrize("yaml_bit, where, message", [
    ("respondents: [teenager]", "3:15", "'teenager' is not a respondent"),
    ("respondents: young_person", "3:14", "'respondents' must be a list of who may answer"),
    ("respondents: [adult, adult]", "3:22", "'adult' is listed twice under respondents"),
    ("requires: worker_presnt", "3:11", "unknown requirement 'worker_presnt'; did you mean 'worker_present'?"),
    ("requires: worker_present\nrespondents: [practitioner]", "3:11", "take practitioner out of 'respondents'"),
])
def test_bad_respondents_or_requires_are_reported_at_file_line_col(yaml_bit, where, message):
    text = f"id: x\nversion: 1\n{yaml_bit}\ntitle: X\naudience: family\nsteps:\n  - id: a\n    ask: A?\n"
    flow, errors = load_flow_text(text, "flows/x.yaml")
    assert flow is None
    shown = [str(e) for e in errors]
    assert len(shown) == 1 and shown[0].startswith(f"flows/x.yaml:{where}: ") and message in shown[0], shown


def test_declared_respondents_and_requirement_load():
    flow = flow_from("id: x\nversion: 1\ntitle: X\naudience: family\nrespondents: [young-person, adult]\n"
                     "requires: worker_present\nsteps:\n  - id: a\n    ask: A?\n")
    assert flow.respondents == ("young_person", "adult") and flow.requires == ("worker_present",)


def test_the_migration_makes_old_terminal_trials_practice_and_their_alerts_never_due(tmp_path, library):
    import sqlite_utils

    import sqlite3

    # The schema before this migration, as the previous release left it, after trials.
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    raw = sqlite_utils.Database(conn)
    before = [m.__name__ for m in MIGRATIONS].index("_m8_respondent_practice")  # later migrations may follow
    for n, m in enumerate(MIGRATIONS[:before], 1):
        m(raw)
        conn.execute(f"PRAGMA user_version={n}")
    t = "2026-01-01T00:00:00.000000Z"
    conn.executescript(f"""
        INSERT INTO people (id, key, created_at) VALUES (1, 'console:sam', '{t}'), (2, 'tg:55', '{t}');
        INSERT INTO flow_snapshots VALUES ('s', 'scaling-checkin', 1, 'x', '{t}');
        INSERT INTO conversations (id, person_id, flow_id, flow_version, flow_sha, state, session, status, frontend,
                                   started_at, updated_at) VALUES
            (1, 1, 'scaling-checkin', 1, 's', 'a', '{{}}', 'in_progress', 'console', '{t}', '{t}'),
            (2, 2, 'scaling-checkin', 1, 's', 'a', '{{}}', 'in_progress', 'telegram', '{t}', '{t}');
        INSERT INTO alerts (conversation_id, person_id, concern, words, created_at, next_notify_at) VALUES
            (1, 1, 'physical_harm', 'trial', '{t}', '{t}'),
            (NULL, 1, 'physical_harm', 'trial outside', '{t}', '{t}'),
            (2, 2, 'physical_harm', 'real', '{t}', '{t}');
    """)
    conn.close()
    store = Store(db)
    assert [a["words"] for a in store.due_alerts("2027-01-01")] == ["real"]
    assert [(a["words"], a["practice"]) for a in store.alerts()] == [("trial", 1), ("trial outside", 1), ("real", 0)]
    assert store.conversation(1).practice and not store.conversation(2).practice


def test_a_practice_alert_is_recorded_and_never_due(store, library, safeguarding):
    service = ConversationService(store, library, safeguarding=safeguarding)
    practice = service.start(service.person("console:sam"), "scaling-checkin", practice=True).conversation_id
    real = service.start(service.person("tg:9"), "scaling-checkin").conversation_id
    service.handle(service.person("console:sam"), Input.from_text(DISCLOSURE), conversation_id=practice)
    service.handle(service.person("tg:9"), Input.from_text(DISCLOSURE), conversation_id=real)
    rows = store.alerts()
    assert [(a["conversation_id"], a["practice"]) for a in rows] == [(practice, 1), (real, 0)]
    assert [a["conversation_id"] for a in store.due_alerts("2999-01-01")] == [real]
    assert [a["next_notify_at"] is None for a in rows] == [True, False]
    # even if something schedules a practice alert, it is never due
    store.db.execute("UPDATE alerts SET next_notify_at = '2000-01-01' WHERE practice = 1")
    assert [a["conversation_id"] for a in store.due_alerts("2999-01-01")] == [real]


def run_cli(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_chat_for_sets_the_respondent_and_refuses_one_the_flow_is_not_for(tmp_path):
    db = tmp_path / "c.db"
    ok = run_cli(["chat", "scaling-checkin", "--db", str(db), "--as", "sam", "--for", "young-person"], "hopes\n")
    assert ok.returncode == 0, ok.stderr
    store = Store(db)
    conv = store.conversation(store.conversation_ids()[-1])
    assert (conv.respondent, conv.practice, conv.case_id) == ("young_person", True, None)
    wrong = run_cli(["chat", "three-houses", "--db", str(db), "--for", "adult"])
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "restorative-bot: 'three-houses' is not for adult; it is for: child."
    unknown = run_cli(["chat", "three-houses", "--db", str(db), "--for", "teen"])
    assert unknown.returncode == 2 and "'teen' is not someone a conversation can be for" in unknown.stderr


def test_the_out_of_hours_number_is_configured_and_shown_with_the_help(tmp_path, library, safeguarding):
    from bot.config import Config, ConfigError

    good = tmp_path / "good.yaml"
    good.write_text('safeguarding:\n  leads: [1]\n  out_of_hours: "0300 123 4567"\n')
    assert Config.load(good).out_of_hours == "0300 123 4567"
    bad = tmp_path / "bad.yaml"
    bad.write_text("safeguarding:\n  out_of_hours: 3001234567\n")
    with pytest.raises(ConfigError) as exc:
        Config.load(bad)
    assert str(exc.value).startswith(f"{bad}:2:17: 'out_of_hours' must be the council's out-of-hours")
    service = ConversationService(Store(":memory:"), library, safeguarding=safeguarding, out_of_hours="0300 123 4567")
    me = service.person("tg:1")
    conv = service.start(me, "scaling-checkin", respondent="adult").conversation_id
    [shown, _offer] = service.handle(me, Input.from_text(DISCLOSURE), conversation_id=conv).prompts
    assert shown.text.endswith("out-of-hours Emergency Duty Team on 0300 123 4567.")


@pytest.mark.parametrize("respondent, must, must_not", [
    ("child", ["Childline", "0800 1111", "999"], ["NSPCC", "0808 2000 247"]),
    ("young_person", ["Childline", "0800 1111", "999", "85258"], ["NSPCC", "0808 800 5000"]),
    ("adult", ["999", "0808 800 5000", "116 123", "85258", "0808 2000 247"], ["Childline"]),
    ("practitioner", ["designated safeguarding lead", "999", "0808 800 5000"], ["Childline"]),
])
def test_the_help_follows_the_respondent_not_the_flows_audience(store, library, safeguarding, respondent, must,
                                                                 must_not):
    # one family-audience flow, answered by each kind of person; abuse at home
    flow = flow_from("id: x\nversion: 1\ntitle: X\naudience: family\nrespondents: [child, young_person, adult, "
                     "practitioner]\nsteps:\n  - id: a\n    ask: A?\n  - id: b\n    ask: B?\n")
    from bot.engine.library import FlowLibrary

    service = ConversationService(store, FlowLibrary([flow]), safeguarding=safeguarding)
    me = service.person(f"tg:{respondent}")
    conv = service.start(me, "x", respondent=respondent).conversation_id
    text = service.handle(me, Input.from_text("My partner hits me and I am scared to go home"),
                          conversation_id=conv).prompts[0].text
    for bit in must:
        assert bit in text, (respondent, bit)
    for bit in must_not:
        assert bit not in text, (respondent, bit)
    assert "{told}" not in text and "straight away, especially at night or at weekends" in text

def _worries(store, library, safeguarding, *, practice: bool, respondent: str):
    service = ConversationService(store, library, safeguarding=safeguarding)
    me = service.person(f"tg:{respondent}:{practice}")
    conv = service.start(me, "three-columns", respondent=respondent, practice=practice).conversation_id
    while service.current(me).step_id != "worried_about":
        service.handle(me, Input.from_text("/skip"), conversation_id=conv)
    return service.handle(me, Input.from_text("my partner hits me in front of the kids"), conversation_id=conv)


def test_an_adult_at_a_worries_question_is_thanked_and_still_shown_the_domestic_abuse_helpline(
        store, library, safeguarding):
    reply = _worries(store, library, safeguarding, practice=False, respondent="adult")
    assert len(reply.alerts) == 1 and reply.step_id != "worried_about"  # alerted, and the questions go on
    text = reply.prompts[0].text
    assert text.startswith("Thank you for telling us. We will make sure your worker sees this.")
    assert "0808 2000 247" in text and "999" in text
    assert not any(p.kind in ("safeguarding", "offer") for p in reply.prompts)


def test_in_practice_a_worries_question_does_not_claim_the_worker_will_see_it(store, library, safeguarding):
    reply = _worries(store, library, safeguarding, practice=True, respondent="adult")
    text = reply.prompts[0].text
    assert "nobody is told" in text and "We will make sure your worker sees this" not in text
    assert "0808 2000 247" in text
    assert [a["practice"] for a in store.alerts()] == [1]
