"""Injected faults: HTTP errors, 429 with retry_after, dropped connections, delays, latency."""

from __future__ import annotations

from .records import (
    _Fault,
)


class Faults:
    """Injected faults: HTTP errors, 429 with retry_after, dropped connections, delays, latency."""

    # --- faults -------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        count: int = 1,
        retry_after: int | None = None,
        drop_connection: bool = False,
        delay: float | None = None,
        description: str | None = None,
        take_effect: bool = False,
        hold=None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any) misbehave.

        ``status`` (default 500) answers with that HTTP status and the Bot API error body;
        429 carries ``parameters.retry_after`` (``retry_after`` given alone implies 429).
        ``drop_connection`` closes the connection without an answer. ``delay`` sleeps first;
        given alone, the call is then answered normally. ``take_effect`` performs the call
        first (message stored, edit applied) and only loses/replaces the answer: the
        "sent, but the reply never arrived" case. ``hold`` (an asyncio.Event) keeps the
        call waiting until the test sets it, then answers normally: a slow call whose end the
        test decides, rather than a delay a loaded machine may outlast. Faults queue in order.
        """
        if status is None and retry_after is not None:
            status = 429
        self._faults.append(
            _Fault(
                method="*" if method == "*" else method.lower(),
                count=count,
                status=status,
                retry_after=retry_after,
                drop_connection=drop_connection,
                delay=delay,
                description=description,
                take_effect=take_effect,
                hold=hold,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()
        self._held_chats.clear()

    def hold_chat(self, chat_id: int | str, retry_after: int = 1) -> None:
        """Answer every call to this chat (any method with its ``chat_id``) with 429 and
        ``retry_after`` until :meth:`release_chat`: Telegram's flood wait for one chat."""
        self._held_chats[str(chat_id)] = retry_after

    def release_chat(self, chat_id: int | str) -> None:
        self._held_chats.pop(str(chat_id), None)
        self._changed()

    def _held(self, params: dict) -> int | None:
        chat = params.get("chat_id")
        return self._held_chats.get(str(chat)) if chat is not None and self._held_chats else None

    def set_latency(self, seconds: float) -> None:
        """Delay every API call by ``seconds``."""
        self.latency = float(seconds)

    def _take_fault(self, method: str) -> _Fault | None:
        lower = method.lower()
        for fault in self._faults:
            if fault.method in ("*", lower):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None
