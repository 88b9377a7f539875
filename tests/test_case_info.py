"""Issue 13: texts the practitioner writes for a case (danger statements, safety goals, bottom
lines), shown in flows as {{ case.KEY }}; set with `case set REF KEY --file F` or /caseinfo."""

import subprocess
import sys

import pytest

from bot.access import Access, Refused
from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.loader import load_flow_text
from bot.engine.runner import Input
from bot.messages import msg
from bot.store import Store, StoreError
from tests.conftest import flow_from

STATEMENTS = """\
id: statements
version: 1
title: What your worker wrote
audience: family
steps:
  - id: danger
    say: "Your worker wrote: {{ case.danger_statement }}"
  - id: understand
    ask: "Do you understand this? {{ case.safety_goal }}"
    type: yesno
"""

DANGER = "Social workers are worried that when Sam's dad drinks, he shouts and Sam gets scared."


def _setup(tmp_path):
    store = Store(tmp_path / "c.db")
    library = FlowLibrary([flow_from(STATEMENTS)])
    access = Access(store, library)
    with store.transaction():
        worker = store.person("tg:100")
        store.grant_role(worker, "practitioner", "test")
        other = store.person("tg:200")
        store.grant_role(other, "practitioner", "test")
        boss = store.person("tg:300")
        store.grant_role(boss, "supervisor", "test")
        store.add_team(boss, worker)
        case_id = store.create_case(worker, "C7")
    return store, library, access, case_id


def test_store_set_and_read_by_ref_or_id(tmp_path):
    store, _, _, case_id = _setup(tmp_path)
    with store.transaction():
        store.set_case_info("C7", "danger_statement", DANGER, "tg:100")
        store.set_case_info(case_id, "safety_goal", "Sam feels safe at home.", "tg:100")
    assert store.case_info("C7") == {"danger_statement": DANGER, "safety_goal": "Sam feels safe at home."}
    with store.transaction():
        store.set_case_info("C7", "safety_goal", None)
    assert store.case_info(case_id) == {"danger_statement": DANGER}
    with pytest.raises(StoreError, match="no case 'C8'"):
        store.case_info("C8")


def test_a_flow_shows_the_case_text_and_says_plainly_when_it_is_not_written(tmp_path):
    store, library, access, case_id = _setup(tmp_path)
    service = ConversationService(store, library)
    parent = service.person("tg:5")
    reply = service.start(parent, "statements", case_id=case_id)
    not_written = msg("case_info.not_written")
    assert [p.text for p in reply.prompts] == [f"Your worker wrote: {not_written}", f"Do you understand this? {not_written}"]
    access.set_case_info("tg:100", "C7", "danger_statement", DANGER)
    access.set_case_info("tg:100", "C7", "safety_goal", "Sam feels safe at home.")
    # on resume, the question shows what has been written since
    assert [p.text for p in service.current(parent).prompts] == ["Do you understand this? Sam feels safe at home."]
    again = service.start(service.person("tg:6"), "statements", case_id=case_id)
    assert again.prompts[0].text == f"Your worker wrote: {DANGER}"
    # outside any case there is nothing written: the same plain sentence, no error
    alone = service.start(service.person("tg:7"), "statements")
    assert alone.prompts[0].text == f"Your worker wrote: {not_written}"
    assert service.handle(service.person("tg:7"), Input.from_text("yes")).status == "completed"


def test_only_the_cases_practitioner_their_supervisor_an_admin_or_the_cli_may_write_and_it_is_audited(tmp_path):
    store, _, access, _ = _setup(tmp_path)
    access.set_case_info("tg:100", "C7", "danger_statement", DANGER)
    access.set_case_info("tg:300", "C7", "bottom_line", "Sam must not be left alone with dad when he has been drinking.")
    access.set_case_info(None, "C7", "safety_goal", "Sam feels safe at home.")
    for stranger in ("tg:200", "tg:5", "tg:999"):
        with pytest.raises(Refused):
            access.set_case_info(stranger, "C7", "danger_statement", "something else")
    assert store.case_info("C7")["danger_statement"] == DANGER
    log = [(a["actor"], a["action"], a["target"], a["detail"]) for a in store.audit_log()]
    assert ("tg:100", "case.info.set", "case:C7", "danger_statement") in log
    assert ("tg:300", "case.info.set", "case:C7", "bottom_line") in log
    assert ("cli", "case.info.set", "case:C7", "safety_goal") in log
    assert {a for a in log if a[1] == "case.info.refused"} == {
        (who, "case.info.refused", "case:C7", "danger_statement") for who in ("tg:200", "tg:5", "tg:999")}
    assert not any(DANGER in str(a) for a in log)  # the words are never in the audit log
    with pytest.raises(ValueError, match="cannot be a case key"):
        access.set_case_info("tg:100", "C7", "Danger Statement", "x")
    with pytest.raises(ValueError, match="keep it under 2000"):
        access.set_case_info("tg:100", "C7", "danger_statement", "x" * 2001)


def test_validate_warns_where_a_flow_shows_case_text_and_refuses_a_bad_key(tmp_path):
    flow, errors = load_flow_text(STATEMENTS, "s.yaml")
    assert errors == []
    assert flow.case_keys == ("danger_statement", "safety_goal")
    assert [str(w) for w in flow.warnings] == [
        "s.yaml:7:10: warning: this flow shows case.danger_statement, which the worker writes for each case "
        "(restorative-bot case set REF danger_statement --file FILE, or /caseinfo REF danger_statement ... in Telegram);"
        " until it is written the step says the worker has not written it yet",
        "s.yaml:9:10: warning: this flow shows case.safety_goal, which the worker writes for each case "
        "(restorative-bot case set REF safety_goal --file FILE, or /caseinfo REF safety_goal ... in Telegram);"
        " until it is written the step says the worker has not written it yet"]
    _, errors = load_flow_text(STATEMENTS.replace("case.safety_goal", "case['Safety Goal']"), "s.yaml")
    assert [str(e) for e in errors] == [
        "s.yaml:9:10: 'case.Safety Goal' cannot be a case key: use a-z, 0-9 and _, starting with a letter, e.g. case.danger_statement"]


def _cli(*args, stdin=None, db):
    return subprocess.run([sys.executable, "-m", "bot", *args, "--db", str(db)], input=stdin,
                          capture_output=True, text=True)


def test_cli_case_set_from_a_file_or_stdin(tmp_path):
    store, _, _, _ = _setup(tmp_path)
    store.close()
    words = tmp_path / "danger.txt"
    words.write_text(DANGER + "\n")
    proc = _cli("case", "set", "C7", "danger_statement", "--file", str(words), db=tmp_path / "c.db")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "case C7: danger_statement written (85 characters); flows show it as {{ case.danger_statement }}"
    proc = _cli("case", "set", "C7", "safety_goal", "--file", "-", stdin="Sam feels safe at home.\n", db=tmp_path / "c.db")
    assert proc.returncode == 0, proc.stderr
    proc = _cli("case", "set", "C9", "safety_goal", "--file", "-", stdin="x", db=tmp_path / "c.db")
    assert (proc.returncode, proc.stderr.strip()) == (2, "restorative-bot: no case C9; see /cases in Telegram")
    proc = _cli("case", "set", "C7", "danger_statement", db=tmp_path / "c.db")
    assert proc.returncode == 2 and "--file" in proc.stderr and "Traceback" not in proc.stderr
    store = Store(tmp_path / "c.db")
    assert store.case_info("C7") == {"danger_statement": DANGER, "safety_goal": "Sam feels safe at home."}
    assert [a["action"] for a in store.audit_log() if a["action"].startswith("case.info")] == [
        "case.info.set", "case.info.set", "case.info.refused"]


def test_an_unwritten_text_is_false_so_a_flow_can_word_it_its_own_way(tmp_path):
    store, _, access, case_id = _setup(tmp_path)
    own_way = STATEMENTS.replace(
        'say: "Your worker wrote: {{ case.danger_statement }}"',
        'say: "{% if case.danger_statement %}Your worker wrote: {{ case.danger_statement }}'
        '{% else %}Your worker will tell you at the meeting.{% endif %}"\n    next:\n'
        '      - if: case.danger_statement\n        goto: understand\n      - goto: end')
    service = ConversationService(store, FlowLibrary([flow_from(own_way)]))
    reply = service.start(service.person("tg:5"), "statements", case_id=case_id)
    assert [p.text for p in reply.prompts] == ["Your worker will tell you at the meeting."]
    assert reply.status == "completed"
    access.set_case_info(None, "C7", "danger_statement", DANGER)
    reply = service.start(service.person("tg:6"), "statements", case_id=case_id)
    assert [p.text for p in reply.prompts] == [f"Your worker wrote: {DANGER}", f"Do you understand this? {msg('case_info.not_written')}"]
