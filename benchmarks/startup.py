"""Benchmark 5: start-up.

(a) Load and compile 200 generated flows (10 questions each, every question type,
templates, conditions and validation rules) with ``FlowLibrary.load`` in a fresh
interpreter, timed from before the imports to a library of 200 compiled runners.
Baseline: the same 200 files read with plain ``yaml.safe_load`` (PyYAML's C loader when
present) in a fresh interpreter, imports included — parsing alone.

(b) ``restorative-bot --help``, wall time of the installed console script. Baseline: the
same interpreter doing nothing (``python -c pass``): the floor any Python CLI starts from.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Context, Figure, Target, interleaved, ten_step_flow, write_flow

LOAD = """
import time, sys
t0 = time.perf_counter()
from bot.engine.library import FlowLibrary
lib = FlowLibrary.load([sys.argv[1]])
assert len(lib) == int(sys.argv[2]), len(lib)
print(time.perf_counter() - t0)
"""

PARSE = """
import time, sys
t0 = time.perf_counter()
import yaml
from pathlib import Path
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
docs = [yaml.load(p.read_text(encoding="utf-8"), Loader=Loader) for p in sorted(Path(sys.argv[1]).glob("*.yaml"))]
assert len(docs) == int(sys.argv[2])
print(time.perf_counter() - t0)
"""


def generate_flows(folder: Path, count: int) -> None:
    for i in range(count):
        write_flow(folder, f"flow-{i:03d}", ten_step_flow(f"gen-{i:03d}", version=1 + i % 3))


def _inproc(code: str, *args) -> float:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=str(ROOT), capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=str(ROOT), capture_output=True, check=True)
    return time.perf_counter() - t0


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("restorative-bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def run(ctx: Context) -> list[Figure]:
    count = 200
    folder = Path(tempfile.mkdtemp(prefix="bench-flows-", dir=ctx.workdir))
    try:
        generate_flows(folder, count)
        _inproc(LOAD, folder, count)  # warm the OS file cache and .pyc files alike for both
        load, parse = interleaved(max(ctx.runs, 3), lambda: _inproc(LOAD, folder, count),
                                  lambda: _inproc(PARSE, folder, count))
        ctx.log(f"  startup: load {[round(x, 3) for x in load]} s, yaml {[round(x, 3) for x in parse]} s")
        help_argv = console_script() + ["--help"]
        _wall(help_argv)
        helps, bare = interleaved(max(ctx.runs, 5), lambda: _wall(help_argv), lambda: _wall([sys.executable, "-c", "pass"]))
        ctx.log(f"  startup: --help {[round(x, 3) for x in helps]} s, python -c pass {[round(x, 3) for x in bare]} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        Figure("startup", "startup_flows", f"5. load + compile {count} flows (fresh process)", "s", load,
               "yaml.safe_load only", parse, [Target("value", "<=", 2.0, "< 2 s")],
               note="timed inside the process from before the imports"),
        Figure("startup", "startup_help", "5. restorative-bot --help (wall)", "s", helps, "python -c pass", bare,
               [Target("value", "<=", 0.3, "< 0.3 s")], note=" ".join(help_argv)),
    ]
