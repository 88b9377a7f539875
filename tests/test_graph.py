"""Drawing flows: mermaid always; PNG/SVG through Graphviz, or a clear message naming it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, env=None):
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=False, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_mermaid_has_every_step_and_branch_conditions(library):
    from bot.engine.graph import mermaid

    for flow in library:
        text = mermaid(flow)
        assert text.startswith("stateDiagram-v2")
        for step in flow.steps:
            assert f" as {step.id}" in text
        for step in flow.steps:
            for b in step.next:
                if b.condition:
                    assert f": {b.condition.replace(':', ' ')}" in text
    out = run(["graph", "scaling-checkin"])
    assert out.returncode == 0 and b"scale_now --> coping_intro : answer <= 1" in out.stdout


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot is not installed here (apt-get install graphviz): the PNG is not checked")
def test_png(tmp_path):
    target = tmp_path / "flow.png"
    out = run(["graph", "scaling-checkin", "--format", "png", "--out", str(target)])
    assert out.returncode == 0 and target.read_bytes().startswith(b"\x89PNG")


def test_without_graphviz_a_clear_message(tmp_path):
    no_dot = tmp_path / "bin"
    no_dot.mkdir()
    out = run(["graph", "scaling-checkin", "--format", "svg"], env={"PATH": str(no_dot)})
    assert out.returncode == 2 and b"Graphviz" in out.stderr and b"apt-get install graphviz" in out.stderr
    assert b"Traceback" not in out.stderr
