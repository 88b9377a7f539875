"""{{ previous.X }}: a follow-up shows the person's own answer from last time in the same case
(sfbt-follow-up: "Last time, you put things at 4"), and never anyone else's, nor one from
another case, a question they skipped, or an answer they went back on."""

from __future__ import annotations

from bot.engine.runner import Input

LAST_TIME = "Last time, you put things at"


def _case(store, ref: str) -> int:
    with store.transaction():
        return store.create_case(store.person("tg:900"), ref)


def _checkin(service, pid: int, case_id: int | None, scale: str) -> int:
    """A scaling check-in by ``pid`` in ``case_id`` that puts things at ``scale``."""
    conv = service.start(pid, "scaling-checkin", case_id=case_id, respondent="adult").conversation_id
    for words in ("Calmer mornings", scale):
        assert service.handle(pid, Input.from_text(words), conversation_id=conv).accepted
    return conv


def _scale_question(service, pid: int, case_id: int | None) -> str:
    """Start a follow-up and answer up to the scale: the scale question's text."""
    conv = service.start(pid, "sfbt-follow-up", case_id=case_id, respondent="adult").conversation_id
    for words in ("One good day", "I planned it", "/skip", "We laughed"):
        inp = Input("skip") if words == "/skip" else Input.from_text(words)
        assert service.handle(pid, inp, conversation_id=conv).accepted
    reply = service.handle(pid, Input("skip"), conversation_id=conv)  # what else: skipped
    assert reply.step_id == "scale_now"
    return reply.prompts[-1].text


def test_the_follow_up_shows_the_persons_own_score_from_last_time_in_the_same_case(service, store):
    case = _case(store, "SF-1")
    mum = service.person("tg:1")
    _checkin(service, mum, case, "4")
    assert _scale_question(service, mum, case).startswith(f"{LAST_TIME} 4. On a scale of 0 to 10")


def test_the_latest_earlier_answer_counts(service, store):
    case = _case(store, "SF-2")
    mum = service.person("tg:1")
    _checkin(service, mum, case, "3")
    _checkin(service, mum, case, "5")
    assert _scale_question(service, mum, case).startswith(f"{LAST_TIME} 5.")


def test_never_someone_elses_answer_nor_one_from_another_case(service, store):
    case, other_case = _case(store, "SF-3"), _case(store, "SF-4")
    mum, dad = service.person("tg:1"), service.person("tg:2")
    _checkin(service, dad, case, "2")  # dad's score is not mum's "last time"
    _checkin(service, mum, other_case, "9")  # nor is her score in another case
    text = _scale_question(service, mum, case)
    assert LAST_TIME not in text and text.startswith("On a scale of 0 to 10")


def test_a_skipped_or_abandoned_answer_is_not_last_time(service, store):
    case = _case(store, "SF-5")
    mum = service.person("tg:1")
    conv = service.start(mum, "scaling-checkin", case_id=case, respondent="adult").conversation_id
    for inp in (Input.from_text("Calmer mornings"), Input.from_text("6"), Input("back")):
        service.handle(mum, inp, conversation_id=conv)
    service.handle(mum, Input("cancel"), conversation_id=conv)  # went back on the 6, then stopped
    assert store.previous_answer(mum, case, "scale_now") is None
    assert LAST_TIME not in _scale_question(service, mum, case)


def test_the_store_reads_only_earlier_conversations(service, store):
    case = _case(store, "SF-6")
    mum = service.person("tg:1")
    first = _checkin(service, mum, case, "4")
    second = _checkin(service, mum, case, "7")
    assert store.previous_answer(mum, case, "scale_now") == 7
    assert store.previous_answer(mum, case, "scale_now", before=second) == 4
    assert store.previous_answer(mum, case, "scale_now", before=first) is None
    assert store.previous_answer(mum, None, "scale_now") is None  # outside any case: none there
