"""Answer parsing: what people type, and the friendly re-ask when it doesn't fit."""

import pytest

from bot.engine.answers import Invalid, error_text, parse
from tests.conftest import flow_from

FLOW = flow_from("""
id: parsing
version: 1
title: Parsing
audience: family
steps:
  - id: scale
    ask: Where are things now?
    type: scale
  - id: number
    ask: How many people live at home?
    type: number
    min: 1
    max: 20
  - id: choice
    ask: Who should come?
    type: choice
    options: [Mum, Dad, {id: nan, label: My Nan}]
  - id: multi
    ask: What do you need?
    type: multi
    options: [Transport, Childcare, Food, Interpreter]
    max_choices: 3
  - id: yesno
    ask: Do you want an advocate?
    type: yesno
  - id: text
    ask: What happened?
    min_length: 3
    max_length: 50
    errors:
      min_length: Tell me a bit more, please.
  - id: code
    ask: Case code?
    pattern: "[A-Z]{2}[0-9]{3}"
""")
S = FLOW.by_id


@pytest.mark.parametrize("text, value", [("7", 7), (" 7 ", 7), ("seven", 7), ("Seven", 7), ("0", 0), ("ten", 10), ("zero", 0)])
def test_scale_accepts_digits_and_words(text, value):
    assert parse(S["scale"], text) == value


@pytest.mark.parametrize("text", ["11", "7.5", "-1", "lots", "", "7 8"])
def test_scale_rejects_with_a_message_naming_the_range(text):
    with pytest.raises(Invalid) as exc:
        parse(S["scale"], text)
    if text:
        assert error_text(S["scale"], exc.value) == "Please choose a whole number from 0 to 10."


def test_number_range_and_words():
    assert parse(S["number"], "three") == 3
    with pytest.raises(Invalid) as exc:
        parse(S["number"], "21")
    assert "1 to 20" in error_text(S["number"], exc.value)


@pytest.mark.parametrize("text, value", [("1", "Mum"), ("mum", "Mum"), ("  DAD ", "Dad"), ("my  nan", "nan"), ("3", "nan"), ("nan", "nan")])
def test_choice_by_number_text_or_id(text, value):
    assert parse(S["choice"], text) == value


def test_choice_by_button_id_and_rejects_others():
    assert parse(S["choice"], None, button="nan") == "nan"
    for bad in ("4", "Uncle", "0"):
        with pytest.raises(Invalid):
            parse(S["choice"], bad)
    with pytest.raises(Invalid):
        parse(S["choice"], None, button="uncle")


def test_multi_numbers_words_and_limits():
    assert parse(S["multi"], "1, 3") == ["Transport", "Food"]
    assert parse(S["multi"], "childcare and food") == ["Childcare", "Food"]
    assert parse(S["multi"], "2") == ["Childcare"]
    assert parse(S["multi"], None, button=["Food", "Transport"]) == ["Food", "Transport"]
    with pytest.raises(Invalid) as exc:
        parse(S["multi"], "1,2,3,4")
    assert exc.value.rule == "max_choices"
    with pytest.raises(Invalid):
        parse(S["multi"], "1, 9")


@pytest.mark.parametrize("text, value", [("yes", True), ("Y", True), ("yeah", True), ("Yes please", True), ("ok", True),
                                         ("no", False), ("N", False), ("nope", False), ("no thanks", False), ("Not really", False)])
def test_yesno_variants(text, value):
    assert parse(S["yesno"], text) is value


def test_yesno_rejects_other_words():
    with pytest.raises(Invalid) as exc:
        parse(S["yesno"], "maybe")
    assert error_text(S["yesno"], exc.value) == "Please answer yes or no."


def test_text_rules_use_the_steps_own_messages():
    with pytest.raises(Invalid) as exc:
        parse(S["text"], "hi")
    assert error_text(S["text"], exc.value) == "Tell me a bit more, please."
    with pytest.raises(Invalid) as exc:
        parse(S["text"], "x" * 51)
    assert "under 50 characters" in error_text(S["text"], exc.value)
    assert parse(S["text"], "  We argued.  ") == "We argued."


def test_pattern():
    assert parse(S["code"], "AB123") == "AB123"
    with pytest.raises(Invalid) as exc:
        parse(S["code"], "ab123")
    assert exc.value.rule == "pattern"
