"""Parsing updates: python-telegram-bot's ``Update.de_json``, with a shortcut for the update
almost every one is, text typed in a private chat.

``Update.de_json`` is the largest cost per update on the event loop once an update is kept
(scripts/bench telegram, profiled: about a third of the loop's time): a ``Message`` has some
120 attributes, each set through ``TelegramObject.__setattr__``, and every optional field is
looked up. For an update of exactly the plain shape (``update_id`` and a ``message`` with only
``message_id``, ``date``, ``from``, ``chat`` and ``text``; a sender and a private chat with only
their usual fields) the first one of each shape is parsed by python-telegram-bot itself and
kept as a pattern; the next ones are copies of the pattern as it was parsed, with the fields
that differ put in, as ``de_json`` puts them (the same values, the same objects: the
identity used for ``==`` and ``hash``, the bot, frozen). Anything else, or anything a field
of which this module does not know (entities, a reply, a caption, a group, a button press,
an edit, a field newer than this python-telegram-bot), is parsed by ``Update.de_json``.

tests/test_telegram_parsing.py compares every attribute of the copies with
``Update.de_json``'s own result (python-telegram-bot 22, pinned below 23).
"""

from __future__ import annotations

import datetime as dt

from telegram import Chat, Message, Update, User

_MESSAGE = frozenset({"message_id", "date", "from", "chat", "text"})
_USER = frozenset({"id", "is_bot", "first_name", "last_name", "username", "language_code"})
_CHAT = frozenset({"id", "type", "first_name", "last_name", "username"})
_UNSET = object()


def _slots(cls) -> tuple[str, ...]:
    names: list[str] = []
    for klass in cls.__mro__:
        for name in getattr(klass, "__slots__", ()):
            if not name.startswith("__") and name not in names:
                names.append(name)
    return tuple(names)


_NAMES = {cls: _slots(cls) for cls in (Update, Message, User, Chat)}


def _snapshot(obj) -> tuple:
    """Every attribute of ``obj`` as parsed (before anything has used it)."""
    out = []
    for name in _NAMES[type(obj)]:
        try:
            out.append(object.__getattribute__(obj, name))
        except AttributeError:
            out.append(_UNSET)
    return tuple(out)


def _copy(cls, values: tuple, changed: dict):
    obj = cls.__new__(cls)
    put = object.__setattr__
    for name, value in zip(_NAMES[cls], values):
        if value is not _UNSET:
            put(obj, name, value)
    for name, value in changed.items():
        put(obj, name, value)
    return obj


class UpdateParser:
    """``parse(raw, bot)``: the ``Update`` python-telegram-bot's ``Update.de_json`` makes of
    ``raw`` (None for nothing), quicker for typed text in a private chat."""

    def __init__(self, max_patterns: int = 64):
        self._patterns: dict[tuple, tuple] = {}
        self.max_patterns = max_patterns
        self.copied = 0  # updates made from a pattern (tests, benchmarks)

    @staticmethod
    def _shape(raw) -> tuple | None:
        if type(raw) is not dict or len(raw) != 2 or "message" not in raw or type(raw.get("update_id")) is not int:
            return None
        message = raw["message"]
        if type(message) is not dict or not message.keys() <= _MESSAGE or len(message) != len(_MESSAGE):
            return None
        user, chat = message["from"], message["chat"]
        if type(user) is not dict or type(chat) is not dict or not user.keys() <= _USER or not chat.keys() <= _CHAT:
            return None
        if chat.get("type") != "private" or type(message["date"]) is not int:
            return None
        return tuple(user), tuple(chat)

    def __call__(self, raw, bot) -> Update | None:
        shape = self._shape(raw)
        if shape is None:
            return Update.de_json(raw, bot)
        pattern = self._patterns.get(shape)
        if pattern is None or pattern[0] is not bot:
            update = Update.de_json(raw, bot)
            message = update.message
            if len(self._patterns) >= self.max_patterns:
                self._patterns.clear()
            self._patterns[shape] = (bot, _snapshot(update), _snapshot(message), _snapshot(message.from_user),
                                     _snapshot(message.chat), message.date.tzinfo)
            return update
        _, update_values, message_values, user_values, chat_values, tzinfo = pattern
        message = raw["message"]
        user_raw, chat_raw = message["from"], message["chat"]
        user = _copy(User, user_values, {**user_raw, "_id_attrs": (user_raw["id"],)})
        chat_fields = dict(chat_raw, type=Chat.PRIVATE)
        chat = _copy(Chat, chat_values, {**chat_fields, "_id_attrs": (chat_raw["id"],)})
        parsed = _copy(Message, message_values, {
            "message_id": message["message_id"], "date": dt.datetime.fromtimestamp(message["date"], tz=tzinfo),
            "from_user": user, "chat": chat, "text": message["text"], "_id_attrs": (message["message_id"], chat)})
        self.copied += 1
        return _copy(Update, update_values, {"update_id": raw["update_id"], "message": parsed,
                                             "_id_attrs": (raw["update_id"],)})
