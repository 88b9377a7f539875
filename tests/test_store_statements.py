"""What an answer costs the database (issue 18): the statements and commits per input.

A guard for the store's hot path: each typed answer is one read (was this input handled
before, the conversation, the person's language), the rows it writes, and one commit; under
group commit, inputs waiting together share one transaction (one fsync at synchronous=FULL),
with a savepoint each. A change that adds a statement per answer fails here and has to say
why in this file."""

import re

import pytest

from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store


def _kind(sql: str) -> str:
    """A statement as a short name: its verb and table (SAVEPOINT names dropped)."""
    words = re.sub(r"\s+", " ", sql.strip()).split(" ")
    verb = words[0].upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return verb
    if verb == "SELECT":
        froms = re.findall(r"\b(?:FROM|JOIN) (\w+)", sql)
        return "SELECT " + "+".join(dict.fromkeys(froms))
    table = {"INSERT": words[2] if words[1].upper() == "INTO" else words[4], "UPDATE": words[1],
             "DELETE": words[2]}.get(verb, "?")
    return f"{verb} {table}"


@pytest.fixture
def traced(tmp_path, library):
    store = Store(tmp_path / "s.db")
    service = ConversationService(store, library)
    pid = service.person("tg:1")
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    yield store, service, pid, seen
    store.db.conn.set_trace_callback(None)
    store.close()


ANSWER = ["BEGIN",
          "SELECT people+inputs+conversations",  # handled before? the conversation, the person's language
          "INSERT transcript",  # what they typed
          "INSERT answers",
          "UPDATE conversations",  # the new state
          "INSERT transcript",  # the next question, as shown
          "INSERT inputs",  # the input key and the reply, for a re-delivery
          "COMMIT"]


def test_a_typed_answer_is_one_read_its_rows_and_one_commit(traced):
    store, service, pid, seen = traced
    service.start(pid, "scaling-checkin", input_key="k0", respondent="adult")
    seen.clear()
    reply = service.handle(pid, Input.from_text("We talk more at dinner"), input_key="k1")
    assert reply.accepted and reply.step_id == "scale_now"
    assert [_kind(s) for s in seen] == ANSWER
    seen.clear()
    service.handle(pid, Input.from_text("6"), input_key="k2")
    assert [_kind(s) for s in seen] == ANSWER


def test_a_redelivered_input_is_one_read_and_nothing_written(traced):
    store, service, pid, seen = traced
    service.start(pid, "scaling-checkin", input_key="k0", respondent="adult")
    first = service.handle(pid, Input.from_text("We talk more at dinner"), input_key="k1")
    seen.clear()
    again = service.handle(pid, Input.from_text("We talk more at dinner"), input_key="k1")
    assert again.duplicate and again.prompts == first.prompts
    assert [_kind(s) for s in seen] == ["BEGIN", "SELECT people+inputs+conversations", "COMMIT"]


def test_a_group_of_answers_shares_one_transaction_with_a_savepoint_each(tmp_path, library):
    store = Store(tmp_path / "g.db")
    service = ConversationService(store, library)
    pids = [service.person(f"tg:{i}") for i in range(16)]
    for n, pid in enumerate(pids):
        service.start(pid, "scaling-checkin", input_key=f"s{n}", respondent="adult")
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    outcomes = store.run_group([
        (lambda n=n, pid=pid: service.handle(pid, Input.from_text("We talk more at dinner"), input_key=f"a{n}"))
        for n, pid in enumerate(pids)])
    store.db.conn.set_trace_callback(None)
    assert all(ok and reply.accepted for ok, reply in outcomes)
    kinds = [_kind(s) for s in seen]
    each = ["SAVEPOINT"] + ANSWER[1:-1] + ["RELEASE"]
    assert kinds == ["BEGIN"] + each * 16 + ["COMMIT"]  # one commit (one fsync) for sixteen answers
    # the savepoints are named by depth: the same two texts each time, kept in the statement cache
    assert {s for s in seen if s.startswith(("SAVEPOINT", "RELEASE"))} == {"SAVEPOINT sp1", "RELEASE sp1"}
    store.close()


def test_starting_a_flow_reads_the_language_and_the_input_then_writes_its_rows(traced):
    store, service, pid, seen = traced
    service.start(pid, "scaling-checkin", input_key="k0", respondent="adult")
    assert [_kind(s) for s in seen] == [
        "SELECT people",  # the person's language, before the transaction
        "BEGIN", "SELECT inputs",  # handled before?
        "SELECT teams",  # the intro's {{ privacy }}: who would see the answers
        "INSERT flow_snapshots",  # the flow's text, once (OR IGNORE)
        "INSERT conversations",
        "INSERT transcript", "INSERT transcript", "INSERT transcript",  # started; the intro; the first question
        "INSERT inputs", "COMMIT"]  # (not read back: the conversation just written is known)
