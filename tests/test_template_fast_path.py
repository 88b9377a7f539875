"""Flow text and conditions of the common shapes (``{{ answers.x }}``, ``{{ shown.x }}``,
``{{ answers.x + 1 }}``, ``answer <= 1``, ``and``/``or``/``not``, ``in``) are evaluated
without Jinja's machinery (bot/engine/templating.py, issue 18: 20-30 us a render). Every
result must be exactly Jinja's: each case below is worked out both ways, the fast path
(the parsed tree given) and Jinja alone (no tree), and the two must agree; the shapes
claimed as fast must really take the fast path."""

from __future__ import annotations

import pytest

from bot.engine import templating
from bot.engine.runner import _Shown
from bot.engine.templating import compile_condition, compile_template, parse_expression, parse_template
from tests.conftest import flow_from

FLOW = flow_from("""id: fast
version: 1
title: Fast
audience: family
steps:
  - id: q1
    ask: Who?
    type: choice
    options: [Mum, Dad]
  - id: q2
    ask: How many?
    type: number
  - id: items
    ask: A step whose id is a dict method
    type: text
  - id: q3
    ask: Which?
    type: multi
    options: [School, Home]
""")

ANSWERS = [
    {"q1": "Mum", "q2": 6, "items": "an answer", "q3": ["School", "Home"]},
    {"q1": "Dad", "q2": 0},
    {"q2": None},
    {"q2": True},
    {"q2": 2 ** 70},
    {"q2": "7"},
    {"q2": 1.5},
    {},
]


def _context(answers: dict, answer=None) -> dict:
    return {"answers": answers, "answer": answer, "shown": _Shown(FLOW, answers)}


TEMPLATES = [
    ("What puts you at {{ answers.q2 }} and not lower?", True),
    ("At {{ answers.q2 + 1 }}, or {{ answers.q2 - 1 }}, or {{ 1 + answers.q2 }}?", True),
    ("What helped, {{ shown.q1 }}? ({{ shown['q1'] }}, {{ answers['q1'] }})", True),
    ("{{ answers.q3 }} / {{ shown.q3 }} / {{ answers.items }} / {{ answers['items'] }}", True),
    ("{{ answers.keys }}{{ answers.missing }}", True),
    ("Nothing but {{ 'words' }} and {{ 3 }}", True),
    ("{% if answers.q2 %}some{% endif %}", False),
    ("{{ answers.q2 * 2 }}", False),
    ("{{ answers.q1 | upper }}", False),
]


@pytest.mark.parametrize("source,fast", TEMPLATES)
def test_a_template_reads_the_same_on_the_fast_path_as_through_jinja(source, fast):
    tree = parse_template(source)
    assert (templating._fast_template(tree) is not None) == fast
    quick, jinja = compile_template(source, tree), compile_template(source)
    for answers in ANSWERS:
        assert quick(_context(answers)) == jinja(_context(answers)), (source, answers)


CONDITIONS = [
    ("answer <= 1", True),
    ("answer == 'Mum'", True),
    ("answers.q2 >= 5 and answers.q1 != 'Dad'", True),
    ("not answers.q2 or answer", True),
    ("0 < answers.q2 < 10", True),
    ("'School' in answers.q3", True),
    ("answers.q1 in ['Mum', 'Carer'] and answers.q1 not in ('Dad',)", True),
    ("answers.q2 + 1 > 6", True),
    ("answers.items == 'an answer'", True),
    ("answers.missing", True),
    ("true", True),
    ("answer is defined", False),
    ("answers.q2 * 2 > 6", False),
]


@pytest.mark.parametrize("source,fast", CONDITIONS)
def test_a_condition_decides_the_same_on_the_fast_path_as_through_jinja(source, fast):
    tree = parse_expression(source)
    assert (templating._fast_expression(tree) is not None) == fast
    quick, jinja = compile_condition(source, tree), compile_condition(source)
    for answers in ANSWERS:
        for answer in (None, 0, 1, 2, "Mum", "1", True, [1], 1.0):
            ctx = _context(answers, answer)
            assert quick(ctx) is jinja(_context(answers, answer)), (source, answers, answer)


def test_the_fast_path_is_what_a_loaded_flow_uses():
    """The loader hands its parsed trees over, so flows get the fast path (and stay right)."""
    flow = flow_from("""id: loaded
version: 1
title: Loaded
audience: family
steps:
  - id: scale
    ask: Where are things now?
    type: scale
    min: 0
    max: 10
    next:
      - if: answer <= 1
        goto: low
      - goto: high
  - id: low
    ask: What keeps you going at {{ answers.scale }}?
    type: text
    next: end
  - id: high
    ask: What would be different at {{ answers.scale + 1 }}?
    type: text
""")
    from bot.engine.runner import FlowRunner, Input

    runner = FlowRunner(flow)
    calls = []
    real = templating.ENV.compile_expression
    try:
        templating.ENV.compile_expression = lambda *a, **k: calls.append(a) or real(*a, **k)
        start = runner.start()
        low = runner.step(start.session, Input.from_text("1"))
        high = runner.step(start.session, Input.from_text("7"))
    finally:
        templating.ENV.compile_expression = real
    assert low.prompts[-1].text == "What keeps you going at 1?"
    assert high.prompts[-1].text == "What would be different at 8?"
    assert calls == []  # the branch's condition never went through Jinja
