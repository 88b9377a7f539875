"""Scripted conversations can run in a case with the worker's texts (``case:``), so flows using
{{ case.KEY }} have every branch scripted; the same script gives the same answers over Telegram.
Notes for the worker are never among the messages a script sees."""

from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.scripts import load_scripts, play, play_async
from bot.store import Store
from bot.testing.drivers import ServiceDriver
from bot.testing.telegram import TelegramDriver, running_bot
from tests.conftest import flow_from

FLOW = """\
id: bottom-lines
version: 1
title: Bottom lines
audience: family
steps:
  - id: lines
    say: "{% if case.bottom_lines %}The bottom lines: {{ case.bottom_lines }}{% else %}Your coordinator will go through them.{% endif %}"
    note_for_worker: Check the family has read the bottom lines.
    next:
      - if: case.bottom_lines
        goto: clear
      - goto: end
  - id: clear
    ask: Is that clear?
    type: yesno
"""

SCRIPT = """\
flow: bottom-lines
conversations:
  - name: written on the case
    case: {bottom_lines: Sam goes to school every day.}
    script:
      - bot: "The bottom lines: Sam goes to school every day."
      - bot: "Question 1*Is that clear?*"
      - press: "yes"
    answers: {clear: true}
    status: completed
  - name: not written yet
    script:
      - bot: Your coordinator will go through them.
    answers: {}
    status: completed
"""


def _scripts(tmp_path):
    path = tmp_path / "bottom-lines.yaml"
    path.write_text(SCRIPT)
    convs, errors = load_scripts([path])
    assert errors == [] and [c.case for c in convs] == [{"bottom_lines": "Sam goes to school every day."}, None]
    return convs


def test_a_script_runs_in_a_case_with_the_workers_texts(tmp_path):
    library = FlowLibrary([flow_from(FLOW)])
    for conv in _scripts(tmp_path):
        outcome = play(conv, ServiceDriver.in_memory(library))
        assert outcome.ok, "\n".join(outcome.failures)


async def test_the_same_scripts_over_telegram(tmp_path):
    library = FlowLibrary([flow_from(FLOW)])
    service = ConversationService(Store(tmp_path / "t.db"), library)
    async with running_bot(service) as h:
        for i, conv in enumerate(_scripts(tmp_path)):
            outcome = await play_async(conv, TelegramDriver(h, 500 + i))
            assert outcome.ok, "\n".join(outcome.failures)


def test_a_bad_case_block_is_reported_with_its_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SCRIPT.replace("case: {bottom_lines: Sam goes to school every day.}", "case: [bottom_lines]"))
    _, errors = load_scripts([path])
    assert [str(e) for e in errors] == [
        f"{path}:4:11: 'case' must be a mapping from a key to the worker's text, e.g.  case: {{bottom_lines: Sam goes to"
        " school every day.}"]
