"""The lexicon and its loader: read the YAML (with positions for errors), merge, compile.

Override files use the same keys as the default: ``concerns.<id>.phrases``, ``grave`` (alert
phrases no net may lower), ``patterns`` and ``exclusions`` are *added* to the default's; ``label``, ``responses.<audience>``,
``texts.<key>``, ``normalisation.replace.<word>`` and ``max_gap`` *replace*; ``sets.<name>``
and ``normalisation.words`` are extended; a new concern needs a ``label`` and goes last in
severity unless ``severity:`` (a full list of ids, most serious first) is given.
A ``severity:`` list orders every concern known up to its file. Person-facing texts are
checked by :mod:`bot.safeguarding.help` (never a promise of secrecy).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from bot.safeguarding.help import AUDIENCES, RESPONSE_KEYS, _HelpTexts
from bot.safeguarding.match import _element, _Matching, _PhraseSet
from bot.safeguarding.normalise import _Normaliser
from bot.safeguarding.tiers import ALERT_RANK, GRAVE_RANK, REVIEW_RANK, Concern

try:  # the regex parser, used only to refuse patterns that could backtrack badly
    import re._parser as _sre_parse  # type: ignore[import-not-found]  # Python >= 3.11
    import re._constants as _sre_const  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    _sre_parse = None
    _sre_const = None

DEFAULT_MAX_GAP = 3
_MAX_FILE_BYTES = 2_000_000


class SafeguardingConfigError(Exception):
    """A safeguarding lexicon file is wrong. ``str(err)`` is ``file:line:col: message``."""

    def __init__(self, file: str, line: int, col: int, message: str):
        self.file, self.line, self.col, self.message = file, line, col, message
        super().__init__(f"{file}:{line}:{col}: {message}")


# --------------------------------------------------------------------------------------
# Reading the YAML with positions
# --------------------------------------------------------------------------------------

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = ("version", "max_gap", "normalisation", "sets", "concerns", "contexts", "raise", "severity",
             "responses", "texts")
_CONCERN_KEYS = ("label", "phrases", "grave", "patterns", "review", "review_patterns", "soften", "exclusions", "help")
_CONTEXT_KEYS = ("phrases", "concerns", "within", "overlap", "cap")
MAX_WINDOW = 12  # the largest sized gap, "...12"
_RAISE_KEYS = ("low_score",)
_LOW_SCORE_KEYS = ("at_most", "concerns")
DEFAULT_WITHIN = 8
_RULE_FIELDS = ("phrases", "grave", "patterns", "review", "review_patterns", "soften", "exclusions")
_NORM_KEYS = ("replace", "words")
_STR_TAG = "tag:yaml.org,2002:str"
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT_TAG = "tag:yaml.org,2002:int"


@dataclass(frozen=True)
class _Item:
    value: str
    file: str
    line: int
    col: int
    quoted: bool = False

    def error(self, message: str, offset: int = 0) -> SafeguardingConfigError:
        return SafeguardingConfigError(self.file, self.line, self.col + offset, message)


class _Reader:
    def __init__(self, name: str):
        self.name = name

    def err(self, node: yaml.Node, message: str) -> SafeguardingConfigError:
        return SafeguardingConfigError(self.name, node.start_mark.line + 1, node.start_mark.column + 1, message)

    def item(self, node: yaml.Node, what: str) -> _Item:
        if not isinstance(node, yaml.ScalarNode):
            raise self.err(node, f"{what} must be text, not a {_kind(node)}")
        if node.tag != _STR_TAG and node.value in ("", "~", "null", "Null", "NULL"):
            raise self.err(node, f"{what} is empty")
        return _Item(str(node.value), self.name, node.start_mark.line + 1, node.start_mark.column + 1,
                     quoted=node.style in ("'", '"'))

    def text(self, node: yaml.Node, what: str) -> _Item:
        it = self.item(node, what)
        if not it.value.strip():
            raise self.err(node, f"{what} is empty")
        return it

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None = None) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping (key: value), not a {_kind(node)}")
        seen: dict[str, yaml.Node] = {}
        for k, _v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise self.err(k, f"keys in {what} must be plain names")
            if k.value in seen:
                prev = seen[k.value].start_mark.line + 1
                raise self.err(k, f"duplicate key '{k.value}' in {what} (first given on line {prev})")
            seen[k.value] = k
            if allowed is not None and k.value not in allowed:
                hint = difflib.get_close_matches(str(k.value), allowed, n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else f" (expected one of: {', '.join(allowed)})"
                raise self.err(k, f"unknown key '{k.value}' in {what}{extra}")
        return list(node.value)

    def seq(self, node: yaml.Node, what: str) -> list[_Item]:
        if isinstance(node, yaml.ScalarNode) and node.tag != _STR_TAG and node.value in ("", "~", "null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.err(node, f"{what} must be a list, not a {_kind(node)}")
        return [self.text(n, f"an entry of {what}") for n in node.value]


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return {"tag:yaml.org,2002:int": "number", "tag:yaml.org,2002:float": "number",
            "tag:yaml.org,2002:bool": "true/false value", "tag:yaml.org,2002:null": "empty value"}.get(node.tag, "text")


@dataclass
class _RawConcern:
    label: _Item | None = None
    phrases: list[_Item] | None = None
    grave: list[_Item] | None = None
    patterns: list[_Item] | None = None
    exclusions: list[_Item] | None = None
    review: list[_Item] | None = None
    review_patterns: list[_Item] | None = None
    soften: list[_Item] | None = None
    help: dict[str, _Item] | None = None
    where: _Item | None = None


@dataclass
class _RawContext:
    where: _Item
    phrases: list[_Item] | None = None
    concerns: list[_Item] | None = None
    within: int | None = None
    overlap: bool | None = None
    cap: bool | None = None


@dataclass
class _Raw:
    """One file's content, every value carrying its position."""

    name: str
    max_gap: tuple[int, _Item] | None = None
    replace: dict[str, _Item] | None = None
    words: list[_Item] | None = None
    sets: dict[str, list[_Item]] | None = None
    concerns: dict[str, _RawConcern] | None = None
    severity: list[_Item] | None = None
    responses: dict[str, _Item] | None = None
    texts: dict[str, _Item] | None = None
    contexts: dict[str, _RawContext] | None = None
    low_score: tuple[int | None, list[_Item] | None, _Item] | None = None


def _parse(name: str, text: str) -> _Raw:
    for lineno, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            raise SafeguardingConfigError(name, lineno, line.index("\t") + 1,
                                          "tab character in indentation; YAML indentation must use spaces")
    try:
        # libyaml when present (several times faster); any error is re-read by the pure-Python
        # parser below, whose messages and positions the errors are written for
        root = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        root = None
        fast_failed = True
    else:
        fast_failed = False
    try:
        if fast_failed:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "\\t" in problem or "\t" in problem:
            problem = "tab character; YAML indentation must use spaces"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SafeguardingConfigError(name, line, col, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character, e.g. a stray backspace
        pos = exc.position if isinstance(exc.position, int) else 0
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SafeguardingConfigError(name, line, col, f"invalid YAML: control character {char!r} "
                                      "is not allowed (remove it, or write it as an escape in a quoted string)") from None
    except yaml.YAMLError as exc:
        raise SafeguardingConfigError(name, 1, 1, f"invalid YAML: {exc}") from None
    raw = _Raw(name)
    if root is None:
        return raw
    r = _Reader(name)
    for k, v in r.mapping(root, "the safeguarding file", _TOP_KEYS):
        key = k.value
        if key == "version":
            if v.tag != _INT_TAG or int(v.value) != 1:
                raise r.err(v, "version must be 1")
        elif key == "max_gap":
            if v.tag != _INT_TAG or not 0 <= int(v.value) <= 8:
                raise r.err(v, "max_gap must be a whole number from 0 to 8")
            raw.max_gap = (int(v.value), r.item(v, "max_gap"))
        elif key == "normalisation":
            for nk, nv in r.mapping(v, "normalisation", _NORM_KEYS):
                if nk.value == "replace":
                    raw.replace = {}
                    for sk, sv in r.mapping(nv, "normalisation.replace"):
                        src = r.text(sk, "a word to replace")
                        if not 1 <= len(src.value.split()) <= 2:
                            raise src.error("a replacement key must be one or two words")
                        raw.replace[src.value] = r.text(sv, f"the replacement for '{src.value}'")
                else:
                    raw.words = r.seq(nv, "normalisation.words")
        elif key == "sets":
            raw.sets = {}
            for sk, sv in r.mapping(v, "sets"):
                if not _ID.match(str(sk.value)):
                    raise r.err(sk, f"set name '{sk.value}' must be lower-case letters, digits and _")
                raw.sets[sk.value] = r.seq(sv, f"sets.{sk.value}")
        elif key == "concerns":
            raw.concerns = {}
            for ck, cv in r.mapping(v, "concerns"):
                if not _ID.match(str(ck.value)):
                    raise r.err(ck, f"concern id '{ck.value}' must be lower-case letters, digits and _")
                rc = _RawConcern(where=r.item(ck, "concern id"))
                for fk, fv in r.mapping(cv, f"concern '{ck.value}'", _CONCERN_KEYS):
                    if fk.value == "label":
                        rc.label = r.text(fv, "label")
                    elif fk.value == "help":
                        rc.help = {}
                        for hk, hv in r.mapping(fv, f"{ck.value}.help", RESPONSE_KEYS):
                            rc.help[hk.value] = r.text(hv, f"{ck.value}.help.{hk.value}")
                    else:
                        setattr(rc, fk.value, r.seq(fv, f"{ck.value}.{fk.value}"))
                raw.concerns[ck.value] = rc
        elif key == "contexts":
            raw.contexts = {}
            for xk, xv in r.mapping(v, "contexts"):
                if not _ID.match(str(xk.value)):
                    raise r.err(xk, f"context name '{xk.value}' must be lower-case letters, digits and _")
                rx_ = _RawContext(where=r.item(xk, "context name"))
                for fk, fv in r.mapping(xv, f"contexts.{xk.value}", _CONTEXT_KEYS):
                    if fk.value == "within":
                        if fv.tag != _INT_TAG or not 0 <= int(fv.value) <= 40:
                            raise r.err(fv, "within must be a whole number of words from 0 to 40")
                        rx_.within = int(fv.value)
                    elif fk.value == "overlap":
                        if fv.tag != "tag:yaml.org,2002:bool":
                            raise r.err(fv, "overlap must be true or false")
                        rx_.overlap = fv.value.lower() in ("true", "yes", "on")
                    elif fk.value == "cap":
                        if fv.tag != _STR_TAG or fv.value != "review":
                            raise r.err(fv, "cap must be 'review' (a match near this context is kept, at most at review)")
                        rx_.cap = True
                    else:
                        setattr(rx_, fk.value, r.seq(fv, f"contexts.{xk.value}.{fk.value}"))
                raw.contexts[xk.value] = rx_
        elif key == "raise":
            for rk, rv in r.mapping(v, "raise", _RAISE_KEYS):
                at_most, ids = None, None
                for fk, fv in r.mapping(rv, "raise.low_score", _LOW_SCORE_KEYS):
                    if fk.value == "at_most":
                        if fv.tag != _INT_TAG or not 0 <= int(fv.value) <= 10:
                            raise r.err(fv, "at_most must be a whole number from 0 to 10 (a 0-10 scale answer)")
                        at_most = int(fv.value)
                    else:
                        ids = r.seq(fv, "raise.low_score.concerns")
                raw.low_score = (at_most, ids, r.item(rk, "raise.low_score"))
        elif key == "severity":
            raw.severity = r.seq(v, "severity")
        elif key == "responses":
            raw.responses = {}
            for ak, av in r.mapping(v, "responses", RESPONSE_KEYS):
                raw.responses[ak.value] = r.text(av, f"responses.{ak.value}")
        elif key == "texts":
            raw.texts = {}
            for tk, tv in r.mapping(v, "texts"):
                if not _ID.match(str(tk.value)):
                    raise r.err(tk, f"text key '{tk.value}' must be lower-case letters, digits and _")
                raw.texts[tk.value] = r.text(tv, f"texts.{tk.value}")
    return raw


def _unsafe_repeat(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack badly on long text, or None."""
    if _sre_parse is None:  # pragma: no cover
        return None
    c = _sre_const
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT}
    if hasattr(c, "POSSESSIVE_REPEAT"):
        repeats.add(c.POSSESSIVE_REPEAT)

    def can_match_space(sub) -> bool:
        try:
            import re._compiler as comp  # type: ignore[import-not-found]

            return comp.compile(sub, 0).fullmatch(" ") is not None
        except Exception:  # pragma: no cover - be safe: assume it can
            return True

    def walk(sub) -> str | None:
        for op, av in sub:
            if op in repeats:
                lo, hi, inner = av
                if hi == c.MAXREPEAT:
                    simple = len(inner) == 1 and inner[0][0] in (c.LITERAL, c.IN, c.CATEGORY, c.NOT_LITERAL)
                    if not simple:
                        return "an unbounded repeat (*, + or {n,}) of a group can backtrack badly on long messages; use a bounded repeat such as {0,6}"
                    if can_match_space(inner):
                        return "an unbounded repeat (*, + or {n,}) of something that matches a space (such as .* or \\s+) can backtrack badly on long messages; use a bounded form such as (?: \\w+){0,6}"
                why = walk(inner)
                if why:
                    return why
            elif op == c.SUBPATTERN:
                why = walk(av[-1])
                if why:
                    return why
            elif op == c.BRANCH:
                for b in av[1]:
                    why = walk(b)
                    if why:
                        return why
            elif op in (c.ASSERT, c.ASSERT_NOT):
                why = walk(av[1])
                if why:
                    return why
        return None

    try:
        return walk(_sre_parse.parse(pattern))
    except Exception:  # pragma: no cover - the pattern already compiled
        return None


# --------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------


class SafeguardingConfig(_Matching, _HelpTexts):
    """A loaded lexicon and wording. Build with :meth:`load`; immutable once built."""

    def __init__(self, raws: list[_Raw], classifier: bool = False):
        merged = _merge(raws)
        self._sources = tuple(r.name for r in raws)
        self.max_gap: int = merged["max_gap"]
        self.severity: tuple[str, ...] = tuple(merged["severity"])
        self.concerns: Mapping[str, str] = MappingProxyType({cid: merged["labels"][cid] for cid in self.severity})
        self.audiences: tuple[str, ...] = AUDIENCES
        self._responses = {a: it.value for a, it in merged["responses"].items()}
        self.texts: Mapping[str, str] = MappingProxyType({k: v.value for k, v in merged["texts"].items()})
        self._sets = {k: [i for i in v] for k, v in merged["sets"].items()}

        # normaliser: first without vocabulary (to read the lexicon), then with it
        replace = {k: v.value for k, v in merged["replace"].items()}
        for src, it in merged["replace"].items():
            if not re.fullmatch(r"[^\W_]+(?: [^\W_]+)?", src.lower()) or src != src.lower():
                raise it.error(f"normalisation.replace key '{src}' must be one or two lower-case words")
        plain = _Normaliser(replace, set())
        self._plain = plain
        compiled_rules: dict[str, dict[str, list]] = {}
        vocab: set[str] = set()
        for it in merged["words"]:
            vocab.update(plain.analyse(it.value)[0])
        preferred = frozenset(vocab)
        for words in replace.values():
            vocab.update(words.split())
        for cid in self.severity:
            c = merged["rules"][cid]
            compiled_rules[cid] = {
                f: [(self._compile_phrase(it, vocab), it.value) for it in c[f]]
                for f in ("phrases", "grave", "review", "soften", "exclusions")
            }
            for f in ("patterns", "review_patterns"):
                compiled_rules[cid][f] = [(self._compile_pattern(it), it.value) for it in c[f]]
        contexts = {name: [(self._compile_phrase(it, vocab), it.value) for it in ctx["phrases"]]
                    for name, ctx in merged["contexts"].items()}
        self._norm = _Normaliser(replace, vocab, preferred)

        # Tiers are ranks inside matching: GRAVE_RANK (3, an alert no net may lower) >
        # ALERT_RANK (2) > REVIEW_RANK (1) > 0 (nothing).
        self._phrases = _PhraseSet()
        self._exclusions: list[_PhraseSet | None] = []
        self._soften: list[_PhraseSet | None] = []
        self._patterns: list[list[tuple[re.Pattern, str, int]]] = []
        for ci, cid in enumerate(self.severity):
            rules = compiled_rules[cid]
            for elems, rule in rules["phrases"]:
                self._phrases.add(elems, (ci, rule, ALERT_RANK))
            for elems, rule in rules["grave"]:
                self._phrases.add(elems, (ci, rule, GRAVE_RANK))
            for elems, rule in rules["review"]:
                self._phrases.add(elems, (ci, rule, REVIEW_RANK))
            for field_, target in (("exclusions", self._exclusions), ("soften", self._soften)):
                ps = None
                if rules[field_]:
                    ps = _PhraseSet()
                    for elems, rule in rules[field_]:
                        ps.add(elems, rule)
                target.append(ps)
            self._patterns.append([(rx, rule, ALERT_RANK) for rx, rule in rules["patterns"]]
                                  + [(rx, rule, REVIEW_RANK) for rx, rule in rules["review_patterns"]])
        # contexts: phrases that, near a match, lower it one tier (lessons, media, accidents...)
        self._contexts = _PhraseSet() if contexts else None
        self.context_names: tuple[str, ...] = tuple(contexts)
        for name, phrases in contexts.items():
            ctx = merged["contexts"][name]
            scope = (frozenset(self.severity.index(it.value) for it in ctx["concerns"])
                     if ctx["concerns"] is not None else None)
            for elems, rule in phrases:
                self._contexts.add(elems, (name, rule, scope, ctx["within"], ctx["overlap"], ctx["cap"]))
        low = merged["low_score"]
        self._low_score_at_most: int | None = low["at_most"]
        self._low_score_concerns = frozenset(self.severity.index(it.value) for it in low["concerns"])
        # concerns with grave rules: matching goes on past a plain alert there, so a grave
        # rule later in the message still marks the concern as one no net may lower
        self._grave_concerns = frozenset(ci for ci, cid in enumerate(self.severity) if compiled_rules[cid]["grave"])
        self._labels = [self.concerns[cid] for cid in self.severity]
        self._helps = {cid: {a: it.value for a, it in h.items()} for cid, h in merged["helps"].items()}
        self._check_wording(merged)
        # the review net (bot/safeguarding/classify.py): only with the packaged lexicon, whose
        # words and sets its committed model was trained on
        self._classifier = _packaged_classifier(self._sets, self.severity) if classifier else None
        # rules from override files (a deployment's own words): the net never changes their tier
        packaged = str(resources.files("bot").joinpath("safeguarding.yaml"))
        self._local_rules = frozenset(
            it.value for c in merged["rules"].values() for f in ("phrases", "grave", "patterns", "review", "review_patterns")
            for it in c[f] if it.file != packaged)

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, *paths: str | Path, default: bool = True, classifier: bool = True) -> "SafeguardingConfig":
        """The packaged default (unless ``default=False``) with ``paths`` merged on top, in order.

        With the default lexicon the review net (:mod:`bot.safeguarding.classify`) is on
        unless ``classifier=False`` (the training script measures the lexicon alone)."""
        raws = []
        if default:
            ref = resources.files("bot").joinpath("safeguarding.yaml")
            raws.append(_parse(str(ref), ref.read_text(encoding="utf-8")))
        for p in paths:
            path = Path(p)
            try:
                if path.stat().st_size > _MAX_FILE_BYTES:
                    raise SafeguardingConfigError(str(path), 1, 1, "file is too large for a lexicon")
                data = path.read_bytes()
            except OSError as exc:
                raise SafeguardingConfigError(str(path), 1, 1, f"cannot read file: {exc.strerror or exc}") from None
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                line = data[: exc.start].count(b"\n") + 1
                col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
                raise SafeguardingConfigError(str(path), line, col, "file is not UTF-8 text") from None
            raws.append(_parse(str(path), text))
        if not raws:
            raise SafeguardingConfigError("<none>", 1, 1, "no safeguarding file given")
        return cls(raws, classifier=default and classifier)

    @classmethod
    def from_text(cls, text: str, name: str = "<text>", *, default: bool = True,
                  classifier: bool = True) -> "SafeguardingConfig":
        """Like :meth:`load`, with one override (or, with ``default=False``, the whole file) as text."""
        raws = []
        if default:
            ref = resources.files("bot").joinpath("safeguarding.yaml")
            raws.append(_parse(str(ref), ref.read_text(encoding="utf-8")))
        raws.append(_parse(name, text))
        return cls(raws, classifier=default and classifier)

    # -- compiling -------------------------------------------------------------------
    def _compile_phrase(self, it: _Item, vocab: set[str]) -> tuple:
        words = it.value.split()
        if not words:
            raise it.error("empty phrase")
        if words[0].startswith("...") or words[-1].startswith("..."):
            raise it.error("a phrase cannot start or end with '...'")
        elems: list[tuple[int, tuple]] = []
        gap = 0
        for w in words:
            if w.startswith("..."):
                if gap:
                    raise it.error("'... ...' in a phrase; use one '...' (its size is max_gap, or '...N')")
                size = w[3:]
                if not size:
                    gap = self.max_gap
                elif size.isdigit() and 1 <= int(size) <= MAX_WINDOW:
                    gap = int(size)
                else:
                    raise it.error(f"'{w}': a sized gap is '...N' with N a whole number from 1 to {MAX_WINDOW}")
                continue
            alts: list[tuple] = []
            for alt in w.split("|"):
                if alt.startswith("$"):
                    for member in self._set_members(it, alt[1:], ()):
                        alts.append(self._compile_alt(member, member.value, vocab))
                else:
                    alts.append(self._compile_alt(it, alt, vocab))
            seen, uniq = set(), []
            for a in alts:
                if a not in seen:
                    seen.add(a)
                    uniq.append(a)
            elems.append(_element(gap, tuple(uniq)))
            gap = 0
        return tuple(elems)

    def _set_members(self, it: _Item, name: str, outer: tuple[str, ...]) -> list[_Item]:
        """The members of ``sets.name``; a member ``$other`` stands for the members of that set."""
        if name not in self._sets:
            raise it.error(f"unknown set '${name}' (sets: {', '.join(sorted(self._sets)) or 'none'})")
        if name in outer:
            raise it.error(f"set '${name}' includes itself (through {' -> '.join('$' + n for n in (*outer, name))})")
        out: list[_Item] = []
        for member in self._sets[name]:
            if member.value.startswith("$"):
                out.extend(self._set_members(member, member.value[1:].strip(), (*outer, name)))
            else:
                out.append(member)
        return out

    def _compile_alt(self, it: _Item, alt: str, vocab: set[str]) -> tuple:
        # The same alternative recurs thousands of times through sets ($family...): compile once.
        cache = self.__dict__.setdefault("_alt_cache", {})
        done = cache.get(alt)
        if done is not None:
            vocab.update(done[1])
            return done[0]
        words_seen: list[str] = []
        tests = self._compile_alt_uncached(it, alt, words_seen)
        vocab.update(words_seen)
        cache[alt] = (tests, tuple(words_seen))
        return tests

    def _compile_alt_uncached(self, it: _Item, alt: str, vocab: list[str]) -> tuple:
        if not alt:
            raise it.error(f"empty alternative in '{it.value}' (check for '||' or a '|' at the end of a word)")
        tests: list[tuple[str, bool]] = []
        for part in alt.split("_"):
            if not part:
                raise it.error(f"empty word in '{alt}' (check the '_')")
            prefix = part.endswith("*")
            core = part[:-1] if prefix else part
            if "*" in core or "$" in core:
                raise it.error(f"'*' only at the end of a word, '$' only before a set name: '{part}'")
            words = self._plain.analyse(core)[0]
            if not words:
                raise it.error(f"'{part}' has no letters or digits")
            if prefix:
                if len(words) != 1 or len(words[0]) < 3:
                    raise it.error(f"'{part}': a prefix needs at least 3 letters and must be one word")
                tests.append((words[0], True))
            else:
                vocab.extend(words)
                tests.extend((w, False) for w in words)
        return tuple(tests)

    def _compile_pattern(self, it: _Item) -> re.Pattern:
        try:
            rx = re.compile(it.value)
        except re.error as exc:
            offset = (exc.pos or 0) + (1 if it.quoted else 0) if "\n" not in it.value else 0
            raise it.error(f"bad regular expression: {exc.msg}", offset) from None
        why = _unsafe_repeat(it.value)
        if why:
            raise it.error(f"pattern refused: {why}")
        if rx.search("") is not None:
            raise it.error("pattern matches empty text, so it would fire on every message")
        return rx

    # -- using -----------------------------------------------------------------------
    def normalise(self, text: str) -> str:
        """The normalised form matching runs on (see the module docstring)."""
        return self._norm.normalise(text)

    def __repr__(self) -> str:
        return f"SafeguardingConfig(sources={list(self._sources)!r}, concerns={list(self.severity)!r})"



def _merge(raws: list[_Raw]) -> dict:
    max_gap = DEFAULT_MAX_GAP
    replace: dict[str, _Item] = {}
    words: list[_Item] = []
    sets: dict[str, list[_Item]] = {}
    labels: dict[str, str] = {}
    label_items: dict[str, _Item] = {}
    rules: dict[str, dict[str, list[_Item]]] = {}
    order: list[str] = []
    responses: dict[str, _Item] = {}
    texts: dict[str, _Item] = {}
    helps: dict[str, dict[str, _Item]] = {}
    contexts: dict[str, dict] = {}
    low_score: dict = {"at_most": None, "concerns": []}
    for raw in raws:
        if raw.max_gap is not None:
            max_gap = raw.max_gap[0]
        if raw.replace:
            replace.update(raw.replace)
        if raw.words:
            words.extend(raw.words)
        if raw.sets:
            for name, members in raw.sets.items():
                sets.setdefault(name, []).extend(members)
        if raw.concerns:
            for cid, rc in raw.concerns.items():
                if cid not in rules:
                    if rc.label is None:
                        assert rc.where is not None
                        raise rc.where.error(f"new concern '{cid}' needs a label")
                    rules[cid] = {f: [] for f in _RULE_FIELDS}
                    order.append(cid)
                if rc.label is not None:
                    labels[cid] = rc.label.value
                    label_items[cid] = rc.label
                for field_ in _RULE_FIELDS:
                    extra = getattr(rc, field_)
                    if extra:
                        rules[cid][field_].extend(extra)
                if rc.help:
                    helps.setdefault(cid, {}).update(rc.help)
        if raw.contexts:
            for name, rx_ in raw.contexts.items():
                ctx = contexts.setdefault(name, {"phrases": [], "concerns": None, "within": DEFAULT_WITHIN,
                                                 "overlap": False, "cap": False, "where": rx_.where})
                if rx_.phrases:
                    ctx["phrases"].extend(rx_.phrases)
                if rx_.concerns is not None:
                    ctx["concerns"] = rx_.concerns
                if rx_.within is not None:
                    ctx["within"] = rx_.within
                if rx_.overlap is not None:
                    ctx["overlap"] = rx_.overlap
                if rx_.cap is not None:
                    ctx["cap"] = rx_.cap
        if raw.low_score is not None:
            at_most, ids, where = raw.low_score
            if at_most is not None:
                low_score["at_most"] = at_most
            if ids is not None:
                low_score["concerns"] = ids
            low_score["where"] = where
        if raw.severity is not None:
            # a severity list orders every concern known so far; a concern added by a
            # later file without one goes last
            ids = [it.value for it in raw.severity]
            for it in raw.severity:
                if it.value not in rules:
                    raise it.error(f"severity names unknown concern '{it.value}'")
                if ids.count(it.value) > 1:
                    raise it.error(f"severity lists '{it.value}' twice")
            missing = [cid for cid in order if cid not in ids]
            if missing:
                raise raw.severity[0].error(f"severity must list every concern; missing: {', '.join(missing)}")
            order = ids
        if raw.responses:
            responses.update(raw.responses)
        if raw.texts:
            texts.update(raw.texts)
    first = raws[0].name
    if not order:
        raise SafeguardingConfigError(first, 1, 1, "no concerns defined")
    for aud in AUDIENCES:
        if aud not in responses:
            raise SafeguardingConfigError(first, 1, 1, f"responses.{aud} is missing")
    for key in ("follow_up_offer", "alert"):
        if key not in texts:
            raise SafeguardingConfigError(first, 1, 1, f"texts.{key} is missing")
    for name, ctx in contexts.items():
        if not ctx["phrases"]:
            raise ctx["where"].error(f"context '{name}' has no phrases")
        for it in ctx["concerns"] or ():
            if it.value not in rules:
                raise it.error(f"context '{name}' names unknown concern '{it.value}'")
    for it in low_score["concerns"]:
        if it.value not in rules:
            raise it.error(f"raise.low_score names unknown concern '{it.value}'")
    if low_score["concerns"] and low_score["at_most"] is None:
        raise low_score["where"].error("raise.low_score needs at_most (the highest 0-10 score that raises)")
    return {"max_gap": max_gap, "replace": replace, "words": words, "sets": sets, "labels": labels,
            "rules": rules, "severity": order, "responses": responses, "texts": texts, "helps": helps,
            "contexts": contexts, "low_score": low_score}


@functools.lru_cache(maxsize=1)
def _model() -> dict | None:
    from bot.safeguarding.classify import load_model

    return load_model()


@functools.lru_cache(maxsize=1)
def _concept_lists() -> tuple:
    from bot.safeguarding.classify import load_concepts

    return tuple(load_concepts().items())


def _concept_table(sets: Mapping[str, list]) -> dict[str, tuple[str, ...]]:
    """Word -> concepts: the classifier's concept lists and the lexicon's one-word sets (``s:NAME``)."""
    from bot.safeguarding.classify import stem

    table = {k: list(v) for k, v in _concept_lists()}
    for name, members in sets.items():
        for it in members:
            m = it.value
            if " " in m or m.startswith("$"):
                continue
            for key in {m, stem(m)}:
                tags = table.setdefault(key, [])
                if "s:" + name not in tags:
                    tags.append("s:" + name)
    return {k: tuple(v) for k, v in table.items()}


def _packaged_classifier(sets: Mapping[str, list], severity: tuple[str, ...]):
    """The committed review-net model with its concepts (and the lexicon's sets), or None."""
    from bot.safeguarding.classify import Classifier

    model = _model()
    if model is None or not set(model["classes"]) <= set(severity):
        return None
    return Classifier(model, _concept_table(sets))


@functools.lru_cache(maxsize=1)
def default_config() -> SafeguardingConfig:
    """The packaged lexicon, loaded once (on first use, not at import)."""
    return SafeguardingConfig.load()


def normalise(text: str) -> str:
    """Normalise ``text`` the way the default lexicon sees it (see the module docstring)."""
    return default_config().normalise(text)


def detect(text: str, context: Mapping[str, Any] | None = None) -> list[Concern]:
    """:meth:`SafeguardingConfig.detect` with the packaged default lexicon."""
    return default_config().detect(text, context)
