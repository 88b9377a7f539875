"""Data minimisation (issue 11, finding 15): families' Telegram first names are not stored;
practitioners give each person in a case a pseudonym; exports, alerts and lists use the case
reference and pseudonym, never a Telegram first name, unless the deployment says otherwise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import running_bot

ROOT = Path(__file__).resolve().parents[1]
LEAD, P1, P2, FAM = 800, 801, 802, 803
CHILD_NAME = "Amelia"


def _world(db, library, **config):
    safeguarding = SafeguardingConfig.load()
    store = Store(db)
    service = ConversationService(store, library, safeguarding=safeguarding)
    cfg = Config(roles={"practitioner": [P1, P2]}, leads=[LEAD], **config)
    access = Access(store, library, cfg)
    access.seed()
    esc = Escalation(store, safeguarding, leads=[LEAD], repeat_minutes=60,
                     telegram_names=cfg.people_names == "telegram")
    return store, service, access, esc


async def _invited(h, ref):
    msgs = await h.say(P1, f"/invite scaling-checkin {ref} --for adult", first_name="Priya")
    code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
    msgs = await h.say(FAM, f"/start {code}", first_name=CHILD_NAME)
    assert msgs[-1].text.startswith("Priya has invited you") or "Priya" in msgs[-1].text  # staff names are kept
    data = next(cb for row in h.fake.buttons(msgs[-1]) for (t, cb) in row if t == "Yes, start")
    await h.delivered(h.fake.press_button(FAM, msgs[-1].message_id, data))
    await h.say(FAM, "We talk more")


async def test_pseudonyms_replace_telegram_names_in_lists_transcripts_and_alerts(tmp_path, library):
    store, service, access, esc = _world(tmp_path / "m.db", library)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        await _invited(h, "FGC-5")
        fam = store.person_by_key(f"tg:{FAM}")
        assert fam["display_name"] is None  # the family's Telegram first name is not stored
        assert store.person_by_key(f"tg:{P1}")["display_name"] == "Priya"
        conv = store.conversations(person_id=fam["id"])[0]["id"]

        # only the practitioner holding the case may name the person
        for other in (P2, FAM):
            msgs = await h.say(other, f"/pseudonym {conv} Mallory")
            assert msgs[-1].text.startswith("Sorry, that isn't available to you")
        msgs = await h.say(P1, f"/pseudonym {conv} Parent   A")
        assert msgs[-1].text == f"In case FGC-5, the person who answered #{conv} is now called Parent A."
        msgs = await h.say(P1, "/case FGC-5")
        assert "Parent A" in msgs[-1].text and CHILD_NAME not in msgs[-1].text
        msgs = await h.say(P1, f"/transcript {conv}")
        shown = "\n".join(m.text or "" for m in msgs)
        assert "\nWho: Parent A\n" in shown and CHILD_NAME not in shown

        # a disclosure: the alert names the case and the pseudonym
        await h.say(FAM, "he hits me and i dont feel safe at home", first_name=CHILD_NAME)
        alert = await h.fake.wait_for(lambda: [m for m in h.fake.messages(LEAD) if "/ack" in (m.text or "")], 10)
        assert "Parent A, case FGC-5" in alert[0].text and CHILD_NAME not in alert[0].text
    assert [a["action"] for a in store.audit_log() if a["action"].startswith("pseudonym")] == [
        "pseudonym.set.refused", "pseudonym.set.refused", "pseudonym.set"]
    store.close()


def _cli(db, *args):
    return subprocess.run([sys.executable, "-m", "bot", *args, "--db", str(db)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


async def test_cli_case_set_and_exports_use_the_pseudonym(tmp_path, library):
    db = tmp_path / "cli.db"
    store, service, access, esc = _world(db, library)
    async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
        await _invited(h, "FGC-6")
    store.close()
    done = _cli(db, "case", "set", "FGC-6", "--pseudonym", "Child B")
    assert done.returncode == 0 and f"in case FGC-6, {FAM} is now called Child B" in done.stdout, done.stderr
    md = _cli(db, "export", "--case", "FGC-6", "--format", "md").stdout
    assert "- Who: Child B" in md and CHILD_NAME not in md
    data = json.loads(_cli(db, "export", "--case", "FGC-6", "--format", "json").stdout)
    assert data["person"] == {"key": f"tg:{FAM}", "pseudonym": "Child B", "name": "Child B"}
    bad = _cli(db, "case", "set", "NOPE", "--pseudonym", "X")
    assert bad.returncode == 2 and "nobody has answered in case NOPE" in bad.stderr
    long = _cli(db, "case", "set", "FGC-6", "--pseudonym", "x" * 41)
    assert long.returncode == 2 and "up to 40 characters" in long.stderr and "Traceback" not in long.stderr


async def test_names_without_a_pseudonym_are_the_telegram_id_unless_the_deployment_keeps_names(tmp_path, library):
    for setting, stored, shown in (("pseudonyms", None, f"tg:{FAM}"), ("telegram", CHILD_NAME, CHILD_NAME)):
        db = tmp_path / f"{setting}.db"
        store, service, access, esc = _world(db, library, people_names=setting)
        async with running_bot(service, access=access, escalation=esc, alert_poll_seconds=0.1) as h:
            await _invited(h, "FGC-7")
            await h.say(FAM, "he hits me and i dont feel safe at home")
            alert = await h.fake.wait_for(lambda: [m for m in h.fake.messages(LEAD) if "/ack" in (m.text or "")], 10)
            assert f"{shown}, case FGC-7" in alert[0].text
        assert store.person_by_key(f"tg:{FAM}")["display_name"] == stored
        conv = store.conversations(person_id=store.person_by_key(f"tg:{FAM}")["id"])[0]["id"]
        assert access.transcript(f"tg:{P1}", conv)["person"]["name"] == shown
        store.close()


async def test_a_name_stored_before_is_forgotten_at_the_next_message(tmp_path, library):
    store = Store(tmp_path / "old.db")
    with store.transaction():
        store.person(f"tg:{FAM}", CHILD_NAME)  # as the previous release stored it
    store.close()
    s, service, access, esc = _world(tmp_path / "old.db", library)
    async with running_bot(service, access=access, escalation=esc) as h:
        await h.say(FAM, "/start", first_name=CHILD_NAME)
    assert s.person_by_key(f"tg:{FAM}")["display_name"] is None
    s.close()


def test_config_refuses_an_unknown_people_names_setting(tmp_path):
    from bot.config import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("people_names: everyone\n")
    try:
        Config.load(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:1:") and "'people_names' must be pseudonyms" in str(exc)
    else:
        raise AssertionError("accepted")
