"""Shared pieces: figures with targets, statistics, the results table, generated flows,
and starting the real ``serve`` process against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:TEST-token-for-the-fake-server-only"


# --- figures -----------------------------------------------------------------------------

@dataclass
class Target:
    """``what`` is "value" (the median), "max"/"min" (the worst run) or "ratio" (figure / baseline)."""

    what: str
    op: str  # ">=" or "<="
    limit: float
    text: str

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.op == ">=" else value <= self.limit


@dataclass
class Figure:
    bench: str
    key: str
    label: str
    unit: str
    samples: list[float] = field(default_factory=list)
    baseline_label: str | None = None
    baseline: list[float] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        """Figure / baseline, from the per-run pairs (each pair measured back to back)."""
        if not self.samples or not self.baseline:
            return None
        if len(self.samples) == len(self.baseline):
            pairs = [a / b for a, b in zip(self.samples, self.baseline) if b]
            return statistics.median(pairs) if pairs else None  # a baseline of 0 has no ratio
        return self.median / self.baseline_median if self.baseline_median else None

    def verdicts(self) -> list[bool | None]:
        pick = {"value": lambda: self.median, "ratio": lambda: self.ratio,
                "max": lambda: max(self.samples, default=None), "min": lambda: min(self.samples, default=None)}
        return [t.met(pick[t.what]()) for t in self.targets]

    def to_json(self) -> dict:
        return {
            "bench": self.bench, "key": self.key, "label": self.label, "unit": self.unit,
            "median": self.median, "spread": spread(self.samples), "min": min(self.samples, default=None),
            "max": max(self.samples, default=None), "samples": self.samples,
            "baseline": None if not self.baseline_label else {
                "label": self.baseline_label, "median": self.baseline_median, "spread": spread(self.baseline),
                "samples": self.baseline},
            "ratio": self.ratio,
            "targets": [{"target": t.text, "what": t.what, "op": t.op, "limit": t.limit, "met": m}
                        for t, m in zip(self.targets, self.verdicts())],
            "note": self.note, **({"extra": self.extra} if self.extra else {}),
        }


def spread(samples: list[float]) -> float | None:
    """Half the range, relative to the median (0.05 = ±5 %)."""
    if len(samples) < 2:
        return None
    m = statistics.median(samples)
    return (max(samples) - min(samples)) / 2 / m if m else None


def fmt_num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "s", "MB"):
        if value >= 100:
            return f"{value:,.0f} {unit}"
        return f"{value:.3g} {unit}" if value < 10 else f"{value:.1f} {unit}"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.0f} {unit}"


def fmt_stat(samples: list[float], unit: str) -> str:
    if not samples:
        return "-"
    s = spread(samples)
    text = fmt_num(statistics.median(samples), unit)
    return text + (f" ±{s * 100:.0f}%" if s is not None and unit != "count" else "")


def table(figures: list[Figure]) -> str:
    rows = [("figure", "result (median ±spread)", "baseline", "ratio", "target", "met")]
    for f in figures:
        verdicts = f.verdicts()
        met = " ".join("yes" if v else ("NO" if v is False else "?") for v in verdicts) or "-"
        base = f"{f.baseline_label}: {fmt_stat(f.baseline, f.unit)}" if f.baseline_label else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        rows.append((f.label, fmt_stat(f.samples, f.unit), base, ratio, "; ".join(t.text for t in f.targets) or "-",
                     met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


@dataclass
class Context:
    quick: bool = False
    runs: int = 5
    workdir: Path = Path("/tmp")
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)
    scale_conversations: int = 100_000
    users: int = 200


def interleaved(runs: int, *fns: Callable[[], float]) -> list[list[float]]:
    """Run each measurement ``runs`` times, alternating A B A B so that drift and noise
    fall on every side alike."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            out[i].append(fn())
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- generated flows ---------------------------------------------------------------------

def ten_step_flow(flow_id: str = "bench-ten", version: int = 1, say_end: bool = True) -> str:
    """A 10-question flow using every question type, a template and a branch."""
    steps = f"""id: {flow_id}
version: {version}
title: Benchmark flow {flow_id}
audience: family
intro: A generated flow with ten questions, for benchmarks.
steps:
  - id: q1
    ask: What are your best hopes from our talking together?
    type: text
    min_length: 2
  - id: q2
    ask: On a scale of 0 to 10, where are things now?
    type: scale
    min: 0
    max: 10
    next:
      - if: answer <= 1
        goto: q3_low
      - goto: q3
  - id: q3_low
    ask: What keeps you going?
    type: text
    next: q4
  - id: q3
    ask: What puts you at {{{{ answers.q2 }}}} and not lower?
    type: text
  - id: q4
    ask: Who was there?
    type: choice
    options: [Mum, Dad, Carer, Someone else]
  - id: q5
    ask: How many days ago was it?
    type: number
    min: 0
    max: 365
  - id: q6
    ask: Did anyone help?
    type: yesno
  - id: q7
    ask: What helped, {{{{ shown.q4 }}}}?
    type: text
    max_length: 500
  - id: q8
    ask: Which of these matter to you?
    type: multi
    options: [School, Home, Friends, Health]
  - id: q9
    ask: What would be different at {{{{ answers.q2 + 1 }}}}?
    type: text
  - id: q10
    ask: Is there anything else you would like your practitioner to know?
    type: text
    optional: true
"""
    if say_end:
        steps += "  - id: thanks\n    say: Thank you. Your answers are saved.\n"
    return steps


# Typed answers for ten_step_flow, one per question, all valid (the q2 >= 2 branch).
TEN_STEP_ANSWERS = ["We argue less at home", "6", "We eat together", "Mum", "3", "yes",
                    "Talking it through", "School, Home", "We would laugh more", "Nothing else, thanks"]


def long_flow(flow_id: str, questions: int, version: int = 1) -> str:
    """A flow of ``questions`` text questions (the scale benchmark keeps people mid-way)."""
    lines = [f"id: {flow_id}", f"version: {version}", f"title: Long flow {flow_id}", "audience: family", "steps:"]
    for i in range(1, questions + 1):
        lines += [f"  - id: q{i}", f"    ask: Question {i}, what do you think about part {i}?", "    type: text"]
    return "\n".join(lines) + "\n"


def write_flow(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# --- safeguarding -------------------------------------------------------------------------

_SAFEGUARDING: list = []


def safeguarding():
    """The real safeguarding detector when it can be loaded, else None (and say so once)."""
    if not _SAFEGUARDING:
        try:
            from bot.safeguarding import SafeguardingConfig

            _SAFEGUARDING.append(SafeguardingConfig.load())
        except Exception as exc:  # being finished elsewhere: measure without it, and say so
            print(f"note: safeguarding not loadable ({type(exc).__name__}: {exc}); running without it",
                  file=sys.stderr)
            _SAFEGUARDING.append(None)
    return _SAFEGUARDING[0]


_WORKER: list = []


def detector_worker():
    """The safeguarding worker process serve starts (bot/safeguarding_worker.py), started once
    and ready (None, and say so once, if it cannot start)."""
    if not _WORKER:
        import atexit

        from bot.safeguarding_worker import DetectorWorker, lexicon_recipe

        worker = DetectorWorker(lexicon_recipe())
        atexit.register(worker.close)
        if not worker.wait_ready(60):
            print(f"note: the safeguarding worker did not start ({worker.failure}); detecting in process",
                  file=sys.stderr)
        _WORKER.append(worker)
    return _WORKER[0]


# --- the serve process --------------------------------------------------------------------

def serve_env(fake_base_url: str) -> dict:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake_base_url,
           "PYTHONUNBUFFERED": "1"}
    env.pop("RESTORATIVE_CONFIG", None)
    return env


def serve_argv(db: Path, config: Path, flows: list[Path] | None = None, max_rate: float | None = None) -> list[str]:
    """``restorative-bot serve`` when it can start here; else (or to lift the rate limit)
    ``benchmarks.bot_process``, which builds the same Application."""
    flow_args = [a for f in (flows or []) for a in ("--flows", str(f))]
    if max_rate is not None or serve_mode() != "real":
        rate = ["--max-rate", str(max_rate)] if max_rate is not None else []
        rate += BOT_PROCESS_EXTRA
        return [sys.executable, "-m", "benchmarks.bot_process", "--db", str(db), "--config", str(config), *flow_args,
                *rate]
    return [sys.executable, "-m", "bot", "serve", "--db", str(db), "--config", str(config), "--log-level", "WARNING",
            *flow_args]


_SERVE_MODE: list[str] = []
BOT_PROCESS_EXTRA: list[str] = []  # e.g. ["--concurrency", "32"] for experiments


def serve_mode() -> str:
    """'real' when `restorative-bot serve` can start here, else 'stand-in' (benchmarks.bot_process)."""
    if not _SERVE_MODE:
        _SERVE_MODE.append("real" if safeguarding() is not None else "stand-in")
    return _SERVE_MODE[0]


LEAD = 999  # the designated safeguarding lead in every generated configuration


# Simulated users answer at machine speed, far beyond any person: the per-person rate limits
# are lifted for them (the chaos flood part sets its own, to test the real ones).
MACHINE_SPEED = ("limits:\n  stranger_burst: 1000000\n  stranger_per_minute: 1000000\n"
                 "  stranger_per_day: 1000000000\n  member_burst: 1000000\n  member_per_minute: 1000000\n"
                 "  strangers_burst: 1000000\n  strangers_per_second: 1000000\n  stranger_backlog: 1000000\n")


def write_config(folder: Path, demo_flow: str | None = None, limits: str | None = MACHINE_SPEED) -> Path:
    cfg = folder / "serve-config.yaml"
    cfg.write_text(f"safeguarding:\n  leads: [{LEAD}]\n" + (f"demo_flow: {demo_flow}\n" if demo_flow else "")
                   + (limits or ""), encoding="utf-8")
    return cfg


async def start_serve(db: Path, fake, folder: Path, flows: list[Path] | None = None, stderr=None,
                      max_rate: float | None = None, demo_flow: str | None = None):
    """Start the bot as its own process, long-polling ``fake``; returns the process.

    Anyone may start ``demo_flow`` (the access rules let the uninvited try the demo only)."""
    argv = serve_argv(db, write_config(folder, demo_flow), flows, max_rate)
    return await asyncio.create_subprocess_exec(
        *argv, cwd=str(ROOT), env=serve_env(fake.base_url), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=stderr if stderr is not None else asyncio.subprocess.DEVNULL)


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc."""
    rss = hwm = float("nan")
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t0


async def stop_serve(proc) -> bool:
    """SIGTERM a serve process and wait; kill it after 20 s. False if it had to be killed."""
    if proc.returncode is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
        return True
    except (TimeoutError, asyncio.TimeoutError):
        proc.kill()
        await proc.wait()
        return False
