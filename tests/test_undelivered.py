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
