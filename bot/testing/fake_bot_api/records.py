"""What the fake server keeps: calls, messages, documents, answered callbacks, faults, updates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# --- records ------------------------------------------------------------------------------


class Call:
    """One API call: unpacks as ``(method, params, token, time)``.

    ``time`` is ``time.monotonic()`` when the request arrived. ``status`` is the HTTP status
    answered: ``None`` while in flight, ``"dropped"`` for a dropped connection,
    ``"cancelled"`` for a long poll whose client went away. ``fault`` is the injected fault
    that applied, if any.
    """

    __slots__ = ("fault", "method", "params", "status", "time", "token")

    def __init__(self, method: str, params: dict[str, Any], token: str, time_: float):
        self.method = method
        self.params = params
        self.token = token
        self.time = time_
        self.status: int | str | None = None
        self.fault: _Fault | None = None

    def __iter__(self):
        return iter((self.method, self.params, self.token, self.time))

    def __getitem__(self, index: int) -> Any:
        return (self.method, self.params, self.token, self.time)[index]

    def __len__(self) -> int:
        return 4

    def __repr__(self) -> str:
        return f"Call({self.method!r}, {self.params!r}, status={self.status!r})"


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    data: bytes
    content_type: str | None = None


@dataclass
class StoredDocument:
    """A document the bot sent (``sendDocument``)."""

    chat_id: int
    message_id: int
    file_id: str
    file_unique_id: str
    filename: str | None
    data: bytes | None
    mime_type: str | None
    caption: str | None = None
    url: str | None = None

    @property
    def size(self) -> int:
        return len(self.data or b"")

    def to_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.filename:
            doc["file_name"] = self.filename
        if self.mime_type:
            doc["mime_type"] = self.mime_type
        if self.data is not None:
            doc["file_size"] = len(self.data)
        return doc


@dataclass
class _FileRecord:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


@dataclass
class StoredMessage:
    """One message in a private chat, in its current state.

    ``history`` holds earlier versions (oldest first), each a dict with ``text``,
    ``entities``, ``reply_markup``, ``caption`` and ``edit_date``; ``versions`` adds the
    current one.
    """

    chat_id: int
    message_id: int
    from_bot: bool
    date: int
    sender: dict[str, Any]
    chat: dict[str, Any]
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    inline_markup: dict[str, Any] | None = None
    keyboard_markup: dict[str, Any] | None = None
    document: StoredDocument | None = None
    photo: StoredDocument | None = None  # sendPhoto: the picture's bytes (to_api gives its sizes)
    extra: dict[str, Any] = field(default_factory=dict)
    reply_to: StoredMessage | None = None
    edit_date: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The inline keyboard if any, else the reply keyboard/remove/force_reply sent."""
        return self.inline_markup if self.inline_markup is not None else self.keyboard_markup

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        return keyboard_buttons(self)

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def versions(self) -> list[dict[str, Any]]:
        return [*self.history, self._snapshot()]

    def _snapshot(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "entities": list(self.entities),
            "caption": self.caption,
            "reply_markup": self.inline_markup,
            "edit_date": self.edit_date,
        }

    def to_api(self, *, with_reply: bool = True) -> dict[str, Any]:
        """The Message object as the Bot API returns it."""
        msg: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            msg["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            msg["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        if self.text is not None:
            msg["text"] = self.text
            if self.entities:
                msg["entities"] = [dict(e) for e in self.entities]
        if self.document is not None:
            msg["document"] = self.document.to_api()
        msg.update(json.loads(json.dumps(self.extra)))
        if self.caption is not None:
            msg["caption"] = self.caption
            if self.caption_entities:
                msg["caption_entities"] = [dict(e) for e in self.caption_entities]
        if self.inline_markup is not None:
            msg["reply_markup"] = json.loads(json.dumps(self.inline_markup))
        return msg


@dataclass
class AnsweredCallback:
    callback_query_id: str
    user_id: int
    message_id: int | None
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    token: str
    time: float


@dataclass
class WebhookDelivery:
    update_id: int
    url: str
    status: int | None  # None when the connection failed
    error: str | None
    time: float


@dataclass
class _Fault:
    method: str  # lower-case method name or "*"
    count: int
    status: int | None
    retry_after: int | None
    drop_connection: bool
    delay: float | None
    description: str | None
    take_effect: bool = False
    hold: Any = None  # an asyncio.Event: the call waits until the test sets it


@dataclass
class _Pending:
    update: dict[str, Any]
    redelivered: bool = False
    served: bool = False

    @property
    def update_id(self) -> int:
        return self.update["update_id"]


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    token: str
    ip_address: str = "127.0.0.1"
    last_error_date: int | None = None
    last_error_message: str | None = None


def keyboard_buttons(
    message: StoredMessage | dict[str, Any] | None,
) -> list[list[tuple[str, str | None]]]:
    """Rows of ``(text, callback_data)`` of a message's keyboard.

    Accepts a StoredMessage, an API Message dict or a reply_markup dict. Inline buttons
    without callback_data and reply-keyboard buttons give ``None`` as data.
    """
    if message is None:
        return []
    if isinstance(message, StoredMessage):
        markup = message.reply_markup
    elif "inline_keyboard" in message or "keyboard" in message:
        markup = message
    else:
        markup = message.get("reply_markup")
    if not markup:
        return []
    if "inline_keyboard" in markup:
        return [
            [(b.get("text", ""), b.get("callback_data")) for b in row]
            for row in markup["inline_keyboard"]
        ]
    if "keyboard" in markup:
        return [
            [(b if isinstance(b, str) else b.get("text", ""), None) for b in row]
            for row in markup["keyboard"]
        ]
    return []
