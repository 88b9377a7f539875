"""Erasure (issue 17 item 2): approval removes one person's words and name from every column
of every table, from every export, and from the raw database bytes and WAL, while the other
person in the same case keeps theirs; safeguarding words only where the lead agrees; a held
case cannot be erased; every step is audited; data given as a child is shown as weighing."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from bot import dbkey, erasure, i18n, retention
from bot.access import Access
from bot.cli import main
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.messages import msg
from bot.reading import Reading
from bot.review.export import render
from bot.store import ERASED, PERSON_TEXT, Store

P, SUP, A, B = 3, 4, 5, 6
A_ANSWERS = ("Aquamarine kitchen peace", "6", "Xylophone teatime talks", "Quokka calmer mornings", "8",
             "Zeppelin nothing more")
B_ANSWERS = ("Bumblebee garden hopes", "5", "Walrus weekend walks", "Narwhal fewer rows", "7", "Pelican all good")
A_WORDS = ("Aquamarine", "Xylophone", "Quokka", "Zeppelin", "Alexandra", "Alpha Kid", "Marmalade", "Gooseberry")
A_SAFEGUARDING = ("Marmalade",)
B_WORDS = ("Bumblebee", "Walrus", "Narwhal", "Pelican", "Parent Beta", "Hazelnut")


def converse(service, pid, case_id, respondent, answers, tag):
    r = service.start(pid, "scaling-checkin", case_id=case_id, respondent=respondent, input_key=f"{tag}:0")
    for i, text in enumerate(answers, 1):
        r = service.handle(pid, Input.from_text(text), input_key=f"{tag}:{i}")
    assert r.status == "completed"
    return r.conversation_id


@pytest.fixture
def world(tmp_path, library):
    store = Store(tmp_path / "erase.db")
    service = ConversationService(store, library)
    config = Config(roles={"admin": [1], "supervisor": [SUP], "practitioner": [P]}, teams={SUP: [P]},
                    people_names="telegram")
    access = Access(store, library, config)
    access.seed()
    practitioner = store.person(f"tg:{P}")
    case = store.create_case(practitioner, "FGC-7")
    a = store.person(f"tg:{A}", "Alexandra")
    b = store.person(f"tg:{B}", "Bob")
    conv_a = converse(service, a, case, "young_person", A_ANSWERS, "a")
    conv_b = converse(service, b, case, "adult", B_ANSWERS, "b")
    with store.transaction():
        store.set_pseudonym(case, a, "Alpha Kid", "tg:3")
        store.set_pseudonym(case, b, "Parent Beta", "tg:3")
        line = store.add_line(conv_a, "in", "Marmalade: he locks me in", kind="answer", flagged=True)
        store.add_alert(conversation_id=conv_a, person_id=a, transcript_id=line, concern="harm",
                        words="Marmalade: he locks me in", next_notify_at=None)
        store.add_review_item(conversation_id=conv_a, person_id=a, transcript_id=line, concern="worry",
                              matched="Marmalade locks")
        store.add_comment(conv_a, store.person(f"tg:{SUP}"), "She said Gooseberry twice", None)
        store.add_comment(conv_b, store.person(f"tg:{SUP}"), "Hazelnut comment", None)
        store.add_scheduled(person_id=a, kind="nudge", text="Gooseberry reminder", due_at="2099-01-01T00:00:00Z",
                            why="test", conversation_id=conv_a)
    # recorded as a practitioner does (/missed), so whatever that writes is erased too
    Reading(store, access).record_missed(f"tg:{P}", conv_a, "anything_else", "Marmalade missed")
    return store, access, conv_a, conv_b


def found(store: Store, word: str) -> list[str]:
    """Every table.column (of every table, every column) whose value contains ``word``, read
    through the store (so decrypted: the text columns are encrypted at rest, bot/dbkey.py)."""
    out = []
    for (table,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for col in [r[1] for r in store.db.execute(f"PRAGMA table_info({table})")]:
            if any(word.lower() in str(v).lower() for (v,) in store.db.execute(f"SELECT {col} FROM {table}")):
                out.append(f"{table}.{col}")
    return out


def raw_bytes(store: Store) -> bytes:
    with open(store.path, "rb") as f:
        data = f.read()
    try:
        with open(store.path + "-wal", "rb") as f:
            data += f.read()
    except FileNotFoundError:
        pass
    return data


def exports(access: Access) -> str:
    items = access.export_case("cli", "FGC-7")
    return "\n".join(render(items, fmt) for fmt in ("md", "html", "csv", "json"))


def test_approval_erases_the_persons_words_everywhere_and_the_others_keep_theirs(world):
    store, access, conv_a, conv_b = world
    before = exports(access)
    assert all(w in before for w in ("Aquamarine", "Xylophone", "Gooseberry", "Bumblebee", "Walrus"))
    assert all(found(store, w) for w in A_WORDS + B_WORDS)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the words are in the database file itself now
    data = raw_bytes(store)
    assert not [w for w in A_WORDS + B_WORDS if w.encode() in data]  # encrypted at rest

    req = erasure.request(store, f"tg:{A}")
    done = erasure.approve(store, req.id, "cli", "the person asked; nothing must be kept", alert_words="erase")
    assert done.counts["transcript.text"] and done.counts["answers.raw"] and done.counts["alerts.words"]
    assert done.wiped

    assert {w: found(store, w) for w in A_WORDS} == {w: [] for w in A_WORDS}
    assert all(found(store, w) for w in B_WORDS)
    after = exports(access)
    assert [w for w in A_WORDS if w in after] == []
    assert all(w in after for w in ("Bumblebee", "Walrus", "Narwhal", "Pelican", "Parent Beta", "Hazelnut"))
    # and not in the file: secure_delete zeroed the freed space, the WAL was checkpointed away
    data = raw_bytes(store)
    assert [w for w in A_WORDS if w.encode() in data] == []
    assert [w for w in B_WORDS if w.encode() in data] == []  # B's are there, encrypted (found() above)
    # the conversation stays, dated and empty; the other person's is untouched
    conv = store.conversation(conv_a)
    assert conv.session == {} and store.db.execute("SELECT erased_at FROM conversations WHERE id = ?",
                                                   (conv_a,)).fetchone()[0]
    assert {t["text"] for t in store.transcript(conv_a)} == {ERASED}
    assert [a["raw"] for a in store.answers(conv_b)] == list(B_ANSWERS)
    assert store.get_person(store.person_by_key(f"tg:{A}")["id"])["display_name"] is None
    assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_by_default_the_safeguarding_words_are_kept_and_the_choice_recorded(world):
    store, access, conv_a, _ = world
    req = erasure.request(store, f"tg:{A}")
    erasure.approve(store, req.id, "cli", "asked by the young person")
    assert {w: found(store, w) for w in A_WORDS} == {
        **{w: [] for w in A_WORDS},
        "Marmalade": ["alerts.words", "review_items.matched", "missed_disclosures.words"]}
    assert [a["words"] for a in store.alerts()] == ["Marmalade: he locks me in"]
    row = store.erasure_request(req.id)
    assert (row["status"], row["alert_words"], row["reason"]) == ("approved", "keep", "asked by the young person")
    outcome = erasure.untold(store)
    assert len(outcome) == 1 and "kept" in outcome[0].text and "ico.org.uk" in outcome[0].text


def test_a_case_under_a_legal_hold_cannot_be_erased_until_released(world):
    store, access, conv_a, _ = world
    req = erasure.request(store, f"tg:{A}")
    retention.hold(store, "FGC-7", "cli", "court proceedings")
    with pytest.raises(ValueError, match="FGC-7 is under a legal hold"):
        erasure.approve(store, req.id, "cli", "asked")
    assert all(found(store, w) for w in A_WORDS)
    assert store.erasure_request(req.id)["status"] == "open"
    retention.release(store, "FGC-7", "cli")
    erasure.approve(store, req.id, "cli", "asked", alert_words="erase")
    assert [w for w in A_WORDS if found(store, w)] == []


def test_every_step_is_audited_without_content_and_a_second_request_is_not_a_new_one(world):
    store, access, *_ = world
    req = erasure.request(store, f"tg:{A}")
    assert req.new and req.child and req.recipients == [f"tg:{P}", "tg:1"]
    for notice in (req.full_notice, *req.notices.values()):
        assert "Alpha Kid" in notice and "FGC-7" in notice and "child" in notice
        assert not any(w in notice for w in ("Aquamarine", "Xylophone", "Marmalade"))
    again = erasure.request(store, f"tg:{A}")
    assert (again.id, again.new) == (req.id, False)
    erasure.notified(store, req.id, 2)
    erasure.approve(store, req.id, "cli", "asked")
    [outcome] = erasure.untold(store)
    erasure.told(store, outcome.id)
    assert erasure.untold(store) == []
    steps = [(a["actor"], a["action"], a["target"]) for a in store.audit_log() if a["action"].startswith("erasure")]
    assert steps == [(f"tg:{A}", "erasure.request", f"erasure:{req.id}"),
                     (f"tg:{A}", "erasure.request.again", f"erasure:{req.id}"),
                     ("serve", "erasure.notify", f"erasure:{req.id}"),
                     ("cli", "erasure.approve", f"erasure:{req.id}"),
                     ("cli", "erasure.wipe", f"erasure:{req.id}"),
                     ("serve", "erasure.told", f"erasure:{req.id}")]
    details = " ".join(a["detail"] or "" for a in store.audit_log())
    assert [w for w in A_WORDS if w in details] == []


def test_refusal_tells_the_person_why_and_erases_nothing(world):
    store, access, *_ = world
    req = erasure.request(store, f"tg:{B}")
    assert not req.child
    erasure.refuse(store, req.id, "cli", "the court has asked us to keep the file")
    assert all(found(store, w) for w in B_WORDS)
    [outcome] = erasure.untold(store)
    assert outcome.recipient == f"tg:{B}" and "the court has asked us to keep the file" in outcome.text
    with pytest.raises(ValueError, match="already refused"):
        erasure.approve(store, req.id, "cli", "changed my mind")


def test_cli_lists_with_the_child_weighing_then_approves(world, tmp_path):
    store, access, *_ = world
    req = erasure.request(store, f"tg:{A}")
    path = store.path
    store.close()
    r = CliRunner().invoke(main, ["erasure", "list", "--db", path])
    assert r.exit_code == 0, r.output
    assert f"Erasure request #{req.id} from tg:{A}" in r.output and "GIVEN AS A CHILD OR YOUNG PERSON" in r.output
    r = CliRunner().invoke(main, ["erasure", "approve", str(req.id), "--reason", "asked", "--db", path], input="n\n")
    assert r.exit_code == 1 and "GIVEN AS A CHILD" in r.output and "nothing erased" in r.output
    assert found(Store(path), "Aquamarine")
    r = CliRunner().invoke(main, ["erasure", "approve", str(req.id), "--reason", "asked", "--alert-words", "erase",
                                  "--db", path], input="y\n")
    assert r.exit_code == 0, r.output
    assert "approved" in r.output
    s = Store(path)
    assert [w for w in A_WORDS if found(s, w)] == []
    r = CliRunner().invoke(main, ["erasure", "refuse", str(req.id), "--reason", "x", "--db", path])
    assert r.exit_code == 2 and "already approved" in r.output
    r = CliRunner().invoke(main, ["erasure", "list", "--all", "--db", path])
    assert "(approved)" in r.output and "alert words erase" in r.output


def test_the_database_file_alone_has_no_erased_words_after_a_fresh_open(world):
    """Read by another connection, as a thief with the file would: nothing of A's is left."""
    store, access, *_ = world
    req = erasure.request(store, f"tg:{A}")
    erasure.approve(store, req.id, "cli", "asked", alert_words="erase")
    path = store.path
    store.close()
    conn = sqlite3.connect(path)
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert [w for w in A_WORDS + B_WORDS if w in dump] == []  # without the key: nobody's words
    keyed = dbkey.decrypting(sqlite3.connect(path))  # with it: B's words and none of A's
    text = "\n".join(str(v) for table, column in PERSON_TEXT for (v,) in keyed.execute(f"SELECT {column} FROM {table}"))
    keyed.close()
    assert [w for w in A_WORDS if w in text] == [] and "Bumblebee" in text


def test_while_another_connection_reads_the_journal_is_wiped_later(world, tmp_path):
    """A running bot reading the database can hold the WAL: approval says so (audited), and
    `erasure wipe` finishes the job once the reader is gone."""
    store, access, *_ = world
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    req = erasure.request(store, f"tg:{A}")
    reader = sqlite3.connect(store.path)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM answers").fetchone()  # a read transaction on the old snapshot
    done = erasure.approve(store, req.id, "cli", "asked", alert_words="erase", wait_ms=50)
    assert not done.wiped
    assert store.audit_log()[-1]["action"] == "erasure.wipe" and "busy" in store.audit_log()[-1]["detail"]
    assert [w for w in A_WORDS if found(store, w)] == []  # gone from every table already
    reader.execute("ROLLBACK")
    reader.close()
    path = store.path
    store.close()
    r = CliRunner().invoke(main, ["erasure", "wipe", "--db", path])
    assert r.exit_code == 0, r.output
    assert [w for w in A_WORDS if w.encode() in raw_bytes(Store(path))] == []


def test_a_worker_makes_the_request_for_a_child_who_answered_on_their_device(world, library):
    """A child in a worker-present session has no chat to send /delete from: the worker makes
    the request with `erasure request --conversation ID`. It is the child's request (theirs
    alone is erased), audited as made by the command line for that conversation, and the
    command says the bot cannot tell the child the outcome."""
    store, access, conv_a, conv_b = world
    service = ConversationService(store, library)
    with store.transaction():
        child = store.person("present:abc", "the person answering in case FGC-7, on their worker's device")
    first = service.start(child, "three-houses", case_id=store.conversation(conv_a).case_id, respondent="child",
                          present_id=store.person(f"tg:{P}"), input_key="c:0")
    service.handle(child, Input.from_text("Kumquat"), input_key="c:1")
    assert "transcript.text" in found(store, "Kumquat")
    path = store.path
    store.close()
    r = CliRunner().invoke(main, ["erasure", "request", "--conversation", str(first.conversation_id),
                                  "--db", path])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "DATA PROTECTION: erasure request #1 from the person answering in case FGC-7, on their worker's device "
        "(case FGC-7). Some of it was given as a child or young person, which weighs in favour of erasure. "
        "An administrator decides with: restorative-bot erasure approve 1 --reason \"...\" (or refuse). "
        "Nothing is deleted until then.",
        "They have no Telegram chat, so the bot cannot tell them the outcome: tell them yourself."]
    again = CliRunner().invoke(main, ["erasure", "request", "--conversation", str(first.conversation_id),
                                      "--db", path])
    assert again.exit_code == 0 and "already has an open erasure request, #1" in again.output
    missing = CliRunner().invoke(main, ["erasure", "request", "--conversation", "999", "--db", path])
    assert missing.exit_code != 0 and "there is no conversation 999" in missing.output and "Traceback" not in missing.output
    r = CliRunner().invoke(main, ["erasure", "approve", "1", "--reason", "asked in person", "--yes", "--db", path])
    assert r.exit_code == 0 and "they have no Telegram chat, so tell them yourself" in r.output, r.output
    s = Store(path)
    assert found(s, "Kumquat") == [] and found(s, "Aquamarine") and found(s, "Bumblebee")
    assert [(a["actor"], a["action"], a["detail"]) for a in s.audit_log() if a["action"].startswith("erasure.request")] == [
        ("cli", "erasure.request", f"for conversation:{first.conversation_id}"),
        ("cli", "erasure.request.again", f"for conversation:{first.conversation_id}")]


def test_each_notice_names_only_the_cases_its_reader_may_read(tmp_path, library):
    """One person in two cases held by two workers (review-priv finding 6): each worker is told
    of their own case, by their own label for the person, never of the other's; a supervisor
    contact of the cases they supervise; the data-protection contact (by id) and administrators
    of all of them."""
    P1, P2, SUP1, SUP2, ADMIN, DPO, FAM = 3, 4, 5, 6, 1, 77, 9
    store = Store(tmp_path / "two.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"admin": [ADMIN], "supervisor": [SUP1, SUP2],
                                                  "practitioner": [P1, P2]}, teams={SUP1: [P1]}))
    access.seed()
    fam = store.person(f"tg:{FAM}")
    for prac, ref, label in ((P1, "FGC-1", "Mum"), (P2, "DV-77", "Victim in refuge, new address withheld")):
        case = store.create_case(store.person(f"tg:{prac}"), ref)
        converse(service, fam, case, "adult", A_ANSWERS, ref)
        with store.transaction():
            store.set_pseudonym(case, fam, label, f"tg:{prac}")
    mine = {f"tg:{P1}": ("FGC-1", "Mum"), f"tg:{P2}": ("DV-77", "Victim in refuge")}

    def told(contact):
        req = erasure.request(store, f"tg:{FAM}", contact)
        erasure.refuse(store, req.id, "cli", "to make the next request")  # so the next one is new
        assert req.new and set(req.notices) == set(req.recipients)
        return req

    req = told(None)
    assert req.recipients == [f"tg:{P1}", f"tg:{P2}"]
    for key, (ref, label) in mine.items():
        (other_ref, other_label), = [v for k, v in mine.items() if k != key]
        text = req.notices[key]
        assert ref in text and label in text and other_ref not in text and other_label not in text, (key, text)
    assert all(w in req.full_notice for w in ("FGC-1", "DV-77", "Mum", "Victim"))  # the command line's
    # the contact: a supervisor role is told of what they supervise; an admin and a named id of all
    req = told("supervisor")
    assert "FGC-1" in req.notices[f"tg:{SUP1}"] and "DV-77" not in req.notices[f"tg:{SUP1}"]
    nothing = req.notices[f"tg:{SUP2}"]
    assert not any(w in nothing for w in ("FGC-1", "DV-77", "Mum", "Victim")) and "not one you hold" in nothing
    assert "DV-77" not in req.notices[f"tg:{P1}"]
    for contact, key in (("admin", f"tg:{ADMIN}"), (DPO, f"tg:{DPO}")):
        req = told(contact)
        assert all(w in req.notices[key] for w in ("FGC-1", "DV-77", "Mum", "Victim")), contact
        assert "DV-77" not in req.notices[f"tg:{P1}"] and "FGC-1" not in req.notices[f"tg:{P2}"]
    store.close()


def test_restoring_an_older_backup_erases_again_and_keeps_the_request(world, tmp_path):
    """A backup made before an approved erasure still holds the person's words, and no request:
    restore reads the requests from the database it replaces, puts them (and their audit lines)
    back and erases again, so neither the words nor the record of the request come back wrong."""
    store, access, conv_a, conv_b = world
    copy = str(tmp_path / "nightly.bak")
    assert CliRunner().invoke(main, ["backup", copy, "--db", store.path]).exit_code == 0
    req = erasure.request(store, f"tg:{A}")
    erasure.approve(store, req.id, "cli", "the person asked", alert_words="erase")
    told = erasure.untold(store)
    assert len(told) == 1 and "backup" in told[0].text  # the person is told older backups still hold it
    erasure.told(store, req.id)
    other = erasure.request(store, f"tg:{B}")  # still open: it must not vanish either
    db = store.path
    store.close()

    result = CliRunner().invoke(main, ["restore", copy, "--db", db])
    assert result.exit_code == 0, result.output
    assert f"re-applied 1 approved erasure(s)" in result.output and f"#{req.id}" in result.output

    s = Store(db)
    assert {w: found(s, w) for w in A_WORDS} == {w: [] for w in A_WORDS}
    assert all(found(s, w) for w in B_WORDS)
    rows = {r["id"]: r for r in erasure.pending(s, everything=True)}
    assert (rows[req.id]["status"], rows[req.id]["alert_words"]) == ("approved", "erase")
    assert rows[req.id]["told_at"] and rows[other.id]["status"] == "open"
    assert erasure.untold(s) == []  # told once, not again
    actions = [(r["action"], r["target"]) for r in s.audit_log()]
    assert ("erasure.approve", f"erasure:{req.id}") in actions
    assert ("erasure.reapply", f"erasure:{req.id}") in actions
    assert actions[-1][0] == "restore"
    data = raw_bytes(s)
    assert [w for w in A_WORDS if w.encode() in data] == []
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".restore-")]
    assert leftovers == []  # the staging copy is gone


def test_a_notice_kept_back_for_the_worker_is_erased_with_the_person_it_names_or_quotes(world):
    """Review-dp F1: while a worker-present session runs on the worker's phone, a comment notice
    (quoting the family) and the erasure notice (naming the person) wait in the schedule as rows
    for the WORKER. Erasing the person erases and cancels them too; the worker is told instead,
    naming nobody, that the request was decided."""
    from bot.messages import msg
    from bot.review.export import md_quote
    from bot.schedule import Schedule, hold_notice

    store, access, conv_a, conv_b = world
    text = 'She said "Xylophone teatime talks" twice'
    hold_notice(store, f"tg:{P}", msg("staff.comment_notice", who="Sam", id=conv_a, text="\n".join(md_quote(text))),
                about_person=None, about_conversation=conv_a)
    hold_notice(store, f"tg:{P}", "Bumblebee: about the other person", about_person=None, about_conversation=conv_b)
    req = erasure.request(store, f"tg:{A}")
    assert "Alpha Kid" in req.notices[f"tg:{P}"]
    hold_notice(store, f"tg:{P}", req.notices[f"tg:{P}"], about_person=req.person_id)
    erasure.approve(store, req.id, "cli", "the person asked", alert_words="erase")

    assert {w: found(store, w) for w in A_WORDS} == {w: [] for w in A_WORDS}
    due = Schedule(store, quiet_from="00:00", quiet_until="00:00").due()
    texts = sorted(d.text for d in due if d.recipient == f"tg:{P}")
    assert texts[0].startswith("Bumblebee")  # about the other person: still goes
    assert len(texts) == 2 and f"#{req.id}" in texts[1] and "withdrawn" in texts[1]
    assert [w for w in A_WORDS if w in " ".join(texts)] == []


@pytest.mark.parametrize("record", ["review_item", "missed"])
def test_words_kept_in_any_safeguarding_record_are_counted_and_the_person_is_told(world, record):
    """Review-dp F2: the "some words are kept" outcome and the administrator's prompt looked at
    alerts only, so a person whose words were kept in a quiet review item or a /missed record
    was told everything was deleted. Now every kind counts; the wording names no tier."""
    store, access, conv_a, conv_b = world
    b = store.person(f"tg:{B}")
    if record == "review_item":
        with store.transaction():
            line = store.add_line(conv_b, "in", "Hazelnut: I feel alone at night", kind="answer", flagged=True,
                                  tier="review")
            store.add_review_item(conversation_id=conv_b, person_id=b, transcript_id=line, concern="worry",
                                  matched="alone at night")
    else:
        Reading(store, access).record_missed(f"tg:{P}", conv_b, "anything_else", "Hazelnut he hurts me")
    req = erasure.request(store, f"tg:{B}")
    prompt = erasure.describe(store.erasure_request(req.id))
    shown = "1 review item(s)" if record == "review_item" else "1 missed disclosure(s)"
    assert "0 alert(s)" in prompt and shown in prompt and "kept unless --alert-words erase" in prompt
    erasure.approve(store, req.id, "cli", "the person asked")  # default: kept
    kept = "alone at night" if record == "review_item" else "he hurts me"
    assert found(store, kept) == (["review_items.matched"] if record == "review_item" else ["missed_disclosures.words"])
    [outcome] = erasure.untold(store)
    assert "kept in a safeguarding record" in outcome.text
    assert "review" not in outcome.text.lower() and "missed" not in outcome.text.lower()


@pytest.mark.parametrize("record", ["review_item", "missed"])
def test_once_the_safeguarding_words_are_erased_nothing_is_said_to_be_kept(world, record):
    """The records stay (what was reported, and when), but with --alert-words erase they no longer
    hold the person's words: /mydata and a later request must not say words are kept."""
    store, access, conv_a, conv_b = world
    b = store.person(f"tg:{B}")
    if record == "review_item":
        with store.transaction():
            line = store.add_line(conv_b, "in", "Hazelnut: I feel alone at night", kind="answer", flagged=True,
                                  tier="review")
            store.add_review_item(conversation_id=conv_b, person_id=b, transcript_id=line, concern="worry",
                                  matched="alone at night")
    else:
        Reading(store, access).record_missed(f"tg:{P}", conv_b, "anything_else", "Hazelnut he hurts me")
    assert store.data_about(b)["safeguarding_records"] == 1
    req = erasure.request(store, f"tg:{B}")
    erasure.approve(store, req.id, "cli", "the person asked", alert_words="erase")
    assert store.data_about(b)["safeguarding_records"] == 0
    again = store.erasure_request(erasure.request(store, f"tg:{B}").id)
    assert erasure.safeguarding_records(again) == 0
    assert "kept unless --alert-words erase" not in erasure.describe(again)


def test_the_outcome_is_told_in_the_language_the_person_chose(world):
    """The outcome went out in English whatever the person had chosen; the language tag (nobody's
    words) survives the erasure, so the outcome can be said in it."""
    store, access, *_ = world
    b = store.person(f"tg:{B}")
    with store.transaction():
        store.set_person_language(b, "cy")
    req = erasure.request(store, f"tg:{B}")
    erasure.approve(store, req.id, "cli", "the person asked", alert_words="erase")
    [outcome] = erasure.untold(store)
    welsh = [i18n.translate(f"erasure.outcome.{k}.default", msg(f"erasure.outcome.{k}")["default"], "cy")
             for k in ("approved", "backups")]
    assert welsh[0] != msg("erasure.outcome.approved")["default"]  # there is a Welsh wording to give
    assert outcome.text == welsh[0].format(id=req.id) + " " + welsh[1]
