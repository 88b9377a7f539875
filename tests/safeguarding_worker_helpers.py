"""Stand-in detectors for tests/test_safeguarding_worker.py, built inside the worker process
(bot/safeguarding_worker.py) from a recipe naming this module. No pytest here: the worker
imports it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Found:
    concern: str
    tier: str
    matched: str


class Words:
    """ALERTWORD: alert. HANGWORD: never answers (a stuck worker; only in the worker
    process, where ``hang`` is set). ``calls``: the words it was given, in this process."""

    concerns = {"physical_abuse": "Physical abuse"}

    def __init__(self, hang: bool = False):
        self.hang = hang
        self.calls: list[str] = []

    def detect(self, text, context=None):
        self.calls.append(text)
        if self.hang and "HANGWORD" in text:
            while True:  # stuck until the parent replaces this process
                time.sleep(3600)
        return [Found("physical_abuse", "alert", "ALERTWORD")] if "ALERTWORD" in text else []

    def response(self, audience):
        return "HELP: call 999"

    def offer(self):
        return "Would you like to carry on?"


def words_in_worker():
    """(The recipe's function.) The stand-in, able to hang."""
    return Words(hang=True)


def refuse():
    raise RuntimeError("this worker cannot load its detector")


def pid_of_worker():
    """A detector answering with the worker's process id (to tell which process checked)."""

    class Pid:
        def detect(self, text, context=None):
            return [os.getpid()]

    return Pid()
