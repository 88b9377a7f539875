"""The template sandbox caps what a flow can build, and every author-supplied message is
rendered in it (issue 11, finding 13)."""

from __future__ import annotations

import logging
import tracemalloc

import pytest

from bot.engine.loader import load_flow_text
from bot.engine.runner import FlowRunner, Input
from bot.engine.templating import compile_template
from tests.conftest import flow_from

HEAD = "id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n"
BIG = 100_000_000


def peak_bytes(fn) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", [
    "At {{ answers.q * 100000000 }}",
    "{{ 100000000 * answers.q }}",
    "{{ [answers.q] * 100000000 }}",
    "{{ answers.q.center(100000000) }}",
    "{{ answers.q.ljust(100000000) }}",
    "{{ answers.q.zfill(100000000) }}",
    "{{ (answers.q * 1000).replace('x', answers.q * 1000) }}",
    "{{ (answers.q * 1000)|replace('x', answers.q * 1000) }}",
    "{{ (answers.q * 1000).join(range(1000)|map('string')) }}",
    "{{ range(1000)|join(answers.q * 1000) }}",
    "{{ 7 ** 100000000 }}",
    "{{ '%0100000000d' % 1 }}",
    "{{ '{:>100000000}'.format(1) }}",
    "{{ range(100000000)|list|length }}",
    "{{ (answers.q * 5000) ~ (answers.q * 5000) ~ (answers.q * 5000) ~ (answers.q * 5000) ~ (answers.q * 50000) }}",
])
def test_a_template_cannot_build_anything_large(source, caplog):
    render = compile_template(source)
    with caplog.at_level(logging.WARNING, logger="bot.engine.templating"):
        text, peak = peak_bytes(lambda: render({"answers": {"q": "x"}, "shown": {}, "answer": None}))
    assert peak < 2_000_000, f"{source} allocated {peak:,} bytes"
    assert text == source  # the author's wording rather than a traceback or gigabytes
    assert caplog.records and caplog.records[-1].levelname == "WARNING"


def test_the_cap_is_named_in_the_log(caplog):
    render = compile_template("At {{ answers.q * 100000000 }}")
    with caplog.at_level(logging.WARNING, logger="bot.engine.templating"):
        render({"answers": {"q": "x"}})
    assert "at most 40000 characters" in caplog.records[-1].problem


@pytest.mark.parametrize("source, expected", [
    ("What would be different at {{ answers.n + 1 }}?", "What would be different at 8?"),
    ("{{ answers.q ~ '!' }} {{ answers.q * 3 }} {{ 2 ** 10 }}", "x! xxx 1024"),
    ("{% for i in range(3) %}{{ i }}{% endfor %} {{ range(3)|join(',') }} {{ answers.q|upper }}", "012 0,1,2 X"),
    ("{% if answers.n > 5 %}high{% else %}low{% endif %}", "high"),
])
def test_ordinary_templates_still_work(source, expected):
    assert compile_template(source)({"answers": {"q": "x", "n": 7}}) == expected


def test_output_stops_being_built_at_the_length_shown():
    render = compile_template("{% for i in range(1000) %}{{ answers.q }}{% endfor %}")
    text, peak = peak_bytes(lambda: render({"answers": {"q": "y" * 4000}}))
    assert text == "y" * 4000 and peak < 200_000


@pytest.mark.parametrize("body, words", [
    ("  - id: q\n    ask: Tell me\n  - id: r\n    ask: \"{{ answers.q * 100000000 }}\"\n", "would build"),
    ("  - id: q\n    ask: \"{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}\"\n", "{% macro %} is not available"),
    ("  - id: q\n    ask: \"{% for i in range(9) %}{% for j in range(9) %}x{% endfor %}{% endfor %}\"\n",
     "a loop inside a loop"),
    ("  - id: q\n    ask: \"{{ 'x'|center(9) }}\"\n", "there is no filter 'center'"),
    ("  - id: q\n    ask: Tell me\n    min_length: 5\n    errors:\n      min_length: \"{{ min_length.__class__ }}\"\n",
     "'__class__' is not allowed"),
    ("  - id: q\n    ask: Tell me\n    validate:\n      - if: answer == 'no'\n        error: \"{{ answer * 100000000 }}\"\n",
     "would build"),
])
def test_the_linter_refuses_what_would_build_too_much_with_its_position(body, words):
    flow, errors = load_flow_text(HEAD + body, "f.yaml")
    assert flow is None
    assert any(words in e.message for e in errors), [str(e) for e in errors]
    assert all(str(e).startswith("f.yaml:") and e.line > 5 for e in errors)


def test_error_messages_are_rendered_in_the_sandbox_never_by_str_format():
    flow = flow_from(HEAD + "  - id: q\n    ask: Tell me\n    min_length: 4\n    errors:\n"
                     "      min_length: \"At least {min_length} letters, or {{ min_length }}. {min_length.__class__.__mro__}\"\n"
                     "    validate:\n      - if: answer == 'nope'\n        error: \"You said {{ answer }}; please say more\"\n")
    runner = FlowRunner(flow)
    session = runner.start().session
    short = runner.step(session, Input.from_text("abc"))
    assert short.prompts[0].text == "At least 4 letters, or 4. {min_length.__class__.__mro__}"
    checked = runner.step(session, Input.from_text("nope"))
    assert checked.prompts[0].text == "You said nope; please say more"
