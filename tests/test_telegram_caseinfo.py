"""/caseinfo over Telegram (issue 13): the practitioner of the case (or their supervisor, or an
admin) writes texts flows show as {{ case.KEY }}; anyone else is refused, and both are audited."""

from bot.messages import msg
from tests.test_telegram_roles import ADMIN, FAM_A, P1, P2, REFUSED, SUP, world  # noqa: F401 (the staff world)


async def test_caseinfo_writes_lists_and_refuses(world):
    h = world
    store = h.service.store
    await h.say(P1, "/invite fgc-pre-conference C1 --for adult")  # makes case C1, held by P1
    text = "We are worried that Sam is scared when dad drinks.\nSam must not be alone with dad then."
    [reply] = await h.say(P1, f"/caseinfo C1 danger_statement {text}")
    assert reply.text == msg("staff.caseinfo_set", ref="C1", key="danger_statement", characters=len(text))
    assert store.case_info("C1") == {"danger_statement": text}  # several lines kept as written
    [reply] = await h.say(SUP, "/caseinfo C1 safety_goal Sam feels safe at home.")
    assert reply.text.startswith("Case C1: safety_goal written")
    for other in (P2, FAM_A):
        [reply] = await h.say(other, "/caseinfo C1 danger_statement Something else")
        assert reply.text == REFUSED
    [reply] = await h.say(P1, "/caseinfo C1")
    assert reply.text == "\n".join([msg("staff.caseinfo_list", ref="C1"),
                                    msg("staff.caseinfo_line", key="danger_statement", characters=len(text)),
                                    msg("staff.caseinfo_line", key="safety_goal", characters=len("Sam feels safe at home."))])
    [reply] = await h.say(P1, "/caseinfo C1 danger_statement")
    assert reply.text == msg("staff.caseinfo_usage")
    [reply] = await h.say(P1, "/caseinfo C1 Danger! x")
    assert "cannot be a case key" in reply.text
    assert store.case_info("C1") == {"danger_statement": text, "safety_goal": "Sam feels safe at home."}
    log = [(a["actor"], a["action"], a["detail"]) for a in store.audit_log() if a["action"].startswith("case.info")]
    assert log == [(f"tg:{P1}", "case.info.set", "danger_statement"), (f"tg:{SUP}", "case.info.set", "safety_goal"),
                   (f"tg:{P2}", "case.info.refused", "danger_statement"),
                   (f"tg:{FAM_A}", "case.info.refused", "danger_statement"), (f"tg:{P1}", "case.info.read", None)]


async def test_workers_menu_has_the_staff_commands_and_a_familys_does_not(world):
    from bot.testing.fake_bot_api.protocol import _canon

    h = world
    await h.fake.wait_for(lambda: h.fake.commands, 5)
    family_menu = [c["command"] for c in h.fake.commands]
    assert "caseinfo" not in family_menu and "summary" not in family_menu
    for worker in (P1, SUP, ADMIN):
        menu = [c["command"] for c in h.fake.commands_by_scope[(_canon({"type": "chat", "chat_id": worker}), "")]]
        assert menu == family_menu + list(msg("telegram.staff_commands"))
    assert (_canon({"type": "chat", "chat_id": FAM_A}), "") not in h.fake.commands_by_scope


async def test_an_invitation_to_a_flow_with_unwritten_case_texts_says_which(world):
    h = world
    msgs = await h.say(P1, "/invite fgc-pre-conference C2 --for adult")
    [made] = msgs
    assert made.text.startswith("Invitation ") and made.text.endswith("\n\n" + msg(
        "staff.caseinfo_missing", flow="fgc-pre-conference", ref="C2", keys="bottom_lines, plan_questions",
        key="bottom_lines"))
    await h.say(P1, "/caseinfo C2 bottom_lines Sam goes to school every day.")
    await h.say(P1, "/caseinfo C2 plan_questions How will Sam get to school?")
    msgs = await h.say(P1, "/invite fgc-pre-conference C2 --for adult")
    assert msgs[-1].text.startswith("Invitation ") and "/caseinfo" not in msgs[-1].text  # nothing missing now
    msgs = await h.say(P1, "/invite scaling-checkin C2 --for adult")
    assert msgs[-1].text.startswith("Invitation ") and "/caseinfo" not in msgs[-1].text  # no case texts in it
