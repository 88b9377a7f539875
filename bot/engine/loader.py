"""Load and lint flow files.

Every problem in a file is reported in one run, each as ``file:line:col: message`` that
says what is wrong and how to fix it. Nothing here raises on bad input: a file either
loads into a :class:`Flow` or yields a list of :class:`SourceError`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.engine.dominators import Dominators
from bot.engine.flow import AUDIENCES, END, STEP_TYPES, SUMMARY_SECTIONS, Branch, Check, Flow, Option, Remind, Step
from bot.engine.templating import (
    TemplateProblem,
    answer_references,
    case_references,
    compile_condition,
    compile_template,
    fixed_text,
    compile_value,
    parse_expression,
    parse_template,
    size_problem,
    uses_name,
)
from bot.engine.yamlpos import Pos, SourceError, YDict, YList, parse_yaml, read_source
from bot.respondent import REQUIREMENTS, RESPONDENTS
from bot.respondent import parse as parse_respondent

FLOW_KEYS = {"id", "version", "title", "audience", "description", "intro", "stop_message", "consent", "steps",
             "respondents", "requires", "languages"}
# Texts a person reads: each may be one text (English) or {en: ..., cy: ..., pl: ...} (issue 19)
TEXT_KEYS = {"title", "intro", "stop_message", "ask", "say", "help", "min_label", "max_label", "label", "error", "text"}
LANG_TAG_RE = re.compile(r"^(?!id$|if$)[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")  # not an option's id or if
# A template's {{ ... }} and {% ... %} marks, and the older {min_length} style of error messages
_MARKS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|(?<!\{)\{[a-z_]+\}(?!\})", re.DOTALL)
# note_for_worker: text for the worker (transcripts, exports, a worker-present session), never the person
# summary: the coordinator's summary section this answer feeds (bot/review/summary.py)
COMMON_STEP_KEYS = {"id", "type", "ask", "optional", "next", "help", "errors", "validate", "note_for_worker", "summary"}
TYPE_KEYS = {
    "say": {"id", "type", "say", "next", "note_for_worker"},
    # expects_concerns: a worries question, where a safeguarding alert thanks the person
    # instead of interrupting them (issue 12): free-text questions only.
    "text": COMMON_STEP_KEYS | {"min_length", "max_length", "pattern", "expects_concerns"},
    "number": COMMON_STEP_KEYS | {"min", "max"},
    "scale": COMMON_STEP_KEYS | {"min", "max", "min_label", "max_label"},
    # exclude: an expression over earlier answers naming options not to offer (see _offer_filter)
    "choice": COMMON_STEP_KEYS | {"options", "exclude"},
    "multi": COMMON_STEP_KEYS | {"options", "min_choices", "max_choices", "exclude"},
    "yesno": COMMON_STEP_KEYS,
    # remind: {who: person|practitioner|both, before: 1d, text: ...} schedules a reminder (bot/schedule.py)
    # allow_past: true accepts past dates (e.g. "When did it happen?"); by default they are refused
    "date": COMMON_STEP_KEYS | {"remind", "allow_past"},
}
ALL_STEP_KEYS = set().union(*TYPE_KEYS.values())
ERROR_KEYS = {
    "required", "min_length", "max_length", "pattern", "scale", "number", "choice",
    "multi", "min_choices", "max_choices", "yesno", "invalid", "date", "date_past", "date_far",
}
STEP_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CASE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # {{ case.KEY }}: text the practitioner writes per case
FLOW_ID_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
OPTION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# Steps per flow: the linter is close to linear (see dominators.py), and a 10,000-step flow
# validates in about a second; no conversation needs more. Stated in the README.
MAX_STEPS = 10_000
_PLACEHOLDER = re.compile(r"(?<!\{)\{(min_length|max_length|min|max|min_choices|max_choices)\}(?!\})")


_DURATION = re.compile(r"^\s*(\d{1,3})\s*([hdw])\s*$")
REMIND_WHO = ("person", "practitioner", "both")


def _remind(ctx: _Ctx, raw: YDict) -> Remind | None:
    node = raw["remind"]
    if not isinstance(node, YDict):
        ctx.err(raw.pos_of("remind"), "'remind' must be a mapping, e.g. remind: {who: person, before: 1d, text: ...}")
        return None
    for key in node:
        if key not in ("who", "before", "text"):
            ctx.err(node.key_pos_of(key), f"unknown key '{key}' under remind; use who, before and text")
    who = node.get("who", "person")
    if who not in REMIND_WHO:
        ctx.err(node.pos_of("who") if "who" in node else node.pos, f"'who' under remind must be one of {', '.join(REMIND_WHO)}")
        return None
    m = _DURATION.match(str(node.get("before", "1d")))
    if not m:
        ctx.err(node.pos_of("before"), "'before' under remind must be hours, days or weeks, e.g. 1d, 12h or 1w")
        return None
    hours = int(m.group(1)) * {"h": 1, "d": 24, "w": 168}[m.group(2)]
    text = _want_str(ctx, node, "text", who != "practitioner", "remind")
    if text and re.search(r"\{\{|\{%|\{[a-z_]+\}", text):
        ctx.err(node.pos_of("text"), "a reminder's text cannot use answers or templates: a phone may be shared, and a"
                                     " reminder must never show what someone answered; write it in plain words")
        return None
    return Remind(who=who, before_hours=float(hours), text=text or "")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass
class _Ctx:
    file: str
    errors: list[SourceError] = field(default_factory=list)
    lang: str = "en"  # the language this load picks from {en: ..., cy: ...} texts
    texts: list = field(default_factory=list)  # (pos, {tag: text}) of every person-facing text, for the lint
    warnings: list[SourceError] = field(default_factory=list)
    case_refs: list = field(default_factory=list)  # (key, pos) of every case.KEY in the flow's texts

    def err(self, pos: Pos, message: str) -> None:
        self.errors.append(SourceError(self.file, pos.line, pos.col, message))

    def warn(self, pos: Pos, message: str) -> None:
        self.warnings.append(SourceError(self.file, pos.line, pos.col, f"warning: {message}"))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "yes/no value"
    if isinstance(value, int):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if value is None:
        return "nothing"
    return type(value).__name__


def _is_translations(value: Any) -> bool:
    return isinstance(value, YDict) and bool(value) and all(isinstance(k, str) and LANG_TAG_RE.match(k) for k in value)


def _resolve(ctx: _Ctx, parent, key, value: Any) -> Any:
    """A text written as {en: ..., cy: ...}: the wording in ctx.lang (English where that
    language has none); every text is recorded for the translation lint."""
    if not _is_translations(value):
        if isinstance(value, str):
            ctx.texts.append((parent.pos_of(key), {"en": value}))
        return value
    for tag, text in value.items():
        if not isinstance(text, str) or not text.strip():
            ctx.err(value.pos_of(tag), f"the '{tag}' text must be some text, not {_type_name(text)}")
    if not isinstance(value.get("en"), str):
        ctx.err(parent.pos_of(key), "a text in several languages needs the English too (en: ...): English is "
                                    "shown wherever a translation is missing")
        return None
    ctx.texts.append((parent.pos_of(key), value))
    chosen = value.get(ctx.lang)
    return chosen if isinstance(chosen, str) and chosen.strip() else value["en"]


def _marks(text: str) -> list[str]:
    return sorted(re.sub(r"\s+", "", m) for m in _MARKS.findall(text))


def _languages(ctx: _Ctx, data: YDict) -> tuple[tuple[str, ...], dict[str, bool]]:
    """languages: [en, cy, pl]  or  languages: {en: {reviewed: true}, cy: {reviewed: false}}.
    A translation counts as reviewed only when it says so (English always is)."""
    if "languages" not in data:
        return ("en",), {"en": True}
    raw = data["languages"]
    items: list[tuple[str, Pos, bool]] = []
    if isinstance(raw, YList) and raw:
        items = [(str(t), raw.pos_of(i), str(t) == "en") for i, t in enumerate(raw)]
    elif isinstance(raw, YDict) and raw:
        for tag, conf in raw.items():
            reviewed = str(tag) == "en"
            if isinstance(conf, YDict):
                for k in conf:
                    if k != "reviewed":
                        ctx.err(conf.key_pos_of(k), f"unknown key '{k}' under languages.{tag}; only reviewed: true|false")
                if "reviewed" in conf:
                    reviewed = _want_bool(ctx, conf, "reviewed")
            elif conf is not None:
                ctx.err(raw.pos_of(tag), f"languages.{tag} must be a mapping such as {{reviewed: false}}")
            items.append((str(tag), raw.key_pos_of(tag), reviewed))
    else:
        ctx.err(data.pos_of("languages"), "'languages' must list the languages of the flow, e.g. languages: [en, cy, pl]")
        return ("en",), {"en": True}
    tags: list[str] = []
    reviewed: dict[str, bool] = {}
    for tag, pos, ok in items:
        if not LANG_TAG_RE.match(tag):
            ctx.err(pos, f"'{tag}' is not a language tag; use tags such as en, cy, pl, ur")
        elif tag in tags:
            ctx.err(pos, f"language '{tag}' is listed twice")
        else:
            tags.append(tag)
            reviewed[tag] = ok
    if "en" not in tags:
        ctx.err(data.pos_of("languages"), "'languages' must include en: English is shown wherever a translation is missing")
        tags.insert(0, "en")
        reviewed["en"] = True
    return tuple(tags), reviewed


def _lint_translations(ctx: _Ctx, languages: tuple[str, ...]) -> None:
    """Every person-facing text in every declared language, with the same placeholders."""
    names = {}
    try:
        from bot.i18n import languages as known

        names = {t: lang.english_name for t, lang in known().items()}
    except Exception:  # noqa: BLE001 - the lint works without the language list
        pass
    for pos, texts in ctx.texts:
        english = texts.get("en", "")
        for tag in texts:
            if tag not in languages:
                ctx.err(pos, f"this text has a '{tag}' translation but the flow does not list '{tag}' under "
                             f"languages; add it there or remove the translation")
        for tag in languages:
            if tag == "en":
                continue
            name = f"{names[tag]} ({tag})" if tag in names else f"'{tag}'"
            if tag not in texts:
                ctx.err(pos, f"no {name} translation of \"{_short(english)}\"; write it as  {{en: ..., {tag}: ...}}")
            elif isinstance(texts[tag], str) and _marks(texts[tag]) != _marks(english):
                ctx.err(pos, f"the {name} text uses {', '.join(_marks(texts[tag])) or 'no placeholders'} but the English "
                             f"uses {', '.join(_marks(english)) or 'none'}; each translation must use the same placeholders")


def _short(text: str, n: int = 50) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _want_str(ctx: _Ctx, d: YDict, key: str, required: bool, where: str) -> str | None:
    if key not in d:
        if required:
            ctx.err(d.pos, f"{where} is missing '{key}'; add  {key}: ...")
        return None
    value = d[key]
    if key in TEXT_KEYS:
        value = _resolve(ctx, d, key, value)
        if value is None:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. an option written as a bare number
    if not isinstance(value, str) or not value.strip():
        ctx.err(d.pos_of(key), f"'{key}' must be some text, not {_type_name(value)}")
        return None
    return value


def _want_int(ctx: _Ctx, d: YDict, key: str) -> int | None:
    if key not in d:
        return None
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.err(d.pos_of(key), f"'{key}' must be a whole number, not {_type_name(value)} ({value!r})")
        return None
    return value


def _want_bool(ctx: _Ctx, d: YDict, key: str) -> bool:
    if key not in d:
        return False
    value = d[key]
    if not isinstance(value, bool):
        ctx.err(d.pos_of(key), f"'{key}' must be true or false, not {value!r}")
        return False
    return value


def _template(ctx: _Ctx, pos: Pos, source: str, what: str, refs_out: list, allow_answer: bool):
    if "{" not in source:
        return compile_template(source)  # plain words: no markup to check
    try:
        tree = parse_template(source)
    except TemplateProblem as exc:
        ctx.err(Pos(pos.line + exc.lineno - 1, pos.col), f"{what}: {exc.message}; check the {{{{ }}}} and {{% %}} marks")
        return None
    if not allow_answer and uses_name(tree, "answer"):
        ctx.err(pos, f"{what} uses 'answer', which only exists in conditions after the question is answered; use answers.<step_id>")
    _note_references(ctx, pos, tree, refs_out)
    return compile_template(source, tree)


def _parse(ctx: _Ctx, pos: Pos, source: Any, what: str, kind: str, example: str, like: str):
    """The expression tree of ``source``, or None after reporting what is wrong with it."""
    if not isinstance(source, str) or not source.strip():
        ctx.err(pos, f"{what} must be {kind} written as text, e.g.  {example}")
        return None
    try:
        return parse_expression(source)
    except TemplateProblem as exc:
        ctx.err(pos, f"{what} '{source}': {exc.message}; write it like  {like}")
        return None


def _note_references(ctx: _Ctx, pos: Pos, tree, refs_out: list) -> None:
    refs_out.extend((ref, pos) for ref in answer_references(tree))
    ctx.case_refs.extend((key, pos) for key in case_references(tree))


def _condition(ctx: _Ctx, pos: Pos, source: Any, what: str, refs_out: list):
    if isinstance(source, bool):
        source = "true" if source else "false"
    tree = _parse(ctx, pos, source, what, "a condition", "if: answer <= 1", "answer <= 1  or  answers.best_hopes != ''")
    if tree is None:
        return None
    _note_references(ctx, pos, tree, refs_out)
    return compile_condition(source, tree)


def _offer_condition(ctx: _Ctx, pos: Pos, source: Any, what: str, refs_out: list, value: bool = False):
    """An option's ``if:`` or a step's ``exclude:``: worked out before the question is asked,
    so it may use earlier answers but never ``answer``."""
    if isinstance(source, bool) and not value:
        source = "true" if source else "false"
    example = "exclude: answers.first_house" if value else "if: answers.first_house != 'worries'"
    tree = _parse(ctx, pos, source, what, "an expression", example, "answers.first_house  or  answers.first_house != 'worries'")
    if tree is None:
        return None
    if uses_name(tree, "answer"):
        ctx.err(pos, f"{what} uses 'answer', but the options are chosen before the question is answered; use answers.<step_id> of an earlier step")
        return None
    _note_references(ctx, pos, tree, refs_out)
    return compile_value(source) if value else compile_condition(source, tree)


def _options(ctx: _Ctx, step: YDict, refs: list | None = None) -> tuple[Option, ...]:
    raw = step.get("options")
    if raw is None:
        ctx.err(step.pos, f"step '{step.get('id')}' is a {step.get('type')} question but has no 'options'; add a list of options")
        return ()
    if not isinstance(raw, YList) or not raw:
        ctx.err(step.pos_of("options"), "'options' must be a list, one option per line, each starting with '- ' (e.g. '- Mum')")
        return ()
    options: list[Option] = []
    for i, item in enumerate(raw):
        pos = raw.pos_of(i)
        condition = test = None
        if _is_translations(item):
            label = _resolve(ctx, raw, i, item)
            oid = item.get("en") if isinstance(item.get("en"), str) else None
        elif isinstance(item, YDict):
            unknown = set(item) - {"id", "label", "if"}
            for key in unknown:
                ctx.err(item.key_pos_of(key), f"unknown option key '{key}'{_suggest(key, {'id', 'label', 'if'})}")
            label = _want_str(ctx, item, "label", True, "an option")
            oid = _want_str(ctx, item, "id", False, "an option") or label
            if "if" in item:
                condition = str(item["if"])
                test = _offer_condition(ctx, item.pos_of("if"), item["if"], "an option's 'if'",
                                        refs if refs is not None else [])
        elif isinstance(item, (str, int)) and not isinstance(item, bool) and str(item).strip():
            label = oid = str(item).strip()
            ctx.texts.append((pos, {"en": label}))
        else:
            ctx.err(pos, f"an option must be text or a mapping with id and label, not {_type_name(item)}")
            continue
        if label is None or oid is None:
            continue
        if any(o.id == oid for o in options):
            ctx.err(pos, f"option '{oid}' appears twice; each option needs a different id")
            continue
        if len(label) > 200:
            ctx.err(pos, "an option label must be under 200 characters, so it fits on a button")
        options.append(Option(oid, label, condition, test))
    return tuple(options)


def _next(ctx: _Ctx, step: YDict, refs: list) -> list[Branch]:
    if "next" not in step:
        return []
    raw = step["next"]
    pos = step.pos_of("next")
    if isinstance(raw, str):
        return [Branch(END if raw == "end" else raw, pos=pos)]
    if not isinstance(raw, YList) or not raw:
        ctx.err(pos, "'next' must be a step id, 'end', or a list of  - if: <condition>  goto: <step id>  ending with a  - goto:  default")
        return []
    branches: list[Branch] = []
    for i, item in enumerate(raw):
        ipos = raw.pos_of(i)
        if not isinstance(item, YDict):
            ctx.err(ipos, "each entry under 'next' must be a mapping with 'goto' (and 'if' for all but the last)")
            continue
        for key in set(item) - {"if", "goto"}:
            ctx.err(item.key_pos_of(key), f"unknown key '{key}' in a 'next' entry{_suggest(key, {'if', 'goto'})}")
        goto = _want_str(ctx, item, "goto", True, "a 'next' entry")
        if goto is None:
            continue
        test = None
        cond = item.get("if")
        if "if" in item:
            test = _condition(ctx, item.pos_of("if"), cond, "the 'if' condition", refs)
        branches.append(Branch(END if goto == "end" else goto, cond if "if" in item else None, test, item.pos_of("goto")))
    if branches and branches[-1].condition is not None:
        ctx.err(raw.pos_of(len(raw) - 1), "the last entry under 'next' has an 'if', so some answers have nowhere to go; add a default  - goto: <step id>  without 'if'")
    for b in branches[:-1]:
        if b.condition is None:
            ctx.err(b.pos or pos, "an entry under 'next' without 'if' must be the last one; the entries after it can never be reached")
    return branches


def _step(ctx: _Ctx, raw: Any, pos: Pos, refs: dict) -> Step | None:
    if not isinstance(raw, YDict):
        ctx.err(pos, f"each step must be a mapping with an id and 'ask' or 'say', not {_type_name(raw)}")
        return None
    sid = _want_str(ctx, raw, "id", True, "a step")
    if sid is not None and not STEP_ID_RE.match(sid):
        ctx.err(raw.pos_of("id"), f"step id '{sid}' must start with a lower-case letter and use only a-z, 0-9 and _ (e.g. best_hopes)")
    stype = raw.get("type")
    if stype is None:
        stype = "say" if "say" in raw else "text"
    if stype not in STEP_TYPES:
        hint = _suggest(stype, STEP_TYPES) or f"; use one of {', '.join(STEP_TYPES)}"
        ctx.err(raw.pos_of("type"), f"unknown step type '{stype}'{hint}")
        return None
    if stype == "say" and "ask" in raw:
        ctx.err(raw.key_pos_of("ask"), "a 'say' step only shows a message; use 'say:' for its text, or make it a question type")
    if stype != "say" and "say" in raw:
        ctx.err(raw.key_pos_of("say"), f"a {stype} question uses 'ask:' for its wording, not 'say:'")
    allowed = TYPE_KEYS[stype]
    for key in raw:
        if key not in allowed:
            hint = _suggest(key, allowed)
            if not hint and key in ALL_STEP_KEYS:
                hint = f"; '{key}' does not apply to a {stype} step"
            ctx.err(raw.key_pos_of(key), f"unknown key '{key}'{hint}")
    step_refs: list = []
    cond_refs: list = []
    text_key = "say" if stype == "say" else "ask"
    text = _want_str(ctx, raw, text_key, True, f"step '{sid}'") or ""
    render = _template(ctx, raw.pos_of(text_key), text, f"the '{text_key}' text", step_refs, False) if text else None
    step = Step(id=sid or f"?{pos.line}", type=stype, text=text, render=render or fixed_text(text), pos=raw.pos)
    if "note_for_worker" in raw:
        step.note = _want_str(ctx, raw, "note_for_worker", False, "step")
        if step.note:
            step.render_note = _template(ctx, raw.pos_of("note_for_worker"), step.note, "the 'note_for_worker'", step_refs, False)
    if "summary" in raw:
        section = raw["summary"]
        if section not in SUMMARY_SECTIONS:
            hint = _suggest(str(section), SUMMARY_SECTIONS) or f"; use one of {', '.join(SUMMARY_SECTIONS)}"
            ctx.err(raw.pos_of("summary"), f"'{section}' is not a section of the coordinator's summary{hint}")
        else:
            step.summary = section
    step.optional = _want_bool(ctx, raw, "optional")
    step.expects_concerns = _want_bool(ctx, raw, "expects_concerns")
    if "help" in raw:
        step.help = _want_str(ctx, raw, "help", False, "step")
    if stype in ("choice", "multi"):
        step.options = _options(ctx, raw, step_refs)
        if "exclude" in raw:
            step.exclude_source = str(raw["exclude"])
            step.exclude = _offer_condition(ctx, raw.pos_of("exclude"), raw["exclude"], "'exclude'", step_refs, value=True)
    if stype in ("scale", "number"):
        step.min = _want_int(ctx, raw, "min")
        step.max = _want_int(ctx, raw, "max")
        if stype == "scale":
            step.min = 0 if step.min is None else step.min
            step.max = 10 if step.max is None else step.max
            step.min_label = _want_str(ctx, raw, "min_label", False, "step")
            step.max_label = _want_str(ctx, raw, "max_label", False, "step")
            if step.max - step.min > 20:
                ctx.err(raw.pos, "a scale can have at most 21 points (e.g. 0 to 10); use a number question for wider ranges")
        if step.min is not None and step.max is not None and step.min >= step.max:
            ctx.err(raw.pos_of("max") if "max" in raw else raw.pos, f"'max' ({step.max}) must be greater than 'min' ({step.min})")
    if stype == "text":
        step.min_length = _want_int(ctx, raw, "min_length")
        step.max_length = _want_int(ctx, raw, "max_length")
        if step.min_length is not None and step.max_length is not None and step.min_length > step.max_length:
            ctx.err(raw.pos_of("max_length"), "'max_length' must not be less than 'min_length'")
        if "pattern" in raw:
            pat = _want_str(ctx, raw, "pattern", False, "step")
            if pat is not None:
                try:
                    step.pattern = re.compile(pat)
                except re.error as exc:
                    ctx.err(raw.pos_of("pattern"), f"'pattern' is not a valid regular expression: {exc.msg}")
    if stype == "date":
        step.allow_past = _want_bool(ctx, raw, "allow_past")
        if "remind" in raw:
            step.remind = _remind(ctx, raw)
            if step.allow_past and step.remind is not None:
                ctx.err(raw.key_pos_of("allow_past"), "a date with a reminder must be in the future; take out"
                                                     " 'allow_past' or the 'remind'")
    if stype == "multi":
        step.min_choices = _want_int(ctx, raw, "min_choices")
        step.max_choices = _want_int(ctx, raw, "max_choices")
        n = len(step.options)
        for key in ("min_choices", "max_choices"):
            value = getattr(step, key)
            if value is not None and n and not (1 <= value <= n):
                ctx.err(raw.pos_of(key), f"'{key}' must be between 1 and the number of options ({n})")
    if "errors" in raw:
        errs = raw["errors"]
        if not isinstance(errs, YDict):
            ctx.err(raw.pos_of("errors"), "'errors' must be a mapping from a rule (e.g. min_length) to the message to show")
        else:
            for key, value in errs.items():
                value = _resolve(ctx, errs, key, value) if key in ERROR_KEYS else value
                if key not in ERROR_KEYS:
                    ctx.err(errs.key_pos_of(key), f"unknown error rule '{key}'{_suggest(key, ERROR_KEYS)}")
                elif not isinstance(value, str) or not value.strip():
                    ctx.err(errs.pos_of(key), f"the message for '{key}' must be text")
                else:
                    step.errors[key] = value
                    # {min_length} (the older str.format style) means {{ min_length }}
                    source = _PLACEHOLDER.sub(r"{{ \1 }}", value)
                    render = _template(ctx, errs.pos_of(key), source, f"the '{key}' error message", [], False)
                    if render is not None:
                        step.error_renders[key] = render
    if "validate" in raw:
        checks = raw["validate"]
        if not isinstance(checks, YList):
            ctx.err(raw.pos_of("validate"), "'validate' must be a list of  - if: <condition>  error: <message>")
        else:
            for i, item in enumerate(checks):
                if not isinstance(item, YDict):
                    ctx.err(checks.pos_of(i), "each 'validate' entry must be a mapping with 'if' and 'error'")
                    continue
                for key in set(item) - {"if", "error"}:
                    ctx.err(item.key_pos_of(key), f"unknown key '{key}' in a 'validate' entry{_suggest(key, {'if', 'error'})}")
                error = _want_str(ctx, item, "error", True, "a 'validate' entry")
                if "if" not in item:
                    ctx.err(item.pos, "a 'validate' entry needs 'if': the condition under which the answer is refused")
                    continue
                test = _condition(ctx, item.pos_of("if"), item["if"], "the 'if' condition", cond_refs)
                render = _template(ctx, item.pos_of("error"), error, "the 'error' message", cond_refs, True) if error else None
                if test and error:
                    step.checks.append(Check(str(item["if"]), error, test, render))
    step.next = _next(ctx, raw, cond_refs)
    refs[step.id] = (step_refs, cond_refs)
    return step


def _successors(flow_steps: list[Step], index: int) -> list[str]:
    step = flow_steps[index]
    if step.next:
        return [b.goto for b in step.next]
    return [flow_steps[index + 1].id if index + 1 < len(flow_steps) else END]


def _lint_graph(ctx: _Ctx, steps: list[Step], refs: dict) -> None:
    ids = {s.id for s in steps}
    succ: dict[str, list[str]] = {}
    for i, step in enumerate(steps):
        targets = []
        for b in step.next:
            if b.goto != END and b.goto not in ids:
                ctx.err(b.pos or step.pos, f"'goto: {b.goto}' names no step in this flow{_suggest(b.goto, ids)}")
            else:
                targets.append(b.goto)
        succ[step.id] = targets if step.next else _successors(steps, i)
    _lint_say_loops(ctx, steps, succ)
    dom = Dominators(steps[0].id, succ)
    seen = dom.reachable
    for step in steps:
        if step.id not in seen:
            ctx.err(step.pos, f"step '{step.id}' can never be reached: no 'next' leads to it and the step before it goes elsewhere; link it or remove it")
    # answers available on every path: the steps that dominate this one
    by_id = {s.id: s for s in steps}
    for sid in (s.id for s in steps if s.id in seen):
        step_refs, cond_refs = refs.get(sid, ([], []))
        for ref_list, own, where in ((step_refs, False, "the wording"), (cond_refs, True, "a condition")):
            for ref, pos in ref_list:
                if ref not in by_id:
                    ctx.err(pos, f"{where} of step '{sid}' uses answers.{ref}, but there is no step '{ref}'{_suggest(ref, by_id)}")
                elif not by_id[ref].is_question:
                    ctx.err(pos, f"{where} of step '{sid}' uses answers.{ref}, but '{ref}' is a say step and has no answer")
                elif not (dom.dominates(ref, sid) and (ref != sid or own)):
                    ctx.err(pos, f"{where} of step '{sid}' uses answers.{ref}, but on some path '{ref}' has not been asked yet; only use answers from steps that always come before")


def _lint_say_loops(ctx: _Ctx, steps: list[Step], succ: dict[str, list[str]]) -> None:
    """Warn about a cycle of say steps: the person would be shown the same messages round and
    round with nothing to answer (the runner stops such a loop, but the flow is wrong)."""
    says = {s.id for s in steps if not s.is_question}
    by_id = {s.id: s for s in steps}
    graph = {sid: [t for t in succ.get(sid, ()) if t in says] for sid in says}
    # Tarjan's strongly connected components, iteratively (a flow may have thousands of steps)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    loops: list[list[str]] = []
    counter = 0
    for root in (s.id for s in steps if s.id in says):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    loops.append(component)
    order = {s.id: i for i, s in enumerate(steps)}
    for component in loops:
        ids = sorted(component, key=order.get)
        first = by_id[ids[0]]
        names = ", ".join(f"'{i}'" for i in ids)
        ctx.warn(first.pos, f"steps {names} only say things and lead back to each other, so the person would see the "
                            f"same messages again with nothing to answer; send one of them on to a question or to 'end'"
                 if len(ids) > 1 else
                 f"step '{first.id}' only says something and leads back to itself; send it on to a question or to 'end'")


def _largest_answer(step: Step) -> Any:
    if step.type == "text":
        return "x" * (step.max_length or 4096)  # 4096: the longest Telegram message
    if step.type in ("scale", "number"):
        return step.max if step.max is not None else 10 ** 9
    if step.type == "yesno":
        return True
    if step.type == "date":
        return "2099-12-31"
    if step.type == "choice":
        return step.options[0].id if step.options else ""
    return [o.id for o in step.options]


def _lint_sizes(ctx: _Ctx, data: YDict, steps: list[Step]) -> None:
    """Render every template with the largest answers each question accepts: one that would
    build more than the sandbox allows is an error now, not a refusal mid-conversation."""
    answers = {s.id: _largest_answer(s) for s in steps if s.is_question}
    context = {"answers": answers, "shown": {k: str(v) for k, v in answers.items()}, "answer": None}
    texts = [(data.pos_of(k), data[k], context) for k in ("intro", "stop_message") if isinstance(data.get(k), str)]
    for step in steps:
        texts.append((step.pos, step.text, context))
        if step.note:
            texts.append((step.pos, step.note, context))
        texts.extend((step.pos, message, context) for message in step.errors.values())
        if step.checks:
            answered = dict(context, answer=_largest_answer(step))
            texts.extend((step.pos, check.error, answered) for check in step.checks)
    for pos, text, values in texts:
        problem = size_problem(_PLACEHOLDER.sub(r"{{ \1 }}", text), values)
        if problem:
            ctx.err(pos, f"{problem}; shorten what it repeats or joins")


def _case_keys(ctx: _Ctx) -> tuple[str, ...]:
    """``{{ case.KEY }}``: text the worker writes for each case. A flow using it still runs where
    it is not written (the step says the worker has not written it yet), so validate warns, once
    per key, saying how to write it."""
    keys: list[str] = []
    for key, pos in ctx.case_refs:
        if key in keys:
            continue
        if not CASE_KEY_RE.match(key):
            ctx.err(pos, f"'case.{key}' cannot be a case key: use a-z, 0-9 and _, starting with a letter, e.g. case.danger_statement")
            continue
        keys.append(key)
        ctx.warn(pos, f"this flow shows case.{key}, which the worker writes for each case (restorative-bot case set REF "
                      f"{key} --file FILE, or /caseinfo REF {key} ... in Telegram); until it is written the step says "
                      "the worker has not written it yet")
    return tuple(keys)


def _consent(ctx: _Ctx, data: YDict, by_id: dict) -> tuple[str | None, str, str | None, dict, tuple]:
    """consent: {step: <yes/no step id>, without_consent: nobody | practitioner,
    which: {step: <multiple-choice step id>, parts: {<option id>: [<step id>, ...], ...},
            every_part: [<step id>, ...]}}"""
    raw = data.get("consent")
    if raw is None:
        return None, "nobody", None, {}, ()
    if not isinstance(raw, YDict):
        ctx.err(data.pos_of("consent"), "'consent' must be a mapping:  consent: {step: share_ok, without_consent: nobody}")
        return None, "nobody", None, {}, ()
    known = {"step", "without_consent", "which"}
    for key in raw:
        if key not in known:
            ctx.err(raw.key_pos_of(key), f"unknown key '{key}' under consent{_suggest(key, known)}")
    step = _want_str(ctx, raw, "step", True, "'consent'")
    if step is not None and by_id and (step not in by_id or by_id[step].type != "yesno"):
        ctx.err(raw.pos_of("step"), f"consent step '{step}' must be a yes/no question in this flow")
    who = raw.get("without_consent", "nobody")
    if who not in ("nobody", "practitioner"):
        ctx.err(raw.pos_of("without_consent"), "'without_consent' must be nobody or practitioner (who may still read the answers)")
        who = "nobody"
    which, parts, every = _consent_which(ctx, raw, by_id, step)
    return step, who, which, parts, every


_WHICH_EXAMPLE = "which: {step: share_which, parts: {worries: [house_worries], dreams: [house_dreams]}}"


def _consent_which(ctx: _Ctx, raw: YDict, by_id: dict, consent_step: str | None) -> tuple[str | None, dict, tuple]:
    """consent.which: the multiple-choice step that says which parts may be shown, the steps
    each of its options covers, and (``every_part``) the steps about all the parts at once, such
    as the worker's notes, shown only when every part is. A part not chosen is withheld from
    everyone who may read only because of the consent (bot.audience)."""
    which = raw.get("which")
    if which is None:
        return None, {}, ()
    if not isinstance(which, YDict):
        ctx.err(raw.pos_of("which"), f"'which' under consent must be a mapping:  {_WHICH_EXAMPLE}")
        return None, {}, ()
    keys = {"step", "parts", "every_part"}
    for key in which:
        if key not in keys:
            ctx.err(which.key_pos_of(key), f"unknown key '{key}' under consent.which{_suggest(key, keys)}"
                                           f" (write  {_WHICH_EXAMPLE})")
    step = _want_str(ctx, which, "step", True, "'consent.which'")
    chooser = by_id.get(step) if step is not None else None
    if step is not None and by_id and (chooser is None or chooser.type != "multi"):
        ctx.err(which.pos_of("step"), f"consent.which step '{step}' must be a multiple-choice question (type: multi) "
                                      "in this flow, where the person picks the parts that may be shown")
        chooser = None
    if step is not None and step == consent_step:
        ctx.err(which.pos_of("step"), "consent.which step must be another step than the yes/no consent question")
    raw_parts = which.get("parts")
    if not isinstance(raw_parts, YDict) or not raw_parts:
        ctx.err(which.pos_of("parts") if "parts" in which else which.pos,
                f"consent.which needs 'parts': each option of the step and the steps it covers:  {_WHICH_EXAMPLE}")
        return step, {}, ()
    options = {o.id for o in chooser.options} if chooser is not None else None
    parts: dict = {}
    owner: dict = {}
    for option, covered in raw_parts.items():
        if options is not None and option not in options:
            ctx.err(raw_parts.key_pos_of(option), f"'{option}' is not an option of '{step}'"
                                                  f"{_suggest(option, options)}; the parts are named by its option ids")
            continue
        ids = [covered] if isinstance(covered, str) else covered
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            ctx.err(raw_parts.pos_of(option), f"the part '{option}' must list the steps it covers, like [house_{option}]")
            continue
        for i in ids:
            if by_id and i not in by_id:
                ctx.err(raw_parts.pos_of(option), f"the part '{option}' covers '{i}', which is not a step in this flow"
                                                  f"{_suggest(i, set(by_id))}")
            elif i == consent_step:
                ctx.err(raw_parts.pos_of(option), f"the part '{option}' cannot cover the consent question '{i}'")
            elif i == step:
                ctx.err(raw_parts.pos_of(option), f"the part '{option}' cannot cover '{i}', the question that asks "
                                                  "which parts may be shown")
            elif i in owner:
                ctx.err(raw_parts.pos_of(option), f"'{i}' is in two parts ('{owner[i]}' and '{option}'); "
                                                  "a step belongs to one part")
            else:
                owner[i] = option
        parts[option] = tuple(ids)
    return step, parts, _every_part(ctx, which, by_id, {consent_step, step}, owner)


def _every_part(ctx: _Ctx, which: YDict, by_id: dict, questions: set, owner: dict) -> tuple:
    """consent.which.every_part: steps about all the parts at once (the worker's notes on every
    house), withheld with any part that is."""
    raw = which.get("every_part")
    if raw is None:
        return ()
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        ctx.err(which.pos_of("every_part"), "'every_part' must list the steps about every part, like [worker_notes]")
        return ()
    for i in ids:
        if by_id and i not in by_id:
            ctx.err(which.pos_of("every_part"), f"every_part names '{i}', which is not a step in this flow"
                                                f"{_suggest(i, set(by_id))}")
        elif i in questions:
            ctx.err(which.pos_of("every_part"), f"every_part cannot name '{i}', a question about what may be shown")
        elif i in owner:
            ctx.err(which.pos_of("every_part"), f"'{i}' is in the part '{owner[i]}'; a step is in one part or in "
                                                "every_part, not both")
    return tuple(ids)


def _respondents(ctx: _Ctx, data: YDict) -> tuple[str, ...]:
    """respondents: [young_person, adult]  (who may answer; see bot/respondent.py)"""
    if "respondents" not in data:
        return ()
    raw = data["respondents"]
    if not isinstance(raw, YList) or not raw:
        ctx.err(data.pos_of("respondents"), f"'respondents' must be a list of who may answer, e.g. [young_person, adult]; use {', '.join(RESPONDENTS)}")
        return ()
    found: list[str] = []
    for i, item in enumerate(raw):
        value = parse_respondent(item) if isinstance(item, str) else None
        if value is None:
            ctx.err(raw.pos_of(i), f"'{item}' is not a respondent{_suggest(str(item), RESPONDENTS)}; use {', '.join(RESPONDENTS)}")
        elif value in found:
            ctx.err(raw.pos_of(i), f"'{item}' is listed twice under respondents; list each once")
        else:
            found.append(value)
    return tuple(found)


def _requires(ctx: _Ctx, data: YDict, respondents: tuple[str, ...], audience: str | None) -> tuple[str, ...]:
    """requires: worker_present  (a child tool, only ever with the worker there)"""
    if "requires" not in data:
        return ()
    raw = data["requires"]
    items = [(raw, data.pos_of("requires"))] if isinstance(raw, str) else (
        [(x, raw.pos_of(i)) for i, x in enumerate(raw)] if isinstance(raw, YList) and raw else [])
    if not items:
        ctx.err(data.pos_of("requires"), f"'requires' must be one of: {', '.join(REQUIREMENTS)}, e.g.  requires: worker_present")
        return ()
    found: list[str] = []
    for value, pos in items:
        if value not in REQUIREMENTS:
            ctx.err(pos, f"unknown requirement '{value}'{_suggest(str(value), REQUIREMENTS)}; use {', '.join(REQUIREMENTS)}")
        elif value not in found:
            found.append(value)
    if "worker_present" in found and respondents and "practitioner" in respondents:
        ctx.err(data.pos_of("requires"), "a worker-present flow is answered by someone else with the worker there; take practitioner out of 'respondents'")
    return tuple(found)


def load_flow_text(text: str, filename: str, lang: str = "en") -> tuple[Flow | None, list[SourceError]]:
    """Load a flow; ``lang`` picks the wording of {en: ..., cy: ...} texts (English where missing)."""
    ctx = _Ctx(filename, lang=lang)
    data, errors = parse_yaml(text, filename)
    ctx.errors.extend(errors)
    if data is None and errors:
        return None, ctx.errors
    if not isinstance(data, YDict):
        ctx.err(getattr(data, "pos", Pos(1, 1)), f"a flow file must be a mapping (id:, version:, title:, audience:, steps:), not a {_type_name(data)}")
        return None, ctx.errors
    for key in data:
        if key not in FLOW_KEYS:
            ctx.err(data.key_pos_of(key), f"unknown key '{key}'{_suggest(key, FLOW_KEYS)}")
    fid = _want_str(ctx, data, "id", True, "the flow")
    if fid is not None and not FLOW_ID_RE.match(fid):
        ctx.err(data.pos_of("id"), f"flow id '{fid}' must start with a lower-case letter and use only a-z, 0-9 and - (e.g. scaling-checkin)")
    version = _want_int(ctx, data, "version")
    if "version" not in data:
        ctx.err(data.pos, "the flow is missing 'version'; add  version: 1  and raise it whenever you change the wording")
    elif version is not None and version < 1:
        ctx.err(data.pos_of("version"), "'version' must be 1 or more")
    languages, reviewed = _languages(ctx, data)
    title = _want_str(ctx, data, "title", True, "the flow")
    audience = _want_str(ctx, data, "audience", True, "the flow")
    if audience is not None and audience not in AUDIENCES:
        hint = _suggest(audience, AUDIENCES) or f"; use one of {', '.join(AUDIENCES)}"
        ctx.err(data.pos_of("audience"), f"audience '{audience}' is not known{hint}")
    description = _want_str(ctx, data, "description", False, "the flow") or ""
    intro = _want_str(ctx, data, "intro", False, "the flow")
    render_intro = None
    if intro:
        render_intro = _template(ctx, data.pos_of("intro"), intro, "the intro", [], False)
    stop = _want_str(ctx, data, "stop_message", False, "the flow")
    render_stop = _template(ctx, data.pos_of("stop_message"), stop, "the stop_message", [], False) if stop else None
    steps: list[Step] = []
    refs: dict = {}
    raw_steps = data.get("steps")
    if raw_steps is None:
        ctx.err(data.pos, "the flow has no 'steps'; add a list of steps, each with an id and 'ask' or 'say'")
    elif not isinstance(raw_steps, YList) or not raw_steps:
        ctx.err(data.pos_of("steps"), "'steps' must be a list of steps, each starting with '- id: ...'")
    elif len(raw_steps) > MAX_STEPS:
        ctx.err(raw_steps.pos_of(MAX_STEPS), f"a flow can have at most {MAX_STEPS:,} steps and this one has "
                f"{len(raw_steps):,}; split it into several flows")
    else:
        seen: dict[str, Pos] = {}
        for i, raw in enumerate(raw_steps):
            step = _step(ctx, raw, raw_steps.pos_of(i), refs)
            if step is None:
                continue
            if step.id in seen:
                ctx.err(step.pos, f"step id '{step.id}' is used twice (first at line {seen[step.id].line}); give each step its own id")
                continue
            seen[step.id] = step.pos
            steps.append(step)
        if steps and not any(s.is_question for s in steps):
            ctx.err(raw_steps.pos, "the flow asks nothing; add at least one question step")
        if steps:
            _lint_graph(ctx, steps, refs)
            if not ctx.errors:
                _lint_sizes(ctx, data, steps)
    case_keys = _case_keys(ctx)
    consent_step, without_consent, consent_which, consent_parts, consent_every = _consent(
        ctx, data, {s.id: s for s in steps})
    respondents = _respondents(ctx, data)
    requires = _requires(ctx, data, respondents, audience)
    _lint_translations(ctx, languages)
    if ctx.errors:
        return None, sorted(ctx.errors, key=lambda e: (e.line, e.col))
    number = 0
    for step in steps:
        if step.is_question:
            number += 1
            step.number = number
    flow = Flow(
        id=fid, version=version, title=title, audience=audience, steps=steps, source=text, path=filename,
        description=description.strip(), intro=intro, render_intro=render_intro, render_stop=render_stop,
        consent_step=consent_step, without_consent=without_consent, consent_which=consent_which,
        consent_parts=consent_parts, consent_every=consent_every, respondents=respondents, requires=requires,
        languages=languages, reviewed=reviewed, lang=lang if lang in languages else "en",
    )
    flow.case_keys = case_keys
    flow.warnings = sorted(ctx.warnings, key=lambda e: (e.line, e.col))
    if lang == "en":
        # Each translation is a flow of its own wording: build it now, so that a template
        # mistake in a translation is found by validate, not in a conversation.
        flow.variants["en"] = flow
        for tag in languages[1:]:
            variant, errors = load_flow_text(text, filename, tag)
            if variant is None:
                return None, [SourceError(e.file, e.line, e.col, f"in the '{tag}' wording: {e.message}") for e in errors]
            flow.variants[tag] = variant
    return flow, []


def load_flow_file(path: Path | str) -> tuple[Flow | None, list[SourceError]]:
    path = Path(path)
    text, errors = read_source(path)
    if text is None:
        return None, errors
    return load_flow_text(text, str(path))


def flow_files(paths) -> tuple[list[Path], list[SourceError]]:
    """Expand files and folders into flow files (*.yaml, *.yml), skipping flows/tests and flows/rehearsal
    (role-play scenarios and coach rules, checked by bot.rehearsal)."""
    found: list[Path] = []
    errors: list[SourceError] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml"))):
                rel = f.relative_to(p).parts
                if "tests" in rel[:-1] or "rehearsal" in rel[:-1] or f.name.startswith("."):
                    continue
                found.append(f)
        elif p.exists():
            found.append(p)
        else:
            errors.append(SourceError(str(p), 1, 1, "no such file or folder"))
    return found, errors
