"""Signing in to the website in tests, over HTTP (httpx against the ASGI app, no server)."""

from __future__ import annotations

import functools
import itertools
import re

import httpx

from bot.web.server import make_site


@functools.lru_cache(maxsize=1)
def lexicon():
    from bot.safeguarding import SafeguardingConfig

    return SafeguardingConfig.load()


def site_for(path, library, config, notify=None, **kwargs):
    return make_site(str(path), library, config, safeguarding=lexicon(), notify=notify, **kwargs)


_ips = itertools.count(1)


def client(site, https: bool = True, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=site.app(), client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://site.test" if https else "http://site.test")


def form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def sign_in(site, key: str, https: bool = True) -> httpx.AsyncClient:
    """A signed-in client (each from an address of its own: sign-in is rate-limited per address)."""
    n = next(_ips)
    c = client(site, https, ip=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")
    code = await site.db(site.signin.link, key)
    page = await c.get(f"/signin/{code}")
    assert page.status_code == 200, page.text
    done = await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/", done.text
    return c
