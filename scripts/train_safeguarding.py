"""Train the safeguarding review net (bot/safeguarding/classify.py) and write its model.

    .venv/bin/python scripts/train_safeguarding.py [--check] [--cv]

Training examples (labelled disclosures and ordinary answers), all of them material the
lexicon was already tuned on or written for training, NEVER a blind batch that is still a
measurement (batches E, F, G, H, I and any later one are refused: only A-D are accepted):

* tests/safeguarding_training.yaml   written for the classifier (themes of issue 12)
* tests/safeguarding_tuning.yaml     the lexicon's tuning examples
* tests/safeguarding_corpus.yaml     the regression corpus
* tests/safeguarding_blind/batch_a..d.yaml  blind batches already tuned on (rounds 1-3)

The model is a logistic regression (disclosure or not) plus a naive Bayes concern model over
the same features, trained deterministically (fixed order, fixed seed), so the same inputs
always give the same bot/safeguarding_model.json. ``--check`` rebuilds in memory and exits 1
if the committed model differs (the test suite runs it). ``--cv`` prints leave-one-batch-out
figures on A-D (train on everything else, measure the held-out batch), which is how the
thresholds were chosen: never on a batch that is a measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

MODEL = ROOT / "bot" / "safeguarding_model.json"
TESTS = ROOT / "tests"
TRAINING_BATCHES = ("batch_a", "batch_b", "batch_c", "batch_d")  # already tuned on; E, F, G, H, I are measurements
SOURCES = ("safeguarding_training.yaml", "safeguarding_tuning.yaml", "safeguarding_corpus.yaml")

# Blind batches label concerns in their writers' own words: map them to the lexicon's ids.
CONCERN_OF = {
    "physical_abuse": "physical_harm", "baby_harm": "physical_harm", "fgm": "physical_harm",
    "self_harm": "self_harm_suicide", "suicide": "self_harm_suicide", "eating_disorder": "self_harm_suicide",
    "grooming": "exploitation", "online_coercion": "exploitation", "trafficking": "exploitation",
    "forced_marriage": "exploitation", "radicalisation": "exploitation",
    "honour_abuse": "domestic_abuse", "parental_substance": "neglect", "parental_substance_misuse": "neglect",
}

EPOCHS = 25
L2 = 3e-3
RATE = 0.3
ALPHA = 0.5  # naive Bayes smoothing
MIN_COUNT = 2  # a feature seen fewer times in training is dropped
# Thresholds, chosen by --cv on batches A-D (leave one out), never on a blind measurement:
REVIEW_AT = 0.4  # nothing found by the lexicon, p >= this: review
ALERT_AT = 0.9  # p >= this: what the lexicon found at review becomes alert
QUIET_BELOW = 0.2  # a lexicon alert with p < this and an everyday-setting word becomes review
DROP_BELOW = 0.15  # a lexicon review on a message with p < this is dropped


def examples(with_batches=TRAINING_BATCHES) -> list[dict]:
    """Every training example: {"text", "label" (1 disclosure / 0 ordinary), "concern", "source"}."""
    out = []
    for name in SOURCES:
        path = TESTS / name
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for d in data["disclosures"]:
            out.append({"text": d["text"], "label": 1, "concern": CONCERN_OF.get(d["concern"], d["concern"]),
                        "source": name})
        for o in data["ordinary"]:
            text = o if isinstance(o, str) else o["text"]
            out.append({"text": text, "label": 0, "concern": None, "source": name})
    for b in with_batches:
        if b not in TRAINING_BATCHES:
            raise SystemExit(f"{b} is a measurement, never training data")
        data = yaml.safe_load((TESTS / "safeguarding_blind" / f"{b}.yaml").read_text(encoding="utf-8"))
        for d in data["disclosures"]:
            out.append({"text": d["text"], "label": 1, "concern": CONCERN_OF.get(d["concern"], d["concern"]),
                        "source": b})
        for o in data["ordinary"]:
            out.append({"text": o["text"], "label": 0, "concern": None, "source": b})
    return out


def _featurise(config, items):
    from bot.safeguarding.classify import features

    concepts = _concepts(config)
    return [features(config._norm.analyse(e["text"])[0], concepts) for e in items]


def _concepts(config):
    from bot.safeguarding.lexicon import _concept_table

    return _concept_table(config._sets)


def train(feats: list[list[str]], items: list[dict], severity: tuple[str, ...]) -> dict:
    counts = Counter(f for fs in feats for f in fs)
    keep = {f for f, n in counts.items() if n >= MIN_COUNT}
    rows = [[f for f in fs if f in keep] for fs in feats]
    labels = [e["label"] for e in items]

    # logistic regression, AdaGrad, L2; deterministic order
    w: dict[str, float] = defaultdict(float)
    g2: dict[str, float] = defaultdict(lambda: 1e-8)
    b, gb = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(12)
    pos = sum(labels)
    neg = len(labels) - pos
    weight = {1: len(labels) / (2 * pos), 0: len(labels) / (2 * neg)}
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for k in order:
            fs = rows[k]
            z = b + sum(w[f] for f in fs)
            p = 1 / (1 + math.exp(-max(-30, min(30, z))))
            err = (p - labels[k]) * weight[labels[k]]
            gb += err * err
            b -= RATE * err / math.sqrt(gb)
            for f in fs:
                grad = err + L2 * w[f]
                g2[f] += grad * grad
                w[f] -= RATE * grad / math.sqrt(g2[f])

    # naive Bayes over the disclosures, for the concern
    classes = list(severity)
    per_class: dict[str, Counter] = {c: Counter() for c in classes}
    docs = Counter()
    for fs, e in zip(rows, items):
        if e["label"] and e["concern"] in per_class:
            per_class[e["concern"]].update(fs)
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
    return {"version": 1, "bias": round(b, 4), "weights": weights, "classes": classes,
            "class_prior": prior, "class_default": default, "class_logp": logp,
            "review_at": REVIEW_AT, "alert_at": ALERT_AT, "quiet_below": QUIET_BELOW,
            "drop_below": DROP_BELOW}


def build(config, items=None) -> dict:
    items = items if items is not None else examples()
    return train(_featurise(config, items), items, config.severity)


def _config_without_classifier():
    from bot.safeguarding import SafeguardingConfig

    return SafeguardingConfig.load(classifier=False)


def cross_validate() -> None:
    """Leave one of batches A-D out: train on the rest, measure it through ``detect`` as it runs
    in the bot (lexicon alone, then lexicon with the review net)."""
    from bot.safeguarding.classify import Classifier
    from bot.safeguarding.tiers import tier_of

    config = _config_without_classifier()
    full = examples()
    concepts = _concepts(config)
    feats = dict(zip([e["text"] for e in full], _featurise(config, full)))
    total = Counter()
    for held in TRAINING_BATCHES:
        train_items = [e for e in full if e["source"] != held]
        test_items = [e for e in full if e["source"] == held]
        model = train([feats[e["text"]] for e in train_items], train_items, config.severity)
        stats = Counter()
        for use in (False, True):
            config._classifier = Classifier(model, concepts) if use else None
            name = "with net" if use else "lexicon "
            for e in test_items:
                t = tier_of(config.detect(e["text"]))
                kind = "d" if e["label"] else "o"
                stats[(name, kind, t)] += 1
                stats[(name, kind)] += 1
        config._classifier = None
        total.update(stats)
        _print_cv(held, stats)
    _print_cv("A-D", total)


def _print_cv(title: str, stats: Counter) -> None:
    for name in ("lexicon ", "with net"):
        n_d, n_o = stats[(name, "d")], stats[(name, "o")]
        pct = lambda k, n: 100.0 * k / n if n else 0.0  # noqa: E731
        print(f"{title:8} {name}: flagged {pct(n_d - stats[(name, 'd', None)], n_d):5.1f} % "
              f"alert {pct(stats[(name, 'd', 'alert')], n_d):5.1f} % of {n_d} | ordinary alerted "
              f"{pct(stats[(name, 'o', 'alert')], n_o):4.1f} % review {pct(stats[(name, 'o', 'review')], n_o):4.1f} % of {n_o}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed model is out of date")
    ap.add_argument("--cv", action="store_true", help="leave-one-batch-out figures on batches A-D")
    args = ap.parse_args(argv)
    if args.cv:
        cross_validate()
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
