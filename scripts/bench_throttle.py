#!/usr/bin/env python3
"""Benchmark: the web sign-in throttle under hours of strangers' tries, on a moved clock.

    scripts/bench_throttle.py [--hours 3]

Strangers at the shared limit (600 tries a minute, each from a new address with a new bogus
code) for HOURS simulated hours; prints how many queues each table holds, the memory traced,
and the time of one allow() afterwards beside a fresh throttle's (it runs in the site's one
database thread, so it must stay in microseconds).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.web.signin import Throttle  # noqa: E402


def per_call(th: Throttle, now: list, n: int = 2000) -> float:
    start = time.perf_counter()
    for i in range(n):
        now[0] += 0.0001
        th.allow(f"203.0.113.{i % 250}:{i}", secrets.token_urlsafe(24), valid=lambda: False)
    return (time.perf_counter() - start) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=3)
    args = ap.parse_args()
    now = [0.0]
    th = Throttle(clock=lambda: now[0])
    tracemalloc.start()
    largest = 0
    for minute in range(int(args.hours * 60)):
        for i in range(600):
            now[0] = minute * 60 + i * 0.1
            th.allow(f"198.51.{minute % 250}.{i % 250}:{i}", secrets.token_urlsafe(24), valid=lambda: False)
        largest = max(largest, len(th._by), len(th._codes))
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    now[0] += 61
    after = per_call(th, now)
    fresh_now = [now[0]]
    fresh = per_call(Throttle(clock=lambda: fresh_now[0]), fresh_now)
    print(f"after {args.hours:g} h of bogus tries: addresses={len(th._by)} codes={len(th._codes)} "
          f"(largest {largest}) traced={traced / 1e6:.1f} MB; allow() {after * 1e6:.1f} µs "
          f"(fresh throttle {fresh * 1e6:.1f} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
