"""Issue 15: the schedule of due messages, with a moved clock (bot/schedule.py)."""

from datetime import datetime, timedelta, timezone

import pytest

from bot.config import Config, ConfigError
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.messages import msg
from bot.schedule import Schedule
from bot.store import Store

# Monday 12 January 2026, 10:00 in London (GMT, so UTC too)
T0 = datetime(2026, 1, 12, 10, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, at: datetime):
        self.now = at

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path, library):
    clock = Clock(T0)
    store = Store(tmp_path / "schedule.db")
    schedule = Schedule(store, clock=clock)
    service = ConversationService(store, library, schedule=schedule)
    yield service, schedule, clock
    store.close()


def begin(service, key="tg:501", respondent="young_person", flow="scaling-checkin"):
    pid = service.person(key)
    reply = service.start(pid, flow, frontend="telegram", chat_id=key[3:], respondent=respondent)
    return pid, reply.conversation_id


def send_due(schedule, now=None):
    """What a frontend does: claim each due item, 'send' it, report it sent."""
    out = []
    for item in schedule.due(now):
        if schedule.claim(item, now):
            out.append(item)
            schedule.sent(item, now)
    return out


def test_a_nudge_comes_after_the_delay_once_and_says_nothing_of_the_answers(world):
    service, schedule, clock = world
    pid, conv = begin(service)
    service.handle(pid, Input.from_text("that my brother stops taking my phone"))
    clock.now = T0 + timedelta(hours=47, minutes=59)
    assert schedule.due() == []
    clock.now = T0 + timedelta(hours=48, minutes=1)
    items = send_due(schedule)
    assert [(i.recipient, i.kind, i.conversation_id, i.seq, i.text) for i in items] == \
        [("tg:501", "nudge", conv, 1, msg("schedule.nudge"))]
    assert schedule.due() == []  # sent once, not again


def test_at_most_n_nudges_then_none(world):
    service, schedule, clock = world
    begin(service)
    sent = []
    for hours in range(0, 24 * 10, 6):
        clock.now = T0 + timedelta(hours=hours)
        sent += [(clock.now - T0, i.seq) for i in send_due(schedule)]
    assert sent == [(timedelta(hours=48), 1), (timedelta(hours=96), 2)]


def test_the_number_of_nudges_is_configurable(tmp_path, library):
    clock = Clock(T0)
    store = Store(tmp_path / "three.db")
    schedule = Schedule(store, clock=clock, nudge_after_hours=24, nudge_times=3)
    service = ConversationService(store, library, schedule=schedule)
    begin(service)
    seqs = []
    for hours in range(0, 24 * 10, 6):
        clock.now = T0 + timedelta(hours=hours)
        seqs += [(clock.now - T0, i.seq) for i in send_due(schedule)]
    assert seqs == [(timedelta(hours=24), 1), (timedelta(hours=48), 2), (timedelta(hours=72), 3)]
    store.close()


def test_an_answer_moves_the_nudge_on(world):
    service, schedule, clock = world
    pid, _ = begin(service)
    clock.now = T0 + timedelta(hours=46)
    service.handle(pid, Input.from_text("calmer mornings"))
    clock.now = T0 + timedelta(hours=50)
    assert schedule.due() == []  # two days from the last answer, not from the start
    clock.now = T0 + timedelta(hours=94)
    assert [i.seq for i in send_due(schedule)] == [1]


def test_no_nudge_during_quiet_hours_it_waits_for_the_morning(world):
    service, schedule, clock = world
    clock.now = T0.replace(hour=21)  # Monday 21:00: the nudge falls due on Wednesday 21:00
    begin(service)
    for at in (datetime(2026, 1, 14, 21, 0, tzinfo=timezone.utc), datetime(2026, 1, 14, 23, 30, tzinfo=timezone.utc),
               datetime(2026, 1, 15, 7, 59, tzinfo=timezone.utc)):
        clock.now = at
        assert schedule.due() == [], at
    clock.now = datetime(2026, 1, 15, 8, 0, tzinfo=timezone.utc)
    assert [i.kind for i in send_due(schedule)] == ["nudge"]


def test_quiet_hours_are_local_time(tmp_path):
    schedule = Schedule(Store(tmp_path / "q.db"))
    # 19:30 UTC in July is 20:30 in London (BST): quiet; 07:30 UTC is 08:30: not quiet
    assert schedule.quiet(datetime(2026, 7, 1, 19, 30, tzinfo=timezone.utc))
    assert not schedule.quiet(datetime(2026, 7, 1, 7, 30, tzinfo=timezone.utc))
    assert not schedule.quiet(datetime(2026, 1, 1, 19, 30, tzinfo=timezone.utc))  # 19:30 GMT
    other = Schedule(Store(tmp_path / "q2.db"), quiet_from="22:00", quiet_until="07:00", timezone_name="Europe/Paris")
    assert other.quiet(datetime(2026, 1, 1, 21, 30, tzinfo=timezone.utc))  # 22:30 in Paris
    assert not other.quiet(datetime(2026, 1, 1, 20, 30, tzinfo=timezone.utc))


def test_no_nudge_after_the_conversation_finishes(world):
    service, schedule, clock = world
    pid, conv = begin(service)
    clock.now = T0 + timedelta(hours=1)
    service.handle(pid, Input("cancel"))
    for hours in (49, 97, 200):
        clock.now = T0 + timedelta(hours=hours)
        assert schedule.due() == []
    assert service.store.conversation(conv).status == "cancelled"


def test_a_nudge_falling_due_after_the_end_is_not_sent(world):
    service, schedule, clock = world
    pid, conv = begin(service)
    # the conversation ends by another path that did not cancel the row
    service.store.update_conversation(conv, state="done", session={}, status="completed")
    clock.now = T0 + timedelta(hours=49)
    assert schedule.due() == []
    assert [r["state"] for r in service.store.scheduled_list(person_id=pid, states=("pending", "cancelled"))] == \
        ["cancelled"]


@pytest.mark.parametrize("how", ["stop", "nudges off", "not now"])
def test_no_nudge_once_the_person_opts_out(world, how):
    service, schedule, clock = world
    pid, conv = begin(service)
    clock.now = T0 + timedelta(hours=48)
    assert [i.seq for i in send_due(schedule)] == [1]
    if how == "stop":
        schedule.stop(pid)
    elif how == "nudges off":
        schedule.turn(pid, "nudge", off=True)
    else:
        schedule.not_now(pid, conv)
    service.handle(pid, Input.from_text("calmer mornings"))  # a later answer schedules nothing
    for hours in (97, 150, 300):
        clock.now = T0 + timedelta(hours=hours)
        assert schedule.due() == []
    assert service.store.scheduled_list(person_id=pid) == []


def test_turning_one_kind_back_on_after_stop(world):
    service, schedule, clock = world
    pid, _ = begin(service)
    schedule.stop(pid)
    assert schedule.of_person(pid) == ([], {"*"})
    schedule.turn(pid, "nudge", off=False)
    assert schedule.of_person(pid)[1] == {"date"}
    service.handle(pid, Input.from_text("calmer mornings"))
    assert [r["kind"] for r in schedule.of_person(pid)[0]] == ["nudge"]


def test_no_nudge_for_practice_or_the_console(world):
    service, schedule, clock = world
    pid = service.person("console:me")
    service.start(pid, "scaling-checkin", frontend="console", respondent="adult")
    service.start(service.person("tg:77"), "scaling-checkin", frontend="telegram", chat_id="77", practice=True,
                  respondent="adult")
    clock.now = T0 + timedelta(hours=100)
    assert schedule.due() == []


def test_a_restart_between_scheduling_and_sending_loses_nothing_and_sends_once(tmp_path, library):
    path = tmp_path / "restart.db"
    clock = Clock(T0)
    store = Store(path)
    service = ConversationService(store, library, schedule=Schedule(store, clock=clock))
    begin(service)
    store.close()  # the bot stops
    clock.now = T0 + timedelta(hours=49)
    store = Store(path)  # and starts again
    schedule = Schedule(store, clock=clock)
    schedule.recover()
    first = schedule.due()
    assert [i.kind for i in first] == ["nudge"]
    assert schedule.claim(first[0]) and not schedule.claim(first[0])  # one pass sends it, never two
    store.close()  # crash after claiming, before Telegram confirmed
    clock.now += timedelta(minutes=11)
    store = Store(path)
    schedule = Schedule(store, clock=clock)
    assert schedule.recover() == 1  # half-sent: back to pending (at least once, like replies)
    assert [i.id for i in send_due(schedule)] == [first[0].id]
    store.close()
    store = Store(path)
    schedule = Schedule(store, clock=clock)
    schedule.recover()
    assert schedule.due() == []  # confirmed: never again
    assert [r["id"] for r in store.scheduled_list(states=("sent",))] == [first[0].id]
    store.close()


def test_a_failed_send_is_tried_again_and_not_marked_sent(world):
    service, schedule, clock = world
    begin(service)
    clock.now = T0 + timedelta(hours=49)
    item = schedule.due()[0]
    assert schedule.claim(item)
    schedule.failed(item)
    assert [i.id for i in send_due(schedule)] == [item.id]


@pytest.mark.parametrize("kind", ["nudge", "date", "notice"])
def test_a_persons_reminder_that_can_never_be_delivered_is_not_tried_again_every_pass(world, kind):
    """Leftover 2: a nudge, a date reminder or a kept-back notice to someone who blocked the
    bot went back to pending and was tried again at every pass of `serve`, for ever (a failed
    call and an error line each time). It is now 'undeliverable', audited, and left alone."""
    from bot.schedule import hold_notice

    service, schedule, clock = world
    store = service.store
    pid, conv = begin(service)
    if kind == "nudge":
        clock.now = T0 + timedelta(hours=49)
    else:
        store.cancel_scheduled(conversation_id=conv, kind="nudge", by="test")
        if kind == "date":
            with store.transaction():
                store.add_scheduled(person_id=pid, kind="date", text="x", due_at="2026-01-12T10:00:00.000000Z",
                                    why="test", conversation_id=conv)
        else:
            hold_notice(store, "tg:501", "a comment on a transcript", T0, about_person=None)
    [item] = schedule.due()
    assert item.kind == kind and schedule.claim(item)
    schedule.undeliverable(item)
    assert [(r["kind"], r["state"]) for r in store.scheduled_list(states=("undeliverable",))] == [(kind, "undeliverable")]
    for later in (1, 24, 24 * 30):
        assert schedule.due(clock.now + timedelta(hours=later)) == []
    assert [r["action"] for r in store.audit_log() if r["action"].endswith(".undeliverable")] == \
        [f"reminder.{kind}.undeliverable"]
    assert store.scheduled_list(states=("pending", "sending")) == []  # and no next nudge after it


def test_the_nudge_is_written_in_the_answers_transaction(world):
    service, schedule, clock = world
    pid, conv = begin(service)
    store = service.store
    before = store.scheduled_list(person_id=pid)
    with pytest.raises(RuntimeError):
        with store.transaction():
            service.handle(pid, Input.from_text("calmer mornings"))
            raise RuntimeError("the commit fails")
    assert store.scheduled_list(person_id=pid) == before and len(before) == 1
    assert store.answers(conv) == []


def test_no_reminder_text_for_a_child_contains_answer_text(world):
    service, schedule, clock = world
    pid, conv = begin(service, "tg:600", respondent="child", flow="three-houses")
    words = ["1", "1", "2", "my stepdad shouts at night", "no", "drawing dragons with grandma"]
    for w in words:
        service.handle(pid, Input.from_text(w))
    answers = [a["raw"] or str(a["value"]) for a in service.store.answers(conv)]
    assert len(answers) >= 3
    texts = []
    for hours in range(6, 24 * 8, 6):
        clock.now = T0 + timedelta(hours=hours)
        texts += [i.text for i in send_due(schedule)]
    assert len(texts) == 2
    for text in texts:
        for answer in answers:
            if len(answer) > 2:
                assert answer.lower() not in text.lower()
        for word in ("stepdad", "shouts", "grandma", "dragons", "house", "worr"):
            assert word not in text.lower()


def test_config_reminders(tmp_path):
    cfg = Config.from_data(_yaml("reminders: {nudge_after_hours: 24, nudge_times: 3, quiet_hours: '21:30-07:00',"
                                 " timezone: Europe/Dublin}"), "c.yaml")
    assert cfg.reminders == {"nudge_after_hours": 24.0, "nudge_times": 3, "quiet_from": "21:30",
                             "quiet_until": "07:00", "timezone_name": "Europe/Dublin"}
    schedule = cfg.schedule(Store(tmp_path / "c.db"))
    assert schedule.nudge_times == 3 and str(schedule.tz) == "Europe/Dublin"
    with pytest.raises(ConfigError) as e:
        Config.from_data(_yaml("reminders:\n  quiet_hours: late\n  timezone: Mars/Olympus\n  nudges: 2\n"), "c.yaml")
    text = str(e.value)
    assert "c.yaml:2:" in text and "quiet_hours" in text
    assert "c.yaml:3:" in text and "Mars/Olympus" in text
    assert "c.yaml:4:" in text and "unknown key 'nudges'" in text


def _yaml(text):
    from bot.engine.yamlpos import parse_yaml

    data, errors = parse_yaml(text, "c.yaml")
    assert not errors
    return data


def test_cli_lists_a_cases_reminders_and_cancels_one(tmp_path, library):
    from click.testing import CliRunner

    from bot.cli import main

    path = tmp_path / "cli.db"
    clock = Clock(T0)
    store = Store(path)
    service = ConversationService(store, library, schedule=Schedule(store, clock=clock))
    with store.transaction():
        worker = store.person("tg:900")
        case = store.create_case(worker, "FGC-77")
    pid = service.person("tg:901")
    conv = service.start(pid, "scaling-checkin", frontend="telegram", chat_id="901", case_id=case,
                         respondent="adult").conversation_id
    service.handle(pid, Input.from_text("a calmer house"))
    other = service.person("tg:902")
    service.start(other, "scaling-checkin", frontend="telegram", chat_id="902", respondent="adult")  # no case
    store.close()
    run = CliRunner().invoke
    listed = run(main, ["reminders", "--case", "FGC-77", "--db", str(path)])
    assert listed.exit_code == 0, listed.output
    row = Store(path).scheduled_list(person_id=pid)[0]
    assert listed.output.splitlines() == [
        f"{row['id']}  Wed 14 Jan, 10:00  nudge  to tg:901  pending  (conversation {conv} unfinished (nudge 1 of 2))"]
    assert "calmer" not in listed.output
    wrong = run(main, ["reminders", "--case", "FGC-78", "--cancel", str(row["id"]), "--db", str(path)])
    assert wrong.exit_code == 2 and f"no waiting reminder {row['id']} in case FGC-78" in wrong.output
    done = run(main, ["reminders", "--case", "FGC-77", "--cancel", str(row["id"]), "--db", str(path)])
    assert done.exit_code == 0 and done.output == f"Reminder {row['id']} in case FGC-77 is cancelled.\n"
    assert run(main, ["reminders", "--case", "FGC-77", "--db", str(path)]).output == \
        "No reminders are waiting in case FGC-77.\n"
    store = Store(path)
    assert [r["action"] for r in store.audit_log() if r["action"].startswith("reminder.")] == ["reminder.cancel"]
    store.close()


HARMED = ["I could not believe it", "my dad is worried about me", "walking past them", "they say sorry",
          "No contact with the other person", "a teacher nearby", "yes", "they say sorry on Monday and we sit apart"]


def harmed_until_follow_up(service, case=None, key="tg:801"):
    pid = service.person(key)
    conv = service.start(pid, "restorative-harmed", frontend="telegram", chat_id=key[3:], case_id=case,
                         respondent="young_person").conversation_id
    for words in HARMED:
        assert service.handle(pid, Input.from_text(words)).accepted
    return pid, conv


def test_a_date_answer_schedules_reminders_the_day_before_without_answers(tmp_path, library):
    path = tmp_path / "dates.db"
    clock = Clock(T0)  # Monday 12 January, 10:00
    store = Store(path)
    service = ConversationService(store, library, schedule=Schedule(store, clock=clock))
    with store.transaction():
        worker = store.person("tg:900")
        case = store.create_case(worker, "RJ-12")
    pid, conv = harmed_until_follow_up(service, case)
    assert service.handle(pid, Input.from_text("Friday 23 January")).accepted
    service.handle(pid, Input.from_text("my dad says thank you"))
    assert store.conversation(conv).status == "completed"
    rows = [(r["person_id"], r["kind"], r["due_at"]) for r in store.scheduled_list(states=("pending",))]
    assert rows == [(pid, "date", "2026-01-22T09:00:00.000000Z"), (worker, "date", "2026-01-22T09:00:00.000000Z")]
    store.close()  # a restart between scheduling and sending
    clock.now = datetime(2026, 1, 22, 8, 59, tzinfo=timezone.utc)
    store = Store(path)
    schedule = Schedule(store, clock=clock)
    schedule.recover()
    assert schedule.due() == []
    clock.now = datetime(2026, 1, 22, 9, 0, tzinfo=timezone.utc)
    sent = send_due(schedule)
    flow = service.library.get("restorative-harmed")
    assert [(i.recipient, i.text) for i in sent] == [
        ("tg:801", flow.by_id["follow_up"].remind.text),
        ("tg:900", msg("schedule.date_practitioner", ref="RJ-12")),
    ]
    assert "RJ-12" in sent[1].text
    for item in sent:  # no answer, not even the date, in either text
        for words in HARMED + ["23", "January", "Friday", "thank you"]:
            assert words.lower() not in item.text.lower()
    clock.now += timedelta(days=1)
    assert schedule.due() == [] and send_due(schedule) == []  # once
    store.close()


def test_a_changed_date_replaces_its_reminder_and_a_cancel_drops_it(world):
    service, schedule, clock = world
    pid, conv = harmed_until_follow_up(service)
    service.handle(pid, Input.from_text("Friday 23 January"))
    service.handle(pid, Input("back"))
    service.handle(pid, Input.from_text("in two weeks"))  # Monday 26 January
    dates = [r["due_at"] for r in service.store.scheduled_list(person_id=pid) if r["kind"] == "date"]
    assert dates == ["2026-01-25T09:00:00.000000Z"]
    service.handle(pid, Input("cancel"))
    assert service.store.scheduled_list(person_id=pid) == []


def test_a_date_chosen_for_tomorrow_in_the_afternoon_is_reminded_now_and_today_not_at_all(world):
    service, schedule, clock = world
    clock.now = T0.replace(hour=15)
    pid, _ = harmed_until_follow_up(service)
    service.handle(pid, Input.from_text("tomorrow"))
    assert [r["due_at"] for r in service.store.scheduled_list(person_id=pid) if r["kind"] == "date"] == \
        ["2026-01-12T15:00:00.000000Z"]
    pid2, _ = harmed_until_follow_up(service, key="tg:802")
    service.handle(pid2, Input.from_text("today"))
    assert [r for r in service.store.scheduled_list(person_id=pid2) if r["kind"] == "date"] == []


def test_date_reminders_respect_turning_them_off(world):
    service, schedule, clock = world
    pid, _ = harmed_until_follow_up(service)
    schedule.turn(pid, "date", off=True)
    service.handle(pid, Input.from_text("Friday 23 January"))
    assert [r["kind"] for r in service.store.scheduled_list(person_id=pid)] == ["nudge"]


@pytest.mark.parametrize("remind, error", [
    ("{who: person, before: 1d, text: 'Tomorrow: {{ answers.when }}'}", "cannot use answers or templates"),
    ("{who: person, before: 1d, text: 'Tomorrow: {when}'}", "cannot use answers or templates"),
    ("{who: everyone, before: 1d, text: x}", "'who' under remind must be one of person, practitioner, both"),
    ("{who: person, before: soon, text: x}", "'before' under remind must be hours, days or weeks"),
    ("{who: person, before: 1d}", "remind is missing 'text'"),
    ("{who: person, before: 1d, text: x, venue: y}", "unknown key 'venue' under remind"),
])
def test_the_linter_refuses_a_reminder_that_could_show_answers_or_is_malformed(remind, error):
    from bot.engine.loader import load_flow_text

    text = f"""id: remind-test
version: 1
title: Remind test
audience: family
steps:
  - id: when
    ask: When?
    type: date
    remind: {remind}
"""
    flow, errors = load_flow_text(text, "remind.yaml")
    assert flow is None
    assert any(error in str(e) and str(e).startswith("remind.yaml:9:") for e in errors), errors


def test_the_fgc_conference_date_reminds_the_person_only_and_says_nothing_of_the_answers(world):
    service, schedule, clock = world
    store = service.store
    with store.transaction():
        coordinator = store.person("tg:950")
        case = store.create_case(coordinator, "FGC-5")
    pid = service.person("tg:951")
    conv = service.start(pid, "fgc-pre-conference", frontend="telegram", chat_id="951", case_id=case,
                         respondent="adult").conversation_id
    answers = ["Ray, Tom's uncle", "Nan and Uncle Ray", "No", "Money worries", "We are close", "Help with the rent",
               "no", "Stay together"]
    for words in answers:
        inp = Input("skip") if words == "/skip" else Input.from_text(words)
        assert service.handle(pid, inp).accepted, words
    assert store.conversation(conv).state == "conference_date"
    reply = service.handle(pid, Input.from_text("Saturday 14 March"))
    assert "Is there a place you would like the meeting to be" in reply.prompts[-1].text
    rows = [(r["person_id"], r["kind"], r["due_at"]) for r in store.scheduled_list(states=("pending",))
            if r["kind"] == "date"]
    assert rows == [(pid, "date", "2026-03-13T09:00:00.000000Z")]  # not the coordinator: consent comes later
    clock.now = datetime(2026, 3, 13, 9, 0, tzinfo=timezone.utc)
    texts = [i.text for i in send_due(schedule) if i.kind == "date"]
    assert texts == [service.library.get("fgc-pre-conference").by_id["conference_date"].remind.text]
    for words in answers + ["14", "March", "Saturday", "venue", "conference"]:
        assert words.lower() not in texts[0].lower()


# -- a person's own quiet hours and days without reminders -------------------------------------
def at(day, hour, minute=0):
    return datetime(2026, 1, day, hour, minute, tzinfo=timezone.utc)  # January: London is on UTC


def test_a_persons_own_quiet_hours_decide_and_a_deferred_nudge_shows_its_real_time(world):
    from bot.schedule import QUIET_CHOICES

    service, schedule, clock = world
    clock.now = at(12, 19)  # Monday 19:00: every nudge falls due on Wednesday 19:00
    _, early, _ = (begin(service, key)[0] for key in ("tg:510", "tg:511", "tg:512"))
    assert schedule.set_quiet(early, QUIET_CHOICES.index(("18:00", "09:00"))).choice == 1
    clock.now = at(12, 21)
    late_conv = begin(service, "tg:513")[1]  # Monday 21:00: due Wednesday 21:00
    late = service.store.conversation(late_conv).person_id
    schedule.set_quiet(late, QUIET_CHOICES.index(("22:00", "07:00")))
    clock.now = at(14, 19)
    assert sorted(i.recipient for i in send_due(schedule)) == ["tg:510", "tg:512"]  # 19:00 is quiet for 511 only
    [waiting] = service.store.scheduled_list(person_id=early)
    assert waiting["due_at"] == "2026-01-15T09:00:00.000000Z"  # deferred: /reminders shows the real time
    clock.now = at(14, 21)
    assert [i.recipient for i in send_due(schedule)] == ["tg:513"]  # 21:00 is quiet for the deployment, not for them
    clock.now = at(15, 8, 59)
    assert send_due(schedule) == []
    clock.now = at(15, 9)
    assert [i.recipient for i in send_due(schedule)] == ["tg:511"]
    schedule.set_quiet(early, 0)  # back to the deployment's hours
    assert schedule.times(early).quiet_from.hour == 20 and schedule.times(early).choice == 0
    with pytest.raises(ValueError):
        schedule.set_quiet(early, len(QUIET_CHOICES))


def test_no_reminders_on_a_day_the_person_keeps_free(world):
    service, schedule, clock = world
    clock.now = at(16, 12)  # Friday noon: the nudge falls due on Sunday at noon
    pid, _ = begin(service)
    assert schedule.set_day(pid, 6, free=True)  # "no reminders on Sundays"
    other, _ = begin(service, "tg:520")
    clock.now = at(18, 12)
    assert [i.recipient for i in send_due(schedule)] == ["tg:520"]
    assert [r["due_at"] for r in service.store.scheduled_list(person_id=pid)] == \
        ["2026-01-19T08:00:00.000000Z"]  # Monday, when the night's quiet hours end
    clock.now = at(19, 7, 59)
    assert send_due(schedule) == []
    clock.now = at(19, 8)
    assert [i.recipient for i in send_due(schedule)] == ["tg:501"]
    assert schedule.set_day(pid, 6, free=False) and schedule.times(pid).blocked == frozenset()


def test_a_person_cannot_keep_every_day_free_stop_is_for_that(world):
    service, schedule, clock = world
    pid, _ = begin(service)
    assert all(schedule.set_day(pid, d, free=True) for d in range(6))
    assert not schedule.set_day(pid, 6, free=True)
    assert schedule.times(pid).blocked == frozenset(range(6))
    clock.now = at(14, 10)  # Wednesday: kept free, so the nudge waits for Sunday morning
    assert send_due(schedule) == []
    assert [r["due_at"] for r in service.store.scheduled_list(person_id=pid)] == ["2026-01-18T08:00:00.000000Z"]


def test_the_next_allowed_time_across_quiet_hours_free_days_and_a_clock_change(tmp_path):
    from bot.schedule import Times

    schedule = Schedule(Store(tmp_path / "n.db"))
    usual = schedule.times(1)
    assert schedule.next_allowed(at(12, 10), usual) == at(12, 10)  # allowed now: now
    assert schedule.next_allowed(at(12, 20), usual) == at(13, 8)
    assert schedule.next_allowed(at(13, 3), usual) == at(13, 8)
    weekend = Times(usual.quiet_from, usual.quiet_until, frozenset({5, 6}))
    assert schedule.next_allowed(at(16, 21), weekend) == at(19, 8)  # Friday night -> Monday 08:00
    # Sunday 29 March 2026 London goes to BST: 08:00 local is 07:00 UTC
    assert schedule.next_allowed(datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc), usual) == \
        datetime(2026, 3, 29, 7, 0, tzinfo=timezone.utc)


def test_a_conversation_answered_to_the_end_is_never_nudged(world):
    service, schedule, clock = world
    pid, conv = begin(service, respondent="adult")
    for words in ("calmer mornings", "6", "we still eat together", "less shouting", "8"):
        assert service.handle(pid, Input.from_text(words)).accepted, words
    service.handle(pid, Input("skip"))
    assert service.store.conversation(conv).status == "completed"
    for hours in range(6, 24 * 10, 6):
        clock.now = T0 + timedelta(hours=hours)
        assert send_due(schedule) == [], hours
    assert service.store.scheduled_list(person_id=pid, states=("pending", "sending", "sent")) == []


def _answer_generically(service, pid, conv_id, limit=60):
    """Answer whatever each question asks with a plain, valid, harmless answer (so the test
    follows the flows as lib-flows revises them): returns the date answers given."""
    kinds = {"date": "in two weeks", "scale": "5", "number": "3", "yesno": "no", "choice": "1", "multi": "1"}
    dates = []
    reply = service.current(pid)
    for _ in range(limit):
        if reply.status != "in_progress":
            return dates, reply
        question = next((p for p in reversed(reply.prompts) if p.kind == "question"), None)
        kind = question.type if question is not None else None
        if kind == "date":
            dates.append(question.step_id)
        reply = service.handle(pid, Input.from_text(kinds.get(kind, "calmer mornings")), conversation_id=conv_id)
        if not reply.accepted and kind not in kinds:
            reply = service.handle(pid, Input("skip"), conversation_id=conv_id)
    raise AssertionError(f"conversation {conv_id} did not finish in {limit} answers")


@pytest.mark.parametrize("flow_id", ["restorative-harmed", "restorative-harmer", "fgc-pre-conference"])
def test_the_restorative_and_fgc_flows_schedule_their_reminders_when_run_to_the_end(world, flow_id):
    """Behaviour, not only the flow file: run each flow to its end; every date question with
    ``remind:`` that was answered has its reminder row, for the people its ``who`` names."""
    service, schedule, clock = world
    store = service.store
    with store.transaction():
        worker = store.person("tg:990")
        case = store.create_case(worker, "RJ-90")
    pid = service.person("tg:991")
    conv = service.start(pid, flow_id, frontend="telegram", chat_id="991", case_id=case,
                         respondent="adult").conversation_id
    dates, last = _answer_generically(service, pid, conv)
    flow = service.library.get(flow_id)
    reminding = [s for s in flow.steps if s.type == "date" and s.remind is not None]
    assert reminding and [s.id for s in reminding if s.id in dates] == [s.id for s in reminding]
    assert store.conversation(conv).status == "completed"
    want = []
    for step in reminding:
        want += [(pid, step.id)] if step.remind.who in ("person", "both") else []
        want += [(worker, step.id)] if step.remind.who in ("practitioner", "both") else []
    got = [(r["person_id"], r["step_id"]) for r in store.scheduled_list(states=("pending",)) if r["kind"] == "date"]
    assert sorted(got) == sorted(want)
    closing = " ".join(p.text for p in last.prompts)
    assert "reminder" in closing.lower() and "on your own phone" in closing  # says when one comes, and where
