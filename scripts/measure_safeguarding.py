"""Measure the safeguarding detector on the frozen blind batches (aggregate figures only).

    .venv/bin/python scripts/measure_safeguarding.py [BATCH.yaml ...] [--detector auto|cli|python]
                                                     [--lexicon FILE ...] [--json] [--show-misses]

The batches (tests/safeguarding_blind/batch_*.yaml by default) were written before any tuning,
without reading the lexicon; they are a measurement, not a tuning set. This script prints ONLY
aggregate figures: per batch, disclosures flagged in either tier, in the alert tier, and at
their expected minimum tier; ordinary answers alerted and sent to review; and breakdowns per
concern, difficulty and speaker (and per kind for ordinary answers). No sentence is printed
unless --show-misses is given, so the figures can be shared without leaking the batches.

Detector: `restorative-bot safeguarding check --json` when that command exists (the stable
interface the held-back set is measured through), else the Python detector, where a concern
without `.tier` counts as alert.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

BLIND = ROOT / "tests" / "safeguarding_blind"
TIERS = ("alert", "review")
CHECK = [sys.executable, "-m", "bot", "safeguarding", "check", "--json"]


def load_batch(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {"name": path.stem, "disclosures": data["disclosures"], "ordinary": data["ordinary"]}


def cli_available() -> bool:
    try:
        done = subprocess.run(CHECK + ["--help"], cwd=ROOT, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def tiers_cli(texts: list[str], lexicons: list[str]) -> list[str | None]:
    cmd = list(CHECK)
    for lexicon in lexicons:
        cmd += ["--lexicon", lexicon]
    # One line per text: a text never holds a newline here, but be safe.
    stdin = "".join(t.replace("\n", " ") + "\n" for t in texts)
    done = subprocess.run(cmd, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"safeguarding check failed (exit {done.returncode}): {done.stderr.strip()}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(rows) != len(texts):
        raise SystemExit(f"safeguarding check printed {len(rows)} objects for {len(texts)} lines")
    return [row.get("tier") or None for row in rows]


def tiers_python(texts: list[str], lexicons: list[str]) -> list[str | None]:
    if lexicons:
        from bot.safeguarding import SafeguardingConfig

        detect = SafeguardingConfig.load(*lexicons).detect
    else:
        from bot.safeguarding import detect
    out: list[str | None] = []
    for text in texts:
        found = [getattr(c, "tier", "alert") for c in detect(text)]
        out.append("alert" if "alert" in found else ("review" if found else None))
    return out


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f} %" if whole else "   -   "


def summarise(batch: dict, tiers: dict[str, str | None]) -> dict:
    disc, ordi = batch["disclosures"], batch["ordinary"]
    flagged = [tiers[d["text"]] is not None for d in disc]
    alerted = [tiers[d["text"]] == "alert" for d in disc]
    at_min = [tiers[d["text"]] == "alert" or (d["tier"] == "review" and tiers[d["text"]] == "review")
              for d in disc]
    result = {
        "batch": batch["name"],
        "disclosures": len(disc),
        "flagged": sum(flagged),
        "alert": sum(alerted),
        "at_expected_tier": sum(at_min),
        "ordinary": len(ordi),
        "ordinary_alerted": sum(tiers[o["text"]] == "alert" for o in ordi),
        "ordinary_review": sum(tiers[o["text"]] == "review" for o in ordi),
        "by": {},
    }
    for field in ("concern", "difficulty", "speaker"):
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for d, f, a in zip(disc, flagged, alerted):
            g = groups[d[field]]
            g[0] += 1
            g[1] += f
            g[2] += a
        result["by"][field] = {k: {"n": v[0], "flagged": v[1], "alert": v[2]} for k, v in sorted(groups.items())}
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for o in ordi:
        k = kinds[o["kind"]]
        k[0] += 1
        k[1] += tiers[o["text"]] == "alert"
        k[2] += tiers[o["text"]] == "review"
    result["by"]["kind"] = {k: {"n": v[0], "alerted": v[1], "review": v[2]} for k, v in sorted(kinds.items())}
    return result


def print_summary(s: dict) -> None:
    n, o = s["disclosures"], s["ordinary"]
    print(f"== {s['batch']}: {n} disclosures, {o} ordinary answers")
    print(f"  flagged (either tier) {pct(s['flagged'], n)}  ({s['flagged']}/{n})")
    print(f"  alert tier            {pct(s['alert'], n)}  ({s['alert']}/{n})")
    print(f"  at expected min tier  {pct(s['at_expected_tier'], n)}  ({s['at_expected_tier']}/{n})")
    print(f"  ordinary alerted      {pct(s['ordinary_alerted'], o)}  ({s['ordinary_alerted']}/{o})")
    print(f"  ordinary review       {pct(s['ordinary_review'], o)}  ({s['ordinary_review']}/{o})")
    for field in ("concern", "difficulty", "speaker"):
        print(f"  by {field}:  (n, flagged, alert)")
        for key, g in s["by"][field].items():
            print(f"    {key:<20} {g['n']:4d}  {pct(g['flagged'], g['n'])}  {pct(g['alert'], g['n'])}")
    print("  ordinary by kind:  (n, alerted, review)")
    for key, g in s["by"]["kind"].items():
        print(f"    {key:<22} {g['n']:4d}  {pct(g['alerted'], g['n'])}  {pct(g['review'], g['n'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("batches", nargs="*", type=Path, help="batch files (default: every tests/safeguarding_blind/batch_*.yaml)")
    ap.add_argument("--detector", choices=("auto", "cli", "python"), default="auto",
                    help="auto: `restorative-bot safeguarding check --json` if it exists, else the Python detector")
    ap.add_argument("--lexicon", action="append", default=[], metavar="FILE", help="extra lexicon file (repeatable)")
    ap.add_argument("--json", action="store_true", help="print the aggregate figures as one JSON document")
    ap.add_argument("--show-misses", action="store_true",
                    help="ALSO print the sentences missed or wrongly flagged (for the lexicon maintainer only)")
    args = ap.parse_args(argv)

    paths = args.batches or sorted(BLIND.glob("batch_*.yaml"))
    if not paths:
        raise SystemExit(f"no batches found in {BLIND}")
    batches = [load_batch(p) for p in paths]
    texts = sorted({item["text"] for b in batches for part in ("disclosures", "ordinary") for item in b[part]})

    use_cli = args.detector == "cli" or (args.detector == "auto" and cli_available())
    found = (tiers_cli if use_cli else tiers_python)(texts, args.lexicon)
    tiers = dict(zip(texts, found))
    detector = "restorative-bot safeguarding check --json" if use_cli else "bot.safeguarding.detect (no .tier = alert)"

    summaries = [summarise(b, tiers) for b in batches]
    if len(batches) > 1:
        summaries.append(summarise({"name": "all batches",
                                    "disclosures": [d for b in batches for d in b["disclosures"]],
                                    "ordinary": [o for b in batches for o in b["ordinary"]]}, tiers))
    if args.json:
        print(json.dumps({"detector": detector, "batches": summaries}, indent=2))
    else:
        print(f"detector: {detector}")
        for s in summaries:
            print_summary(s)
    if args.show_misses:
        for b in batches:
            print(f"-- {b['name']}: disclosures below their expected tier")
            for d in b["disclosures"]:
                got = tiers[d["text"]]
                if got != "alert" and not (d["tier"] == "review" and got == "review"):
                    print(f"   [{got or 'none'} < {d['tier']}] {d['concern']}/{d['difficulty']}/{d['speaker']}: {d['text']}")
            print(f"-- {b['name']}: ordinary answers flagged")
            for o in b["ordinary"]:
                if tiers[o["text"]]:
                    print(f"   [{tiers[o['text']]}] {o['kind']}: {o['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
