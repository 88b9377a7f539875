"""Roles, invitations and review: exactly the right access, every access logged."""

import dataclasses
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.access import Access, Refused
from bot.config import Config, ConfigError
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.messages import msg
from bot.store import Store

ROOT = Path(__file__).resolve().parents[1]

ADMIN, SUP, P1, P2, FAM_A, FAM_B, STRANGER = (f"tg:{i}" for i in (1, 2, 3, 4, 5, 6, 7))


class World:
    """Admin; supervisor SUP supervising P1 only; P1 holds case A, P2 holds case B;
    FAM_A answered in case A, FAM_B in case B; P1 and P2 each did a rehearsal."""

    def __init__(self, store, library):
        self.store, self.library = store, library
        self.service = ConversationService(store, library)
        self.access = Access(store, library, Config(demo_flow="scaling-checkin"))
        a = self.access
        a.grant(None, ADMIN, "admin")
        a.grant(None, SUP, "supervisor")
        for p in (P1, P2):
            a.grant(None, p, "practitioner")
        a.team_add(None, SUP, P1)
        self.conv = {}
        for practitioner, family, label in ((P1, FAM_A, "A"), (P2, FAM_B, "B")):
            code, inv = a.invite(practitioner, "scaling-checkin", f"CASE-{label}")
            a.open_invite(family, code)
            conv = a.accept_invite(family, inv, self._start)
            pid = store.person(family)
            self.service.handle(pid, Input.from_text(f"secret hopes of family {label}"), conversation_id=conv)
            self.conv[label] = conv
            rehearsal = self.service.start(store.person(practitioner), "restorative-harmer").conversation_id
            self.service.handle(store.person(practitioner), Input.from_text(f"rehearsal words of {practitioner}"),
                                conversation_id=rehearsal)
            self.conv[f"R{label}"] = rehearsal

    def _start(self, person_id, flow_id, case_id, respondent=None):
        return self.service.start(person_id, flow_id, case_id=case_id, respondent=respondent).conversation_id


@pytest.fixture
def world(store, library):
    return World(store, library)


# who may read which conversation: A, B (family check-ins), RA (P1's rehearsal), RB (P2's)
READ = {
    ADMIN: {"A", "B", "RA", "RB"},
    SUP: {"A", "RA"},
    P1: {"A", "RA"},
    P2: {"B", "RB"},
    FAM_A: {"A"},
    FAM_B: {"B"},
    STRANGER: set(),
}


@pytest.mark.parametrize("who", list(READ))
def test_transcript_access_matrix(world, who):
    for label, conv in world.conv.items():
        before = len(world.store.audit_log())
        if label in READ[who]:
            data = world.access.transcript(who, conv)
            assert data["conversation_id"] == conv
            assert world.store.audit_log()[-1]["action"] == "transcript.read"
        else:
            with pytest.raises(Refused):
                world.access.transcript(who, conv)
            assert world.store.audit_log()[-1]["action"] == "transcript.read.refused"
        assert len(world.store.audit_log()) == before + 1
    # a conversation that does not exist is refused exactly like one that is not yours
    with pytest.raises(Refused) as missing:
        world.access.transcript(who, 99999)
    assert str(missing.value) == "refused"


@pytest.mark.parametrize("who, allowed", [
    (ADMIN, {"CASE-A", "CASE-B"}), (SUP, {"CASE-A"}), (P1, {"CASE-A"}), (P2, {"CASE-B"}),
    (FAM_A, set()), (FAM_B, set()), (STRANGER, set()),
])
def test_case_views(world, who, allowed):
    for ref in ("CASE-A", "CASE-B", "NO-SUCH-CASE"):
        if ref in allowed:
            rows = world.access.case(who, ref)
            assert rows and all(r["case_ref"] == ref for r in rows)
        else:
            with pytest.raises(Refused):
                world.access.case(who, ref)
    if allowed:
        assert {c["ref"] for c in world.access.cases(who)} == allowed
    else:
        with pytest.raises(Refused):
            world.access.cases(who)
        assert world.store.audit_log()[-1]["action"] == "cases.list.refused"


@pytest.mark.parametrize("who, allowed", [
    (ADMIN, {"A", "B", "RA", "RB"}), (SUP, {"A", "RA"}), (P1, set()), (P2, set()), (FAM_A, set()), (STRANGER, set()),
])
def test_comments_and_review(world, who, allowed):
    for label, conv in world.conv.items():
        if label in allowed:
            cid, notify = world.access.comment(who, conv, "Good open questions here.")
            assert cid > 0
            holder = {"A": P1, "RA": P1, "B": P2, "RB": P2}[label]
            assert notify == holder
        else:
            with pytest.raises(Refused):
                world.access.comment(who, conv, "sneaky")
    if who in (ADMIN, SUP):
        assert world.access.review_queue(who) == []  # all commented on, so reviewed (none left in progress)
    else:
        with pytest.raises(Refused):
            world.access.review_queue(who)


def test_review_queue_lists_unreviewed_finished_transcripts(world):
    fam = world.store.person(FAM_A)
    world.service.cancel_active(fam)
    queue = world.access.review_queue(SUP)
    assert [r["id"] for r in queue] == [world.conv["A"]]
    world.access.comment(SUP, world.conv["A"], "Seen.", "best_hopes")
    assert world.access.review_queue(SUP) == []
    exported = world.access.export_case("cli", "CASE-A")
    assert exported[0]["comments"][0]["step_id"] == "best_hopes"


def test_only_practitioners_invite_and_only_admins_grant(world):
    for who in (SUP, FAM_A, STRANGER):
        with pytest.raises(Refused):
            world.access.invite(who, "scaling-checkin", "X-1")
    for who in (SUP, P1, FAM_A, STRANGER):
        with pytest.raises(Refused):
            world.access.grant(who, STRANGER, "admin")
    assert world.access.grant(ADMIN, STRANGER, "practitioner")
    assert world.store.audit_log()[-1]["action"] == "role.grant"


def test_startable_flows_by_role(world):
    every = {f.id for f in world.library}
    assert {f.id for f in world.access.startable_flows(P1)} == every
    assert {f.id for f in world.access.startable_flows(STRANGER)} == {"scaling-checkin"}
    assert {f.id for f in Access(world.store, world.library, Config()).startable_flows(FAM_A)} == set()


def test_invite_codes_are_single_use_unguessable_and_expire(world, monkeypatch):
    a = world.access
    code, inv = a.invite(P1, "fgc-pre-conference", "FGC-9")
    assert len(code) >= 22  # at least 128 bits of token_urlsafe
    assert world.store.invite(inv)["code_hash"] != code and code not in str(world.store.invite(inv))
    view = a.open_invite(FAM_A, code)
    assert view.flow_title.startswith("Getting ready") and view.case_ref == "FGC-9"
    # consent by someone who did not open it is refused
    with pytest.raises(Refused):
        a.accept_invite(FAM_B, inv, world._start)
    a.accept_invite(FAM_A, inv, world._start)
    with pytest.raises(Refused) as used:
        a.open_invite(FAM_A, code)
    assert used.value.reason == "used"
    with pytest.raises(Refused) as taken:  # anyone else: the first opener holds the link
        a.open_invite(FAM_B, code)
    assert taken.value.reason == "taken"
    with pytest.raises(Refused) as forged:
        a.open_invite(FAM_B, code[:-2] + ("AA" if not code.endswith("AA") else "BB"))
    assert forged.value.reason == "unknown"
    code2, inv2 = a.invite(P1, "fgc-pre-conference", "FGC-9")
    a.revoke_invite(P1, inv2)
    with pytest.raises(Refused) as revoked:
        a.open_invite(FAM_B, code2)
    assert revoked.value.reason == "revoked"
    code3, _ = a.invite(P1, "fgc-pre-conference", "FGC-9")
    later = datetime.now(timezone.utc) + timedelta(days=8)
    monkeypatch.setattr("bot.access._now", lambda: later)
    with pytest.raises(Refused) as expired:
        a.open_invite(FAM_B, code3)
    assert expired.value.reason == "expired"
    actions = [r["action"] for r in world.store.audit_log()]
    for wanted in ("invite.create", "invite.open", "invite.use", "invite.open.used", "invite.open.unknown",
                   "invite.open.revoked", "invite.open.expired", "invite.revoke"):
        assert wanted in actions


def test_mydata_shows_own_conversations_and_who_sees_them(world):
    data = world.access.mydata(FAM_A)
    assert [c["id"] for c in data["conversations"]] == [world.conv["A"]]
    # P1 holds case A and SUP supervises P1; neither has a display name, so both are named by their part
    assert data["conversations"][0]["who_can_see"] == (
        "Who can see it: you, your worker, your worker's manager and the people who run this service.")
    assert world.access.mydata(STRANGER)["conversations"] == []


# --- property: nobody ever obtains text from a conversation outside their access -------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_practitioners=st.integers(1, 3),
    families=st.lists(st.integers(0, 2), min_size=1, max_size=5),  # each family's practitioner index
    team=st.sets(st.integers(0, 2)),
    grant_admin=st.booleans(),
)
def test_no_one_reads_outside_their_access(tmp_path_factory, library, n_practitioners, families, team, grant_admin):
    store = Store(tmp_path_factory.mktemp("prop") / "p.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config())
    practitioners = [f"tg:{100 + i}" for i in range(n_practitioners)]
    for p in practitioners:
        access.grant(None, p, "practitioner")
    access.grant(None, "tg:900", "supervisor")
    for i in team:
        if i < n_practitioners:
            access.team_add(None, "tg:900", practitioners[i])
    if grant_admin:
        access.grant(None, "tg:901", "admin")
    owner_of = {}
    for j, idx in enumerate(families):
        prac = practitioners[idx % n_practitioners]
        fam = f"tg:{200 + j}"
        code, inv = access.invite(prac, "scaling-checkin", f"C{idx % n_practitioners}")
        access.open_invite(fam, code)
        conv = access.accept_invite(fam, inv, lambda pid, f, c: service.start(pid, f, case_id=c).conversation_id)
        service.handle(store.person(fam), Input.from_text(f"words-{conv}-private"), conversation_id=conv)
        owner_of[conv] = (fam, prac)
    people = practitioners + [f"tg:{200 + j}" for j in range(len(families))] + ["tg:900", "tg:901", "tg:999"]
    supervised = {practitioners[i] for i in team if i < n_practitioners}
    for who in people:
        for conv, (fam, prac) in owner_of.items():
            expected = (who == fam or who == prac or (who == "tg:900" and prac in supervised)
                        or (who == "tg:901" and grant_admin))
            if expected:
                data = access.transcript(who, conv)
                assert any(f"words-{conv}-private" in t["text"] for t in data["transcript"])
            else:
                with pytest.raises(Refused):
                    access.transcript(who, conv)
        # case views never carry another case's conversations
        try:
            cases = access.cases(who)
        except Refused:
            cases = []
        for case in cases:
            for conv in access.case(who, case["ref"]):
                fam, prac = owner_of[conv["id"]]
                assert who in (prac, "tg:901") or (who == "tg:900" and prac in supervised)
    store.close()


# --- configuration and CLI --------------------------------------------------------------

def test_config_errors_have_positions(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("safeguarding:\n  leads: [abc]\n  repeat_minutez: 5\nroles:\n  boss: [1]\n")
    with pytest.raises(ConfigError) as exc:
        Config.load(bad)
    text = str(exc.value)
    assert f"{bad}:2:10:" in text and "Telegram user ids" in text
    assert f"{bad}:3:3:" in text and "repeat_minutez" in text
    assert f"{bad}:5:3:" in text and "unknown role 'boss'" in text


def run_cli(*args, db):
    return subprocess.run([sys.executable, "-m", "bot", *args, "--db", str(db)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ})


def test_cli_roles_teams_invite_audit_and_case_export(tmp_path):
    db = tmp_path / "cli.db"
    assert run_cli("role", "grant", "555", "practitioner", db=db).returncode == 0
    assert run_cli("role", "grant", "444", "supervisor", db=db).returncode == 0
    assert run_cli("team", "add", "444", "555", db=db).returncode == 0
    listed = run_cli("role", "list", db=db)
    assert "practitioner  tg:555" in listed.stdout and "supervisor    tg:444" in listed.stdout
    made = run_cli("invite", "scaling-checkin", "--case", "FGC-1", "--practitioner", "555", "--bot-username", "@RBot", db=db)
    assert made.returncode == 0 and made.stdout.startswith("https://t.me/RBot?start=")
    refused = run_cli("invite", "scaling-checkin", "--case", "FGC-1", "--practitioner", "777", db=db)
    assert refused.returncode == 2 and "not a practitioner" in refused.stderr
    bad = run_cli("role", "grant", "alice", "admin", db=db)
    assert bad.returncode == 2 and "not a Telegram user id" in bad.stderr
    # someone uses the link, then the case is exported
    store = Store(db)
    access = Access(store, __import__("bot.engine.library", fromlist=["FlowLibrary"]).FlowLibrary.load(), Config())
    service = ConversationService(store, access.library)
    code = made.stdout.strip().rsplit("=", 1)[1]
    inv = access.open_invite("tg:321", code)
    access.accept_invite("tg:321", inv.invite_id, lambda pid, f, c: service.start(pid, f, case_id=c).conversation_id)
    service.handle(store.person("tg:321"), Input.from_text("We want calm mornings"))
    service.handle(store.person("tg:321"), Input.from_text("4"))
    store.close()
    out = run_cli("export", "--case", "FGC-1", "--format", "md", db=db)
    assert out.returncode == 0 and "- Case: FGC-1" in out.stdout and "We want calm mornings" in out.stdout
    assert "## Scores" in out.stdout and "scale_now: 4" in out.stdout
    html = run_cli("export", "--case", "FGC-1", "--format", "html", db=db)
    assert "<style>" in html.stdout and "http" not in html.stdout.split("<body>")[0]  # self-contained
    none = run_cli("export", "--case", "NOPE", db=db)
    assert none.returncode == 2
    log = run_cli("audit", db=db)
    for action in ("role.grant", "team.add", "invite.create", "invite.create.refused", "invite.open", "invite.use", "export"):
        assert action in log.stdout
    since = run_cli("audit", "--since", "2999-01-01", db=db)
    assert since.stdout.strip() == ""


# --- consent written into a flow ---------------------------------------------------------

HOUSE_WORDS = {"house_worries": "I worry about my spelling test", "house_good": "My dog makes me happy",
               "house_dreams": "I dream of being a vet",
               "worker_notes": "Drew a spelling test in the House of Worries"}  # notes are about every house


def _answer_three_houses(world, share, which="1"):
    """Three Houses as it is done: never a link, but on the worker's device with them there.
    ``which``: the answer to "Which houses can your worker show?" (1 worries, 2 good, 3 dreams)."""
    with pytest.raises(ValueError, match="cannot be sent as a link"):
        world.access.invite(P1, "three-houses", "CASE-TH")

    def start(person, flow_id, case_id, respondent, present):
        return world.service.start(person, flow_id, case_id=case_id, respondent=respondent,
                                   present_id=present).conversation_id

    conv = world.access.start_with(P1, "CASE-TH", "three-houses", start)
    pid = world.store.person(P1)  # the worker's device; the answers are the child's
    c = world.store.conversation(conv)
    assert (c.respondent, c.present_id) == ("child", pid) and c.person_id != pid
    flow = world.library.get("three-houses")
    asked: dict = {}
    for _ in range(40):
        c = world.store.conversation(conv)
        if c.status != "in_progress":
            break
        step = flow.by_id[c.state]
        asked[step.id] = asked.get(step.id, 0) + 1
        if step.id == "share_ok":
            text = "yes" if share else "no"
        elif step.type == "choice":
            text = str(min(asked[step.id], len(step.options)))  # a refused choice: try the next option
        elif step.type == "multi":
            text = which
        elif step.type == "yesno":
            text = "no"
        elif step.type == "scale":
            text = "8"
        else:
            text = HOUSE_WORDS.get(step.id, "Nan said she would come")
        world.service.handle(pid, Input.from_text(text), conversation_id=conv)
    return conv


def test_without_the_childs_consent_only_their_worker_reads_the_houses(world):
    conv = _answer_three_houses(world, share=False)
    assert world.store.conversation(conv).status == "completed"
    assert world.access.transcript(P1, conv)  # their worker
    for who in (SUP, ADMIN, P2, FAM_A, FAM_B):
        with pytest.raises(Refused):
            world.access.transcript(who, conv)
    listed = [c for c in world.access.case(SUP, "CASE-TH") if c["id"] == conv][0]
    assert listed["shared"] is False and listed["scores"] == {}


def test_with_the_childs_consent_the_supervisor_may_read(world):
    conv = _answer_three_houses(world, share=True)
    assert world.access.transcript(SUP, conv)


def _houses_in(data) -> set:
    """Which houses' words a transcript carries, in its answers or its lines."""
    texts = [a["shown"] for a in data["answers"]] + [t["text"] for t in data["transcript"]]
    return {house for house, words in HOUSE_WORDS.items() if any(words in (x or "") for x in texts)}


def test_the_supervisor_reads_only_the_houses_the_child_chose(world):
    # The child shares the House of Worries and the House of Dreams, not the House of Good Things.
    conv = _answer_three_houses(world, share=True, which="1, 3")
    every = {"house_worries", "house_good", "house_dreams", "worker_notes"}
    assert _houses_in(world.access.transcript(P1, conv)) == every  # their worker reads every house, and the notes
    for who in (SUP, ADMIN):
        data = world.access.transcript(who, conv)
        assert _houses_in(data) == {"house_worries", "house_dreams"}  # the notes are about every house: withheld
        assert [w["step_id"] for w in data["withheld"]] == ["house_good", "worker_notes"]
        assert "good things" in data["withheld"][0]["question_en"].lower()
    # the same in the case's export and in the command line's (read as the people who run it)
    exported = world.access.export_case("cli", "CASE-TH")
    assert [_houses_in(d) for d in exported if d["conversation_id"] == conv] == [{"house_worries", "house_dreams"}]
    # a child who shares every house shares the worker's notes on them too
    everything = _answer_three_houses(world, share=True, which="1, 2, 3")
    assert _houses_in(world.access.transcript(SUP, everything)) == every
    assert world.access.transcript(SUP, everything)["withheld"] == []
    # and a supervisor may not comment on the house they cannot read
    with pytest.raises(ValueError, match="no answer 'house_good'"):
        world.access.comment(SUP, conv, "A note", step_id="house_good")


def test_reading_the_shared_houses_leaves_the_houses_kept_back_unread_for_the_worker(world):
    """Nothing unread: a supervisor who opens the transcript has read the houses shown to them,
    not the ones the child kept back; those stay unread (and reminded) until the worker reads."""
    conv = _answer_three_houses(world, share=True, which="3")  # only the House of Dreams

    def unread() -> set:
        return {u["step_id"] for u in world.store.unread_answers() if u["conversation_id"] == conv}

    kept_back = {"house_worries", "house_good", "worker_notes"}
    assert unread() == kept_back | {"house_dreams", "share_with"}
    world.access.transcript(SUP, conv)
    assert unread() == kept_back
    world.access.case(SUP, "CASE-TH")  # the case view marks read the same way
    assert unread() == kept_back
    world.access.transcript(P1, conv)
    assert unread() == set()


def test_the_child_is_told_that_a_yes_shows_only_the_houses_they_choose(world):
    """What the child reads says what the access rule does: before, that a yes shows others
    only the houses chosen; after, who sees everything (their worker) and who only those."""
    conv = _answer_three_houses(world, share=True, which="3")
    aud = world.access.audience(conv)
    before = dataclasses.replace(aud, state="not_asked").intro()
    assert msg("privacy.parts.intro.child") in before
    assert before.index(msg("privacy.parts.intro.child")) > before.index("If you say yes")
    after = aud.now()  # /mydata, and {{ who_can_see }} once the child has answered
    assert after.endswith(msg("privacy.parts.after.child", others="Your worker's manager and the people who run "
                                                                    "this service"))
    assert aud.after().endswith(after.split(". ", 1)[1])
    # a flow without a choice of parts says nothing about parts, and neither does a no
    assert msg("privacy.parts.intro.child") not in dataclasses.replace(aud, consent=dataclasses.replace(
        aud.consent, parts=())).intro()
    refused = world.access.audience(_answer_three_houses(world, share=False))
    assert "parts" not in refused.now() and "parts" not in refused.after()


def test_a_child_who_says_yes_but_never_chooses_a_house_shares_none(world, monkeypatch):
    conv = _answer_three_houses(world, share=True)
    # as if they had stopped at "Which houses?": the choice was never recorded
    answers = [a for a in world.store.answers(conv) if a["step_id"] != "share_which"]
    monkeypatch.setattr(world.store, "answers", lambda cid: answers if cid == conv else [])
    assert world.access.withheld(SUP, conv) == {"house_worries", "worries_check", "house_good", "house_dreams",
                                                "worker_notes"}
    assert world.access.withheld(P1, conv) == frozenset()


def test_fgc_answers_reach_nobody_else_without_consent(world):
    code, inv = world.access.invite(P1, "fgc-pre-conference", "FGC-C")
    world.access.open_invite(FAM_A, code)
    conv = world.access.accept_invite(FAM_A, inv, world._start)
    world.service.handle(world.store.person(FAM_A), Input.from_text("Nan and my aunt"), conversation_id=conv)
    # in progress, consent not yet asked: not shown, not even to the practitioner
    for who in (P1, SUP, ADMIN):
        with pytest.raises(Refused):
            world.access.transcript(who, conv)
    assert world.access.transcript(FAM_A, conv)


def test_consent_must_name_a_yes_no_step():
    from bot.engine.loader import load_flow_text

    flow, errors = load_flow_text(
        "id: x\nversion: 1\ntitle: T\naudience: child\nconsent:\n  step: a\n  without_consent: everyone\n"
        "steps:\n  - id: a\n    ask: q\n", "x.yaml")
    assert flow is None
    messages = [str(e) for e in errors]
    assert any("x.yaml:6:9: consent step 'a' must be a yes/no question" in m for m in messages), messages
    assert any("x.yaml:7:20: 'without_consent' must be nobody or practitioner" in m for m in messages), messages


def test_consent_which_names_a_multiple_choice_step_and_its_parts():
    from bot.engine.loader import load_flow_text

    head = ("id: x\nversion: 1\ntitle: T\naudience: child\nconsent:\n  step: ok\n  without_consent: practitioner\n"
            "  which:\n    step: {which}\n    parts:\n      {part}: [{steps}]\n")
    steps = ("steps:\n  - id: a\n    ask: q\n  - id: ok\n    ask: Can we show it?\n    type: yesno\n"
             "  - id: pick\n    ask: Which?\n    type: multi\n    options: [{id: first, label: First}]\n")

    def errors(**kw):
        flow, found = load_flow_text(head.format(**kw) + steps, "x.yaml")
        return flow, [str(e) for e in found]

    flow, found = errors(which="pick", part="first", steps="a")
    assert found == [] and flow.consent_which == "pick" and flow.consent_parts == {"first": ("a",)}
    assert errors(which="a", part="first", steps="a")[1] == [
        "x.yaml:9:11: consent.which step 'a' must be a multiple-choice question (type: multi) in this flow, "
        "where the person picks the parts that may be shown",
        "x.yaml:11:14: the part 'first' cannot cover 'a', the question that asks which parts may be shown"]
    assert errors(which="pick", part="second", steps="a")[1] == [
        "x.yaml:11:7: 'second' is not an option of 'pick'; the parts are named by its option ids"]
    assert errors(which="pick", part="first", steps="b")[1] == [
        "x.yaml:11:14: the part 'first' covers 'b', which is not a step in this flow"]
    assert errors(which="pick", part="first", steps="ok")[1] == [
        "x.yaml:11:14: the part 'first' cannot cover the consent question 'ok'"]
    # every_part: the steps about all the parts at once (notes), withheld with any part
    flow, found = errors(which="pick", part="first", steps="a]\n    every_part: [notes")
    assert found == ["x.yaml:12:17: every_part names 'notes', which is not a step in this flow"]
    flow, found = errors(which="pick", part="first", steps="a]\n    every_part: [a")
    assert found == ["x.yaml:12:17: 'a' is in the part 'first'; a step is in one part or in every_part, not both"]
    flow, found = errors(which="pick", part="first", steps="a]\n    every_part: [pick")
    assert found == ["x.yaml:12:17: every_part cannot name 'pick', a question about what may be shown"]


def test_every_transcript_format_says_which_houses_were_not_shared(world):
    from bot.review.export import render
    from bot.review.transcript_telegram import blocks

    conv = _answer_three_houses(world, share=True, which="3")  # only the House of Dreams
    data = world.access.transcript(SUP, conv)
    assert [w["step_id"] for w in data["withheld"]] == ["house_worries", "worries_check", "house_good", "worker_notes"]
    telegram = "\n".join(b.head + " " + (b.body or "") for b in blocks(data))
    for text in (render([data], "md"), render([data], "html"), telegram):
        assert "Not shared with you" in text and "House of Good Things" in text
        assert HOUSE_WORDS["house_dreams"] in text
        assert HOUSE_WORDS["house_good"] not in text and HOUSE_WORDS["house_worries"] not in text
