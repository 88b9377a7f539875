"""Message formatting: HTML, MarkdownV2 and Markdown parsed into text and entities, as Telegram does."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from .protocol import (
    _bad,
    _utf16_len,
)

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
