"""The engine: branching, navigation, templating and the sandbox."""

import pytest

from bot.engine.flow import CANCELLED, END
from bot.engine.runner import FlowRunner, Input, Session, replay
from tests.conftest import flow_from

SCALING = """
id: mini-scaling
version: 1
title: Mini scaling
audience: family
intro: Hello. Your practitioner will see your answers. You can stop at any time.
steps:
  - id: best_hopes
    ask: What are your best hopes?
  - id: scale_now
    ask: Where are things now?
    type: scale
    validate:
      - if: answer == 5
        error: Five is a fine answer, but for this test please pick another.
    next:
      - if: answer <= 1
        goto: coping
      - goto: not_lower
  - id: coping
    ask: What keeps you going?
    next: extra
  - id: not_lower
    ask: What puts you at {{ answers.scale_now }} and not lower, given "{{ answers.best_hopes }}"?
  - id: one_up
    ask: What would be different at {{ answers.scale_now + 1 }}?
  - id: extra
    ask: Anything else?
    optional: true
  - id: bye
    say: Thank you{% if answers.extra %}, and thanks for the extra{% endif %}.
"""


@pytest.fixture
def runner():
    return FlowRunner(flow_from(SCALING))


def texts(result):
    return [p.plain() for p in result.prompts]


def test_start_shows_intro_then_the_first_question(runner):
    r = runner.start()
    assert r.prompts[0].kind == "info" and "stop at any time" in r.prompts[0].text
    assert r.prompts[1].text == "What are your best hopes?" and r.prompts[1].progress == (1, None)
    assert r.session.state == "best_hopes"


def test_high_score_branch_and_templating(runner):
    r = replay(runner, ["to get on", "7"])
    assert r.session.state == "not_lower"
    assert r.prompts[0].text == 'What puts you at 7 and not lower, given "to get on"?'
    r = runner.step(r.session, Input.from_text("my job"))
    assert r.prompts[0].text == "What would be different at 8?"


def test_low_score_branch_skips_preferred_future(runner):
    r = replay(runner, ["hopes", "1"])
    assert r.session.state == "coping"
    r = runner.step(r.session, Input.from_text("my kids"))
    assert r.session.state == "extra"


def test_progress_counts_questions_asked_and_shows_no_total_where_branches_differ(runner):
    # the high-score path asks 5 questions, the low-score branch 4: no total is shown
    r = replay(runner, ["hopes", "7"])
    assert r.prompts[0].progress == (3, None) and r.prompts[0].plain().startswith("Question 3\n")
    r = replay(runner, ["hopes", "0"])
    assert r.prompts[0].progress == (3, None)
    r = runner.step(r.session, Input.from_text("kids"))
    assert r.prompts[0].progress == (4, None)
    r = replay(runner, ["hopes", "0", "/back"])
    assert r.prompts[0].progress == (2, None)  # back to the question asked second


FIXED = """
id: fixed
version: 1
title: Fixed
audience: family
steps:
  - id: a
    ask: A?
    type: yesno
    next:
      - if: answer
        goto: b1
      - goto: b2
  - id: b1
    ask: B1?
    next: c
  - id: b2
    ask: B2?
  - id: said
    say: Thanks.
  - id: c
    ask: C?
"""


def test_progress_shows_the_total_when_every_path_asks_the_same_number():
    runner = FlowRunner(flow_from(FIXED))
    assert runner.total == 3
    for first in ("yes", "no"):
        r = runner.start()
        seen = [r.prompts[-1].progress]
        for text in (first, "x", "y"):
            r = runner.step(r.session, Input.from_text(text))
            seen += [p.progress for p in r.prompts if p.kind == "question"]
        assert seen == [(1, 3), (2, 3), (3, 3)], first
    assert "Question 2 of 3\nB1?" in [p.plain() for p in replay(runner, ["yes"]).prompts]


def test_no_total_when_the_flow_loops_and_no_counter_for_a_child():
    loop = FIXED.replace("    next: c\n", "    next:\n      - if: answer == 'again'\n        goto: a\n      - goto: c\n")
    assert FlowRunner(flow_from(loop)).total is None
    assert replay(FlowRunner(flow_from(loop)), ["yes"]).prompts[0].progress == (2, None)
    child = FlowRunner(flow_from(FIXED.replace("audience: family", "audience: child")))
    assert child.start().prompts[-1].progress is None
    assert not child.start().prompts[-1].plain().startswith("Question")


def test_validate_rule_refuses_and_reasks(runner):
    r = replay(runner, ["hopes", "5"])
    assert not r.accepted and r.session.state == "scale_now"
    assert texts(r)[0] == "Five is a fine answer, but for this test please pick another."
    assert r.prompts[1].step_id == "scale_now"


def test_back_keeps_earlier_answer_as_default_and_can_change_branch(runner):
    r = replay(runner, ["hopes", "7", "/back"])
    assert r.session.state == "scale_now"
    assert r.prompts[0].default == "7"
    assert "Your earlier answer: “7”" in r.prompts[0].plain()
    r = runner.step(r.session, Input.from_text("0"))
    assert r.session.state == "coping"
    r = replay(runner, ["hopes", "7", "/back", "0", "kids", "/skip"])
    assert r.status == "completed"
    assert "not_lower" not in r.session.answers and r.retracted == []
    r = replay(runner, ["hopes", "7", "good", "/back", "/back", "0", "kids", "/skip"])
    assert r.status == "completed" and r.retracted == ["not_lower"]


def test_back_on_first_question_explains(runner):
    r = replay(runner, ["/back"])
    assert "nothing to go back to" in r.prompts[0].text and r.session.state == "best_hopes"


def test_skip_only_optional(runner):
    r = replay(runner, ["/skip"])
    assert "can't be skipped" in r.prompts[0].text and not r.accepted
    r = replay(runner, ["hopes", "0", "kids", "/skip"])
    assert r.status == "completed"
    assert r.session.answers["extra"] is None
    assert r.prompts[-1].text == "Thank you."


def test_empty_answer_to_optional_step_offers_skip(runner):
    r = replay(runner, ["hopes", "0", "kids", "   "])
    assert "/skip" in r.prompts[0].text


def test_say_step_template_sees_answers(runner):
    r = replay(runner, ["hopes", "0", "kids", "more"])
    assert r.prompts[-1].text == "Thank you, and thanks for the extra."


def test_repeat_and_help(runner):
    r = replay(runner, ["hopes", "/repeat"])
    assert r.prompts[0].step_id == "scale_now" and not r.accepted
    r = replay(runner, ["hopes", "/help"])
    assert "/back" in r.prompts[0].text and r.prompts[1].step_id == "scale_now"


def test_cancel_ends_and_later_input_changes_nothing(runner):
    r = replay(runner, ["hopes", "/cancel"])
    assert r.status == "cancelled" and r.session.state == CANCELLED
    r2 = runner.step(r.session, Input.from_text("7"))
    assert r2.closed and r2.prompts == [] and r2.session.state == CANCELLED


def test_step_is_pure(runner):
    r = replay(runner, ["hopes"])
    before = Session.from_json(r.session.to_json())
    runner.step(r.session, Input.from_text("7"))
    assert r.session.to_json() == before.to_json()


def test_session_round_trips_through_json(runner):
    r = replay(runner, ["hopes", "7"])
    assert Session.from_json(r.session.to_json()) == r.session


def test_finished_message_when_flow_ends_on_a_question():
    runner = FlowRunner(flow_from("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n"))
    r = replay(runner, ["answer"])
    assert r.status == "completed" and r.session.state == END
    assert r.prompts[-1].text == "Thank you. Your answers are saved."


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}",
    "{{ answers.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ answers['__class__'] }}",
])
def test_templates_cannot_escape_the_sandbox_lint(template):
    from bot.engine.loader import load_flow_text

    flow, errors = load_flow_text(
        f"id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: \"{template}\"\n", "x.yaml")
    assert flow is None and any("not allowed" in e.message for e in errors)


def test_sandbox_refuses_at_render_time_too():
    from jinja2.exceptions import SecurityError

    from bot.engine.templating import ENV

    with pytest.raises(SecurityError):
        ENV.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()
    with pytest.raises(SecurityError):
        ENV.from_string("{{ answers.update({'x': 1}) }}").render(answers={})


def test_conditions_on_a_skipped_answer_are_false_not_errors():
    runner = FlowRunner(flow_from("""
id: x
version: 1
title: T
audience: family
steps:
  - id: n
    ask: number?
    type: number
    optional: true
  - id: branch
    ask: ok?
    type: yesno
    next:
      - if: answers.n > 3
        goto: big
      - goto: small
  - id: big
    ask: big
    next: end
  - id: small
    ask: small
"""))
    r = replay(runner, ["/skip", "yes"])
    assert r.session.state == "small"


def test_one_machine_per_flow_whatever_the_number_of_conversations(runner):
    sessions = [runner.start().session for _ in range(50)]
    for s in sessions:
        runner.step(s, Input.from_text("x"))
    assert len(runner.machine.models) == 1


def test_the_move_table_fires_every_transition_as_the_machine_does(library, monkeypatch):
    """FlowRunner fires triggers from a table read once from its transitions machine (no event
    objects per step). Every scripted conversation of every shipped flow is played with each
    move worked out both ways: the table and the machine must agree on every one."""
    from bot.engine.library import DEFAULT_FLOWS
    from bot.engine.scripts import load_scripts, play
    from bot.safeguarding import SafeguardingConfig
    from bot.testing.drivers import ServiceDriver

    fired, differ = [], []
    table_fire = FlowRunner._fire

    def both(self, state, trigger, context):
        assert self._moves is not None and (state, trigger) in self._moves, (self.flow.id, state, trigger)
        by_table = table_fire(self, state, trigger, context)
        by_machine = self._fire_machine(state, trigger, context)
        fired.append((self.flow.id, state, trigger))
        if by_table != by_machine:
            differ.append((self.flow.id, state, trigger, by_table, by_machine))
        return by_machine

    monkeypatch.setattr(FlowRunner, "_fire", both)
    conversations, errors = load_scripts([DEFAULT_FLOWS / "tests"])
    assert errors == []
    detector = SafeguardingConfig.load()
    for conv in conversations:
        play(conv, ServiceDriver.in_memory(library, detector))
    assert differ == []
    assert {f for f, _, _ in fired} == {f.id for f in library}  # every shipped flow moved
    assert {t for _, _, t in fired} == {"advance", "cancel"}


def test_the_move_table_takes_the_first_branch_that_holds():
    runner = FlowRunner(flow_from(SCALING))
    ctx = runner.context
    assert runner._fire("scale_now", "advance", ctx({"scale_now": 1}, 1)) == "coping"
    assert runner._fire("scale_now", "advance", ctx({"scale_now": 7}, 7)) == "not_lower"
    assert runner._fire("coping", "advance", ctx({})) == "extra"
    assert runner._fire("extra", "cancel", ctx({})) == CANCELLED
    assert runner._fire("bye", "advance", ctx({})) == END
    for state, trigger in runner._moves:
        for answers in ({}, {"scale_now": 0}, {"scale_now": 9}):
            value = answers.get("scale_now")
            assert runner._fire(state, trigger, ctx(answers, value)) == \
                runner._fire_machine(state, trigger, ctx(answers, value)), (state, trigger, answers)


def test_words_without_markup_are_shown_without_building_a_context(monkeypatch):
    """A plain question or say text, and a move with no condition, need no template context
    (five objects per build, several builds a step): only templates and conditions get one."""
    runner = FlowRunner(flow_from(SCALING))
    built = []
    make = runner.context
    monkeypatch.setattr(runner, "context", lambda *a, **k: built.append(a) or make(*a, **k))
    session = runner.start().session  # the intro has no markup; best_hopes is plain
    built.clear()
    result = runner.step(session, Input.from_text("Calmer mornings"))  # to scale_now: plain, no condition
    assert result.prompts[0].text == "Where are things now?" and built == []
    result = runner.step(result.session, Input.from_text("7"))  # a branch condition, then a template
    assert result.prompts[0].text.startswith("What puts you at 7 and not lower") and len(built) >= 2
