"""Running the review website: on its own (``restorative-bot web``) or beside the bot
(``restorative-bot serve --web-port``), with uvicorn. The site has its own connection to
the database and its own thread for it; comment notices go to Telegram through a Bot of
its own (the same token), so nothing is shared with the bot's event loop.

uvicorn's access log is off (a sign-in link's code is in its path); the site logs each
request by route name and status only (bot.web.app.SecurityHeaders).
"""

from __future__ import annotations

import asyncio
import logging
import threading

from bot.access import Access
from bot.config import Config
from bot.store import Store
from bot.web.app import Notify, Site
from bot.web.signin import SignIn

log = logging.getLogger("bot.web")


def signin_for(access: Access) -> SignIn:
    cfg = access.config
    return SignIn(access, link_minutes=cfg.web_link_minutes, session_hours=cfg.web_session_hours)


def link_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/signin/{code}"


def make_site(db_path: str, library, config: Config, *, safeguarding=None, notify: Notify | None = None,
              secure: bool | None = None) -> Site:
    """The site for ``config``; its cookies are Secure (and __Host-) when ``web: url:`` is
    https, else when a request comes over https (``secure`` overrides both)."""
    if secure is None and (config.web_url or "").lower().startswith("https://"):
        secure = True  # whatever scheme the proxy in front reports: the cookies never travel in clear
    store = Store(db_path, keyring=config.keyring(create=False))
    access = Access(store, library, config)
    return Site(access, escalation=config.escalation(store, safeguarding), reading=config.reading(store, access), signin=signin_for(access), notify=notify, secure=secure)


def telegram_notify(token: str, api_url: str | None = None) -> Notify:
    """``notify(person_key, text)`` sending a plain message through the Bot API."""
    from telegram import Bot

    bot_holder: dict = {}

    async def notify(key: str, text: str) -> None:
        bot = bot_holder.get("bot")
        if bot is None:
            kwargs = {"base_url": api_url.rstrip("/")} if api_url else {}
            bot = bot_holder["bot"] = Bot(token, **kwargs)
            await bot.initialize()
        from bot.frontends.telegram.render import split_text

        for part in split_text(text):
            await bot.send_message(int(key.removeprefix("tg:")), part)

    return notify


def uvicorn_server(site: Site, host: str, port: int):
    import uvicorn

    config = uvicorn.Config(site.app(), host=host, port=port, access_log=False, log_config=None,
                            proxy_headers=True, server_header=False, lifespan="off")
    return uvicorn.Server(config)


def run(site: Site, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted (``restorative-bot web``)."""
    log.info("web serving", extra={"host": host, "port": port})
    try:
        asyncio.run(uvicorn_server(site, host, port).serve())
    finally:
        site.close()
        site.store.close()


def start_in_thread(site: Site, host: str, port: int) -> threading.Thread:
    """Beside the bot (``serve --web-port``): uvicorn in a thread with its own event loop."""
    server = uvicorn_server(site, host, port)
    server.install_signal_handlers = lambda: None  # the bot's loop owns the signals

    def work() -> None:
        asyncio.run(server.serve())

    thread = threading.Thread(target=work, name="web", daemon=True)
    thread.server = server
    thread.start()
    return thread
