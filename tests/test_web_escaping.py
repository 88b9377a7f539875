"""Everything people type is shown as text on every page (issue 16, item 3): answers,
comments, names and case references full of markup are escaped everywhere, and the check
fails if escaping is taken out of any one template."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from importlib import resources

import pytest
from jinja2 import FunctionLoader

from bot.access import Access
from bot.store import Store
from bot.web.app import environment, template_source

import webworld as W
from webclient import sign_in, site_for

EVIL = "<script>alert(\"x\")</script><img src=x onerror=alert('y')> & \"quoted\" 'single'"
REF = "<img/src/onerror=alert(1)>&\"'"  # a case reference is one word of up to 40 characters
NAME = "<script>alert(1)</script>&\"'"  # a pseudonym is up to 40 characters
ESCAPED = ("&lt;script&gt;alert(", "&lt;img")
TEMPLATES = sorted(p.name for p in resources.files("bot.web").joinpath("templates").iterdir() if p.name.endswith(".html"))
# Templates that show no text from people at all: only wording from messages.yaml, and the
# sign-in code once it is known to be a real one (URL-safe characters only).
# _macros.html: blocks other pages call; the rows they pass (caller()) were escaped there.
NO_PEOPLE_TEXT = {"signin.html", "error.html", "_macros.html"}


class Tags(HTMLParser):
    """Every element and attribute as a browser would see them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "svg", "math", "base"):
            self.bad.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("srcdoc", "formaction") or (value or "").strip().lower().startswith("javascript:"):
                self.bad.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and not (dict(attrs).get("src") or "").startswith("/case/chart.svg?"):
            self.bad.append(f"<img src={dict(attrs).get('src')!r}>")
        if tag == "a" and not (dict(attrs).get("href") or "/").startswith(("/", "#")):
            self.bad.append(f"<a href={dict(attrs).get('href')!r}>")


def problems(html: str) -> list[str]:
    parser = Tags()
    parser.feed(html)
    return parser.bad


@pytest.fixture(scope="module")
def evil_db(tmp_path_factory, library):
    folder = tmp_path_factory.mktemp("evil")
    path = str(folder / "evil.db")
    store = Store(path)
    access = Access(store, library, W.config())
    access.seed()
    store.person(f"tg:{W.SUP}", EVIL)  # a supervisor's Telegram name
    w = W.build(W.service_for(store, library), access, ref=REF, hopes=EVIL, names=(NAME, NAME + "2"), extra=" " + EVIL)
    conv = w.convs[(W.FAM_A, 0)]
    access.comment(f"tg:{W.SUP}", conv, EVIL, "best_hopes")
    access.comment(f"tg:{W.SUP}", conv, EVIL + " (whole)", None, shared=True)
    # P2 (named with markup) chose the same reference for another family: an admin is asked whose
    store.person(f"tg:{W.P2}", EVIL)
    W.invited(W.service_for(store, library), access, W.P2, 14, REF, ["Other family " + EVIL, "4", "x", "y", "5", "/skip"])
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path, w.convs


def pages(convs) -> list[tuple[int, str]]:
    from urllib.parse import quote

    ref = quote(REF, safe="")
    conv = convs[(W.FAM_A, 0)]
    out = [(W.ADMIN, "/"), (W.ADMIN, f"/case?ref={ref}"), (W.ADMIN, f"/case?ref={ref}&p={W.P1}"),
           (W.ADMIN, f"/case?ref={ref}&p={W.P2}"), (W.SUP, f"/case?ref={ref}"), (W.ADMIN, "/review"),
           (W.SUP, "/review"), (W.P1, "/review"), (W.LEAD, "/alerts"), (W.P1, "/alerts"), (W.ADMIN, "/audit"),
           (W.SUP, f"/conversations/{conv}/comment?step=best_hopes"), (W.P2, f"/case?ref={ref}")]
    out += [(W.SUP, f"/conversations/{c}") for c in convs.values() if c != convs["child"]]
    out += [(W.P1, f"/conversations/{convs['child']}"), (W.P1, f"/case?ref={ref}")]
    return out


async def check_all(site, convs) -> list[str]:
    """Every page as the people who may see it; the problems found (empty: all escaped)."""
    found, shown = [], 0
    clients = {}
    for who, url in pages(convs):
        if who not in clients:
            clients[who] = await sign_in(site, f"tg:{who}")
        r = await clients[who].get(url)
        assert r.status_code in (200, 404), (who, url, r.status_code)
        found += [f"{url} as {who}: {p}" for p in problems(r.text)]
        shown += sum(r.text.count(e) for e in ESCAPED)
    assert shown > 20  # the payloads were on the pages, as text
    return found


async def test_every_page_shows_markup_from_people_as_text(evil_db, tmp_path, library):
    site = site_for(W.copy_db(evil_db[0], tmp_path), library, W.config())
    try:
        assert await check_all(site, evil_db[1]) == []
        # the chart: names and the question are text in the SVG, never markup
        c = await sign_in(site, f"tg:{W.P1}")
        from urllib.parse import quote

        svg = (await c.get(f"/case/chart.svg?ref={quote(REF, safe='')}&n=0")).text
        root = ET.fromstring(svg)
        assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "foreignObject", "img")]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in svg
        # the transcript keeps the words exactly (escaped, not altered)
        page = (await c.get(f"/conversations/{evil_db[1][(W.FAM_A, 0)]}")).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(&#39;y&#39;)&gt; &amp; &#34;quoted&#34; &#39;single&#39;" in page
    finally:
        site.close()
        site.store.close()


def unescaped(name: str):
    """A loader giving template ``name`` with its escaping removed (every {{ ... }} made |safe)."""
    def load(template: str):
        text, filename, uptodate = template_source(template)
        if template == name:
            text = re.sub(r"\{\{(.+?)\}\}", lambda m: "{{ (" + m.group(1).strip() + ")|safe }}", text)
        return text, filename, uptodate
    return FunctionLoader(load)


@pytest.mark.parametrize("name", [t for t in TEMPLATES if t not in NO_PEOPLE_TEXT])
async def test_the_check_fails_when_any_one_template_stops_escaping(name, evil_db, tmp_path, library):
    site = site_for(W.copy_db(evil_db[0], tmp_path), library, W.config())
    site.env = environment(unescaped(name))
    try:
        assert await check_all(site, evil_db[1]) != [], f"escaping removed from {name} went unnoticed"
    finally:
        site.close()
        site.store.close()


def test_templates_without_people_text_only_show_wording():
    for name in NO_PEOPLE_TEXT:
        text, _, _ = template_source(name)
        for expr in re.findall(r"\{\{(.+?)\}\}", text):
            assert re.fullmatch(r"\s*(t\('[a-z_.]+'\)|t\((key|caption)\)|caller\(\)|message|code|form_token)\s*", expr), (name, expr)
