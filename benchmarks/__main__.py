"""``python -m benchmarks [--quick] [NAME ...]``: run the benchmarks, print one table,
write ``bench-results.json``.

Names: engine, telegram, http, scale, web, startup, peer (default: all, in that order).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, Context, safeguarding, serve_mode, table

BENCHES = {
    "engine": "benchmarks.engine_store",
    "telegram": "benchmarks.telegram_path",
    "http": "benchmarks.http_users",
    "scale": "benchmarks.scale",
    "web": "benchmarks.web",
    "startup": "benchmarks.startup",
    "peer": "benchmarks.peer",
}


def machine() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return None

    import sqlite3

    import telegram

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version, "python-telegram-bot": telegram.__version__,
            "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "bot")),
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small counts and 2 runs: a smoke run, not figures")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5; --quick 2)")
    parser.add_argument("--users", type=int, default=200, help="simulated users over HTTP (default 200)")
    parser.add_argument("--conversations", type=int, default=100_000,
                        help="conversations in the scale database (default 100,000)")
    parser.add_argument("--json", default=str(ROOT / "bench-results.json"), help="where to write the results")
    parser.add_argument("--workdir", default=None, help="where temporary databases go (default: the system temp dir)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHES)
    for n in names:
        if n not in BENCHES:
            parser.error(f"unknown benchmark {n!r}; choose from {', '.join(BENCHES)}")
    import tempfile

    ctx = Context(quick=args.quick, runs=args.runs or (2 if args.quick else 5),
                  workdir=Path(args.workdir or tempfile.gettempdir()), users=args.users,
                  scale_conversations=args.conversations)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    import importlib

    figures, failed = [], []
    t_all = time.perf_counter()
    for n in names:
        ctx.log(f"[{n}] running ...")
        t0 = time.perf_counter()
        try:
            figures += importlib.import_module(BENCHES[n]).run(ctx)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            import traceback

            traceback.print_exc()
            failed.append(f"{n}: {type(exc).__name__}: {exc}")
        ctx.log(f"[{n}] done in {time.perf_counter() - t0:.0f} s")
    print()
    print(table(figures))
    notes = [f"- {f.label}: {f.note}" for f in figures if f.note]
    info = machine()
    print(f"\n{info['cpus']} CPUs, Python {info['python']}, SQLite {info['sqlite']}, "
          f"python-telegram-bot {info['python-telegram-bot']}, commit {info['commit']}{' (bot/ modified)' if info['dirty'] else ''};"
          f" runs per figure {ctx.runs}{' (--quick: smoke run, not figures)' if ctx.quick else ''};"
          f" safeguarding {'on' if safeguarding() is not None else 'OFF (lexicon not loadable)'};"
          f" total {time.perf_counter() - t_all:.0f} s")
    if notes:
        print("\n" + "\n".join(notes))
    for f in failed:
        print(f"FAILED {f}")
    result = {"machine": info, "quick": ctx.quick, "runs": ctx.runs, "safeguarding": safeguarding() is not None,
              "serve": serve_mode() if {"http", "scale"} & set(names) else None,
              "figures": [f.to_json() for f in figures], "failed": failed, "table": table(figures)}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
