#!/usr/bin/env python3
"""Benchmark: time to coach one question (labels + suggestion), median over both corpora.

    scripts/bench_coach.py [--rounds 20]

Loads the rules once (as the bot does), then coaches every corpus question ROUNDS times and
prints the median, 95th percentile and maximum per question. Target: median under 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.coach import Coach  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    texts = [i["text"] for name in ("tuning.yaml", "heldout.yaml")
             for i in yaml.safe_load((ROOT / "tests" / "coach" / name).read_text(encoding="utf-8"))]
    started = time.perf_counter()
    coach = Coach()
    load_ms = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(args.rounds):
        for text in texts:
            t0 = time.perf_counter_ns()
            coach.coach(text)
            timings.append((time.perf_counter_ns() - t0) / 1e6)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95)]
    print(f"{len(texts)} questions x {args.rounds} rounds; rules loaded in {load_ms:.0f} ms")
    print(f"per question: median {statistics.median(timings):.3f} ms, p95 {p95:.3f} ms, max {timings[-1]:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
