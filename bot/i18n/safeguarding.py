"""Safeguarding across languages (issue 19): a thin layer on top of the detector.

The detector (bot/safeguarding/) and its English lexicon run on every free-text answer
whatever the language; the conversation service then calls :func:`extra` with the words and
the language in force, which adds:

* the matches of that language's small word list (bot/safeguarding_languages.yaml), as
  ``Concern`` objects of the tier the list gives, for concerns the detector did not find;
* for a language with no word list, or one not yet reviewed by a qualified person, one
  review-tier concern ``unscreened_language`` on every free-text answer: a person writing in
  a language the lexicon cannot read is never screened by nothing, and the answer goes to
  the quiet "worth a look" queue, where someone reads it, without interrupting them.

English (the lexicon's own language) adds nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from bot import i18n
from bot.safeguarding.tiers import ALERT, REVIEW, Concern

UNSCREENED = "unscreened_language"


@dataclass(frozen=True)
class _Rule:
    concern: str
    tier: str
    words: str
    rx: re.Pattern


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")  # accents off: ę -> e, â -> a
    return re.sub(r"\s+", " ", text.replace("’", "'"))


def _compile(words: str) -> re.Pattern:
    parts = []
    for word in _fold(words).split(" "):
        star = word.endswith("*")
        word = re.escape(word.rstrip("*"))
        parts.append(word + (r"\w*" if star else ""))
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")


@lru_cache(maxsize=1)
def lexicons() -> dict[str, dict]:
    """language -> {"reviewed": bool, "rules": [_Rule]} from bot/safeguarding_languages.yaml."""
    from bot.engine.yamlpos import parse_yaml

    text = i18n.resource_text("safeguarding_languages.yaml")
    data, errors = parse_yaml(text, "bot/safeguarding_languages.yaml")
    if errors:
        raise ValueError("\n".join(map(str, errors)))
    out = {}
    for tag, spec in (data.get("languages") or {}).items():
        rules = [_Rule(e["concern"], tier, e["words"], _compile(e["words"]))
                 for tier in (ALERT, REVIEW) for e in (spec.get(tier) or [])]
        out[tag] = {"reviewed": bool(spec.get("reviewed", False)), "rules": rules}
    return out


def screened(tag: str) -> bool:
    """Whether answers in ``tag`` are screened by a reviewed word list (English always is)."""
    if tag == i18n.DEFAULT:
        return True
    lex = lexicons().get(tag)
    return bool(lex and lex["reviewed"])


def extra(text: str | None, tag: str | None, found=(), labels: dict | None = None) -> list[Concern]:
    """What the language of the answer adds to the detector's ``found`` concerns."""
    tag = tag or i18n.DEFAULT
    if not text or tag == i18n.DEFAULT:
        return []
    labels = labels or {}
    have = {getattr(c, "concern", None) for c in found}
    out: list[Concern] = []
    folded = _fold(text)
    for rule in (lexicons().get(tag) or {}).get("rules", []):
        if rule.concern in have:
            continue
        m = rule.rx.search(folded)
        if m:
            have.add(rule.concern)
            out.append(Concern(rule.concern, labels.get(rule.concern, rule.concern.replace("_", " ").capitalize()),
                               m.group(), f"{tag}: {rule.words}", rule.tier))
    if not screened(tag):
        name = i18n.language(tag).english_name
        out.append(Concern(UNSCREENED, f"Written in {name}: no reviewed safeguarding word list for it, so a person "
                                       "should read it", "", f"{tag}: every free-text answer", REVIEW))
    out.sort(key=lambda c: c.tier != ALERT)
    return out
