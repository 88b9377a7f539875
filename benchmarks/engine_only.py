"""The flow engine alone (issue 2's figures): load + compile every shipped flow, and the
cost of one pure engine step (no store), in microseconds. Median and spread of several runs.

Run: .venv/bin/python -m benchmarks.engine_only [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bot.engine.library import DEFAULT_FLOWS, FlowLibrary, validate_paths
from bot.engine.runner import FlowRunner, Input


def load_all() -> float:
    t = time.perf_counter()
    flows, errors = validate_paths([DEFAULT_FLOWS])
    assert not errors
    FlowLibrary(flows)  # compiles one transitions machine per flow
    return time.perf_counter() - t


def step_cost(n: int = 20000) -> float:
    runner = FlowRunner(FlowLibrary.load().get("scaling-checkin"))
    start = runner.start().session
    answers = [Input.from_text(t) for t in ("We talk more", "6", "We eat together", "Less shouting", "8")]
    t = time.perf_counter()
    done = 0
    while done < n:
        session = start
        for inp in answers:
            session = runner.step(session, inp).session
            done += 1
    return (time.perf_counter() - t) / done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    loads = [load_all() * 1000 for _ in range(args.runs)]
    steps = [step_cost() * 1e6 for _ in range(args.runs)]
    n = len(list(DEFAULT_FLOWS.rglob("*.yaml"))) - len(list((DEFAULT_FLOWS / "tests").rglob("*.yaml")))
    print(f"load + compile all {n} shipped flows: median {statistics.median(loads):.1f} ms "
          f"(min {min(loads):.1f}, max {max(loads):.1f})")
    print(f"one engine step (parse, validate, branch, render): median {statistics.median(steps):.1f} µs "
          f"(min {min(steps):.1f}, max {max(steps):.1f})")


if __name__ == "__main__":
    main()
