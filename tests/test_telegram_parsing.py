"""bot.frontends.telegram.parsing: typed text in a private chat parsed quicker than
``Update.de_json``, and to exactly what ``Update.de_json`` makes of it."""

import datetime as dt

import pytest
from telegram import Bot, Chat, Message, TelegramObject, Update, User

from bot.frontends.telegram.parsing import UpdateParser

TOKEN = "123456789:TEST-token-for-the-fake-server-only"


def _text(update_id, user, text, *, date=1_700_000_000, message_id=None, chat=None, **extra):
    message = {"message_id": message_id or update_id + 10, "date": date, "from": user,
               "chat": chat or {"id": user["id"], "type": "private", "first_name": user.get("first_name", "")},
               "text": text, **extra}
    return {"update_id": update_id, "message": message}


def _attributes(obj) -> dict:
    names = []
    for klass in type(obj).__mro__:
        names += [n for n in getattr(klass, "__slots__", ()) if not n.startswith("__") and n not in names]
    out = {}
    for name in names:
        try:
            out[name] = object.__getattribute__(obj, name)
        except AttributeError:
            out[name] = "<unset>"
    return out


def assert_same(made, expected, path="update"):
    """Every attribute alike, recursively through the Telegram objects, each of the same type."""
    assert type(made) is type(expected), path
    if not isinstance(expected, TelegramObject):
        assert made == expected and type(made) is type(expected), path
        if isinstance(expected, dt.datetime):
            assert made.tzinfo == expected.tzinfo, path
        return
    mine, theirs = _attributes(made), _attributes(expected)
    assert mine.keys() == theirs.keys(), path
    for name, value in theirs.items():
        if name == "_bot":
            assert mine[name] is value, f"{path}.{name}"
        elif isinstance(value, TelegramObject) or isinstance(value, dt.datetime):
            assert_same(mine[name], value, f"{path}.{name}")
        elif isinstance(value, tuple) and any(isinstance(v, TelegramObject) for v in value):
            assert len(mine[name]) == len(value), f"{path}.{name}"
            for i, (a, b) in enumerate(zip(mine[name], value)):
                assert_same(a, b, f"{path}.{name}[{i}]")
        else:
            assert mine[name] == value and type(mine[name]) is type(value), f"{path}.{name}: {mine[name]!r} != {value!r}"


USERS = [
    {"id": 501, "is_bot": False, "first_name": "Ann"},
    {"id": 502, "is_bot": False, "first_name": "Bo", "last_name": "Li", "username": "bo_li", "language_code": "en"},
    {"id": 503, "is_bot": False, "first_name": "Chidi", "language_code": "pl"},
]


@pytest.fixture
def bot():
    return Bot(TOKEN)


def test_typed_text_in_a_private_chat_is_made_exactly_as_update_de_json_makes_it(bot):
    parser = UpdateParser()
    texts = ["We argue less at home", "6", "ünïcödé ✓ and سلام", "", " spaced ", "x" * 4096]
    n = 0
    for round_ in range(3):  # the first of each shape is python-telegram-bot's; the next are copies
        for user in USERS:
            for text in texts:
                n += 1
                raw = _text(1000 + n, user, text, date=1_700_000_000 + 37 * n,
                            chat={"id": user["id"], "type": "private", "first_name": user["first_name"],
                                  **({"username": user["username"]} if "username" in user else {})})
                made, expected = parser(raw, bot), Update.de_json(raw, bot)
                assert_same(made, expected)
                assert made == expected and hash(made) == hash(expected) and made.to_dict() == expected.to_dict()
                assert made.message == expected.message and made.message.chat == expected.message.chat
                assert made.effective_user == expected.effective_user and made.effective_chat.id == user["id"]
                assert made.message.get_bot() is bot and made.message.chat.get_bot() is bot
                assert made.message.from_user.get_bot() is bot
    assert parser.copied == n - len(USERS)  # all but the first of each shape were copies


def test_a_copy_is_frozen_and_its_pattern_unchanged_by_using_it(bot):
    parser = UpdateParser()
    first = parser(_text(1, USERS[0], "one"), bot)
    first.effective_user, first.effective_chat, first.effective_message  # noqa: B018 - caches filled
    second = parser(_text(2, USERS[0], "two", message_id=99), bot)
    with pytest.raises(AttributeError):
        second.message.text = "changed"
    third = parser(_text(3, dict(USERS[0], id=777), "three"), bot)
    assert_same(third, Update.de_json(_text(3, dict(USERS[0], id=777), "three"), bot))
    assert (second.message.text, second.message.message_id, first.message.text) == ("two", 99, "one")
    assert parser.copied == 2


@pytest.mark.parametrize("raw", [
    _text(1, USERS[0], "/start abc", entities=[{"type": "bot_command", "offset": 0, "length": 6}]),
    _text(2, USERS[0], "a reply", reply_to_message={"message_id": 5, "date": 1, "chat": {"id": 501, "type": "private"},
                                                    "text": "q"}),
    _text(3, USERS[0], "in a group", chat={"id": -100, "type": "group", "title": "G"}),
    _text(4, USERS[0], "newer field", x_future_field=1),
    _text(5, dict(USERS[0], is_premium=True), "premium sender"),
    {"update_id": 6, "edited_message": _text(6, USERS[0], "edited")["message"]},
    {"update_id": 7, "callback_query": {"id": "q1", "from": USERS[0], "chat_instance": "c", "data": "s:x"}},
    {"update_id": 8, "message": {"message_id": 1, "date": 1, "from": USERS[0], "chat": {"id": 501, "type": "private"},
                                 "photo": []}},
])
def test_anything_else_is_left_to_update_de_json(bot, raw):
    parser = UpdateParser()
    for _ in range(2):  # not the first time, nor the second: never copied
        assert_same(parser(raw, bot), Update.de_json(raw, bot))
    assert parser.copied == 0


def test_a_pattern_is_for_its_own_bot(bot):
    parser = UpdateParser()
    parser(_text(1, USERS[0], "one"), bot)
    other = Bot(TOKEN)
    made = parser(_text(2, USERS[0], "two"), other)
    assert made.message.get_bot() is other and parser.copied == 0
    assert isinstance(made.message, Message) and isinstance(made.message.chat, Chat)
    assert isinstance(made.message.from_user, User)


async def test_the_poller_parses_typed_text_with_the_quick_parser(tmp_path, library, monkeypatch):
    """serve's poller (polling.poll) parses what getUpdates returns with an UpdateParser:
    a person's second typed message is a copy, and is answered like the first."""
    from bot.conversation import ConversationService
    from bot.frontends.telegram import polling
    from bot.store import Store
    from bot.testing.telegram import running_bot

    parsers = []

    class Recording(UpdateParser):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            parsers.append(self)

    monkeypatch.setattr(polling, "UpdateParser", Recording)
    service = ConversationService(Store(tmp_path / "parse.db"), library)
    async with running_bot(service) as h:
        first = h.fake.inject_message(61, "hello")
        await h.delivered(first)
        second = h.fake.inject_message(61, "hello again")
        await h.delivered(second)
        replies = [m.text for m in h.fake.messages(61) if m.from_bot]
    assert len(parsers) == 1 and parsers[0].copied >= 1
    assert len(replies) >= 2 and replies[-1] == replies[-2]  # the same answer to the same kind of words
