"""Turning what a person typed (or pressed) into an answer, or a friendly reason why not."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from bot.engine.flow import Step
from bot import i18n
from bot.i18n import current as current_language
from bot.messages import messages, msg

_SPACE = re.compile(r"\s+")
# between several choices: commas (the Arabic-script comma and semicolon too, as Urdu is typed), "and" (اور)
_SEPARATORS = re.compile(r"\s*(?:,|;|،|؛|\band\b|\bاور\b|&|\+)\s*")


class Invalid(Exception):
    def __init__(self, rule: str, **values: Any):
        super().__init__(rule)
        self.rule = rule
        self.values = values


def fold(text: str) -> str:
    """Case-, accent- and space-insensitive form used to match option words."""
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = text.strip(".!?\"'“”‘’ ")
    return _SPACE.sub(" ", text)


def vocabulary(lang: str | None = None) -> tuple[frozenset, frozenset, dict]:
    """Yes words, no words and number words: English (messages.yaml) and, for another
    language (default: the one in force), that language's too (bot/locale/languages.yaml):
    people mix languages."""
    return _vocabulary(lang or current_language())


@lru_cache(maxsize=16)
def _vocabulary(lang: str) -> tuple[frozenset, frozenset, dict]:
    p = messages()["parsing"]
    yes, no = [str(w) for w in p["yes_words"]], [str(w) for w in p["no_words"]]
    numbers = {str(k): int(v) for k, v in p["number_words"].items()}
    if lang != "en":
        numbers.update({str(k): int(v) for k, v in (i18n.language(lang).parsing.get("number_words") or {}).items()})
    en_yes, en_no = frozenset(map(fold, yes)), frozenset(map(fold, no))
    if lang == "en":
        return en_yes, en_no, {fold(k): v for k, v in numbers.items()}
    own_yes, own_no = _own(lang, "yes_words"), _own(lang, "no_words")
    # the person's own language wins where a word means yes in one and no in the other
    return (en_yes - own_no) | own_yes, (en_no - own_yes) | own_no, {fold(k): v for k, v in numbers.items()}


def _own(lang: str, key: str) -> frozenset:
    return frozenset(fold(str(w)) for w in i18n.language(lang).parsing.get(key, []))


def parse_int(text: str) -> int | None:
    t = fold(text)
    if re.fullmatch(r"[+-]?\d{1,9}", t):
        return int(t)  # any script's digits: ٦ and ۶ are 6
    return vocabulary()[2].get(t)


def _match_option(options, token: str):
    t = fold(token)
    if not t:
        return None
    if re.fullmatch(r"\d{1,3}", t):
        i = int(t)
        if 1 <= i <= len(options):
            return options[i - 1]
    for opt in options:
        if _fold_fixed(opt.label) == t or _fold_fixed(opt.id) == t:
            return opt
    return None


@lru_cache(maxsize=8192)
def _fold_fixed(text: str) -> str:
    """:func:`fold` of a flow's own words (option labels and ids), worked out once each."""
    return fold(text)


def parse(step: Step, text: str | None, button: str | None = None, options=None) -> Any:
    """Return the parsed value for ``step`` or raise :class:`Invalid`.

    ``button`` is an option id (choice), a list of ids (multi), a number string (scale)
    or "yes"/"no" (yesno) sent by a frontend's buttons; ``text`` is typed input.
    ``options``: the options offered now (a choice may offer fewer than it lists, see
    ``FlowRunner.offered``); numbers typed count in that list, and others are refused.
    """
    kind = step.type
    options = step.options if options is None else tuple(options)
    offered = {o.id for o in options}
    if button is not None:
        if kind == "choice":
            if not isinstance(button, str) or button not in offered:
                raise Invalid("choice")
            return button
        if kind == "multi":
            ids = button if isinstance(button, list) else [button]
            if any(not isinstance(i, str) or i not in offered for i in ids):
                raise Invalid("multi")
            return _check_multi(step, list(dict.fromkeys(ids)))
        text = str(button)
    raw = (text or "").strip()
    if not raw:
        raise Invalid("required")
    if kind == "text":
        if step.min_length is not None and len(raw) < step.min_length:
            raise Invalid("min_length", min_length=step.min_length)
        if step.max_length is not None and len(raw) > step.max_length:
            raise Invalid("max_length", max_length=step.max_length)
        if step.pattern is not None and not step.pattern.fullmatch(raw):
            raise Invalid("pattern")
        return raw
    if kind in ("scale", "number"):
        value = parse_int(raw)
        lo, hi = step.min, step.max
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            if kind == "scale":
                raise Invalid("scale", min=lo, max=hi)
            if lo is None or hi is None:
                raise Invalid("number_any") if value is None else Invalid("number", min=lo if lo is not None else "any", max=hi if hi is not None else "any")
            raise Invalid("number", min=lo, max=hi)
        return value
    if kind == "date":
        from bot.engine.dates import BadDate, parse_date

        try:
            return parse_date(raw, allow_past=step.allow_past).isoformat()
        except BadDate as problem:
            raise Invalid(problem.rule) from None
    if kind == "yesno":
        yes, no, _ = vocabulary()
        t = fold(raw)
        if t in yes:
            return True
        if t in no:
            return False
        raise Invalid("yesno")
    if kind == "choice":
        opt = _match_option(options, raw)
        if opt is None:
            raise Invalid("choice")
        return opt.id
    if kind == "multi":
        whole = _match_option(options, raw)
        if whole is not None:
            return _check_multi(step, [whole.id])
        chosen = []
        for token in _SEPARATORS.split(raw):
            if not token.strip():
                continue
            opt = _match_option(options, token)
            if opt is None:
                raise Invalid("multi")
            if opt.id not in chosen:
                chosen.append(opt.id)
        return _check_multi(step, chosen)
    raise Invalid("invalid")


def _check_multi(step: Step, chosen: list) -> list:
    if not chosen:
        raise Invalid("multi")
    if step.min_choices is not None and len(chosen) < step.min_choices:
        raise Invalid("min_choices", min_choices=step.min_choices)
    if step.max_choices is not None and len(chosen) > step.max_choices:
        raise Invalid("max_choices", max_choices=step.max_choices)
    return chosen


def error_text(step: Step, problem: Invalid) -> str:
    """The step's own message for a rule if the flow gives one, else the default."""
    rule = problem.rule
    key = "number" if rule == "number_any" and "number" in step.errors and rule not in step.errors else rule
    if key in step.errors:
        # Flow text: rendered in the template sandbox (never str.format, which reaches attributes).
        render = step.error_renders.get(key)
        return render(dict(problem.values)) if render else step.errors[key]
    if rule == "required" and not step.optional:
        return msg("validation.required_not_optional")
    return msg(f"validation.{rule}", **problem.values)


def display(step: Step, value: Any) -> str:
    """How an answer reads back to a person and in transcripts."""
    if value is None:
        return msg("navigation.skipped")
    if step.type == "yesno":
        return msg("navigation.yes") if value else msg("navigation.no")
    if step.type == "choice":
        opt = step.option(value)
        return opt.label if opt else str(value)
    if step.type == "date":
        from bot.engine.dates import shown

        try:
            return shown(value)
        except (TypeError, ValueError):
            return str(value)
    if step.type == "multi":
        return ", ".join((step.option(v).label if step.option(v) else str(v)) for v in value)
    return str(value)
