"""Flows in several languages (issue 19): translations, their lint, answers in each language,
switching mid-flow, and right-to-left words in exports."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.conversation import ConversationService
from bot.engine.answers import Invalid, parse
from bot.engine.library import FlowLibrary
from bot.engine.loader import load_flow_file, load_flow_text
from bot.engine.runner import Input
from bot.i18n import using
from bot.review.export import export
from bot.store import Store

SCALING = Path(__file__).resolve().parents[1] / "flows" / "solution-focused" / "scaling-checkin.yaml"


@pytest.fixture(scope="module")
def library():
    return FlowLibrary.load()


def service(library, **kw) -> ConversationService:
    return ConversationService(Store(":memory:"), library, **kw)


# -- validate --------------------------------------------------------------------------------
def test_validate_names_file_line_and_column_of_a_deleted_welsh_string(tmp_path):
    text = SCALING.read_text(encoding="utf-8")
    welsh = "      cy: \"Beth sy'n eich cadw chi i fynd?\"\n"
    assert text.count(welsh) == 1
    line = text[: text.index(welsh)].count("\n")  # 0-based line of the Welsh: the English is on the line before
    broken = tmp_path / "scaling-checkin.yaml"
    broken.write_text(text.replace(welsh, ""), encoding="utf-8")
    flow, errors = load_flow_file(broken)
    assert flow is None
    assert [str(e) for e in errors] == [
        f"{broken}:{line}:7: no Welsh (cy) translation of \"What keeps you going?\"; write it as  {{en: ..., cy: ...}}"]


def test_validate_reports_a_placeholder_that_differs_between_languages():
    text = SCALING.read_text(encoding="utf-8").replace(
        'pl: "Co sprawia, że jesteś na {{ answers.scale_now }}, a nie niżej?"',
        'pl: "Co sprawia, że jesteś na {{ answers.scale }}, a nie niżej?"')
    flow, errors = load_flow_text(text, "scaling.yaml")
    assert flow is None
    assert len(errors) == 1
    assert re.fullmatch(r"scaling\.yaml:\d+:\d+: the Polish \(pl\) text uses \{\{answers\.scale\}\} but the English uses "
                        r"\{\{answers\.scale_now\}\}; each translation must use the same placeholders", str(errors[0]))


def test_a_translation_for_an_undeclared_language_and_a_missing_english_are_errors():
    flow_yaml = """id: tiny
version: 1
title: {en: Tiny, cy: Bach}
audience: family
languages: [en, cy]
steps:
  - id: q
    ask: {cy: Beth ddigwyddodd?, fr: Quoi?}
    type: text
"""
    flow, errors = load_flow_text(flow_yaml, "tiny.yaml")
    assert flow is None
    assert [str(e) for e in errors] == [
        "tiny.yaml:8:10: a text in several languages needs the English too (en: ...): English is shown wherever a "
        "translation is missing"]


def test_a_list_of_languages_counts_translations_as_unreviewed():
    flow, errors = load_flow_text("""id: tiny
version: 1
title: {en: Tiny, cy: Bach}
audience: family
languages: [en, cy]
steps:
  - id: q
    ask: {en: What happened?, cy: Beth ddigwyddodd?}
    type: text
""", "tiny.yaml")
    assert errors == []
    assert flow.reviewed == {"en": True, "cy": False}
    assert flow.in_language("cy").steps[0].text == "Beth ddigwyddodd?"
    assert flow.in_language("pl").steps[0].text == "What happened?"  # not translated: English


# -- answers in each language ----------------------------------------------------------------
@pytest.mark.parametrize("lang, words", [
    ("cy", {"dim": 0, "un": 1, "dau": 2, "dwy": 2, "tri": 3, "pedair": 4, "pump": 5, "chwech": 6, "saith": 7, "wyth": 8,
            "naw": 9, "deg": 10}),
    ("pl", {"zero": 0, "jeden": 1, "dwa": 2, "trzy": 3, "cztery": 4, "pięć": 5, "Sześć": 6, "siedem": 7, "osiem": 8,
            "dziewięć": 9, "dziesięć": 10}),
    ("ur", {"صفر": 0, "ایک": 1, "دو": 2, "تین": 3, "چار": 4, "پانچ": 5, "چھ": 6, "سات": 7, "آٹھ": 8, "نو": 9, "دس": 10,
            "۷": 7}),
])
def test_number_words_zero_to_ten_in_each_language(library, lang, words):
    step = library.get("scaling-checkin").in_language(lang).by_id["scale_now"]
    with using(lang):
        assert {w: parse(step, w) for w in words} == words
    with using("en"), pytest.raises(Invalid):
        parse(step, "chwech" if lang == "cy" else "osiem" if lang == "pl" else "سات")


@pytest.mark.parametrize("lang, yes, no", [("cy", ["ie", "Do", "oes"], ["na", "naddo", "nac oes"]),
                                           ("pl", ["tak", "Tak.", "jasne"], ["nie", "nie, dziękuję"]),
                                           ("ur", ["ہاں", "جی ہاں"], ["نہیں"])])
def test_yes_and_no_in_each_language_and_english_still_understood(lang, yes, no):
    from bot.engine.flow import Step

    step = Step(id="ok", type="yesno", text="?", render=lambda c: "?", pos=None)
    with using(lang):
        assert [parse(step, w) for w in yes + ["yes"]] == [True] * (len(yes) + 1)
        assert [parse(step, w) for w in no + ["no"]] == [False] * (len(no) + 1)


# -- switching mid-flow ------------------------------------------------------------------------
def test_language_switches_mid_flow_and_the_next_question_comes_in_the_new_language(library):
    svc = service(library, allow_unreviewed_languages=True)
    me = svc.person("t:1")
    first = svc.start(me, "scaling-checkin", respondent="adult", language="cy")
    assert first.prompts[-1].plain() == "Cwestiwn 1\nBeth yw eich gobeithion gorau o'n sgwrs gyda'n gilydd?"
    svc.handle(me, Input.from_text("Llai o ffraeo"))
    switched = svc.set_language(me, "pl")
    assert switched.prompts[-1].text.startswith("Na skali od 0 do 10")
    reply = svc.handle(me, Input.from_text("osiem"))  # a Polish number word, now understood
    assert reply.prompts[-1].text == "Co sprawia, że jesteś na 8, a nie niżej?"
    conv = svc.store.conversation(reply.conversation_id)
    assert conv.language == "pl" and svc.store.person_language(me) == "pl"
    langs = [(t["direction"], t["language"]) for t in svc.store.transcript(conv.id)]
    assert ("out", "cy") in langs and ("out", "pl") in langs  # each line keeps the language it was shown in


def test_unreviewed_languages_are_not_offered_unless_the_deployment_allows_them(library):
    strict = service(library)
    assert strict.languages_offered() == ["en"]
    with pytest.raises(ValueError):
        strict.set_language(strict.person("t:2"), "cy")
    assert service(library, allow_unreviewed_languages=True).languages_offered() == ["en", "cy", "pl", "ur"]


# -- right to left in HTML exports -----------------------------------------------------------
class _Dirs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        self.stack.append(dict(attrs))

    def handle_endtag(self, tag):
        self.stack.pop()

    def handle_data(self, data):
        if data.strip() and self.stack:
            self.found.setdefault(data.strip(), []).append(self.stack[-1].get("dir"))


def test_an_urdu_answer_in_an_html_export_displays_right_to_left(library):
    svc = service(library, allow_unreviewed_languages=True)
    me = svc.person("t:3")
    svc.start(me, "scaling-checkin", respondent="adult", language="ur")
    answer = "میں چاہتی ہوں کہ گھر میں سکون ہو"
    svc.handle(me, Input.from_text(answer))
    page = export(svc.store, all_=True, fmt="html")
    parser = _Dirs()
    parser.feed(page)
    # the answer, in the answers list and in the transcript: right to left, marked as Urdu
    assert parser.found[answer] == ["rtl", "rtl"]
    assert re.search(r"<dd lang='ur' dir='rtl'>" + re.escape(answer) + "</dd>", page)
    # the English question beside it stays left to right
    assert parser.found["What are your best hopes from our talking together?"] == ["ltr"]


def test_a_markdown_export_names_the_language_and_gives_the_english_question(library):
    svc = service(library, allow_unreviewed_languages=True)
    me = svc.person("t:4")
    svc.start(me, "scaling-checkin", respondent="adult", language="cy")
    svc.handle(me, Input.from_text("Llai o ffraeo"))
    md = export(svc.store, all_=True, fmt="md")
    assert "- Language: Welsh (cy)" in md.splitlines()
    assert ("- **best_hopes** — What are your best hopes from our talking together?\n"
            "  (as asked in Welsh (cy): Beth yw eich gobeithion gorau o'n sgwrs gyda'n gilydd?)\n"
            "  > Llai o ffraeo") in md


def test_every_translated_flow_text_names_the_same_uk_help_numbers_as_its_english():
    from bot.engine.loader import flow_files
    from bot.engine.yamlpos import parse_yaml
    from bot.i18n.lock import texts

    numbers = ["999", "0800 1111", "0808 800 5000", "111", "116 123", "85258", "0808 2000 247"]
    files, _ = flow_files([Path(__file__).resolve().parents[1] / "flows"])
    checked, differ = 0, []
    for f in files:
        data, _ = parse_yaml(f.read_text(encoding="utf-8"), str(f))
        for t in texts(data):
            want = [n for n in numbers if n in t.english]
            for tag in t.tags():
                checked += bool(want)
                if [n for n in numbers if n in t.node[tag]] != want:
                    differ.append(f"{f.name}: {t.key} ({tag})")
    assert differ == [] and checked >= 10
