"""The command line: ``python -m benchmarks.chaos`` / ``scripts/chaos``."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
from pathlib import Path

from benchmarks.chaos.flood import (
    run_flood,
)
from benchmarks.chaos.fuzz import (
    run_fuzz,
)
from benchmarks.chaos.kill_faults import (
    run_scenario,
)
from benchmarks.chaos.redelivery import (
    check_redelivery,
    check_restart_sends_committed_replies,
)
from benchmarks.chaos.report import (
    Report,
)


def main(argv: list[str] | None = None) -> int:
    import benchmarks.chaos as package  # its docstring is the help text

    parser = argparse.ArgumentParser(prog="scripts/chaos", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help="kill, faults, fuzz, flood (default: all)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of kills / faults per run (default 60)")
    parser.add_argument("--users", type=int, default=30, help="simulated users per run (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--examples", type=int, default=300, help="hypothesis examples per fuzz target (default 300)")
    parser.add_argument("--stall", type=float, default=None,
                        help="seconds without a reply (bot up) before a user sends /start to carry on"
                             " (default 4 for kill, 12 for faults: slow replies and 429s are expected there)")
    parser.add_argument("--workdir", default=None, help="where temporary databases go (default: system temp dir)")
    parser.add_argument("--accounts", type=int, default=200, help="flood: accounts without a role (default 200)")
    parser.add_argument("--flood-messages", type=int, default=15,
                        help="flood: messages from each account (default 15; half of them 4 KB)")
    parser.add_argument("--chat-interval", type=float, default=1.0,
                        help="flood: seconds between two messages to one chat, as Telegram allows (default 1)")
    args = parser.parse_args(argv)
    parts = args.parts or ["kill", "faults", "fuzz", "flood"]
    for p in parts:
        if p not in ("kill", "faults", "fuzz", "flood"):
            parser.error(f"unknown part {p!r}; choose from kill, faults, fuzz, flood")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    workdir = Path(args.workdir or tempfile.gettempdir())
    print(f"chaos: seed {seed} (repeat with --seed {seed}), parts {' '.join(parts)}", flush=True)
    reports = []
    if "kill" in parts:
        reports.append(asyncio.run(run_scenario("kill", duration=args.duration, users=args.users, seed=seed,
                                                workdir=workdir, kills=True, faults=False, stall=args.stall or 4)))
    if "faults" in parts:
        reports.append(asyncio.run(run_scenario("faults", duration=args.duration, users=args.users, seed=seed + 1,
                                                workdir=workdir, kills=False, faults=True, stall=args.stall or 12)))
    if "kill" in parts:
        folder = Path(tempfile.mkdtemp(prefix="chaos-restart-", dir=workdir))
        problems = asyncio.run(check_restart_sends_committed_replies(folder))
        shutil.rmtree(folder, ignore_errors=True)
        reports.append(Report("restart-resend", violations=problems))
        print(f"kill -9 with a committed reply still to send: {len(problems)} problems", flush=True)
    if "faults" in parts:
        folder = Path(tempfile.mkdtemp(prefix="chaos-redeliver-", dir=workdir))
        problems = asyncio.run(check_redelivery(folder))
        shutil.rmtree(folder, ignore_errors=True)
        reports.append(Report("redelivery", violations=problems))
        print(f"redelivery after a committed input whose reply failed: {len(problems)} problems", flush=True)
    if "fuzz" in parts:
        reports.append(run_fuzz(args.examples, seed, workdir))
    if "flood" in parts:
        reports.append(asyncio.run(run_flood(accounts=args.accounts, messages=args.flood_messages, seed=seed,
                                             workdir=workdir, chat_interval=args.chat_interval)))
    bad = [v for r in reports for v in r.violations]
    print()
    for r in reports:
        print(r.line())
        for n in r.notes:
            print(f"  note: {n}")
    for v in bad:
        print(f"VIOLATION {v}")
    print(f"\nchaos: {'FAILED' if bad else 'passed'} (seed {seed})")
    return 1 if bad else 0
