"""The review website in a real browser (issue 16, done-when): headless Chromium from the
system's packages (/usr/bin/chromium, installed by .ci/run; never a browser downloaded by a
tool), driven by Playwright, with the bot running against the fake Bot API beside it.

Sign-in by a one-time link from /web, cases, a case's chart, a transcript, a comment on one
answer (with JavaScript off; the practitioner is told in Telegram), the review queue,
acknowledging an alert; refusals by editing the URL, a used or expired link, a transcript the
child did not agree to share. axe-core (bundled by axe-playwright-python) checks each main
page; screenshots go to out/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio

from bot.access import Access
from bot.conversation import ConversationService
from bot.store import Store
from bot.testing.telegram import TOKEN, running_bot
from bot.web.server import telegram_notify, uvicorn_server

import webworld as W
from webclient import lexicon, site_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: install Debian's chromium "
                       "(apt-get install -y chromium chromium-driver; .ci/run does on CI) to run the browser tests"),
    pytest.mark.asyncio(loop_scope="module"),
]


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port, kept until the site serves on it: a port only
    looked up and let go could be taken meanwhile (the fake Bot API server starts in between)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class Env:
    pass


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(tmp_path_factory, library):
    from playwright.async_api import async_playwright

    folder = tmp_path_factory.mktemp("browser")
    path, convs = W.built_db(folder, library)
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = W.config()
    config.web_url = f"http://127.0.0.1:{port}"
    store = Store(path)
    service = ConversationService(store, library, safeguarding=lexicon())
    access = Access(store, library, config)
    e = Env()
    e.base, e.convs, e.store = config.web_url, convs, store
    async with running_bot(service, access=access) as h:
        e.h = h
        site = site_for(path, library, config, notify=telegram_notify(TOKEN, h.fake.base_url))
        e.site = site
        server = uvicorn_server(site, "127.0.0.1", port)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.02)
            assert not task.done(), task.exception()
        pw = await async_playwright().start()
        e.browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield e
        finally:
            await e.browser.close()
            await pw.stop()
            server.should_exit = True
            await task
            site.close()
            site.store.close()
    store.close()


async def telegram(e, user: int, text: str) -> list:
    before = len(e.h.fake.messages(user))
    await e.h.delivered(e.h.fake.inject_command(user, text))
    return e.h.fake.messages(user)[before:]


async def signed_in(e, user: int, javascript: bool = True):
    """A fresh browser context, signed in by a link (made as /web makes it), on My cases."""
    context = await e.browser.new_context(java_script_enabled=javascript, base_url=e.base)
    page = await context.new_page()
    code = await e.site.db(e.site.signin.link, f"tg:{user}")
    await page.goto(f"/signin/{code}")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{e.base}/")
    return context, page


async def accessible(page, name: str) -> None:
    """axe-core finds no violation; the page is saved as a screenshot to look at."""
    from axe_playwright_python.async_playwright import Axe

    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def test_sign_in_by_a_link_from_telegram_then_my_cases(env):
    e = env
    msgs = await telegram(e, W.P1, "/web")
    found = re.search(r"(http://127\.0\.0\.1:\d+/signin/[\w-]+)", msgs[-1].text if msgs else "")
    assert found, [m.text for m in msgs]
    link = found.group(1)
    assert "works once" in msgs[-1].text
    context = await e.browser.new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{e.base}/")
    assert await page.get_by_role("heading", level=1).inner_text() == "My cases"
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="FGC-7"))
    assert "1 open alert(s)" in await row.inner_text() and "worth a look" in await row.inner_text()
    await accessible(page, "cases")
    # keyboard: the first Tab reaches "Skip to the main content", Enter moves into the page
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to the main content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    # printing: no navigation or forms on paper
    await page.emulate_media(media="print")
    assert not await page.get_by_role("navigation").is_visible()
    await page.emulate_media(media="screen")
    # the same link again, from another browser: refused
    other = await e.browser.new_context()
    page2 = await other.new_page()
    await page2.goto(link)
    assert "already been used" in await page2.locator("main").inner_text()
    assert not await page2.get_by_role("button", name="Sign in").count()
    # an expired link: refused
    code = await e.site.db(e.site.signin.link, f"tg:{W.P1}")
    later = datetime.now(timezone.utc) + timedelta(minutes=11)
    e.site.signin.clock = lambda: later
    try:
        await page2.goto(f"/signin/{code}".join([e.base, ""]))
        assert "has expired" in await page2.locator("main").inner_text()
    finally:
        e.site.signin.clock = lambda: datetime.now(timezone.utc)
    # a family member asking for a link gets none
    msgs = await telegram(e, W.FAM_A, "/web")
    assert "/signin/" not in msgs[-1].text and "isn't available to you" in msgs[-1].text
    await context.close()
    await other.close()


async def test_case_page_chart_and_the_childs_unshared_transcript(env):
    e = env
    context, page = await signed_in(e, W.SUP)
    await page.get_by_role("link", name="FGC-7").click()
    await page.wait_for_url(re.compile(rf"/case\?ref=FGC-7&p={W.P1}$"))  # the list says whose case
    img = page.get_by_role("img", name=re.compile("Line chart of the answers to “On a scale of 0 to 10"))
    await img.scroll_into_view_if_needed()
    assert await img.evaluate("i => i.complete && i.naturalWidth") > 500  # drawn and served
    table = page.get_by_role("table", name=re.compile("Scores for “On a scale of 0 to 10"))
    assert (await table.get_by_role("row").count()) == 7  # a heading and six scores
    child = e.convs["child"]
    row = page.get_by_role("row").filter(has_text=f"#{child}")
    assert "Not shared with you (they said no to sharing)" in await row.inner_text()
    assert not await row.get_by_role("link").count()
    await accessible(page, "case")
    # editing the URL does not get round it
    await page.goto(f"/conversations/{child}")
    assert "isn't available to you" in await page.locator("main").inner_text()
    await context.close()


async def test_transcript_and_a_comment_on_one_answer_without_javascript(env):
    e = env
    conv = e.convs[(W.FAM_A, 2)]
    context, page = await signed_in(e, W.SUP, javascript=False)
    await page.goto(f"/conversations/{conv}")
    answer = page.get_by_role("listitem").filter(has_text="Answer to: On a scale of 0 to 10")
    assert "6" in await answer.locator(".text").inner_text()
    before = len(e.h.fake.messages(W.P1))
    await answer.get_by_role("link", name="Comment on this answer").click()
    await page.get_by_label(re.compile("Your comment on the answer to: On a scale")).fill("What made it a 6 this week?")
    await page.get_by_role("button", name="Save the comment").click()
    await page.wait_for_url(re.compile(rf"/conversations/{conv}\?done=comment"))
    assert "The worker has been told in Telegram" in await page.get_by_role("status").inner_text()
    answer = page.get_by_role("listitem").filter(has_text="Answer to: On a scale of 0 to 10")
    assert "What made it a 6 this week?" in await answer.locator(".comment").inner_text()
    notice = await e.h.fake.wait_for(lambda: [m for m in e.h.fake.messages(W.P1)[before:]
                                              if "What made it a 6 this week?" in (m.text or "")])
    assert f"{conv}" in notice[0].text
    await context.close()
    # the same pages pass axe (which needs JavaScript to run)
    context, page = await signed_in(e, W.SUP)
    await page.goto(f"/conversations/{conv}")
    await accessible(page, "transcript")
    await page.goto(f"/conversations/{conv}/comment?step=scale_now")
    await accessible(page, "comment")
    await context.close()


async def test_review_queue_and_acknowledging_an_alert(env):
    e = env
    context, page = await signed_in(e, W.SUP)
    await page.get_by_role("navigation").get_by_role("link", name="Review").click()
    queue = page.get_by_role("table")
    assert await queue.get_by_role("link", name=f"#{e.convs[(W.FAM_A, 0)]}").count() == 1
    item = e.store.review_items()[0]["id"]
    await accessible(page, "review")
    await page.get_by_role("button", name=f"Mark R{item} as looked at").click()
    assert f"R{item} marked as looked at." in await page.get_by_role("status").inner_text()
    await context.close()
    context, page = await signed_in(e, W.LEAD)
    await page.goto("/alerts")
    alert = e.store.alerts(open_only=True)[0]["id"]
    card = page.get_by_role("article")
    assert "my dad hits me" in await card.inner_text()
    await accessible(page, "alerts")
    await page.get_by_role("button", name=f"Acknowledge alert {alert}").click()
    assert f"Alert {alert} acknowledged." in await page.get_by_role("status").inner_text()
    assert "No open alerts for you." in await page.locator("main").inner_text()
    assert e.store.alert(alert)["acknowledged_by"] == f"tg:{W.LEAD}"
    await context.close()
    context, page = await signed_in(e, W.ADMIN)
    await page.goto("/audit")
    assert "alert.ack" in await page.get_by_role("table").inner_text()
    await accessible(page, "audit")
    await context.close()


async def test_a_practitioner_cannot_open_another_practitioners_case_by_editing_the_url(env):
    e = env
    context, page = await signed_in(e, W.P2)
    assert "You have no cases yet" in await page.locator("main").inner_text()
    for url in ("/case?ref=FGC-7", f"/conversations/{e.convs[(W.FAM_A, 0)]}"):
        response = await page.goto(url)
        assert response.status == 404, url
    assert (await context.request.get("/case/chart.svg?ref=FGC-7&n=0")).status == 404  # with this browser's cookie
    assert (await context.request.get("/")).status == 200
    await page.goto("/case?ref=FGC-7")
    assert "isn't available to you" in await page.locator("main").inner_text()
    await context.close()
