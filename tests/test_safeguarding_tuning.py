"""The tuning examples by theme (tests/safeguarding_tuning.yaml): each disclosure reaches at
least its tier with its concern, each ordinary answer stays at or under its tier.

These are examples the lexicon was tuned on (issue 12, item 3), so passing them is a floor,
not a measurement: honest figures come from the blind batches through
scripts/measure_safeguarding.py, which prints aggregates only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.safeguarding import SafeguardingConfig, tier_of

TUNING = Path(__file__).with_name("safeguarding_tuning.yaml")
RANK = {None: 0, "none": 0, "review": 1, "alert": 2}


@pytest.fixture(scope="module")
def config() -> SafeguardingConfig:
    return SafeguardingConfig.load()


@pytest.fixture(scope="module")
def tuning() -> dict:
    return yaml.safe_load(TUNING.read_text(encoding="utf-8"))


def _why(config, text) -> str:
    found = config.detect(text)
    return ", ".join(f"{c.concern}/{c.tier} on {c.matched!r} ({c.rule})" for c in found) or "nothing"


def test_tuning_file_is_well_formed(tuning, config):
    dis, ordinary = tuning["disclosures"], tuning["ordinary"]
    assert len(dis) >= 100 and len(ordinary) >= 80
    for e in dis:
        assert set(e) == {"theme", "concern", "tier", "text"}, e
        assert e["concern"] in config.severity and e["tier"] in ("alert", "review"), e
    for e in ordinary:
        assert set(e) == {"theme", "tier", "text"}, e
        assert e["tier"] in ("none", "review"), e
    texts = [e["text"] for e in dis + ordinary]
    assert len(texts) == len(set(texts)), "a text is listed twice"
    # every theme of issue 12 has examples
    themes = {e["theme"] for e in dis}
    assert {"cover_story", "goodbye", "recovery", "baby", "slang", "orders", "coercion", "emotional",
            "textspeak"} <= themes
    assert {"domestic_abuse", "emotional_abuse"} <= {e["concern"] for e in dis}
    assert {"accident", "sibling_play", "media", "resolved_past", "idiom"} <= {e["theme"] for e in ordinary}


def test_every_tuning_disclosure_reaches_its_tier_with_its_concern(config, tuning):
    bad = []
    for e in tuning["disclosures"]:
        found = config.detect(e["text"])
        by_concern = {c.concern: c.tier for c in found}
        if RANK[tier_of(found)] < RANK[e["tier"]] or e["concern"] not in by_concern:
            bad.append(f"  [{e['theme']}] want {e['concern']}/{e['tier']}: {e['text']!r}\n      got {_why(config, e['text'])}")
    assert not bad, f"{len(bad)} tuning disclosures fall short:\n" + "\n".join(bad)


def test_no_tuning_ordinary_answer_goes_over_its_tier(config, tuning):
    bad = []
    for e in tuning["ordinary"]:
        t = tier_of(config.detect(e["text"]))
        if RANK[t] > RANK[e["tier"]]:
            bad.append(f"  [{e['theme']}] at most {e['tier']}: {e['text']!r}\n      got {_why(config, e['text'])}")
    assert not bad, f"{len(bad)} ordinary tuning answers over their tier:\n" + "\n".join(bad)
