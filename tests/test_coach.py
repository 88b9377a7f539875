"""The rehearsal coach: labels, suggestions, the `coach --json` command, rules files."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.coach import LABELS, MISTAKES, Coach, RulesError, load_rules
from bot.coach.commands import coach_stream

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "coach"


@pytest.fixture(scope="module")
def c():
    return Coach()


@pytest.mark.parametrize(
    "text, labels, suggestion",
    [
        ("Why did you hit Josh?", ("why",), "What happened with Josh?"),
        ("Did you feel bad?", ("closed",), "What have you thought about since?"),
        ("Can you tell me why you lost your temper with your mum?", ("why", "blaming"), "What happened with your mum?"),
        ("You were angry, weren't you?", ("leading",), "How are you feeling about it now?"),
        ("you need to apologise to Josh", ("lecture",), "What do you think needs to happen to make things right with Josh?"),
        ("What happened when you kicked off at lunch?", ("blaming", "open", "rp_what_happened"), "What happened at lunch?"),
        ("What happened and how did you feel?", ("multiple", "open", "rp_what_happened", "rp_feelings"), "What happened?"),
        ("What happened?", ("open", "rp_what_happened"), None),
        ("whats been better since we last met", ("open", "sf_better"), None),
        ("Where would your nan put you on the scale?", ("open", "sf_relationship"), None),
        ("", (), None),
    ],
)
def test_issue_examples(c, text, labels, suggestion):
    result = c.coach(text)
    assert (result.labels, result.suggestion) == (labels, suggestion)


def _corpus(name):
    return yaml.safe_load((CORPORA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["tuning.yaml", "heldout.yaml"])
def test_every_suggestion_is_itself_an_open_question_without_mistakes(c, name):
    weak = 0
    for item in _corpus(name):
        result = c.coach(item["text"])
        assert (result.suggestion is None) == (not result.mistakes), item["text"]
        if result.suggestion:
            weak += 1
            again = c.coach(result.suggestion)
            assert again.mistakes == () and again.is_open, (item["text"], result.suggestion, again.labels)
    assert weak > 50


def _measure():
    spec = importlib.util.spec_from_file_location("measure_coach", ROOT / "scripts" / "measure_coach.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heldout_part_meets_the_targets(c):
    m = _measure()
    items = _corpus("heldout.yaml")
    result = m.score([set(i["labels"]) for i in items], [set(c.coach(i["text"]).labels) for i in items])
    assert result["macro_f1_mistakes"] >= 0.85
    assert result["macro_f1_practice"] >= 0.80


def test_command_prints_one_json_object_per_input_line_in_order():
    lines = [
        "Why did you hit Josh?",
        "",
        "what happend at lunch\r",
        "two\u2028lines for Python but one for the command?",
        "\x00\x1b[31m odd \ufeff bytes",
        "Did you feel bad?",
    ]
    data = ("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf-8\n"
    out = subprocess.run([sys.executable, "-m", "bot", "coach", "--json"], input=data, capture_output=True, check=True, cwd=ROOT)
    rows = [json.loads(line) for line in out.stdout.decode().split("\n") if line]
    assert len(rows) == len(lines) + 1
    assert [r["text"] for r in rows[:6]] == [l.removesuffix("\r") for l in lines]
    assert rows[6]["text"] == "\ufffd\ufffd not utf-8"
    assert all(set(r) == {"text", "labels", "suggestion"} for r in rows)
    assert rows[0] == {"text": "Why did you hit Josh?", "labels": ["why"], "suggestion": "What happened with Josh?"}
    assert rows[1] == {"text": "", "labels": [], "suggestion": None}
    assert rows[2] == {"text": "what happend at lunch", "labels": ["open", "rp_what_happened"], "suggestion": None}
    assert rows[5]["labels"] == ["closed"]


def test_command_without_json_shows_labels_and_a_better_wording():
    out = subprocess.run([sys.executable, "-m", "bot", "coach"], input=b"Why did you hit Josh?\n", capture_output=True, check=True, cwd=ROOT)
    assert out.stdout.decode() == "Why did you hit Josh?\n  labels: why\n  try: What happened with Josh?\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=8))
def test_never_crashes_and_keeps_one_answer_per_line(lines):
    data = "\n".join(lines).encode("utf-8", errors="surrogatepass") if lines else b""
    out = io.StringIO()
    coach_stream(io.BytesIO(data), out.write, True)
    rows = [json.loads(line) for line in out.getvalue().split("\n") if line]
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert len(rows) == len(expected)
    for row in rows:
        assert set(row["labels"]) <= set(LABELS)
        assert (row["suggestion"] is None) == (not set(row["labels"]) & set(MISTAKES))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_never_crashes_on_bytes(data):
    out = io.StringIO()
    coach_stream(io.BytesIO(data), out.write, True)
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert len([line for line in out.getvalue().split("\n") if line]) == len(expected)


def test_a_trainer_can_extend_the_word_lists(tmp_path):
    extra = tmp_path / "ours.yaml"
    extra.write_text("version: 1\nmistakes:\n  blaming:\n    phrases: [went feral]\n", encoding="utf-8")
    assert "blaming" not in Coach().coach("What happened when you went feral?").labels
    assert Coach(load_rules(extra)).coach("What happened when you went feral?").labels == ("blaming", "open", "rp_what_happened")
    out = subprocess.run([sys.executable, "-m", "bot", "coach", "--json", "--rules", str(extra)], input=b"why did you go feral\n",
                         capture_output=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout)["labels"] == ["why"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 1\nmistakes:\n  blaming:\n    patterns: ['(kicked']\n",
         "{f}:4:16: this pattern is not a valid regular expression (missing ), unterminated subpattern at position 0); or write it as a phrase instead"),
        ("version: 1\npractice:\n  - label: rp_hapened\n    phrases: [x]\n",
         "{f}:3:12: practice label 'rp_hapened' is not known; use one of: rp_what_happened, rp_thinking, rp_feelings, rp_affected, rp_repair, sf_best_hopes, sf_scaling, sf_exception, sf_coping, sf_miracle, sf_relationship, sf_better"),
        ("version: 1\nmistakes:\n  blaming:\n    phrase: [kicked off]\n",
         "{f}:4:5: unknown key 'phrase' in mistakes.blaming; did you mean 'phrases'?"),
        ("version: 1\nmistakes:\n  closed:\n    phrases: [did you]\n",
         "{f}:3:3: 'closed' cannot have word lists here; closed and multiple come from the question's form; use one of: why, leading, blaming, lecture"),
        ("version: 1\nmistakes:\n\tblaming: []\n",
         "{f}:3:1: a tab character is used for indentation; YAML needs spaces (use two spaces per level)"),
        ("version: 1\nsuggestions:\n  - say: 'What happened {to}?'\n",
         "{f}:3:10: unknown placeholder {{to}}; use {{with}} or {{person}}"),
        ("version: 2\n", "{f}:1:10: version must be 1 (write 'version: 1' at the top)"),
        ("- just a list\n", "{f}:1:1: coach rules must be a mapping (keys such as version, mistakes, practice), not a list or text"),
    ],
)
def test_bad_rules_files_say_where_and_how_to_fix(tmp_path, text, expected):
    bad = tmp_path / "rules.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as exc:
        load_rules(bad)
    assert [str(e) for e in exc.value.errors] == [expected.format(f=bad)]


def test_bad_rules_file_through_the_command_is_an_error_not_a_traceback(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nmistakes:\n  why:\n    starts: [why, {a: b}]\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bot", "coach", "--rules", str(bad)], input=b"why\n", capture_output=True, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [
        f"{bad}:4:19: each entry of mistakes.why.starts must be a word or phrase; put quotes around numbers and around text with ': ' or braces",
        "restorative-bot: the coach rules have errors; fix them (see above)",
    ]
    assert out.stdout == b""


def test_a_very_long_line_is_echoed_whole_and_read_quickly(c):
    text = "What happened? " + "and then what " * 20000
    result = c.coach(text)
    assert result.text == text and "open" in result.labels
