"""The detector's tiers (alert / review), softening by context, raising by a low score,
matching that never merges two real words, per-concern help lines, and the
``restorative-bot safeguarding check`` command (issue 12, items 1, 3, 6 and 8).

Rules here are given in small override files, so each test shows the mechanism on its own,
whatever the shipped lexicon holds. Coverage of the shipped lexicon is in
tests/test_safeguarding_detect.py and tests/test_safeguarding_tuning.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main
from bot.safeguarding import (
    ALERT,
    REVIEW,
    Concern,
    SafeguardingConfig,
    SafeguardingConfigError,
    default_config,
    detect,
    tier_of,
)
from bot.safeguarding.check import run

RULES = """\
concerns:
  physical_harm:
    phrases:
      - zorbled me
    review:
      - wibbled me|us
    soften:
      - going to zorbled|wibbled me|us when ... sees
      - zorbled me ... with ... spoon|ladle
  self_harm_suicide:
    review:
      - nothing keeps me going
      - floopy inside
  neglect:
    review:
      - no grumbles
contexts:
  lessons_and_media:
    within: 4
    phrases:
      - in pshe
      - a film|play|video about
  resolved_past:
    concerns: [neglect]
    phrases:
      - sober ... years now
raise:
  low_score:
    at_most: 1
    concerns: [self_harm_suicide]
"""


@pytest.fixture(scope="module")
def cfg() -> SafeguardingConfig:
    return SafeguardingConfig.from_text(RULES, "rules.yaml")


def _tiers(cfg: SafeguardingConfig, text: str, context=None) -> dict[str, str]:
    return {c.concern: c.tier for c in cfg.detect(text, context)}


# --------------------------------------------------------------------------------------
# Tiers
# --------------------------------------------------------------------------------------


def test_phrases_are_alert_and_review_phrases_are_review(cfg):
    assert _tiers(cfg, "he zorbled me") == {"physical_harm": ALERT}
    assert _tiers(cfg, "he wibbled me") == {"physical_harm": REVIEW}
    (c,) = cfg.detect("he wibbled me yesterday")
    assert c.matched == "wibbled me" and c.rule == "wibbled me|us" and c.tier == REVIEW


def test_a_concern_takes_its_highest_match_and_a_line_its_highest_concern(cfg):
    # review match first, alert match later in the same line: the concern is alert
    assert _tiers(cfg, "she wibbled us and then he zorbled me") == {"physical_harm": ALERT}
    (c,) = cfg.detect("she wibbled us and then he zorbled me")
    assert c.matched == "zorbled me"
    found = cfg.detect("he wibbled me and there are no grumbles at home")
    assert {c.concern: c.tier for c in found} == {"physical_harm": REVIEW, "neglect": REVIEW}
    assert tier_of(found) == REVIEW
    assert tier_of(cfg.detect("he zorbled me and no grumbles")) == ALERT
    assert tier_of([]) is None
    assert tier_of(cfg.detect("we had a lovely day")) is None


def test_tier_of_treats_a_concern_without_tier_as_alert():
    class Old:
        concern = "x"

    assert tier_of([Old()]) == ALERT
    assert tier_of([Concern("a", "A", "m", "r", REVIEW), Old()]) == ALERT
    assert tier_of([Concern("a", "A", "m", "r", REVIEW)]) == REVIEW


def test_soften_caps_a_match_inside_it_at_review(cfg):
    # an idiom that might not be one: review, not alert
    assert _tiers(cfg, "mum is going to zorbled me when she sees the scratch") == {"physical_harm": REVIEW}
    assert _tiers(cfg, "he zorbled me with a spoon") == {"physical_harm": REVIEW}
    # outside the soften phrase it is still alert
    assert _tiers(cfg, "he zorbled me with a spoon and then dad zorbled me") == {"physical_harm": ALERT}
    # soften caps at review: a review match inside it stays review
    assert _tiers(cfg, "mum is going to wibbled me when she sees the scratch") == {"physical_harm": REVIEW}


def test_a_context_lowers_matches_near_it_and_not_far_away(cfg):
    assert _tiers(cfg, "in PSHE he zorbled me") == {"physical_harm": REVIEW}
    assert _tiers(cfg, "in PSHE nothing keeps me going") == {}  # review lowered to nothing
    far = "in PSHE we did a quiz and then much later that day on the field he zorbled me"
    assert _tiers(cfg, far) == {"physical_harm": ALERT}
    assert _tiers(cfg, "we watched a film about how he zorbled me") == {"physical_harm": REVIEW}


def test_a_context_only_lowers_the_concerns_it_names(cfg):
    assert _tiers(cfg, "no grumbles but he has been sober two years now") == {}
    assert _tiers(cfg, "he zorbled me but he has been sober two years now") == {"physical_harm": ALERT}


WINDOW_RULES = """\
concerns:
  physical_harm:
    phrases:
      - zorbled me
    review:
      - grobbo ...6 wibbled
      - plinky ... snarf
contexts:
  scrapes:
    cap: review
    within: 4
    phrases:
      - in maths
  lessons_and_media:
    within: 4
    phrases:
      - in pshe
"""


def test_a_sized_gap_is_a_co_occurrence_window_and_plain_dots_keep_max_gap():
    cfg = SafeguardingConfig.from_text(WINDOW_RULES, "window.yaml")
    assert _tiers(cfg, "grobbo came in and then he wibbled") == {"physical_harm": REVIEW}  # 5 between
    assert _tiers(cfg, "grobbo came in and then later he wibbled") == {"physical_harm": REVIEW}  # 6
    assert _tiers(cfg, "grobbo came in and then much later he wibbled") == {}  # 7: outside
    assert _tiers(cfg, "plinky a b c snarf") == {"physical_harm": REVIEW}  # max_gap 3
    assert _tiers(cfg, "plinky a b c d snarf") == {}


def test_a_cap_review_context_keeps_a_match_but_quietly(cfg):
    cfg = SafeguardingConfig.from_text(WINDOW_RULES, "window.yaml")
    assert _tiers(cfg, "he zorbled me") == {"physical_harm": ALERT}
    assert _tiers(cfg, "in maths he zorbled me") == {"physical_harm": REVIEW}  # alert capped
    assert _tiers(cfg, "in maths grobbo wibbled") == {"physical_harm": REVIEW}  # review kept
    assert _tiers(cfg, "in pshe grobbo wibbled") == {}  # a dropping context still removes it
    far = "in maths we did sums and then much later that day on the field he zorbled me"
    assert _tiers(cfg, far) == {"physical_harm": ALERT}


@pytest.mark.parametrize("bad, says", [
    ("grobbo ...13 wibbled", "from 1 to 12"),
    ("grobbo ...0 wibbled", "from 1 to 12"),
    ("grobbo ...x wibbled", "sized gap"),
    ("grobbo ...4", "cannot start or end"),
])
def test_a_bad_sized_gap_is_refused_with_its_place(bad, says):
    text = f"concerns:\n  physical_harm:\n    review:\n      - {bad}\n"
    with pytest.raises(SafeguardingConfigError) as info:
        SafeguardingConfig.from_text(text, "bad.yaml")
    assert str(info.value).startswith("bad.yaml:4:") and says in str(info.value)


def test_a_context_cap_other_than_review_is_refused():
    text = "contexts:\n  x:\n    cap: alert\n    phrases:\n      - in maths\n"
    with pytest.raises(SafeguardingConfigError) as info:
        SafeguardingConfig.from_text(text, "bad.yaml")
    assert str(info.value).startswith("bad.yaml:3:") and "cap must be 'review'" in str(info.value)


def test_a_low_score_raises_review_to_alert_for_the_listed_concerns(cfg):
    # the override's own review phrase: the shipped lexicon and its review net also judge
    # "nothing keeps me going" (an alert with them), so the mechanism is shown on a word of
    # the override file, whose tier the net never changes
    text = "I feel floopy inside"
    assert _tiers(cfg, text) == {"self_harm_suicide": REVIEW}
    assert _tiers(cfg, text, {"score": 0}) == {"self_harm_suicide": ALERT}
    assert _tiers(cfg, text, {"score": 1}) == {"self_harm_suicide": ALERT}
    assert _tiers(cfg, text, {"score": "0"}) == {"self_harm_suicide": ALERT}
    assert _tiers(cfg, text, {"score": 2}) == {"self_harm_suicide": REVIEW}
    assert _tiers(cfg, text, {"score": None}) == {"self_harm_suicide": REVIEW}
    assert _tiers(cfg, text, {"score": "ten"}) == {"self_harm_suicide": REVIEW}
    assert _tiers(cfg, text, {"score": True}) == {"self_harm_suicide": REVIEW}
    assert _tiers(cfg, text, {}) == {"self_harm_suicide": REVIEW}
    # a concern not listed is not raised
    assert _tiers(cfg, "he wibbled me", {"score": 0}) == {"physical_harm": REVIEW}
    # a low score alone flags nothing
    assert cfg.detect("we had a nice day", {"score": 0}) == []


def test_module_detect_takes_a_context():
    assert detect("", {"score": 0}) == []
    assert detect("hello", {"score": 0}) == []


# --------------------------------------------------------------------------------------
# Matching never merges two real words
# --------------------------------------------------------------------------------------


def test_shooting_never_meets_shotting():
    cfg = SafeguardingConfig.from_text("concerns:\n  exploitation:\n    phrases:\n      - shotting\n")
    assert cfg.detect("we did archery and air rifle shooting at cubs") == []
    assert cfg.detect("shoting") == []
    assert [c.concern for c in cfg.detect("he has me shotting for him")] == ["exploitation"]
    # a stretched spelling is restored to the lexicon word it can only be
    assert [c.concern for c in cfg.detect("shottttting")] == ["exploitation"]


def test_the_shipped_lexicon_keeps_the_cubs_shooting_quiet():
    assert detect("we did archery and air rifle shooting at cubs") == []


@pytest.mark.parametrize("text", ["feeeel", "FEEEEEL"])
def test_stretched_words_are_restored(text):
    cfg = SafeguardingConfig.from_text("concerns:\n  neglect:\n    phrases:\n      - feel starved\n")
    assert [c.concern for c in cfg.detect(f"I {text} starved")] == ["neglect"]


# --------------------------------------------------------------------------------------
# YAML for tiers: errors as file:line:col
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, line, needle", [
    ("raise:\n  low_score: [1]\n", 2, "must be a mapping"),
    ("raise:\n  low_score:\n    at_most: 11\n", 3, "from 0 to 10"),
    ("raise:\n  low_score:\n    at_most: 1\n    concerns: [nope]\n", 4, "unknown concern 'nope'"),
    ("raise:\n  high_score: {}\n", 2, "unknown key 'high_score'"),
    ("contexts:\n  films:\n    within: 99\n    phrases: [a film]\n", 3, "from 0 to 40"),
    ("contexts:\n  films:\n    concerns: [nope]\n    phrases: [a film]\n", 3, "unknown concern 'nope'"),
    ("contexts:\n  films:\n    within: 3\n", 2, "has no phrases"),
    ("contexts:\n  Films:\n    phrases: [a film]\n", 2, "lower-case"),
    ("concerns:\n  neglect:\n    reviews:\n      - no tea\n", 3, "did you mean 'review'"),
    ("concerns:\n  neglect:\n    help:\n      teenager: hi\n", 4, "unknown key 'teenager'"),
    ("concerns:\n  neglect:\n    help:\n      child: 'This stays between us.'\n", 4, "never promise secrecy"),
    ("concerns:\n  neglect:\n    review_patterns:\n      - 'a.*b'\n", 4, "unbounded repeat"),
])
def test_bad_tier_yaml_is_reported_at_its_line(tmp_path: Path, text, line, needle):
    p = tmp_path / "over.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SafeguardingConfigError) as info:
        SafeguardingConfig.load(p)
    assert str(info.value).startswith(f"{p}:{line}:"), str(info.value)
    assert needle in str(info.value)


# --------------------------------------------------------------------------------------
# Help lines per concern
# --------------------------------------------------------------------------------------


def test_concern_help_lines_come_from_the_yaml():
    cfg = SafeguardingConfig.from_text("""\
concerns:
  neglect:
    help:
      family: "Local food bank: 0100 000 000."
""")
    assert cfg.concern_help("neglect", "family") == "Local food bank: 0100 000 000."
    assert cfg.concern_help("neglect", "child") is None
    assert cfg.help_lines(["neglect", "neglect"], "family") == ["Local food bank: 0100 000 000."]
    assert cfg.help_lines([Concern("neglect", "Neglect", "x", "y")], "family") == ["Local food bank: 0100 000 000."]
    with pytest.raises(ValueError, match="unknown audience"):
        cfg.concern_help("neglect", "teenager")


def test_domestic_and_emotional_abuse_have_their_own_help_lines():
    cfg = default_config()
    assert {"domestic_abuse", "emotional_abuse"} <= set(cfg.severity)
    assert "0808 2000 247" in cfg.concern_help("domestic_abuse", "family")
    assert "0800 1111" in cfg.concern_help("emotional_abuse", "child")
    assert "0808 800 5000" in cfg.concern_help("emotional_abuse", "family")


# --------------------------------------------------------------------------------------
# restorative-bot safeguarding check
# --------------------------------------------------------------------------------------


def _check(args: list[str], data: bytes):
    result = CliRunner().invoke(main, ["safeguarding", "check", *args], input=data)
    return result


def test_check_json_prints_one_object_per_line_in_order_empty_lines_too():
    lines = ["my dad hit me", "", "we went to the park", "I'm being forced to have sex and I'm only 12",
             "   ", "we did archery and air rifle shooting at cubs"]
    res = _check(["--json"], ("\n".join(lines) + "\n").encode())
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [o["text"] for o in out] == lines
    assert all(set(o) == {"text", "tier", "concerns", "matched"} for o in out)
    assert out[0] == {"text": "my dad hit me", "tier": "alert", "concerns": ["physical_harm"], "matched": ["hit me"]}
    assert out[1] == {"text": "", "tier": None, "concerns": [], "matched": []}
    assert out[2]["tier"] is None
    assert out[3]["tier"] == "alert" and out[3]["concerns"][0] == "sexual_abuse"
    assert out[4] == {"text": "   ", "tier": None, "concerns": [], "matched": []}
    assert out[5]["tier"] is None


def test_check_json_handles_crlf_bad_bytes_and_no_final_newline():
    res = _check(["--json"], b"one\r\n\xff\xfe two\nthree")
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [o["text"] for o in out] == ["one", "\ufffd\ufffd two", "three"]


def test_check_for_people_shows_tier_concern_and_words():
    res = _check([], b"my dad hit me\nfine thanks\n")
    assert res.exit_code == 0
    first, second = res.stdout.splitlines()
    assert first.startswith("alert") and 'physical_harm (alert) "hit me"' in first and first.endswith("my dad hit me")
    assert second.startswith("-") and second.endswith("fine thanks")


def test_check_with_a_local_lexicon_and_a_score(tmp_path: Path):
    local = tmp_path / "local.yaml"
    local.write_text(RULES, encoding="utf-8")
    out = json.loads(_check(["--json", "--lexicon", str(local)], b"he zorbled me\n").stdout)
    assert out["tier"] == "alert" and out["concerns"] == ["physical_harm"]
    plain = json.loads(_check(["--json", "--lexicon", str(local)], b"I feel floopy inside\n").stdout)
    low = json.loads(_check(["--json", "--lexicon", str(local), "--score", "0"], b"I feel floopy inside\n").stdout)
    assert (plain["tier"], low["tier"]) == ("review", "alert")


def test_check_with_a_bad_lexicon_says_where_and_fails(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("concerns:\n  neglect:\n    phrase:\n      - no tea\n", encoding="utf-8")
    res = _check(["--json", "--lexicon", str(bad)], b"hello\n")
    assert res.exit_code == 1
    assert f"{bad}:3:5:" in res.stderr and "Traceback" not in res.output + res.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))),
                max_size=12))
def test_check_json_never_crashes_and_keeps_one_object_per_line(chunks):
    data = b"\n".join(c.replace(b"\n", b" ") for c in chunks)
    expected = data.split(b"\n") if data else []
    if data.endswith(b"\n"):
        expected = expected[:-1]
    out = io.BytesIO()
    n = run(default_config(), io.BytesIO(data), out, as_json=True)
    lines = out.getvalue().decode("ascii").split("\n")
    assert lines[-1] == ""
    objs = [json.loads(x) for x in lines[:-1]]
    assert n == len(objs) == len(expected)
    for o, raw in zip(objs, expected):
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        assert o["text"] == raw.decode("utf-8", errors="replace")
        assert o["tier"] in (None, "alert", "review")
        assert len(o["concerns"]) == len(o["matched"])
        assert (o["tier"] is None) == (o["concerns"] == [])


def test_the_installed_command_runs_as_a_program():
    exe = Path(sys.executable).with_name("restorative-bot")
    proc = subprocess.run([str(exe), "safeguarding", "check", "--json"], input=b"he hit me\n\n",
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["tier"] for o in out] == ["alert", None]
