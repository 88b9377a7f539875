"""The gettext catalogues (issue 19): every catalogue complete, placeholders and commands kept,
messages.yaml the English source, invitations with a language, and safeguarding in every
language."""

from __future__ import annotations

import shutil

import pytest

from bot import i18n
from bot.access import Access
from bot.conversation import ConversationService
from bot.engine.library import DEFAULT_FLOWS, FlowLibrary
from bot.engine.runner import Input
from bot.engine.scripts import load_scripts
from bot.i18n import catalogues
from bot.i18n.safeguarding import UNSCREENED
from bot.messages import msg
from bot.safeguarding import SafeguardingConfig
from bot.store import Store


@pytest.fixture(scope="module")
def library():
    return FlowLibrary.load()


def test_every_catalogue_is_complete():
    # complete for Welsh and Polish; for Urdu, complete in what catalogue_required lists
    tags = catalogues.catalogue_tags()
    assert tags == ["cy", "pl", "ur"]
    assert {tag: catalogues.problems(tag) for tag in tags} == {"cy": [], "pl": [], "ur": []}


def test_the_template_holds_what_people_read_and_not_what_only_staff_read():
    contexts = {c for c, _t, _f, _l in catalogues.entries()}
    assert {"navigation.progress", "telegram.commands.language", "staff.consent", "privacy.intro.safety.default",
            "safeguarding:responses.child", "safeguarding:texts.told_family",
            "safeguarding:concerns.domestic_abuse.help.family"} <= contexts
    assert not {c for c in contexts if c.startswith(("staff.invite", "alerts.", "rehearsal.", "reading."))}
    assert "safeguarding:texts.alert" not in contexts and "parsing.yes_words" not in contexts


@pytest.fixture
def broken_catalogue(tmp_path, monkeypatch):
    """A copy of the Welsh catalogue to break, in place of the real one."""
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    i18n.clear_caches()
    yield locale / "cy" / "LC_MESSAGES" / "messages.po"
    i18n.clear_caches()


def test_a_missing_or_changed_translation_is_found(broken_catalogue):
    po = broken_catalogue
    text = po.read_text(encoding="utf-8")
    text = text.replace('msgstr "Cwestiwn {n} o {total}"', 'msgstr "Cwestiwn {n} o {cyfanswm}"')
    text = text.replace('msgstr "Diolch. Mae eich atebion wedi\'u cadw."', 'msgstr ""')
    text = text.replace('msgstr "Dewis eich iaith"', 'msgstr "Dewis eich iaith (/iaith)"')
    po.write_text(text, encoding="utf-8")
    found = catalogues.problems("cy")
    assert len(found) == 3, found
    assert any("navigation.progress" in p and "placeholders ['cyfanswm', 'n'] differ from the English ['n', 'total']" in p
               for p in found)
    assert any("navigation.finished" in p and "not translated into cy" in p for p in found)
    assert any("telegram.commands.language" in p and "commands ['/iaith']" in p for p in found)
    # at run time an untranslated sentence is said in English, never left out
    with i18n.using("cy"):
        assert msg("navigation.finished") == "Thank you. Your answers are saved."


def test_an_english_sentence_that_changes_is_no_longer_translated_until_checked(broken_catalogue, monkeypatch):
    from bot import messages as messages_module

    changed = dict(messages_module.messages())
    changed["navigation"] = dict(changed["navigation"], finished="Thank you. Everything you wrote is saved.")
    monkeypatch.setattr(messages_module, "messages", lambda: changed)
    with i18n.using("cy"):
        assert msg("navigation.finished") == "Thank you. Everything you wrote is saved."  # English, not the old Welsh
        assert msg("navigation.progress", n=2, total=5) == "Cwestiwn 2 o 5"


def test_extract_writes_the_template_and_keeps_translations(broken_catalogue):
    written = catalogues.extract()
    assert [p.name for p in written] == ["messages.pot", "messages.po", "messages.po", "messages.po"]
    assert catalogues.problems("cy") == [] and catalogues.problems("pl") == [] and catalogues.problems("ur") == []


def test_help_texts_in_every_catalogue_name_the_same_uk_numbers():
    numbers = ["999", "0800 1111", "0808 800 5000", "116 123", "85258", "0808 2000 247"]
    for tag in catalogues.catalogue_tags():
        cat = catalogues.read(tag)
        for context, english, _f, _l in catalogues.entries():
            if not context.startswith(i18n.SAFEGUARDING) and "Childline" not in english:
                continue
            translated = cat.get(english, context=context).string
            assert [n for n in numbers if n in translated] == [n for n in numbers if n in english], (tag, context)


def test_an_invitation_can_set_the_language(tmp_path, library):
    from bot.config import Config

    store = Store(tmp_path / "inv.db")
    access = Access(store, library, Config(allow_unreviewed_languages=True))
    with store.transaction():
        worker = store.person("tg:100", "Alex")
        store.grant_role(worker, "practitioner", None)
    code, _ = access.invite("tg:100", "scaling-checkin", "FGC-1", respondent="adult", language="cy")
    view = access.open_invite("tg:200", code)
    person = store.person_by_key("tg:200")["id"]
    assert view.language == "cy" and view.flow_title == "Sut mae pethau'n mynd?"
    assert store.person_language(person) == "cy"
    with pytest.raises(ValueError, match="'xx' is not a language this service offers"):
        access.invite("tg:100", "scaling-checkin", "FGC-1", respondent="adult", language="xx")
    strict = Access(store, library, Config())
    with pytest.raises(ValueError, match="use one of: en"):
        strict.invite("tg:100", "scaling-checkin", "FGC-1", respondent="adult", language="cy")


# -- safeguarding in every language --------------------------------------------------------
def sg_service(library) -> ConversationService:
    return ConversationService(Store(":memory:"), library, safeguarding=SafeguardingConfig.load(),
                               allow_unreviewed_languages=True)


def test_welsh_words_of_harm_raise_an_alert_and_the_help_is_in_welsh(library):
    svc = sg_service(library)
    me = svc.person("t:sg1")
    svc.start(me, "scaling-checkin", respondent="adult", language="cy")
    reply = svc.handle(me, Input.from_text("Mae e'n fy nghuro i bob nos"))
    assert reply.alerts
    help_text = "\n".join(p.text for p in reply.prompts)
    assert "Diolch am ddweud wrthym ni." in help_text and "999" in help_text and "0808 800 5000" in help_text


def test_every_free_text_answer_in_a_language_without_a_reviewed_word_list_goes_to_quiet_review(library):
    svc = sg_service(library)
    me = svc.person("t:sg2")
    svc.start(me, "scaling-checkin", respondent="adult", language="pl")
    reply = svc.handle(me, Input.from_text("Mniej kłótni w domu"))
    assert not reply.alerts and reply.prompts[-1].text.startswith("Na skali")  # not interrupted
    items = svc.store.review_items(conversation_ids=[reply.conversation_id])
    assert [i["concern"] for i in items] == [UNSCREENED]
    # a number picked from the scale is not free text: nothing more to review
    svc.handle(me, Input.from_text("osiem"))
    assert len(svc.store.review_items(conversation_ids=[reply.conversation_id])) == 1


def test_an_english_conversation_is_screened_by_the_lexicon_alone(library):
    svc = sg_service(library)
    me = svc.person("t:sg3")
    svc.start(me, "scaling-checkin", respondent="adult")
    reply = svc.handle(me, Input.from_text("Less arguing at home"))
    assert svc.store.review_items(conversation_ids=[reply.conversation_id]) == []


def test_polish_grave_words_alert_even_with_an_unreviewed_list(library, monkeypatch):
    svc = sg_service(library)
    me = svc.person("t:sg4")
    svc.start(me, "scaling-checkin", respondent="adult", language="pl")
    reply = svc.handle(me, Input.from_text("Ojczym mnie bije i chcę umrzeć"))
    assert reply.alerts
    assert "Dziękujemy, że nam o tym mówisz." in "\n".join(p.text for p in reply.prompts)


def test_a_language_with_no_word_list_at_all_still_goes_to_review(library, monkeypatch):
    from bot.i18n import safeguarding as i18n_sg

    monkeypatch.setattr(i18n_sg, "lexicons", lambda: {})
    found = i18n_sg.extra("Ojczym mnie bije", "pl")
    assert [(c.concern, c.tier) for c in found] == [(UNSCREENED, "review")]
    assert i18n_sg.extra("Less arguing", "en") == []


def test_lists_of_words_are_translated_item_by_item():
    with i18n.using("pl"):
        assert msg("schedule.days") == ["Poniedziałek", "Wtorek", "Środa", "Czwartek", "Piątek", "Sobota", "Niedziela"]
    with i18n.using("cy"):
        assert msg("schedule.days")[6] == "Dydd Sul"
    assert msg("schedule.days")[0] == "Monday"


# -- partial catalogues: Urdu ------------------------------------------------------------------
def test_a_partial_catalogue_must_hold_its_required_messages_and_may_leave_the_rest(broken_catalogue):
    po = broken_catalogue.parents[2] / "ur" / "LC_MESSAGES" / "messages.po"
    required = catalogues.required("ur")
    assert required is not None and catalogues.required("cy") is None  # Welsh and Polish stay complete
    text = po.read_text(encoding="utf-8")
    # a required message (a safeguarding help text) and one outside the subset (an erasure outcome) emptied
    help_text = 'msgstr "اگر آپ گھریلو زیادتی کے ساتھ رہ رہے ہیں'
    outcome = 'msgstr "آپ کی درخواست (نمبر {id}) پوری ہو گئی: آپ نے جو لکھا اور آپ کا نام مٹا دیے گئے ہیں۔"\n'
    assert text.count(help_text) == 1 and text.count(outcome) == 1
    for start in (help_text, outcome):
        i = text.index(start)
        text = text[:i] + 'msgstr ""' + text[text.index("\n", i):]
    po.write_text(text, encoding="utf-8")
    i18n.clear_caches()
    assert catalogues.problems("ur") == [
        f"{po}: safeguarding:concerns.domestic_abuse.help.family (bot/safeguarding.yaml:"
        f"{_line_of('safeguarding:concerns.domestic_abuse.help.family')}): not translated into ur (a required "
        f"message of this partial catalogue: catalogue_required in bot/locale/languages.yaml)"]
    assert not catalogues.is_required("erasure.outcome.approved.child", required)
    with i18n.using("ur"):  # outside the subset: said in English
        assert msg("erasure.outcome.approved.child", id=3).startswith("Your request (number 3) is done")


def _line_of(context: str) -> int:
    return next(line for c, _t, _f, line in catalogues.entries() if c == context)


def test_a_required_prefix_that_names_no_message_is_reported(monkeypatch):
    real = i18n._config()
    conf = {**real, "languages": {**real["languages"], "ur": {**real["languages"]["ur"],
                                                              "catalogue_required": ["navigation", "navigaton"]}}}
    monkeypatch.setattr(i18n, "_config", lambda: conf)
    assert catalogues.problems("ur") == [
        "bot/locale/languages.yaml: ur: catalogue_required lists 'navigaton', which names no message; "
        "check the spelling against bot/messages.yaml"]


def test_every_safeguarding_response_and_help_text_is_required_in_urdu():
    required = catalogues.required("ur")
    sg = [c for c, _t, _f, _l in catalogues.entries() if c.startswith(i18n.SAFEGUARDING)]
    assert sg and all(catalogues.is_required(c, required) for c in sg)


URDU_SCRIPTS = [DEFAULT_FLOWS / "tests" / f"{flow}-ur.yaml" for flow in ("scaling-checkin", "fgc-pre-conference")]


@pytest.fixture
def looked_up(monkeypatch):
    """Every message of the bot's own looked up in Urdu: (context, translated?)."""
    seen = []
    real = i18n.lookup

    def recording(context, english, tag=None):
        found = real(context, english, tag)
        if (tag or i18n.current()) == "ur":
            seen.append((context, found is not None))
        return found

    monkeypatch.setattr(i18n, "lookup", recording)
    return seen


def _check_urdu(seen):
    template = {c for c, _t, _f, _l in catalogues.entries()}
    shown = {c for c, _ok in seen if c in template}
    assert sorted({c for c, ok in seen if c in template and not ok}) == []  # nothing said in English
    assert {"language.unreviewed", "navigation.progress_open", "navigation.optional_hint", "navigation.scale_hint",
            "navigation.scale_ends", "navigation.yes", "navigation.no", "validation.scale",
            "privacy.intro.safety.default"} <= shown
    required = catalogues.required("ur")
    assert sorted(c for c in shown if not catalogues.is_required(c, required)) == []  # the rule covers what is seen
    return shown


def test_an_urdu_speaker_sees_no_english_around_the_two_check_ins(library, looked_up):
    from bot.engine.scripts import play
    from bot.testing.drivers import ServiceDriver

    convs, errors = load_scripts(URDU_SCRIPTS)
    assert errors == [] and {c.flow for c in convs} == {"scaling-checkin", "fgc-pre-conference"}
    for conv in convs:
        outcome = play(conv, ServiceDriver.in_memory(library, SafeguardingConfig.load()))
        assert outcome.ok, "\n".join(outcome.failures)
    _check_urdu(looked_up)


async def test_over_telegram_too_an_urdu_speaker_sees_no_english_and_every_line_reads_right_to_left(
        tmp_path, library, looked_up):
    from bot.engine.scripts import play_async
    from bot.testing.telegram import TelegramDriver, running_bot

    convs, errors = load_scripts(URDU_SCRIPTS)
    service = ConversationService(Store(tmp_path / "ur.db"), library, safeguarding=SafeguardingConfig.load(),
                                  allow_unreviewed_languages=True)
    async with running_bot(service) as bot:
        for i, conv in enumerate(convs):
            outcome = await play_async(conv, TelegramDriver(bot, 7000 + i))
            assert outcome.ok, "\n".join(outcome.failures)
        chats = [[m.text for m in bot.fake.messages(7000 + i) if m.text] for i in range(len(convs))]
    shown = _check_urdu(looked_up)
    assert {"language.chosen", "language.unreviewed", "telegram.commands.language"} <= shown
    # From the language choice on, every line of every message (edited ones with "✓ answer" too)
    # starts with a right-to-left mark.
    for texts in chats:
        urdu = texts[next(i for i, t in enumerate(texts) if "اردو" in t):]
        # what the bot said, each prompt a paragraph (said together in one message since issue 18)
        assert sum(len(t.split("\n\n")) for t in urdu) > 10
        assert [t for t in urdu if not all(line.startswith("\u200f") for line in t.split("\n") if line)] == []
