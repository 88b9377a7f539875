"""The blind safeguarding batches are frozen, well formed, and measured without leaking them.

tests/safeguarding_blind/batch_*.yaml were written before any tuning, without reading the
lexicon (issue 12, item 7). They are a measurement: tuning the lexicon on them would make the
figures worthless, so each file's sha256 is pinned here. If you really must change a batch
(never to make a figure better), write a NEW batch instead.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BLIND = ROOT / "tests" / "safeguarding_blind"

PINNED = {
    "batch_a.yaml": "abb76df5e696b61b0f3400d63bf9fc47fea73b6b206769eb878c70e7e84087be",
    "batch_b.yaml": "4091fbe5c8502dcd79754391294b1739bcbade771b87f83cda8808680aacb3e4",
    "batch_c.yaml": "7fda5c1c038625e744c7a225f1e71fbc6fd65255f10be14504edf3d1b3c4c2fd",
    "batch_d.yaml": "57404eaa91dd99dc541e26f15fd1d44d4acc597c360342d6f6ce8d33fe884872",
    # E and F: written by the sg-blind helper on 2026-11-30 before the fourth tuning round
    # (sg-matcher, issue 12 items 1 and 3), which must never open them.
    "batch_e.yaml": "5d00eb910d24dd196c003f53aaa9ab440a5f534a8a93363096fbaef76468af68",
    "batch_f.yaml": "2b5f4f27584d90fd72ebbb14993140c60d3fdf8e2b5074174714f5bea19f2326",
    # G: written by the sg-matcher helper before its own tuning round (it tunes afterwards,
    # so G is weaker evidence than E and F; see the README).
    "batch_g.yaml": "fb36b882243e355ec768a37930d1f56dfbdf7bde86b431c1096b5747f23a04c4",
    # H and I: written by the sg-blind2 helper on 2026-11-30 before the fifth tuning round
    # (sg-alert, issue 12 alert tier), which must never open, print or measure them.
    "batch_h.yaml": "93fa1a33135a6c3a6a3a03295f158ea984448eefdf8204686300fbd997d15836",
    "batch_i.yaml": "f2c3c3de3ce0495101d4860b488449e198a24fef7e4390428ac27210a36eced4",
    # J and K: written by the sg-blind3 helper on 2026-11-30 before the sixth tuning round
    # (sg-tune, issue 12), which must never open, print or measure them.
    "batch_j.yaml": "bc4b286f53f36f83976d196061bcf9b7920979f4cc8090eadd692db5fb0ee022",
    "batch_k.yaml": "2747f8b8f8ccc4c0aa21fafde5a71a22bbd7c005a6d0481195962912f6cef863",
    # L and M: written by the sg-blind4 helper on 2026-11-30 before the seventh tuning round
    # (sg-tune2, issue 12), which must never open, print or measure them.
    "batch_l.yaml": "ff72d73976dfd6fd371e6d6562c2095e4a48d31b6e735cc35a56b708d851a731",
    "batch_m.yaml": "461d2996f22fed84d9e9d9a45ed55534d08861d9ff66d54ba6ff3499d06c5610",
    # N and O: written by the sg-blind5 helper on 2026-11-30 before the eighth tuning round
    # (sg-tune3, issue 12), which must never open, print or measure them.
    "batch_n.yaml": "6871b1f35daab0ee5c94f6dd68bb79940d60d4980969723a850bd74bd6329a41",
    "batch_o.yaml": "dfe3240c83bd37f3130510e16ab68e163c1058e70049dc5ab448ac2a1817d2a2",
    # P and Q: written by the sg-blind6 helper on 2026-11-30 before the ninth tuning round
    # (sg-tune4, issue 12), which must never open, print or measure them.
    "batch_p.yaml": "e712aecc6097af4bac55dceb8e99e14980094c22cfb08ea0d4faf6f43d948bf9",
    "batch_q.yaml": "696d39cf9c85ce71ab6fa2b35a107a0ecb013f73a3459e2d029ae31e03597aae",
    # R and S: written by the sg-blind7 helper on 2026-12-01 before the tenth tuning round
    # (sg-tune5, issue 12), which must never open, print or measure them.
    "batch_r.yaml": "71aed92e940275e3d1402bdbec2916ea7baaffe93e614743c460a7b36facf6d8",
    "batch_s.yaml": "35f79bc5b70feb435260d691d5a73fb13e63a59b3af846c97b0040b52c59bb6b",
    # T and U: written by the sg-blind8 helper on 2026-12-01 before the eleventh tuning round
    # (issue 12), which must never open, print or measure them.
    "batch_t.yaml": "0209d1bafc92aff861b16870cd7d498a44b643cc1d39aeb7759ba5a1246e7019",
    "batch_u.yaml": "f2573bcfb33bd6c84b8c7ebea90b013bc6f9d017ffa47219f5275f1f2ebe1edb",
    # V and W: written by the sg-blind9 helper on 2026-12-01 before the twelfth tuning round
    # (issue 12), which must never open, print or measure them.
    "batch_v.yaml": "e1394242e70fc6ef244500a0fec07db8f8cb2ac889470f110fd3b1551fd43283",
    "batch_w.yaml": "fa84cd77b838ae09e5fbe6b77285721020783f0b391bc753bb9ffa5d604896d8",
}
# Who wrote the batches that name their writer in a fixed form, and the main commit they
# were written at (before the tuning round they measure).
WRITERS = {
    "batch_e.yaml": ("sg-blind helper", "d883a1b"),
    "batch_f.yaml": ("sg-blind helper", "d883a1b"),
    "batch_h.yaml": ("sg-blind2 helper", "6dfabd4"),
    "batch_i.yaml": ("sg-blind2 helper", "6dfabd4"),
    "batch_j.yaml": ("sg-blind3 helper", "0b0ae84"),
    "batch_k.yaml": ("sg-blind3 helper", "0b0ae84"),
    "batch_l.yaml": ("sg-blind4 helper", "d1c95c0"),
    "batch_m.yaml": ("sg-blind4 helper", "d1c95c0"),
    "batch_n.yaml": ("sg-blind5 helper", "76ef79e"),
    "batch_o.yaml": ("sg-blind5 helper", "76ef79e"),
    "batch_p.yaml": ("sg-blind6 helper", "9fa4077"),
    "batch_q.yaml": ("sg-blind6 helper", "9fa4077"),
    "batch_r.yaml": ("sg-blind7 helper", "aa75df4"),
    "batch_s.yaml": ("sg-blind7 helper", "aa75df4"),
    "batch_t.yaml": ("sg-blind8 helper", "2f6b85b"),
    "batch_u.yaml": ("sg-blind8 helper", "2f6b85b"),
    "batch_v.yaml": ("sg-blind9 helper", "1b8dea2"),
    "batch_w.yaml": ("sg-blind9 helper", "1b8dea2"),
}
DIFFICULTIES = {"explicit", "indirect", "euphemism"}
SPEAKERS = {"child", "young_person", "adult"}
TIERS = {"alert", "review"}


def _measure():
    spec = importlib.util.spec_from_file_location("measure_safeguarding", ROOT / "scripts" / "measure_safeguarding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_batch_is_pinned():
    assert sorted(p.name for p in BLIND.glob("batch_*.yaml")) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_batch_is_unchanged(name):
    digest = hashlib.sha256((BLIND / name).read_bytes()).hexdigest()
    assert digest == PINNED[name], (
        f"{name} changed: the blind batches are frozen measurements written before tuning. "
        "Do not edit them (and never to improve a figure); write a new batch instead."
    )


@pytest.mark.parametrize("name", sorted(PINNED))
def test_batch_says_how_and_when_it_was_written(name):
    header = [line for line in (BLIND / name).read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    text = " ".join(header)
    # A batch says which tuning it came before (A, B: any tuning; C: the second round; D: the third;
    # E, F: the fourth; G: sg-matcher's round, written by the one who then tuned; H, I: the fifth;
    # J, K: the sixth; L, M: the seventh; N, O: the eighth;
    # P, Q: the ninth; R, S: the tenth, written the next morning; T, U: the eleventh;
    # V, W: the twelfth).
    assert "BEFORE" in text and "tuning" in text and "WITHOUT opening" in text
    assert "2026-11-30" in text or "2026-12-01" in text, f"{name} must say on which day it was written"
    if name in WRITERS:
        writer, commit = WRITERS[name]
        assert f"by the {writer}" in text, f"{name} must say who wrote it"
        assert "lexicon" in text and f"main at {commit}" in text, f"{name} must say it was written before tuning at {commit}"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_batch_is_well_formed(name):
    data = yaml.safe_load((BLIND / name).read_text(encoding="utf-8"))
    assert set(data) == {"disclosures", "ordinary"}
    assert len(data["disclosures"]) >= 110 and len(data["ordinary"]) >= 110
    for item in data["disclosures"]:
        assert set(item) == {"text", "concern", "difficulty", "speaker", "tier"}, item
        assert item["difficulty"] in DIFFICULTIES and item["speaker"] in SPEAKERS and item["tier"] in TIERS, item
        assert isinstance(item["text"], str) and item["text"].strip() and "\n" not in item["text"]
    for item in data["ordinary"]:
        assert set(item) == {"text", "kind", "speaker"}, item
        assert item["speaker"] in SPEAKERS, item
        assert isinstance(item["text"], str) and item["text"].strip() and "\n" not in item["text"]
    texts = [i["text"] for part in ("disclosures", "ordinary") for i in data[part]]
    assert len(texts) == len(set(texts)), "a sentence appears twice"


def test_summary_figures_are_counted_exactly():
    m = _measure()
    batch = {
        "name": "t",
        "disclosures": [
            {"text": "d1", "concern": "x", "difficulty": "explicit", "speaker": "child", "tier": "alert"},
            {"text": "d2", "concern": "x", "difficulty": "indirect", "speaker": "adult", "tier": "review"},
            {"text": "d3", "concern": "y", "difficulty": "indirect", "speaker": "adult", "tier": "alert"},
            {"text": "d4", "concern": "y", "difficulty": "euphemism", "speaker": "child", "tier": "alert"},
        ],
        "ordinary": [
            {"text": "o1", "kind": "idiom", "speaker": "child"},
            {"text": "o2", "kind": "idiom", "speaker": "child"},
            {"text": "o3", "kind": "sport", "speaker": "adult"},
        ],
    }
    tiers = {"d1": "alert", "d2": "review", "d3": "review", "d4": None, "o1": "alert", "o2": "review", "o3": None}
    s = m.summarise(batch, tiers)
    assert s == {
        "batch": "t", "disclosures": 4, "flagged": 3, "alert": 1, "at_expected_tier": 2,
        "ordinary": 3, "ordinary_alerted": 1, "ordinary_review": 1,
        "by": {
            "concern": {"x": {"n": 2, "flagged": 2, "alert": 1}, "y": {"n": 2, "flagged": 1, "alert": 0}},
            "difficulty": {"euphemism": {"n": 1, "flagged": 0, "alert": 0},
                           "explicit": {"n": 1, "flagged": 1, "alert": 1},
                           "indirect": {"n": 2, "flagged": 2, "alert": 0}},
            "speaker": {"adult": {"n": 2, "flagged": 2, "alert": 0}, "child": {"n": 2, "flagged": 1, "alert": 1}},
            "kind": {"idiom": {"n": 2, "alerted": 1, "review": 1}, "sport": {"n": 1, "alerted": 0, "review": 0}},
        },
    }


def test_python_detector_treats_a_concern_without_tier_as_alert(monkeypatch):
    m = _measure()

    class Untiered:
        concern = "x"

    class Review:
        concern = "y"
        tier = "review"

    fake = {"a": [Untiered()], "b": [Review()], "c": [], "d": [Review(), Untiered()]}
    import bot.safeguarding

    monkeypatch.setattr(bot.safeguarding, "detect", lambda text: fake[text])
    assert m.tiers_python(["a", "b", "c", "d"], []) == ["alert", "review", None, "alert"]


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_measurement_prints_no_sentence_unless_asked(capsys, fmt):
    m = _measure()
    assert m.main(["--detector", "python", *fmt]) == 0
    out = capsys.readouterr().out
    texts = [i["text"] for p in sorted(BLIND.glob("batch_*.yaml"))
             for part in ("disclosures", "ordinary") for i in yaml.safe_load(p.read_text(encoding="utf-8"))[part]]
    # A one-word answer ("7", "ok", "8/10", from batches H and I) occurs inside any table of
    # figures and identifies nothing; every longer text must be absent from the output.
    checked = [t for t in texts if len(t.split()) > 1]
    assert len(checked) > 0.95 * len(texts)
    leaked = [t for t in checked if t in out]
    assert leaked == []
    names = ["batch_a", "batch_b", "batch_c", "batch_d", "batch_e", "batch_f", "batch_g", "batch_h", "batch_i",
             "batch_j", "batch_k", "batch_l", "batch_m", "batch_n", "batch_o", "batch_p", "batch_q",
             "batch_r", "batch_s", "batch_t", "batch_u", "batch_v", "batch_w", "all batches"]
    assert all(name in out for name in names)
    if fmt:
        doc = json.loads(out)
        assert [b["batch"] for b in doc["batches"]] == names
