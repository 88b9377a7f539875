"""How long the flow linter takes as flows grow (issue 11, finding 14).

    .venv/bin/python scripts/bench_lint.py [STEPS ...]     (default: 1000 2500 5000 10000)

Each generated flow is a chain of diamonds: every step asks a question whose wording uses
the first answer, and every fifth step branches ahead on its answer, so the dominator tree
is not a simple chain. Prints, per size: file size, `validate` time (load + lint; wall clock, and CPU time, which a
busy shared machine does not inflate), the time
to compile it into a runner (what `serve` does at start), and the process's peak memory so far.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def big_flow(n: int) -> str:
    lines = ["id: big", "version: 1", "title: Big", "audience: family", "steps:"]
    if n < 2:
        raise SystemExit("a benchmark flow needs at least 2 steps")
    lines.append("  - {id: s0, ask: First question}")
    for i in range(1, n):
        nxt = f"s{i + 1}" if i + 1 < n else "end"
        if i % 5 == 0 and i + 3 < n:
            lines.append(f'  - {{id: s{i}, ask: "Q{i} {{{{ answers.s0 }}}}", next: [{{if: "answer==\'a\'", goto: s{i + 3}}}, {{goto: {nxt}}}]}}')
        else:
            lines.append(f'  - {{id: s{i}, ask: "Q{i} {{{{ answers.s0 }}}}", next: {nxt}}}')
    return "\n".join(lines) + "\n"


def main(sizes: list[int]) -> None:
    import resource

    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner

    print(f"{'steps':>7} {'file KB':>8} {'validate s':>11} {'(CPU s)':>8} {'compile s':>10} {'max RSS MB':>11}")
    for n in sizes:
        text = big_flow(n)
        t0, c0 = time.perf_counter(), time.process_time()
        flow, errors = load_flow_text(text, "big.yaml")
        t1, c1 = time.perf_counter(), time.process_time()
        assert flow is not None, errors[:3]
        FlowRunner(flow)
        t2 = time.perf_counter()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>7} {len(text.encode()) / 1024:>8.0f} {t1 - t0:>11.2f} {c1 - c0:>8.2f} {t2 - t1:>10.2f} {rss:>11.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 2500, 5000, 10000])
