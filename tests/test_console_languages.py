"""The Welsh and Polish scripted conversations (flows/tests/*-cy.yaml, *-pl.yaml) played in the
terminal, as a person would: `restorative-bot chat FLOW --for adult --lang cy` with the script's
words piped in (a button press typed as the button's words), every message the script expects
shown in order, and the answers the script pins saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.engine.library import DEFAULT_FLOWS, FlowLibrary
import re

from bot.engine.scripts import load_scripts

ROOT = Path(__file__).resolve().parents[1]


WORKER_PRESENT = {f.id for f in FlowLibrary.load() if "worker_present" in f.requires}


def typable(convs):
    """A conversation that needs an earlier one by the same person (previous:), a worker's case
    texts (case:), a fixed day for its dates (today:) or a worker holding the device for a child
    (a worker-present flow: --case REF --for child) cannot be typed into a fresh terminal on
    today's clock; the service and Telegram runs (tests/test_flow_scripts.py, tests/test_telegram.py)
    play those."""
    return [c for c in convs if c.previous is None and c.case is None and c.today is None
            and c.flow not in WORKER_PRESENT]


# Every Welsh, Polish and Urdu script with a conversation the terminal can play: a flow
# translated later is played in the terminal too.
SCRIPTS = [p for lang in ("cy", "pl", "ur") for p in sorted((DEFAULT_FLOWS / "tests").glob(f"*-{lang}.yaml"))
           if typable(load_scripts([p])[0])]


def expected(text: str) -> re.Pattern:
    """A script's `bot:` line (``*`` a wildcard) as a pattern that matches as little as it can."""
    return re.compile(".*?".join(re.escape(part) for part in text.strip().split("*")), re.DOTALL)


def run_cli(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ), timeout=120)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_scripted_conversations_in_welsh_and_polish_in_the_terminal(tmp_path, path, library):
    convs, errors = load_scripts([path])
    assert convs and not errors
    for i, conv in enumerate(typable(convs)):
        db = tmp_path / f"{i}.db"
        typed = "".join(line.text + "\n" for line in conv.script if line.kind in ("user", "press"))
        proc = run_cli(["chat", conv.flow, "--for", conv.respondent or "adult", "--lang", conv.language, "--db", str(db)], typed)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        shown, at = proc.stdout, 0
        for line in conv.script:
            if line.kind != "bot":
                continue
            found = expected(line.text).search(shown, at)
            assert found, f"{path.name}:{line.line}: {line.text!r} not shown (in order) in the terminal"
            at = found.end()
        out = run_cli(["export", "--session", "1", "--format", "json", "--db", str(db)])
        consent = library.get(conv.flow).consent_step
        if consent is not None and conv.answers.get(consent) is not True:
            # the person said no to sharing, or stopped before being asked: the export is refused, as it should be
            assert out.returncode != 0 and "the person has not agreed" in out.stderr, out.stdout + out.stderr
            continue
        assert out.returncode == 0, out.stdout + out.stderr
        data = json.loads(out.stdout)
        assert {a["step_id"]: a["value"] for a in data["answers"]} == conv.answers
        assert data["status"] == conv.status and data["language"] == conv.language
