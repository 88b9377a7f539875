"""Two practitioners chose the same case reference for two different families (trust review
finding 14). Someone who may read both (an administrator, a supervisor of both) is never shown
them as one case: /case, /trend, /summary and the website's case page ask whose case is meant
and show that one only; each practitioner still sees their own without saying so."""

from __future__ import annotations

import pytest

import webworld as W
from bot.access import Access, AmbiguousCase
from bot.store import Store
from bot.testing.telegram import running_bot
from webclient import sign_in, site_for

A_WORDS, B_WORDS = "Family A hopes: dad moves back", "Family B hopes: more days out together"


@pytest.fixture
def shared(tmp_path, library):
    path = tmp_path / "shared.db"
    store = Store(str(path))
    access = Access(store, library, W.config())
    access.seed()
    service = W.service_for(store, library)
    conv_a = W.invited(service, access, W.P1, W.FAM_A, "FGC-1", [A_WORDS, "6", "x", "y", "7", "/skip"])
    conv_b = W.invited(service, access, W.P2, W.FAM_B, "FGC-1", [B_WORDS, "3", "x", "y", "5", "/skip"])
    yield path, store, access, service, conv_a, conv_b
    store.close()


def test_the_case_asks_whose_it_is_and_then_shows_that_family_only(shared):
    _, _, access, _, conv_a, conv_b = shared
    admin = f"tg:{W.ADMIN}"
    with pytest.raises(AmbiguousCase) as asked:
        access.case(admin, "FGC-1")
    assert sorted(key for key, _ in asked.value.holders) == [f"tg:{W.P1}", f"tg:{W.P2}"]
    assert [c["id"] for c in access.case(admin, "FGC-1", practitioner=f"tg:{W.P1}")] == [conv_a]
    assert [c["id"] for c in access.case(admin, "FGC-1", practitioner=f"tg:{W.P2}")] == [conv_b]
    assert [c["id"] for c in access.case(f"tg:{W.P2}", "FGC-1")] == [conv_b]  # their own: nothing to say


async def test_over_telegram_case_trend_and_summary_ask_whose_case(shared):
    _, _, access, service, conv_a, conv_b = shared
    async with running_bot(service, access=access) as h:
        for command in ("/case", "/trend", "/summary"):
            [said] = [m.text for m in await h.say(W.ADMIN, f"{command} FGC-1")]
            lines = said.splitlines()
            assert lines[0].startswith("More than one practitioner uses the case reference FGC-1")
            assert sorted(line.rsplit(": ", 1)[1] for line in lines[1:]) == \
                sorted([f"{command} FGC-1 {W.P1}", f"{command} FGC-1 {W.P2}"])
            assert A_WORDS not in said and B_WORDS not in said
        shown = "\n".join(m.text for m in await h.say(W.ADMIN, f"/case FGC-1 {W.P2}"))
        assert f"#{conv_b}" in shown and f"#{conv_a}" not in shown
        # (scaling-checkin feeds no summary section: the summary of P1's case alone, not the question)
        summary = "\n".join(m.text for m in await h.say(W.ADMIN, f"/summary FGC-1 {W.P1}"))
        assert summary.startswith("Coordinator's summary: case FGC-1") and "More than one" not in summary


async def test_the_websites_case_page_asks_whose_case_and_draws_one_familys_charts(shared, library):
    path, _, _, _, conv_a, conv_b = shared
    site = site_for(path, library, W.config())
    try:
        admin = await sign_in(site, f"tg:{W.ADMIN}")
        page = await admin.get("/case?ref=FGC-1")
        assert page.status_code == 200 and "More than one practitioner uses the case reference FGC-1" in page.text
        assert f'href="/case?ref=FGC-1&amp;p={W.P1}"' in page.text and f'href="/case?ref=FGC-1&amp;p={W.P2}"' in page.text
        assert f"/conversations/{conv_a}" not in page.text and f"/conversations/{conv_b}" not in page.text
        listed = await admin.get("/")  # each row of the list opens its own family's case
        assert listed.text.count('href="/case?ref=FGC-1') == 2
        assert f'href="/case?ref=FGC-1&amp;p={W.P1}"' in listed.text and f'href="/case?ref=FGC-1&amp;p={W.P2}"' in listed.text
        for conv, whose in ((conv_a, W.P1), (conv_b, W.P2)):  # the transcript's links back to its case
            page = await admin.get(f"/conversations/{conv}")
            assert page.text.count(f'href="/case?ref=FGC-1&amp;p={whose}"') == 2 and 'href="/case?ref=FGC-1"' not in page.text
        # the review page links each item and each queued conversation to its own case: family A has
        # a worth-a-look item and a queued transcript, family B a queued transcript
        review = await admin.get("/review")
        assert (review.text.count(f'href="/case?ref=FGC-1&amp;p={W.P1}"'), review.text.count(f'href="/case?ref=FGC-1&amp;p={W.P2}"')) == (2, 1), review.text
        assert review.text.count('href="/case?ref=FGC-1&amp;p=') == review.text.count('href="/case?ref=FGC-1')
        page = await admin.get(f"/case?ref=FGC-1&p={W.P1}")
        assert f'href="/conversations/{conv_a}"' in page.text and f"/conversations/{conv_b}" not in page.text
        assert f"/case/chart.svg?ref=FGC-1&amp;p={W.P1}&amp;n=0" in page.text
        chart = await admin.get(f"/case/chart.svg?ref=FGC-1&p={W.P1}&n=0")
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
        assert (await admin.get("/case/chart.svg?ref=FGC-1&n=0")).status_code == 404  # whose is not said
    finally:
        site.close()
        site.store.close()
