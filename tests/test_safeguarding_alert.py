"""The alert tier (issue 12, round 5): the tier net that lifts review to alert, the grave
combinations the lexicon alerts on, and the false alarms this round removed.

Every sentence here was written for these tests from the general rule it checks; none is
taken from a blind batch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from bot.safeguarding import ALERT, REVIEW, SafeguardingConfig, tier_of
from safeguarding_helpers import override_config

ROOT = Path(__file__).resolve().parents[1]


def _train_module():
    spec = importlib.util.spec_from_file_location("train_safeguarding", ROOT / "scripts" / "train_safeguarding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lexicon_only() -> SafeguardingConfig:
    return SafeguardingConfig.load(classifier=False)


@pytest.fixture(scope="module")
def shipped() -> SafeguardingConfig:
    return SafeguardingConfig.load()


def _tiers(config, text, context=None):
    return {c.concern: c.tier for c in config.detect(text, context)}


# --------------------------------------------------------------------------------------
# The tier net's policy, with fixed scores
# --------------------------------------------------------------------------------------


class TwoNets:
    """A stand-in for both nets: review-net score p, tier-net score q (None: no tier net)."""

    review_at, alert_at, quiet_below, drop_below = 0.4, 0.95, 0.2, 0.15
    promote_at, alone_at, demote_below, confirm_at = 0.85, 0.9, 0.05, 0.5
    short_words, short_review_at, drop_ruled = 4, 0.6, True

    def __init__(self, p: float, q: float | None, concern: str = "neglect"):
        self.p, self.q, self._concern = p, q, concern
        self.seen_lexicon: list[str] | None = None

    def feature_list(self, words):
        return list(words)

    def probability(self, feats):
        return self.p

    def tier_probability(self, feats, lexicon):
        self.seen_lexicon = list(lexicon)
        return self.q

    def concern(self, feats, allowed=None):
        return self._concern

    def strongest_word(self, words):
        return len(words) - 1

    def has_ordinary_context(self, words):
        return False


def _with(net) -> SafeguardingConfig:
    config = SafeguardingConfig.load(classifier=False)
    config._classifier = net
    return config


PLAIN = "we had chips for tea and watched telly"  # the lexicon finds nothing here
ALERTED = "my dad hit me"  # a lexicon alert
REVIEWED = "i have a bruise"  # a lexicon review


@pytest.mark.parametrize("q, plain, alerted, reviewed", [
    (None, REVIEW, ALERT, REVIEW),  # no tier net: the review net's policy alone
    (0.0, REVIEW, REVIEW, REVIEW),  # very unlikely to need an alert: a lexicon alert is lowered
    (0.049, REVIEW, REVIEW, REVIEW),
    (0.05, REVIEW, ALERT, REVIEW),
    (0.84, REVIEW, ALERT, REVIEW),
    (0.85, REVIEW, ALERT, ALERT),  # a lexicon review is lifted ...
    (0.89, REVIEW, ALERT, ALERT),
    (0.9, ALERT, ALERT, ALERT),  # ... and, more confident still, what the review net added alone
    (1.0, ALERT, ALERT, ALERT),
])
def test_the_tier_net_moves_review_and_alert(q, plain, alerted, reviewed):
    config = _with(TwoNets(0.6, q))
    assert tier_of(config.detect(PLAIN)) == plain
    assert tier_of(config.detect(ALERTED)) == alerted
    assert tier_of(config.detect(REVIEWED)) == reviewed


@pytest.mark.parametrize("p, q, tier", [
    (0.96, None, ALERT),  # no tier net: the review net lifts a review on its own (alert_at 0.95)
    (0.96, 0.3, REVIEW),  # the tier net disagrees: it stays a review
    (0.96, 0.5, ALERT),  # the tier net agrees enough (confirm_at)
    (0.9, 0.5, REVIEW),  # neither net lifts it
])
def test_the_review_nets_lift_needs_the_tier_nets_agreement(p, q, tier):
    assert tier_of(_with(TwoNets(p, q)).detect(REVIEWED)) == tier


class BothConfident(TwoNets):
    alone_p = 0.9


@pytest.mark.parametrize("p, q, tier", [
    (0.89, 1.0, REVIEW),  # the tier net is sure, the review net is not: it stays a quiet review
    (0.9, 0.89, REVIEW),  # the review net is sure, the tier net not enough (alone_at)
    (0.9, 0.9, ALERT),  # both confident: what no phrase matched alerts
])
def test_what_the_review_net_added_alone_alerts_only_when_both_nets_are_confident(p, q, tier):
    assert tier_of(_with(BothConfident(p, q)).detect(PLAIN)) == tier
    # a lexicon review is lifted on the tier net's word alone (promote_at), whatever p
    assert tier_of(_with(BothConfident(0.6, 0.85)).detect(REVIEWED)) == ALERT


class LowerBarForNeglect(TwoNets):
    concern_promote_at = {"neglect": 0.6}


@pytest.mark.parametrize("concern, q, tier", [
    ("neglect", 0.59, REVIEW),
    ("neglect", 0.6, ALERT),  # its own, lower bar (promote_at is 0.85 here)
    ("physical_harm", 0.6, REVIEW),  # a concern without one keeps promote_at
    ("physical_harm", 0.85, ALERT),
])
def test_a_concern_may_have_its_own_lower_bar_for_alert(concern, q, tier):
    # REVIEWED ("i have a bruise") is a lexicon review of physical harm; PLAIN gets the net's concern
    text = REVIEWED if concern == "physical_harm" else PLAIN
    net = LowerBarForNeglect(0.92, q, concern)  # p under alert_at: no lift by the review net itself
    net.alone_p = 0.9
    assert _tiers(_with(net), text) == {concern: tier}


@pytest.mark.parametrize("text, q, tier", [
    ("I am hungry", 0.6, ALERT),  # a lexicon review of neglect: the concern's own bar
    (PLAIN, 0.6, REVIEW),  # what the net added alone: not the concern's bar ...
    (PLAIN, 0.89, REVIEW),
    (PLAIN, 0.9, ALERT),  # ... but alone_at
])
def test_a_concerns_own_bar_need_not_apply_to_what_the_net_added_alone(text, q, tier):
    net = LowerBarForNeglect(0.92, q, "neglect")
    net.alone_p, net.concern_bar_alone = 0.9, False
    assert _tiers(_with(net), text) == {"neglect": tier}


class Veto(TwoNets):
    veto_below, veto_p = 0.1, 0.5


@pytest.mark.parametrize("text, p, q, tier", [
    (REVIEWED, 0.3, 0.05, None),  # both nets read it as ordinary: the broad signal is dropped
    (REVIEWED, 0.5, 0.05, REVIEW),  # the review net is not sure enough (veto_p)
    (REVIEWED, 0.3, 0.1, REVIEW),  # the tier net is not sure enough (veto_below)
    (ALERTED, 0.3, 0.06, ALERT),  # an alert is never dropped by the veto
    (ALERTED, 0.3, 0.01, REVIEW),  # (the tier net may still lower it: demote_below)
])
def test_both_nets_reading_a_message_as_ordinary_drop_its_reviews(text, p, q, tier):
    assert tier_of(_with(Veto(p, q)).detect(text)) == tier
    # without a veto in the model, the same scores leave the review alone
    assert tier_of(_with(TwoNets(p, q)).detect(REVIEWED)) == REVIEW


class ShortAlone(BothConfident):
    short_alone_review = True


SHORT_PLAIN = "we went to town"  # four words (short_words), nothing the lexicon finds


@pytest.mark.parametrize("net, text, tier", [
    (ShortAlone, SHORT_PLAIN, REVIEW),  # a few words: what the net added alone stays a review
    (BothConfident, SHORT_PLAIN, ALERT),  # without the flag, both nets sure: alert
    (ShortAlone, PLAIN, ALERT),  # a longer answer is not held back
])
def test_what_the_net_added_alone_to_a_short_answer_stays_a_review(net, text, tier):
    assert tier_of(_with(net(0.95, 0.95)).detect(text)) == tier


def test_the_shipped_model_keeps_a_short_regret_quiet(shipped):
    # answering "what have you thought about since?" in a restorative chat
    assert tier_of(shipped.detect("I wish I had not")) != ALERT


def test_the_tier_net_says_so_in_the_rule():
    config = _with(TwoNets(0.6, 0.95, "neglect"))
    (c,) = config.detect(PLAIN)
    assert (c.concern, c.tier, c.rule) == ("neglect", ALERT, "review net (0.60) + tier net (0.95)")
    (c,) = _with(TwoNets(0.6, 0.01)).detect(ALERTED)
    assert c.tier == REVIEW and c.rule.endswith(" - tier net (0.01)")


def test_the_tier_net_sees_what_the_lexicon_found():
    net = TwoNets(0.6, 0.5)
    _with(net).detect(ALERTED)
    assert net.seen_lexicon == ["L:physical_harm:alert", "L:alert"]
    _with(net).detect(REVIEWED)
    assert net.seen_lexicon[-1] == "L:review"
    _with(net).detect(PLAIN)  # the net added a review: the tier net is still told "none"
    assert net.seen_lexicon == ["L:none"]


def test_the_tier_net_never_overrides_a_deployments_words_or_a_context():
    def load(p, q):
        return override_config(TwoNets(p, q))

    assert _tiers(load(0.99, 1.0), "he snoffled me") == {"physical_harm": REVIEW}
    assert _tiers(load(0.5, 0.0), "he blorked me") == {"physical_harm": ALERT}
    # a context lowered the alert to review: never lifted back, whatever q
    assert _tiers(load(0.99, 1.0), "in pshe dad hit me") == {"physical_harm": REVIEW}


def test_review_or_nothing_a_low_score_may_drop_what_a_context_capped():
    config = override_config(TwoNets(0.1, None))
    assert _tiers(config, "in pshe dad hit me") == {}
    config._classifier.drop_ruled = False
    assert _tiers(config, "in pshe dad hit me") == {"physical_harm": REVIEW}
    config._classifier = TwoNets(0.3, None)  # not low enough: kept at review
    assert _tiers(config, "in pshe dad hit me") == {"physical_harm": REVIEW}


@pytest.mark.parametrize("text, p, tier", [
    ("I feel fine", 0.5, None),  # three words: under the short floor
    ("I feel fine", 0.6, REVIEW),
    ("we feel fine at the moment", 0.5, REVIEW),  # long enough for the ordinary threshold
])
def test_a_short_plain_answer_needs_a_higher_score_to_be_reviewed(text, p, tier):
    assert tier_of(_with(TwoNets(p, None)).detect(text)) == tier


def test_a_concern_the_net_added_alone_brings_no_help_line_of_its_own():
    # the review net names its concern with a naive model: a child's answer it reads as a
    # disclosure must not be told about grown-ups hurting each other at home
    config = _with(TwoNets(0.95, 0.99, concern="domestic_abuse"))
    (c,) = config.detect(PLAIN)
    assert (c.concern, c.tier, c.rule) == ("domestic_abuse", ALERT, "review net (0.95) + tier net (0.99)")
    assert config.help_lines([c], "child") == []
    assert config.help_lines([c], "adult") == []
    whole = config.help_for("child", [c])
    assert "0800 1111" in whole and "grown-up" not in whole
    # the same concern found by a phrase keeps its help line
    said = [x for x in _with(TwoNets(0.95, 0.99)).detect("my dad hits my mum") if x.concern == "domestic_abuse"]
    assert len(said) == 1 and not said[0].rule.startswith("review net")
    line = config.concern_help("domestic_abuse", "child")
    assert "grown-up" in line and config.help_lines(said, "child") == [line]


# --------------------------------------------------------------------------------------
# The shipped detector on answers written for these tests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "I feel ok",
    "I feel good today",
    "we had a cuss at each other but we are friends again",
])
def test_plain_answers_are_nothing(shipped, text):
    assert shipped.detect(text) == []


@pytest.mark.parametrize("text, tier", [
    # honest worries a person should see without interrupting (the nets used to drop them)
    # round 10: with the young voices' ordinary answers about being shouted at (a room not
    # tidied, a cheer on the sideline) the review net reads this one as ordinary (p 0.08) and
    # drops the lexicon's review; CV on A-O said keeping such reviews (drop_below 0.05) adds
    # 0.8 points of ordinary review for no held-out disclosure. Never more than review.
    ("dad shouts at me all the time", (REVIEW, None)),
    ("Dad drinks too much at weekends", REVIEW),
    ("mum shouts at me a lot", (REVIEW, None)),  # as above (p 0.06 with both new files)
    ("Nobody is in a rush", None),  # was a review the net added alone
])
def test_honest_worries_reach_review_and_no_further(shipped, text, tier):
    allowed = tier if isinstance(tier, tuple) else (tier,)
    assert tier_of(shipped.detect(text)) in allowed, shipped.detect(text)


def test_giving_old_toys_away_is_at_most_a_review(shipped):
    # nothing until round 10; the adults' training file holds disclosures of a person giving
    # their things away before suicide (a recognised warning sign), and the review net now
    # reads this at 0.37: a person may look, nobody is interrupted
    assert tier_of(shipped.detect("I gave my old toys away because I do not need them now")) in (REVIEW, None)


class Doubt(TwoNets):
    doubt_p, doubt_q = 0.2, 0.8


class DoubtInAnEverydaySetting(Doubt):
    """Both nets at their most doubtful, and an everyday-setting word in every message."""

    def has_ordinary_context(self, words):
        return True


@pytest.mark.parametrize("text, p, q, tier", [
    (ALERTED, 0.19, 0.79, REVIEW),  # the review net reads it as ordinary, the tier net is unsure
    (ALERTED, 0.2, 0.79, ALERT),  # the review net is not sure enough (doubt_p)
    (ALERTED, 0.19, 0.8, ALERT),  # the tier net is sure it is an alert (doubt_q)
    (REVIEWED, 0.19, 0.79, REVIEW),  # a review stays a review
    (PLAIN, 0.19, 0.79, None),  # nothing is added
])
def test_a_lexicon_alert_both_nets_doubt_becomes_review(text, p, q, tier):
    assert tier_of(_with(Doubt(p, q)).detect(text)) == tier
    # without doubt_p in the model, the same scores leave the alert alone
    assert tier_of(_with(TwoNets(p, q)).detect(ALERTED)) == ALERT


def _grave_rules(concern: str) -> list[str]:
    lexicon = yaml.safe_load((ROOT / "bot" / "safeguarding.yaml").read_text(encoding="utf-8"))
    return lexicon["concerns"][concern]["grave"]


# one message per category of grave rule (round 10), written for this test
GRAVE = [
    ("we leave the little ones on their own overnight when we both do nights", "neglect"),
    ("I told my teacher I fell off my scooter but really it was my stepdad", "physical_harm"),
    ("I keep thinking about jumping off the multi storey car park by the station", "self_harm_suicide"),
    ("my mate has swallowed a whole packet of pills and will not wake up", "immediate_danger"),
]


@pytest.mark.parametrize("text, concern", GRAVE)
def test_no_net_lowers_a_grave_rule(text, concern):
    # the nets at their most doubtful lower any other lexicon alert ...
    assert tier_of(_with(DoubtInAnEverydaySetting(0.0, 0.0)).detect(ALERTED)) == REVIEW
    for net in (DoubtInAnEverydaySetting(0.0, 0.0), DoubtInAnEverydaySetting(0.1, 0.5), TwoNets(0.0, 0.0)):
        found = {c.concern: c for c in _with(net).detect(text)}
        # ... never an alert of a grave rule, which stays as the lexicon wrote it
        assert (found[concern].tier, found[concern].rule in _grave_rules(concern)) == (ALERT, True), text


def test_a_grave_rule_after_a_plain_alert_of_its_concern_still_marks_it():
    # "left ... alone ... a lot" is a plain neglect alert earlier in the message; the grave rule
    # (children alone overnight) later in it must still keep the nets from lowering the concern
    text = "they are left alone a lot and last week the kids were on their own all night"
    (c,) = _with(DoubtInAnEverydaySetting(0.0, 0.0)).detect(text)
    assert (c.concern, c.tier, c.rule in _grave_rules("neglect")) == ("neglect", ALERT, True)


# ordinary near misses written for this test (a parent's everyday answers): a lexicon alert that
# both shipped nets doubt; the doubt rule (round 10) makes it a review, not an interruption
DOUBTED = [
    "there was no milk so the kids had toast instead this morning",
    "no milk in the fridge so it was toast for everyone today",
]


@pytest.mark.parametrize("text", DOUBTED)
def test_the_doubt_rule_moves_an_ordinary_near_miss_from_alert_to_review(shipped, lexicon_only, text):
    assert tier_of(lexicon_only.detect(text)) == ALERT
    undoubting = SafeguardingConfig.load()
    undoubting._classifier.doubt_p = None  # the same nets without the doubt rule: an alert
    assert tier_of(undoubting.detect(text)) == ALERT
    (c,) = shipped.detect(text)
    assert (c.tier, " - both nets (" in c.rule) == (REVIEW, True)


def test_the_nets_lower_no_alert_in_a_long_answer(shipped):
    # round 11: in an answer longer than lower_words words the whole message's scores are
    # diluted by its everyday words, so neither the tier net's demotion nor the doubt rule
    # lowers a plain phrase there (a disclosure at the end of a long answer stays an alert)
    for repeats in (2, 3):
        text = "we went to the park and had a picnic with my nan " * repeats + "and my dad hit me"
        assert len(text.split()) > shipped._classifier.lower_words
        assert tier_of(shipped.detect(text)) == ALERT, text
        unlimited = SafeguardingConfig.load()
        unlimited._classifier.lower_words = None  # the same nets, lowering at any length
        (c,) = unlimited.detect(text)
        assert (c.tier, " - both nets (" in c.rule or " - tier net (" in c.rule) == (REVIEW, True), c


def test_cuss_is_not_read_as_because(shipped):
    assert shipped.normalise("he cuss me") == "he cuss me"


@pytest.mark.parametrize("text, concern", [
    # an adult's own suicidal thinking with a method or a plan
    ("some nights I think about driving my car into a tree on the way home", "self_harm_suicide"),
    ("I have thought about walking in front of a lorry on the bypass", "self_harm_suicide"),
    # a parent telling about a child
    ("my lad keeps saying he wishes he was dead", "self_harm_suicide"),
    ("I found razor blades hidden under her pillow", "self_harm_suicide"),
    ("I am giving my things away to friends cos I will not need them after this week", "self_harm_suicide"),
    # a hot thing held on a child; a child thrown at something hard
    ("my step mum held my fingers on the hot radiator till I cried", "physical_harm"),
    ("he stubbed a cigarette out on my arm", "physical_harm"),
    ("her boyfriend threw my son against the fridge", "physical_harm"),
    ("he could have killed me when he pushed me down the stairs", "physical_harm"),  # not the speaker's idiom
    # a cover story taken back
    ("I told the nurse I tripped on the step but really it was my mum", "physical_harm"),
    # children alone, overnight or for days, in a parent's words
    ("my two are home alone overnight when I do nights at the factory", "neglect"),
    ("me and my brothers have been on our own since Sunday", "neglect"),
    # a carer too far gone to wake, or driving drunk with the children
    ("mum collapsed on the kitchen floor and we could not wake her up", "neglect"),
    ("dad was off his face and drove the kids to his mates", "neglect"),
    # marriage under 18 and honour
    ("they have picked me a husband from back home and I am only 15", "exploitation"),
    ("my cousin is being taken abroad to get married this summer", "exploitation"),
    ("my uncles said they would hurt me if they found out about my boyfriend", "domestic_abuse"),
])
def test_grave_combinations_alert(shipped, lexicon_only, text, concern):
    assert lexicon_only.detect(text) and tier_of(lexicon_only.detect(text)) == ALERT, text
    assert _tiers(shipped, text).get(concern) == ALERT, (text, _tiers(shipped, text))


@pytest.mark.parametrize("text", [
    # idioms, accidents, play, lessons and resolved past stay below alert
    "my mum is going to kill me when she sees the state of my trainers",
    "I burnt my hand on the hot pan making pancakes",
    "my brother threw a cushion at me and we had a pillow fight",
    "we read a story in class about a girl whose dad left the kids alone",
    "we were on our own for an hour after school till mum got back from work",
    "I threw the ball against the wall in the playground",
    "my sister got married last year when she was 25",
    "I used to think about dying when I was ill but I have been well for years",
    "I told mum I fell off my bike but it was fine",
    # harm denied, or only imagined by the speaker
    "my dad never hits me or my sister",
    "she would never hit the baby",
    "I could have slapped her when she laughed at me",
    "I nearly punched my brother when he deleted my game",
    "mum does not smack us, she takes the tablet off us when we argue",
    "Nobody is in a rush, we can take our time",  # was a neglect alert
])
def test_near_misses_stay_below_alert(shipped, text):
    assert tier_of(shipped.detect(text)) != ALERT, (text, shipped.detect(text))


@pytest.mark.parametrize("text, concern, by_rule", [
    # round 7 rules, each written from a general kind of false alarm, checked on new sentences:
    # what the lexicon alone gives the concern the rule is about (None: nothing)
    ("I hide my chocolate from my sister or she eats it", "unsafe_at_home", None),
    ("my little brother eats everything so I hide my crisps from him", "unsafe_at_home", None),
    ("mum cut my fringe too short and I look silly", "physical_harm", None),
    ("mum cut my fringe too short and I look silly", "domestic_abuse", None),
    ("I am starving, I was so hungry after swimming I had two dinners", "neglect", None),
    ("I'm allowed to stay home alone for half an hour now", "neglect", REVIEW),
    ("we had a talk from the school nurse about self harm and who to tell", "self_harm_suicide", REVIEW),
    ("I pushed her back when she pushed me first in the line", "physical_harm", REVIEW),
    ("I did fencing at the club and stabbed my partner in the arm with the foil", "immediate_danger", REVIEW),
])
def test_round_7_near_misses_stay_below_alert(shipped, lexicon_only, text, concern, by_rule):
    assert {c.concern: c.tier for c in lexicon_only.detect(text)}.get(concern) == by_rule, lexicon_only.detect(text)
    assert tier_of(shipped.detect(text)) != ALERT, shipped.detect(text)


@pytest.mark.parametrize("text", [
    "my stepdad slapped me so I pushed him back",  # not a fight between equals
    "I'm hungry every night because there's nothing in",
])
def test_round_7_rules_leave_a_disclosure_an_alert(shipped, lexicon_only, text):
    by_rule = {c.concern: c.tier for c in lexicon_only.detect(text)}
    assert by_rule.get("physical_harm" if "slapped" in text else "neglect") == ALERT, by_rule
    assert tier_of(shipped.detect(text)) == ALERT, shipped.detect(text)


@pytest.mark.parametrize("text", [
    "my dad never hits me or my sister",
    "she would never hit the baby",
    "I could have slapped her when she laughed at me",
    "I nearly punched my brother when he deleted my game",
])
def test_harm_denied_or_only_imagined_is_at_most_review_by_rule_alone(lexicon_only, text):
    # the soften phrases do this, whatever the nets say
    assert tier_of(lexicon_only.detect(text)) == REVIEW, lexicon_only.detect(text)


@pytest.mark.parametrize("text", [
    # the review phrase "$killv ... me" inside a soften phrase (a parent's own children "will
    # kill me for telling you")
    "my son will kill me for telling you he cried at the film",
    "the kids would murder me for mentioning that they still believe in father christmas",
    # the review phrase "bruises" near a cap: review context (a diagnosed condition)
    "the bruises on her legs are from her leukaemia treatment, the consultant checks them",
])
def test_a_review_match_a_soften_phrase_or_cap_context_judged_is_never_lifted_by_the_nets(text):
    # round 8: both nets as confident as they can be, still review
    assert tier_of(_with(TwoNets(0.99, 1.0)).detect(text)) == REVIEW


@pytest.mark.parametrize("text, concern, by_rule", [
    # round 8 rules, each written from a general kind of false alarm, checked on new sentences:
    # what the lexicon alone gives the concern the rule is about (None: nothing)
    ("my son will kill me for telling you he cried at the film", "immediate_danger", REVIEW),
    ("the bruises on her legs are from her leukaemia treatment, the consultant checks them", "physical_harm", REVIEW),
    ("he had a seizure at the park, he is epileptic and we gave him his rescue medicine", "immediate_danger", REVIEW),
    ("my brother punched me and mum told us both off for fighting", "physical_harm", REVIEW),
    ("my brother punched me and mum told us both off for fighting", "domestic_abuse", REVIEW),
    ("he wrote the girl a card to say sorry for pushing her in the lunch queue", "self_harm_suicide", None),
    ("she got a black eye off the roundabout at the park", "physical_harm", None),
    ("we lock the back door at night because our son sleepwalks", "unsafe_at_home", REVIEW),
    ("I'd rather die than sing karaoke at the work do", "self_harm_suicide", REVIEW),
    ("she did her coursework on self harm and got a distinction", "self_harm_suicide", REVIEW),
])
def test_round_8_near_misses_stay_below_alert(shipped, lexicon_only, text, concern, by_rule):
    assert {c.concern: c.tier for c in lexicon_only.detect(text)}.get(concern) == by_rule, lexicon_only.detect(text)
    assert tier_of(shipped.detect(text)) != ALERT, shipped.detect(text)


@pytest.mark.parametrize("text, concern", [
    ("my dad will kill me for telling you this", "immediate_danger"),  # not one's own child
    ("he said he will kill me if I tell anyone", "immediate_danger"),
    ("I've written a note to say sorry for everything, I won't be here tomorrow", "self_harm_suicide"),
    ("the baby is fitting and has gone blue", "immediate_danger"),
    ("my brother punches me every day and mum does nothing about it", "physical_harm"),
    ("my dad headbutted me and now I have a bruise", "physical_harm"),
    # round 8 alert rules, by kind
    ("I smack my kids when I've had a drink", "neglect"),
    ("soon I won't be anyone's problem", "self_harm_suicide"),
    ("there are fingermarks on her neck again", "physical_harm"),
    ("I woke up at his flat with no clothes on and can't remember anything", "sexual_abuse"),
    ("I feel like shaking the baby when she won't stop screaming", "physical_harm"),
])
def test_round_8_rules_leave_a_disclosure_an_alert(shipped, lexicon_only, text, concern):
    assert {c.concern: c.tier for c in lexicon_only.detect(text)}.get(concern) == ALERT, lexicon_only.detect(text)
    assert tier_of(shipped.detect(text)) == ALERT, shipped.detect(text)


def test_rather_die_than_going_back_is_read_by_a_person(shipped, lexicon_only):
    # until round 8 an exclusion cancelled "would rather die than go ...": now at most review
    text = "I would rather die than go back home to him"
    assert tier_of(lexicon_only.detect(text)) == REVIEW
    assert tier_of(shipped.detect(text)) is not None


# --------------------------------------------------------------------------------------
# Training: spent batches only
# --------------------------------------------------------------------------------------


def test_training_refuses_batch_v_and_every_later_one_even_if_listed():
    train = _train_module()
    assert train.FIRST_MEASUREMENT == "v"
    train.TRAINING_BATCHES = (*train.TRAINING_BATCHES, "batch_v", "batch_w", "batch_z")
    for name in ("batch_v", "batch_w", "batch_z", "batch_aa", "held_back"):
        with pytest.raises(SystemExit):
            train.examples(with_batches=(name,))
    assert train._spent("batch_s") and not train._spent("batch_v") and not train._spent("batch_w")
    # P and Q were measured after round 9, R and S after round 10: spent, and trained on
    assert {"batch_n", "batch_o", "batch_p", "batch_q", "batch_r", "batch_s"} <= set(_train_module().TRAINING_BATCHES)


def test_training_reads_every_file_of_the_more_folder_like_a_batch(tmp_path):
    train = _train_module()
    (tmp_path / "a.yaml").write_text(
        "disclosures:\n"
        "  - {text: 'one', concern: suicide, difficulty: indirect, speaker: adult, tier: review}\n"
        "ordinary:\n"
        "  - {text: 'two', kind: fgc_practical, speaker: adult}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        "disclosures:\n"
        "  - {text: 'three', concern: neglect, difficulty: explicit, speaker: child, tier: alert}\n"
        "ordinary: []\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not training data", encoding="utf-8")
    train.MORE = tmp_path
    got = [(e["text"], e["label"], e["concern"], e.get("tier"), e["source"])
           for e in train.examples(with_batches=()) if e["source"].startswith("more/")]
    assert got == [("one", 1, "self_harm_suicide", "review", "more/a.yaml"),
                   ("two", 0, None, None, "more/a.yaml"),
                   ("three", 1, "neglect", "alert", "more/b.yaml")]
    assert not [e for e in train.examples(with_batches=(), with_more=False) if e["source"].startswith("more/")]


def test_training_refuses_a_concern_the_lexicon_does_not_know(tmp_path):
    train = _train_module()
    (tmp_path / "a.yaml").write_text(
        "disclosures:\n  - {text: 'one', concern: sadness, difficulty: indirect, speaker: adult, tier: review}\n"
        "ordinary: []\n", encoding="utf-8")
    train.MORE = tmp_path
    with pytest.raises(SystemExit, match="sadness"):
        train.check_concerns(train.examples(with_batches=()), SafeguardingConfig.load(classifier=False).severity)


# Round 10: retrained on A-O, both nets read a parent's "Nan can look after them when I go out"
# (a flow script's ordinary answer) as neglect with confidence and alerted on it. Everyday care
# arrangements, another adult named as the one looking after the children, are never an alert.
# Written for this test: none is in a blind batch or in the training files.
CARE_ARRANGEMENTS = [
    "Nan can look after them when I go out",
    "Grandad can look after them when I go to work",
    "my sister can look after the kids when I go out on Saturday",
    "their nan will look after them when I go to my appointment",
    "Auntie Jo says she can look after them when I go out",
    "my mum looks after them when I go out with my friends",
    "my big sister looks after us when mum goes out",
    "the neighbour can look after them when I go to the shop",
]


@pytest.mark.parametrize("text", CARE_ARRANGEMENTS)
def test_everyday_care_arrangements_never_alert(shipped, text):
    assert tier_of(shipped.detect(text)) != ALERT


def test_cross_validation_holds_out_spent_batches_only_and_never_shows_a_held_ones_misses():
    # round 11: --cv --hold r,s leaves the validation pair out altogether; a measurement (V on,
    # since round 12) may not be named there, and a held batch's misses are never printed
    train = _train_module()
    for argv in (["--cv", "--hold", "v"], ["--cv", "--hold", "t,w"], ["--cv", "--hold", "t,u", "--show-misses", "u"]):
        with pytest.raises(SystemExit):
            train.main(argv)


# round 12, a practice call: parents arguing is not abuse. A child scared or upset when parents
# argue, or parents who row a lot, is worth a look by the worker (review), never an interruption,
# whatever the nets read; violence or a threat in the same answer still alerts by its own rule.
@pytest.mark.parametrize("text", [
    "I get scared when mum and dad argue",
    "I get really scared when my parents argue at night",
    "mum and dad argue all the time",
])
def test_parents_arguing_is_review_not_alert(shipped, text):
    assert tier_of(shipped.detect(text)) == REVIEW


@pytest.mark.parametrize("text", [
    "I get scared when mum and dad argue because dad hits her",
    "I get scared when they argue cos he says he will kill her",
])
def test_violence_beside_parents_arguing_still_alerts(shipped, text):
    assert tier_of(shipped.detect(text)) == ALERT
