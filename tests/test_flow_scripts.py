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
    assert "expected the bot to say\n      'What puts you at 5 and not lower?'" in proc.stdout
    assert "What puts you at 6 and not lower?" in proc.stdout
    assert "0 passed, 1 failed" in proc.stdout

    script.write_text(script.read_text().replace("bot: What puts you at 5 and not lower?", "bot: '*What puts you at 6 and not lower?'"))
    proc = subprocess.run([sys.executable, "-m", "bot", "test-flows", str(script)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 1
    assert "answer 'best_hopes' differs" in proc.stdout
    assert "-'We talk less'" in proc.stdout and "+'We talk more'" in proc.stdout
