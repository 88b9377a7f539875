"""The review net (bot/safeguarding/classify.py): how its score moves a message between tiers,
what it never overrides, that its committed model is built from its training files alone (never
a blind batch that is still a measurement), and that a long message costs bounded work.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bot.safeguarding import ALERT, REVIEW, SafeguardingConfig, tier_of
from bot.safeguarding.classify import features, stem
from bot.safeguarding.match import LONG_TEXT, WINDOW_CHARS, WINDOWS, windows
from safeguarding_helpers import override_config

ROOT = Path(__file__).resolve().parents[1]


def _train_module():
    spec = importlib.util.spec_from_file_location("train_safeguarding", ROOT / "scripts" / "train_safeguarding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FixedNet:
    """A stand-in classifier with a fixed probability, to show the policy on its own."""

    review_at, alert_at, quiet_below, drop_below = 0.4, 0.95, 0.2, 0.2

    def __init__(self, p: float, concern: str = "neglect"):
        self.p, self._concern = p, concern

    def feature_list(self, words):
        return list(words)

    def probability(self, feats):
        return self.p

    def concern(self, feats, allowed=None):
        return self._concern

    def strongest_word(self, words):
        return len(words) - 1

    def has_ordinary_context(self, words):
        return "toast" in words


@pytest.fixture(scope="module")
def lexicon_only() -> SafeguardingConfig:
    return SafeguardingConfig.load(classifier=False)


@pytest.fixture(scope="module")
def shipped() -> SafeguardingConfig:
    return SafeguardingConfig.load()


def _with(config: SafeguardingConfig, net) -> SafeguardingConfig:
    config._classifier = net
    return config


def _tiers(config, text, context=None):
    return {c.concern: c.tier for c in config.detect(text, context)}


# --------------------------------------------------------------------------------------
# The policy, with a fixed score
# --------------------------------------------------------------------------------------

PLAIN = "we had chips for tea and watched telly"  # the lexicon finds nothing here
ALERTED = "my dad hit me"  # a lexicon alert
EVERYDAY = "my dad hit me over the toast"  # a lexicon alert with an everyday word
REVIEWED = "i have a bruise"  # a lexicon review


def test_the_lexicon_alone_gives_the_starting_tiers(lexicon_only):
    assert _tiers(lexicon_only, PLAIN) == {}
    assert _tiers(lexicon_only, ALERTED) == {"physical_harm": ALERT}
    assert _tiers(lexicon_only, EVERYDAY) == {"physical_harm": ALERT}
    assert tier_of(lexicon_only.detect(REVIEWED)) == REVIEW


@pytest.mark.parametrize("p, plain, alerted, everyday, reviewed", [
    # sure it is ordinary: an alert with an everyday setting is quietened, a review dropped;
    # an alert with nothing ordinary around it stays an alert whatever the score
    (0.0, None, ALERT, REVIEW, None),
    (0.14, None, ALERT, REVIEW, None),
    (0.15, None, ALERT, REVIEW, REVIEW),
    (0.19, None, ALERT, REVIEW, REVIEW),
    (0.2, None, ALERT, ALERT, REVIEW),  # neither lowered nor added
    (0.39, None, ALERT, ALERT, REVIEW),
    (0.4, REVIEW, ALERT, ALERT, REVIEW),  # worth a look: review with the likeliest concern
    (0.89, REVIEW, ALERT, ALERT, REVIEW),
    (0.9, REVIEW, ALERT, ALERT, ALERT),  # reads as a disclosure: a broad signal becomes alert
    (1.0, REVIEW, ALERT, ALERT, ALERT),  # ... but the net alone never alerts
])
def test_the_score_moves_a_message_between_tiers(p, plain, alerted, everyday, reviewed):
    net = FixedNet(p)
    net.review_at, net.alert_at, net.quiet_below, net.drop_below = 0.4, 0.9, 0.2, 0.15
    config = _with(SafeguardingConfig.load(classifier=False), net)
    assert tier_of(config.detect(PLAIN)) == plain
    assert tier_of(config.detect(ALERTED)) == alerted
    assert tier_of(config.detect(EVERYDAY)) == everyday
    assert tier_of(config.detect(REVIEWED)) == reviewed


class EverydayHit(FixedNet):
    """Reads "hit" (and "toast") as an everyday-setting word."""

    def has_ordinary_context(self, words):
        return "hit" in words or "toast" in words


def test_only_an_everyday_word_outside_the_matched_words_quietens_an_alert():
    # round 10: a rule that names the word was written knowing it ("... but really it was my
    # mum": "was" is a resolved past only outside the words the cover-story rule matched)
    config = _with(SafeguardingConfig.load(classifier=False), EverydayHit(0.0))
    assert _tiers(config, ALERTED) == {"physical_harm": ALERT}  # "hit" is inside "dad hit me"
    assert _tiers(config, EVERYDAY) == {"physical_harm": REVIEW}  # "toast" is outside it


def test_past_tense_alone_is_no_resolved_past():
    # round 11: "was", "were" and "when" left the resolved-past concept (CV on A-Q: flagged
    # +0.2, alert +0.2, N-Q alert +0.3; with them a disclosure told in the past tense read as an
    # everyday setting, so a low score could quieten "when he was hitting me")
    from bot.safeguarding.classify import Classifier, load_concepts, load_model

    concepts = load_concepts()
    for word in ("was", "were", "when"):
        assert "resolved" not in concepts.get(word, ()), word
    assert "resolved" in concepts["sober"] and "resolved" in concepts["ago"]  # the real markers stay
    net = Classifier(load_model(), concepts)
    assert not net.has_ordinary_context("when he was hitting me".split())
    assert net.has_ordinary_context("he used to hit me years ago".split())


def test_an_answer_is_short_by_the_words_the_person_typed():
    # round 11: "idk tbh" is two typed words, normalised to seven ("i do not know to be
    # honest"); a short answer needs short_review_at before the net adds a review on its own
    net = FixedNet(0.5)
    net.short_words, net.short_review_at = 6, 0.6
    config = _with(SafeguardingConfig.load(classifier=False), net)
    assert len(config._norm.analyse("idk tbh")[0]) > net.short_words
    assert config.detect("idk tbh") == []
    # the same score on a longer answer adds a review
    assert tier_of(config.detect("i really do not know what to say to be honest")) == REVIEW


def test_what_the_net_adds_says_so_and_points_at_a_word():
    config = _with(SafeguardingConfig.load(classifier=False), FixedNet(0.6, "neglect"))
    (c,) = config.detect(PLAIN)
    assert (c.concern, c.tier, c.rule, c.matched) == ("neglect", REVIEW, "review net (0.60)", "telly")


def test_a_low_score_still_raises_what_the_net_added():
    config = _with(SafeguardingConfig.load(classifier=False), FixedNet(0.6, "self_harm_suicide"))
    assert _tiers(config, PLAIN, {"score": 0}) == {"self_harm_suicide": ALERT}


def test_a_deployments_own_words_keep_the_tier_their_file_gives():
    low = override_config(FixedNet(0.0))
    assert _tiers(low, "he blorked me") == {"physical_harm": ALERT}
    assert _tiers(low, "he snoffled me") == {"physical_harm": REVIEW}
    high = override_config(FixedNet(0.99))
    assert _tiers(high, "he snoffled me") == {"physical_harm": REVIEW}
    # the shipped lexicon's own rules are still judged by the net
    assert _tiers(low, EVERYDAY) == {"physical_harm": REVIEW}


def test_a_context_or_soften_rule_has_the_last_word():
    config = override_config(FixedNet(0.99))
    # "in pshe" lowered the alert to review: the net neither raises it back nor adds another
    assert _tiers(config, "in pshe he blorked me") == {"physical_harm": REVIEW}
    assert config.detect("in pshe dad hit me")[0].tier == REVIEW
    # with no rule in the way, the same score adds a review
    assert tier_of(config.detect(PLAIN)) == REVIEW


# --------------------------------------------------------------------------------------
# The shipped model on answers written for these tests (not from any batch)
# --------------------------------------------------------------------------------------


def test_the_net_catches_what_no_phrase_was_written_for(shipped, lexicon_only):
    # (round 10: "I hate being at home at the weekends" scored 0.24 once the young voices'
    # training file taught it many ordinary "I hate ..." answers; this one shows the same rule)
    text = "I hate weekends at my dads"
    assert lexicon_only.detect(text) == []
    (found,) = shipped.detect(text)
    assert (found.tier, found.rule.startswith("review net (")) == (REVIEW, True)
    assert found.concern in ("unsafe_at_home", "emotional_abuse")
    grave = "my older cousin makes me keep quiet about the bath"
    assert lexicon_only.detect(grave) == []
    # no phrase matched: the review net adds it, and the tier net, confident too, alerts
    assert _tiers(shipped, grave) == {"sexual_abuse": ALERT}


def test_the_net_never_quietens_a_plain_disclosure(shipped):
    # the net scores this low ("not sure"), but nothing ordinary is around it
    assert tier_of(shipped.detect("I'm not sure, he hit my sister too")) == ALERT


def test_the_net_quietens_an_idiom_the_lexicon_alerted_on(shipped, lexicon_only):
    text = "I could strangle my brother when he broke my headphones lol"
    assert tier_of(lexicon_only.detect(text)) == ALERT
    assert tier_of(shipped.detect(text)) == REVIEW


@pytest.mark.parametrize("text", [
    "he told me a joke at lunch",
    "the baby is asleep in her cot",
    "my dad took me to football",
    "we had a lovely day at the beach",
    "I did archery and air rifle shooting at cubs",
])
def test_everyday_answers_stay_quiet(shipped, text):
    assert shipped.detect(text) == []


def test_negation_and_stems_are_features():
    concepts = {"hit": ("harm",), "me": ("self",)}
    assert stem("punched") == "punch" and stem("hitting") == "hit" and stem("slapped") == "slap"
    plain = features(["he", "hit", "me"], concepts)
    negated = features(["he", "never", "hit", "me"], concepts)
    assert "w:hit" in plain and "c:harm" in plain and "p:harm+self" in plain
    assert "nw:hit" in negated and "w:hit" not in negated and "nc:harm" in negated
    assert "p:harm+self" not in negated
    # doubt is not denial: "not sure" negates nothing after it
    unsure = features(["i", "am", "not", "sure", "he", "hit", "me"], concepts)
    assert "w:hit" in unsure and "nw:hit" not in unsure and "p:harm+self" in unsure


# --------------------------------------------------------------------------------------
# The model: built from its training files only, and committed up to date
# --------------------------------------------------------------------------------------


def test_training_never_reads_a_blind_batch_that_is_a_measurement():
    train = _train_module()
    sources = {e["source"] for e in train.examples(with_more=False)}
    # A-U are spent (measured after tuning); V and every later batch is a measurement
    assert sources == {"safeguarding_training.yaml", "safeguarding_tuning.yaml", "safeguarding_corpus.yaml",
                       "batch_a", "batch_b", "batch_c", "batch_d", "batch_e", "batch_f", "batch_g",
                       "batch_h", "batch_i", "batch_j", "batch_k", "batch_l", "batch_m", "batch_n",
                       "batch_o", "batch_p", "batch_q", "batch_r", "batch_s", "batch_t", "batch_u"}
    # the more folder holds training files only (written for training, never a batch)
    assert {e["source"] for e in train.examples()} - sources == {f"more/{p.name}" for p in train.more_files()}
    for name in ("batch_v", "batch_w", "batch_x"):
        with pytest.raises(SystemExit):
            train.examples(with_batches=(name,))


def test_the_committed_model_is_the_one_the_training_files_build():
    assert _train_module().main(["--check"]) == 0


# --------------------------------------------------------------------------------------
# Bounded work on long messages
# --------------------------------------------------------------------------------------


class CountingNormaliser:
    def __init__(self, inner):
        self.inner, self.chars, self.calls = inner, 0, 0

    def analyse(self, text):
        self.chars += len(text)
        self.calls += 1
        return self.inner.analyse(text)


@pytest.mark.parametrize("text", [
    "not " * 25_000,
    "hit " * 25_000,
    "x" * 100_000,  # one huge word: windows still cut it
    ("we went to the park and had a picnic with my nan " * 2_100)[:100_000],
])
def test_a_long_message_is_checked_in_a_bounded_number_of_characters(text):
    config = SafeguardingConfig.load()
    counter = CountingNormaliser(config._norm)
    config._norm = counter
    config.detect(text)
    assert counter.calls <= WINDOWS
    assert counter.chars <= WINDOWS * WINDOW_CHARS


def test_a_short_message_is_checked_whole_once():
    config = SafeguardingConfig.load()
    counter = CountingNormaliser(config._norm)
    config._norm = counter
    text = "my dad hit me " * (LONG_TEXT // 14)
    assert len(text) <= LONG_TEXT
    config.detect(text)
    assert (counter.calls, counter.chars) == (1, len(text))


def test_a_disclosure_at_either_end_of_a_long_message_is_found(shipped):
    filler = "we went to the park and had a picnic with my nan " * 2_000
    assert shipped.detect(filler) == []
    assert tier_of(shipped.detect("my dad hit me. " + filler)) == ALERT
    assert tier_of(shipped.detect(filler + " my dad hit me")) == ALERT
    found = shipped.detect(filler + " my dad hit me")
    assert found[0].matched == "hit me"


def test_windows_cover_both_ends_and_stay_in_bounds():
    text = "word " * 20_000
    spans = windows(text)
    assert len(spans) == WINDOWS and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(0 <= a < b <= len(text) and b - a <= WINDOW_CHARS for a, b in spans)
    assert windows("short") == [(0, 5)]
