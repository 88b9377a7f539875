"""A fake Telegram Bot API server for tests, benchmarks and chaos scripts.

The real python-telegram-bot ``Application`` talks to it over loopback HTTP::

    async with FakeBotAPI() as fake:
        app = (
            ApplicationBuilder()
            .token("123456:TEST")
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .build()
        )
        ...
        update_id = fake.inject_message(42, "hello")
        [reply] = await fake.wait_for_messages(42, 1)

What it models (closely enough that PTB cannot tell the difference for the methods
below): the ``{"ok": ..., "result"/"error_code"/"description"}`` envelope, real error
texts and limits (4096-character messages after entity parsing, 64-byte callback data,
"message is not modified"), ``getUpdates`` with offset confirmation and long polling,
webhook delivery with the secret-token header (and 409 Conflict for ``getUpdates`` while
a webhook is set), per-chat message ids, edits with history, uploads and downloads.

What it is for beyond that: injecting user input (messages, commands, button presses,
photos, stickers, voice notes, edits, arbitrary updates, re-deliveries) and faults
(HTTP errors, 429 with ``retry_after``, dropped connections, delays, latency), and
inspecting everything the bot did.

All chats are private chats (chat id == user id). One update queue is shared by every
token; calls record which token they used.

Like the real server, a call that has arrived is carried out even if its client hangs up
(so a client-side timeout may still send the message); only a long poll ends with its
client. ``fail_next(..., take_effect=True)`` models "sent, but the answer was lost".

Hooks are plain methods meant to be called from the event loop the server runs on.
Waiters (``wait_for`` and friends) wake on every state change, not by sleeping.

Standalone: ``python -m bot.testing.fake_bot_api --port 8081`` serves until Ctrl-C and
exposes the hooks over HTTP under ``/_fake/<hook>`` (POST a JSON object of keyword
arguments), e.g. ``curl -d '{"user_id": 1, "text": "hi"}' localhost:8081/_fake/inject_message``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import mimetypes
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout, web

__all__ = [
    "AnsweredCallback",
    "BotAPIError",
    "Call",
    "FakeBotAPI",
    "StoredDocument",
    "StoredMessage",
    "UploadedFile",
    "WebhookDelivery",
]

_LOG = logging.getLogger(__name__)

# --- Bot API limits and texts -------------------------------------------------------------

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
# What Telegram sends when allowed_updates was never set (or set to []).
DEFAULT_UPDATE_TYPES = frozenset(ALL_UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    420: "Flood",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

ERR_TOO_LONG = "Bad Request: message is too long"
ERR_TEXT_EMPTY = "Bad Request: message text is empty"
ERR_CAPTION_TOO_LONG = "Bad Request: message caption is too long"
ERR_BUTTON_DATA = "Bad Request: BUTTON_DATA_INVALID"
ERR_BUTTON_URL = "Bad Request: BUTTON_URL_INVALID"
ERR_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
ERR_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
ERR_DELETE_NOT_FOUND = "Bad Request: message to delete not found"
ERR_CANT_EDIT = "Bad Request: message can't be edited"
ERR_NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
ERR_CHAT_NOT_FOUND = "Bad Request: chat not found"
ERR_CHAT_ID_EMPTY = "Bad Request: chat_id is empty"
ERR_REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
ERR_BLOCKED = "Forbidden: bot was blocked by the user"
ERR_QUERY_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
ERR_MARKUP_JSON = "Bad Request: can't parse reply keyboard markup JSON object"
ERR_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
ERR_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
        "menu_button",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "user_id",
        "message_thread_id",
        "from_chat_id",
        "duration",
    }
)
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "revoke",
    }
)
_INLINE_BUTTON_KINDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


_CALL_KEY: web.RequestKey[Call] = web.RequestKey("fake_bot_api_call", "Call")


class BotAPIError(Exception):
    """An error answer: HTTP ``status`` and the Bot API ``description``."""

    def __init__(self, status: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> BotAPIError:
    if not description.startswith("Bad Request"):
        description = f"Bad Request: {description}"
    return BotAPIError(400, description)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
        return FakeBotAPI.buttons(self)

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


# --- entity parsing ----------------------------------------------------------------------


class _EntityError(Exception):
    pass


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _TelegramHTML(HTMLParser):
    """The HTML subset the Bot API accepts, producing (text, entities)."""

    SIMPLE = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strikethrough",
        "strike": "strikethrough",
        "del": "strikethrough",
        "tg-spoiler": "spoiler",
        "code": "code",
        "pre": "pre",
        "blockquote": "blockquote",
    }

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 offset in the output text
        self.stack: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []
        line_starts = [0]
        for match in re.finditer("\n", source):
            line_starts.append(match.end())
        self._line_starts = line_starts

    def _offset(self) -> int:
        line, col = self.getpos()
        return _byte_offset(self.source, self._line_starts[line - 1] + col)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        entity: dict[str, Any] | None = None
        if tag in self.SIMPLE:
            kind = self.SIMPLE[tag]
            entity = {"type": kind}
            if tag == "blockquote" and "expandable" in attributes:
                entity["type"] = "expandable_blockquote"
            if tag == "code" and self.stack and self.stack[-1]["tag"] == "pre":
                lang = attributes.get("class") or ""
                if lang.startswith("language-"):
                    self.stack[-1]["entity"]["language"] = lang[len("language-") :]
                entity = None  # merged into the enclosing pre
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            entity = {"type": "spoiler"}
        elif tag == "a":
            href = attributes.get("href") or ""
            match = re.match(r"tg://user\?id=(\d+)$", href)
            if match:
                entity = {
                    "type": "text_mention",
                    "user": {"id": int(match.group(1)), "is_bot": False, "first_name": "User"},
                }
            elif href:
                entity = {"type": "text_link", "url": href}
        elif tag == "tg-emoji":
            entity = {"type": "custom_emoji", "custom_emoji_id": attributes.get("emoji-id", "")}
        else:
            raise _EntityError(
                f'Unsupported start tag "{tag}" at byte offset {self._offset()}'
            )
        self.stack.append({"tag": tag, "entity": entity, "start": self.pos})

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _EntityError(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise _EntityError(f'Unexpected end tag at byte offset {self._offset()}')
        top = self.stack[-1]
        if top["tag"] != tag:
            raise _EntityError(
                f"Unmatched end tag at byte offset {self._offset()}, "
                f'expected "</{top["tag"]}>", found "</{tag}>"'
            )
        self.stack.pop()
        entity = top["entity"]
        if entity is not None and self.pos > top["start"]:
            entity.update(offset=top["start"], length=self.pos - top["start"])
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.pos += _utf16_len(data)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.feed(self.source)
        self.close()
        if self.stack:
            raise _EntityError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1]["tag"]}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    pos = 0  # UTF-16 offset
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, str, int, int]] = []  # (marker, type, start16, source index)
    i, n = 0, len(source)
    at_line_start = True

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += _utf16_len(chunk)

    while i < n:
        c = source[i]
        line_start, at_line_start = at_line_start, False
        if c == "\\":
            if i + 1 < n and 0 < ord(source[i + 1]) < 127:
                emit(source[i + 1])
                at_line_start = source[i + 1] == "\n"
                i += 2
                continue
            raise _EntityError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if c == "`":
            fence = source.startswith("```", i)
            marker = "```" if fence else "`"
            j = i + len(marker)
            language = None
            if fence:
                newline = source.find("\n", j)
                if newline != -1 and re.fullmatch(r"[\w+#.-]*", source[j:newline]):
                    language = source[j:newline] or None
                    j = newline + 1
            body: list[str] = []
            while j < n and not source.startswith(marker, j):
                if source[j] == "\\" and j + 1 < n and source[j + 1] in "`\\":
                    body.append(source[j + 1])
                    j += 2
                else:
                    body.append(source[j])
                    j += 1
            if j >= n:
                kind = "Pre" if fence else "Code"
                raise _EntityError(
                    f"Can't find end of {kind} entity at byte offset {_byte_offset(source, i)}"
                )
            start = pos
            emit("".join(body))
            if pos > start:
                entity: dict[str, Any] = {
                    "type": "pre" if fence else "code",
                    "offset": start,
                    "length": pos - start,
                }
                if language:
                    entity["language"] = language
                entities.append(entity)
            i = j + len(marker)
            continue
        marker = None
        kind = None
        if source.startswith("__", i):
            marker, kind = "__", "underline"
        elif source.startswith("||", i):
            marker, kind = "||", "spoiler"
        elif c == "_":
            marker, kind = "_", "italic"
        elif c == "*":
            marker, kind = "*", "bold"
        elif c == "~":
            marker, kind = "~", "strikethrough"
        elif c == "[":
            marker, kind = "[", "text_link"
        if marker is not None and marker != "[" and stack and stack[-1][0] == marker:
            _, kind, start, _src = stack.pop()
            if pos > start:
                entities.append({"type": kind, "offset": start, "length": pos - start})
            i += len(marker)
            continue
        if marker is not None:
            if any(entry[0] == marker for entry in stack):
                _, open_kind, _, src = next(e for e in stack if e[0] == marker)
                raise _EntityError(
                    f"Can't find end of {_MDV2_NAMES[open_kind]} entity at byte offset "
                    f"{_byte_offset(source, src)}"
                )
            stack.append((marker, kind, pos, i))  # type: ignore[arg-type]
            i += len(marker)
            continue
        if c == "]" and stack and stack[-1][0] == "[":
            _, kind, start, _src = stack.pop()
            if source.startswith("(", i + 1):
                close = i + 2
                while close < n and source[close] != ")":
                    close += 2 if source[close] == "\\" else 1
                if close >= n:
                    raise _EntityError(
                        f"Can't find end of a URL at byte offset {_byte_offset(source, i + 1)}"
                    )
                url = source[i + 2 : close].replace("\\)", ")").replace("\\\\", "\\")
                if pos > start and url:
                    entities.append(
                        {"type": "text_link", "offset": start, "length": pos - start, "url": url}
                    )
                i = close + 1
            else:
                i += 1
            continue
        if c == ">" and line_start:
            i += 1
            continue  # blockquote marker; the quote itself is not modelled as an entity
        if c in _MDV2_RESERVED:
            raise _EntityError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(c)
        at_line_start = c == "\n"
        i += 1
    if stack:
        _, kind, _, src = stack[0]
        raise _EntityError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(source, src)}"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    i, n = 0, len(source)
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.append(source[i + 1])
            pos += 1
            i += 2
            continue
        if c in kinds or c == "[":
            begin = i
            if source.startswith("```", i):
                close = source.find("```", i + 3)
                if close == -1:
                    raise _EntityError(
                        "Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(source, begin)}"
                    )
                body = source[i + 3 : close]
                language = None
                newline = body.find("\n")
                if newline != -1 and re.fullmatch(r"[\w+#.-]+", body[:newline]):
                    language, body = body[:newline], body[newline + 1 :]
                entity: dict[str, Any] = {"type": "pre", "offset": pos, "length": _utf16_len(body)}
                if language:
                    entity["language"] = language
                i = close + 3
            elif c == "[":
                close = source.find("]", i + 1)
                if close == -1 or not source.startswith("(", close + 1):
                    raise _EntityError(
                        "Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(source, begin)}"
                    )
                url_end = source.find(")", close + 2)
                if url_end == -1:
                    raise _EntityError(
                        "Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(source, begin)}"
                    )
                body = source[i + 1 : close]
                entity = {
                    "type": "text_link",
                    "offset": pos,
                    "length": _utf16_len(body),
                    "url": source[close + 2 : url_end],
                }
                i = url_end + 1
            else:
                close = source.find(c, i + 1)
                if close == -1:
                    raise _EntityError(
                        "Can't find end of the entity starting at byte offset "
                        f"{_byte_offset(source, begin)}"
                    )
                body = source[i + 1 : close]
                entity = {"type": kinds[c], "offset": pos, "length": _utf16_len(body)}
                i = close + 1
            out.append(body)
            pos += _utf16_len(body)
            if entity["length"]:
                entities.append(entity)
            continue
        out.append(c)
        pos += _utf16_len(c)
        i += 1
    return "".join(out), entities


def parse_entities(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` per ``parse_mode`` like the Bot API: (plain text, entities).

    Raises :class:`BotAPIError` with the Bot API's "can't parse entities" text on bad markup.
    """
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    try:
        if mode == "html":
            return _TelegramHTML(text).result()
        if mode == "markdownv2":
            return _parse_markdown_v2(text)
        if mode == "markdown":
            return _parse_markdown(text)
    except _EntityError as exc:
        raise _bad(f"can't parse entities: {exc}") from None
    raise _bad("unsupported parse_mode")


def _strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace as Telegram does, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = _utf16_len(text[: len(text) - len(text.lstrip())])
    total = _utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![^\s])")


def _command_entities(text: str) -> list[dict[str, Any]]:
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group()),
            }
        )
    return entities


# --- the server ---------------------------------------------------------------------------


class FakeBotAPI:
    """A fake Telegram Bot API server on loopback (see the module docstring)."""

    def __init__(
        self,
        *,
        valid_tokens: Iterable[str] | None = None,
        bot_username: str = "fake_test_bot",
        bot_first_name: str = "Fake Bot",
        strict_chats: bool = False,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
    ):
        #: When set, any other token is answered with 401 Unauthorized.
        self.valid_tokens: set[str] | None = set(valid_tokens) if valid_tokens else None
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        #: When True, sending to a user who never wrote to the bot fails with "chat not found".
        self.strict_chats = strict_chats
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self.latency: float = 0.0
        #: Seconds between two messages to one chat, like Telegram's limit of about one
        #: message a second per chat: a send queues behind the previous ones (0: no limit).
        self.chat_send_interval: float = 0.0
        #: With ``chat_send_interval``: "queue" holds a send until its slot; "429" answers
        #: too early a send with 429 Too Many Requests and a retry_after, as Telegram does.
        self.chat_send_mode: str = "queue"
        self._chat_free_at: dict[int, float] = {}

        self.host: str | None = None
        self.port: int | None = None

        # inspection
        self.calls: list[Call] = []
        self.answered_callbacks: list[AnsweredCallback] = []
        self.chat_actions: list[tuple[int, str, float]] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.delivered: list[int] = []  # update_ids in the order they were served
        self.commands: list[dict[str, Any]] | None = None  # last setMyCommands
        self.commands_by_scope: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.logged_out = False
        self.closed = False

        # state
        self._users: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._chat_log: dict[int, list[StoredMessage]] = {}
        self._by_id: dict[tuple[int, int], StoredMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._pending: list[_Pending] = []
        self._all_updates: dict[int, dict[str, Any]] = {}
        self._last_update_id = 0
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._callback_counter = 0
        self._files: dict[str, _FileRecord] = {}
        self._file_counter = 0
        self._faults: list[_Fault] = []
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task | None = None
        self._poll_generation = 0
        self._last_commands_key: tuple[str, str] | None = None

        # machinery
        self._change_event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._closing = False
        self._inflight: set[asyncio.Task] = set()
        self._methods: dict[str, tuple[str, Callable]] = {}
        for name in (
            "getMe",
            "getUpdates",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "deleteMessage",
            "answerCallbackQuery",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "sendChatAction",
            "sendDocument",
            "getFile",
            "logOut",
            "close",
        ):
            self._methods[name.lower()] = (name, getattr(self, f"_api_{name}"))

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeBotAPI:
        """Serve on ``host:port`` (0 picks a free port); returns self."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already running")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_route("*", "/_fake/{hook}", self._handle_control)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, access_log=None,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.host = host
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop serving; wakes long polls and cancels webhook delivery."""
        self._closing = True
        self._fire()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        for task in list(self._inflight):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token and /method."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """Hooks over HTTP: POST JSON kwargs to ``{control_url}/<hook>``."""
        return f"{self.url}/_fake"

    # --- change notification ------------------------------------------------------------

    def _fire(self) -> None:
        event, self._change_event = self._change_event, asyncio.Event()
        event.set()

    def _changed(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fire()
        else:
            loop.call_soon_threadsafe(self._fire)

    # --- HTTP handlers ------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        # Like the real server, a call that arrived is carried out even if the client hangs
        # up (timeout): only a long poll ends with its client.
        if request.match_info["method"].lower() != "getupdates":
            task = asyncio.ensure_future(self._handle_api_call(request))
            self._inflight.add(task)
            task.add_done_callback(self._call_done)
            return await asyncio.shield(task)
        try:
            return await self._handle_api_call(request)
        except asyncio.CancelledError:
            # the client went away (e.g. PTB cancelled its long poll) or we dropped it
            call = request.get(_CALL_KEY)
            if call is not None and call.status is None:
                call.status = "cancelled"
                self._changed()
            raise

    def _call_done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a client that hung up gets nothing anyway

    async def _handle_api_call(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        canonical, handler = self._methods.get(raw_method.lower(), (raw_method, None))
        try:
            params, files = await self._read_params(request)
        except BotAPIError as exc:
            call = self._record(canonical, {}, token)
            return self._error_response(call, exc)
        call = self._record(canonical, {**params, **files}, token)
        request[_CALL_KEY] = call

        if self.valid_tokens is not None and token not in self.valid_tokens:
            return self._error_response(call, BotAPIError(401, "Unauthorized"))
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.chat_send_interval and canonical in ("sendMessage", "sendDocument"):
            wait = await self._chat_slot(params.get("chat_id"))
            if wait:
                return self._error_response(call, BotAPIError(
                    429, f"Too Many Requests: retry after {wait}", {"retry_after": wait}))
        fault = self._take_fault(canonical)
        if fault is not None:
            call.fault = fault
            if fault.delay:
                await asyncio.sleep(fault.delay)
            status = fault.status
            if status is None and fault.delay is None and not fault.drop_connection:
                status = 500
            if fault.take_effect and handler is not None and (
                fault.drop_connection or status is not None
            ):
                # the call happens, only its answer is lost or replaced
                with contextlib.suppress(BotAPIError):
                    await handler(params=params, files=files, token=token, request=request)
            if fault.drop_connection:
                call.status = "dropped"
                self._changed()
                return self._drop(request)
            if status is not None:
                parameters = None
                description = fault.description or _STATUS_TEXT.get(status, "Error")
                if status == 429:
                    retry_after = fault.retry_after if fault.retry_after is not None else 1
                    parameters = {"retry_after": retry_after}
                    description = (
                        fault.description or f"Too Many Requests: retry after {retry_after}"
                    )
                return self._error_response(call, BotAPIError(status, description, parameters))
        if handler is None:
            return self._error_response(call, BotAPIError(404, "Not Found"))
        try:
            result = await handler(params=params, files=files, token=token, request=request)
        except BotAPIError as exc:
            return self._error_response(call, exc)
        except Exception:  # a bug in the fake: answer like a server error, keep serving
            _LOG.exception("fake Bot API failed on %s", canonical)
            return self._error_response(call, BotAPIError(500, "Internal Server Error"))
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, tuple):
            body["result"], body["description"] = result
        else:
            body["result"] = result
        call.status = 200
        self._changed()
        return web.json_response(body)

    async def _chat_slot(self, chat_id: Any) -> int:
        """Wait for this chat's next free sending slot (``chat_send_interval``); in "429"
        mode, return the whole seconds to wait instead (0: send now)."""
        if not isinstance(chat_id, int):
            return 0
        now = time.monotonic()
        free = self._chat_free_at.get(chat_id, 0.0)
        if self.chat_send_mode == "429":
            if free > now:
                return max(1, int(free - now + 0.999))
            self._chat_free_at[chat_id] = now + self.chat_send_interval
            return 0
        slot = max(now, free)
        self._chat_free_at[chat_id] = slot + self.chat_send_interval
        if slot > now:
            await asyncio.sleep(slot - now)
        return 0

    def _record(self, method: str, params: dict[str, Any], token: str) -> Call:
        call = Call(method, params, token, time.monotonic())
        self.calls.append(call)
        self._changed()
        return call

    def _error_response(self, call: Call, exc: BotAPIError) -> web.Response:
        call.status = exc.status
        self._changed()
        return web.json_response(exc.payload(), status=exc.status)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp cannot write to an aborted transport; it will discard this quietly.
        raise asyncio.CancelledError

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["file_path"]
        for record in self._files.values():
            if record.file_path == path:
                return web.Response(body=record.data, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad("JSON object expected")
                raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge:
                    raise BotAPIError(413, "Request Entity Too Large") from None
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            filename=value.filename,
                            data=value.file.read(),
                            content_type=value.content_type,
                        )
                    else:
                        raw[key] = value
        params = {key: self._coerce(key, value) for key, value in raw.items()}
        return params, files

    @staticmethod
    def _coerce(name: str, value: Any) -> Any:
        """Form values are strings; PTB JSON-encodes every non-string value."""
        if name in _JSON_FIELDS and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                if name == "reply_markup":
                    raise _bad(ERR_MARKUP_JSON) from None
                raise _bad(f"can't parse {name} JSON object") from None
        if name in _INT_FIELDS and isinstance(value, str):
            if re.fullmatch(r"-?\d+", value.strip()):
                return int(value)
            return value
        if name in _FLOAT_FIELDS and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _bad(f"wrong parameter {name} in request") from None
        if name in _BOOL_FIELDS and isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return value

    async def _handle_control(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        allowed = {
            "inject_message",
            "inject_command",
            "inject_update",
            "inject_photo",
            "inject_sticker",
            "inject_voice",
            "inject_edited_message",
            "press_button",
            "redeliver",
            "fail_next",
            "clear_faults",
            "set_latency",
            "block_user",
            "messages",
            "calls_summary",
        }
        if hook not in allowed:
            return web.json_response({"error": f"unknown hook {hook!r}"}, status=404)
        kwargs: dict[str, Any] = dict(request.query)
        if request.body_exists:
            try:
                kwargs.update(await request.json())
            except ValueError:
                return web.json_response({"error": "body must be a JSON object"}, status=400)
        for key in ("user_id", "message_id", "update_id", "count", "status", "retry_after"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = int(kwargs[key])
        try:
            result = getattr(self, hook)(**kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)
        if hook == "messages":
            result = [m.to_api() for m in result]
        return web.json_response({"result": result})

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
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any) misbehave.

        ``status`` (default 500) answers with that HTTP status and the Bot API error body;
        429 carries ``parameters.retry_after`` (``retry_after`` given alone implies 429).
        ``drop_connection`` closes the connection without an answer. ``delay`` sleeps first;
        given alone, the call is then answered normally. ``take_effect`` performs the call
        first (message stored, edit applied) and only loses/replaces the answer: the
        "sent, but the reply never arrived" case. Faults queue in order.
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
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

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

    # --- injection ----------------------------------------------------------------------

    def inject_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update; assigns the next ``update_id`` and returns it."""
        update = dict(update)
        given = update.get("update_id")
        if given is not None and given <= self._last_update_id:
            raise ValueError(
                f"update_id {given} is not above the last one ({self._last_update_id})"
            )
        update_id = given if given is not None else self._last_update_id + 1
        self._last_update_id = update_id
        update["update_id"] = update_id
        self._all_updates[update_id] = update
        self._pending.append(_Pending(update))
        self._changed()
        return update_id

    def _user_message(
        self,
        user_id: int,
        *,
        first_name: str | None,
        username: str | None,
        language_code: str | None,
        reply_to_message_id: int | None = None,
        **content: Any,
    ) -> StoredMessage:
        user = self._user(user_id, first_name, username, language_code)
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self._by_id.get((user_id, reply_to_message_id))
        text = content.pop("text", None)
        entities = content.pop("entities", None) or []
        caption = content.pop("caption", None)
        message = StoredMessage(
            chat_id=user_id,
            message_id=self._new_message_id(user_id),
            from_bot=False,
            date=int(time.time()),
            sender=dict(user),
            chat=self._chat(user_id),
            text=text,
            entities=entities,
            caption=caption,
            extra=content,
            reply_to=reply_to,
        )
        return self._store(message)

    def inject_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """A user sends ``text`` in their private chat; returns the update_id.

        ``first_name``/``username``/``language_code`` update the user's profile; left at
        None they keep the previous values (a new user is "Test", language "en").

        Like the real server, ``/commands`` get ``bot_command`` entities unless ``entities``
        is given.
        """
        if entities is None:
            entities = _command_entities(text)
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            reply_to_message_id=reply_to_message_id,
            text=text,
            entities=entities,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_command(
        self, user_id: int, command: str, args: str | None = None, **kwargs: Any
    ) -> int:
        """``inject_command(1, "start", "abc")`` sends "/start abc" with a bot_command entity."""
        text = "/" + command.lstrip("/")
        if args:
            text += f" {args}"
        return self.inject_message(user_id, text, **kwargs)

    def inject_edited_message(self, user_id: int, message_id: int, text: str) -> int:
        """The user edits their earlier text message; emits ``edited_message``."""
        message = self._by_id.get((user_id, message_id))
        if message is None or message.from_bot:
            raise KeyError(f"no user message {message_id} in chat {user_id}")
        message.history.append(message._snapshot())  # noqa: SLF001
        message.text = text
        message.entities = _command_entities(text)
        message.edit_date = int(time.time())
        return self.inject_update({"edited_message": message.to_api()})

    def _new_file(self, data: bytes, folder: str, ext: str, prefix: str) -> _FileRecord:
        self._file_counter += 1
        n = self._file_counter
        record = _FileRecord(
            file_id=f"{prefix}{n:08d}FakeFileId",
            file_unique_id=f"AgAD{n:06d}",
            data=data,
            file_path=f"{folder}/file_{n}{ext}",
        )
        self._files[record.file_id] = record
        return record

    def inject_photo(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        data: bytes | None = None,
        width: int = 1280,
        height: int = 720,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user sends a photo (two PhotoSizes, downloadable via getFile)."""
        data = data if data is not None else b"\xff\xd8\xff\xe0fake-jpeg" + bytes(64)
        thumb = self._new_file(data[:32], "photos", ".jpg", "AgACAgIAAxkBAAI")
        full = self._new_file(data, "photos", ".jpg", "AgACAgIAAxkBAAI")
        scale = max(width, height) / 90 or 1
        sizes = [
            {
                "file_id": thumb.file_id,
                "file_unique_id": thumb.file_unique_id,
                "width": max(1, int(width / scale)),
                "height": max(1, int(height / scale)),
                "file_size": len(thumb.data),
            },
            {
                "file_id": full.file_id,
                "file_unique_id": full.file_unique_id,
                "width": width,
                "height": height,
                "file_size": len(full.data),
            },
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            **content,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_sticker(
        self,
        user_id: int,
        *,
        emoji: str = "👍",
        set_name: str | None = "FakeStickers",
        is_animated: bool = False,
        is_video: bool = False,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user sends a sticker."""
        record = self._new_file(b"RIFF-fake-webp", "stickers", ".webp", "CAACAgIAAxkBAAI")
        sticker: dict[str, Any] = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
            "file_size": len(record.data),
        }
        if set_name:
            sticker["set_name"] = set_name
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            sticker=sticker,
        )
        return self.inject_update({"message": message.to_api()})

    def inject_voice(
        self,
        user_id: int,
        *,
        duration: int = 3,
        data: bytes | None = None,
        mime_type: str = "audio/ogg",
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user sends a voice note (downloadable via getFile)."""
        data = data if data is not None else b"OggS-fake-voice" + bytes(64)
        record = self._new_file(data, "voice", ".oga", "AwACAgIAAxkBAAI")
        voice = {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "duration": duration,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        message = self._user_message(
            user_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            voice=voice,
        )
        return self.inject_update({"message": message.to_api()})

    def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        force: bool = False,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> int:
        """The user presses an inline button of the bot's message; returns the update_id.

        The callback_query carries the message as currently stored. Pressing a button the
        message does not (or no longer) show raises ValueError unless ``force`` (to model a
        stale client).
        """
        message = self._by_id.get((user_id, message_id))
        if message is None or message.deleted:
            raise KeyError(f"no message {message_id} in chat {user_id}")
        if not message.from_bot:
            raise ValueError(f"message {message_id} was not sent by the bot")
        shown = [data for row in self.buttons(message) for _, data in row]
        if callback_data not in shown and not force:
            raise ValueError(
                f"message {message_id} has no button with callback_data {callback_data!r} "
                f"(shown: {shown!r}); pass force=True to simulate a stale client"
            )
        user = self._user(user_id, first_name, username, language_code)
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000_000 + self._callback_counter)
        self._callback_queries[query_id] = {
            "user_id": user_id,
            "message_id": message_id,
            "data": callback_data,
            "answered": False,
        }
        return self.inject_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": dict(user),
                    "message": message.to_api(),
                    "chat_instance": str(-(10**18) + user_id),
                    "data": callback_data,
                }
            }
        )

    def redeliver(self, update_id: int) -> int:
        """Queue an already-delivered update again (same update_id), once.

        It is served on the next getUpdates even though the bot's offset has passed it,
        then dropped when a later offset confirms it again (or after a 2xx webhook answer).
        """
        update = self._all_updates[update_id]
        for entry in self._pending:
            if entry.update_id == update_id:
                entry.redelivered, entry.served = True, False
                break
        else:
            self._pending.append(_Pending(update, redelivered=True))
            self._pending.sort(key=lambda e: e.update_id)
        self._changed()
        return update_id

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

    def message(self, user_id: int, message_id: int) -> StoredMessage | None:
        return self._by_id.get((user_id, message_id))

    def documents(self, user_id: int) -> list[StoredDocument]:
        return [m.document for m in self.messages(user_id) if m.document is not None]

    @staticmethod
    def buttons(
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
        if offset < 0:
            self._pending = [e for e in self._pending if not e.redelivered][offset:]
        else:
            self._pending = [
                e
                for e in self._pending
                if e.update_id >= offset or (e.redelivered and not e.served)
            ]
        self._changed()

    def _drop_unwanted(self) -> None:
        kept = []
        for entry in self._pending:
            kind = next((k for k in entry.update if k != "update_id"), None)
            if kind in self._allowed_updates:
                kept.append(entry)
        if len(kept) != len(self._pending):
            self._pending = kept

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
        message = StoredMessage(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            from_bot=True,
            date=int(time.time()),
            sender=self._bot_sender(token),
            chat=self._chat(chat_id),
            text=text,
            entities=entities,
            inline_markup=inline,
            keyboard_markup=other,
            reply_to=reply_to,
            params=dict(params),
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

    async def _api_sendDocument(
        self, *, params: dict[str, Any], files: dict[str, UploadedFile], token: str, **_: Any
    ) -> dict[str, Any]:
        chat_id = self._sendable_chat(params)
        document = params.get("document")
        upload: UploadedFile | None = None
        if isinstance(document, str) and document.startswith("attach://"):
            upload = files.get(document[len("attach://") :])
            if upload is None:
                raise _bad("wrong file identifier/HTTP URL specified")
        elif document in (None, "") and "document" in files:
            upload = files["document"]
        caption = None
        caption_entities: list[dict[str, Any]] = []
        if params.get("caption"):
            caption, caption_entities = self._text(
                params.get("caption"),
                params.get("parse_mode"),
                params.get("caption_entities"),
                limit=MAX_CAPTION_LENGTH,
                too_long=ERR_CAPTION_TOO_LONG,
                empty=None,
            )
        inline, other = self._markup(params)
        reply_to = self._reply_to(chat_id, params)
        message_id = self._new_message_id(chat_id)
        if upload is not None:
            if not upload.data:
                raise _bad("file must be non-empty")
            filename = upload.filename or "document"
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            ext = "." + filename.rsplit(".", 1)[1] if "." in filename else ""
            record = self._new_file(upload.data, "documents", ext, "BQACAgIAAxkDAAI")
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id, filename,
                upload.data, mime, caption,
            )
        elif isinstance(document, str) and document in self._files:
            record = self._files[document]
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id,
                record.file_path.rsplit("/", 1)[-1], record.data,
                mimetypes.guess_type(record.file_path)[0], caption,
            )
        elif isinstance(document, str) and re.match(r"https?://", document):
            record = self._new_file(b"", "documents", "", "BQACAgIAAxkDAAI")
            name = urlsplit(document).path.rsplit("/", 1)[-1] or "document"
            stored = StoredDocument(
                chat_id, message_id, record.file_id, record.file_unique_id, name, None,
                mimetypes.guess_type(name)[0], caption, url=document,
            )
        elif document in (None, ""):
            raise _bad("there is no document in the request")
        else:
            raise _bad("wrong file identifier/HTTP URL specified")
        message = StoredMessage(
            chat_id=chat_id,
            message_id=message_id,
            from_bot=True,
            date=int(time.time()),
            sender=self._bot_sender(token),
            chat=self._chat(chat_id),
            caption=caption,
            caption_entities=caption_entities,
            document=stored,
            inline_markup=inline,
            keyboard_markup=other,
            reply_to=reply_to,
            params=dict(params),
        )
        self._store(message)
        return message.to_api()

    async def _api_getFile(self, *, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        record = self._files.get(str(params.get("file_id") or ""))
        if record is None:
            raise _bad("invalid file_id")
        return {
            "file_id": record.file_id,
            "file_unique_id": record.file_unique_id,
            "file_size": len(record.data),
            "file_path": record.file_path,
        }

    # commands

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        return _canon(scope), str(params.get("language_code") or "")

    async def _api_setMyCommands(self, *, params: dict[str, Any], **_: Any) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params)
        self.commands_by_scope[key] = cleaned
        self.commands = cleaned
        self._last_commands_key = key
        return True

    async def _api_getMyCommands(self, *, params: dict[str, Any], **_: Any) -> list:
        return list(self.commands_by_scope.get(self._commands_key(params), []))

    async def _api_deleteMyCommands(self, *, params: dict[str, Any], **_: Any) -> bool:
        key = self._commands_key(params)
        self.commands_by_scope.pop(key, None)
        if key == self._last_commands_key:
            self.commands = []
        return True

    # webhooks

    async def _api_setWebhook(self, *, params: dict[str, Any], token: str, **_: Any):
        url = str(params.get("url") or "")
        if not url:
            return await self._api_deleteWebhook(params=params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("bad webhook: Failed to resolve host: Name or service not known")
        secret = params.get("secret_token")
        if secret not in (None, ""):
            secret = str(secret)
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
                raise _bad("secret token contains unallowed characters")
        else:
            secret = None
        max_connections = params.get("max_connections")
        if not isinstance(max_connections, int):
            max_connections = 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        if params.get("drop_pending_updates"):
            self._pending.clear()
        unchanged = (
            self._webhook is not None
            and self._webhook.url == url
            and self._webhook.secret_token == secret
        )
        self._webhook = _Webhook(url=url, secret_token=secret, max_connections=max_connections,
                                 token=token)
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        self._restart_webhook_worker()
        self._changed()
        return True, ("Webhook is already set" if unchanged else "Webhook was set")

    async def _api_deleteWebhook(self, *, params: dict[str, Any], **_: Any):
        if params.get("drop_pending_updates"):
            self._pending.clear()
        had = self._webhook is not None
        self._webhook = None
        self._restart_webhook_worker()
        self._changed()
        return True, ("Webhook was deleted" if had else "Webhook is already deleted")

    async def _api_getWebhookInfo(self, **_: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        hook = self._webhook
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = hook.ip_address
            if self._allowed_updates != DEFAULT_UPDATE_TYPES:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    def _restart_webhook_worker(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        if self._webhook is not None:
            self._webhook_task = asyncio.get_running_loop().create_task(
                self._webhook_worker(self._webhook)
            )

    async def _webhook_worker(self, hook: _Webhook) -> None:
        """Deliver pending updates one at a time; retry failures with backoff."""
        if self._session is None:
            self._session = ClientSession()
        backoff = self.webhook_retry_delay
        while not self._closing and self._webhook is hook:
            event = self._change_event
            self._drop_unwanted()
            if not self._pending:
                await event.wait()
                continue
            entry = self._pending[0]
            headers = {"Content-Type": "application/json"}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            status: int | None = None
            error: str | None = None
            reply: Any = None
            try:
                async with self._session.post(
                    hook.url,
                    data=json.dumps(entry.update).encode(),
                    headers=headers,
                    timeout=ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    status = response.status
                    body = await response.read()
                    if 200 <= status < 300:
                        if response.content_type == "application/json" and body:
                            with contextlib.suppress(ValueError):
                                reply = json.loads(body)
                    else:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused, timeout, ...
                error = f"Connection failed: {exc!r}"
            self.webhook_deliveries.append(
                WebhookDelivery(entry.update_id, hook.url, status, error, time.monotonic())
            )
            if error is None:
                backoff = self.webhook_retry_delay
                self.delivered.append(entry.update_id)
                with contextlib.suppress(ValueError):
                    self._pending.remove(entry)
                self._changed()
                if isinstance(reply, dict) and reply.get("method"):
                    try:
                        await self._webhook_reply(reply, hook.token)
                    except Exception:  # never let one bad answer stop delivery
                        _LOG.exception("fake Bot API: webhook reply failed")
            else:
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                self._changed()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _webhook_reply(self, reply: dict[str, Any], token: str) -> None:
        """Telegram executes a method call returned in the webhook answer body."""
        method = str(reply.pop("method"))
        canonical, handler = self._methods.get(method.lower(), (method, None))
        params = {k: self._coerce(k, v) for k, v in reply.items()}
        call = self._record(canonical, params, token)
        if handler is None:
            call.status = 404
            return
        try:
            await handler(params=params, files={}, token=token, request=None)
            call.status = 200
        except BotAPIError as exc:
            call.status = exc.status
        self._changed()


# --- standalone -------------------------------------------------------------------------


async def _serve(host: str, port: int, tokens: list[str], latency: float) -> None:
    fake = FakeBotAPI(valid_tokens=tokens or None)
    fake.set_latency(latency)
    await fake.start(host, port)
    print(f"base_url: {fake.base_url}", flush=True)
    print(f"base_file_url: {fake.base_file_url}", flush=True)
    print(f"control: POST JSON kwargs to {fake.control_url}/<hook>", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server (loopback).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", action="append", default=[], help="accept only these")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token, args.latency))


if __name__ == "__main__":
    main()
