"""What a run found: the bot's state as the harness sees it, and the report of figures and violations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class BotState:
    """What users know about the bot process: whether it is up, since when."""

    up: bool = False
    ready_at: float = 0.0
    polls_at_start: int = 0
    chaos_done: bool = True  # every kill and fault asked for has happened (users carry on until then)
    chaos_done_at: float = 0.0  # when (time.monotonic()); users have a while from then to finish

    def finish_chaos(self) -> None:
        self.chaos_done, self.chaos_done_at = True, time.monotonic()


@dataclass
class Report:
    name: str
    users: int = 0
    finished: int = 0
    kills: int = 0
    faults: int = 0
    conversations: int = 0
    inputs: int = 0
    stalls: int = 0  # no reply after the bot was up: the user sent /start to carry on
    resumes: int = 0
    checks: int = 0  # database snapshots checked after kills
    duplicate_questions: int = 0
    error_logs: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    why: dict = field(default_factory=dict)  # what the stalls turned out to be
    figures: dict = field(default_factory=dict)  # measured values to report (flood)

    def saw(self, what: str) -> None:
        self.why[what] = self.why.get(what, 0) + 1

    def line(self) -> str:
        return (f"{self.name}: {self.conversations} conversations, {self.finished}/{self.users} users finished their last,"
                f" {self.inputs} inputs, {self.kills} kills,"
                f" {self.faults} faults, {self.stalls} stalls recovered by /start ({self.resumes} resumes),"
                f" {self.checks} post-kill checks, {self.duplicate_questions} unasked-for repeated questions,"
                f" {self.error_logs} error log lines, {len(self.violations)} violations, {self.seconds:.0f} s"
                + (f"\n  stalls: {self.why}" if self.why else "")) if not self.figures else (
            f"{self.name}: " + ", ".join(f"{k} {v}" for k, v in self.figures.items())
            + f", {self.error_logs} error log lines, {len(self.violations)} violations, {self.seconds:.0f} s")
