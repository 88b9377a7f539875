"""Bot API methods that send and change messages: sendMessage, edits, deleteMessage, answerCallbackQuery, sendChatAction."""

from __future__ import annotations

import time
from typing import Any

from .protocol import (
    CHAT_ACTIONS,
    ERR_DELETE_NOT_FOUND,
    ERR_NO_TEXT_TO_EDIT,
    ERR_NOT_MODIFIED,
    ERR_QUERY_INVALID,
    ERR_TEXT_EMPTY,
    ERR_TOO_LONG,
    MAX_TEXT_LENGTH,
    _bad,
    _canon,
)
from .records import (
    AnsweredCallback,
)


class MessageMethods:
    """Bot API methods that send and change messages: sendMessage, edits, deleteMessage, answerCallbackQuery, sendChatAction."""

    async def _api_sendMessage(
        self, *, params: dict[str, Any], token: str, **_: Any
    ) -> dict[str, Any]:
        chat_id = self._sendable_chat(params)
        text, entities = self._text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long=ERR_TOO_LONG,
            empty=ERR_TEXT_EMPTY,
        )
        inline, other = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        message = self._from_bot(
            chat_id, self._new_message_id(chat_id), token, params,
            text=text, entities=entities, inline_markup=inline, keyboard_markup=other, reply_to=reply_to,
        )
        self._store(message)
        return message.to_api()

    async def _api_editMessageText(self, *, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        message = self._editable(params)
        if message.text is None:
            raise _bad(ERR_NO_TEXT_TO_EDIT)
        text, entities = self._text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long=ERR_TOO_LONG,
            empty=ERR_TEXT_EMPTY,
        )
        inline, _other = self._markup(params, inline_only=True)
        if (
            text == message.text
            and _canon(entities) == _canon(message.entities)
            and _canon(inline) == _canon(message.inline_markup)
        ):
            raise _bad(ERR_NOT_MODIFIED)
        message.history.append(message._snapshot())  # noqa: SLF001
        message.text, message.entities, message.inline_markup = text, entities, inline
        message.edit_date = int(time.time())
        return message.to_api()

    async def _api_editMessageReplyMarkup(
        self, *, params: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        message = self._editable(params)
        inline, _other = self._markup(params, inline_only=True)
        if _canon(inline) == _canon(message.inline_markup):
            raise _bad(ERR_NOT_MODIFIED)
        message.history.append(message._snapshot())  # noqa: SLF001
        message.inline_markup = inline
        message.edit_date = int(time.time())
        return message.to_api()

    async def _api_deleteMessage(self, *, params: dict[str, Any], **_: Any) -> bool:
        chat_id = self._chat_id(params)
        message = self._by_id.get((chat_id, params.get("message_id")))  # type: ignore[arg-type]
        if message is None or message.deleted:
            raise _bad(ERR_DELETE_NOT_FOUND)
        message.deleted = True
        return True

    async def _api_answerCallbackQuery(
        self, *, params: dict[str, Any], token: str, **_: Any
    ) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise _bad(ERR_QUERY_INVALID)
        query["answered"] = True
        cache_time = params.get("cache_time")
        self.answered_callbacks.append(
            AnsweredCallback(
                callback_query_id=query_id,
                user_id=query["user_id"],
                message_id=query["message_id"],
                data=query["data"],
                text=params.get("text"),
                show_alert=bool(params.get("show_alert", False)),
                url=params.get("url"),
                cache_time=cache_time if isinstance(cache_time, int) else None,
                token=token,
                time=time.monotonic(),
            )
        )
        return True

    async def _api_sendChatAction(self, *, params: dict[str, Any], **_: Any) -> bool:
        chat_id = self._sendable_chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat_id, action, time.monotonic()))
        return True
