"""Stale flow translations (issue 19): when the English of a translated flow text changes,
`validate` names the file, line and column of each translation written against the old
English, until `restorative-bot i18n lock` records that they have been re-checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bot.engine.library import DEFAULT_FLOWS
from bot.engine.yamlpos import parse_yaml
from bot.i18n import lock

ROOT = Path(__file__).resolve().parents[1]
SCALING = DEFAULT_FLOWS / "solution-focused" / "scaling-checkin.yaml"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "bot", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def line_of(text: str, needle: str) -> int:
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


def stale_lines(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if "the English changed" in line]


def test_a_changed_english_string_is_named_at_each_translation_until_it_is_locked_again(tmp_path):
    flows = tmp_path / "flows"
    (flows / "solution-focused").mkdir(parents=True)
    flow = flows / "solution-focused" / "scaling-checkin.yaml"
    shutil.copy(SCALING, flow)
    locked = cli("i18n", "lock", flows)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    assert (flows / "translations.lock").exists()
    clean = cli("validate", flows)
    assert clean.returncode == 0 and stale_lines(clean) == [], clean.stdout + clean.stderr

    text = flow.read_text(encoding="utf-8")
    flow.write_text(text.replace('en: "What keeps you going?"', 'en: "What has kept you going?"'), encoding="utf-8")
    cy = line_of(text, "cy: \"Beth sy'n eich cadw chi i fynd?\"")
    pl = line_of(text, 'pl: "Co daje Ci siłę, żeby iść dalej?"')
    ur = line_of(text, 'ur: "کون سی چیز آپ کو آگے بڑھنے کی ہمت دیتی ہے؟"')
    proc = cli("validate", flows)
    assert proc.returncode == 1
    assert stale_lines(proc) == [
        f"{flow}:{cy}:11: the English changed since this Welsh text was written; re-check it, then run  "
        f"restorative-bot i18n lock {flow} --lang cy",
        f"{flow}:{pl}:11: the English changed since this Polish text was written; re-check it, then run  "
        f"restorative-bot i18n lock {flow} --lang pl",
        f"{flow}:{ur}:11: the English changed since this Urdu text was written; re-check it, then run  "
        f"restorative-bot i18n lock {flow} --lang ur",
    ]

    # The Welsh has been re-checked: only the Welsh is locked again; Polish and Urdu stay flagged.
    assert cli("i18n", "lock", flow, "--lang", "cy").returncode == 0
    assert [line.split(":")[1] for line in stale_lines(cli("validate", flows))] == [str(pl), str(ur)]
    assert cli("i18n", "lock", flow).returncode == 0
    relocked = cli("validate", flows)
    assert relocked.returncode == 0 and stale_lines(relocked) == [], relocked.stdout


def test_moving_a_step_or_rewrapping_its_english_is_not_a_change(tmp_path):
    flow = tmp_path / "scaling-checkin.yaml"
    text = SCALING.read_text(encoding="utf-8")
    flow.write_text(text, encoding="utf-8")
    written, errors = lock.lock([flow])
    assert errors == [] and written == [tmp_path / "translations.lock"]
    # the same English as a folded block, and the anything_else step moved before good_enough
    start = text.index("  - id: anything_else")
    block = text[start: text.index("  - id: thanks")]
    moved = text[:start] + text[text.index("  - id: thanks"):]
    moved = moved.replace("  - id: good_enough", block + "  - id: good_enough")
    moved = moved.replace('en: "What keeps you going?"', "en: >-\n        What keeps\n        you going?")
    flow.write_text(moved, encoding="utf-8")
    assert lock.check([flow]) == ([], [])


def test_translations_never_locked_are_one_warning_per_file_and_not_an_error(tmp_path):
    flow = tmp_path / "scaling-checkin.yaml"
    shutil.copy(SCALING, flow)
    errors, warnings = lock.check([flow])
    count = sum(len(t.tags()) for t in lock.texts(parse_yaml(SCALING.read_text(encoding="utf-8"), "x")[0]))
    assert errors == [] and len(warnings) == 1
    assert warnings[0].message == (f"warning: {count} translation(s) are not in translations.lock yet, so a later change "
                                   f"to their English cannot be flagged; run  restorative-bot i18n lock {flow}")


def test_texts_are_named_by_step_and_option_id():
    data, _ = parse_yaml((DEFAULT_FLOWS / "fgc" / "pre-conference.yaml").read_text(encoding="utf-8"), "x")
    keys = {t.key for t in lock.texts(data)}
    assert {"title", "intro", "stop_message", "steps.who_answering.ask", "steps.who_answering.errors.min_length",
            "steps.anyone_not_come.options.no.label", "steps.conference_date.remind.text"} <= keys
    assert not any(k.startswith("languages") for k in keys)


def test_the_shipped_flows_have_no_stale_translation():
    errors, _warnings = lock.check(lock.files_in([DEFAULT_FLOWS]))
    assert errors == []
    # and the lock covers every translated flow shipped with it
    assert (DEFAULT_FLOWS / "translations.lock").exists()
