"""Sign-in over HTTP, the review-web findings: the sign-in form reads no more than a small
body and nothing before the address's limit (finding 2); the session cookie is Secure (and
__Host-) whenever the site's address is https, whatever scheme the proxy reports (finding 4)."""

from __future__ import annotations

import pytest

import webworld as W
from webclient import client, form_token, site_for


@pytest.fixture(scope="module")
def template(tmp_path_factory, library):
    return W.built_db(tmp_path_factory.mktemp("web-signin"), library)


def make(tmp_path, library, template, config):
    return site_for(W.copy_db(template[0], tmp_path), library, config)


@pytest.fixture
async def site(tmp_path, library, template):
    s = make(tmp_path, library, template, W.config())
    yield s
    s.close()
    s.store.close()


class Body:
    """A streamed request body that counts what the server asked for."""

    def __init__(self, chunks: int, size: int = 64 * 1024):
        self.chunks, self.size, self.read = chunks, size, 0

    async def __aiter__(self):
        for i in range(self.chunks):
            self.read += 1
            yield (b"code=" if i == 0 else b"") + b"A" * self.size


FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_a_throttled_address_is_refused_before_its_body_is_read(site):
    c = client(site, ip="198.51.100.66")
    for i in range(30):
        assert (await c.get(f"/signin/bogus{i}")).status_code == 400
    body = Body(2400)                                   # 150 MB, were it read
    r = await c.post("/signin", content=body, headers=FORM)
    assert r.status_code == 429 and body.read == 0 and "wait a minute" in r.text


async def test_the_sign_in_form_is_small_urlencoded_and_of_a_stated_length(site):
    c = client(site, ip="198.51.100.67")
    seen = []

    async def post(status, **kwargs):
        r = await c.post("/signin", **kwargs)
        assert r.status_code == status, (status, r.status_code)
        seen.append(r)

    body = Body(2400)                                   # chunked: no Content-Length
    await post(411, content=body, headers=FORM)
    assert body.read == 0
    await post(415, files={"code": ("a", b"x")})
    await post(415, content=b"code=x", headers={"content-type": "text/plain"})
    await post(413, data={"code": "A" * 5000, "csrf": "x"})
    body = Body(2400, size=1024)                        # says 100 bytes, sends 2.4 MB
    await post(413, content=body, headers=dict(FORM, **{"content-length": "100"}))
    assert body.read <= 5                               # read no further than the limit
    await post(400, content="code=x&" * 20 + "csrf=y", headers=FORM)   # more fields than the form has
    await post(400, content=b"code=\xff\xfe", headers=FORM)
    for r in seen:                                      # a page for people, never a traceback
        assert r.headers["content-type"].startswith("text/html") and "could not be read" in r.text
        assert "Traceback" not in r.text
    # and the real form still signs in (charset in the type is fine)
    code = await site.db(site.signin.link, f"tg:{W.P1}")
    page = await c.get(f"/signin/{code}")
    done = await c.post("/signin", content=f"code={code}&csrf={form_token(page.text)}",
                        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert done.status_code == 303 and (await c.get("/")).status_code == 200


def reported_as_http(app):
    """A TLS proxy that does not say so (no X-Forwarded-Proto): the site sees http."""
    async def wrapped(scope, receive, send):
        await app(dict(scope, scheme="http") if scope["type"] == "http" else scope, receive, send)
    return wrapped


async def test_the_session_cookie_is_secure_whenever_the_site_is_https(tmp_path, library, template):
    import httpx

    config = W.config()
    config.web_url = "https://review.example.org"
    site = make(tmp_path, library, template, config)
    try:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=reported_as_http(site.app()), client=("10.9.9.9", 1)),
                              base_url="https://site.test")
        code = await site.db(site.signin.link, f"tg:{W.SUP}")
        page = await c.get(f"/signin/{code}")
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        pre = page.headers["set-cookie"]
        assert pre.startswith("__Secure-rb_signin=") and "; Secure" in pre and "Path=/signin" in pre
        done = await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
        assert done.status_code == 303
        cookie = next(v for v in done.headers.get_list("set-cookie") if "rb_session" in v)
        assert cookie.startswith("__Host-rb_session=")
        for flag in ("; Secure", "; HttpOnly", "; SameSite=strict", "; Path=/"):
            assert flag in cookie, (flag, cookie)
        assert "Domain" not in cookie
        home = await c.get("/")
        assert home.status_code == 200 and home.headers["strict-transport-security"]
        out = await c.post("/signout", data={"csrf": form_token(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/signin?ended=1"
        gone = out.headers["set-cookie"]
        assert gone.startswith("__Host-rb_session=") and "; Secure" in gone and "Max-Age=0" in gone
        assert (await c.get("/")).headers["location"] == "/signin"
    finally:
        site.close()
        site.store.close()


async def test_over_plain_http_without_an_https_address_nothing_is_prefixed(site):
    c = client(site, https=False)
    code = await site.db(site.signin.link, f"tg:{W.SUP}")
    page = await c.get(f"/signin/{code}")
    assert "strict-transport-security" not in page.headers
    done = await c.post("/signin", data={"code": code, "csrf": form_token(page.text)})
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("rb_session=") and "Secure" not in cookie
