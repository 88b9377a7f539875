"""Comments are internal (staff only, the default) or shared (the family sees them), and
/comment and the CLI say which (issue 11, finding 8)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import Store
from bot.testing.telegram import running_bot

ROOT = Path(__file__).resolve().parents[1]
SUP, P1, FAM = 2, 3, 9
INTERNAL = "Internal note: dad seemed guarded, check with school"
SHARED = "Thank you for such thoughtful answers"


@pytest.fixture
async def world(tmp_path, library):
    store = Store(tmp_path / "c.db")
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"supervisor": [SUP], "practitioner": [P1]}, teams={SUP: [P1]}))
    access.seed()
    async with running_bot(service, access=access) as h:
        msgs = await h.say(P1, "/invite scaling-checkin FGC-3 --for adult")
        code = re.search(r"start=(\S+)", msgs[-1].text).group(1)
        msgs = await h.say(FAM, f"/start {code}")
        data = next(cb for row in h.fake.buttons(msgs[-1]) for (t, cb) in row if t == "Yes, start")
        await h.delivered(h.fake.press_button(FAM, msgs[-1].message_id, data))
        for text in ("We talk more", "6", "We eat together", "Less shouting", "8", "/skip"):
            await h.say(FAM, text)
        conv = store.conversations(person_id=store.person(f"tg:{FAM}"))[0]["id"]
        yield h, store, conv


async def test_comment_says_which_kind_and_the_family_never_sees_internal_ones(world):
    h, store, conv = world
    msgs = await h.say(SUP, f"/comment {conv}#best_hopes {INTERNAL}")
    assert msgs[-1].text.startswith("Internal comment saved") and "staff only" in msgs[-1].text
    msgs = await h.say(SUP, f"/comment {conv} shared: {SHARED}")
    assert msgs[-1].text.startswith("Shared comment saved") and "family will see it" in msgs[-1].text
    notices = [m.text for m in h.fake.messages(P1) if "transcript" in (m.text or "") and "comment" in (m.text or "")]
    assert any("internal comment (staff only)" in t and "dad seemed guarded" in t for t in notices)
    assert any("the family will see" in t and SHARED in t for t in notices)
    assert [(c["visibility"], c["text"]) for c in store.comments(conv)] == [("internal", INTERNAL), ("shared", SHARED)]

    # the family: /transcript and /mydata file show the shared comment only
    msgs = await h.say(FAM, f"/transcript {conv}")
    shown = "\n".join(m.text or "" for m in msgs) + h.fake.documents(FAM)[-1].data.decode()
    assert SHARED in shown and "guarded" not in shown
    await h.say(FAM, "/mydata file")
    mine = json.loads(h.fake.documents(FAM)[-1].data.decode())
    mine = mine if isinstance(mine, list) else [mine]
    assert [c["text"] for d in mine for c in d["comments"]] == [SHARED]
    assert "guarded" not in h.fake.documents(FAM)[-1].data.decode()

    # staff: both, each labelled
    for who in (P1, SUP):
        msgs = await h.say(who, f"/transcript {conv}")
        text = "\n".join(m.text or "" for m in msgs)
        assert "internal: staff only" in text and "guarded" in text
        assert "shared with the family" in text and "thoughtful answers" in text


def test_the_cli_comment_says_which_and_exports_label_it(tmp_path, library):
    db = tmp_path / "cli.db"
    store = Store(db)
    service = ConversationService(store, library)
    access = Access(store, library, Config(roles={"supervisor": [SUP], "practitioner": [P1]}, teams={SUP: [P1]}))
    access.seed()
    code, _ = access.invite(f"tg:{P1}", "scaling-checkin", "FGC-4")
    view = access.open_invite(f"tg:{FAM}", code)
    conv = access.accept_invite(f"tg:{FAM}", view.invite_id,
                                lambda pid, f, c: service.start(pid, f, case_id=c).conversation_id)
    service.handle(store.person(f"tg:{FAM}"), Input.from_text("We talk more"))
    store.close()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bot", *args, "--db", str(db)], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)

    done = cli("comment", str(conv), INTERNAL, "--by", str(SUP))
    assert done.returncode == 0 and "internal comment saved" in done.stdout and "staff only" in done.stdout
    done = cli("comment", str(conv), SHARED, "--by", str(SUP), "--shared")
    assert done.returncode == 0 and "shared comment saved" in done.stdout and "family will see" in done.stdout
    refused = cli("comment", str(conv), "hello", "--by", str(FAM))
    assert refused.returncode == 2 and "cannot comment" in refused.stderr
    md = cli("export", "--session", str(conv), "--format", "md").stdout
    assert re.search(r"internal: staff only\)[^\n]*\n  > Internal note", md), md
    assert re.search(r"shared with the family\)[^\n]*\n  > Thank you", md), md
    data = json.loads(cli("export", "--session", str(conv), "--format", "json").stdout)
    assert [(c["visibility"], c["text"]) for c in data["comments"]] == [("internal", INTERNAL), ("shared", SHARED)]
    store = Store(db)
    reader = Access(store, library, Config())
    assert [c["text"] for c in reader.transcript(f"tg:{FAM}", conv)["comments"]] == [SHARED]
    store.close()


async def test_staff_answering_as_family_in_someone_elses_case_see_what_a_family_sees(tmp_path, library):
    """A practitioner invited into another worker's case as a family member (a kinship carer who
    works for the council) is the family there: the supervisor's internal comments and the quiet
    safeguarding marks on their own lines stay hidden from them in /transcript, /mydata file and
    on the website (review-priv finding 3). Their own rehearsal (no case) still shows both."""
    from tests.test_telegram_reading import start_case
    from bot.safeguarding import SafeguardingConfig
    from webclient import sign_in, site_for

    P2 = 4
    config = Config(roles={"supervisor": [SUP], "practitioner": [P1, P2]}, teams={SUP: [P1]})
    store = Store(tmp_path / "s.db")
    service = ConversationService(store, library, safeguarding=SafeguardingConfig.load())
    access = Access(store, library, config)
    access.seed()
    quiet = "nobody listens to me"  # review tier (safeguarding check): a quiet mark
    async with running_bot(service, access=access) as h:
        conv = await start_case(h, practitioner=P1, family=P2, ref="FGC-7")
        await h.say(P2, quiet)
        assert any(t["tier"] == "review" for t in store.transcript(conv))  # the mark is there, for staff
        await h.say(SUP, f"/comment {conv} {INTERNAL}")
        await h.say(SUP, f"/comment {conv} shared: {SHARED}")

        msgs = await h.say(P2, f"/transcript {conv}")
        shown = "\n".join(m.text or "" for m in msgs) + h.fake.documents(P2)[-1].data.decode()
        assert SHARED in shown and "guarded" not in shown and "safeguarding review" not in shown
        data = await h.frontend.db(access.transcript, f"tg:{P2}", conv)
        assert [c["text"] for c in data["comments"]] == [SHARED]
        assert not any(t["flagged"] for t in data["transcript"]) and data["worth_a_look"] == []
        await h.say(P2, "/mydata file")
        mine = h.fake.documents(P2)[-1].data.decode()
        assert SHARED in mine and "guarded" not in mine and '"review"' not in mine

        # the case's worker sees all of it
        data = await h.frontend.db(access.transcript, f"tg:{P1}", conv)
        assert len(data["comments"]) == 2 and any(t["flagged"] for t in data["transcript"])

        # on the website too
        site = site_for(store.path, library, config)
        try:
            page = (await (await sign_in(site, f"tg:{P2}")).get(f"/conversations/{conv}")).text
            assert SHARED in page and "guarded" not in page and "safeguarding review" not in page
            page = (await (await sign_in(site, f"tg:{P1}")).get(f"/conversations/{conv}")).text
            assert "guarded" in page
        finally:
            site.close()
            site.store.close()

        # their own rehearsal (no case): they are the staff reading their own practice
        rehearsal = await h.frontend.db(lambda: service.start(service.person(f"tg:{P2}"), "scaling-checkin").conversation_id)
        assert access.sees_internal(f"tg:{P2}", rehearsal)
        assert not access.sees_internal(f"tg:{P2}", conv)
