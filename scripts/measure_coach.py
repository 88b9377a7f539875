#!/usr/bin/env python3
"""Per-label precision, recall and F1 of the rehearsal coach on a labelled corpus.

    scripts/measure_coach.py                       # the held-out part, through the command
    scripts/measure_coach.py tests/coach/tuning.yaml --errors
    scripts/measure_coach.py --in-process          # call the library instead of the command

The corpus is a YAML list of {text, labels}. By default every question goes through
`restorative-bot coach --json` exactly as a held-back set would be measured. Prints one row
per label and the macro-F1 over the six mistakes and over the twelve practice labels;
--json prints the same as JSON. Exit status 1 if a target is missed (mistakes >= 0.85,
practice >= 0.80), so CI can hold the line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.coach.rules import MISTAKES, PRACTICE  # noqa: E402

TARGETS = {"mistakes": 0.85, "practice": 0.80}


def predict_via_command(texts: list[str]) -> list[list[str]]:
    exe = Path(sys.executable).with_name("restorative-bot")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bot"]
    clean = [t.replace("\n", " ").replace("\r", " ") for t in texts]
    out = subprocess.run(cmd + ["coach", "--json"], input="\n".join(clean) + "\n", capture_output=True, text=True,
                         check=True, cwd=ROOT)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    if len(rows) != len(texts):
        raise SystemExit(f"the command printed {len(rows)} objects for {len(texts)} questions")
    return [row["labels"] for row in rows]


def predict_in_process(texts: list[str]) -> list[list[str]]:
    from bot.coach import Coach

    c = Coach()
    return [list(c.coach(t).labels) for t in texts]


def score(gold: list[set], predicted: list[set]) -> dict:
    rows = {}
    for label in MISTAKES + ("open",) + PRACTICE:
        tp = sum(1 for g, p in zip(gold, predicted) if label in g and label in p)
        fp = sum(1 for g, p in zip(gold, predicted) if label not in g and label in p)
        fn = sum(1 for g, p in zip(gold, predicted) if label in g and label not in p)
        precision = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows[label] = {"support": tp + fn, "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
    macro_m = sum(rows[label]["f1"] for label in MISTAKES) / len(MISTAKES)
    macro_p = sum(rows[label]["f1"] for label in PRACTICE) / len(PRACTICE)
    exact = sum(1 for g, p in zip(gold, predicted) if g == p) / len(gold) if gold else 0.0
    return {"labels": rows, "macro_f1_mistakes": macro_m, "macro_f1_practice": macro_p, "exact_match": exact, "n": len(gold)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "tests" / "coach" / "heldout.yaml"))
    ap.add_argument("--in-process", action="store_true", help="call the library instead of the command")
    ap.add_argument("--errors", action="store_true", help="list every question whose labels differ")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    items = yaml.safe_load(Path(args.corpus).read_text(encoding="utf-8"))
    texts = [i["text"] for i in items]
    gold = [set(i["labels"]) for i in items]
    predicted = [set(p) for p in (predict_in_process(texts) if args.in_process else predict_via_command(texts))]
    result = score(gold, predicted)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.corpus}: {result['n']} questions, exact label sets {result['exact_match']:.2f}")
        print(f"{'label':18} {'n':>4} {'prec':>6} {'recall':>6} {'F1':>6}")
        for label, row in result["labels"].items():
            print(f"{label:18} {row['support']:>4} {row['precision']:6.2f} {row['recall']:6.2f} {row['f1']:6.2f}")
        print(f"macro-F1 mistakes  {result['macro_f1_mistakes']:.3f} (target {TARGETS['mistakes']})")
        print(f"macro-F1 practice  {result['macro_f1_practice']:.3f} (target {TARGETS['practice']})")
    if args.errors:
        for text, g, p in zip(texts, gold, predicted):
            if g != p:
                print(f"  {text!r}\n      missing {sorted(g - p)}  extra {sorted(p - g)}", file=sys.stderr)
    ok = result["macro_f1_mistakes"] >= TARGETS["mistakes"] and result["macro_f1_practice"] >= TARGETS["practice"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
