"""Checks shared by the Bot API methods: chat ids, texts with entities, keyboards, replies, editable messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .entities import (
    _strip_text,
    parse_entities,
)
from .protocol import (
    _INLINE_BUTTON_KINDS,
    ERR_BLOCKED,
    ERR_BUTTON_DATA,
    ERR_BUTTON_URL,
    ERR_CANT_EDIT,
    ERR_CHAT_ID_EMPTY,
    ERR_CHAT_NOT_FOUND,
    ERR_EDIT_NOT_FOUND,
    ERR_MARKUP_JSON,
    ERR_REPLY_NOT_FOUND,
    MAX_CALLBACK_DATA_BYTES,
    MAX_INLINE_BUTTONS,
    BotAPIError,
    _bad,
)
from .records import (
    StoredMessage,
)


class Validation:
    """Checks shared by the Bot API methods: chat ids, texts with entities, keyboards, replies, editable messages."""

    # --- shared validation ----------------------------------------------------------------

    def _chat_id(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad(ERR_CHAT_ID_EMPTY)
        if not isinstance(chat_id, int) or chat_id <= 0:
            raise _bad(ERR_CHAT_NOT_FOUND)
        if chat_id not in self._users and self.strict_chats:
            raise _bad(ERR_CHAT_NOT_FOUND)
        return chat_id

    def _sendable_chat(self, params: dict[str, Any]) -> int:
        chat_id = self._chat_id(params)
        if chat_id in self._blocked:
            raise BotAPIError(403, ERR_BLOCKED)
        self._user(chat_id)
        return chat_id

    def _text(
        self,
        text: Any,
        parse_mode: Any,
        entities: Any,
        *,
        limit: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str, list[dict[str, Any]]]:
        text = "" if text is None else str(text)
        if parse_mode:
            plain, parsed = parse_entities(text, str(parse_mode))
        else:
            plain = text
            parsed = list(entities) if isinstance(entities, list) else []
        plain, parsed = _strip_text(plain, parsed)
        if not plain and empty is not None:
            raise _bad(empty)
        if len(plain) > limit:
            raise _bad(too_long)
        return plain, parsed

    @staticmethod
    def _markup(
        params: dict[str, Any], *, inline_only: bool = False
    ) -> tuple[dict | None, dict | None]:
        """Validate reply_markup; returns (inline keyboard, other markup)."""
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None, None
        if not isinstance(markup, dict):
            raise _bad(ERR_MARKUP_JSON)
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array '
                    "of Arrays"
                )
            if sum(len(r) for r in rows) > MAX_INLINE_BUTTONS:
                raise _bad("reply markup is too long")
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad(
                            "can't parse inline keyboard button: Field \"text\" must be of "
                            "type String"
                        )
                    kinds = [k for k in _INLINE_BUTTON_KINDS if k in button]
                    if not kinds:
                        raise _bad(
                            "can't parse inline keyboard button: Text buttons are unallowed "
                            "in the inline keyboard"
                        )
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if not isinstance(data, str):
                            raise _bad(
                                "can't parse inline keyboard button: Field \"callback_data\" "
                                "must be of type String"
                            )
                        size = len(data.encode("utf-8"))
                        if size < 1 or size > MAX_CALLBACK_DATA_BYTES:
                            raise _bad(ERR_BUTTON_DATA)
                    if "url" in button:
                        scheme = urlsplit(str(button["url"])).scheme.lower()
                        if scheme not in ("http", "https", "tg", "ton"):
                            raise _bad(ERR_BUTTON_URL)
            return markup, None
        if inline_only:
            raise _bad("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
                )
            return None, markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return None, markup
        raise _bad(ERR_MARKUP_JSON)

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> StoredMessage | None:
        reply_id = params.get("reply_to_message_id")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_id = reply_parameters.get("message_id", reply_id)
            allow_missing = bool(
                reply_parameters.get("allow_sending_without_reply", allow_missing)
            )
        if reply_id in (None, ""):
            return None
        target = self._by_id.get((chat_id, int(reply_id)))
        if target is None or target.deleted:
            if allow_missing:
                return None
            raise _bad(ERR_REPLY_NOT_FOUND)
        return target

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        if message_id in (None, ""):
            raise _bad("message identifier is not specified")
        if not isinstance(message_id, int):
            raise _bad(ERR_EDIT_NOT_FOUND)
        message = self._by_id.get((chat_id, message_id))
        if message is None or message.deleted:
            raise _bad(ERR_EDIT_NOT_FOUND)
        if not message.from_bot:
            raise _bad(ERR_CANT_EDIT)
        return message
