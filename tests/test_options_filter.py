"""Issue 13: a choice offers only what is left (``exclude:`` on the step, ``if:`` on an option)."""

from bot.engine.loader import load_flow_text
from bot.engine.runner import FlowRunner, Input, replay
from tests.conftest import flow_from

HOUSES = """
id: houses
version: 1
title: Houses
audience: child
steps:
  - id: first_house
    ask: Which house first?
    type: choice
    options: &houses
      - {id: worries, label: House of Worries}
      - {id: good, label: House of Good Things}
      - {id: dreams, label: House of Dreams}
  - id: second_house
    ask: Which house next?
    type: choice
    options: *houses
    exclude: answers.first_house
  - id: extras
    ask: What else?
    type: multi
    exclude: "[answers.first_house, answers.second_house]"
    options:
      - {id: worries, label: House of Worries}
      - {id: good, label: House of Good Things}
      - {id: dreams, label: House of Dreams}
      - {id: pet, label: My pet, if: "answers.first_house == 'good'"}
"""


def labels(prompt):
    return [o.label for o in prompt.options]


def test_the_house_already_chosen_is_not_offered_and_numbers_count_in_what_is_left():
    runner = FlowRunner(flow_from(HOUSES))
    result = replay(runner, ["2"])  # House of Good Things
    question = result.prompts[-1]
    assert labels(question) == ["House of Worries", "House of Dreams"]
    assert question.plain().splitlines()[-2:] == ["1. House of Worries", "2. House of Dreams"]
    # "2" is now the House of Dreams (the second offered), not the Good Things chosen before
    result = runner.step(result.session, Input.from_text("2"))
    assert result.accepted and result.session.answers["second_house"] == "dreams"
    # option if: 'My pet' is offered only after the House of Good Things came first
    assert labels(result.prompts[-1]) == ["House of Worries", "My pet"]


def test_the_chosen_house_is_refused_by_name_and_by_button():
    runner = FlowRunner(flow_from(HOUSES))
    session = replay(runner, ["House of Worries"]).session
    for inp in (Input.from_text("House of Worries"), Input("answer", button="worries"), Input.from_text("3")):
        result = runner.step(session, inp)
        assert not result.accepted and result.session.state == "second_house"
        assert labels(result.prompts[-1]) == ["House of Good Things", "House of Dreams"]


def test_an_option_if_hides_it_when_false_and_multi_refuses_hidden_ids():
    runner = FlowRunner(flow_from(HOUSES))
    session = replay(runner, ["House of Worries", "House of Dreams"]).session
    assert labels(runner.current(session)[0]) == ["House of Good Things"]
    refused = runner.step(session, Input("answer", button=["good", "pet"]))
    assert not refused.accepted
    done = runner.step(session, Input.from_text("1"))
    assert done.status == "completed" and done.session.answers["extras"] == ["good"]


def test_a_filter_that_leaves_nothing_offers_every_option_rather_than_a_dead_end():
    text = HOUSES.replace("exclude: answers.first_house", "exclude: \"['worries', 'good', 'dreams']\"")
    runner = FlowRunner(flow_from(text))
    result = replay(runner, ["1"])
    assert labels(result.prompts[-1]) == ["House of Worries", "House of Good Things", "House of Dreams"]


def test_filters_are_linted_with_file_line_col():
    bad = HOUSES.replace("exclude: answers.first_house", "exclude: answer")
    _, errors = load_flow_text(bad, "houses.yaml")
    assert [str(e) for e in errors] == [
        "houses.yaml:18:14: 'exclude' uses 'answer', but the options are chosen before the question is answered;"
        " use answers.<step_id> of an earlier step"]
    later = HOUSES.replace("exclude: answers.first_house", "exclude: answers.extras")
    _, errors = load_flow_text(later, "houses.yaml")
    assert len(errors) == 1 and "uses answers.extras, but on some path 'extras' has not been asked yet" in errors[0].message
    assert (errors[0].line, errors[0].col) == (18, 14)
    broken = HOUSES.replace("if: \"answers.first_house == 'good'\"", "if: \"answers.first_house ==\"")
    _, errors = load_flow_text(broken, "houses.yaml")
    assert len(errors) == 1 and errors[0].line == 27 and "an option's 'if'" in errors[0].message
    typo = HOUSES.replace("exclude: answers.first_house", "exclud: answers.first_house")
    _, errors = load_flow_text(typo, "houses.yaml")
    assert "unknown key 'exclud'; did you mean 'exclude'?" in errors[0].message


PICK = """
id: pick-two
version: 1
title: Pick two
audience: family
steps:
  - id: first
    ask: Which first?
    type: choice
    options: &opts [Tea, Coffee, Juice]
  - id: second
    ask: Which next?
    type: choice
    options: *opts
    exclude: answers.first
  - id: more
    ask: Any others?
    type: multi
    options: *opts
    exclude: "[answers.first, answers.second]"
"""


async def test_telegram_buttons_offer_what_is_left_and_a_press_names_the_right_option(tmp_path):
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.store import Store
    from bot.testing.telegram import running_bot
    from bot.frontends.telegram.render import CHECK
    from bot.messages import msg
    from tests.test_telegram import answers_of, start_flow

    library = FlowLibrary([flow_from(PICK)])
    service = ConversationService(Store(tmp_path / "tg.db"), library)
    async with running_bot(service) as h:
        user = 71
        first = (await start_flow(h, user, "pick-two"))[-1]
        assert [t for row in h.fake.buttons(first) for (t, _) in row] == ["Tea", "Coffee", "Juice"]
        second = (await h.press(user, first, "Tea"))[-1]
        assert [t for row in h.fake.buttons(second) for (t, _) in row] == ["Coffee", "Juice"]
        more = (await h.press(user, second, "Juice"))[-1]
        assert [t for row in h.fake.buttons(more) for (t, _) in row][:1] == ["Coffee"]
        await h.press(user, more, "Coffee")  # a tick keeps the keyboard to what is offered
        await h.fake.wait_for(lambda: h.fake.buttons(h.fake.message(user, more.message_id))[0][0][0] == CHECK + "Coffee", 5)
        ticked = h.fake.message(user, more.message_id)
        assert [t for row in h.fake.buttons(ticked) for (t, _) in row] == [CHECK + "Coffee", msg("navigation.done_button")]
        await h.press(user, ticked, msg("navigation.done_button"))
        assert answers_of(h, user) == {"first": "Tea", "second": "Juice", "more": ["Coffee"]}


def test_a_button_of_the_wrong_shape_is_refused_not_an_error():
    # found by the fuzzer: a list pressed at a choice, a number or a list inside a multi
    runner = FlowRunner(flow_from(HOUSES))
    session = runner.start().session
    for button in ([], ["worries"], 3, {"id": "worries"}):
        result = runner.step(session, Input("answer", button=button))
        assert not result.accepted and result.prompts[0].kind == "error"
    session = replay(runner, ["1", "2"]).session
    for button in ([["good"]], [3], [None]):
        result = runner.step(session, Input("answer", button=button))
        assert not result.accepted and result.prompts[0].kind == "error"
