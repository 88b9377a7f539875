"""Issue 15: the date question type — UK dates, and a friendly re-ask on a bad one."""

from datetime import date

import pytest

from bot.engine.dates import BadDate, fixed_today, parse_date, shown

MONDAY = date(2026, 1, 12)


@pytest.mark.parametrize("text, want", [
    ("12/3", date(2026, 3, 12)),             # day first, as in the UK
    ("12/03/2026", date(2026, 3, 12)),
    ("3-4-26", date(2026, 4, 3)),
    ("1/1", date(2027, 1, 1)),               # no year: the next one to come
    ("12 March", date(2026, 3, 12)),
    ("12th of March", date(2026, 3, 12)),
    ("Friday 14 March", date(2026, 3, 14)),
    ("Friday, 14th March 2026", date(2026, 3, 14)),
    ("March 14", date(2026, 3, 14)),
    ("14 sept", date(2026, 9, 14)),
    ("today", MONDAY),
    ("tomorrow", date(2026, 1, 13)),
    ("Tuesday", date(2026, 1, 13)),
    ("next Tuesday", date(2026, 1, 13)),
    ("next monday", date(2026, 1, 19)),      # today is Monday: the next one
    ("Tuesday week", date(2026, 1, 20)),
    ("in two weeks", date(2026, 1, 26)),
    ("in 3 days", date(2026, 1, 15)),
    ("in a fortnight", date(2026, 1, 26)),
    ("next week", date(2026, 1, 19)),
    ("next month", date(2026, 2, 12)),
    ("  Next TUESDAY. ", date(2026, 1, 13)),
])
def test_uk_dates(text, want):
    assert parse_date(text, MONDAY) == want


@pytest.mark.parametrize("text, rule", [
    ("whenever", "date"), ("31/2", "date"), ("soon", "date"), ("13/13", "date"), ("", "date"),
    ("3/4/2025", "date_past"), ("1/1/2030", "date_far"), ("Friday 14 Smarch", "date"), ("funday", "date"),
])
def test_bad_dates_say_why(text, rule):
    with pytest.raises(BadDate) as e:
        parse_date(text, MONDAY)
    assert e.value.rule == rule


def test_shown_and_fixed_today():
    assert shown("2026-03-14") == "Saturday 14 March 2026"
    with fixed_today(MONDAY):
        assert parse_date("tomorrow") == date(2026, 1, 13)


# -- issue 13: the brief's examples, and past dates only where the flow says so ----------------
SATURDAY_5_DEC = date(2026, 12, 5)


@pytest.mark.parametrize("text, want", [
    ("next Tuesday", date(2026, 12, 8)), ("3/12", date(2027, 12, 3)), ("3 December", date(2027, 12, 3)),
    ("10/12", date(2026, 12, 10)), ("10 December", date(2026, 12, 10)),
])
def test_the_issue_13_examples_in_the_future(text, want):
    assert parse_date(text, SATURDAY_5_DEC) == want


@pytest.mark.parametrize("text, want", [
    ("3/12", date(2026, 12, 3)),             # the nearest 3 December: two days ago
    ("3 December", date(2026, 12, 3)),
    ("10 December", date(2026, 12, 10)),     # still the nearest
    ("20 June", date(2026, 6, 20)),          # nearer than next June
    ("2 January", date(2027, 1, 2)),         # nearer than last January
    ("yesterday", date(2026, 12, 4)), ("last Tuesday", date(2026, 12, 1)), ("last saturday", date(2026, 11, 28)),
    ("two weeks ago", date(2026, 11, 21)), ("3 days ago", date(2026, 12, 2)), ("1/3/2020", date(2020, 3, 1)),
    ("next Tuesday", date(2026, 12, 8)),
])
def test_past_dates_where_the_flow_allows_them(text, want):
    assert parse_date(text, SATURDAY_5_DEC, allow_past=True) == want


@pytest.mark.parametrize("text", ["yesterday", "last Tuesday", "two weeks ago", "1/3/2020"])
def test_past_dates_are_refused_as_past_by_default(text):
    with pytest.raises(BadDate) as e:
        parse_date(text, SATURDAY_5_DEC)
    assert e.value.rule == "date_past"


def test_allow_past_in_a_flow_and_its_lint():
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner, Input
    from tests.conftest import flow_from

    text = """\
id: when
version: 1
title: When
audience: family
steps:
  - id: happened
    ask: When did it happen?
    type: date
    allow_past: true
  - id: meet
    ask: When can we meet?
    type: date
"""
    runner = FlowRunner(flow_from(text))
    with fixed_today(SATURDAY_5_DEC):
        session = runner.start().session
        result = runner.step(session, Input.from_text("3 December"))
        assert result.accepted and result.session.answers["happened"] == "2026-12-03"
        refused = runner.step(result.session, Input.from_text("3 December 2026"))
        assert not refused.accepted and refused.prompts[0].kind == "error"
        assert runner.step(result.session, Input.from_text("3/12")).session.answers["meet"] == "2027-12-03"
    _, errors = load_flow_text(text.replace("allow_past: true", "allow_past: yes please"), "w.yaml")
    assert [str(e) for e in errors] == ["w.yaml:9:17: 'allow_past' must be true or false, not 'yes please'"]
    _, errors = load_flow_text(text.replace("allow_past: true", "allow_past: true\n    remind: {who: person, before: 1d, text: Soon}"), "w.yaml")
    assert [str(e) for e in errors] == ["w.yaml:9:5: a date with a reminder must be in the future; take out 'allow_past' or the 'remind'"]
