"""Safeguarding detection: recall on the labelled corpus, false alarms, wording, overrides.

The corpus (tests/safeguarding_corpus.yaml) holds disclosures that must be flagged and
ordinary answers that should not be. Recall on the disclosures must be 100 %: every miss is
listed in the failure message. The false-alarm rates on the ordinary answers are printed
and must stay under MAX_ALERT_RATE (alerted) and MAX_REVIEW_RATE (sent to review).

A caution for whoever reads the numbers: the lexicon was tuned with this corpus in view, so
100 % here is a floor the lexicon must never fall below, not an estimate of recall on
messages nobody has seen. Three batches in the corpus were first written without looking
at the lexicon and measured before it was tuned on them:

    batch                        flagged at all   right concern   false alarms
    1 (66 / 60)                  50/66  76 %      45/66  68 %     1/60  1.7 %
    2 (50 / 50)                  34/50  68 %      28/50  56 %     4/50  8.0 %
    3 (45 / 45, euphemistic)     25/45  56 %      24/45  53 %     2/45  4.4 %

So expect roughly one disclosure in three worded in a way nobody has written down yet to
be missed. The lexicon catches explicit words well and euphemism ("I dread going home",
"there's a chair against my door") poorly. The detector is one safety net, not the only
one: practitioners still read transcripts. When you find a disclosure the detector
misses, add it here, then generalise the lexicon (not just that string).
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import safeguarding as sg
from bot.safeguarding import (
    AUDIENCES,
    Concern,
    SafeguardingConfig,
    SafeguardingConfigError,
    default_config,
    detect,
    normalise,
    tier_of,
)

CORPUS_PATH = Path(__file__).with_name("safeguarding_corpus.yaml")
CONCERN_IDS = {
    "sexual_abuse", "physical_harm", "neglect", "self_harm_suicide", "unsafe_at_home",
    "exploitation", "running_away", "immediate_danger", "domestic_abuse", "emotional_abuse",
}
# Reached on this corpus with the review net (sg-matcher): 0 of 473 ordinary answers alerted,
# 0 sent to review (the net was trained on this corpus, so this is a floor, not a measurement:
# blind figures are in tests/safeguarding_blind/README.md). The thresholds keep a margin of two
# answers alerted and four sent to review; they were 1 % and 4 % before the net, 5 % for any
# flag before tiers.
MAX_ALERT_RATE = 0.005
MAX_REVIEW_RATE = 0.005  # 2 of 473 at round 5 (sg-alert); 1 of 473 at round 7 (sg-tune2), margin of one
BBC = "I'm being forced to have sex and I'm only 12"
ERROR_RE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$", re.S)


@pytest.fixture(scope="module")
def config() -> SafeguardingConfig:
    return SafeguardingConfig.load()


@pytest.fixture(scope="module")
def corpus() -> dict:
    data = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
    return {"disclosures": data["disclosures"], "ordinary": data["ordinary"]}


def _show(config: SafeguardingConfig, text: str) -> str:
    return f"  {text!r}\n      normalised: {config.normalise(text)!r}"


# --------------------------------------------------------------------------------------
# The corpus itself
# --------------------------------------------------------------------------------------


def test_corpus_is_big_varied_and_well_formed(corpus):
    dis, ordinary = corpus["disclosures"], corpus["ordinary"]
    assert len(dis) >= 160, len(dis)
    assert len(ordinary) >= 160, len(ordinary)
    for e in dis:
        assert set(e) == {"concern", "text"}, e
        assert e["concern"] in CONCERN_IDS, e
        assert isinstance(e["text"], str) and e["text"].strip(), e
    assert all(isinstance(t, str) and t.strip() for t in ordinary)
    texts = [e["text"] for e in dis]
    assert len(set(texts)) == len(texts), "a disclosure is listed twice"
    assert len(set(ordinary)) == len(ordinary), "an ordinary answer is listed twice"
    assert not set(texts) & set(ordinary), "a text is labelled both ways"
    # every first-stage concern is covered by several phrasings (domestic and emotional
    # abuse, added in issue 12, are covered by tests/safeguarding_tuning.yaml)
    for cid in CONCERN_IDS - {"domestic_abuse", "emotional_abuse"}:
        assert sum(e["concern"] == cid for e in dis) >= 10, cid
    # the BBC phrase and its variants: as written, lower case, no apostrophe, misspelt,
    # text-speak, and buried inside a longer ordinary answer
    lowered = {t.lower() for t in texts}
    assert BBC.lower() in lowered
    assert "im being forced to have sex and im only 12" in lowered
    assert any("forcd" in t or "forsed" in t for t in lowered)
    assert any(" 2 " in t and " n " in t for t in lowered)
    assert any(BBC.lower() in t and len(t) > len(BBC) + 40 for t in lowered)
    # the near-misses named in the brief are in the ordinary answers
    for near in ("hit the ball", "dying to see", "killed it at football", "film was so scary",
                 "cut my hand on a tin", "ran to school", "hit me up", "hit the target"):
        assert any(near in t.lower() for t in ordinary), near
    # "my dad hit my mum" is a disclosure, labelled honestly
    assert {"concern": "physical_harm", "text": "my dad hit my mum"} in dis


# --------------------------------------------------------------------------------------
# Recall, concern labels, false alarms
# --------------------------------------------------------------------------------------


def test_bbc_phrase_is_flagged_as_sexual_abuse(config):
    found = config.detect(BBC)
    assert [c.concern for c in found] == ["sexual_abuse"]
    assert found[0].matched in BBC and "sex" in found[0].matched


def test_recall_on_disclosures_is_total(config, corpus):
    missed = [e["text"] for e in corpus["disclosures"] if not config.detect(e["text"])]
    n = len(corpus["disclosures"])
    print(f"\nsafeguarding recall: {n - len(missed)}/{n}")
    assert not missed, (f"{len(missed)} of {n} disclosures were NOT flagged:\n"
                        + "\n".join(_show(config, t) for t in missed))


def test_each_disclosure_gets_its_expected_concern(config, corpus):
    wrong = []
    for e in corpus["disclosures"]:
        got = [c.concern for c in config.detect(e["text"])]
        if e["concern"] not in got:
            wrong.append(f"  expected {e['concern']}, got {got or 'nothing'}:\n" + _show(config, e["text"]))
    assert not wrong, f"{len(wrong)} disclosures lack their expected concern:\n" + "\n".join(wrong)


def test_false_alarm_rates_on_ordinary_answers(config, corpus):
    found = [(t, config.detect(t)) for t in corpus["ordinary"]]
    n = len(corpus["ordinary"])
    alerted = [(t, f) for t, f in found if tier_of(f) == "alert"]
    review = [(t, f) for t, f in found if tier_of(f) == "review"]

    def show(rows):
        return "\n".join(f"  {t!r} -> " + ", ".join(f"{c.concern}/{c.tier} on {c.matched!r} ({c.rule})" for c in f)
                         for t, f in rows)

    print(f"\nsafeguarding ordinary alerted: {len(alerted)}/{n} = {len(alerted) / n:.1%}\n{show(alerted)}"
          f"\nordinary sent to review: {len(review)}/{n} = {len(review) / n:.1%}")
    assert len(alerted) / n <= MAX_ALERT_RATE, (
        f"ordinary answers alerted {len(alerted) / n:.1%}, over {MAX_ALERT_RATE:.0%}:\n{show(alerted)}")
    assert len(review) / n <= MAX_REVIEW_RATE, (
        f"ordinary answers sent to review {len(review) / n:.1%}, over {MAX_REVIEW_RATE:.0%}:\n{show(review)}")


@pytest.mark.parametrize("text", [
    "my brother hit the ball through the window",
    "I'm dying to see my nan",
    "we killed it at football",
    "the film was so scary",
    "I cut my hand on a tin",
    "I ran to school",
    "hit me up later",
    "hmu later",
    "I hit the target in archery",
    "we were killing it in the quiz",
    "my feet are killing me",
    "It hurt my feelings when they left me out",
    "My dog ran away but we found him",
    "We watched Home Alone at Christmas",
    "No food allergies",
    "That's odd",
    "shhh, the baby is asleep",
])
def test_near_misses_are_not_flagged(config, text):
    assert config.detect(text) == [], [(c.concern, c.matched, c.rule) for c in config.detect(text)]


@pytest.mark.parametrize("text, concern", [
    ("we killed it at football but then my dad hit me", "physical_harm"),
    ("hit me up later. also he hit me last night", "physical_harm"),
    ("I'm dying to see my nan because I want to kill myself", "self_harm_suicide"),
    ("My dog ran away and so did I, I ran away from home", "running_away"),
])
def test_a_near_miss_does_not_hide_a_real_disclosure(config, text, concern):
    assert concern in [c.concern for c in config.detect(text)]


# --------------------------------------------------------------------------------------
# The detect() API
# --------------------------------------------------------------------------------------


def test_detect_result_shape(config):
    text = "He's got a KNIFE and he said he'll kill me, I want to die"
    found = config.detect(text)
    ids = [c.concern for c in found]
    assert len(ids) == len(set(ids)), "at most one Concern per concern id"
    assert ids == sorted(ids, key=config.severity.index), "most serious first"
    assert ids[0] == "immediate_danger"
    for c in found:
        assert isinstance(c, Concern)
        assert c.label == config.concerns[c.concern]
        assert c.matched and c.matched in text, c
        assert c.rule


def test_detect_never_raises_on_empty_or_odd_input(config):
    assert config.detect("") == []
    assert config.detect("   \n\t ") == []
    assert config.detect(None) == []  # type: ignore[arg-type]
    assert config.detect(42) == []  # type: ignore[arg-type]
    assert config.detect("!!!???...") == []
    assert config.detect("\x00\x01\x02") == []


def test_matched_fragment_is_from_the_original_text(config):
    text = "Honestly?? I’m SO scared of my step-dad :( "
    (c,) = config.detect(text)
    assert c.concern == "unsafe_at_home"
    assert c.matched in text and "scared" in c.matched


def test_concerns_severity_and_labels(config):
    assert set(config.severity) == CONCERN_IDS
    assert list(config.concerns) == list(config.severity)
    assert config.severity[0] == "immediate_danger"
    assert all(label.strip() for label in config.concerns.values())
    assert config.audiences == AUDIENCES


def test_module_level_helpers_use_the_packaged_default():
    assert default_config() is default_config()
    assert [c.concern for c in detect(BBC)] == ["sexual_abuse"]
    assert normalise("Im OK") == "i am ok"


# --------------------------------------------------------------------------------------
# normalise()
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    # contractions, with and without the apostrophe, straight or curly
    ("I'm OK", "i am ok"),
    ("Im OK", "i am ok"),
    ("I’m fine", "i am fine"),
    ("don't", "do not"),
    ("dont", "do not"),
    ("can't, cannot, cant", "can not can not can not"),
    ("won't", "will not"),
    ("he's here", "he is here"),
    ("he'll", "he will"),
    ("mum's boyfriend", "mum boyfriend"),
    ("mums boyfriend", "mum boyfriend"),
    # text-speak
    ("kms", "kill myself"),
    ("kys", "kill yourself"),
    ("i want to unalive myself", "i want to kill myself"),
    ("wanna", "want to"),
    ("gonna", "going to"),
    ("u ok?", "you ok"),
    ("ur mum", "your mum"),
    ("my bf", "my boyfriend"),
    ("my bff", "my best friend"),
    ("hmu", "hit me up"),
    ("hes here rn", "he is here right now"),
    ("sewer slide", "suicide"),
    # misspellings
    ("sucide", "suicide"),
    ("suicde", "suicide"),
    ("succide", "suicide"),
    ("i want to kil myself", "i want to kill myself"),
    ("rapped", "raped"),
    ("abussed", "abused"),
    ("im bein forcd", "i am being forced"),
    # numbers as words only between words
    ("i want 2 die", "i want to die"),
    ("me n my mum", "me and my mum"),
    ("im 2", "i am 2"),
    ("he is 22 and i am 14", "he is 22 and i am 14"),
    ("2 4 6", "2 4 6"),
    # look-alikes, masks, stretched letters
    ("s3x", "sex"),
    ("k!ll", "kill"),
    ("s*x", "sex"),
    ("pleeeease heeelp", "please help"),
    ("sooooo scaaaared", "so scared"),
    # accents, case, zero-width characters, punctuation
    ("CAFÉ Naïve", "cafe naive"),
    ("he\u200bl\u200bp", "help"),
    ("self-harm", "self harm"),
    ("selfharm", "self harm"),
    ("...!!!", ""),
    # short keys match only as written: "od" must not eat "odd"
    ("odd", "odd"),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_a_childs_shhh_is_not_text_speak_for_self_harm():
    assert "self harm" not in normalise("shhh")
    assert "self harm" not in normalise("shh")


def test_normalise_keeps_emoji_out_and_never_raises():
    assert normalise("😢 help 🔪") == "help"
    assert normalise("") == ""


# --------------------------------------------------------------------------------------
# Override files: merging, and errors as file:line:col: message
# --------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_override_adds_phrases_and_replaces_wording(tmp_path):
    # the lexicon does not know the word (the review net alone may still find "he ... me"
    # worth a look: that is not what this test is about)
    base = SafeguardingConfig.load(classifier=False)
    assert base.detect("he splonked me") == []
    over = _write(tmp_path, "council.yaml", """\
concerns:
  physical_harm:
    phrases:
      - splonked me|us
  neglect:
    exclusions:
      - home alone ... panto
  coercion_at_school:
    label: Pressure at school
    phrases:
      - made me skip school
normalisation:
  replace:
    splonkd: splonked
responses:
  child: "Thank you for telling me. Your worker will be told so they can help. Call 999 if you are in danger now. Childline: 0800 1111."
texts:
  follow_up_offer: "Shall we carry on, or stop for now?"
""")
    cfg = SafeguardingConfig.load(over)
    # added phrase, and the replacement table feeding it
    assert [c.concern for c in cfg.detect("he splonked me")] == ["physical_harm"]
    assert [c.concern for c in cfg.detect("he splonkd me")] == ["physical_harm"]
    # the default's phrases are still there
    assert [c.concern for c in cfg.detect(BBC)] == ["sexual_abuse"]
    assert "physical_harm" in [c.concern for c in cfg.detect("my dad hit my mum")]
    # an added exclusion
    assert "neglect" in [c.concern for c in base.detect("home alone the panto")]
    assert "neglect" not in [c.concern for c in cfg.detect("home alone the panto")]
    # a new concern goes last in severity, with its label
    assert cfg.severity[-1] == "coercion_at_school"
    assert cfg.concerns["coercion_at_school"] == "Pressure at school"
    assert [c.concern for c in cfg.detect("they made me skip school")] == ["coercion_at_school"]
    # replaced wording; the rest is the default's
    assert cfg.response("child").startswith("Thank you for telling me. Your worker will be told")
    assert cfg.response("family") == base.response("family")
    assert cfg.offer() == "Shall we carry on, or stop for now?"
    assert cfg.text("alert") == base.text("alert")
    # the packaged default itself is untouched
    assert SafeguardingConfig.load().response("child") == base.response("child")


def test_later_override_wins_and_severity_can_be_reordered(tmp_path):
    a = _write(tmp_path, "a.yaml", 'texts:\n  follow_up_stop: "Stop"\n')
    b = _write(tmp_path, "b.yaml", 'texts:\n  follow_up_stop: "Stop here"\n'
               "severity: [sexual_abuse, immediate_danger, self_harm_suicide, physical_harm, domestic_abuse,"
               " exploitation, unsafe_at_home, emotional_abuse, neglect, running_away]\n")
    cfg = SafeguardingConfig.load(a, b)
    assert cfg.text("follow_up_stop") == "Stop here"
    assert cfg.severity[:2] == ("sexual_abuse", "immediate_danger")
    found = cfg.detect("he has a knife and he raped me")
    assert [c.concern for c in found][:2] == ["sexual_abuse", "immediate_danger"]


def test_a_set_can_include_another_set(tmp_path):
    over = _write(tmp_path, "sets.yaml", """\
sets:
  pets: [hamster, gerbil]
  animals: [$pets, pony]
concerns:
  physical_harm:
    phrases:
      - kicks|kicked the $animals
""")
    cfg = SafeguardingConfig.load(over)
    assert "physical_harm" in [c.concern for c in cfg.detect("he kicked the gerbil")]
    loop = _write(tmp_path, "loop.yaml", "sets:\n  a: [$b]\n  b: [$a]\nconcerns:\n  neglect:\n    phrases: [$a x]\n")
    with pytest.raises(SafeguardingConfigError, match="includes itself"):
        SafeguardingConfig.load(loop)


def _error(tmp_path: Path, text: str, name: str = "override.yaml") -> re.Match:
    p = _write(tmp_path, name, text)
    with pytest.raises(SafeguardingConfigError) as info:
        SafeguardingConfig.load(p)
    m = ERROR_RE.match(str(info.value))
    assert m, f"not file:line:col: message -> {info.value}"
    assert m["file"] == str(p)
    assert (int(m["line"]), int(m["col"])) == (info.value.line, info.value.col)
    return m


def test_bad_regex_is_reported_at_its_line(tmp_path):
    m = _error(tmp_path, """\
concerns:
  neglect:
    patterns:
      - '\\bno food\\b'
      - '(unclosed'
""")
    assert m["line"] == "5"
    assert "bad regular expression" in m["message"]
    assert int(m["col"]) >= 9  # points into the quoted pattern


def test_unsafe_regex_is_refused(tmp_path):
    m = _error(tmp_path, "concerns:\n  neglect:\n    patterns:\n      - 'no .* food'\n")
    assert m["line"] == "4" and "unbounded repeat" in m["message"]
    m = _error(tmp_path, "concerns:\n  neglect:\n    patterns:\n      - 'x?'\n")
    assert "matches empty text" in m["message"]


def test_unknown_key_is_reported_with_a_suggestion(tmp_path):
    m = _error(tmp_path, "concerns:\n  neglect:\n    phrase:\n      - no tea\n")
    assert (m["line"], m["col"]) == ("3", "5")
    assert "unknown key 'phrase'" in m["message"] and "did you mean 'phrases'" in m["message"]
    m = _error(tmp_path, "response:\n  child: hi\n")
    assert (m["line"], m["col"]) == ("1", "1") and "did you mean 'responses'" in m["message"]
    m = _error(tmp_path, "responses:\n  teenager: hi\n")
    assert m["line"] == "2" and "unknown key 'teenager'" in m["message"]


def test_tab_in_indentation_is_reported_at_the_tab(tmp_path):
    m = _error(tmp_path, "concerns:\n  neglect:\n\tphrases:\n      - no tea\n")
    assert (m["line"], m["col"]) == ("3", "1")
    assert "tab" in m["message"]


def test_other_bad_files(tmp_path):
    m = _error(tmp_path, "concerns:\n  new_thing:\n    phrases: [x y]\n")
    assert m["line"] == "2" and "needs a label" in m["message"]
    m = _error(tmp_path, "concerns:\n  neglect:\n    phrases:\n      - no $snacks\n")
    assert m["line"] == "4" and "unknown set '$snacks'" in m["message"]
    m = _error(tmp_path, "concerns:\n  neglect:\n    phrases:\n      - ... no tea\n")
    assert "cannot start or end with '...'" in m["message"]
    m = _error(tmp_path, "texts:\n  alert: 'Alert for {persn}'\n")
    assert m["line"] == "2" and "unknown placeholder {persn}" in m["message"]
    m = _error(tmp_path, "severity: [neglect, nonsense]\n")
    assert "unknown concern 'nonsense'" in m["message"]
    m = _error(tmp_path, "max_gap: 40\n")
    assert "max_gap" in m["message"]
    m = _error(tmp_path, "texts:\n  alert: \"a\x08b\"\n")
    assert (m["line"], m["col"]) == ("2", "12") and "control character" in m["message"]
    m = _error(tmp_path, "concerns: [a, b\n")
    assert "invalid YAML" in m["message"]
    p = tmp_path / "latin1.yaml"
    p.write_bytes("texts:\n  follow_up_stop: 'Arr\xeat'\n".encode("latin-1"))
    with pytest.raises(SafeguardingConfigError, match=r"latin1\.yaml:2:\d+: file is not UTF-8"):
        SafeguardingConfig.load(p)
    with pytest.raises(SafeguardingConfigError, match=r"missing\.yaml:1:1: cannot read file"):
        SafeguardingConfig.load(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------------------
# Wording: numbers per audience, no promise of secrecy
# --------------------------------------------------------------------------------------

SECRECY = re.compile(
    r"\bsecret|\bconfidential|\bprivate\b|won'?t tell|will not tell|not going to tell|never tell"
    r"|nobody will know|no one will know|no-one will know|only (?:you and me|between)|stays? between"
    r"|(?<!can't keep this just )(?<!cannot keep this just )(?<!can not keep this just )between us",
    re.I)


def test_child_response_has_999_and_childline(config):
    text = config.response("child")
    assert "999" in text
    assert "Childline" in text and "0800 1111" in text
    # no adult helplines a child would not use, no professional jargon
    assert "0808 800 5000" not in text and "designated safeguarding lead" not in text


@pytest.mark.parametrize("audience", ["family", "practitioner"])
def test_adult_responses_have_every_number(config, audience):
    text = config.response(audience)
    for needle in ("999", "NSPCC", "0808 800 5000", "NHS 111", "option 2", "Samaritans", "116 123",
                   "SHOUT", "85258"):
        assert needle in text, (audience, needle)


def test_practitioner_response_says_the_lead_will_be_told(config):
    text = config.help_for("practitioner")
    assert "designated safeguarding lead will be told" in text.lower() and "{told}" not in text


def test_response_for_unknown_audience_is_an_error(config):
    with pytest.raises(ValueError, match="unknown audience"):
        config.response("teenager")


@pytest.mark.parametrize("key", ["child", "young_person", "adult", "practitioner"])
def test_person_facing_responses_never_promise_secrecy(config, key):
    text = config.help_for(key)  # the whole response, as shown, by who is answering
    assert not SECRECY.search(text), SECRECY.search(text)
    assert sg._promises_secrecy(config.normalise(text)) is None
    # and they say who will be told (or has been alerted), and why
    assert re.search(r"\b(told|alerted)\b", text), key
    if key != "practitioner":
        assert "so they can help" in text, key


def test_texts_never_promise_secrecy_and_offer_a_choice(config):
    for key in ("follow_up_offer", "follow_up_continue", "follow_up_stop"):
        assert not SECRECY.search(config.text(key)), key
    assert config.offer() == config.text("follow_up_offer")
    assert "?" in config.offer()
    with pytest.raises(KeyError):
        config.text("nope")


def test_no_response_asks_a_leading_question(config):
    for aud in AUDIENCES:
        assert "?" not in config.response(aud), aud


def test_override_promising_secrecy_is_refused(tmp_path):
    for bad in ("This stays between us.", "Everything you say is confidential.",
                "We won't tell anyone.", "It's our secret.", "Nobody else will know.",
                "I promise not to tell.", "This chat stays private.", "Just between you and me.",
                "Only you and I will know.", "I won't say anything to your mum."):
        m = _error(tmp_path, f'responses:\n  child: "{bad}"\n')
        assert m["line"] == "2" and "never promise secrecy" in m["message"], bad
    m = _error(tmp_path, 'texts:\n  follow_up_offer: "Nobody will know. Carry on?"\n')
    assert "secrecy" in m["message"]
    # saying you can NOT keep it secret, or between you, is the right thing, and is allowed
    for good in ("I can't keep this just between us.", "I cannot keep this a secret, so I will tell your worker."):
        cfg = SafeguardingConfig.from_text(f'responses:\n  child: "{good} Call 999 or Childline on 0800 1111."\n')
        assert good in cfg.response("child")


def test_alert_template_is_filled(config):
    text = config.alert_text(person="Sam (tg:1)", flow="three-houses", concern="Sexual abuse",
                             words=BBC, time="2026-01-01T10:00:00Z", ack_command="/ack 7")
    for part in ("Sam (tg:1)", "three-houses", "Sexual abuse", BBC, "2026-01-01T10:00:00Z", "/ack 7"):
        assert part in text
    assert "{" not in text
    fields = {f for _l, f, _s, _c in __import__("string").Formatter().parse(config.text("alert")) if f}
    assert fields == set(sg.ALERT_FIELDS)


# --------------------------------------------------------------------------------------
# Robustness and speed
# --------------------------------------------------------------------------------------

ANY_CHAR = st.characters(blacklist_categories=())  # everything, including controls and surrogates
EMOJI = st.sampled_from(["😀", "🔪", "💀", "👨‍👩‍👧", "🏳️‍🌈", "\u200d", "\ufe0f", "👍🏽"])
LEXICON_WORDS = ["i", "am", "he", "she", "not", "no", "one", "never", "my", "mum", "dad", "hit", "me",
                 "kill", "myself", "scared", "of", "to", "go", "home", "want", "help", "knife", "secret",
                 "older", "boyfriend", "is", "here", "now", "left", "alone", "food", "run", "away", "sex",
                 "forced", "'", "*", "2", "n", "u", "kms", "...", "!!", "s*x", "h3lp", "don't"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(ANY_CHAR, max_size=300),
    st.lists(st.one_of(ANY_CHAR, EMOJI), max_size=200).map("".join),
    st.lists(st.sampled_from(LEXICON_WORDS), max_size=80).map(" ".join),
    st.lists(st.sampled_from(LEXICON_WORDS), max_size=80).map("".join),
))
def test_detect_never_raises_on_arbitrary_text(config, text):
    found = config.detect(text)
    assert isinstance(found, list)
    for c in found:
        assert c.concern in config.concerns
        assert isinstance(c.matched, str) and c.matched
    assert isinstance(config.normalise(text), str)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(ANY_CHAR, EMOJI), min_size=1, max_size=64).map("".join))
def test_detect_never_raises_on_100kb_strings(config, chunk):
    text = (chunk * (100_000 // len(chunk) + 1))[:100_000]
    assert isinstance(config.detect(text), list)


def _long_inputs() -> dict[str, str]:
    rnd = random.Random(12)
    words = sorted({w for phrase in LEXICON_WORDS for w in phrase.split()})
    lexicon = " ".join(rnd.choice(words) for _ in range(25_000))
    return {
        "one letter": "a" * 100_000,
        "one word": "hit " * 25_000,
        "negations": "not " * 25_000,
        "no one": "no one " * 14_300,
        "lexicon words at random": lexicon[:100_000],
        "masked words": "s*x " * 25_000,
        "apostrophes": "don't " * 16_700,
        "emoji": "😀🔪💀 " * 25_000,
        "no spaces": "kill" * 25_000,
        "accents": "ñandú café " * 9_100,
    }


@pytest.mark.parametrize("name", list(_long_inputs()))
def test_long_input_is_fast(config, name):
    text = _long_inputs()[name]
    start = time.perf_counter()
    config.detect(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{name}: {len(text)} characters took {elapsed:.2f} s"


def test_a_disclosure_at_the_end_of_a_long_message_is_found(config):
    text = "we went to the park and had a picnic " * 2_500 + BBC
    assert "sexual_abuse" in [c.concern for c in config.detect(text)]


def test_typical_message_is_quick(config, corpus):
    texts = [e["text"] for e in corpus["disclosures"]] + corpus["ordinary"]
    start = time.perf_counter()
    for t in texts:
        config.detect(t)
    per = (time.perf_counter() - start) / len(texts)
    assert per < 0.005, f"{per * 1e6:.0f} µs per message"
