"""An in-process Bot API for python-telegram-bot: a ``BaseRequest`` answering in memory.

No sockets, no HTTP: PTB builds its request as usual and this answers it from a few
dictionaries, so what is left to measure is python-telegram-bot and the bot themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

from telegram.request import BaseRequest, RequestData


class MemoryBotAPI(BaseRequest):
    """Answers getMe, sendMessage, edits, answerCallbackQuery and friends in memory."""

    def __init__(self, bot_id: int = 123456789):
        self.bot_id = bot_id
        self.calls: Counter[str] = Counter()
        self.sent: dict[int, list[str]] = {}
        self._ids: dict[int, itertools.count] = {}
        self.fail_unknown = True
        # getUpdates: the updates waiting (raw, as the Bot API sends them), confirmed as
        # Telegram does: a call with ``offset`` drops every update below it
        self.updates: list[dict] = []
        self._arrived: asyncio.Event | None = None
        self._waiters: list[tuple[str, int, asyncio.Future]] = []

    def offer(self, updates: list[dict]) -> None:
        """Updates for getUpdates to hand out (a long poll waiting returns them at once)."""
        self.updates.extend(updates)
        if self._arrived is not None:
            self._arrived.set()

    async def calls_reach(self, name: str, n: int) -> None:
        """Return once ``n`` calls of ``name`` have been answered (woken by each, no sleeping)."""
        if self.calls[name] >= n:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((name, n, future))
        await future

    def _counted(self, name: str) -> None:
        self.calls[name] += 1
        if self._waiters:
            for waiter in [w for w in self._waiters if w[0] == name and self.calls[name] >= w[1]]:
                self._waiters.remove(waiter)
                if not waiter[2].done():
                    waiter[2].set_result(None)

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = params.get("timeout") or 0
        timeout = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
        if not self.updates and timeout > 0:  # long polling: until something arrives, or the timeout
            self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                pass
            finally:
                self._arrived = None
        return self.updates[:int(params.get("limit") or 100)]

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Bench Bot", "username": "bench_bot",
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message(self, chat_id: int, text: str, markup: Any = None, message_id: int | None = None) -> dict:
        if message_id is None:
            message_id = next(self._ids.setdefault(chat_id, itertools.count(10_000)))
        msg = {"message_id": message_id, "date": int(time.time()), "from": self._bot_user(),
               "chat": {"id": chat_id, "type": "private", "first_name": "User"}, "text": text}
        if markup:
            msg["reply_markup"] = markup if isinstance(markup, dict) else json.loads(markup)
        return msg

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None, read_timeout=None,
                         write_timeout=None, connect_timeout=None, pool_timeout=None) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[1]
        params = request_data.parameters if request_data is not None else {}
        if name == "getUpdates":
            result = await self._get_updates(params)
            self._counted(name)
            return 200, json.dumps({"ok": True, "result": result}).encode()
        self._counted(name)
        if name == "getMe":
            result: Any = self._bot_user()
        elif name == "sendMessage":
            chat_id = int(params["chat_id"])
            text = params["text"]
            self.sent.setdefault(chat_id, []).append(text)
            result = self._message(chat_id, text, params.get("reply_markup"))
        elif name == "editMessageText":
            result = self._message(int(params["chat_id"]), params["text"], params.get("reply_markup"),
                                   int(params["message_id"]))
        elif name in ("editMessageReplyMarkup",):
            result = self._message(int(params.get("chat_id", 0)), "edited", params.get("reply_markup"),
                                   int(params.get("message_id", 1)))
        elif name in ("answerCallbackQuery", "setMyCommands", "deleteWebhook", "deleteMyCommands", "sendChatAction"):
            result = True
        else:
            return 404, json.dumps({"ok": False, "error_code": 404, "description": "Not Found"}).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()


def text_update(update_id: int, user_id: int, text: str, message_id: int) -> dict:
    """A private-chat text message update, as the Bot API sends it."""
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    msg = {"message_id": message_id, "date": int(time.time()),
           "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "en"},
           "chat": {"id": user_id, "type": "private", "first_name": f"User{user_id}"}, "text": text}
    if entities:
        msg["entities"] = entities
    return {"update_id": update_id, "message": msg}
