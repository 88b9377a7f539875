"""Issue 13: the linter warns about a loop of say steps that never asks anything."""

import subprocess
import sys

from bot.engine.loader import load_flow_text
from bot.engine.runner import FlowRunner, replay

LOOP = """\
id: loopy
version: 1
title: Loopy
audience: family
steps:
  - id: how
    ask: How are things?
    next:
      - if: answer == 'loop'
        goto: first_say
      - goto: end
  - id: first_say
    say: Thank you.
  - id: second_say
    say: Let us think again.
    next: first_say
"""


def test_a_cycle_of_say_steps_is_a_warning_with_its_position():
    flow, errors = load_flow_text(LOOP, "loopy.yaml")
    assert errors == []
    assert [str(w) for w in flow.warnings] == [
        "loopy.yaml:12:5: warning: steps 'first_say', 'second_say' only say things and lead back to each other, so the"
        " person would see the same messages again with nothing to answer; send one of them on to a question or to 'end'"]
    # the runner still stops rather than spin
    result = replay(FlowRunner(flow), ["loop"])
    assert result.status == "completed"


def test_a_say_step_leading_to_itself_and_loops_through_a_question_are_told_apart():
    selfloop = LOOP.replace("next: first_say", "next: second_say")
    flow, _ = load_flow_text(selfloop, "loopy.yaml")
    assert [w.message for w in flow.warnings] == [
        "warning: step 'second_say' only says something and leads back to itself; send it on to a question or to 'end'"]
    # a loop that goes through a question is fine: something is asked each time round
    through_question = LOOP.replace("next: first_say", "next: how")
    flow, _ = load_flow_text(through_question, "loopy.yaml")
    assert flow.warnings == []


def test_validate_prints_the_warning_and_still_passes(tmp_path):
    path = tmp_path / "loopy.yaml"
    path.write_text(LOOP)
    proc = subprocess.run([sys.executable, "-m", "bot", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"{path}:12:5: warning: steps 'first_say', 'second_say' only say things and lead back to each other, so the"
        " person would see the same messages again with nothing to answer; send one of them on to a question or to 'end'",
        "1 flow(s) OK."]


def test_the_shipped_library_has_no_say_only_loop(library):
    assert [str(w) for f in library for w in f.warnings if "only say" in w.message] == []
