"""Replies committed but never recorded as sent are sent again after a restart
(``ConversationService.undelivered``), but only while they are the person's latest word:
once a later reply to the same person has been delivered, an older one is stale."""

from bot.engine.runner import Input


def _keys(service) -> list[str]:
    return [key for key, _, _ in service.undelivered("tg:")]


def test_the_newest_undelivered_reply_is_resent_and_only_while_nothing_later_was_delivered(service):
    pid = service.person("tg:5")
    service.start(pid, "scaling-checkin", input_key="tg:1", respondent="adult")
    service.delivered("tg:1")
    service.handle(pid, Input.from_text("that we talk"), input_key="tg:2")
    assert _keys(service) == ["tg:2"]  # committed, never sent: sent again on restart
    service.handle(pid, Input.from_text("7"), input_key="tg:3")
    assert _keys(service) == ["tg:3"]  # only the newest
    service.delivered("tg:3")
    assert _keys(service) == []  # a later reply in the same conversation went
    service.handle(pid, Input("cancel"), input_key="tg:4")
    assert _keys(service) == ["tg:4"]
    # a later reply in ANOTHER conversation of the same person went: the old one is stale too
    service.start(pid, "scaling-checkin", input_key="tg:5", respondent="adult")
    service.delivered("tg:5")
    assert _keys(service) == []
    service.handle(pid, Input.from_text("that we eat together"), input_key="tg:6")
    assert _keys(service) == ["tg:6"]


def test_a_worker_present_sessions_reply_is_resent_to_the_workers_device_not_the_family_members(service):
    """In a worker-present session the family member answers on the worker's device (the
    conversation is theirs, ``present_id`` is the worker's): a reply lost in a restart goes back
    to the device it was answering, and it is stale once the worker's device has moved on."""
    worker = service.person("tg:7")
    child = service.person("tg:8")  # the child also has their own chat with the bot
    service.start(child, "scaling-checkin", input_key="tg:20", respondent="adult")
    service.delivered("tg:20")
    service.cancel_active(child, input_key="tg:21")
    service.delivered("tg:21")
    service.start(child, "three-houses", input_key="tg:22", respondent="child", present_id=worker)
    assert [(key, pid) for key, pid, _ in service.undelivered("tg:")] == [("tg:22", worker)]
    service.delivered("tg:22")
    service.handle(worker, Input.from_text("good"), input_key="tg:23")  # the child answers on the worker's device
    assert [(key, pid) for key, pid, _ in service.undelivered("tg:")] == [("tg:23", worker)]
    # the worker's device moves on (a later reply to the worker went): the old one is stale
    service.cancel_active(worker, input_key="tg:24")
    service.delivered("tg:24")
    assert _keys(service) == []
