"""Answers land on the question the person saw (issue 10, item 4).

- After a safeguarding response only carry on or stop leave the hold; anything else is kept
  verbatim, screened again, and the choice is offered again; nothing is stored against a
  question that has not been shown; messages due between questions are shown on carrying on.
- Text typed for a question the person saw before the bot moved on is not applied to the
  next question: they are asked whether it answers it.
- An option's label, id or number typed at a choice, multi, yes/no or scale question is an
  answer, not free text, and is not screened; any other text there still is.
"""

import json

import pytest

from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.messages import msg
from bot.safeguarding import SafeguardingConfig
from tests.conftest import flow_from

DISCLOSURE = "Dad hits me when he has been drinking"
WORRY = "Mum's health"


@pytest.fixture(scope="module")
def safeguarding():
    return SafeguardingConfig.load()


@pytest.fixture
def sg(store, library, safeguarding):
    return ConversationService(store, library, safeguarding=safeguarding)


def answers(service, conv):
    return {a["step_id"]: a["value"] for a in service.store.answers(conv)}


def said(service, conv):
    return [t["text"] for t in service.store.transcript(conv) if t["direction"] == "in"]


def begin(service, flow_id, key="tg:1"):
    me = service.person(key)
    return me, service.start(me, flow_id).conversation_id


# -- the safeguarding hold ------------------------------------------------------------------

def test_im_not_sure_after_a_disclosure_is_kept_screened_again_and_answers_nothing(sg):
    me, conv = begin(sg, "three-columns")
    # past the worries question, where a disclosure is thanked rather than held (issue 12)
    sg.handle(me, Input.from_text(WORRY))
    reply = sg.handle(me, Input.from_text(DISCLOSURE))
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"] and len(reply.alerts) == 1
    assert answers(sg, conv) == {"worried_about": WORRY, "working_well": DISCLOSURE}  # the question they saw keeps their words

    reply = sg.handle(me, Input.from_text("I'm not sure"))
    assert [(p.kind, p.text) for p in reply.prompts] == [("offer", msg("hold.reask"))]
    assert not reply.accepted and reply.alerts == []
    assert answers(sg, conv) == {"worried_about": WORRY, "working_well": DISCLOSURE}
    assert sg.store.conversation(conv).state == "needs_to_happen"
    assert said(sg, conv)[-1] == "I'm not sure"  # verbatim in the transcript

    # screened again: a second disclosure while on hold is added to the person's open alert
    # (one open alert per person, notified again), and still no answer
    reply = sg.handle(me, Input.from_text("I'm not sure, he hit my sister too"))
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"] and len(reply.alerts) == 1
    flagged = [t["text"] for t in sg.store.transcript(conv) if t["flagged"]]
    assert flagged == [DISCLOSURE, "I'm not sure, he hit my sister too"]
    assert "I'm not sure, he hit my sister too" in sg.store.alerts()[-1]["words"]  # the lead is told the new words
    [alert] = sg.store.alerts()
    assert alert["words"].startswith(DISCLOSURE) and alert["words"].endswith("] I'm not sure, he hit my sister too")
    assert alert["update_count"] == 1
    assert answers(sg, conv) == {"worried_about": WORRY, "working_well": DISCLOSURE}

    reply = sg.handle(me, Input.from_text("carry on"))
    assert [(p.kind, p.step_id) for p in reply.prompts] == [("question", "needs_to_happen")]
    sg.handle(me, Input.from_text("Gran picks them up"))
    assert answers(sg, conv) == {"worried_about": WORRY, "working_well": DISCLOSURE, "needs_to_happen": "Gran picks them up"}


@pytest.mark.parametrize("choice, status", [
    (Input.from_text("stop"), "cancelled"),
    (Input.from_text("/cancel"), "cancelled"),
    (Input("cancel"), "cancelled"),  # the "Stop for now" button
    (Input.from_text("Carry on"), "in_progress"),
    (Input.from_text("yes"), "in_progress"),
    (Input("continue"), "in_progress"),  # the "Carry on" button
])
def test_only_carry_on_or_stop_leave_the_hold(sg, choice, status):
    me, conv = begin(sg, "scaling-checkin")
    sg.handle(me, Input.from_text("my dad hits me"))
    for other in ("hmm", "7", "/back", "/skip", "/repeat", "/help"):
        reply = sg.handle(me, Input.from_text(other))
        assert [p.kind for p in reply.prompts] == ["offer"], other
    assert answers(sg, conv) == {"best_hopes": "my dad hits me"}
    reply = sg.handle(me, choice)
    assert reply.status == status
    assert answers(sg, conv) == {"best_hopes": "my dad hits me"}
    if status == "in_progress":
        assert [p.step_id for p in reply.prompts] == ["scale_now"]


def test_messages_between_questions_are_shown_after_carrying_on(sg):
    me, conv = begin(sg, "restorative-rehearsal")
    for label in ("What happened?", "2", "realised"):
        sg.handle(me, Input.from_text(label))
    reply = sg.handle(me, Input.from_text("What happened when my dad hit me at home?"))
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"]
    assert sg.handle(me, Input.from_text("hmm")).prompts[0].kind == "offer"
    reply = sg.handle(me, Input.from_text("carry on"))
    assert [(p.kind, p.step_id) for p in reply.prompts] == [("message", "rephrase_model"), ("question", "confidence")]
    assert reply.prompts[0].text.startswith("One way to ask it:")
    # shown once: carrying on again only repeats the question
    assert [p.step_id for p in sg.handle(me, Input("continue")).prompts] == ["confidence"]


def test_a_disclosure_refused_as_an_answer_shows_no_error_after_carrying_on(sg):
    me, conv = begin(sg, "scaling-checkin")
    sg.handle(me, Input.from_text("We talk more"))
    reply = sg.handle(me, Input.from_text("my dad hits me"))  # at the 0-10 scale: not a number
    assert [p.kind for p in reply.prompts] == ["safeguarding", "offer"]
    reply = sg.handle(me, Input.from_text("carry on"))
    assert [(p.kind, p.step_id) for p in reply.prompts] == [("question", "scale_now")]
    assert answers(sg, conv) == {"best_hopes": "We talk more"}


# -- option labels are answers, not free text ---------------------------------------------

@pytest.mark.parametrize("typed", ["Why did you push him?", "why did you push him", "why", "1"])
def test_typing_an_options_label_id_or_number_raises_no_alert(sg, typed):
    me, conv = begin(sg, "restorative-rehearsal")
    reply = sg.handle(me, Input.from_text(typed))
    assert reply.alerts == [] and sg.store.alerts() == []
    assert reply.prompts[0].step_id == "opening_feedback"  # the teaching after the option is shown
    assert answers(sg, conv) == {"opening": "why"}


def test_the_same_words_at_a_text_question_are_still_screened(sg):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text(WORRY))  # "What's working well?" does not expect concerns
    reply = sg.handle(me, Input.from_text("Why did you push him?"))
    # screened: the lexicon's "push him" is read; both nets read this rehearsal question as an
    # ordinary answer, so since round 10's doubt rule a person looks at it without interrupting
    items = sg.store.review_items(conversation_ids=[reply.conversation_id])
    assert ([i["concern"] for i in items], reply.alerts, reply.prompts[0].kind) == (["physical_harm"], [], "question")


def test_other_text_at_a_choice_question_is_still_screened(sg):
    me, conv = begin(sg, "restorative-rehearsal")
    reply = sg.handle(me, Input.from_text("he pushes me down the stairs"))
    assert len(reply.alerts) == 1 and answers(sg, conv) == {}


PICKS = flow_from("""
id: picks
version: 1
title: Picks
audience: family
steps:
  - id: who
    ask: Who hit the ball?
    type: multi
    options: [{id: dad, label: Dad hit me}, {id: mum, label: Mum}]
  - id: ok
    ask: Are you OK?
    type: yesno
  - id: scale
    ask: How safe?
    type: scale
""")


def test_option_words_at_multi_yesno_and_scale_are_answers(tmp_path, safeguarding):
    from bot.engine.library import FlowLibrary
    from bot.store import Store

    service = ConversationService(Store(tmp_path / "p.db"), FlowLibrary([PICKS]), safeguarding=safeguarding)
    me, conv = begin(service, "picks")
    assert safeguarding.detect("Dad hit me")  # alone, these words would alert
    for typed in ("Dad hit me, Mum", "no", "3"):
        assert service.handle(me, Input.from_text(typed)).alerts == [], typed
    assert answers(service, conv) == {"who": ["dad", "mum"], "ok": False, "scale": 3}
    assert service.store.alerts() == []


# -- text typed for a question the person saw before the bot moved on -----------------------

def test_a_retype_after_a_slow_reply_is_not_applied_to_the_next_question(sg):
    me, conv = begin(sg, "three-columns")
    saw = (conv, "worried_about")
    assert sg.handle(me, Input.from_text("Missed school"), seen=saw).accepted
    reply = sg.handle(me, Input.from_text("Missed school"), seen=saw)  # typed again before the reply came
    assert not reply.accepted and [p.kind for p in reply.prompts] == ["confirm"]
    assert reply.prompts[0].text == msg("answers.stale", text="Missed school", question="What's working well?")
    assert answers(sg, conv) == {"worried_about": "Missed school"}
    assert said(sg, conv)[-1] == "Missed school"
    line = sg.store.transcript(conv)[-2]
    assert (line["direction"], line["step_id"]) == ("in", "worried_about")  # kept against the question it was typed for

    # "No": the question is asked again, nothing stored
    reply = sg.handle(me, Input("discard", button=reply.prompts[0].ref))
    assert [(p.kind, p.step_id) for p in reply.prompts] == [("question", "working_well")]
    assert answers(sg, conv) == {"worried_about": "Missed school"}
    # a later answer, typed after seeing the question, is applied as usual
    sg.handle(me, Input.from_text("Gran helps"), seen=(conv, "working_well"))
    assert answers(sg, conv) == {"worried_about": "Missed school", "working_well": "Gran helps"}


@pytest.mark.parametrize("button", [True, False])
def test_yes_applies_the_retyped_text_to_the_question_now_asked(sg, button):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text("Missed school"))
    confirm = sg.handle(me, Input.from_text("His teacher is kind"), seen=(None, None))  # only known: not this question
    yes = Input("apply", button=confirm.prompts[0].ref) if button else Input.from_text("yes")
    reply = sg.handle(me, yes)
    assert reply.accepted and reply.prompts[-1].step_id == "needs_to_happen"
    assert answers(sg, conv) == {"worried_about": "Missed school", "working_well": "His teacher is kind"}


def test_other_text_after_the_confirmation_answers_the_question_shown(sg):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text("Missed school"))
    sg.handle(me, Input.from_text("Missed school"), seen=(conv, "worried_about"))
    reply = sg.handle(me, Input.from_text("Gran helps"), seen=(conv, "working_well"))
    assert reply.accepted
    assert answers(sg, conv) == {"worried_about": "Missed school", "working_well": "Gran helps"}
    # a stale yes/no button after that changes nothing
    reply = sg.handle(me, Input("apply"))
    assert reply.closed and answers(sg, conv) == {"worried_about": "Missed school", "working_well": "Gran helps"}


def test_yes_under_an_earlier_confirm_never_applies_a_later_text(sg):
    """Two texts typed before the next question arrived: two confirms. The second replaces the
    first; "Yes" under the first applies nothing (it says so and shows the one waiting), and
    only the text of the confirm pressed becomes the answer. Both texts stay in the transcript."""
    me, conv = begin(sg, "three-columns")
    saw = (conv, "worried_about")
    sg.handle(me, Input.from_text("Missed school"), seen=saw)
    first = sg.handle(me, Input.from_text("Gran helps"), seen=saw).prompts[0]
    second = sg.handle(me, Input.from_text("oops typo"), seen=saw).prompts[0]
    assert first.ref is not None and second.ref is not None and first.ref != second.ref
    for kind in ("apply", "discard"):  # neither applies nor drops the text waiting now
        reply = sg.handle(me, Input(kind, button=first.ref), conversation_id=conv)
        assert reply.closed and not reply.accepted
        assert [(p.kind, p.text) for p in reply.prompts] == [("info", msg("answers.stale_gone")),
                                                             ("confirm", second.text)]
        assert reply.prompts[-1].ref == second.ref
        assert answers(sg, conv) == {"worried_about": "Missed school"}
    assert [p.ref for p in sg.current(me).prompts] == [second.ref]
    assert {"Gran helps", "oops typo"} <= set(said(sg, conv))
    # a button from before buttons named their text: which one it meant is unknown, so the same
    reply = sg.handle(me, Input("apply"), conversation_id=conv)
    assert reply.closed and reply.prompts[-1].ref == second.ref
    assert answers(sg, conv) == {"worried_about": "Missed school"}
    # "Yes" under the confirm shown now applies its own text
    reply = sg.handle(me, Input("apply", button=second.ref), conversation_id=conv)
    assert reply.accepted and answers(sg, conv) == {"worried_about": "Missed school", "working_well": "oops typo"}


def test_a_text_waiting_since_before_texts_had_ids_is_named_when_its_old_button_is_pressed(sg):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text("Missed school"))
    sg.handle(me, Input.from_text("Gran helps"), seen=(conv, "worried_about"))
    row = sg.store.conversation(conv)
    session = json.loads(row.session) if isinstance(row.session, str) else dict(row.session)
    del session["pending"]["id"]  # as stored before the upgrade
    sg.store.update_conversation(conv, state=row.state, session=session, status=row.status)
    reply = sg.handle(me, Input("apply"), conversation_id=conv)  # its old button (p:CONV:y)
    assert reply.closed and answers(sg, conv) == {"worried_about": "Missed school"}
    ref = reply.prompts[-1].ref
    assert ref is not None and reply.prompts[-1].text.startswith("You sent “Gran helps”")
    assert sg.handle(me, Input("apply", button=ref), conversation_id=conv).accepted
    assert answers(sg, conv) == {"worried_about": "Missed school", "working_well": "Gran helps"}


def test_a_disclosure_typed_for_an_earlier_question_alerts_but_answers_nothing(sg):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text("Missed school"))
    reply = sg.handle(me, Input.from_text(DISCLOSURE), seen=(conv, "worried_about"))
    assert len(reply.alerts) == 1 and [p.kind for p in reply.prompts] == ["safeguarding", "offer"]
    assert answers(sg, conv) == {"worried_about": "Missed school"}
    reply = sg.handle(me, Input.from_text("carry on"))
    assert [p.step_id for p in reply.prompts] == ["working_well"]


def test_the_console_says_what_to_type_to_carry_on_or_stop(sg):
    import io

    from bot.frontends.console import Console

    out = io.StringIO()
    console = Console(sg, "console:kim", "Kim", stdin=io.StringIO("my dad hits me\nI'm not sure\ncarry on\n"), stdout=out)
    assert console.run("scaling-checkin", respondent="adult") == 0
    text = out.getvalue()
    hint = msg("console.hold_hint")
    # after the offer, and again after the gentle re-ask
    assert text.count(hint) == 2
    assert text.index(msg("hold.reask")) < text.rindex(hint)
    assert "where are things now?" in text.rsplit(hint, 1)[1]


def test_resuming_while_on_hold_offers_the_choice_not_the_unseen_question(sg):
    me, conv = begin(sg, "three-columns")
    sg.handle(me, Input.from_text(WORRY))  # past the worries question, which thanks rather than holds
    sg.handle(me, Input.from_text(DISCLOSURE))
    assert [(p.kind, p.text) for p in sg.current(me).prompts] == [("offer", msg("hold.reask"))]
    sg.handle(me, Input.from_text("carry on"))
    assert [p.step_id for p in sg.current(me).prompts] == ["needs_to_happen"]
    sg.handle(me, Input.from_text("Missed school"), seen=(conv, "working_well"))
    [confirm] = sg.current(me).prompts
    assert confirm.kind == "confirm" and confirm.text.startswith("You sent “Missed school”") and confirm.ref
    assert sg.handle(me, Input("apply", button=confirm.ref)).accepted
    assert answers(sg, conv) == {"worried_about": WORRY, "working_well": DISCLOSURE, "needs_to_happen": "Missed school"}
