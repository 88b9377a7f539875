"""Role-play rehearsals: scenarios validated like flows, scripted rehearsals for every
scenario, the service's storage and idempotency, review by a supervisor, the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.access import Access
from bot.config import Config
from bot.engine.library import DEFAULT_FLOWS
from bot.engine.scripts import load_scripts, play
from bot.rehearsal.scenario import load_scenario_text, validate_scenarios
from bot.rehearsal.service import RehearsalService
from bot.store import Store
from bot.testing.drivers import RehearsalDriver

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS, SCRIPT_ERRORS = load_scripts([DEFAULT_FLOWS / "tests"], rehearsals=True)
SCENARIOS, SCENARIO_ERRORS = validate_scenarios()


def test_shipped_scenarios_are_valid_and_cover_the_five_situations():
    assert SCENARIO_ERRORS == []
    assert {s.id: s.model for s in SCENARIOS} == {
        "harmer-lunch-queue": "restorative", "harmed-group-chat": "restorative", "fgc-preparation": "fgc",
        "sf-first-session": "solution_focused", "sf-follow-up": "solution_focused",
    }
    follow_up = next(s for s in SCENARIOS if s.id == "sf-follow-up")
    assert follow_up.stages[0] == "sf_better"
    first = next(s for s in SCENARIOS if s.id == "sf-first-session")
    assert first.stages[:2] == ("sf_best_hopes", "sf_scaling")


def test_every_scenario_has_scripted_rehearsals_that_open_up_and_close_down():
    assert SCRIPT_ERRORS == []
    by_scenario = {}
    for conv in SCRIPTS:
        by_scenario.setdefault(conv.flow, []).append(conv)
    assert set(by_scenario) == {s.id for s in SCENARIOS}
    for scenario_id, convs in by_scenario.items():
        assert len(convs) >= 2, scenario_id
        # one ends with every stage covered, one with a summary naming missed stages
        texts = [" ".join(line.text for line in c.script) for c in convs]
        assert any("You covered every stage." in t for t in texts), scenario_id
        assert any("Stages you missed:" in t for t in texts), scenario_id


@pytest.mark.parametrize("conv", SCRIPTS, ids=lambda c: f"{c.flow}: {c.name}")
def test_scripted_rehearsal(conv):
    outcome = play(conv, RehearsalDriver.in_memory())
    assert outcome.ok, "\n".join(outcome.failures)


BASE = """id: t
title: T
model: restorative
situation: S
persona: P
opening: O
stages: [rp_what_happened]
rubric: {impact: [rp_affected], future: [rp_repair]}
replies:
  rp_what_happened: [a]
  why: [b]
  blaming: [c]
  lecture: [d]
  leading: [e]
  multiple: [f]
  closed: [g]
  open: [h]
  repeat: [i]
"""


@pytest.mark.parametrize(
    "change, expected",
    [
        (("model: restorative", "model: restorativ"), "t.yaml:3:8: model must be one of: restorative, solution_focused, fgc"),
        (("stages: [rp_what_happened]", "stages: [rp_what_hapened]"),
         "t.yaml:7:10: 'rp_what_hapened' is not a practice stage; did you mean 'rp_what_happened'?"),
        (("  why: [b]\n", ""), "t.yaml:10:3: replies needs 'why' (what the persona says to a why question)"),
        (("  closed: [g]", "  closd: [g]"), "t.yaml:16:3: 'closd' is not a coach label or practice stage; did you mean 'closed'?"),
        (("  rp_what_happened: [a]", "  rp_what_happened:\n    - sey: a"),
         "t.yaml:11:7: unknown key 'sey' in a reply; did you mean 'say'?"),
        (("persona: P", "persona: [P]"), "t.yaml:5:10: 'persona' must be text; put quotes around it if it starts with a special character"),
        (("opening: O", "opening: O\n\tx: 1"), "t.yaml:7:1: a tab character is used for indentation; YAML needs spaces (use two spaces per level)"),
    ],
)
def test_bad_scenarios_say_where_and_how_to_fix(change, expected):
    old, new = change
    assert old in BASE
    scenario, errors = load_scenario_text(BASE.replace(old, new), "t.yaml")
    assert scenario is None
    assert str(errors[0]) == expected


def test_base_scenario_loads():
    scenario, errors = load_scenario_text(BASE, "t.yaml")
    assert errors == [] and scenario.stages == ("rp_what_happened",)


def test_validate_checks_scenarios_and_coach_rules(tmp_path):
    folder = tmp_path / "rehearsal" / "scenarios"
    folder.mkdir(parents=True)
    (folder / "bad.yaml").write_text(BASE.replace("model: restorative", "model: x"), encoding="utf-8")
    (tmp_path / "rehearsal" / "coach.yaml").write_text("version: 1\nmistakes:\n  why:\n    patterns: ['(']\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bot", "validate", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        f"{tmp_path}/rehearsal/coach.yaml:4:16: this pattern is not a valid regular expression (missing ), unterminated subpattern at position 0); or write it as a phrase instead",
        f"{folder}/bad.yaml:3:8: model must be one of: restorative, solution_focused, fgc",
    ]
    shipped = subprocess.run([sys.executable, "-m", "bot", "validate"], capture_output=True, text=True, cwd=ROOT)
    assert shipped.returncode == 0, shipped.stdout


@pytest.fixture
def world(tmp_path, library):
    store = Store(tmp_path / "r.db")
    access = Access(store, library, Config(roles={"supervisor": [2], "practitioner": [3]}, teams={2: [3]}))
    access.seed()
    service = RehearsalService(store)
    return store, access, service, store.person("tg:3")


def test_a_rehearsal_is_stored_like_a_transcript_and_reviewed_like_one(world):
    store, access, service, me = world
    service.start(me, "harmer-lunch-queue", input_key="k1")
    for i, text in enumerate(["5", "Why did you hit Josh?", "What happened?", "/end", "6"], 2):
        reply = service.handle(me, text, input_key=f"k{i}")
    conv_id = reply.conversation_id
    assert reply.status == "completed"
    answers = {a["step_id"]: a for a in store.answers(conv_id)}
    assert list(answers) == ["confidence_before", "q1", "q2", "confidence_after"]
    assert answers["q1"]["raw"] == "Why did you hit Josh?"
    assert answers["q1"]["value"] == {"labels": ["why"], "suggestion": "What happened with Josh?"}
    lines = [(t["direction"], t["text"]) for t in store.transcript(conv_id)]
    assert ("in", "Why did you hit Josh?") in lines and ("out", "Kai: Because he deserved it. *looks at the floor*") in lines
    assert [r["id"] for r in access.review_queue("tg:2")] == [conv_id]
    access.comment("tg:2", conv_id, "Start with what happened.", "q1")
    assert [c["step_id"] for c in store.comments(conv_id)] == ["q1"]
    assert store.alerts() == []


def test_a_repeated_input_changes_nothing(world):
    store, _, service, me = world
    service.start(me, "sf-follow-up", input_key="a")
    service.handle(me, "5", input_key="b")
    first = service.handle(me, "What's been better?", input_key="c")
    again = service.handle(me, "What's been better?", input_key="c")
    assert again.duplicate and again.messages == first.messages
    conv = store.active_rehearsal(me)
    assert len(conv.session["turns"]) == 1
    assert service.start(me, "sf-follow-up", input_key="a").duplicate


def test_a_rehearsal_is_never_a_flows_active_conversation(world):
    store, _, service, me = world
    service.start(me, "harmed-group-chat")
    assert store.active_conversation(me) is None and store.active_rehearsal(me) is not None
    service.start(me, "sf-first-session")  # one at a time: the first is stopped
    assert [c["status"] for c in store.conversations(person_id=me)] == ["cancelled", "rehearsing"]


def test_rehearse_in_the_terminal(tmp_path):
    db = tmp_path / "t.db"
    questions = "4\nWhy did you hit Josh?\n/hint\nWhat happened?\n/end\n6\n"
    out = subprocess.run([sys.executable, "-m", "bot", "rehearse", "harmer-lunch-queue", "--db", str(db), "--as", "alex"],
                         input=questions, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Kai: Because he deserved it." in out.stdout
    assert "Try: “What happened with Josh?”" in out.stdout
    assert "Summary: Rehearsal: Kai, who hit another pupil" in out.stdout
    assert "Confidence (0 to 10): 4 before, 6 after." in out.stdout
    chosen = subprocess.run([sys.executable, "-m", "bot", "rehearse", "--db", str(db)], input="nope\n5\n5\n",
                            capture_output=True, text=True, cwd=ROOT)
    assert "There is no rehearsal called “nope”." in chosen.stdout and "Tyler: Hiya." in chosen.stdout
    unknown = subprocess.run([sys.executable, "-m", "bot", "rehearse", "nope", "--db", str(db)], input="",
                             capture_output=True, text=True, cwd=ROOT)
    assert unknown.returncode == 2 and "There is no rehearsal called “nope”." in unknown.stdout


def test_test_flows_plays_the_scripted_rehearsals_too():
    # The rehearsal folder named on its own (the whole of flows/tests is played script by script
    # in test_flow_scripts.py): every rehearsal played, none read as a flow's script.
    out = subprocess.run([sys.executable, "-m", "bot", "test-flows", "flows/tests/rehearsal"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-2000:]
    lines = out.stdout.splitlines()
    played = [line for line in lines if line.startswith("ok   rehearsal ")]
    assert len(played) == len(SCRIPTS) and lines[-1] == f"{len(SCRIPTS)} passed, 0 failed"
    # files named one by one: each played by its own kind, a flow's script and a rehearsal's
    both = subprocess.run([sys.executable, "-m", "bot", "test-flows", "flows/tests/rehearsal/sf-follow-up.yaml",
                           "flows/tests/three-houses.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert both.returncode == 0, both.stdout[-2000:]
    kinds = [line.split(":")[0] for line in both.stdout.splitlines() if line.startswith("ok ")]
    assert set(kinds) == {"ok   three-houses", "ok   rehearsal sf-follow-up"}
    assert "needs" not in both.stdout  # no "a script file needs 'flow: ...'" for the other kind
