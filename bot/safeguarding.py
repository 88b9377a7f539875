"""Safeguarding detection: recognise a possible disclosure of harm or risk in free text.

Why this exists: in 2018 the BBC typed "I'm being forced to have sex and I'm only 12" into
two wellbeing chatbots and neither told the user to get help. Every free-text answer the
bot receives goes through :meth:`SafeguardingConfig.detect` first. Detection errs towards
flagging: a false alarm costs a practitioner a minute, a missed disclosure can cost a child.
This module only *recognises* and supplies the wording; the conversation service shows the
help, records the words verbatim and raises the alert.

Public API
----------
``Concern(concern, label, matched, rule)``
    One detected concern: its id, its human label, the fragment of the *original* message
    that matched (best effort), and the lexicon phrase or pattern that fired.
``SafeguardingConfig.load(*paths, default=True)``
    The packaged lexicon (``bot/safeguarding.yaml``) with per-deployment override files
    merged on top, in order. A bad file raises :class:`SafeguardingConfigError` whose text
    is ``file:line:col: message``.
``config.detect(text) -> list[Concern]``
    ``[]`` when nothing is found; at most one Concern per concern id, most serious first.
    Never raises on any ``str`` (``None`` gives ``[]``).
``config.response(audience) -> str``
    The help text shown at once to the person: audience ``child``, ``family`` or
    ``practitioner``.
``config.text(key) -> str`` and ``config.texts``
    Other wording from the YAML ``texts:`` section. Shipped keys:
    ``follow_up_offer`` (asked after the help text: carry on or stop),
    ``follow_up_continue`` / ``follow_up_stop`` (button labels), and ``alert``, the message
    sent to the named practitioner and the designated safeguarding lead. ``alert`` is a
    ``str.format`` template with the fields ``{person}``, ``{flow}``, ``{concern}``,
    ``{words}``, ``{time}`` and ``{ack_command}``; use :meth:`SafeguardingConfig.alert_text`
    to fill it. ``config.offer()`` returns ``follow_up_offer``.
``config.concerns``  (id -> label, most serious first), ``config.severity`` (ids, most
    serious first), ``config.audiences``, ``config.normalise(text)``.
``normalise(text)`` and ``detect(text)`` at module level use the packaged default
    (loaded lazily on first use, never at import), as does ``default_config()``.

How matching works
------------------
1. The message is normalised (see :meth:`SafeguardingConfig.normalise`): Unicode NFKC,
   accents and case folded, curly quotes made straight, contractions expanded
   ("I'm" and "im" -> "i am", "don't"/"dont" -> "do not"), punctuation removed,
   text-speak and common misspellings replaced from the YAML ``normalisation.replace``
   table ("kms" -> "kill myself", "wanna" -> "want to", "sucide" -> "suicide"; a key is
   looked up as written first, then, if it has three or more letters, with repeated
   letters squeezed, so "succide" finds "sucide" but "odd" never finds "od"), "2"/"4"/"n"
   between words read as "to"/"for"/"and", look-alike characters inside words read as
   letters ("s3x", "k!ll"), a masked word restored when one known word fits ("s*x": a
   word listed in ``normalisation.words`` wins over one that only appears in a phrase),
   a run of three or more of one letter cut to two ("pleeease" -> "pleease", then
   restored to a known word such as "please" when one fits).
2. **Phrases** are matched word by word on the normalised words, comparing each word with
   every run of a repeated letter squeezed to one. So "feel", "fel" and "feeeel" all match,
   and "rapped" matches "raped" on purpose. Phrases are written in the same normalised form
   as messages; they are normalised when loaded, so "I'm" in a phrase means "i am".
   Phrase syntax: words separated by spaces;
   ``a|b|c`` alternatives for one position (``_`` joins words inside an alternative:
   ``the_game``); ``word*`` any word starting with "word" (at least 3 letters);
   ``...`` up to ``max_gap`` (default 3) other words; ``$name`` the words of the set
   ``sets.name`` in the YAML (a set member may itself be ``$other``, another set).
3. **Patterns** are Python regular expressions searched in the normalised text (lower
   case, single spaces, no punctuation). To keep every message fast, an unbounded
   repeat (``*``, ``+``, ``{n,}``) may only repeat something that cannot match a space
   (``\\w+`` is fine, ``.*`` and ``(?:\\w+ )*`` are refused at load time); use bounded
   forms such as ``(?: \\w+){0,6}``.
4. **Exclusions** (phrases, per concern) cancel one match of that concern only when the
   matched words lie wholly inside the exclusion ("hit me up" cancels "hit me" there and
   nowhere else). A message that also holds a real disclosure elsewhere is still flagged.
   Write an exclusion as narrowly as you can: one that opens with a common word and a gap
   ("then ... hit me", meant for "then it hit me") also swallows "then my dad hit me".

Override files use the same keys as the default: ``concerns.<id>.phrases``, ``patterns``
and ``exclusions`` are *added* to the default's; ``label``, ``responses.<audience>``,
``texts.<key>``, ``normalisation.replace.<word>`` and ``max_gap`` *replace*; ``sets.<name>``
and ``normalisation.words`` are extended; a new concern needs a ``label`` and goes last in
severity unless ``severity:`` (a full list of ids, most serious first) is given.
A ``severity:`` list orders every concern known up to its file. Person-facing texts are
refused if they promise secrecy ("secret", "confidential", "won't tell", "nobody will
know", "stays between us", "stays private"); saying it can *not* be kept ("I can't keep this
just between us", "I cannot keep this a secret") is the right thing and is allowed.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping

import yaml

try:  # the regex parser, used only to refuse patterns that could backtrack badly
    import re._parser as _sre_parse  # type: ignore[import-not-found]  # Python >= 3.11
    import re._constants as _sre_const  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    _sre_parse = None
    _sre_const = None

__all__ = [
    "AUDIENCES",
    "ALERT_FIELDS",
    "Concern",
    "SafeguardingConfig",
    "SafeguardingConfigError",
    "default_config",
    "detect",
    "normalise",
]

AUDIENCES = ("child", "family", "practitioner")
ALERT_FIELDS = frozenset({"person", "flow", "concern", "words", "time", "ack_command"})
DEFAULT_MAX_GAP = 3
_MAX_FILE_BYTES = 2_000_000


class SafeguardingConfigError(Exception):
    """A safeguarding lexicon file is wrong. ``str(err)`` is ``file:line:col: message``."""

    def __init__(self, file: str, line: int, col: int, message: str):
        self.file, self.line, self.col, self.message = file, line, col, message
        super().__init__(f"{file}:{line}:{col}: {message}")


@dataclass(frozen=True)
class Concern:
    concern: str  # id, e.g. "sexual_abuse"
    label: str  # human label, e.g. "Sexual abuse"
    matched: str  # fragment of the original message that matched (best effort)
    rule: str  # the lexicon phrase or pattern that fired, as written in the YAML


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

_QUOTES = dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u0060\u00b4\u02bc\u02b9\uff07", "'")
_TOKEN = re.compile(r"[^\W_]+(?:['*@$!]+[^\W_]+)*")
_TRIPLE = re.compile(r"(.)\1\1+")
_SQUEEZE = re.compile(r"(.)\1+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_SUFFIXES = {"m": "am", "re": "are", "ve": "have", "ll": "will", "d": "would"}
_NT_BASE = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
_IS_BEFORE = frozenset("he she it that there what who where here how when".split())
# "2", "4", "n" read as words only between two words: "want 2 die", "me n my mum".
_CONTEXT = {"2": "to", "4": "for", "n": "and"}


@functools.lru_cache(maxsize=8192)
def _map_char(ch: str) -> str:
    """One non-ASCII character -> its folded form ('' drops it, e.g. a combining accent)."""
    if ch in _QUOTES:
        return "'"
    cat = unicodedata.category(ch)
    if cat == "Cf":  # zero-width joiners and spaces, soft hyphens: invisible, inside words
        return ""
    folded = unicodedata.normalize("NFKC", ch).casefold()
    out = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return "".join(_QUOTES.get(c, c) for c in out)


def _squeeze(word: str) -> str:
    return _SQUEEZE.sub(r"\1", word)


class _Normaliser:
    """The normalisation tables, compiled. ``analyse`` keeps each word's place in the original."""

    def __init__(self, replace: Mapping[str, str], words: set[str], preferred: frozenset[str] = frozenset()):
        # One-word keys are looked up as written first ("bff"), then with repeated letters
        # squeezed ("sucide", "suucide"). The squeezed fallback is only for keys of three or
        # more letters once squeezed: "od" must not swallow "odd", nor "sh" the "shh" of a child.
        self.exact: dict[str, tuple[str, ...]] = {}
        self.single: dict[str, tuple[str, ...]] = {}
        self.pair: dict[tuple[str, str], tuple[str, ...]] = {}
        for src, dst in replace.items():
            src_words = src.split()
            key = tuple(_squeeze(w) for w in src_words)
            out = tuple(dst.split())
            if len(key) == 1:
                self.exact[src_words[0]] = out
                if len(key[0]) >= 3:
                    self.single.setdefault(key[0], out)
            else:
                self.pair[key] = out
        for src, out in self.exact.items():  # a key written out wins over another's squeezed form
            if len(_squeeze(src)) >= 3 and _squeeze(src) == src:
                self.single[src] = out
        self.pair_first = frozenset(k[0] for k in self.pair)
        self.words = frozenset(words)
        self.preferred = preferred  # normalisation.words: wins when a masked word fits several
        by_key: dict[str, str] = {}
        for w in sorted(words, key=lambda w: (len(w), w)):
            by_key.setdefault(_squeeze(w), w)
        self.word_by_key = by_key
        self._unmasked: dict[str, str] = {}
        self.masked: dict[int, list[str]] = {}
        for w in sorted(words):
            if w.isalpha():
                self.masked.setdefault(len(w), []).append(w)

    # -- pieces: split one raw token into words, handling apostrophes and look-alikes ----
    def _unmask(self, tok: str) -> str:
        """'s*x' -> 'sex' when exactly one known word fits; otherwise drop the stars."""
        done = self._unmasked.get(tok)
        if done is None:
            done = self._unmask_uncached(tok)
            if len(self._unmasked) < 4096:
                self._unmasked[tok] = done
        return done

    def _unmask_uncached(self, tok: str) -> str:
        rx = re.compile("".join("[a-z]" if c == "*" else re.escape(c) for c in tok))
        fits = [w for w in self.masked.get(len(tok), ()) if rx.fullmatch(w)]
        if len(fits) > 1:  # "s*x": "sex" or "six"? a word listed in normalisation.words wins
            fits = [w for w in fits if w in self.preferred] or fits
        return fits[0] if len(fits) == 1 else tok.replace("*", "")

    def _pieces(self, tok: str) -> list[str]:
        if "'" in tok:
            parts = [p for p in tok.split("'") if p]
            if len(parts) >= 2:
                last = parts[-1]
                base = "".join(parts[:-1])
                if last == "t" and base.endswith("n"):
                    stem = base[:-1]
                    return [*self._pieces(_NT_BASE.get(stem, stem)), "not"] if stem else [base + "t"]
                if last in _SUFFIXES:
                    return [*self._pieces(base), _SUFFIXES[last]]
                if last == "s":
                    if base == "let":
                        return ["let", "us"]
                    return [base, "is"] if base in _IS_BEFORE else self._pieces(base)
            tok = "".join(parts)
            if not tok:
                return []
        if "*" in tok:
            tok = self._unmask(tok)
        if not tok.isalpha() and not tok.isdigit():
            # letters mixed with digits or @$!: text-speak first ("b4", "gr8"), then look-alikes
            if tok.isalnum() and (tok in self.exact or _squeeze(tok) in self.single):
                return [tok]
            if any(c.isalpha() for c in tok):
                tok = tok.translate(_LEET)
            tok = "".join(c for c in tok if c.isalnum())
        return [tok] if tok else []

    def analyse(self, text: str) -> tuple[list[str], list[tuple[int, int]]]:
        """Normalised words and, for each, its (start, end) in ``text``."""
        if text.isascii():
            s = text.lower()
            origin = None
        else:
            parts: list[str] = []
            origin = []
            for idx, ch in enumerate(text):
                m = ch.lower() if ch < "\x80" else _map_char(ch)
                if m:
                    parts.append(m)
                    origin.extend([idx] * len(m))
            s = "".join(parts)
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        for m in _TOKEN.finditer(s):
            tok = m.group()
            a, b = m.span()
            if origin is not None:
                a, b = origin[a], origin[b - 1] + 1
            if tok.isalpha() or tok.isdigit():
                pieces.append(tok)
                spans.append((a, b))
            else:
                for p in self._pieces(tok):
                    pieces.append(p)
                    spans.append((a, b))
        if not pieces:
            return [], []
        joined = " ".join(pieces)
        stretched = None
        if _TRIPLE.search(joined):
            collapsed = _TRIPLE.sub(r"\1\1", joined).split(" ")
            stretched = [c != p for c, p in zip(collapsed, pieces)]
            pieces = collapsed
            joined = " ".join(pieces)
        keys = _SQUEEZE.sub(r"\1", joined).split(" ")

        out: list[str] = []
        out_spans: list[tuple[int, int]] = []
        exact, single, pair, pair_first = self.exact, self.single, self.pair, self.pair_first
        n = len(pieces)
        i = 0
        while i < n:
            k = keys[i]
            if k in pair_first and i + 1 < n:
                rep = pair.get((k, keys[i + 1]))
                if rep is not None:
                    span = (spans[i][0], spans[i + 1][1])
                    out.extend(rep)
                    out_spans.extend([span] * len(rep))
                    i += 2
                    continue
            rep = exact.get(pieces[i])
            if rep is None:
                rep = single.get(k)
            if rep is not None:
                out.extend(rep)
                out_spans.extend([spans[i]] * len(rep))
            elif pieces[i] in _CONTEXT and 0 < i < n - 1 and pieces[i - 1].isalpha() and pieces[i + 1].isalpha():
                out.append(_CONTEXT[pieces[i]])  # "2" only: "22" is a number, not "to"
                out_spans.append(spans[i])
            else:
                word = pieces[i]
                if stretched is not None and stretched[i] and word not in self.words:
                    word = self.word_by_key.get(k, word)
                out.append(word)
                out_spans.append(spans[i])
            i += 1
        return out, out_spans

    def normalise(self, text: str) -> str:
        return " ".join(self.analyse(text)[0])


# --------------------------------------------------------------------------------------
# Phrase matching
# --------------------------------------------------------------------------------------
# A compiled phrase is a tuple of elements (gap_before, alternatives, singles, others); an
# alternative is a tuple of (key, is_prefix) word tests on squeezed words. ``singles`` holds
# the alternatives that are one plain word (a set, so "$victim" with 70 members costs one
# lookup), ``others`` the multi-word and prefix ones, tried one by one.


def _element(gap: int, alts: tuple) -> tuple:
    singles = frozenset(a[0][0] for a in alts if len(a) == 1 and not a[0][1])
    others = tuple(a for a in alts if len(a) != 1 or a[0][1])
    return (gap, alts, singles, others)


def _match(elems: tuple, k: int, j: int, keys: list[str], n: int) -> int:
    """End (exclusive) of a match of elems[k:] starting at word j, or -1."""
    if k == len(elems):
        return j
    gap, _alts, singles, others = elems[k]
    stop = min(j + gap, n - 1)
    p = j
    while p <= stop:
        if keys[p] in singles:
            r = _match(elems, k + 1, p + 1, keys, n)
            if r >= 0:
                return r
        for alt in others:
            q = p
            for key, is_prefix in alt:
                if q >= n:
                    break
                t = keys[q]
                if not (t.startswith(key) if is_prefix else t == key):
                    break
                q += 1
            else:
                r = _match(elems, k + 1, q, keys, n)
                if r >= 0:
                    return r
        p += 1
    return -1


class _PhraseSet:
    """Phrases indexed by the first word, so a message costs one dict lookup per word."""

    def __init__(self) -> None:
        self.exact: dict[str, list[tuple[tuple, Any]]] = {}
        self.prefix: dict[str, list[tuple[str, tuple, Any]]] = {}
        self.size = 0

    def add(self, elems: tuple, payload: Any) -> None:
        self.size += 1
        # Words the phrase cannot match without: the smallest later position made only of
        # one-word alternatives. A message holding none of them skips the phrase entirely.
        pure = [e[2] for e in elems[1:] if not e[3] and e[2]]
        need = min(pure, key=len) if pure else None
        seen: set[tuple[str, bool]] = set()
        for alt in elems[0][1]:
            key, is_prefix = alt[0]
            if (key, is_prefix) in seen:
                continue
            seen.add((key, is_prefix))
            if is_prefix:
                self.prefix.setdefault(key[:3], []).append((key, elems, payload, need))
            else:
                self.exact.setdefault(key, []).append((elems, payload, need))

    def finditer(self, keys: list[str], skip: Any = ()) -> Iterator[tuple[int, int, Any]]:
        """Every (start, end, payload) match; phrases whose ``payload[0]`` is in ``skip``
        (a container the caller may fill while iterating) are not tried."""
        n = len(keys)
        exact, prefix = self.exact, self.prefix
        present = frozenset(keys)
        possible: dict[int, bool] = {}  # id(elems) -> its needed words occur in the message

        def can(elems: tuple, need: frozenset | None) -> bool:
            if need is None:
                return True
            ok = possible.get(id(elems))
            if ok is None:
                ok = possible[id(elems)] = not need.isdisjoint(present)
            return ok

        for i, k in enumerate(keys):
            cands = exact.get(k)
            if cands:
                for elems, payload, need in cands:
                    if (skip and payload[0] in skip) or not can(elems, need):
                        continue
                    end = _match(elems, 0, i, keys, n)
                    if end >= 0:
                        yield i, end, payload
            if prefix:
                pcands = prefix.get(k[:3])
                if pcands:
                    for pre, elems, payload, need in pcands:
                        if not k.startswith(pre) or (skip and payload[0] in skip) or not can(elems, need):
                            continue
                        end = _match(elems, 0, i, keys, n)
                        if end >= 0:
                            yield i, end, payload


# --------------------------------------------------------------------------------------
# Reading the YAML with positions
# --------------------------------------------------------------------------------------

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = ("version", "max_gap", "normalisation", "sets", "concerns", "severity", "responses", "texts")
_CONCERN_KEYS = ("label", "phrases", "patterns", "exclusions")
_NORM_KEYS = ("replace", "words")
_STR_TAG = "tag:yaml.org,2002:str"
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
    patterns: list[_Item] | None = None
    exclusions: list[_Item] | None = None
    where: _Item | None = None


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


def _parse(name: str, text: str) -> _Raw:
    for lineno, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            raise SafeguardingConfigError(name, lineno, line.index("\t") + 1,
                                          "tab character in indentation; YAML indentation must use spaces")
    try:
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
                    else:
                        setattr(rc, fk.value, r.seq(fv, f"{ck.value}.{fk.value}"))
                raw.concerns[ck.value] = rc
        elif key == "severity":
            raw.severity = r.seq(v, "severity")
        elif key == "responses":
            raw.responses = {}
            for ak, av in r.mapping(v, "responses", AUDIENCES):
                raw.responses[ak.value] = r.text(av, f"responses.{ak.value}")
        elif key == "texts":
            raw.texts = {}
            for tk, tv in r.mapping(v, "texts"):
                if not _ID.match(str(tk.value)):
                    raise r.err(tk, f"text key '{tk.value}' must be lower-case letters, digits and _")
                raw.texts[tk.value] = r.text(tv, f"texts.{tk.value}")
    return raw


# --------------------------------------------------------------------------------------
# Checks on person-facing wording and on regular expressions
# --------------------------------------------------------------------------------------

_SECRECY = [
    re.compile(r"\bsecrets?\b"),
    re.compile(r"\bconfidential\w*\b"),
    re.compile(r"\b(?:will|would|shall|do|does|did) not (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bnot going to (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bnever (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bpromise not to\b"),
    re.compile(r"\b(?:no one|nobody|noone)(?: else)? (?:will|would|is going to|needs to|has to|is to|can) "
               r"(?:know|see|find out|hear|read)\b"),
    re.compile(r"\bonly (?:you and (?:me|i)|we|us) (?:will |would )?(?:know|see)\b"),
    re.compile(r"\bbetween (?:us|you and me|you and i|me and you|ourselves)\b"),
    re.compile(r"\b(?:stays?|remains?|kept|keep it|keep this|is|are) (?:private|hidden)\b"),
    re.compile(r"\boff the record\b"),
    re.compile(r"\bto (?:myself|ourselves)\b"),
]
# "I can't keep this a secret" and "I can't keep this just between us" are the right thing to say.
_SECRECY_OK = re.compile(r"\b(?:can not|cannot|could not|not able to|unable to|not allowed to) keep\b")


def _promises_secrecy(norm: str) -> str | None:
    for rx in _SECRECY:
        for m in rx.finditer(norm):
            before = norm[max(0, m.start() - 40):m.start()]
            if _SECRECY_OK.search(before):
                continue
            return m.group()
    return None


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


class SafeguardingConfig:
    """A loaded lexicon and wording. Build with :meth:`load`; immutable once built."""

    def __init__(self, raws: list[_Raw]):
        merged = _merge(raws)
        self._sources = tuple(r.name for r in raws)
        self.max_gap: int = merged["max_gap"]
        self.severity: tuple[str, ...] = tuple(merged["severity"])
        self.concerns: Mapping[str, str] = MappingProxyType({cid: merged["labels"][cid] for cid in self.severity})
        self.audiences: tuple[str, ...] = AUDIENCES
        self._responses = {a: merged["responses"][a].value for a in AUDIENCES}
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
                "phrases": [(self._compile_phrase(it, vocab), it.value) for it in c["phrases"]],
                "exclusions": [(self._compile_phrase(it, vocab), it.value) for it in c["exclusions"]],
                "patterns": [(self._compile_pattern(it), it.value) for it in c["patterns"]],
            }
        self._norm = _Normaliser(replace, vocab, preferred)

        self._phrases = _PhraseSet()
        self._exclusions: list[_PhraseSet | None] = []
        self._patterns: list[list[tuple[re.Pattern, str]]] = []
        for ci, cid in enumerate(self.severity):
            rules = compiled_rules[cid]
            for elems, rule in rules["phrases"]:
                self._phrases.add(elems, (ci, rule))
            ex = None
            if rules["exclusions"]:
                ex = _PhraseSet()
                for elems, rule in rules["exclusions"]:
                    ex.add(elems, rule)
            self._exclusions.append(ex)
            self._patterns.append(rules["patterns"])
        self._labels = [self.concerns[cid] for cid in self.severity]
        self._check_wording(merged)

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, *paths: str | Path, default: bool = True) -> "SafeguardingConfig":
        """The packaged default (unless ``default=False``) with ``paths`` merged on top, in order."""
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
        return cls(raws)

    @classmethod
    def from_text(cls, text: str, name: str = "<text>", *, default: bool = True) -> "SafeguardingConfig":
        """Like :meth:`load`, with one override (or, with ``default=False``, the whole file) as text."""
        raws = []
        if default:
            ref = resources.files("bot").joinpath("safeguarding.yaml")
            raws.append(_parse(str(ref), ref.read_text(encoding="utf-8")))
        raws.append(_parse(name, text))
        return cls(raws)

    # -- compiling -------------------------------------------------------------------
    def _compile_phrase(self, it: _Item, vocab: set[str]) -> tuple:
        words = it.value.split()
        if not words:
            raise it.error("empty phrase")
        if words[0] == "..." or words[-1] == "...":
            raise it.error("a phrase cannot start or end with '...'")
        elems: list[tuple[int, tuple]] = []
        gap = 0
        for w in words:
            if w == "...":
                if gap:
                    raise it.error("'... ...' in a phrase; use one '...' (its size is max_gap)")
                gap = self.max_gap
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
                tests.append((_squeeze(words[0]), True))
            else:
                vocab.update(words)
                tests.extend((_squeeze(w), False) for w in words)
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

    def _check_wording(self, merged: dict) -> None:
        for aud, it in merged["responses"].items():
            hit = _promises_secrecy(self._plain.normalise(it.value))
            if hit:
                raise it.error(f"responses.{aud} must never promise secrecy (found '{hit}'); "
                               "say that someone will be told so they can help")
        fmt = string.Formatter()
        for key, it in merged["texts"].items():
            if key != "alert":
                hit = _promises_secrecy(self._plain.normalise(it.value))
                if hit:
                    raise it.error(f"texts.{key} must never promise secrecy (found '{hit}')")
            try:
                fields = {f for _lit, f, _spec, _conv in fmt.parse(it.value) if f is not None}
            except ValueError as exc:
                raise it.error(f"texts.{key}: bad {{placeholder}}: {exc} (write {{{{ and }}}} for braces)") from None
            allowed = ALERT_FIELDS if key == "alert" else frozenset()
            bad = sorted(f for f in fields if f not in allowed)
            if bad:
                names = ", ".join("{%s}" % f for f in sorted(allowed)) or "none"
                raise it.error(f"texts.{key}: unknown placeholder {{{bad[0]}}} (allowed: {names})")

    # -- using -----------------------------------------------------------------------
    def normalise(self, text: str) -> str:
        """The normalised form matching runs on (see the module docstring)."""
        return self._norm.normalise(text)

    def detect(self, text: str) -> list[Concern]:
        """Possible disclosures in ``text``: at most one per concern, most serious first."""
        if not text or not isinstance(text, str):
            return []
        words, spans = self._norm.analyse(text)
        if not words:
            return []
        norm = " ".join(words)
        keys = _SQUEEZE.sub(r"\1", norm).split(" ")
        starts: list[int] = []
        pos = 0
        for w in words:
            starts.append(pos)
            pos += len(w) + 1

        found: dict[int, tuple[int, int, str]] = {}  # concern index -> (first word, end word, rule)
        excl_cache: dict[int, list[tuple[int, int]]] = {}

        def excluded(ci: int, a: int, b: int) -> bool:
            """Is the normalised span [a, b) wholly inside an exclusion of concern ci?"""
            ex = self._exclusions[ci]
            if ex is None:
                return False
            spans_ = excl_cache.get(ci)
            if spans_ is None:
                spans_ = [(starts[i], starts[j - 1] + len(words[j - 1])) for i, j, _r in ex.finditer(keys)]
                excl_cache[ci] = spans_
            return any(x <= a and b <= y for x, y in spans_)

        for i, j, (ci, rule) in self._phrases.finditer(keys, found):
            if ci in found:
                continue
            if excluded(ci, starts[i], starts[j - 1] + len(words[j - 1])):
                continue
            found[ci] = (i, j, rule)

        for ci, pats in enumerate(self._patterns):
            if ci in found or not pats:
                continue
            for rx, rule in pats:
                for m in rx.finditer(norm):
                    a, b = m.span()
                    if a == b or excluded(ci, a, b):
                        continue
                    i = max(0, bisect.bisect_right(starts, a) - 1)
                    j = max(i + 1, bisect.bisect_left(starts, b))
                    found[ci] = (i, j, rule)
                    break
                if ci in found:
                    break

        result = []
        for ci in sorted(found):
            i, j, rule = found[ci]
            a, b = spans[i][0], spans[j - 1][1]
            fragment = text[a:b] if 0 <= a < b <= len(text) else " ".join(words[i:j])
            result.append(Concern(self.severity[ci], self._labels[ci], fragment, rule))
        return result

    def response(self, audience: str) -> str:
        """The help text for ``audience`` ("child", "family" or "practitioner")."""
        try:
            return self._responses[audience]
        except KeyError:
            raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(AUDIENCES)}") from None

    def text(self, key: str) -> str:
        try:
            return self.texts[key]
        except KeyError:
            raise KeyError(f"no safeguarding text {key!r}; have {', '.join(sorted(self.texts))}") from None

    def offer(self) -> str:
        """The follow-up offer shown after the help text (carry on, or stop for now)."""
        return self.texts["follow_up_offer"]

    def alert_text(self, *, person: str, flow: str, concern: str, words: str, time: str, ack_command: str) -> str:
        """The alert for the practitioner and the designated safeguarding lead, filled in."""
        return self.texts["alert"].format(person=person, flow=flow, concern=concern, words=words, time=time,
                                          ack_command=ack_command)

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
                    rules[cid] = {"phrases": [], "patterns": [], "exclusions": []}
                    order.append(cid)
                if rc.label is not None:
                    labels[cid] = rc.label.value
                    label_items[cid] = rc.label
                for field_ in ("phrases", "patterns", "exclusions"):
                    extra = getattr(rc, field_)
                    if extra:
                        rules[cid][field_].extend(extra)
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
    return {"max_gap": max_gap, "replace": replace, "words": words, "sets": sets, "labels": labels,
            "rules": rules, "severity": order, "responses": responses, "texts": texts}


@functools.lru_cache(maxsize=1)
def default_config() -> SafeguardingConfig:
    """The packaged lexicon, loaded once (on first use, not at import)."""
    return SafeguardingConfig.load()


def normalise(text: str) -> str:
    """Normalise ``text`` the way the default lexicon sees it (see the module docstring)."""
    return default_config().normalise(text)


def detect(text: str) -> list[Concern]:
    """:meth:`SafeguardingConfig.detect` with the packaged default lexicon."""
    return default_config().detect(text)
