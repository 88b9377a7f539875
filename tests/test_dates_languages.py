"""Dates in Welsh and Polish (issue 19): a date answer may be written in the person's language
("dydd Gwener nesaf", "za dwa tygodnie", "14 marca"), read through the date words of
bot/locale/languages.yaml; and a date shown back to the person is in their language (Babel)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from bot import i18n
from bot.engine.dates import BadDate, MONTHS, DAYS, UNITS, fixed_today, parse_date, shown
from bot.i18n import using

MONDAY = date(2026, 1, 12)
SATURDAY_5_DEC = date(2026, 12, 5)


@pytest.mark.parametrize("text, want", [
    ("dydd Gwener nesaf", date(2026, 1, 16)),      # "next" comes after the day in Welsh
    ("Dydd Gwener nesa", date(2026, 1, 16)),
    ("ddydd Mawrth", date(2026, 1, 13)),           # "dydd Mawrth" is Tuesday...
    ("14 Mawrth", date(2026, 3, 14)),              # ...and with a day number, Mawrth is March
    ("dydd Gwener 14 Mawrth", date(2026, 3, 14)),
    ("y 14eg o Fawrth", date(2026, 3, 14)),        # ordinal ending, and the mutated month after "o"
    ("1af o Fai 2026", date(2026, 5, 1)),
    ("14/3", date(2026, 3, 14)),                   # figures as in English
    ("heddiw", MONDAY),
    ("yfory", date(2026, 1, 13)),
    ("fory", date(2026, 1, 13)),
    ("drennydd", date(2026, 1, 14)),
    ("dydd Sul", date(2026, 1, 18)),
    ("dydd Llun", date(2026, 1, 19)),              # today is Monday: the next one
    ("ymhen pythefnos", date(2026, 1, 26)),
    ("ymhen wythnos", date(2026, 1, 19)),
    ("ymhen dwy wythnos", date(2026, 1, 26)),      # Welsh counts with the singular: dwy wythnos
    ("mewn tri diwrnod", date(2026, 1, 15)),
    ("ymhen pum niwrnod", date(2026, 1, 17)),      # nasal mutation after pum
    ("ymhen 10 diwrnod", date(2026, 1, 22)),
    ("yr wythnos nesaf", date(2026, 1, 19)),
    ("wythnos i heddiw", date(2026, 1, 19)),
    ("mis nesaf", date(2026, 2, 12)),
    ("next Friday", date(2026, 1, 16)),            # English is understood too: people mix languages
])
def test_welsh_dates(text, want):
    with using("cy"):
        assert parse_date(text, MONDAY) == want


@pytest.mark.parametrize("text, want", [
    ("w przyszły wtorek", date(2026, 1, 13)),
    ("w następny piątek", date(2026, 1, 16)),
    ("w środę", date(2026, 1, 14)),
    ("we wtorek", date(2026, 1, 13)),
    ("w sobote", date(2026, 1, 17)),               # typed without Polish letters
    ("sroda", date(2026, 1, 14)),
    ("piątek 14 marca", date(2026, 3, 14)),
    ("14 marca", date(2026, 3, 14)),
    ("14 marzec", date(2026, 3, 14)),
    ("14-go marca", date(2026, 3, 14)),
    ("dnia 14. marca 2026 r.", date(2026, 3, 14)),
    ("1 maja", date(2026, 5, 1)),
    ("14.03", date(2026, 3, 14)),
    ("dziś", MONDAY),
    ("dzisiaj", MONDAY),
    ("jutro", date(2026, 1, 13)),
    ("pojutrze", date(2026, 1, 14)),
    ("za tydzień", date(2026, 1, 19)),
    ("za tydzien", date(2026, 1, 19)),
    ("za dwa tygodnie", date(2026, 1, 26)),
    ("za 3 dni", date(2026, 1, 15)),
    ("za pięć dni", date(2026, 1, 17)),
    ("w przyszłym tygodniu", date(2026, 1, 19)),
    ("za miesiąc", date(2026, 2, 12)),
    ("w przyszłym miesiącu", date(2026, 2, 12)),
    ("in two weeks", date(2026, 1, 26)),
])
def test_polish_dates(text, want):
    with using("pl"):
        assert parse_date(text, MONDAY) == want


@pytest.mark.parametrize("lang, text, want", [
    ("cy", "ddoe", date(2026, 12, 4)),
    ("cy", "echdoe", date(2026, 12, 3)),
    ("cy", "dydd Mawrth diwethaf", date(2026, 12, 1)),
    ("cy", "dwy wythnos yn ôl", date(2026, 11, 21)),
    ("cy", "3 diwrnod yn ol", date(2026, 12, 2)),
    ("pl", "wczoraj", date(2026, 12, 4)),
    ("pl", "przedwczoraj", date(2026, 12, 3)),
    ("pl", "w zeszły wtorek", date(2026, 12, 1)),
    ("pl", "w ostatnią sobotę", date(2026, 11, 28)),
    ("pl", "dwa tygodnie temu", date(2026, 11, 21)),
    ("pl", "3 dni temu", date(2026, 12, 2)),
    ("pl", "tydzień temu", date(2026, 11, 28)),
    ("pl", "w zeszłym tygodniu", date(2026, 11, 28)),
])
def test_past_dates_in_welsh_and_polish_where_the_flow_allows_them(lang, text, want):
    with using(lang):
        assert parse_date(text, SATURDAY_5_DEC, allow_past=True) == want
        with pytest.raises(BadDate) as e:
            parse_date(text, SATURDAY_5_DEC)
        assert e.value.rule == "date_past"


@pytest.mark.parametrize("lang, text, rule", [
    ("cy", "rywbryd", "date"), ("cy", "Mawrth", "date"),  # March or Tuesday? Neither, without more
    ("cy", "31 Chwefror", "date"), ("cy", "dydd Gwener 14 Smawrth", "date"), ("cy", "ymhen", "date"),
    ("cy", "1/1/2030", "date_far"),
    ("pl", "kiedyś", "date"), ("pl", "31 lutego", "date"), ("pl", "za", "date"), ("pl", "temu", "date"),
    ("pl", "w przyszły", "date"), ("pl", "14 marca 2025", "date_past"),
])
def test_bad_welsh_and_polish_dates_say_why(lang, text, rule):
    with using(lang):
        with pytest.raises(BadDate) as e:
            parse_date(text, MONDAY)
    assert e.value.rule == rule


def test_a_languages_date_words_are_only_read_in_that_language():
    with pytest.raises(BadDate):
        parse_date("dydd Gwener nesaf", MONDAY)  # English in force
    with using("pl"), pytest.raises(BadDate):
        parse_date("dydd Gwener nesaf", MONDAY)
    with using("cy"), pytest.raises(BadDate):
        parse_date("w przyszły wtorek", MONDAY)


ENGLISH = set(MONTHS) | set(DAYS) | set(UNITS) | {"month", "today", "tonight", "tomorrow", "yesterday", "next",
                                                   "last", "this", "in", "ago", "a"}


@pytest.mark.parametrize("tag", [t for t, lang in i18n.languages().items() if lang.dates])
def test_every_date_word_in_languages_yaml_stands_for_english_the_parser_reads(tag):
    spec = i18n.language(tag).dates
    assert set(spec) <= {"words", "after", "ordinals"}, f"{tag}: unknown keys under dates"
    words = spec["words"]
    assert len(words) > 40
    for phrase, english in words.items():
        for word in str(english).split():
            assert word in ENGLISH or word.isdigit(), f"{tag}: {phrase!r} stands for {english!r}: {word!r} is unknown"
    assert set(spec.get("after") or []) <= {"next", "last", "this"}
    # every day of the week and every month can be named
    assert {w for w in words.values() if w in DAYS} == {"monday", "tuesday", "wednesday", "thursday", "friday",
                                                       "saturday", "sunday"}
    assert {MONTHS[w] for w in words.values() if w in MONTHS} == set(range(1, 13))


def test_dates_are_shown_in_the_persons_language():
    assert shown("2026-03-14") == "Saturday 14 March 2026"
    with using("cy"):
        assert shown("2026-03-14") == "Dydd Sadwrn 14 Mawrth 2026"
    with using("pl"):
        assert shown("2026-03-14") == "sobota 14 marca 2026"
    assert shown("2026-03-14", "pl") == "sobota 14 marca 2026"
    assert shown("2026-03-14", "en") == "Saturday 14 March 2026"


@pytest.mark.parametrize("language, respondent, answers, vague, re_ask, when, shown_back", [
    ("en", "young_person",
     ("I was shocked", "it upset me", "school", "an apology", "No contact with the other person",
      "a teacher nearby", "yes", "we will talk"),
     "whenever suits", "Please give a day or a date to check in", "next Tuesday", "Tuesday 13 January 2026"),
    ("cy", "adult",
     ("Roeddwn i mewn sioc", "Mae'n anodd cysgu", "Yr ysgol", "Ymddiheuriad", "3", "/skip", "na"),
     "pryd bynnag", "Rhowch ddiwrnod neu ddyddiad i ni holi sut mae pethau.", "dydd Mawrth nesaf",
     "Dydd Mawrth 13 Ionawr 2026"),
])
def test_a_date_answer_re_asks_kindly_is_read_back_in_the_persons_language_and_stored_as_an_iso_date(
        library, language, respondent, answers, vague, re_ask, when, shown_back):
    from bot.conversation import ConversationService
    from bot.engine.runner import Input
    from bot.store import Store

    service = ConversationService(Store(":memory:"), library)
    pid = service.person("console:t")
    conv = service.start(pid, "restorative-harmed", frontend="console", respondent=respondent,
                         language=language).conversation_id
    for words in answers:
        service.handle(pid, Input.from_text(words))
    with fixed_today(MONDAY):
        reply = service.handle(pid, Input.from_text(vague))
        assert not reply.accepted
        assert reply.prompts[0].text.startswith(re_ask)
        reply = service.handle(pid, Input.from_text(when))
    assert reply.accepted and reply.answered == shown_back
    assert {a["step_id"]: a["value"] for a in service.store.answers(conv)}["follow_up"] == "2026-01-13"


def test_reminder_times_are_shown_in_the_persons_language():
    from bot.schedule import Schedule
    from bot.store import Store

    schedule = Schedule(Store(":memory:"))
    at = "2026-03-03T09:00:00+00:00"
    assert schedule.local(at) == "Tue 3 Mar, 09:00"
    with using("cy"):
        assert schedule.local(at) == "Dydd Mawrth 3 Mawrth, 09:00"
    with using("pl"):
        assert schedule.local(at) == "wtorek 3 marca, 09:00"
    with using("pl"):
        assert schedule.local("2026-07-03T08:00:00+00:00") == "piątek 3 lipca, 09:00"  # summer time: UK local


def _examples(text: str) -> list[str]:
    return re.findall(r"[\"„“]([^\"”“„]+)[\"”]", text or "")


def test_every_date_example_a_flow_gives_is_understood_in_that_language(library):
    """The examples a date question gives ("dydd Gwener 14 Mawrth", „za dwa tygodnie”) are
    answers the parser takes, in the language of the text that gives them."""
    checked = []
    for flow in library:
        for tag, variant in flow.variants.items():
            for step in variant.steps:
                if step.type != "date":
                    continue
                for text in (step.text, step.help, step.errors.get("date")):
                    for example in _examples(text):
                        with using(tag):
                            parse_date(example, MONDAY)  # raises BadDate if an example is not understood
                        checked.append((flow.id, tag, example))
    langs = {tag for _, tag, _ in checked}
    assert {"en", "cy", "pl"} <= langs
    assert ("restorative-harmer", "cy", "dydd Mawrth nesaf") in checked
    assert ("restorative-harmed", "pl", "za dwa tygodnie") in checked
    assert ("fgc-pre-conference", "pl", "piątek 14 marca") in checked


POLISH_MONTHS = ["stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
                 "października", "listopada", "grudnia"]


async def test_over_telegram_a_polish_person_is_told_the_day_they_asked_in_polish(tmp_path, library):
    """/delete asked twice says when the first request was made, and /mydata when each
    conversation started: in the person's language, not as 2026-11-30."""
    from tests.test_telegram_rights import DPO, FAM, answer, make_world
    from bot.testing.telegram import running_bot

    store, service, access = make_world(tmp_path, library, dp_contact=DPO)
    conv = answer(service, store, FAM, "adult")
    store.set_person_language(store.person(f"tg:{FAM}"), "pl")
    async with running_bot(service, access=access) as h:
        await h.say(FAM, "/delete")
        again = await h.say(FAM, "/delete")
        mydata = await h.say(FAM, "/mydata")
    [req] = store.erasure_requests()
    asked = date.fromisoformat(req["created_at"][:10])
    day = f"{asked.day} {POLISH_MONTHS[asked.month - 1]} {asked.year}"
    assert [m.text for m in again] == [
        f"Prośba została już złożona {day} (numer {req['id']}). Ktoś w urzędzie (council) podejmuje decyzję, a my "
        "powiemy Ci tutaj."]
    started = date.fromisoformat(store.conversation(conv).started_at[:10])
    line = next(x for x in mydata[0].text.splitlines() if x.startswith(f"• #{conv} "))
    assert line == (f"• #{conv} scaling-checkin — zakończona — rozpoczęto {started.day} "
                    f"{POLISH_MONTHS[started.month - 1]} {started.year}. Kto może to zobaczyć: Ty, Twój pracownik, "
                    "kierownik Twojego pracownika i osoby prowadzące ten serwis.")
    assert not re.search(r"\d{4}-\d\d-\d\d", mydata[0].text + again[0].text)
