"""Prompts to Telegram messages: text within limits, and inline keyboards.

Telegram allows 1–4096 characters per message and 1–64 bytes of callback_data, and
python-telegram-bot enforces neither, so both are enforced here. Callback data carries
short numbers only (conversation id, step index, option index), never raw values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import i18n
from bot.engine.flow import Flow
from bot.engine.runner import Prompt, progress_text
from bot.messages import msg

MAX_TEXT = 4096
MAX_CALLBACK = 64
CHECK = "✓ "


RLM = "\u200f"  # RIGHT-TO-LEFT MARK: invisible; makes a line that starts with digits or Latin read right to left


def directed(text: str, lang: str | None) -> str:
    """A message in a right-to-left language (Urdu, Arabic) with every line starting with a
    right-to-left mark, so Telegram aligns and orders it right to left even where a line
    starts with a number, a /command or an English word; other languages unchanged."""
    if i18n.direction(lang) != "rtl":
        return text
    return "\n".join(line if not line or line.startswith(RLM) else RLM + line for line in text.split("\n"))


def language_keyboard(tags, keep: str | None = None) -> InlineKeyboardMarkup:
    """One button per language, each in its own name (Cymraeg, Polski, اردو); ``keep``: a
    last button keeping English."""
    rows = [[InlineKeyboardButton(i18n.own_name(t), callback_data=_data("l", t))] for t in tags]
    if keep:
        rows.append([InlineKeyboardButton(keep, callback_data=_data("l", i18n.DEFAULT))])
    return InlineKeyboardMarkup(rows)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split on paragraph boundaries, then lines, then words; never an empty part."""
    text = text.strip() or "…"
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    for sep in ("\n\n", "\n", " "):
        pieces = text.split(sep)
        if all(len(p) <= limit for p in pieces):
            current = ""
            for piece in pieces:
                candidate = piece if not current else current + sep + piece
                if len(candidate) <= limit:
                    current = candidate
                else:
                    if current.strip():
                        parts.append(current.strip())
                    current = piece
            if current.strip():
                parts.append(current.strip())
            return parts
    # one word longer than the limit: hard cut
    return [text[i:i + limit] for i in range(0, len(text), limit)]


def question_text(prompt: Prompt) -> str:
    """A question as shown in Telegram: like the transcript, but options are buttons."""
    lines = []
    if prompt.progress:
        lines.append(progress_text(prompt.progress))
    lines.append(prompt.text)
    if prompt.type == "scale" and (prompt.min_label or prompt.max_label):
        lines.append(msg("navigation.scale_ends", min=prompt.min, max=prompt.max,
                         min_label=prompt.min_label or "", max_label=prompt.max_label or ""))
    if prompt.type == "multi":
        lines.append(msg("navigation.multi_hint"))
    if prompt.optional:
        lines.append(msg("navigation.optional_hint"))
    if prompt.default is not None:
        lines.append(msg("navigation.earlier_answer", answer=prompt.default))
    return "\n".join(lines)


def _data(*parts) -> str:
    data = ":".join(str(p) for p in parts)
    if len(data.encode("utf-8")) > MAX_CALLBACK:
        raise ValueError(f"callback data too long: {data!r}")
    return data


@dataclass(frozen=True)
class Callback:
    action: str  # a answer, t toggle (multi), d done (multi), s start flow, r resume, h after a hold, i invite consent,
    # w who is answering an invitation (conv = invite id, step = choice); s:FLOW:N starts FLOW for choice N
    # p: does text typed for an earlier question answer the one now asked? p:CONV:y|n:REF, REF
    #    naming the waiting text (its transcript line; `step` here); p:CONV:y|n from before has none
    # l: choose a language (l:TAG)
    # n: a reminder's "Carry on" (y) / "Not now" (n); o: /reminders turns kind number `conv` on (y) or off (n)
    # q: /reminders' quiet hours: q:N:y chooses QUIET_CHOICES[N], q:0:n shows the choices
    # b: /reminders' days: b:D:n no reminders on weekday D, b:D:y reminders again; b:7:n shows the days, b:7:y back
    conv: int = 0
    step: int = 0
    value: str = ""

    @classmethod
    def parse(cls, data: str | None) -> "Callback | None":
        if not data or len(data) > MAX_CALLBACK:
            return None
        parts = data.split(":")
        try:
            if parts[0] in ("a", "t") and len(parts) == 4:
                return cls(parts[0], int(parts[1]), int(parts[2]), parts[3])
            if parts[0] == "d" and len(parts) == 3:
                return cls("d", int(parts[1]), int(parts[2]))
            if parts[0] == "s" and len(parts) == 2 and parts[1]:
                return cls("s", value=parts[1])
            if parts[0] == "s" and len(parts) == 3 and parts[1]:
                return cls("s", step=int(parts[2]) + 1, value=parts[1])  # step 0: nobody chose
            if parts[0] == "l" and len(parts) == 2 and i18n.known(parts[1]):
                return cls("l", value=parts[1])
            if parts[0] == "w" and len(parts) == 3:
                return cls("w", int(parts[1]), int(parts[2]))
            if parts[0] == "p" and len(parts) == 4 and parts[2] in ("y", "n"):
                return cls("p", int(parts[1]), int(parts[3]), parts[2])
            if parts[0] in ("r", "h", "i", "p", "n", "o", "q", "b") and len(parts) == 3 and parts[2] in ("y", "n"):
                return cls(parts[0], int(parts[1]), value=parts[2])
        except ValueError:
            return None
        return None


class Button(NamedTuple):
    text: str
    callback_data: str


class _Layout:
    """A question's buttons for any conversation: rows of (text, callback data before the
    conversation id, after it), and the ``reply_markup`` JSON cut where the id goes. Built once
    per question (and language) and kept (:func:`keyboard`), so sending a question only joins
    a few strings: the buttons were otherwise built and serialised again for every message."""

    __slots__ = ("rows", "chunks", "longest")

    def __init__(self, rows: tuple[tuple[tuple[str, str, str], ...], ...]):
        self.rows = rows
        self.longest = max((len(a.encode()) + len(b.encode()) for row in rows for _, a, b in row), default=0)
        chunks, text = [], '{"inline_keyboard": ['
        for r, row in enumerate(rows):
            text += ", " * (r > 0) + "["
            for i, (label, before, after) in enumerate(row):
                text += ", " * (i > 0) + '{"text": ' + json.dumps(label) + ', "callback_data": ' + json.dumps(before)[:-1]
                chunks.append(text)
                text = json.dumps(after)[1:] + "}"
            text += "]"
        chunks.append(text + "]}")
        self.chunks = tuple(chunks)


class Keyboard:
    """A question's buttons, as Telegram takes them (``reply_markup``). Not python-telegram-bot's
    ``InlineKeyboardMarkup``: building and serialising one costs some 20 µs a button, for a
    0-10 scale more than everything else in sending the question. Read like one
    (``inline_keyboard`` rows of buttons with ``text`` and ``callback_data``)."""

    __slots__ = ("_layout", "_conv")

    def __init__(self, layout: _Layout, conv_id: int):
        if layout.longest + len(str(conv_id)) > MAX_CALLBACK:
            raise ValueError(f"callback data too long for conversation {conv_id}")
        self._layout, self._conv = layout, str(conv_id)

    @property
    def inline_keyboard(self) -> tuple[tuple[Button, ...], ...]:
        return tuple(tuple(Button(label, before + self._conv + after) for label, before, after in row)
                     for row in self._layout.rows)

    def to_dict(self) -> dict:
        return {"inline_keyboard": [[{"text": b.text, "callback_data": b.callback_data} for b in row]
                                    for row in self.inline_keyboard]}

    def to_json(self) -> str:
        """``reply_markup`` as the JSON Telegram is sent (what python-telegram-bot would make of
        :meth:`to_dict`), without building it again."""
        return self._conv.join(self._layout.chunks)


_LAYOUTS: dict = {}  # (flow id(), step, type, options, range, ticked, language) -> (flow, _Layout)


def keyboard(prompt: Prompt, flow: Flow, conv_id: int, selected: frozenset = frozenset()) -> Keyboard | None:
    # The flow object itself is kept with its layouts: its id() cannot be reused while they are.
    key = (id(flow), prompt.step_id, prompt.type, tuple((o.id, o.label) for o in prompt.options), prompt.min,
           prompt.max, selected, i18n.current() if prompt.type in ("multi", "yesno") else None)
    found = _LAYOUTS.get(key)
    if found is None:
        layout = _layout(prompt, flow, selected)
        if len(_LAYOUTS) >= 4096:
            _LAYOUTS.clear()
        found = _LAYOUTS[key] = (flow, layout)
    return None if found[1] is None else Keyboard(found[1], conv_id)


def _layout(prompt: Prompt, flow: Flow, selected: frozenset) -> _Layout | None:
    step_index = next((i for i, s in enumerate(flow.steps) if s.id == prompt.step_id), None)
    if step_index is None:
        return None
    # A button carries the option's place in the step's full list, so a choice that offers only
    # some options (exclude:, an option's if:) still names the right one when pressed.
    every = flow.steps[step_index].options
    places = [next((j for j, o in enumerate(every) if o.id == opt.id), i) for i, opt in enumerate(prompt.options)]

    def button(text: str, action: str, *rest) -> tuple[str, str, str]:
        after = ":" + ":".join(str(p) for p in (step_index, *rest))
        return text, action + ":", after

    if prompt.type == "choice":
        return _Layout(tuple((button(opt.label[:60], "a", i),) for i, opt in zip(places, prompt.options)))
    if prompt.type == "multi":
        rows = [(button((CHECK if i in selected else "") + opt.label[:60], "t", i),)
                for i, opt in zip(places, prompt.options)]
        rows.append((button(msg("navigation.done_button"), "d"),))
        return _Layout(tuple(rows))
    if prompt.type == "yesno":
        return _Layout(((button(msg("navigation.yes"), "a", "yes"), button(msg("navigation.no"), "a", "no")),))
    if prompt.type == "scale" and prompt.min is not None and prompt.max is not None:
        values = list(range(prompt.min, prompt.max + 1))
        half = (len(values) + 1) // 2 if len(values) > 6 else len(values)
        rows = [values[:half], values[half:]] if half < len(values) else [values]
        return _Layout(tuple(tuple(button(str(v), "a", v) for v in row) for row in rows if row))
    return None


def offered_from_markup(markup) -> frozenset:
    """The places (in the step's full list) of the multi options the message's keyboard offers."""
    found = set()
    for row in (markup.inline_keyboard if markup is not None else ()):
        for button in row:
            cb = Callback.parse(button.callback_data)
            if cb and cb.action == "t":
                found.add(int(cb.value))
    return frozenset(found)


def selected_from_markup(markup) -> frozenset:
    """Which multi options are ticked, read back from the message's own keyboard."""
    chosen = set()
    if markup is None:
        return frozenset()
    for row in markup.inline_keyboard:
        for button in row:
            cb = Callback.parse(button.callback_data)
            if cb and cb.action == "t" and button.text.startswith(CHECK):
                chosen.add(int(cb.value))
    return frozenset(chosen)


def flows_keyboard(flows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f.title[:100], callback_data=_data("s", f.id))] for f in flows])


def respondent_keyboard(flow_id: str, choices: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """ "Who is filling this in?" before starting a flow from the menu."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(label[:60], callback_data=_data("s", flow_id, i))]
                                 for i, (_, label) in enumerate(choices)])


def resume_keyboard(conv_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(msg("telegram.resume_yes"), callback_data=_data("r", conv_id, "y")),
        InlineKeyboardButton(msg("telegram.resume_no"), callback_data=_data("r", conv_id, "n")),
    ]])


def hold_keyboard(conv_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(msg("telegram.hold_continue"), callback_data=_data("h", conv_id, "y")),
        InlineKeyboardButton(msg("telegram.hold_stop"), callback_data=_data("h", conv_id, "n")),
    ]])


def confirm_keyboard(conv_id: int, ref: int | None) -> InlineKeyboardMarkup:
    """Yes / No: is the text typed for an earlier question the answer to this one? ``ref``
    names that text, so a press under an earlier confirm never applies a later text."""
    tail = () if ref is None else (ref,)
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(msg("answers.stale_yes"), callback_data=_data("p", conv_id, "y", *tail)),
        InlineKeyboardButton(msg("answers.stale_no"), callback_data=_data("p", conv_id, "n", *tail)),
    ]])
