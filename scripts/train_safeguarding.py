"""Train the safeguarding review net and tier net (bot/safeguarding/classify.py); write the model.

    .venv/bin/python scripts/train_safeguarding.py [--check] [--cv [--sweep]] [--validate p,q]

Training examples (labelled disclosures and ordinary answers), all of them material the
lexicon was already tuned on, written for training, or a blind batch already measured after
tuning (spent); NEVER a blind batch that is still a measurement (batch_v and every later
letter is refused, whatever TRAINING_BATCHES says):

* tests/safeguarding_training.yaml   written for the classifier (themes of issue 12)
* tests/safeguarding_tuning.yaml     the lexicon's tuning examples
* tests/safeguarding_corpus.yaml     the regression corpus
* tests/safeguarding_training_more/*.yaml  more training sentences in the blind batches'
  schema, written for training in new writers' voices (round 10: adults, children and young
  people), read like a batch (concern names mapped by CONCERN_OF)
* tests/safeguarding_blind/batch_a..u.yaml  blind batches already measured after tuning
  (A-D in rounds 1-3, E-G after the review-net round, H-I after the alert-tier round, J-K
  after round 6, L-M after round 7, N-O after round 8, P-Q after round 9, R-S after round 10,
  T-U after round 11)

The model is a logistic regression (disclosure or not: the review net), a naive Bayes concern
model over the same features, and a second logistic regression (alert or not: the tier net)
over the same features plus what the lexicon alone found, trained on the tiers the examples
are labelled with. Training is deterministic (fixed order, fixed seed), so the same inputs
always give the same bot/safeguarding_model.json. ``--check`` rebuilds in memory and exits 1
if the committed model differs (the test suite runs it). ``--cv`` prints leave-one-batch-out
figures on A-S (train on everything else, measure the held-out batch): per batch, per tier,
per concern (the batches' own concern names), per speaker, per difficulty and per kind of
ordinary answer, and whether the concern named is the right one; ``--sweep`` adds a grid of
tier-net thresholds, which is how the thresholds were chosen: never on a measurement.
``--show-misses a,b`` prints the held-out misses of the named spent batches (for whoever tunes).
``--validate r,s`` trains on everything but the named spent batches and measures them (the
validation pair: settings chosen by --cv on the rest, checked there once, then the shipped
model retrained on everything). ``--cv --hold r,s`` leaves the validation pair out of the
cross-validation altogether (never trained on, never measured: round 11 chose its settings by
``--cv --hold r,s``, i.e. on A-Q, and checked them once with ``--validate r,s``; round 12 the same
with T and U, on A-S).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

MODEL = ROOT / "bot" / "safeguarding_model.json"
TESTS = ROOT / "tests"
# Blind batches already measured after tuning (spent): A-D in rounds 1-3, E-G after the
# review-net round, H-I after the alert-tier round, J-K after round 6, L-M after round 7.
# N-O were measured after round 8, P-Q after round 9 (spent; in training since round 10), R-S
# after round 10 (spent; in training since round 11), T-U after round 11 (spent; round 12's
# validation pair). Batch V and every later letter is a measurement that nobody tunes on.
TRAINING_BATCHES = ("batch_a", "batch_b", "batch_c", "batch_d", "batch_e", "batch_f", "batch_g",
                    "batch_h", "batch_i", "batch_j", "batch_k", "batch_l", "batch_m", "batch_n",
                    "batch_o", "batch_p", "batch_q", "batch_r", "batch_s", "batch_t", "batch_u")
FIRST_MEASUREMENT = "v"  # batch_v, batch_w, ... are refused, whatever TRAINING_BATCHES says
SOURCES = ("safeguarding_training.yaml", "safeguarding_tuning.yaml", "safeguarding_corpus.yaml")
# More training sentences in the blind batches' schema (round 10): every *.yaml in this folder,
# read like a batch. Written for training, never a measurement.
MORE = TESTS / "safeguarding_training_more"

# Blind batches label concerns in their writers' own words: map them to the lexicon's ids.
CONCERN_OF = {
    "physical_abuse": "physical_harm", "baby_harm": "physical_harm", "fgm": "physical_harm",
    "self_harm": "self_harm_suicide", "suicide": "self_harm_suicide", "eating_disorder": "self_harm_suicide",
    "grooming": "exploitation", "online_coercion": "exploitation", "trafficking": "exploitation",
    "forced_marriage": "exploitation", "radicalisation": "exploitation",
    "honour_abuse": "domestic_abuse", "parental_substance": "neglect", "parental_substance_misuse": "neglect",
    "missing": "running_away",
}

EPOCHS = 25
SEEDS = 3  # training orders averaged (round 8; 1 until then)
AVERAGE_FROM = 12  # average the weights of the epochs from this one on (EPOCHS: no averaging)
L2 = 3e-3
RATE = 0.3
ALPHA = 0.5  # naive Bayes smoothing
MIN_COUNT = 2  # a feature seen fewer times in training is dropped
BIGRAM_MIN_COUNT = 2  # ... and a pair of neighbouring words ("b:") seen fewer times than this
# Round 12: runs of CHAR_NGRAMS letters of each word ("t:" features, 0: none), dropped when seen
# fewer than NGRAM_MIN_COUNT times; in the review net, and in the tier net only with NGRAMS_IN_TIER.
# Never in the concern model (naive Bayes): it names the concern from words and concepts.
CHAR_NGRAMS = 0
NGRAM_MIN_COUNT = 3
NGRAMS_IN_TIER = False
# Thresholds, chosen by --cv on batches A-D (leave one out), never on a blind measurement:
REVIEW_AT = 0.3  # nothing found by the lexicon, p >= this: review (round 7, --cv on A-K: 0.4 -> 0.3)
ALERT_AT = 0.9  # p >= this: what the lexicon found at review becomes alert
QUIET_BELOW = 0.1  # a lexicon alert with p < this and an everyday-setting word becomes review (0.2
# until round 7: with the near-miss examples a cover story taken back, "I told the nurse I tripped
# ... really it was my mum", scored 0.16; --cv on A-K: 0.1 loses no held-out ordinary answer)
DROP_BELOW = 0.1  # a lexicon review on a message with p < this is dropped
DROP_RULED = True  # p < DROP_BELOW also drops a review a context capped (review or nothing)
SHORT_WORDS = 5  # an answer of at most this many words ("I feel ok"; 4 until round 7, --cv on A-K;
# 6 until round 12: --cv on A-S with the third training files, T and U held out, 5 gives 2 more
# alerts, 1 more flagged, 2 more ordinary answers at review of 2763; 0.45 instead of 0.6 below sent
# three short everyday answers of the regression corpus to review) ...
SHORT_REVIEW_AT = 0.6  # ... needs p >= this (not REVIEW_AT) for the net to add a review alone
# The tier net (q = its probability that the message should alert), chosen by --cv --sweep on
# A-I (round 6: 0.85/0.85 -> 0.7/0.8, with averaged weights and the per-concern bars below):
PROMOTE_AT = 0.6  # q >= this: a review (from the lexicon) becomes alert (0.7 until round 9)
ALONE_AT = 0.7  # q >= this: a review the review net added alone becomes alert (0.8 until round 7,
# 0.85 until round 9: --cv on A-M, alert 85.7 -> 87.2 %, ordinary alerted 1.6 -> 1.9 %; 0.75 until
# round 12)
ALONE_P = 0.9  # ... if the review net's own score p >= this too (both nets confident). Round 12: --cv
# on A-S with the third training files, T and U held out: ALONE_AT 0.75 -> 0.7 gives 3 more alerts of
# 2764, no more false alarms; ALONE_P 0.85 would give 27 more alerts for 2 more ordinary answers
# alerted, but alerted a child's House of Dreams answer "to live with my dad again" (p 0.86, q 0.89:
# the nets read "live with my dad" from disclosures), so it stays 0.9
# Concerns with their own, lower bar for both (chosen by --cv on A-I): their broad signals, when
# both nets read the message as a disclosure, were seldom an ordinary answer held out.
CONCERN_PROMOTE_AT: dict[str, float] = {"domestic_abuse": 0.6, "emotional_abuse": 0.6, "exploitation": 0.6,
                                          "neglect": 0.6, "unsafe_at_home": 0.6}
# Does a concern's own bar (CONCERN_PROMOTE_AT) also lower ALONE_AT? Not since round 7: the net
# alone alerted neglect at 0.6 on a parent's "Nan can look after them when I go out" (a flow
# script); --cv on A-K: J+K ordinary alerted 13 -> 11 with ALONE_AT 0.85, alert -0.7 points.
CONCERN_BAR_ALONE = False
# Concerns in which what the review net added alone never becomes alert (an alert there needs a
# phrase of the lexicon): broad signals, whose net-alone alerts held out were often ordinary.
ALONE_REVIEW_ONLY: tuple[str, ...] = ()
DEMOTE_BELOW = 0.1  # q < this: a lexicon alert becomes review (0.3 was tried in round 6: it
# quietened "I'm not sure, he hit my sister too", a plain disclosure; in round 7 0.2 cost no
# held-out alert on A-K but that sentence again fell to q 0.09 before "not sure" stopped negating)
# Round 10 (sg-tune6): a lexicon alert with p < DOUBT_P and q < DOUBT_Q becomes review (the review
# net reads it as ordinary, the tier net is not sure: a person looks without interrupting); never
# an alert of a ``grave`` rule of the lexicon (no net lowers those). Chosen by --cv on A-O.
DOUBT_P: float | None = 0.3  # 0.2 and DOUBT_Q 0.8 until round 12: --cv on A-S with the third training
DOUBT_Q = 0.7  # files, T and U held out: ordinary alerted 48 -> 45 of 2763 (N-S 26 -> 24 of 1103,
# adults' 14 -> 12) for 3 alerts of 2764 (N-S none)
# Round 11: the nets lower a lexicon alert by score (DEMOTE_BELOW, the doubt rule) only in an
# answer of at most LOWER_WORDS words: in a longer one the whole message's scores dilute a plain
# phrase (a disclosure at the end of a long everyday answer). --cv on A-Q: 20, 30 and no limit give
# the same figures (the doubt rule alone at 16: ordinary alerted +0.04), so 20.
LOWER_WORDS: int | None = 20
CONFIRM_AT = 0.5  # the review net lifts review to alert (p >= ALERT_AT) only if q >= this too
# Round 9: both nets reading a message as ordinary (q < VETO_BELOW and p < VETO_P) drop its reviews
# (the lexicon's broad signals, capped matches, the review net's own; never a lexicon alert, even
# quietened). --cv on A-M at 0.1 / 0.5: ordinary review 10.0 -> 8.5 % for flagged 96.4 -> 96.2 %;
# on the spent N+O it was a trade, not a gain (review 15.6 -> 15.0 %, flagged 93.8 -> 93.1 %), so
# it stays off (None) until a wider check says otherwise
VETO_BELOW: float | None = None
VETO_P = 0.5
# Round 9: what the review net added alone to a short answer (at most SHORT_WORDS words) stays at
# review ("I wish I had not", answering what one has thought since): --cv on A-M costs no alert
SHORT_ALONE_REVIEW = True
TIER_REVIEW_WEIGHT = 1.0  # a disclosure labelled review counts this much towards alert (0.5 until
# round 9: the target counts the alert tier over ALL disclosures, those a writer expected only at
# review too; --cv on A-M +0.6 points alert for +0.06 ordinary alerted)
# An ordinary answer in which the lexicon found something (a near miss: "I hit the lad back",
# "the flat is damp") counts this much in the tier net, one it found nothing in 1: new writers'
# near misses alerted at 7.9 % after round 6 while cross-validation on A-I said 2 %.
TIER_NEAR_MISS_WEIGHT = 3.0  # (chosen by --cv on A-K, round 7)
REVIEW_NEAR_MISS_WEIGHT = 2.0  # ... and this much in the review net
TIER_MIN_WEIGHT = 0.01  # smaller tier-net weights are left out of the model file


def _spent(batch: str) -> bool:
    """Is ``batch`` a spent blind batch (a to u, and listed)? batch_v and every later one never is."""
    m = re.fullmatch(r"batch_([a-z])", batch)
    return bool(m) and m.group(1) < FIRST_MEASUREMENT and batch in TRAINING_BATCHES


def examples(with_batches=TRAINING_BATCHES, with_more: bool = True) -> list[dict]:
    """Every training example: {"text", "label" (1 disclosure / 0 ordinary), "concern", "source"}."""
    out = []
    for name in SOURCES:
        path = TESTS / name
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for d in data["disclosures"]:
            out.append({"text": d["text"], "label": 1, "concern": CONCERN_OF.get(d["concern"], d["concern"]),
                        "source": name, "tier": d.get("tier", "alert")})
        for o in data["ordinary"]:
            text = o if isinstance(o, str) else o["text"]
            out.append({"text": text, "label": 0, "concern": None, "source": name})
    for b in with_batches:
        if not _spent(b):
            raise SystemExit(f"{b} is a measurement, never training data")
        out.extend(_batch_like(TESTS / "safeguarding_blind" / f"{b}.yaml", b))
    if with_more:
        for path in more_files():
            out.extend(_batch_like(path, f"more/{path.name}"))
    return out


def more_files() -> list[Path]:
    """The files of MORE (sorted: training is deterministic); none when the folder is absent."""
    return sorted(MORE.glob("*.yaml")) if MORE.is_dir() else []


def _batch_like(path: Path, source: str) -> list[dict]:
    """The examples of a file in the blind batches' schema: disclosures {text, concern,
    difficulty, speaker, tier}, ordinary {text, kind, speaker}; concerns mapped by CONCERN_OF."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for d in data.get("disclosures") or ():
        out.append({"text": d["text"], "label": 1, "concern": CONCERN_OF.get(d["concern"], d["concern"]),
                    "source": source, "tier": d.get("tier", "alert"), "named": d["concern"],
                    "speaker": d.get("speaker", "-"), "difficulty": d.get("difficulty", "-")})
    for o in data.get("ordinary") or ():
        out.append({"text": o["text"], "label": 0, "concern": None, "source": source,
                    "kind": o.get("kind", "-"), "speaker": o.get("speaker", "-")})
    return out


def check_concerns(items: list[dict], severity) -> None:
    """Exit with the files and names when a disclosure's concern (after CONCERN_OF) is not one
    of the lexicon's: the concern model would silently never learn it."""
    unknown: dict[str, set[str]] = defaultdict(set)
    for e in items:
        if e["label"] and e["concern"] not in severity:
            unknown[e["source"]].add(str(e.get("named", e["concern"])))
    if unknown:
        where = "; ".join(f"{src}: {', '.join(sorted(names))}" for src, names in sorted(unknown.items()))
        raise SystemExit(f"unknown concern ({where}): use a lexicon concern id ({', '.join(severity)}) "
                         f"or a name mapped in CONCERN_OF in scripts/train_safeguarding.py")


def _featurise(config, items):
    from bot.safeguarding.classify import features

    concepts = _concepts(config)
    return [features(config._norm.analyse(e["text"])[0], concepts, CHAR_NGRAMS) for e in items]


def _concepts(config):
    from bot.safeguarding.lexicon import _concept_table

    return _concept_table(config._sets)


def _kept(feats: list[list[str]]) -> set[str]:
    """The features trained on: seen at least MIN_COUNT times (BIGRAM_MIN_COUNT for "b:")."""
    counts = Counter(f for fs in feats for f in fs)
    least = {"b:": BIGRAM_MIN_COUNT, "t:": NGRAM_MIN_COUNT}
    return {f for f, n in counts.items() if n >= least.get(f[:2], MIN_COUNT)}


def _fit(rows: list[list[str]], labels: list[int], scale: list[float], seed: int) -> tuple[float, dict]:
    """:func:`_fit_once` for each of SEEDS orders (seed, seed + 1000, ...), weights averaged: one
    order's last examples move a rare word's weight, and a held-out answer's tier with it (round
    8: adding 24 everyday sentences moved held-out figures by half a point either way)."""
    fits = [_fit_once(rows, labels, scale, seed + 1000 * k) for k in range(SEEDS)]
    if len(fits) == 1:
        return fits[0]
    total: dict[str, float] = defaultdict(float)
    for _b, w in fits:
        for f, v in w.items():
            total[f] += v
    return sum(b for b, _w in fits) / len(fits), {f: v / len(fits) for f, v in total.items()}


def _fit_once(rows: list[list[str]], labels: list[int], scale: list[float], seed: int) -> tuple[float, dict]:
    """Logistic regression by AdaGrad with L2, in a fixed order (``seed``): (bias, weights).
    ``scale[k]`` weighs example k's error. With AVERAGE_FROM < EPOCHS the result is the mean of
    the weights at the end of each epoch from AVERAGE_FROM on: a steadier model, less moved by
    the last few examples it saw (rare words weigh less). Features are numbered and the weights
    kept in lists (round 12: the same arithmetic in the same order as the dictionaries before,
    so the same model, in about half the time)."""
    index: dict[str, int] = {}
    irows = [[index.setdefault(f, len(index)) for f in fs] for fs in rows]
    w = [0.0] * len(index)
    g2 = [1e-8] * len(index)
    b, gb = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(seed)
    sum_w = [0.0] * len(index)
    sum_b, kept = 0.0, 0
    sqrt, exp = math.sqrt, math.exp
    for epoch in range(EPOCHS):
        rng.shuffle(order)
        for k in order:
            fs = irows[k]
            z = b + sum([w[i] for i in fs])
            p = 1 / (1 + exp(-max(-30, min(30, z))))
            err = (p - labels[k]) * scale[k]
            gb += err * err
            b -= RATE * err / sqrt(gb)
            for i in fs:
                grad = err + L2 * w[i]
                g2[i] += grad * grad
                w[i] -= RATE * grad / sqrt(g2[i])
        if epoch >= AVERAGE_FROM:
            kept += 1
            sum_b += b
            for i, v in enumerate(w):
                sum_w[i] += v
    if kept:
        return sum_b / kept, {f: sum_w[i] / kept for f, i in index.items()}
    return b, {f: w[i] for f, i in index.items()}


def train(feats: list[list[str]], items: list[dict], severity: tuple[str, ...],
          lexicon: list[list[str]] | None = None) -> dict:
    """The review net (disclosure or not) and the concern model. ``lexicon`` (what the lexicon
    alone found in each example) marks the near misses among ordinary answers, which count
    REVIEW_NEAR_MISS_WEIGHT."""
    keep = _kept(feats)
    rows = [[f for f in fs if f in keep] for fs in feats]
    labels = [e["label"] for e in items]
    lexicon = lexicon if lexicon is not None else [["L:none"]] * len(items)
    sample = [1.0 if y or lx == ["L:none"] else REVIEW_NEAR_MISS_WEIGHT for y, lx in zip(labels, lexicon)]

    # logistic regression, AdaGrad, L2; deterministic order
    pos = sum(s for s, y in zip(sample, labels) if y)
    neg = sum(s for s, y in zip(sample, labels) if not y)
    weight = {1: (pos + neg) / (2 * pos), 0: (pos + neg) / (2 * neg)}
    b, w = _fit(rows, labels, [weight[y] * s for y, s in zip(labels, sample)], 12)

    # naive Bayes over the disclosures, for the concern
    classes = list(severity)
    per_class: dict[str, Counter] = {c: Counter() for c in classes}
    docs = Counter()
    for fs, e in zip(rows, items):
        if e["label"] and e["concern"] in per_class:
            per_class[e["concern"]].update(f for f in fs if not f.startswith("t:"))
            docs[e["concern"]] += 1
    vocab = {f for c in classes for f in per_class[c]}
    total_docs = sum(docs.values())
    prior = [round(math.log((docs[c] + 1) / (total_docs + len(classes))), 4) for c in classes]
    denom = [sum(per_class[c].values()) + ALPHA * len(vocab) for c in classes]
    default = [round(math.log(ALPHA / denom[k]), 4) for k in range(len(classes))]
    logp = {}
    for f in sorted(vocab):
        row = {}
        for k, c in enumerate(classes):
            n = per_class[c][f]
            if n:
                row[str(k)] = round(math.log((n + ALPHA) / denom[k]), 4)
        logp[f] = row
    weights = {f: round(v, 4) for f, v in sorted(w.items()) if abs(v) >= 1e-3}
    extra = {"char_ngrams": CHAR_NGRAMS} if CHAR_NGRAMS else {}
    return {**extra, "version": 1, "bias": round(b, 4), "weights": weights, "classes": classes,
            "class_prior": prior, "class_default": default, "class_logp": logp,
            "review_at": REVIEW_AT, "alert_at": ALERT_AT, "quiet_below": QUIET_BELOW,
            "drop_below": DROP_BELOW, "drop_ruled": DROP_RULED, "short_words": SHORT_WORDS, "short_review_at": SHORT_REVIEW_AT}


def _lexicon_found(config, items) -> list[list[str]]:
    """What the lexicon alone finds in each example, as tier-net features."""
    from bot.safeguarding.classify import lexicon_features

    return [lexicon_features((c.concern, c.tier) for c in config.detect(e["text"])) for e in items]


def train_tier(feats: list[list[str]], lexicon: list[list[str]], items: list[dict]) -> dict:
    """The tier net: logistic regression, alert (1) or not (0), over the review net's features
    and what the lexicon found. A disclosure labelled alert counts 1; one labelled review (a
    person should look, no need to interrupt) counts TIER_REVIEW_WEIGHT towards alert;
    ordinary answers are 0. Same deterministic AdaGrad as :func:`train`."""
    keep = _kept(feats)
    if not NGRAMS_IN_TIER:
        keep = {f for f in keep if not f.startswith("t:")}
    rows = [[f for f in fs if f in keep] + lx for fs, lx in zip(feats, lexicon)]
    labels = [e["label"] for e in items]
    sample = [(1.0 if e.get("tier", "alert") == "alert" else TIER_REVIEW_WEIGHT) if e["label"]
              else (1.0 if lx == ["L:none"] else TIER_NEAR_MISS_WEIGHT) for e, lx in zip(items, lexicon)]
    pos = sum(s for s, y in zip(sample, labels) if y)
    neg = sum(s for s, y in zip(sample, labels) if not y)
    total = pos + neg
    weight = {1: total / (2 * pos), 0: total / (2 * neg)}
    b, w = _fit(rows, labels, [weight[y] * s for y, s in zip(labels, sample)], 13)
    weights = {f: round(v, 4) for f, v in sorted(w.items()) if abs(v) >= TIER_MIN_WEIGHT}
    return {"bias": round(b, 4), "weights": weights, "promote_at": PROMOTE_AT, "alone_at": ALONE_AT,
            "demote_below": DEMOTE_BELOW, "confirm_at": CONFIRM_AT, "alone_p": ALONE_P,
            "concern_promote_at": dict(sorted(CONCERN_PROMOTE_AT.items())),
            "alone_review_only": sorted(ALONE_REVIEW_ONLY), "concern_bar_alone": CONCERN_BAR_ALONE,
            "veto_below": VETO_BELOW, "veto_p": VETO_P, "short_alone_review": SHORT_ALONE_REVIEW,
            "doubt_p": DOUBT_P, "doubt_q": DOUBT_Q, "lower_words": LOWER_WORDS}


def build(config, items=None) -> dict:
    items = items if items is not None else examples()
    check_concerns(items, config.severity)
    feats = _featurise(config, items)
    lexicon = _lexicon_found(config, items)
    model = train(feats, items, config.severity, lexicon)
    model["tier"] = train_tier(feats, lexicon, items)
    return model


def _config_without_classifier():
    from bot.safeguarding import SafeguardingConfig

    return SafeguardingConfig.load(classifier=False)


NAMES = ("lexicon ", "with net", "two nets")
# Held-out batches also summed by group: A-I (the lexicon's rules were written knowing the misses
# of A-G, so held out for the nets only there), J+K (rules written knowing them in round 7) and
# L+M (rules written knowing them in round 8; before round 8 the closest proxy for a new writer).
# N+O and P+Q: no rule of the lexicon was written from their sentences (round 9's rules from A-M's
# misses were dropped), so they are the closest proxy for a new writer.
# R+S (round 11's validation pair) likewise.
GROUPS = {"A-I": "abcdefghi", "J+K": "jk", "L+M": "lm", "N+O": "no", "P+Q": "pq", "R+S": "rs", "T+U": "tu"}


def cross_validate(sweep: bool = False, misses: tuple[str, ...] = (), hold: tuple[str, ...] = ()) -> None:
    """Leave one spent blind batch (A-I) out: train both nets on everything else, measure the
    held-out batch through ``detect`` as it runs in the bot: the lexicon alone, with the review
    net, and with the review and tier nets. The lexicon itself was written knowing the misses of
    A-G (its rules are in-sample there), so these figures are held out for the nets only there;
    H+I (printed apart) is held out for the nets and, as long as no rule is written from their
    sentences, for the rules too: the closer proxy for a new batch. The batches named in ``hold``
    (a validation pair) are left out altogether: neither trained on nor measured."""
    from bot.safeguarding.classify import Classifier

    config = _config_without_classifier()
    held_out = {f"batch_{x}" for x in hold}
    batches = tuple(b for b in TRAINING_BATCHES if b not in held_out)
    full = [e for e in examples() if e["source"] not in held_out]
    check_concerns(full, config.severity)
    concepts = _concepts(config)
    feats = dict(zip([e["text"] for e in full], _featurise(config, full)))
    lexf = dict(zip([e["text"] for e in full], _lexicon_found(config, full)))
    total, groups = Counter(), {name: Counter() for name in GROUPS}
    folds = []
    for held in batches:
        train_items = [e for e in full if e["source"] != held]
        test_items = [e for e in full if e["source"] == held]
        tf = [feats[e["text"]] for e in train_items]
        tl = [lexf[e["text"]] for e in train_items]
        model = train(tf, train_items, config.severity, tl)
        model["tier"] = train_tier(tf, tl, train_items)
        folds.append((held, model, test_items))
        stats = Counter()
        for name in NAMES:
            if name == "lexicon ":
                config._classifier = None
            else:
                m = dict(model)
                if name == "with net":
                    m.pop("tier")
                config._classifier = Classifier(m, concepts)
            for e in test_items:
                found = config.detect(e["text"])
                _count(stats, name, e, found)
                if name == "two nets" and held[-1] in misses:
                    _show_miss(e, found)
        config._classifier = None
        total.update(stats)
        for name, letters in GROUPS.items():
            if held[-1] in letters:
                groups[name].update(stats)
        _print_cv(held, stats)
    first, last = batches[0][-1].upper(), batches[-1][-1].upper()
    _print_cv(f"{first}-{last}", total)
    for name, stats in groups.items():
        _print_cv(name, stats)
    for title, stats in ((f"{first}-{last}", total), *groups.items()):
        _print_breakdown(title, stats)
    if sweep:
        _sweep(config, concepts, folds)


def validate(letters: tuple[str, ...]) -> None:
    """Train both nets on everything but the named spent batches (a validation pair, e.g. p,q)
    and measure them as the bot runs: aggregates only, by speaker, difficulty and concern."""
    from bot.safeguarding.classify import Classifier

    held = {f"batch_{x}" for x in letters}
    config = _config_without_classifier()
    full = examples()
    check_concerns(full, config.severity)
    train_items = [e for e in full if e["source"] not in held]
    test_items = [e for e in full if e["source"] in held]
    model = build(config, train_items)
    config._classifier = Classifier(model, _concepts(config))
    stats = Counter()
    for e in test_items:
        _count(stats, "two nets", e, config.detect(e["text"]))
    config._classifier = None
    title = "+".join(x.upper() for x in letters)
    _print_cv(title, stats, names=("two nets",))
    _print_breakdown(title, stats)


def _print_breakdown(title: str, stats: Counter) -> None:
    def values(key: str) -> list[str]:  # the values of ``key`` counted for the two nets
        return sorted({k[2] for k in stats if len(k) == 3 and k[0] == "two nets" and k[1] == key})

    print(f"\n{title} held out, two nets (n: flagged / alert / concern named right):")
    for key in ("speaker", "difficulty", "named"):
        print(f"  by {key}:")
        for value in values(key):
            n = stats[("two nets", key, value)]
            print(f"    {value:26} {n:4d}: {_pct(stats[('two nets', key, value, 'flagged')], n):5.1f} / "
                  f"{_pct(stats[('two nets', key, value, 'alert')], n):5.1f} / "
                  f"{_pct(stats[('two nets', key, value, 'right')], n):5.1f}")
    for key in ("ospeaker", "kind"):
        print(f"  ordinary, by {key.removeprefix('o')} (n: alerted / review):")
        for value in values(key):
            n = stats[("two nets", key, value)]
            print(f"    {value:26} {n:4d}: {stats[('two nets', key, value, 'alert')]:3d} / "
                  f"{stats[('two nets', key, value, 'review')]:3d}  ({_pct(stats[('two nets', key, value, 'alert')], n):4.1f} / "
                  f"{_pct(stats[('two nets', key, value, 'review')], n):4.1f} %)")


def _pct(k: int, n: int) -> float:
    return 100.0 * k / n if n else 0.0


def _count(stats: Counter, name: str, e: dict, found: list) -> None:
    from bot.safeguarding.tiers import tier_of

    t = tier_of(found)
    kind = "d" if e["label"] else "o"
    stats[(name, kind, t)] += 1
    stats[(name, kind)] += 1
    if e["label"]:
        right = any(c.concern == e["concern"] for c in found)
        for key in ("speaker", "difficulty", "named"):
            value = e.get(key, "-")
            stats[(name, key, value)] += 1
            stats[(name, key, value, "flagged")] += t is not None
            stats[(name, key, value, "alert")] += t == "alert"
            stats[(name, key, value, "right")] += right
    else:
        for key in ("kind", "ospeaker"):
            value = e.get(key.removeprefix("o"), "-")
            stats[(name, key, value)] += 1
            stats[(name, key, value, t)] += 1


def _show_miss(e: dict, found: list) -> None:
    from bot.safeguarding.tiers import tier_of

    t = tier_of(found)
    shown = "; ".join(f"{c.concern}/{c.tier} [{c.rule}]" for c in found) or "-"
    if e["label"] and t != "alert":
        print(f"  MISS {e['source'][-1]} {t or '-':6} want {e['tier']:6} {e['named']:18} {e['speaker'][:5]} "
              f"{e['text']!r}  <{shown}>")
    elif e["label"] and not any(c.concern == e["concern"] for c in found):
        print(f"  NAME {e['source'][-1]} {t:6} want {e['concern']:18} {e['text']!r}  <{shown}>")
    elif not e["label"] and t is not None:
        print(f"  FALSE {e['source'][-1]} {t:6} {e.get('kind', '-'):18} {e['text']!r}  <{shown}>")


def _sweep(config, concepts, folds) -> None:
    """Held-out figures (all the spent batches, and N on) for a grid of tier-net thresholds."""
    from bot.safeguarding.classify import Classifier

    for promote in (0.6, 0.7, 0.75, 0.8, 0.85):
        for alone in (0.7, 0.75, 0.8, 0.85, 0.9):
            for demote in (0.05, 0.1):
                stats, late = Counter(), Counter()
                for held, model, items in folds:
                    m = dict(model)
                    m["tier"] = dict(m["tier"], promote_at=promote, alone_at=alone, demote_below=demote)
                    config._classifier = Classifier(m, concepts)
                    for e in items:
                        found = config.detect(e["text"])
                        _count(stats, "two nets", e, found)
                        if held >= "batch_n":
                            _count(late, "two nets", e, found)
                config._classifier = None
                _print_cv(f"promote {promote} alone {alone} demote {demote} all", stats, names=("two nets",))
                _print_cv(f"promote {promote} alone {alone} demote {demote} N on", late, names=("two nets",))


def _print_cv(title: str, stats: Counter, names=NAMES) -> None:
    for name in names:
        n_d, n_o = stats[(name, "d")], stats[(name, "o")]
        if not n_d and not n_o:
            continue
        print(f"{title:8} {name[:3]}: flagged {_pct(n_d - stats[(name, 'd', None)], n_d):5.1f} % "
              f"alert {_pct(stats[(name, 'd', 'alert')], n_d):5.1f} % of {n_d} | ordinary alerted "
              f"{_pct(stats[(name, 'o', 'alert')], n_o):4.1f} % review {_pct(stats[(name, 'o', 'review')], n_o):4.1f} % of {n_o}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed model is out of date")
    ap.add_argument("--cv", action="store_true", help="leave-one-batch-out figures on the spent batches A-S")
    ap.add_argument("--show-misses", default="", metavar="LETTERS",
                    help="with --cv: print the held-out misses of these spent batches, e.g. a,b,c")
    ap.add_argument("--sweep", action="store_true", help="with --cv: held-out figures for a grid of tier-net thresholds")
    ap.add_argument("--hold", default="", metavar="LETTERS",
                    help="with --cv: leave these spent batches (a validation pair, e.g. r,s) out altogether")
    ap.add_argument("--validate", default="", metavar="LETTERS",
                    help="train on everything but these spent batches (e.g. p,q) and measure them")
    args = ap.parse_args(argv)
    if args.validate:
        letters = tuple(x.strip().removeprefix("batch_") for x in args.validate.split(",") if x.strip())
        for x in letters:
            if not _spent(f"batch_{x}"):
                raise SystemExit(f"batch_{x} is not a spent batch: it is never trained on or measured here")
        validate(letters)
        return 0
    if args.cv:
        letters = tuple(x.strip().removeprefix("batch_") for x in args.show_misses.split(",") if x.strip())
        for x in letters:
            if not _spent(f"batch_{x}"):
                raise SystemExit(f"batch_{x} is not a spent batch: its sentences are never printed")
        hold = tuple(x.strip().removeprefix("batch_") for x in args.hold.split(",") if x.strip())
        for x in hold:
            if not _spent(f"batch_{x}"):
                raise SystemExit(f"batch_{x} is not a spent batch")
        if set(hold) & set(letters):
            raise SystemExit("a held batch is never measured here: its misses are not shown")
        cross_validate(sweep=args.sweep, misses=letters, hold=hold)
        return 0
    model = build(_config_without_classifier())
    text = json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n"
    if args.check:
        current = MODEL.read_text(encoding="utf-8") if MODEL.exists() else ""
        if current != text:
            print(f"{MODEL.relative_to(ROOT)} is out of date: run scripts/train_safeguarding.py", file=sys.stderr)
            return 1
        return 0
    MODEL.write_text(text, encoding="utf-8")
    print(f"wrote {MODEL.relative_to(ROOT)}: {len(model['weights'])} weights, "
          f"{len(model['class_logp'])} concern features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
