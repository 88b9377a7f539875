"""The review website over HTTP (issue 16, items 1 and 3): sign-in by one-time link, sessions,
CSRF, rate limits, security headers, the same access rules as the Telegram commands, every
read audited, and nothing people wrote in a URL or a log line."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from bot.access import Access
from bot.store import Store

import webworld as W
from webclient import client, form_token, sign_in, site_for


@pytest.fixture(scope="module")
def template(tmp_path_factory, library):
    return W.built_db(tmp_path_factory.mktemp("web"), library)


@pytest.fixture
async def world(tmp_path, library, template):
    path = W.copy_db(template[0], tmp_path)
    store = Store(path)
    w = W.World(None, Access(store, library, W.config()), "FGC-7", dict(template[1]))
    notices = []

    async def notify(key, text):
        notices.append((key, text))

    site = site_for(path, library, W.config(), notify=notify)
    yield w, site, store, notices
    site.close()
    site.store.close()
    store.close()


def later(minutes: float):
    t = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return lambda: t


async def test_a_link_works_once_expires_and_only_its_hash_is_stored(world):
    w, site, store, _ = world
    code = await site.db(site.signin.link, f"tg:{W.P1}")
    assert len(code) >= 32 and len(code.encode()) * 6 // 8 >= 16  # at least 128 bits (192 here)
    dump = "\n".join(store.db.conn.iterdump())
    assert code not in dump and hashlib.sha256(code.encode()).hexdigest() in dump
    c = client(site)
    page = await c.get(f"/signin/{code}")
    assert page.status_code == 200 and 'action="/signin"' in page.text
    page = await c.get(f"/signin/{code}")  # looking again (a link preview) uses nothing
    assert page.status_code == 200
    done = await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    assert re.search(r"rb_session=[\w-]{40,};", cookie)
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age=28800", "Path=/"):
        assert flag in cookie, (flag, cookie)
    assert (await c.get("/")).status_code == 200
    # used: refused, on the confirm page and on redemption
    again = client(site)
    page = await again.get(f"/signin/{code}")
    assert page.status_code == 400 and "already been used" in page.text
    # expired
    code2 = await site.db(site.signin.link, f"tg:{W.P1}")
    site.signin.clock = later(11)
    page = await again.get(f"/signin/{code2}")
    assert page.status_code == 400 and "expired" in page.text
    site.signin.clock = lambda: datetime.now(timezone.utc)
    # over plain HTTP the cookie is not marked Secure (local use); everything else holds
    plain = client(site, https=False)
    code3 = await site.db(site.signin.link, f"tg:{W.SUP}")
    page = await plain.get(f"/signin/{code3}")
    done = await plain.post("/signin", data={"code": code3, "csrf": form_token(page.text)})
    assert done.status_code == 303 and "HttpOnly" in done.headers["set-cookie"] and "Secure" not in done.headers["set-cookie"]
    actions = [r["action"] for r in store.audit_log()]
    assert actions.count("web.link") == 3 and actions.count("web.signin") == 2 and "web.signin.used" not in actions


async def test_an_expired_or_used_link_is_refused_at_redemption_too(world):
    w, site, store, _ = world
    code = await site.db(site.signin.link, f"tg:{W.P1}")
    c = client(site)
    page = await c.get(f"/signin/{code}")
    token = form_token(page.text)
    assert (await c.post("/signin", data={"code": code, "csrf": token})).status_code == 303
    c2 = client(site)
    page2 = await c2.get(f"/signin/{(await site.db(site.signin.link, f'tg:{W.P1}'))}")
    replay = await c2.post("/signin", data={"code": code, "csrf": form_token(page2.text)})
    assert replay.status_code == 400 and "already been used" in replay.text and "rb_session" not in replay.headers.get("set-cookie", "")
    code3 = await site.db(site.signin.link, f"tg:{W.P1}")
    page3 = await c2.get(f"/signin/{code3}")
    site.signin.clock = later(30)
    late = await c2.post("/signin", data={"code": code3, "csrf": form_token(page3.text)})
    assert late.status_code == 400 and "expired" in late.text
    actions = [r["action"] for r in store.audit_log()]
    assert "web.signin.used" in actions and "web.signin.expired" in actions


async def test_only_staff_get_links(world, tmp_path):
    w, site, store, _ = world
    from bot.access import Refused

    with pytest.raises(Refused):
        await site.db(site.signin.link, f"tg:{W.FAM_A}")
    assert await site.db(site.signin.link, f"tg:{W.LEAD}")  # a safeguarding lead without a role
    # the CLI prints a link for staff and refuses anyone else
    from bot.cli import main

    db = str(site.store.path)
    out = CliRunner().invoke(main, ["web-link", str(W.P1), "--db", db, "--url", "https://review.example.org/"])
    assert out.exit_code == 0, out.output
    assert re.fullmatch(r"https://review\.example\.org/signin/[\w-]{32}\n", out.stdout)
    bad = CliRunner().invoke(main, ["web-link", str(W.FAM_A), "--db", db])
    assert bad.exit_code == 2 and "not a practitioner" in bad.output


async def test_sign_out_ends_the_session_on_the_server(world):
    w, site, store, _ = world
    c = await sign_in(site, f"tg:{W.SUP}")
    cookie = c.cookies.get("rb_session")
    page = await c.get("/")
    out = await c.post("/signout", data={"csrf": form_token(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/signin?ended=1"
    replay = client(site)
    replay.cookies.set("rb_session", cookie, domain="site.test")
    assert (await replay.get("/")).headers["location"] == "/signin"  # the old cookie is dead
    # idle and absolute expiry end a session too
    c2 = await sign_in(site, f"tg:{W.SUP}")
    site.signin.clock = later(61)
    assert (await c2.get("/")).status_code == 303
    actions = [r["action"] for r in store.audit_log()]
    assert "web.signout" in actions and "web.session.expired" in actions


async def test_every_form_needs_its_sessions_csrf_token(world):
    w, site, store, _ = world
    sup = await sign_in(site, f"tg:{W.SUP}")
    lead = await sign_in(site, f"tg:{W.LEAD}")
    conv = w.convs[(W.FAM_A, 0)]
    alert = store.alerts(open_only=True)[0]["id"]
    item = store.review_items()[0]["id"]
    other = form_token((await lead.get("/")).text)  # a real token, of another session
    for c, url, data in ((sup, f"/conversations/{conv}/comments", {"text": "forged"}),
                         (lead, f"/alerts/{alert}/ack", {}), (sup, f"/review-items/{item}/ack", {}),
                         (sup, "/signout", {})):
        for token in (None, "", other if c is sup else form_token((await sup.get("/")).text)):
            body = dict(data, **({"csrf": token} if token is not None else {}))
            r = await c.post(url, data=body)
            assert r.status_code == 403, (url, token, r.status_code)
    assert store.comments(conv) == [] and store.alert(alert)["acknowledged_at"] is None
    assert store.review_item(item)["acknowledged_at"] is None
    assert (await sup.get("/")).status_code == 200  # still signed in
    # the sign-in form has its own token, tied to a cookie set by the link's page
    code = await site.db(site.signin.link, f"tg:{W.P1}")
    fresh = client(site)
    r = await fresh.post("/signin", data={"code": code, "csrf": "x" * 64})
    assert r.status_code == 403 and "rb_session" not in r.headers.get("set-cookie", "")


async def test_link_redemption_is_rate_limited(world):
    w, site, store, _ = world
    c = client(site)
    codes = [f"NoSuchCode{i:022d}" for i in range(32)]
    statuses = [(await c.get(f"/signin/{code}")).status_code for code in codes]
    assert statuses == [400] * 30 + [429] * 2
    other = client(site)
    other._transport.client = ("198.51.100.9", 1)  # someone else is not held up
    assert (await other.get(f"/signin/{codes[0]}")).status_code == 400
    # a real link is not held up by strangers at the same address (review-web finding 3: behind
    # a proxy or a council NAT everyone shares one): it passes, within its own code's limit
    good = await site.db(site.signin.link, f"tg:{W.P1}")
    page = await c.get(f"/signin/{good}")
    assert page.status_code == 200
    done = await c.post("/signin", data={"code": good, "csrf": form_token(page.text)})
    assert done.status_code == 303 and (await c.get("/")).status_code == 200
    assert (await c.get(f"/signin/{codes[0]}")).status_code == 429  # the guesses still wait


PAGES = ["/", "/case?ref=FGC-7", "/conversations/{conv}", "/conversations/{conv}/comment?step=scale_now", "/review",
         "/alerts", "/audit", "/case/chart.svg?ref=FGC-7&n=0", "/static/site.css", "/nope", "/signin"]


async def test_security_headers_on_every_response(world):
    w, site, store, _ = world
    c = await sign_in(site, f"tg:{W.ADMIN}")
    conv = w.convs[(W.FAM_A, 0)]
    for url in PAGES + ["/signin/NoSuchCode0000000000000000000000"]:
        r = await c.get(url.format(conv=conv))
        h = r.headers
        assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer", url
        assert h["x-content-type-options"] == "nosniff", url
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp, url
        assert "unsafe-inline" not in csp or h["content-type"].startswith("image/svg+xml"), url
    r = await c.get(f"/conversations/{conv}")
    assert "<script" not in r.text and " on" not in re.sub(r">[^<]*<", "><", r.text).lower().replace(" one", "")


async def test_pages_refuse_what_telegram_refuses_and_audit_every_read(world):
    w, site, store, _ = world
    conv = w.convs[(W.FAM_A, 0)]
    child = w.convs["child"]
    p2 = await sign_in(site, f"tg:{W.P2}")
    for url in ("/case?ref=FGC-7", f"/conversations/{conv}", f"/conversations/{conv}/comment?step=scale_now",
                "/case/chart.svg?ref=FGC-7&n=0", "/case?ref=NO-SUCH-CASE", "/conversations/99999", "/audit"):
        r = await p2.get(url)
        assert r.status_code in (403, 404), url
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "available to you" in r.text and "FGC" not in r.text.split("<main", 1)[1], url
    # a supervisor cannot read the transcript the child did not agree to share; the practitioner can
    sup = await sign_in(site, f"tg:{W.SUP}")
    case = (await sup.get("/case?ref=FGC-7")).text
    assert f'href="/conversations/{child}"' not in case and "Not shared with you (they said no to sharing)" in case
    assert (await sup.get(f"/conversations/{child}")).status_code == 404
    p1 = await sign_in(site, f"tg:{W.P1}")
    assert "football" in (await p1.get(f"/conversations/{child}")).text
    # the practitioner may not comment (supervisors do, as with /comment)
    page = await p1.get(f"/conversations/{conv}")
    assert "Comment on this answer" not in page.text
    r = await p1.post(f"/conversations/{conv}/comments", data={"csrf": form_token(page.text), "text": "mine"})
    assert r.status_code == 404 and store.comments(conv) == []
    reads = [(r["actor"], r["action"], r["target"]) for r in store.audit_log()]
    for entry in [(f"tg:{W.P2}", "case.read.refused", "case:FGC-7"), (f"tg:{W.P2}", "transcript.read.refused", f"conversation:{conv}"),
                  (f"tg:{W.P2}", "chart.read.refused", "case:FGC-7"), (f"tg:{W.P2}", "audit.read.refused", None),
                  (f"tg:{W.SUP}", "case.read", "case:FGC-7"), (f"tg:{W.SUP}", "transcript.read.refused", f"conversation:{child}"),
                  (f"tg:{W.P1}", "transcript.read", f"conversation:{child}"), (f"tg:{W.P1}", "comment.refused", f"conversation:{conv}")]:
        assert entry in reads, entry
    # and each page's read is on record
    admin = await sign_in(site, f"tg:{W.ADMIN}")
    for url, action in (("/", "cases.list"), ("/review", "review.list"), ("/alerts", "alerts.list"), ("/audit", "audit.read"),
                        ("/case/chart.svg?ref=FGC-7&n=0", "chart.read")):
        before = len(store.audit_log())
        assert (await admin.get(url)).status_code == 200, url
        assert action in [r["action"] for r in store.audit_log()[before:]], url


async def test_a_supervisor_reads_only_the_houses_the_child_chose_to_share(world):
    w, site, store, _ = world
    service = W.service_for(store, w.access.library)
    # the child shares the House of Dreams only (3), "with my teacher"
    child = W.with_child(service, w.access, W.P1, "FGC-7",
                         ["OK", "House of Worries", "House of Dreams", "spelling tests", "no", "a big garden",
                          "football", "yes", "3", "my teacher", "yes", "/skip"])
    assert store.conversation(child).status == "completed"
    sup = await sign_in(site, f"tg:{W.SUP}")
    page = (await sup.get(f"/conversations/{child}")).text
    assert "a big garden" in page and "Not shared with you: the person chose not to share these parts." in page
    assert "spelling tests" not in page and "football" not in page
    assert "What are the good things in your life?" in page  # the question withheld is named, not its answer
    p1 = await sign_in(site, f"tg:{W.P1}")
    mine = (await p1.get(f"/conversations/{child}")).text
    assert "spelling tests" in mine and "football" in mine and "Not shared with you" not in mine


async def test_comment_on_one_answer_notifies_the_practitioner(world):
    w, site, store, notices = world
    conv = w.convs[(W.FAM_A, 1)]
    sup = await sign_in(site, f"tg:{W.SUP}")
    page = await sup.get(f"/conversations/{conv}")
    link = re.search(rf'href="(/conversations/{conv}/comment\?step=scale_now#text)"', page.text).group(1)
    form = await sup.get(link)
    assert "Answer to: On a scale of 0 to 10" in form.text and ">5<" in form.text
    empty = await sup.post(f"/conversations/{conv}/comments", data={"csrf": form_token(form.text), "step": "scale_now", "text": "  "})
    assert empty.status_code == 400 and "Please write a comment" in empty.text
    done = await sup.post(f"/conversations/{conv}/comments",
                          data={"csrf": form_token(form.text), "step": "scale_now", "text": "Ask what 6 would look like.",
                                "visibility": "internal"})
    assert done.status_code == 303 and done.headers["location"].startswith(f"/conversations/{conv}?done=comment#comment-")
    assert "look like" not in done.headers["location"]
    assert [(c["step_id"], c["text"], c["visibility"]) for c in store.comments(conv)] == [
        ("scale_now", "Ask what 6 would look like.", "internal")]
    assert notices == [(f"tg:{W.P1}", notices[0][1])] and "Ask what 6 would look like." in notices[0][1]
    assert f"transcript {conv}" in notices[0][1] or f"#{conv}" in notices[0][1] or str(conv) in notices[0][1]
    shown = (await sup.get(done.headers["location"])).text
    answer = shown.split("Answer to: On a scale of 0 to 10", 1)[1].split("</li>", 1)[0]
    assert "Ask what 6 would look like." in answer  # inline, under the answer it is about


async def test_a_comment_notice_waits_in_the_schedule_while_a_child_holds_the_workers_phone(world, library):
    """A worker-present session runs on P1's phone (a child is holding it): a supervisor's
    comment from the website, which quotes the comment about another family, is not sent there
    now; it is kept in the store's schedule, which `serve` sends once the session has ended
    (and which a restart does not lose)."""
    from bot.schedule import Schedule

    w, site, store, notices = world
    service = W.service_for(store, library)
    with_conv = w.access.start_with(f"tg:{W.P1}", "CASE-H", "three-houses", lambda person, flow, case, respondent, present:
                                    service.start(person, flow, case_id=case, respondent=respondent,
                                                  present_id=present).conversation_id)
    assert with_conv and f"tg:{W.P1}" in site.escalation.holding()
    conv = w.convs[(W.FAM_A, 1)]
    sup = await sign_in(site, f"tg:{W.SUP}")
    form = await sup.get(f"/conversations/{conv}/comment?step=scale_now")
    done = await sup.post(f"/conversations/{conv}/comments",
                          data={"csrf": form_token(form.text), "step": "scale_now", "text": "Ask what 6 would look like.",
                                "visibility": "internal"})
    assert done.status_code == 303 and notices == []
    [held] = Schedule(store, quiet_from="00:00", quiet_until="00:00").due(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert (held.recipient, held.kind) == (f"tg:{W.P1}", "notice") and "Ask what 6 would look like." in held.text
    # it records whom it is about (the person who answered), so their erasure reaches it (review-dp F1)
    assert store.scheduled(held.id)["about_person_id"] == store.conversation(conv).person_id


async def test_no_answer_text_or_code_in_urls_or_logs(world, caplog):
    w, site, store, _ = world
    caplog.set_level(logging.DEBUG)
    conv = w.convs[(W.FAM_A, 0)]
    code = await site.db(site.signin.link, f"tg:{W.SUP}")
    c = client(site)
    page = await c.get(f"/signin/{code}")
    await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
    answers = [a["raw"] for a in store.answers(conv) if a["raw"] and len(a["raw"]) > 3]
    hrefs = []
    for url in PAGES:
        r = await c.get(url.format(conv=conv))
        hrefs += re.findall(r'(?:href|src|action)="([^"]*)"', r.text)
    page = await c.get(f"/conversations/{conv}")
    await c.post(f"/conversations/{conv}/comments", data={"csrf": form_token(page.text), "text": "A private comment"})
    assert answers and hrefs
    for h in hrefs:
        assert not any(a in h for a in answers + ["private comment"]), h
    # what the server side logs (the test's own HTTP client, httpx, is not the site)
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "web request" in logged  # the site does log requests: by route and status
    for secret in answers + [code, "A private comment", "FGC-7", c.cookies.get("rb_session")]:
        assert secret not in logged, secret


async def test_restorative_bot_web_serves_and_logs_no_code(world, tmp_path):
    """The command itself, with uvicorn: pages answer, and its log has routes, never the link's code."""
    import asyncio
    import os
    import socket
    import sys

    import httpx

    w, site, store, _ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = await site.db(site.signin.link, f"tg:{W.P1}")
    env = dict(os.environ, RESTORATIVE_DB=str(site.store.path))
    env.pop("TELEGRAM_BOT_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "web", "--port", str(port),
                                                stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(300):
                try:
                    page = await c.get(f"/signin/{code}")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
            done = await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
            assert done.status_code == 303 and "Secure" not in done.headers["set-cookie"]  # plain HTTP here
            assert (await c.get("/")).status_code == 200
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    log = err.decode()
    assert '"route": "signin_link"' in log and '"route": "cases"' in log
    assert code not in log and "/signin/" not in log


async def test_my_cases_a_page_at_a_time_attention_first_and_only_ones_own(world):
    w, site, store, _ = world
    access = w.access
    for i in range(5):
        access.invite(f"tg:{W.P1}", "scaling-checkin", f"P1-EMPTY-{i}")
        access.invite(f"tg:{W.P2}", "scaling-checkin", f"P2-CASE-{i}")
    rows, total = access.cases_page(f"tg:{W.P1}", limit=3)
    assert total == 6 and sorted(r["ref"] for r in rows) == ["FGC-7", "P1-EMPTY-2", "P1-EMPTY-3", "P1-EMPTY-4"]
    rows, total = access.cases_page(f"tg:{W.ADMIN}", limit=2)
    assert total == 11 and "FGC-7" in [r["ref"] for r in rows] and len(rows) == 3
    assert all(r["practitioner_key"] == f"tg:{W.P2}" for r in access.cases_page(f"tg:{W.P2}")[0])
    # on the page: the case with an alert first, then the most recent
    p1 = await sign_in(site, f"tg:{W.P1}")
    page = (await p1.get("/")).text
    refs = re.findall(r'<a href="/case\?ref=[^"]+">([^<]+)</a>', page)
    assert refs == ["FGC-7", "P1-EMPTY-4", "P1-EMPTY-3", "P1-EMPTY-2", "P1-EMPTY-1", "P1-EMPTY-0"]
    assert ("cases.list" in [r["action"] for r in store.audit_log() if r["actor"] == f"tg:{W.ADMIN}"])


def test_the_sign_in_throttle_limits_each_address_and_each_code_and_never_locks_out_a_real_link():
    """Trust review finding 13: one global cap of 600 tries a minute; a stranger rotating
    addresses (or X-Forwarded-For values) used it up and locked every member of staff out."""
    from bot.web.signin import Throttle

    t = [0.0]
    th = Throttle(per_minute=30, total_per_minute=600, per_code=10, clock=lambda: t[0])
    for i in range(600):
        assert th.allow(f"10.0.{i // 250}.{i % 250}", f"guess-{i}", valid=lambda: False)
    assert not th.allow("192.0.2.7", "guess-x", valid=lambda: False)      # strangers stay bounded
    assert th.allow("192.0.2.7", "real-code", valid=lambda: True)         # staff with a real link go on
    # one code from rotating addresses: its own limit
    assert [th.allow(f"172.16.0.{i}", "one-code", valid=lambda: True) for i in range(11)] == [True] * 10 + [False]
    t[0] = 61.0                                                           # a minute later, room again
    # one address with many codes: its own limit, which real links pass (a stranger at the same
    # address must not lock staff out: review-web finding 3)
    assert [th.allow("198.51.100.1", f"c{i}", valid=lambda: False) for i in range(31)] == [True] * 30 + [False]
    assert th.allow("198.51.100.1", "real", valid=lambda: True)


async def test_a_member_of_staff_signs_in_while_strangers_flood_the_sign_in_page(world):
    w, site, store, _ = world
    for i in range(site.throttle.total_per_minute):   # every try from an address of its own
        page = await client(site, ip=f"10.9.{i // 250}.{i % 250}").get(f"/signin/guess{i}")
        assert page.status_code == 400
    assert (await client(site, ip="10.10.0.1").get("/signin/guess-more")).status_code == 429
    c = await sign_in(site, f"tg:{W.P1}")                                  # a real link still works
    assert (await c.get("/")).status_code == 200
