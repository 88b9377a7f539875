"""`validate` warns where a flow's intro promises something its `consent:` block does not enforce."""

import subprocess
import sys
from pathlib import Path

from bot.audience import intro_warnings
from bot.engine.library import validate_paths
from bot.engine.loader import load_flow_text

ROOT = Path(__file__).resolve().parents[1]


def flow_text(intro: str, consent: str = "") -> str:
    return (
        "id: private-houses\nversion: 1\ntitle: Houses\naudience: child\n"
        f"intro: >-\n{intro}\n{consent}"
        "steps:\n  - id: house\n    ask: What is in your house?\n    type: text\n"
        "  - id: share_ok\n    ask: Can your worker show it to others?\n    type: yesno\n"
    )


def warnings(text: str) -> list[str]:
    flow, errors = load_flow_text(text, "houses.yaml")
    assert flow is not None, errors
    return [str(w) for w in intro_warnings(flow)]


def test_nobody_else_will_see_without_a_consent_block_is_flagged_where_it_is_written():
    text = flow_text("  Hello! Your worker will read what you write. Nobody else will\n"
                     "  see it unless you say that is OK at the end.")
    found = warnings(text)
    assert len(found) == 1, found
    # line 6 is the intro's first line; "Nobody else will" starts at column 48 and folds onto line 7
    assert found[0].startswith("houses.yaml:6:48: warning: the intro says \"nobody else will see\": "), found
    assert "no 'consent:' block" in found[0]


def test_the_same_intro_with_consent_enforced_is_quiet():
    consent = "consent:\n  step: share_ok\n  without_consent: practitioner\n"
    assert warnings(flow_text("  Your worker will read what you write. Nobody else will see it\n"
                              "  unless you say that is OK at the end.", consent)) == []


def test_a_supervisor_promised_before_consent_is_flagged():
    consent = "consent:\n  step: share_ok\n  without_consent: practitioner\n"
    found = warnings(flow_text("  Your answers will be seen by your worker and their supervisor.", consent))
    assert len(found) == 1 and found[0].startswith("houses.yaml:6:24: warning: the intro says \"seen by your worker and their supervisor\"") and "supervisor" in found[0], found


def test_the_worker_promised_when_nobody_reads_without_consent_is_flagged():
    consent = "consent:\n  step: share_ok\n  without_consent: nobody\n"
    found = warnings(flow_text("  Hello. Your worker will read what you write.", consent))
    assert len(found) == 1 and found[0].startswith("houses.yaml:6:15: warning: the intro says \"worker will read\"") and "without_consent: nobody" in found[0]


def test_stays_with_you_when_the_worker_reads_anyway_is_flagged():
    consent = "consent:\n  step: share_ok\n  without_consent: practitioner\n"
    found = warnings(flow_text("  What you write stays with you.", consent))
    assert len(found) == 1 and "without_consent: practitioner" in found[0], found


def test_the_shipped_flows_promise_nothing_their_consent_does_not_enforce():
    flows, errors = validate_paths([ROOT / "flows"])
    assert errors == [] and len(flows) >= 7
    assert [str(w) for f in flows for w in intro_warnings(f)] == []


def test_validate_prints_the_warning_and_still_passes(tmp_path):
    path = tmp_path / "houses.yaml"
    path.write_text(flow_text("  Nobody else will see it unless you say that is OK."), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "bot", "validate", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{path}:6:3: warning: the intro says \"nobody else will see\"") and lines[-1] == "1 flow(s) OK."
    assert "Traceback" not in proc.stdout + proc.stderr
