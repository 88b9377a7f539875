"""The check command: ``restorative-bot safeguarding check [--json] [--lexicon FILE ...]``.

Reads lines on standard input and prints, for each line, the tier (``alert``, ``review`` or
none), the concerns and the words that matched. A deployment's safeguarding lead uses it to
try local words before adding them to an override file; measurement scripts use ``--json``.

With ``--json`` exactly one JSON object per input line, in input order, empty lines too::

    {"text": "...", "tier": "alert" | "review" | null,
     "concerns": ["physical_harm", ...], "matched": ["hit me", ...]}

``concerns`` are the concern ids, most serious first; ``matched[i]`` is the fragment of the
line that matched ``concerns[i]``. A line is what lies between two newline characters (a
trailing ``\\r`` is dropped; bytes that are not UTF-8 read as U+FFFD). This never raises on
any input: a line it cannot read is printed with tier null.
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterator, Mapping

from bot.safeguarding.tiers import tier_of


def _lines(stream: IO[bytes]) -> Iterator[str]:
    for raw in stream:
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield raw.decode("utf-8", errors="replace")


def result(config, text: str, context: Mapping[str, Any] | None = None) -> tuple[dict, list]:
    """The JSON object printed for one line, and the Concern objects behind it."""
    try:
        found = config.detect(text, context)
    except Exception:  # pragma: no cover - detect never raises on a str; keep one line per input
        found = []
    res = {"text": text, "tier": tier_of(found), "concerns": [c.concern for c in found],
           "matched": [c.matched for c in found]}
    return res, found


def human(res: dict, found: list) -> str:
    """One line for a person: tier, each concern with its own tier and words, then the text."""
    shown = "; ".join(f'{c.concern} ({c.tier}) "{c.matched}"' for c in found) or "-"
    return f"{res['tier'] or '-':<6}  {shown}  <  {res['text']}"


def run(config, stdin: IO[bytes], stdout: IO[bytes], *, as_json: bool = False,
        context: Mapping[str, Any] | None = None, flush_each: bool = False) -> int:
    """Check every line of ``stdin``; write one result line per input line to ``stdout``.

    Returns the number of lines checked. ``flush_each`` for a person typing at a terminal.
    """
    count = 0
    for text in _lines(stdin):
        res, found = result(config, text, context)
        line = json.dumps(res, ensure_ascii=True) if as_json else human(res, found)
        stdout.write(line.encode("utf-8", errors="replace") + b"\n")
        if flush_each:
            stdout.flush()
        count += 1
    stdout.flush()
    return count
