"""The review net: a small classifier that catches what no phrase was written for.

Phrase rules (:mod:`bot.safeguarding.match`) are precise, but one person's phrases do not
carry over to another person's wording. This module scores a whole message instead: a
logistic regression over features of the normalised words, trained offline by
``scripts/train_safeguarding.py`` from labelled examples (the committed model is
``bot/safeguarding_model.json``; its concept word lists are in
``bot/safeguarding_classifier.yaml``). Pure Python, no new dependency, tens of microseconds.

Features of a message (all from the normalised words, see :func:`features`):

* ``w:`` each word but function words (:data:`STOPWORDS`), crudely stemmed ("punched" ->
  "punch");
* ``b:`` each pair of neighbouring stems, unless both are function words;
* ``c:`` each *concept* present: a word's classes in the concept lists (``person``,
  ``harm``, ``injury``, ``fear``, ``secret``, ``home``, ``cover``, ``resolved``, ``lesson`` ...)
  and in the lexicon's one-word sets (``s:family``);
* ``p:`` each pair of concepts within :data:`WINDOW` words of each other ("person near
  harm", "injury near cover story", "secret near person"): the compositional part, which
  is what lets "my nan pinches me" score like "my dad hits me" without either phrase;
* a word or concept within three words after "not", "never" or "no" is a separate feature
  (``nw:``, ``nc:``): "he never hits us" is not "he hits us"; but "not sure" negates nothing
  ("I'm not sure, he hit her" is doubt, not denial).

What the score p decides (thresholds in the model file, chosen by ``--cv`` on the spent blind
batches A-I left out one at a time, never on a blind batch that is a measurement: J and every
later one); see ``_Matching._review_net`` in :mod:`bot.safeguarding.match`:

* p < ``quiet_below`` with an everyday-setting word in the message (:data:`ORDINARY_CONTEXTS`),
  outside the words the lexicon matched (round 10: a rule that names the word was written
  knowing it): a lexicon alert becomes review (an idiom, a lesson, an accident the context
  rules did not name); p < ``drop_below``: a lexicon review is dropped, and (``drop_ruled``) so is a review
  that a soften phrase or a context capped: review or nothing, never more;
* p >= ``review_at`` and the lexicon found nothing: review, with the concern the concern model
  (naive Bayes over the same features) finds likeliest. An answer of at most ``short_words``
  words as typed ("I feel ok", "idk tbh") needs p >= ``short_review_at`` instead: a few words
  carry little;
* p >= ``alert_at``: what the lexicon found at review becomes alert (a broad signal in a
  message that reads as a disclosure), if the tier net (below) agrees: q >= ``confirm_at``.

**The tier net** (``tier`` in the model file) is a second logistic regression, alert or not,
trained on the tiers people gave labelled answers (a disclosure labelled review counts half),
over the same features plus what the lexicon alone found (:func:`lexicon_features`). Its score
q decides, after the review net:

* q >= ``promote_at``: a review becomes alert; q >= ``alone_at`` (higher) and the review
  net's p >= ``alone_p`` for a review the review net added on its own, so a message no phrase
  matched alerts only when both nets are confident, and never in a concern listed in
  ``alone_review_only`` (broad concerns: there an alert needs a phrase);
* q < ``demote_below``: a lexicon alert becomes review (it reads as an ordinary answer);
* p < ``doubt_p`` and q < ``doubt_q`` (round 10): a lexicon alert the review net reads as
  ordinary and the tier net is not sure of becomes review (the nets doubt the phrase: a person
  looks without interrupting);
* neither of the two above in an answer longer than ``lower_words`` words (round 11): there the
  whole message's everyday words dilute the scores of a plain phrase;
* q < ``veto_below`` and p < ``veto_p`` (round 9): both nets read the message as ordinary, so
  its reviews are dropped (review or nothing; an alert is never dropped this way);
* with ``short_alone_review``, what the review net added alone to an answer of at most
  ``short_words`` words stays at review: a few words are too little to interrupt someone on.

No net lowers a match of a lexicon rule listed under ``grave`` (round 10: a child left alone
overnight, a cover story taken back, a method of suicide, danger now: categories of rule whose
alert stands whatever the score). Neither net changes the tier of a deployment's own override words, and neither raises what a
soften phrase or a context ("in PSHE", "going to kill me when he sees") capped, nor adds
anything where an exclusion cancelled a match: explicit rules have the last word. Override the
model by retraining (``scripts/train_safeguarding.py``); load without it with
``SafeguardingConfig.load(classifier=False)``.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Iterable, Mapping

import yaml

WINDOW = 5
NEGATORS = frozenset(("not", "never", "no"))
# "not sure", "not certain": doubt is not denial ("I'm not sure, he hit my sister too" says he hit
# her), so a negator followed by one of these negates nothing after it
UNSURE = frozenset(("sure", "certain"))
# Function words carry no evidence as words (they still count through concepts, "he" is a
# person): without this, a short answer made of them ("that he might not have been") adds
# up many small weights into a confident score.
STOPWORDS = frozenset("""
a an the and or but so to of in on at for with from by as is am are was were be been being
have has had do does did will would can could shall should may might must that this these those
it its there here then than if when what which who whom how why where i me my we us our you
your he him his she her they them their not no never just very really too also all some any
""".split())
MIN_WORDS = 3  # the net adds nothing to an answer shorter than this ("my daughter", "yes")
# Concepts of everyday settings: only with one of these in the message may a low score quieten
# a lexicon alert ("strangled my brother for eating my sweets" may be an idiom; "he hit my
# sister" with nothing ordinary around it stays an alert whatever the score).
ORDINARY_CONTEXTS = frozenset(("lesson", "sport", "play", "kitchen", "diy", "animal", "idiom_word", "resolved"))
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def stem(word: str) -> str:
    """A crude stem: enough that "punched", "punches" and "punching" meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            base = word[: -len(suf)]
            if suf in ("ing", "ed") and len(base) >= 4 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "hitting" -> "hit", "slapped" -> "slap"
            return base
    return word


def features(words: list[str], concepts: Mapping[str, tuple[str, ...]], char_ngrams: int = 0) -> list[str]:
    """The feature names of a message's normalised words (each once, in first-seen order).

    With ``char_ngrams`` = n (round 12), also each run of n letters of each word but function
    words, the word's ends marked ("<hi", "hit", "it>"): ``t:`` features, which let a spelling
    or a form no example had ("strangling", "hme") share the weight of one that had."""
    out: dict[str, None] = {}
    stems = [stem(w) for w in words]
    negated = [False] * len(words)
    for i, w in enumerate(words):
        if w in NEGATORS and not (i + 1 < len(words) and words[i + 1] in UNSURE):
            for k in range(i + 1, min(i + 4, len(words))):
                negated[k] = True
    placed: list[tuple[int, str]] = []
    for i, (w, s) in enumerate(zip(words, stems)):
        neg = negated[i]
        if w not in STOPWORDS:
            out[("nw:" if neg else "w:") + s] = None
            if char_ngrams and not neg:
                marked = "<" + w + ">"
                for k in range(len(marked) - char_ngrams + 1):
                    out["t:" + marked[k:k + char_ngrams]] = None
        if i + 1 < len(words) and not (w in STOPWORDS and words[i + 1] in STOPWORDS):
            out["b:" + s + " " + stems[i + 1]] = None
        cs = concepts.get(w) or concepts.get(s)
        if cs:
            for c in cs:
                out[("nc:" if neg else "c:") + c] = None
                if not neg:
                    placed.append((i, c))
    for x in range(len(placed)):
        i, a = placed[x]
        for y in range(x + 1, len(placed)):
            j, b = placed[y]
            if j - i > WINDOW:
                break
            if a != b:
                out["p:" + (a + "+" + b if a < b else b + "+" + a)] = None
    return list(out)


class Classifier:
    """A trained model: ``score(words)`` -> (probability of a disclosure, concern id, word index)."""

    def __init__(self, model: Mapping, concepts: Mapping[str, tuple[str, ...]]):
        self.concepts = concepts
        # round 12: runs of this many letters of each word as features (0: none)
        self.char_ngrams: int = int(model.get("char_ngrams", 0))
        self.bias: float = model["bias"]
        self.weights: dict[str, float] = model["weights"]
        self.classes: list[str] = model["classes"]
        self.class_prior: list[float] = model["class_prior"]
        self.class_default: list[float] = model["class_default"]
        self.class_logp: dict[str, dict[str, float]] = model["class_logp"]
        self.review_at: float = model["review_at"]
        self.alert_at: float = model["alert_at"]
        self.quiet_below: float = model["quiet_below"]
        self.drop_below: float = model["drop_below"]
        # a short plain answer ("I feel ok") needs more than review_at before the net adds a
        # review on its own: a few words carry too little to read as a disclosure
        # may a low score drop a review that a soften phrase or a context capped?
        self.drop_ruled: bool = model.get("drop_ruled", False)
        self.short_words: int = model.get("short_words", 0)
        self.short_review_at: float = model.get("short_review_at", self.review_at)
        # the tier net (a second model, alert or not, that also sees what the lexicon found);
        # a model file without one keeps the review net's policy alone
        tier = model.get("tier")
        self.tier_bias: float = tier["bias"] if tier else 0.0
        self.tier_weights: dict[str, float] | None = tier["weights"] if tier else None
        self.promote_at: float = tier["promote_at"] if tier else 2.0
        self.alone_at: float = tier["alone_at"] if tier else 2.0
        self.demote_below: float = tier["demote_below"] if tier else -1.0
        # round 10: a lexicon alert that the review net reads as ordinary (p < doubt_p) becomes
        # review unless the tier net is sure (q >= doubt_q); never a grave rule's; None: never
        self.doubt_p: float | None = tier.get("doubt_p") if tier else None
        self.doubt_q: float = tier.get("doubt_q", 1.0) if tier else 1.0
        # round 11: the nets lower a lexicon alert by score (demote_below, doubt) only in an
        # answer of at most lower_words words (None: any length); in a longer one the whole
        # message's scores dilute a plain phrase ("... a picnic with my nan and my dad hit me")
        self.lower_words: int | None = tier.get("lower_words") if tier else None
        self.confirm_at: float = tier.get("confirm_at", 0.0) if tier else 0.0
        # what the review net added alone also needs p >= this before the tier net lifts it
        self.alone_p: float = tier.get("alone_p", 0.0) if tier else 0.0
        # concern id -> a lower q bar (for promote_at and alone_at) where, held out, a review of
        # that concern that reads as a disclosure was seldom an ordinary answer
        self.concern_promote_at: dict[str, float] = dict(tier.get("concern_promote_at") or {}) if tier else {}
        # concern ids that what the review net added alone never lifts to alert: their signals
        # are broad ("missed a few days when they were ill" is not neglect), so an alert there
        # needs a phrase of the lexicon; the net alone gives review
        # does a concern's own lower bar (concern_promote_at) also lower alone_at? (no since
        # round 7: the net alone named neglect on "Nan can look after them when I go out")
        self.concern_bar_alone: bool = bool(tier.get("concern_bar_alone", True)) if tier else True
        self.alone_review_only: frozenset[str] = frozenset(tier.get("alone_review_only") or ()) if tier else frozenset()
        # both nets read the message as ordinary (q < veto_below and p < veto_p): its reviews
        # are dropped (review or nothing); None (or no tier net): never
        self.veto_below: float | None = tier.get("veto_below") if tier else None
        self.veto_p: float = tier.get("veto_p", 1.0) if tier else 1.0
        # what the review net added alone to a short answer (at most short_words words) stays at
        # review: a few words are too little to interrupt someone on ("I wish I had not")
        self.short_alone_review: bool = bool(tier.get("short_alone_review", False)) if tier else False

    def feature_list(self, words: list[str]) -> list[str]:
        return features(words, self.concepts, self.char_ngrams)

    def probability(self, feats: Iterable[str]) -> float:
        w = self.weights
        z = self.bias
        for f in feats:
            z += w.get(f, 0.0)
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def tier_probability(self, feats: Iterable[str], lexicon: Iterable[str]) -> float | None:
        """The tier net's probability that the message should alert, from its features and
        what the lexicon found (:func:`lexicon_features`); None without a tier net."""
        w = self.tier_weights
        if w is None:
            return None
        z = self.tier_bias
        for f in feats:
            z += w.get(f, 0.0)
        for f in lexicon:
            z += w.get(f, 0.0)
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-min(30.0, z)))

    def concern(self, feats: list[str], allowed: Iterable[str] | None = None) -> str:
        scores = list(self.class_prior)
        default = self.class_default
        logp = self.class_logp
        for f in feats:
            row = logp.get(f)
            if row is None:
                continue
            for k in range(len(scores)):
                scores[k] += row.get(str(k), default[k])
            # features never seen with any disclosure carry no evidence
        order = sorted(range(len(scores)), key=lambda k: -scores[k])
        allowed_set = set(allowed) if allowed is not None else None
        for k in order:
            if allowed_set is None or self.classes[k] in allowed_set:
                return self.classes[k]
        return self.classes[order[0]]

    def has_ordinary_context(self, words: list[str]) -> bool:
        """Does a word of the message belong to an everyday-setting concept (ORDINARY_CONTEXTS)?"""
        for w in words:
            cs = self.concepts.get(w) or self.concepts.get(stem(w))
            if cs and not ORDINARY_CONTEXTS.isdisjoint(cs):
                return True
        return False

    def strongest_word(self, words: list[str]) -> int:
        """Index of the word whose own features weigh most towards a disclosure."""
        best, best_i = -1e9, 0
        w = self.weights
        for i, word in enumerate(words):
            s = stem(word)
            val = w.get("w:" + s, 0.0)
            cs = self.concepts.get(word) or self.concepts.get(s) or ()
            for c in cs:
                val += w.get("c:" + c, 0.0)
            if val > best:
                best, best_i = val, i
        return best_i


def lexicon_features(found: Iterable[tuple[str, str]]) -> list[str]:
    """Features of what the lexicon alone found: (concern id, tier) pairs -> ``L:`` names.

    ``L:none`` when it found nothing; else ``L:alert`` or ``L:review`` (the highest tier) and
    ``L:<concern>:<tier>`` for each concern, so the tier net can learn that a review-tier
    match of one concern in a message that reads as a disclosure is worth an alert."""
    out: list[str] = []
    tiers = set()
    for concern, tier in found:
        out.append(f"L:{concern}:{tier}")
        tiers.add(tier)
    out.append("L:" + ("alert" if "alert" in tiers else "review" if tiers else "none"))
    return out


def load_concepts(path: str | None = None) -> dict[str, tuple[str, ...]]:
    """Word (and its stem) -> concept names, from ``bot/safeguarding_classifier.yaml``."""
    if path is None:
        text = resources.files("bot").joinpath("safeguarding_classifier.yaml").read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    data = yaml.safe_load(text) or {}
    table: dict[str, list[str]] = {}
    for name, members in (data.get("concepts") or {}).items():
        for m in members:
            for key in {str(m).lower(), stem(str(m).lower())}:
                table.setdefault(key, [])
                if name not in table[key]:
                    table[key].append(name)
    return {k: tuple(v) for k, v in table.items()}


def load_model(path: str | None = None) -> dict | None:
    """The committed model (``bot/safeguarding_model.json``), or None when there is none."""
    try:
        if path is None:
            text = resources.files("bot").joinpath("safeguarding_model.json").read_text(encoding="utf-8")
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except FileNotFoundError:
        return None
    return json.loads(text)
