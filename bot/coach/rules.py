"""Load and check the coach's rules (flows/rehearsal/coach.yaml).

Every problem is reported as ``file:line:col: message`` saying what is wrong and how to fix
it; nothing here raises on a bad file. Phrases are compiled to regular expressions once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.yamlpos import Pos, SourceError, YDict, YList, parse_yaml, read_source

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "flows" / "rehearsal" / "coach.yaml"

MISTAKES = ("closed", "why", "leading", "blaming", "lecture", "multiple")
PRACTICE = (
    "rp_what_happened", "rp_thinking", "rp_feelings", "rp_affected", "rp_repair",
    "sf_best_hopes", "sf_scaling", "sf_exception", "sf_coping", "sf_miracle",
    "sf_relationship", "sf_better",
)
LABELS = MISTAKES + ("open",) + PRACTICE

TOP_KEYS = {
    "version", "spelling", "question_words", "auxiliaries", "fillers", "open_requests",
    "conditional_openings", "pleasantries", "mistakes", "practice", "questions", "suggestions", "topics",
}
WORD_LIST_KEYS = ("question_words", "auxiliaries", "fillers", "open_requests", "conditional_openings", "pleasantries")
MISTAKE_RULE_KEYS = {"why": {"starts", "phrases", "patterns"}, "leading": {"starts", "phrases", "patterns", "tags", "comma_tags"},
                     "blaming": {"starts", "phrases", "patterns"}, "lecture": {"starts", "phrases", "patterns"}}
PRACTICE_KEYS = {"label", "starts", "phrases", "patterns", "people", "not"}
SUGGESTION_KEYS = {"labels", "phrases", "person", "say"}
TOPIC_KEYS = {"people", "named", "places", "not_names", "pronouns"}
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = {"with", "person"}


NUMBER = r"(?:\d+|zero|nought|one|two|three|four|five|six|seven|eight|nine|ten)"


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, punctuation other than sentence marks turned to spaces."""
    text = text.replace(" - ", ", ").replace(" \u2013 ", ", ").replace(" \u2014 ", ", ")
    text = text.lower().replace("\u2019", "").replace("\u2018", "").replace("'", "").replace("`", "")
    text = re.sub(r"[^a-z0-9?!.,;\s]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def phrase_regex(phrase: str, star: str | None = None) -> str:
    """A phrase (words, `*` one word, `**` up to three words, `#` a number) as a regex.

    ``star`` replaces what `*` stands for (a practice rule's `people`: "would your *").
    """
    parts = []
    marked = phrase.replace("**", " qqstarsqq ").replace("*", " qqstarqq ").replace("#", " qqnumqq ")
    for word in normalise(marked).split():
        if word == "qqstarqq":
            parts.append(star or r"[a-z0-9]+")
        elif word == "qqstarsqq":
            parts.append(r"(?:[a-z0-9]+ ){0,2}[a-z0-9]+")
        elif word == "qqnumqq":
            parts.append(NUMBER)
        else:
            parts.append(re.escape(word))
    return r"\b" + " ".join(parts) + r"\b"


@dataclass
class Matcher:
    """Phrases (anywhere), starts (at the start of a question) and patterns, as two regexes."""

    anywhere: re.Pattern | None = None
    start: re.Pattern | None = None

    def search(self, text: str) -> bool:
        return bool((self.anywhere and self.anywhere.search(text)) or (self.start and self.start.match(text)))


@dataclass
class PracticeRule:
    label: str
    matcher: Matcher
    people: frozenset = frozenset()
    exclude: re.Pattern | None = None


@dataclass
class SuggestionRule:
    say: str
    labels: tuple = ()
    matcher: Matcher | None = None
    person: bool = False


@dataclass
class Rules:
    spelling: list = field(default_factory=list)  # (regex, replacement)
    question_words: set = field(default_factory=set)
    auxiliaries: set = field(default_factory=set)
    fillers: set = field(default_factory=set)
    open_requests: re.Pattern | None = None
    conditional_openings: re.Pattern | None = None
    pleasantries: re.Pattern | None = None
    mistakes: dict = field(default_factory=dict)  # label -> Matcher
    leading_tags: re.Pattern | None = None
    practice: list = field(default_factory=list)
    suggestions: list = field(default_factory=list)
    questions: dict = field(default_factory=dict)  # practice label -> [wording, alternatives...]
    topic_people: re.Pattern | None = None
    topic_named: re.Pattern | None = None
    topic_places: re.Pattern | None = None
    not_names: set = field(default_factory=set)
    pronouns: re.Pattern | None = None


class RulesError(Exception):
    def __init__(self, errors: list[SourceError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class _Raw:
    """The merged content of one or more rules files, each value with where it came from."""

    lists: dict = field(default_factory=dict)  # key -> [(str, file, pos)]
    spelling: list = field(default_factory=list)
    mistakes: dict = field(default_factory=dict)  # label -> key -> [(str, file, pos)]
    practice: list = field(default_factory=list)  # (YDict, file)
    suggestions: list = field(default_factory=list)
    questions: dict = field(default_factory=dict)
    topics: dict = field(default_factory=dict)


class _Checker:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[SourceError] = []

    def err(self, pos: Pos, message: str) -> None:
        self.errors.append(SourceError(self.file, pos.line, pos.col, message))

    def strings(self, parent, key, where: str) -> list:
        """A list of non-empty strings at parent[key], as (text, file, pos)."""
        value = parent.get(key)
        pos = parent.pos_of(key) if isinstance(parent, YDict) else Pos(1, 1)
        if value is None:
            return []
        if isinstance(value, str):
            value = YList([value])
            value.pos, value.item_pos = pos, [pos]
        if not isinstance(value, list):
            self.err(pos, f"{where} must be a list of words or phrases, like [kicked off, lost your temper]")
            return []
        out = []
        for i, item in enumerate(value):
            ipos = value.pos_of(i) if isinstance(value, YList) else pos
            if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
                self.err(ipos, f"each entry of {where} must be a word or phrase; put quotes around numbers and around text with ': ' or braces")
                continue
            out.append((str(item), self.file, ipos))
        return out

    def pattern(self, text: str, pos: Pos) -> bool:
        try:
            re.compile(text)
            return True
        except re.error as exc:
            self.err(pos, f"this pattern is not a valid regular expression ({exc}); or write it as a phrase instead")
            return False

    def unknown_keys(self, d: YDict, allowed: set, where: str) -> None:
        import difflib

        for key in d:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; use one of: {', '.join(sorted(allowed))}"
                self.err(d.key_pos_of(key), f"unknown key '{key}' in {where}{hint}")


def _read(path: Path, raw: _Raw, errors: list[SourceError], extra: bool) -> None:
    text, errs = read_source(path)
    if text is None:
        errors.extend(errs)
        return
    name = str(path)
    if not text.strip():
        errors.append(SourceError(name, 1, 1, "the file is empty; coach rules need at least 'version: 1'"))
        return
    data, errs = parse_yaml(text, name)
    errors.extend(errs)
    if data is None:
        return
    c = _Checker(name)
    if not isinstance(data, YDict):
        c.err(getattr(data, "pos", Pos(1, 1)), "coach rules must be a mapping (keys such as version, mistakes, practice), not a list or text")
        errors.extend(c.errors)
        return
    c.unknown_keys(data, TOP_KEYS, "the coach rules")
    if data.get("version") != 1:
        c.err(data.pos_of("version"), "version must be 1 (write 'version: 1' at the top)")
    spelling = data.get("spelling")
    if spelling is not None:
        if not isinstance(spelling, YDict):
            c.err(data.pos_of("spelling"), "spelling must be a mapping of typed words to what they mean, like 'u: you'")
        else:
            for k, v in spelling.items():
                if not isinstance(v, str) or not str(k).strip() or not v.strip():
                    c.err(spelling.pos_of(k), f"spelling '{k}' must map to words, like 'u: you'")
                else:
                    raw.spelling.append((str(k), v))
    for key in WORD_LIST_KEYS:
        raw.lists.setdefault(key, []).extend(c.strings(data, key, key))
    mistakes = data.get("mistakes")
    if mistakes is not None:
        if not isinstance(mistakes, YDict):
            c.err(data.pos_of("mistakes"), "mistakes must be a mapping from a label (why, leading, blaming, lecture) to its lists")
        else:
            for label, rule in mistakes.items():
                if label not in MISTAKE_RULE_KEYS:
                    hint = "closed and multiple come from the question's form; " if label in ("closed", "multiple") else ""
                    c.err(mistakes.key_pos_of(label), f"'{label}' cannot have word lists here; {hint}use one of: {', '.join(MISTAKE_RULE_KEYS)}")
                    continue
                if not isinstance(rule, YDict):
                    c.err(mistakes.pos_of(label), f"mistakes.{label} must be a mapping with starts/phrases/patterns lists")
                    continue
                c.unknown_keys(rule, MISTAKE_RULE_KEYS[label], f"mistakes.{label}")
                slot = raw.mistakes.setdefault(label, {})
                for key in MISTAKE_RULE_KEYS[label]:
                    items = c.strings(rule, key, f"mistakes.{label}.{key}")
                    if key == "patterns":
                        items = [i for i in items if c.pattern(i[0], i[2])]
                    slot.setdefault(key, []).extend(items)
    practice = data.get("practice")
    if practice is not None:
        if not isinstance(practice, YList):
            c.err(data.pos_of("practice"), "practice must be a list of rules, each with a label and phrases")
        else:
            for i, rule in enumerate(practice):
                if not isinstance(rule, YDict):
                    c.err(practice.pos_of(i), "each practice rule must be a mapping with 'label' and 'phrases'")
                    continue
                c.unknown_keys(rule, PRACTICE_KEYS, "a practice rule")
                label = rule.get("label")
                if label not in PRACTICE:
                    c.err(rule.pos_of("label"), f"practice label '{label}' is not known; use one of: {', '.join(PRACTICE)}")
                    continue
                if not any(k in rule for k in ("starts", "phrases", "patterns")):
                    c.err(rule.pos, f"practice rule '{label}' needs 'phrases', 'starts' or 'patterns'")
                for key in ("starts", "phrases", "patterns", "people", "not"):
                    items = c.strings(rule, key, f"practice '{label}' {key}")
                    if key == "patterns":
                        [c.pattern(t, p) for t, _, p in items]
                raw.practice.append((rule, c))
    suggestions = data.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, YList):
            c.err(data.pos_of("suggestions"), "suggestions must be a list of rules, each with 'say'")
        else:
            for i, rule in enumerate(suggestions):
                if not isinstance(rule, YDict):
                    c.err(suggestions.pos_of(i), "each suggestion must be a mapping with 'say' (and 'labels' or 'phrases')")
                    continue
                c.unknown_keys(rule, SUGGESTION_KEYS, "a suggestion")
                say = rule.get("say")
                if not isinstance(say, str) or not say.strip():
                    c.err(rule.pos_of("say"), "a suggestion needs 'say': the wording to offer, like 'What happened{with}?'")
                    continue
                for name in PLACEHOLDER_RE.findall(say):
                    if name not in PLACEHOLDERS:
                        c.err(rule.pos_of("say"), f"unknown placeholder {{{name}}}; use {{with}} or {{person}}")
                for label, _, pos in c.strings(rule, "labels", "suggestion labels"):
                    if label not in LABELS:
                        c.err(pos, f"label '{label}' is not known; use one of: {', '.join(LABELS)}")
                if "person" in rule and not isinstance(rule.get("person"), bool):
                    c.err(rule.pos_of("person"), "person must be true or false")
                raw.suggestions.append((rule, c))
    questions = data.get("questions")
    if questions is not None:
        if not isinstance(questions, YDict):
            c.err(data.pos_of("questions"), "questions must be a mapping from a practice label to its wording")
        else:
            for label, wording in questions.items():
                if label not in PRACTICE:
                    c.err(questions.key_pos_of(label), f"'{label}' is not a practice label; use one of: {', '.join(PRACTICE)}")
                    continue
                items = c.strings(questions, label, f"questions.{label}")
                for text, _, pos in items:
                    for name in PLACEHOLDER_RE.findall(text):
                        if name not in PLACEHOLDERS:
                            c.err(pos, f"unknown placeholder {{{name}}}; use {{with}} or {{person}}")
                if items:
                    raw.questions[label] = [t for t, _, _ in items]
    topics = data.get("topics")
    if topics is not None:
        if not isinstance(topics, YDict):
            c.err(data.pos_of("topics"), "topics must be a mapping with people, named, places, not_names, pronouns")
        else:
            c.unknown_keys(topics, TOPIC_KEYS, "topics")
            for key in TOPIC_KEYS:
                raw.topics.setdefault(key, []).extend(c.strings(topics, key, f"topics.{key}"))
    if not extra:
        for key in ("mistakes", "practice", "questions", "suggestions"):
            if key not in data:
                c.err(data.pos, f"the main coach rules need '{key}'")
        if isinstance(data.get("questions"), YDict):
            missing = [label for label in PRACTICE if label not in data["questions"]]
            if missing:
                c.err(data.key_pos_of("questions"), f"questions needs a wording for every practice label; missing: {', '.join(missing)}")
    errors.extend(c.errors)


def _alternation(items, anchor: bool) -> re.Pattern | None:
    regexes = [phrase_regex(t) for t, _, _ in items]
    if not regexes:
        return None
    body = "|".join(regexes)
    return re.compile(("^(?:" if anchor else "(?:") + body + ")")


def _matcher(rule, star: str | None = None) -> Matcher:
    phrases = [phrase_regex(str(t), star) for t in _as_list(rule.get("phrases"))]
    phrases += _as_list(rule.get("patterns"))
    starts = [phrase_regex(str(t), star) for t in _as_list(rule.get("starts"))]
    return Matcher(
        re.compile("|".join(phrases)) if phrases else None,
        re.compile("^(?:" + "|".join(starts) + ")") if starts else None,
    )


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_rules(*extra_paths, base: Path | None = DEFAULT_RULES) -> Rules:
    """The shipped rules plus any extra files; raises RulesError listing every problem."""
    raw = _Raw()
    errors: list[SourceError] = []
    paths = ([Path(base)] if base is not None else []) + [Path(p) for p in extra_paths]
    for i, p in enumerate(paths):
        _read(p, raw, errors, extra=base is not None and i > 0)
    if errors:
        raise RulesError(errors)
    return _compile(raw)


def check_rules_file(path) -> list[SourceError]:
    """Problems in one rules file (for `restorative-bot validate`)."""
    errors: list[SourceError] = []
    _read(Path(path), _Raw(), errors, extra=Path(path).resolve() != DEFAULT_RULES)
    return errors


def _compile(raw: _Raw) -> Rules:
    r = Rules()
    for typed, meant in sorted(raw.spelling, key=lambda kv: -len(kv[0])):
        r.spelling.append((re.compile(phrase_regex(typed)), normalise(meant)))
    words = {k: [normalise(t) for t, _, _ in v] for k, v in raw.lists.items()}
    r.question_words = set(words.get("question_words", []))
    r.auxiliaries = set(words.get("auxiliaries", []))
    r.fillers = set(words.get("fillers", []))
    r.open_requests = _alternation(raw.lists.get("open_requests", []), anchor=True)
    r.conditional_openings = _alternation(raw.lists.get("conditional_openings", []), anchor=True)
    r.pleasantries = _alternation(raw.lists.get("pleasantries", []), anchor=True)
    for label, parts in raw.mistakes.items():
        anywhere = [phrase_regex(t) for t, _, _ in parts.get("phrases", [])] + [t for t, _, _ in parts.get("patterns", [])]
        starts = [phrase_regex(t) for t, _, _ in parts.get("starts", [])]
        r.mistakes[label] = Matcher(
            re.compile("|".join(anywhere)) if anywhere else None,
            re.compile("^(?:" + "|".join(starts) + ")") if starts else None,
        )
        if label == "leading" and (parts.get("tags") or parts.get("comma_tags")):
            bare = "|".join(phrase_regex(t) for t, _, _ in parts.get("tags", [])) or "(?!)"
            comma = "|".join(phrase_regex(t) for t, _, _ in parts.get("comma_tags", [])) or "(?!)"
            r.leading_tags = re.compile(r"(?:(?:,|\s)\s*(?:" + bare + r")|,\s*(?:" + comma + r"))\s*[?.!]*\s*$")
    for rule, _ in raw.practice:
        exclude = _as_list(rule.get("not"))
        people = [normalise(p) for p in _as_list(rule.get("people"))]
        star = "(?:" + "|".join(re.escape(p) for p in people) + ")" if people else None
        r.practice.append(PracticeRule(
            rule["label"], _matcher(rule, star),
            frozenset(people),
            re.compile("|".join(phrase_regex(x) for x in exclude)) if exclude else None,
        ))
    for rule, _ in raw.suggestions:
        has_words = rule.get("phrases") or rule.get("patterns")
        r.suggestions.append(SuggestionRule(
            rule["say"], tuple(_as_list(rule.get("labels"))), _matcher(rule) if has_words else None, bool(rule.get("person"))
        ))
    r.questions = dict(raw.questions)
    t = {k: [s for s, _, _ in v] for k, v in raw.topics.items()}
    if t.get("people"):
        r.topic_people = re.compile(r"\b(?:your|his|her|their|my) (?:" + "|".join(re.escape(normalise(p)) for p in t["people"]) + r")\b")
    if t.get("named"):
        r.topic_named = re.compile("|".join(phrase_regex(p) for p in t["named"]))
    if t.get("places"):
        r.topic_places = re.compile("|".join(phrase_regex(p) for p in t["places"]))
    r.not_names = set(t.get("not_names", []))
    if t.get("pronouns"):
        r.pronouns = re.compile(r"\b(?:" + "|".join(re.escape(normalise(p)) for p in t["pronouns"]) + r")\b")
    return r
