"""Inspecting what the bot did, and waiting (on a change, not by sleeping) until it has."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from .records import (
    Call,
    StoredDocument,
    StoredMessage,
    UploadedFile,
    keyboard_buttons,
)


class Inspection:
    """Inspecting what the bot did, and waiting (on a change, not by sleeping) until it has."""

    # --- inspection ---------------------------------------------------------------------

    def chat_history(self, user_id: int) -> list[StoredMessage]:
        """Every message in the chat (user's and bot's), oldest first, deleted included."""
        return list(self._chat_log.get(user_id, []))

    def messages(self, user_id: int) -> list[StoredMessage]:
        """The bot's messages in the chat, current state, oldest first (deleted excluded)."""
        return [m for m in self._chat_log.get(user_id, []) if m.from_bot and not m.deleted]

    def last_message(self, user_id: int) -> StoredMessage | None:
        found = self.messages(user_id)
        return found[-1] if found else None

    def updates_from(self, user_id: int) -> list[int]:
        """The ids of every update injected from this user, in order."""
        found = []
        for update_id, update in self._all_updates.items():
            for value in update.values():
                sender = value.get("from") if isinstance(value, dict) else None
                if isinstance(sender, dict) and sender.get("id") == user_id:
                    found.append(update_id)
                    break
        return found

    def message(self, user_id: int, message_id: int) -> StoredMessage | None:
        return self._by_id.get((user_id, message_id))

    def documents(self, user_id: int) -> list[StoredDocument]:
        return [m.document for m in self.messages(user_id) if m.document is not None]

    def photos(self, user_id: int) -> list[StoredDocument]:
        """The photos the bot sent this user (sendPhoto), oldest first."""
        return [m.photo for m in self.messages(user_id) if m.photo is not None]

    @staticmethod
    def buttons(
        message: StoredMessage | dict[str, Any] | None,
    ) -> list[list[tuple[str, str | None]]]:
        """Rows of ``(text, callback_data)`` of a message's keyboard (see ``keyboard_buttons``)."""
        return keyboard_buttons(message)

    def calls_to(self, method: str) -> list[Call]:
        lower = method.lower()
        return [c for c in self.calls if c.method.lower() == lower]

    def calls_summary(self) -> list[dict[str, Any]]:
        """JSON-friendly view of ``calls`` (tokens shortened)."""
        return [
            {
                "method": c.method,
                "status": c.status,
                "token": c.token.split(":", 1)[0],
                "params": {
                    k: (
                        f"<file {v.filename!r} {len(v.data)} bytes>"
                        if isinstance(v, UploadedFile)
                        else v
                    )
                    for k, v in c.params.items()
                },
            }
            for c in self.calls
        ]

    def clear_calls(self) -> None:
        self.calls.clear()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot."""
        return [e.update for e in self._pending]

    @property
    def webhook_url(self) -> str:
        return self._webhook.url if self._webhook else ""

    def is_confirmed(self, update_id: int) -> bool:
        """Whether the bot has confirmed (offset past it / webhook 2xx) the update."""
        return update_id in self._all_updates and all(
            e.update_id != update_id for e in self._pending
        )

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every state change).

        Returns its value; raises TimeoutError listing the latest calls.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._change_event
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(f"{c.method}->{c.status}" for c in self.calls[-10:])
                raise TimeoutError(
                    f"condition not met within {timeout}s; latest calls: [{recent}]"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_messages(
        self, user_id: int, count: int, timeout: float = 5.0
    ) -> list[StoredMessage]:
        """Wait until the bot has at least ``count`` messages in the chat; returns them."""
        await self.wait_for(lambda: len(self.messages(user_id)) >= count, timeout)
        return self.messages(user_id)

    async def wait_for_call(
        self, method: str, count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """Wait until ``method`` has been answered at least ``count`` times."""
        def done() -> bool:
            return len([c for c in self.calls_to(method) if c.status is not None]) >= count

        await self.wait_for(done, timeout)
        return self.calls_to(method)

    async def wait_for_confirmed(self, update_id: int, timeout: float = 5.0) -> None:
        """Wait until the bot confirmed ``update_id`` (see ``is_confirmed``)."""
        await self.wait_for(lambda: self.is_confirmed(update_id), timeout)
