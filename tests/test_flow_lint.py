"""The loader and linter: every error names file:line:col and says how to fix it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.engine.library import validate_paths
from bot.engine.loader import load_flow_file, load_flow_text

BROKEN = Path(__file__).parent / "broken_flows"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")

# (file, line, words in the message): one entry per error kind the linter must catch.
EXPECTED = [
    ("unknown_keys.yaml", 4, "unknown key 'audiance'; did you mean 'audience'?"),
    ("unknown_keys.yaml", 8, "unknown key 'optinal'; did you mean 'optional'?"),
    ("unknown_keys.yaml", 11, "unknown step type 'txt'; did you mean 'text'?"),
    ("wrong_types.yaml", 2, "'version' must be a whole number"),
    ("wrong_types.yaml", 9, "'min' must be a whole number"),
    ("wrong_types.yaml", 11, "'optional' must be true or false"),
    ("wrong_types.yaml", 15, "'options' must be a list"),
    ("duplicate_ids.yaml", 8, "step id 'what_happened' is used twice (first at line 6)"),
    ("bad_goto.yaml", 11, "'goto: copeing' names no step in this flow; did you mean 'coping'?"),
    ("unreachable.yaml", 9, "step 'orphan' can never be reached"),
    ("no_default.yaml", 12, "add a default"),
    ("template_errors.yaml", 10, "condition error"),
    ("template_errors.yaml", 16, "template error"),
    ("template_errors.yaml", 18, "'__mro__' is not allowed"),
    ("answer_refs.yaml", 19, "uses answers.not_lower, but on some path 'not_lower' has not been asked yet"),
    ("answer_refs.yaml", 19, "there is no step 'nonexistent'"),
    ("tabs.yaml", 6, "tab character"),
    ("bad_indent.yaml", 8, "indentation"),
    ("not_utf8.yaml", 3, "not UTF-8"),
    ("empty.yaml", 1, "the file is empty"),
    ("top_level_list.yaml", 1, "must be a mapping"),
    ("colon_in_text.yaml", 7, "put quotes around text"),
]


def test_every_error_kind_is_reported_with_its_position():
    flows, errors = validate_paths([BROKEN])
    assert flows == []
    got = [(Path(e.file).name, e.line, e.message) for e in errors]
    for name, line, words in EXPECTED:
        assert any(n == name and ln == line and words in m for n, ln, m in got), (
            f"missing {name}:{line}: {words}\n got:\n" + "\n".join(map(str, errors)))
    # every broken file yields at least one error, and no error spans several lines
    assert {n for n, _, _ in got} == {p.name for p in BROKEN.glob("*.yaml")}
    assert all("\n" not in m for _, _, m in got)


def test_all_errors_in_a_file_are_reported_in_one_run():
    _, errors = load_flow_file(BROKEN / "unknown_keys.yaml")
    assert len(errors) >= 3


def test_validate_cli_prints_one_line_per_error_and_exits_1():
    proc = subprocess.run([sys.executable, "-m", "bot", "validate", str(BROKEN)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= len(EXPECTED)
    assert all(LINE.match(line) for line in lines), lines
    assert "Traceback" not in proc.stdout + proc.stderr


def test_validate_cli_passes_on_the_shipped_library():
    proc = subprocess.run([sys.executable, "-m", "bot", "validate", "flows/"], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "huge.yaml"
    with big.open("wb") as f:
        f.write(b"id: huge\nsteps:\n")
        f.seek(50 * 1024 * 1024)
        f.write(b"\n")
    flow, errors = load_flow_file(big)
    assert flow is None
    assert "MB" in errors[0].message and "must be under 1 MB" in errors[0].message


@pytest.mark.parametrize("text, words", [
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps: []\n", "'steps' must be a list"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - just text\n", "each step must be a mapping"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: s\n    say: hi\n", "the flow asks nothing"),
    ("id: X Y\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n", "flow id 'X Y' must start"),
    ("id: x\nversion: 1\ntitle: T\naudience: kids\nsteps:\n  - id: a\n    ask: q\n", "audience 'kids' is not known"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nid: y\nsteps:\n  - id: a\n    ask: q\n", "appears twice"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n    type: scale\n    min: 5\n    max: 1\n",
     "'max' (1) must be greater than 'min' (5)"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n    pattern: '(['\n",
     "'pattern' is not a valid regular expression"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n    type: multi\n    options: [a, b]\n    max_choices: 5\n",
     "'max_choices' must be between 1 and the number of options"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q {{ answer }}\n", "uses 'answer'"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    type: choice\n    ask: q\n    options: [a, a]\n",
     "option 'a' appears twice"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n    errors: {min_lenght: too short}\n",
     "unknown error rule 'min_lenght'; did you mean 'min_length'?"),
    ("id: x\nversion: 1\ntitle: T\naudience: family\nsteps:\n  - id: a\n    ask: q\n    next:\n      - goto: end\n      - if: 'true'\n        goto: a\n",
     "without 'if' must be the last one"),
])
def test_more_error_kinds(text, words):
    flow, errors = load_flow_text(text, "f.yaml")
    assert flow is None
    assert any(words in e.message for e in errors), [str(e) for e in errors]
    assert all(str(e).startswith("f.yaml:") for e in errors)
