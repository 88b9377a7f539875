"""The privacy matrix: what people are told about who sees their answers is what the access
layer lets happen.

For every shipped flow × the respondents it is for × consent state (not asked yet / yes / no) × viewer (the family
member who answered, someone else in the family, the worker holding the case, their
supervisor, another practitioner, an administrator, a stranger), the texts the person reads
(the invitation, the flow's intro, /mydata) are read the way a person would read them: who
do they name as able to see the answers, now and "if you say yes"? That must be exactly the
set of people whom /transcript lets in, and /review, /case and exports must agree with
/transcript for every one of them. The demo (no case) and a practitioner's rehearsal are
checked the same way.

The reading of the texts below knows nothing of bot.audience: it looks for the people's
names and the words a family would take to mean them.
"""

from __future__ import annotations

import json
import re

import pytest

from bot.access import Access, Refused
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.messages import messages
from bot.respondent import admitted
from bot.review.export import ExportError, export

ADMIN, WORKER, MANAGER, OTHER, FAMILY, OTHER_FAMILY, STRANGER, DEMO = (f"tg:{i}" for i in range(1, 9))
NAMES = {ADMIN: "Ada Admin", WORKER: "Sam Patel", MANAGER: "Alex Jones", OTHER: "Pat Lee",
         FAMILY: "Jo Family", OTHER_FAMILY: "Robin Family", STRANGER: "Kim Stranger", DEMO: "Lee Demo"}

# how a reader recognises each viewer in a sentence about who can see the answers
MENTIONS = {
    "practitioner": [r"Sam Patel(?!'s)", r"\byour (social )?worker\b(?!'s)", r"\bpractitioner\b", r"\bcoordinator\b"],
    "supervisor": [r"Alex Jones", r"\bmanagers?\b", r"\bsupervisors?\b"],
    "admin": [r"people who run this service", r"\badministrators?\b", r"Ada Admin"],
    "family": [r"Robin", r"\bfamily\b", r"\bparents?\b", r"\bmum\b", r"\bdad\b"],
    "other_practitioner": [r"Pat Lee", r"\bother (workers|practitioners)\b"],
    "stranger": [r"\banyone\b", r"\beveryone\b"],
}
SEEING = re.compile(r"\b(see|seen|sees|read|reads|shown|shared|passed on)\b", re.I)
IF_YES = re.compile(r"\bif you say yes\b|\bunless you say\b|\bif it is OK\b|\bif you agree\b", re.I)


def claims(text: str) -> tuple[set, set]:
    """(who the text says can see the answers now, and once the person says yes)."""
    now, later = {"answerer"}, set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if not SEEING.search(sentence):
            continue
        named = {who for who, pats in MENTIONS.items() if any(re.search(p, sentence, re.I) for p in pats)}
        if re.search(r"\b(nobody|no one) else\b", sentence, re.I) and not IF_YES.search(sentence):
            named -= set(MENTIONS)
        (later if IF_YES.search(sentence) else now).update(named)
    return now, now | later


class World:
    """SAM holds every case and is supervised by ALEX; PAT is another practitioner; JO answers;
    ROBIN is in the same family (answering in the same case); LEE tries the demo."""

    def __init__(self, store, library):
        self.store, self.library = store, library
        self.service = ConversationService(store, library)
        self.access = Access(store, library, Config(demo_flow="scaling-checkin"))
        for key, name in NAMES.items():
            store.person(key, name)
        a = self.access
        a.grant(None, ADMIN, "admin")
        a.grant(None, MANAGER, "supervisor")
        a.grant(None, WORKER, "practitioner")
        a.grant(None, OTHER, "practitioner")
        a.team_add(None, MANAGER, WORKER)

    def answer_all(self, key: str, conv: int, consent: bool | None) -> str:
        """Answer every question (the consent question with ``consent``); stop before the
        consent question when ``consent`` is None. Returns the conversation's status."""
        pid = self.store.person(key)
        flow = self.service.runner_for(self.store.conversation(conv)).flow
        answered = 0
        for _ in range(200):
            c = self.store.conversation(conv)
            if c.status != "in_progress":
                return c.status
            step = flow.by_id[c.state]
            if step.id == flow.consent_step or (consent is None and answered >= 1):
                if consent is None:
                    return self.service.handle(pid, Input("cancel"), conversation_id=conv).status
                tries = ["yes" if consent else "no"]
            elif step.type == "yesno":
                tries = ["no", "yes"]
            elif step.type in ("choice", "multi"):
                tries = [str(i) for i in range(1, len(step.options) + 1)]
            elif step.type in ("scale", "number"):
                tries = ["5", "3", "8"]
            else:
                tries = ["Friday 14 March", "We are all trying hard at home, most days", "What happened?"]
            for text in tries:
                if self.service.handle(pid, Input.from_text(text), conversation_id=conv).accepted:
                    answered += 1
                    break
            else:
                raise AssertionError(f"{flow.id}: no answer accepted at step {step.id}")
        raise AssertionError(f"{flow.id} did not finish")

    def start(self, key: str, flow_id: str, case_ref: str | None, respondent: str | None = None) -> tuple[int, str]:
        """A conversation in a case held by SAM (or outside any case); returns (id, intro text)."""
        case_id = self.store.create_case(self.store.person(WORKER), case_ref) if case_ref else None
        reply = self.service.start(self.store.person(key), flow_id, case_id=case_id, respondent=respondent)
        return reply.conversation_id, reply.prompts[0].text

    def readers(self, people: dict, conv: int, ref: str | None) -> set:
        """Who /transcript lets in, checking that /review, /case and exports agree for each."""
        allowed = set()
        for viewer, key in people.items():
            try:
                self.access.transcript(key, conv)
                may = True
            except Refused:
                may = False
            try:
                listed = any(r["id"] == conv for r in self.access.review_queue(key))
            except Refused:
                listed = False
            if viewer == "supervisor" or (viewer == "admin" and ref is not None):
                assert listed == may, f"/review for {viewer}: listed {listed}, /transcript {'allows' if may else 'refuses'}"
            elif viewer == "admin":  # outside a case: demos are not practice to review, but never listed unreadable
                assert may or not listed, "/review lists to the administrator what /transcript refuses"
            else:
                assert not listed, f"/review lists the conversation to {viewer}"
            if ref is not None:
                try:
                    rows = [r for r in self.access.case(key, ref) if r["id"] == conv]
                except Refused:
                    rows = []
                if rows:
                    assert rows[0]["shared"] == may, f"/case for {viewer} says shared={rows[0]['shared']}"
                    if not may:
                        assert rows[0]["scores"] == {}
                try:
                    exported = [d["conversation_id"] for d in self.access.export_case(key, ref)]
                except Refused:
                    exported = []
                assert (conv in exported) == may, f"export for {viewer}: {conv in exported}, /transcript {may}"
                if may and viewer in ("practitioner", "supervisor", "admin"):
                    assert ref in {c["ref"] for c in self.access.cases(key)}, f"/cases for {viewer}"
            if may:
                allowed.add(viewer)
        # the command line (`restorative-bot export`) is run by the people who run the service
        try:
            data = json.loads(export(self.store, session=conv, fmt="json"))
            by_cli = data["conversation_id"] == conv
        except ExportError:
            by_cli = False
        assert by_cli == ("admin" in allowed), f"`export --session` {by_cli}, administrators may read: {'admin' in allowed}"
        if ref is not None:
            data = json.loads(export(self.store, case=ref, fmt="json"))
            ids = [d["conversation_id"] for d in (data if isinstance(data, list) else [data])]
            assert (conv in ids) == ("admin" in allowed), "`export --case` exports what administrators may read"
            try:
                cli = [d["conversation_id"] for d in self.access.export_case("cli", ref)]
            except Refused:
                cli = []
            assert (conv in cli) == ("admin" in allowed)
        return allowed


CASE_PEOPLE = {"answerer": FAMILY, "family": OTHER_FAMILY, "practitioner": WORKER, "supervisor": MANAGER,
               "other_practitioner": OTHER, "admin": ADMIN, "stranger": STRANGER}


def mismatches(world: World, flows) -> list[str]:
    """Every place where a text claims something the access layer does not do."""
    out: list[str] = []

    def compare(where: str, said: set, allowed: set, text: str) -> None:
        if said != allowed:
            out.append(f"{where}: says {sorted(said)} can see it, access allows {sorted(allowed)}\n    {text!r}")

    for flow, respondent in ((f, r) for f in flows for r in admitted(f)):
        states = ("not_asked", "yes", "no") if flow.consent_step else ("not_asked", "no_question")
        access_in: dict[str, set] = {}
        texts: dict[str, tuple[str, str]] = {}
        for state in states:
            ref = f"{flow.id[:20]}-{respondent}-{state}"
            # someone else in the family answers in the same case
            other, _ = world.start(OTHER_FAMILY, "scaling-checkin", ref)
            world.answer_all(OTHER_FAMILY, other, None)
            conv, intro = world.start(FAMILY, flow.id, ref, respondent)
            world.answer_all(FAMILY, conv, {"yes": True, "no": False}.get(state) if state != "no_question" else False)
            access_in[state] = world.readers(CASE_PEOPLE, conv, ref)
            mydata = next(c["who_can_see"] for c in world.access.mydata(FAMILY)["conversations"] if c["id"] == conv)
            compare(f"{flow.id} for {respondent} /mydata ({state})", claims(mydata)[0], access_in[state], mydata)
            texts["intro"] = ("intro", intro)
        if flow.consent_step is None:
            access_in["yes"] = access_in["no_question"]
        try:
            code, invite_id = world.access.invite(WORKER, flow.id, f"{flow.id[:20]}-{respondent}-invite", respondent)
        except (Refused, ValueError):
            code = None  # a flow that cannot be sent as a link (a worker-present session)
        if code is not None:
            view = world.access.open_invite(STRANGER, code)
            texts["invitation"] = ("invitation", world.access.invitation(view))
            if respondent == "child":
                assert "Telegram keeps a copy of this chat" in texts["invitation"][1]
            else:
                assert "not end-to-end encrypted" in texts["invitation"][1]
        for label, text in texts.values():
            if flow.consent_step and "someone is not safe" not in text:  # never a promise of secrecy
                out.append(f"{flow.id} for {respondent} {label}: keeps answers private until consent, but does not say that "
                           f"someone not being safe is passed on\n    {text!r}")
            now, if_yes = claims(text)
            compare(f"{flow.id} for {respondent} {label} (before consent)", now, access_in["not_asked"], text)
            compare(f"{flow.id} for {respondent} {label} (if they say yes)", if_yes, access_in["yes"], text)
    return out


@pytest.fixture
def world(store, library):
    return World(store, library)


def test_every_flow_says_who_sees_the_answers_exactly_as_access_allows(world, library):
    flows = list(library)
    assert len(flows) >= 7 and {"three-houses", "fgc-pre-conference"} <= {f.id for f in flows}
    assert mismatches(world, flows) == []


def test_the_demo_says_only_the_person_and_the_administrators_see_it(world, library):
    conv, intro = world.start(DEMO, "scaling-checkin", None)
    world.answer_all(DEMO, conv, False)
    people = {"answerer": DEMO, "practitioner": WORKER, "supervisor": MANAGER, "other_practitioner": OTHER,
              "admin": ADMIN, "stranger": STRANGER}
    allowed = world.readers(people, conv, None)
    assert allowed == {"answerer", "admin"}
    assert claims(intro) == (allowed, allowed), intro
    mydata = world.access.mydata(DEMO)["conversations"][0]["who_can_see"]
    assert claims(mydata)[0] == allowed, mydata
    closing = [t["text"] for t in world.store.transcript(conv) if t["direction"] == "out"][-1]
    assert claims(closing)[0] == allowed, closing
    assert "worker" not in closing and "practitioner" not in closing


def test_a_rehearsal_says_the_supervisor_sees_it(world, library):
    conv, intro = world.start(WORKER, "restorative-rehearsal", None)
    world.answer_all(WORKER, conv, False)
    people = {"answerer": WORKER, "supervisor": MANAGER, "other_practitioner": OTHER, "admin": ADMIN,
              "stranger": STRANGER}
    allowed = world.readers(people, conv, None)
    assert allowed == {"answerer", "supervisor", "admin"}
    assert claims(intro) == (allowed, allowed), intro


def test_a_wrong_consent_sentence_is_caught(world, library, monkeypatch):
    """The invitation text of the first release ("seen by {practitioner} and their
    supervisor") put back for flows with a consent question: the matrix must fail."""
    intro = messages()["privacy"]["intro"]
    for regime in ("first_then_more", "you_first"):
        for variant in list(intro[regime]):
            monkeypatch.setitem(intro[regime], variant, "Your answers will be seen by your worker and their supervisor.")
    found = mismatches(world, [library.get("three-houses"), library.get("fgc-pre-conference")])
    assert any(m.startswith("three-houses for child intro (before consent)") for m in found), found
    assert any(m.startswith("fgc-pre-conference for adult invitation (before consent)") for m in found), found
    assert any(m.startswith("fgc-pre-conference for young_person intro (before consent)") for m in found), found


def test_after_no_to_sharing_mydata_and_review_leave_the_supervisor_out(world):
    """The reproduced bug: after the child's No, /mydata listed the supervisor and /review
    listed a transcript that /transcript refused."""
    conv, _ = world.start(FAMILY, "three-houses", "TH-1")
    assert world.answer_all(FAMILY, conv, False) == "completed"
    who = next(c["who_can_see"] for c in world.access.mydata(FAMILY)["conversations"] if c["id"] == conv)
    assert who == "Who can see it: you and Sam Patel (your worker)."
    assert conv not in [r["id"] for r in world.access.review_queue(MANAGER)]
    with pytest.raises(Refused):
        world.access.transcript(MANAGER, conv)


def test_a_session_on_the_workers_device_is_only_for_flows_the_worker_may_read(world, library):
    """/with: the person answers on the worker's own device, the worker beside them seeing every
    word. So it is refused for a flow that promises nobody, the worker included, reads the
    answers until the person agrees; for every other flow the worker may read them from the
    start, and the intro, where it says who sees the answers, names the worker."""
    refused, started = [], []
    refs = iter(range(1, 1000))
    for flow in library:
        for respondent in [r for r in admitted(flow) if r != "practitioner"]:
            def start(person_id, flow_id, case_id, who, present_id):
                return world.service.start(person_id, flow_id, case_id=case_id, respondent=who,
                                           present_id=present_id).conversation_id
            try:
                conv = world.access.start_with(WORKER, f"W-{next(refs)}", flow.id, start, respondent)
            except ValueError:
                refused.append(flow.id)
                continue
            started.append(flow.id)
            assert world.access.can_read(WORKER, conv), flow.id
            intro = [t["text"] for t in world.store.transcript(conv) if t["direction"] == "out"][0]
            if SEEING.search(intro):
                assert "practitioner" in claims(intro)[0], (flow.id, intro)
    nobody = {f.id for f in library if f.consent_step is not None and f.without_consent == "nobody"}
    assert nobody and set(refused) == nobody
    assert "three-houses" in started and not nobody & set(started)
