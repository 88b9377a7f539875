"""Every scripted conversation in flows/tests passes, through the service and the store."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot.engine.library import DEFAULT_FLOWS
from bot.engine.scripts import load_scripts, play
from bot.testing.drivers import ServiceDriver

CONVERSATIONS, ERRORS = load_scripts([DEFAULT_FLOWS / "tests"])


def test_scripts_load_cleanly():
    assert ERRORS == []
    assert CONVERSATIONS, "flows/tests has no scripted conversations"


def test_every_shipped_flow_has_scripts(library):
    scripted = {c.flow for c in CONVERSATIONS}
    assert {f.id for f in library} <= scripted


@pytest.fixture(scope="module")
def safeguarding():
    from bot.safeguarding import SafeguardingConfig

    return SafeguardingConfig.load()


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=lambda c: f"{c.flow}:{c.name}")
def test_scripted_conversation(conv, library, safeguarding):
    # with safeguarding on, as `restorative-bot test-flows` and the bot itself run them
    outcome = play(conv, ServiceDriver.in_memory(library, safeguarding))
    assert outcome.ok, "\n".join(outcome.failures)


def test_a_wrong_expectation_fails_with_a_readable_diff(tmp_path):
    script = tmp_path / "wrong.yaml"
    script.write_text(
        "flow: scaling-checkin\n"
        "conversations:\n"
        "  - name: deliberately wrong\n"
        "    script:\n"
        "      - user: We talk more\n"
        "      - bot: '*where are things now?*'\n"
        "      - user: '6'\n"
        "      - bot: What puts you at 5 and not lower?\n"
        "    answers:\n"
        "      best_hopes: We talk less\n"
    )
    proc = subprocess.run([sys.executable, "-m", "bot", "test-flows", str(script)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 1
    assert "FAIL scaling-checkin: deliberately wrong" in proc.stdout
    assert "expected the bot to say next\n      'What puts you at 5 and not lower?'" in proc.stdout
    assert "What puts you at 6 and not lower?" in proc.stdout
    assert "0 passed, 1 failed" in proc.stdout

    script.write_text(script.read_text().replace("bot: What puts you at 5 and not lower?", "bot: '*What puts you at 6 and not lower?'"))
    proc = subprocess.run([sys.executable, "-m", "bot", "test-flows", str(script)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 1
    assert "answer 'best_hopes' differs" in proc.stdout
    assert "-'We talk less'" in proc.stdout and "+'We talk more'" in proc.stdout


def _one(tmp_path, body: str):
    script = tmp_path / "one.yaml"
    script.write_text("flow: scaling-checkin\nconversations:\n  - name: one\n" + body)
    convs, errors = load_scripts([script])
    assert errors == [] and len(convs) == 1
    return convs[0]


def test_a_bot_line_never_skips_a_message_the_script_does_not_expect(tmp_path, library):
    # the start says what the check-in is, then asks the first question: expecting the
    # question first skips the introduction, which must fail
    conv = _one(tmp_path, "    script:\n      - bot: '*What are your best hopes*'\n")
    outcome = play(conv, ServiceDriver.in_memory(library))
    assert not outcome.ok and "it said that later" in outcome.failures[0]


def test_recorded_answers_are_checked_exactly_unless_the_script_says_subset(tmp_path, library):
    body = ("    script:\n      - user: We talk more\n      - user: '6'\n"
            "    answers:\n      scale_now: 6\n")
    outcome = play(_one(tmp_path, body), ServiceDriver.in_memory(library))
    assert not outcome.ok and "answers recorded but not in the script: 'best_hopes': 'We talk more'" in outcome.failures[0]
    outcome = play(_one(tmp_path, body + "    answers_subset: true\n"), ServiceDriver.in_memory(library))
    assert outcome.ok, outcome.failures
