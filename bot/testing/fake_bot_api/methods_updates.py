"""Bot API methods getMe, logOut, close and getUpdates (long polling, offset confirmation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from .protocol import (
    DEFAULT_UPDATE_TYPES,
    ERR_POLL_CONFLICT,
    ERR_WEBHOOK_CONFLICT,
    BotAPIError,
)


class UpdateMethods:
    """Bot API methods getMe, logOut, close and getUpdates (long polling, offset confirmation)."""

    # --- Bot API methods ----------------------------------------------------------------

    async def _api_getMe(self, *, token: str, **_: Any) -> dict[str, Any]:
        return self.bot_user(token)

    async def _api_logOut(self, **_: Any) -> bool:
        self.logged_out = True
        return True

    async def _api_close(self, **_: Any) -> bool:
        self.closed = True
        return True

    async def _api_getUpdates(self, *, params: dict[str, Any], **_: Any) -> list:
        if self._webhook is not None:
            raise BotAPIError(409, ERR_WEBHOOK_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        self._changed()  # an older long poll still waiting ends with 409
        offset = params.get("offset")
        limit = params.get("limit")
        limit = 100 if not isinstance(limit, int) or limit <= 0 else min(limit, 100)
        timeout = params.get("timeout") or 0
        if not isinstance(timeout, (int, float)) or timeout < 0:
            timeout = 0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        if isinstance(offset, int) and offset != 0:
            self._confirm(offset)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout)
        while True:
            event = self._change_event
            self._drop_unwanted()
            ready = self._pending[:limit]
            if ready or self._closing:
                break
            if self._webhook is not None:
                raise BotAPIError(409, ERR_WEBHOOK_CONFLICT)
            if generation != self._poll_generation:
                raise BotAPIError(409, ERR_POLL_CONFLICT)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        for entry in ready:
            entry.served = True
            self.delivered.append(entry.update_id)
        return [json.loads(json.dumps(e.update)) for e in ready]

    def _confirm(self, offset: int) -> None:
        before = self._pending
        if offset < 0:
            self._pending = [e for e in self._pending if not e.redelivered][offset:]
        else:
            self._pending = [
                e
                for e in self._pending
                if e.update_id >= offset or (e.redelivered and not e.served)
            ]
        if self.on_confirm is not None and len(before) != len(self._pending):
            kept = {id(e) for e in self._pending}
            gone = [e.update_id for e in before if id(e) not in kept]
            self.on_confirm(gone)  # before the bot is answered: a test may kill it here
        self._changed()

    def _drop_unwanted(self) -> None:
        kept = []
        for entry in self._pending:
            kind = next((k for k in entry.update if k != "update_id"), None)
            if kind in self._allowed_updates:
                kept.append(entry)
        if len(kept) != len(self._pending):
            self._pending = kept
