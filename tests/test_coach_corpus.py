"""The coach's labelled corpora: the held-out part is frozen, the tuning part is separate.

The held-out file was written before any rule existed and is never tuned on; its hash is
pinned here so that an edit (for example, to make a failing question pass) fails a test.
"""

import hashlib
from pathlib import Path

import yaml

HERE = Path(__file__).parent / "coach"
HELDOUT = HERE / "heldout.yaml"
HELDOUT_SHA256 = "9cce54dc5ac7854dd29eb068eb9e87720b34d80d0b4f259eece13d7d6960d8d6"

MISTAKES = {"closed", "why", "leading", "blaming", "lecture", "multiple"}
PRACTICE = {
    "rp_what_happened", "rp_thinking", "rp_feelings", "rp_affected", "rp_repair",
    "sf_best_hopes", "sf_scaling", "sf_exception", "sf_coping", "sf_miracle",
    "sf_relationship", "sf_better",
}
ALL_LABELS = MISTAKES | PRACTICE | {"open"}


def _load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_heldout_corpus_is_frozen():
    digest = hashlib.sha256(HELDOUT.read_bytes()).hexdigest()
    assert digest == HELDOUT_SHA256, "the held-out corpus must not change: write new questions into tuning.yaml"


def _check(items):
    for item in items:
        assert set(item) == {"text", "labels"}, item
        assert isinstance(item["text"], str) and item["text"].strip(), item
        assert set(item["labels"]) <= ALL_LABELS, item
        assert len(item["labels"]) == len(set(item["labels"])), item
        if set(item["labels"]) & PRACTICE:
            assert "open" in item["labels"], item


def test_heldout_corpus_is_labelled_with_known_labels():
    items = _load(HELDOUT)
    assert len(items) >= 120
    _check(items)
    seen = {label for item in items for label in item["labels"]}
    assert seen == ALL_LABELS


TUNING = HERE / "tuning.yaml"


def _key(text):
    return text.lower().strip(" ?.!")


def test_tuning_corpus_is_separate_from_the_heldout_part():
    tuning = _load(TUNING)
    heldout = _load(HELDOUT)
    _check(tuning)
    assert len(tuning) >= 300
    assert len(tuning) + len(heldout) >= 400
    shared = {_key(i["text"]) for i in tuning} & {_key(i["text"]) for i in heldout}
    assert shared == set()
