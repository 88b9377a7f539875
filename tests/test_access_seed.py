"""Roles and teams from the configuration never undo a person's decision (review-priv finding 1).

`serve` and `web-link` seed the roles and team links the configuration lists. A role taken away
with `role revoke`, or a link removed with `team remove`, stays taken while the configuration
still lists it (a warning in the log, with the person's key only) until `role grant` / `team add`.
Every grant and link the seeding makes is audited. A link the configuration added and no longer
lists goes at the next seed (audited); a link added with `team add` stays. Removing a link or a
role takes effect at once in Telegram and on the website, without a restart."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from click.testing import CliRunner

from bot.access import Access, Refused
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import SCHEMA_VERSION, Store
from bot.testing.telegram import running_bot

SUP, SUP2, P1, P2, P3, FAM = 2, 6, 3, 4, 7, 5
WORDS = "We argue every morning about school"


def _config(teams=None) -> Config:
    return Config(roles={"supervisor": [SUP, SUP2], "practitioner": [P1, P2, P3]},
                  teams={SUP: [P1]} if teams is None else teams)


def _family_case(access: Access, service: ConversationService, practitioner: int = P1, ref: str = "FGC-1") -> int:
    code, inv = access.invite(f"tg:{practitioner}", "scaling-checkin", ref, respondent="adult")
    access.open_invite(f"tg:{FAM}", code)
    conv = access.accept_invite(f"tg:{FAM}", inv, lambda pid, f, case_id, respondent=None: service.start(
        pid, f, case_id=case_id, respondent=respondent).conversation_id)
    service.handle(service.person(f"tg:{FAM}"), Input.from_text(WORDS), conversation_id=conv)
    return conv


def _reads(access: Access, who: int, conv: int) -> bool:
    try:
        return WORDS in str(access.transcript(f"tg:{who}", conv)["answers"])
    except Refused:
        return False


def _audit(store, action_prefix: str) -> list[tuple]:
    return [(r["actor"], r["action"], r["target"], r["detail"]) for r in store.audit_log()
            if r["action"].startswith(action_prefix)]


def test_a_revoked_role_stays_revoked_at_every_restart_until_granted_again(store, library, caplog):
    service = ConversationService(store, library)
    access = Access(store, library, _config())
    access.seed()
    # every grant the configuration makes is on record, once
    grants = _audit(store, "role.grant")
    assert ("config", "role.grant", f"tg:{P1}", "practitioner") in grants and len(grants) == 5
    Access(store, library, _config()).seed()
    assert len(_audit(store, "role.grant")) == 5  # a restart grants nothing new, and says nothing
    conv = _family_case(access, service)
    assert _reads(access, P1, conv)

    access.revoke(None, f"tg:{P1}", "practitioner")  # restorative-bot role revoke 3 practitioner
    caplog.set_level(logging.WARNING, logger="bot.access")
    for _ in range(2):  # `serve` restarted twice with the same configuration
        access = Access(store, library, _config())
        access.seed()
        assert access.roles(f"tg:{P1}") == set() and not _reads(access, P1, conv)
    warned = [r for r in caplog.records if r.name == "bot.access" and "revoked" in r.getMessage()]
    assert warned and all(r.person == f"tg:{P1}" and r.role == "practitioner" for r in warned)
    assert all(WORDS not in r.getMessage() and "FGC" not in r.getMessage() for r in caplog.records)
    assert len(_audit(store, "role.grant")) == 5  # no silent re-grant

    # a person grants it back: from then on the configuration keeps it, as before
    access.grant(None, f"tg:{P1}", "practitioner")
    access = Access(store, library, _config())
    access.seed()
    assert access.roles(f"tg:{P1}") == {"practitioner"} and _reads(access, P1, conv)
    # revoked before the configuration ever listed them: never granted either
    Access(store, library, Config()).revoke(None, "tg:99", "admin")
    Access(store, library, Config(roles={"admin": [99]})).seed()
    assert Access(store, library, Config()).roles("tg:99") == set()


def test_config_team_links_follow_the_config_and_team_add_links_stay(store, library):
    service = ConversationService(store, library)
    access = Access(store, library, _config(teams={SUP: [P1]}))
    access.seed()
    access.team_add(None, f"tg:{SUP}", f"tg:{P2}")  # restorative-bot team add 2 4
    conv1 = _family_case(access, service, P1, "FGC-1")
    conv2 = _family_case(access, service, P2, "DV-2")
    assert _reads(access, SUP, conv1) and _reads(access, SUP, conv2)
    assert ("config", "team.add", f"tg:{SUP}", f"tg:{P1}") in _audit(store, "team.")

    # the configuration now has SUP supervising P3 only: P1's link goes, P2's (a person's) stays
    access = Access(store, library, _config(teams={SUP: [P3]}))
    access.seed()
    assert not _reads(access, SUP, conv1) and _reads(access, SUP, conv2)
    links = {(r["supervisor_key"], r["practitioner_key"], r["added_by"]) for r in store.team_links()}
    assert links == {(f"tg:{SUP}", f"tg:{P2}", "cli"), (f"tg:{SUP}", f"tg:{P3}", "config")}
    assert ("config", "team.remove", f"tg:{SUP}", f"tg:{P1}") in _audit(store, "team.")
    assert ("config", "team.add", f"tg:{SUP}", f"tg:{P3}") in _audit(store, "team.")
    # a link the configuration listed and a person then added stays a person's
    access.team_add(None, f"tg:{SUP}", f"tg:{P3}")
    Access(store, library, _config(teams={})).seed()
    assert {r["practitioner_key"] for r in store.team_links()} == {f"tg:{P2}", f"tg:{P3}"}


def run_cli(*args, db):
    from bot.cli import main

    return CliRunner().invoke(main, [*args, "--db", str(db)])


def test_team_remove_is_audited_and_the_config_does_not_add_the_link_back(tmp_path, library):
    db = tmp_path / "t.db"
    store = Store(db)
    service = ConversationService(store, library)
    access = Access(store, library, _config(teams={SUP: [P1], SUP2: [P1]}))
    access.seed()
    conv = _family_case(access, service)
    assert _reads(access, SUP, conv)
    out = run_cli("team", "remove", str(SUP), str(P1), db=db)
    assert out.exit_code == 0 and "2 no longer supervises 3" in out.output, out.output
    assert not _reads(access, SUP, conv)  # at once, same Access: no restart
    assert _reads(access, SUP2, conv)  # the other supervisor keeps the link
    assert ("cli", "team.remove", f"tg:{SUP}", f"tg:{P1}") in _audit(store, "team.")
    access = Access(store, library, _config(teams={SUP: [P1], SUP2: [P1]}))
    access.seed()
    assert not _reads(access, SUP, conv)
    listing = run_cli("team", "list", db=db)
    assert listing.exit_code == 0 and "tg:6" in listing.output and "tg:2 " not in listing.output, listing.output
    again = run_cli("team", "remove", str(SUP), str(P1), db=db)
    assert again.exit_code == 0 and "did not supervise" in again.output
    # only an admin (or the CLI) may remove a link
    with pytest.raises(Refused):
        access.team_remove(f"tg:{SUP2}", f"tg:{SUP2}", f"tg:{P1}")
    assert _reads(access, SUP2, conv)
    # `team add` restores it, and the configuration may keep it from then on
    assert run_cli("team", "add", str(SUP), str(P1), db=db).exit_code == 0
    Access(store, library, _config(teams={SUP: [P1], SUP2: [P1]})).seed()
    assert _reads(access, SUP, conv)
    store.close()


async def test_a_removed_team_link_closes_the_case_in_telegram_at_once(tmp_path, library):
    store = Store(tmp_path / "tg.db")
    service = ConversationService(store, library)
    access = Access(store, library, _config())
    access.seed()
    async with running_bot(service, access=access) as h:
        from bot.messages import msg
        from tests.test_telegram_reading import start_case

        conv = await start_case(h, practitioner=P1, family=FAM, ref="FGC-7")
        await h.say(FAM, WORDS)
        shown = "\n".join(m.text or "" for m in await h.say(SUP, f"/transcript {conv}"))
        assert WORDS in shown
        await h.frontend.db(access.team_remove, None, f"tg:{SUP}", f"tg:{P1}")
        shown = "\n".join(m.text or "" for m in await h.say(SUP, f"/transcript {conv}"))
        assert WORDS not in shown and msg("staff.refused") in shown
        cases = "\n".join(m.text or "" for m in await h.say(SUP, "/cases"))
        assert "FGC-7" not in cases


async def test_a_removed_team_link_or_role_takes_effect_on_the_website_without_a_restart(tmp_path, library):
    import webworld as W
    from webclient import sign_in, site_for

    path, convs = W.built_db(tmp_path, library)
    conv = convs[(W.FAM_A, 0)]
    site = site_for(path, library, W.config())
    store = Store(path)
    admin = Access(store, library, W.config())
    try:
        sup = await sign_in(site, f"tg:{W.SUP}")
        assert (await sup.get(f"/conversations/{conv}")).status_code == 200
        assert "FGC-7" in (await sup.get("/")).text
        admin.team_remove(None, f"tg:{W.SUP}", f"tg:{W.P1}")  # the CLI, while the website runs
        assert (await sup.get(f"/conversations/{conv}")).status_code == 404
        assert (await sup.get("/case?ref=FGC-7")).status_code in (403, 404)
        assert "FGC-7" not in (await sup.get("/")).text.split("<main", 1)[-1]
        # a practitioner whose role goes is signed out at their next page
        p1 = await sign_in(site, f"tg:{W.P1}")
        assert (await p1.get(f"/conversations/{conv}")).status_code == 200
        admin.revoke(None, f"tg:{W.P1}", "practitioner")
        gone = await p1.get(f"/conversations/{conv}")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    finally:
        site.close()
        site.store.close()
        store.close()


def test_an_older_database_keeps_the_revocations_the_config_undid(tmp_path):
    """A database from before this change: a practitioner revoked with `role revoke` and silently
    re-granted by a later `serve` start loses the role again (on record) and stays revoked; one
    revoked and then granted by a person keeps it; a team link added with `team add` is a
    person's, the others the configuration's."""
    db = tmp_path / "old.db"
    store = Store(db)
    a, b, s = store.person("tg:3"), store.person("tg:4"), store.person("tg:2")
    store.audit("cli", "role.revoke", "tg:3", "practitioner")
    store.grant_role(a, "practitioner", "config")  # the old seed, silently
    store.audit("cli", "role.revoke", "tg:4", "practitioner")
    store.audit("cli", "role.grant", "tg:4", "practitioner")
    store.grant_role(b, "practitioner", "cli")
    store.add_team(s, a)
    store.add_team(s, b)
    store.audit("cli", "team.add", "tg:2", "tg:4")
    store.close()
    from bot.store import MIGRATIONS, _m_access_revocations

    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE role_revocations; DROP TABLE team_removals; ALTER TABLE teams DROP COLUMN added_by;")
    conn.execute(f"PRAGMA user_version={MIGRATIONS.index(_m_access_revocations)}")  # the version before it
    conn.commit()
    conn.close()
    store = Store(db)
    try:
        assert store.version == SCHEMA_VERSION
        assert store.roles_of(a) == set() and store.role_revoked(a, "practitioner")
        assert store.roles_of(b) == {"practitioner"} and not store.role_revoked(b, "practitioner")
        assert ("migration", "role.revoke", "tg:3", "practitioner") in _audit(store, "role.revoke")
        assert {(r["practitioner_key"], r["added_by"]) for r in store.team_links()} == {("tg:3", "config"), ("tg:4", "cli")}
    finally:
        store.close()
