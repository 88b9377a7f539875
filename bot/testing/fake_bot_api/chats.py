"""Users, private chats, per-chat message ids, blocking."""

from __future__ import annotations

import time
from typing import Any

from .records import (
    StoredMessage,
)


class Chats:
    """Users, private chats, per-chat message ids, blocking."""

    # --- users, chats, message ids ------------------------------------------------------

    def bot_user(self, token: str | None = None) -> dict[str, Any]:
        """The User object getMe returns for ``token`` (id = the token's numeric prefix).

        Without a token, the token of the latest call is used.
        """
        if token is None:
            token = self.calls[-1].token if self.calls else ""
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else 1000000001
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _from_bot(self, chat_id: int, message_id: int, token: str, params: dict[str, Any], **fields: Any) -> StoredMessage:
        """A message the bot sends now (sendMessage, sendDocument, sendPhoto): the bot as sender,
        the private chat, the request's parameters, and the method's own ``fields``."""
        return StoredMessage(chat_id=chat_id, message_id=message_id, from_bot=True, date=int(time.time()),
                             sender=self._bot_sender(token), chat=self._chat(chat_id), params=dict(params), **fields)

    def _bot_sender(self, token: str) -> dict[str, Any]:
        """The bot as a message's ``from`` (without the getMe-only capability fields)."""
        user = self.bot_user(token)
        return {k: user[k] for k in ("id", "is_bot", "first_name", "username")}

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            user = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name or "Test",
                "language_code": language_code or "en",
            }
            self._users[user_id] = user
        if first_name is not None:
            user["first_name"] = first_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def _chat(self, user_id: int) -> dict[str, Any]:
        user = self._users.get(user_id) or self._user(user_id)
        chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        mid = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = mid + 1
        return mid

    def _store(self, message: StoredMessage) -> StoredMessage:
        self._chat_log.setdefault(message.chat_id, []).append(message)
        self._by_id[(message.chat_id, message.message_id)] = message
        return message

    def block_user(
        self, user_id: int, blocked: bool = True, *, emit_update: bool = True
    ) -> int | None:
        """The user blocks (or unblocks) the bot: sends then fail with 403 Forbidden.

        Emits a ``my_chat_member`` update like Telegram does; returns its update_id.
        """
        if blocked:
            self._blocked.add(user_id)
        else:
            self._blocked.discard(user_id)
        if not emit_update:
            return None
        user = self._user(user_id)
        bot = self.bot_user()
        member = {"status": "member", "user": bot}
        kicked = {"status": "kicked", "user": bot, "until_date": 0}
        return self.inject_update(
            {
                "my_chat_member": {
                    "chat": self._chat(user_id),
                    "from": dict(user),
                    "date": int(time.time()),
                    "old_chat_member": member if blocked else kicked,
                    "new_chat_member": kicked if blocked else member,
                }
            }
        )
