"""Languages over Telegram (issue 19), through the real Application and the fake Bot API:
Telegram's language_code offers a language, /language switches mid-flow, command menus per
language, right-to-left Urdu, and only reviewed languages unless the deployment allows more."""

from __future__ import annotations

from bot import i18n
from bot.conversation import ConversationService
from bot.frontends.telegram.render import RLM
from bot.store import Store
from bot.testing.telegram import running_bot


def texts(messages):
    return [m.text for m in messages]


def button_texts(h, message):
    return [t for row in h.fake.buttons(message) for (t, _) in row]


def service(tmp_path, library, **kw):
    return ConversationService(Store(tmp_path / "lang.db"), library, **kw)


async def test_telegram_polish_is_offered_and_language_switches_mid_flow(tmp_path, library):
    svc = service(tmp_path, library, allow_unreviewed_languages=True)
    async with running_bot(svc) as h:
        # Telegram says the app is in Polish: Polish is offered (in Polish), not forced
        offer = await h.say(5, "/start", language_code="pl-PL")
        assert texts(offer) == ["Czy mam używać języka: Polski? Możesz to zmienić w każdej chwili za pomocą /language."]
        assert button_texts(h, offer[0]) == ["Polski", "Zostań przy angielskim (English)"]
        pid = await h.frontend.db(svc.store.person, "tg:5")
        assert await h.frontend.db(svc.store.person_language, pid) is None  # nothing chosen yet
        chosen = await h.press(5, offer[0], "Polski")
        assert len(chosen) == 2 and chosen[0].text == (  # said together, as one message
            "Od teraz będę używać języka: Polski. Możesz to zmienić w każdej chwili za pomocą /language.\n\n"
            "To tłumaczenie nie zostało jeszcze sprawdzone przez wykwalifikowanego tłumacza. Jeśli coś jest niejasne, "
            "wyślij /language, aby przełączyć na angielski, albo zapytaj swojego pracownika.")
        greeting, menu = chosen[1].text.split("\n\n")  # the greeting heads the menu
        assert greeting.startswith("Dzień dobry, Test.")
        assert menu == "Co chcesz zacząć?" and "Jak idą sprawy?" in button_texts(h, chosen[1])
        # start the scaling check-in in Polish, answering who is filling it in by its Polish button
        who = await h.press(5, chosen[1], "Jak idą sprawy?")
        assert texts(who) == ["Kto to wypełnia?"]
        started = await h.press(5, who[0], "Rodzic, opiekun lub inna dorosła osoba z rodziny")
        assert len(started) == 1 and started[0].text.split("\n\n")[-1] == (  # after the notice and the intro
            "Pytanie 1\nJakie są Twoje największe nadzieje związane z naszą rozmową?")
        asked = await h.say(5, "Mniej kłótni w domu")
        assert asked[-1].text.startswith("Pytanie 2\nNa skali od 0 do 10")
        # /language mid-flow: every language by its own name
        menu = await h.say(5, "/language")
        assert texts(menu) == ["W jakim języku mam pisać? Możesz to zmienić w każdej chwili za pomocą /language."]
        assert button_texts(h, menu[0]) == ["English", "Cymraeg", "Polski", "اردو"]
        switched = await h.press(5, menu[0], "Cymraeg")
        question = switched[-1]  # one message: the switch said, the notice, the waiting question
        said = question.text.split("\n\n")
        assert len(switched) == 1 and said[0] == (
            "Bydda i'n defnyddio Cymraeg o hyn ymlaen. Gallwch ei newid unrhyw bryd gyda /language.")
        assert said[-1].startswith("Cwestiwn 2\nAr raddfa o 0 i 10")  # the waiting question, now in Welsh
        assert button_texts(h, question) == [str(n) for n in range(11)]
        after = await h.press(5, question, "7")
        assert after[-1].text == "Cwestiwn 3\nBeth sy'n eich rhoi chi ar 7 a ddim yn is?"  # the next one in Welsh
        conv = await h.frontend.db(svc.store.active_conversation, pid)
        assert conv.language == "cy" and await h.frontend.db(svc.store.person_language, pid) == "cy"


async def test_keep_english_is_remembered_and_not_offered_again(tmp_path, library):
    svc = service(tmp_path, library, allow_unreviewed_languages=True)
    async with running_bot(svc) as h:
        offer = await h.say(6, "/start", language_code="cy")
        assert texts(offer) == ["Hoffech chi i mi ddefnyddio Cymraeg? Gallwch ei newid unrhyw bryd gyda /language."]
        kept = await h.press(6, offer[0], "Cadw Saesneg (English)")
        assert kept[0].text == "I will use English from now on. You can change it at any time with /language."
        again = await h.say(6, "/start", language_code="cy")
        assert again[0].text.startswith("Hello Test.")


async def test_unreviewed_languages_are_not_offered_by_default(tmp_path, library):
    svc = service(tmp_path, library)
    async with running_bot(svc) as h:
        greeting = await h.say(7, "/start", language_code="pl")
        assert greeting[0].text.startswith("Hello Test.")  # no offer: Polish is not reviewed
        menu = await h.say(7, "/language")
        assert button_texts(h, menu[0]) == ["English"]
        assert h.fake.commands_by_scope.get(h.fake._commands_key({"language_code": "pl"})) is None


async def test_command_menus_are_set_per_language(tmp_path, library):
    svc = service(tmp_path, library, allow_unreviewed_languages=True)
    async with running_bot(svc) as h:
        menus = {tag: {c["command"]: c["description"] for c in h.fake.commands_by_scope[h.fake._commands_key(
                 {"language_code": tag} if tag != "en" else {})]} for tag in ("en", "cy", "pl", "ur")}
    assert menus["en"]["language"] == "Choose your language"
    assert menus["cy"]["language"] == "Dewis eich iaith"
    assert menus["pl"]["language"] == "Wybierz język"
    assert menus["pl"]["cancel"] == "Zakończ pytania, na które odpowiadasz (dotychczasowe odpowiedzi zostają)"
    assert menus["ur"]["language"] == "اپنی زبان چنیں"  # from the (partial) Urdu catalogue
    assert set(menus["cy"]) == set(menus["pl"]) == set(menus["ur"]) == set(menus["en"])


async def test_an_urdu_question_in_telegram_reads_right_to_left(tmp_path, library):
    svc = service(tmp_path, library, allow_unreviewed_languages=True)
    async with running_bot(svc) as h:
        menu = await h.say(8, "/language")
        chosen = await h.press(8, menu[0], "اردو")
        who = await h.press(8, chosen[-1], "حالات کیسے چل رہے ہیں؟")
        started = await h.press(8, who[0], "والدین، دیکھ بھال کرنے والا یا خاندان کا کوئی اور بالغ فرد")
        question = started[-1].text.split("\n\n")[-1]  # after the notice and the intro, in the same message
        assert question == RLM + "سوال 1\n" + RLM + "ہماری اس بات چیت سے آپ کی سب سے بڑی امیدیں کیا ہیں؟"
        # every line of every message in Urdu starts right to left, even one starting with a number
        asked = await h.say(8, "گھر میں سکون")
        lines = asked[-1].text.split("\n")
        assert all(line.startswith(RLM) for line in lines)
        assert lines[2] == RLM + "0 = اب تک کے سب سے برے حالات، 10 = آپ کی سب سے بڑی امیدیں پوری"  # starts with a digit
    assert i18n.direction("ur") == "rtl" and i18n.direction("cy") == "ltr"
