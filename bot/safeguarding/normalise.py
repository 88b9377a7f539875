"""Text normalising: the form of a message (and of a lexicon phrase) that matching runs on.

The message is normalised (:class:`_Normaliser`): Unicode NFKC,
   accents and case folded, curly quotes made straight, contractions expanded
   ("I'm" and "im" -> "i am", "don't"/"dont" -> "do not"), punctuation removed,
   text-speak and common misspellings replaced from the YAML ``normalisation.replace``
   table ("kms" -> "kill myself", "wanna" -> "want to", "sucide" -> "suicide"; a key is
   looked up as written first, then, if it has three or more letters, with repeated
   letters squeezed, so "succide" finds "sucide" but "odd" never finds "od"), "2"/"4"/"n"
   between words read as "to"/"for"/"and", look-alike characters inside words read as
   letters ("s3x", "k!ll"), a masked word restored when one known word fits ("s*x": a
   word listed in ``normalisation.words`` wins over one that only appears in a phrase),
   a run of three or more of one letter restored to a known word ("pleeease" -> "please",
   "scaaared" -> "scared"; see :meth:`_Normaliser._restore`). Runs of two letters are never
   squeezed for matching, so two real words are never merged ("shooting" stays "shooting"
   and never meets the slang "shotting").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Mapping

_QUOTES = dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u0060\u00b4\u02bc\u02b9\uff07", "'")
_TOKEN = re.compile(r"[^\W_]+(?:['*@$!]+[^\W_]+)*")
_TRIPLE = re.compile(r"(.)\1\1+")
_SQUEEZE = re.compile(r"(.)\1+")
_RUN = re.compile(r"(.)\1*")
_VOWELS = frozenset("aeiouy")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_SUFFIXES = {"m": "am", "re": "are", "ve": "have", "ll": "will", "d": "would"}
_NT_BASE = {"ca": "can", "wo": "will", "sha": "shall", "ai": "is"}
_IS_BEFORE = frozenset("he she it that there what who where here how when".split())
# "2", "4", "n" read as words only between two words: "want 2 die", "me n my mum".
_CONTEXT = {"2": "to", "4": "for", "n": "and"}
# ... except after these, where a digit is an age or a count: "I was 4 but", "only 2 of us"
_AGE_BEFORE = frozenset("was were am is are aged age only just about nearly turned turning under over".split())


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
        self._restored: dict[str, str] = {}
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
        originals = None
        if _TRIPLE.search(joined):
            originals = pieces
            pieces = _TRIPLE.sub(r"\1\1", joined).split(" ")
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
            if rep is None and pieces[i] not in self.words:  # a known word is never respelt
                rep = single.get(k)
            if rep is not None:
                out.extend(rep)
                out_spans.extend([spans[i]] * len(rep))
            elif (pieces[i] in _CONTEXT and 0 < i < n - 1 and pieces[i - 1].isalpha() and pieces[i + 1].isalpha()
                  and pieces[i - 1] not in _AGE_BEFORE):  # "I was 4 but": an age, not "for"
                out.append(_CONTEXT[pieces[i]])  # "2" only: "22" is a number, not "to"
                out_spans.append(spans[i])
            else:
                word = pieces[i]
                if originals is not None and word != originals[i] and word not in self.words:
                    word = self._restore(originals[i])
                out.append(word)
                out_spans.append(spans[i])
            i += 1
        return out, out_spans

    def _restore(self, word: str) -> str:
        """A stretched word ("pleeeease", "scaaared") back to a known word.

        Only runs of three or more of one letter were typed on purpose; each such run is
        tried as one letter and as two, and the first known word wins (a word listed in
        ``normalisation.words`` first). Runs of two are left alone, so two real words are
        never merged: "shooting" can never become "shotting". With no known word, every
        long run becomes one letter ("sooooo" -> "so"). A word with no vowel is a sound
        ("shhh", "hmmm") and keeps two letters, so a child's "shhh" never reads as "sh".
        """
        done = self._restored.get(word)
        if done is not None:
            return done
        if _VOWELS.isdisjoint(word):  # "shhh", "hmmm", "zzz": a sound, not a word
            done = _TRIPLE.sub(r"\1\1", word)
            if len(self._restored) < 4096:
                self._restored[word] = done
            return done
        parts = [m.group() for m in _RUN.finditer(word)]
        long_runs = [i for i, r in enumerate(parts) if len(r) >= 3]
        first = "".join(r[0] if len(r) >= 3 else r for r in parts)
        best = None
        if len(long_runs) <= 4:
            cands = []
            for mask in range(1 << len(long_runs)):
                out = list(parts)
                for bit, idx in enumerate(long_runs):
                    out[idx] = parts[idx][0] * (2 if mask >> bit & 1 else 1)
                cands.append("".join(out))
            best = next((c for c in cands if c in self.preferred), None) or next(
                (c for c in cands if c in self.words), None)
        done = best or first
        if len(self._restored) < 4096:
            self._restored[word] = done
        return done

    def normalise(self, text: str) -> str:
        return " ".join(self.analyse(text)[0])
