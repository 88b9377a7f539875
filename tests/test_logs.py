"""Logs carry no secrets and no words people typed (issue 11, finding 10): every field is
redacted, the libraries' loggers never go below INFO, and a whole conversation with an
invitation and a disclosure, logged at DEBUG, leaves none of it in the log."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from bot import logs
from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.escalation import Escalation
from bot.safeguarding import SafeguardingConfig
from bot.store import Store
from bot.testing.telegram import TOKEN, running_bot

LEAD, PRACTITIONER, FAMILY = 700, 701, 702
LIBRARIES = ["telegram", "telegram.ext", "telegram.request", "httpx", "httpcore", "apscheduler", "aiohttp", "asyncio",
             "transitions"]


@pytest.fixture
def captured():
    """logs.setup as `serve` calls it, writing to a buffer; everything put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level,
             {name: logging.getLogger(name).level for name in LIBRARIES})
    buf = io.StringIO()
    yield buf
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def lines(buf) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_every_field_is_redacted_including_extra_fields_and_tracebacks(captured):
    logs.setup("DEBUG", secrets=["hook-secret-value"], stream=captured)
    code = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"  # the shape of an invitation code
    log = logging.getLogger("bot.test")
    log.error("send failed for %s", TOKEN, extra={
        "error": f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed",
        "nested": {"url": f"https://t.me/RBot?start={code}", "list": [TOKEN, "hook-secret-value"]},
        "code": code, "count": 3})
    try:
        raise RuntimeError(f"token {TOKEN} and secret hook-secret-value")
    except RuntimeError:
        log.exception("boom", extra={"exc": RuntimeError(f"again {TOKEN}")})
    text = captured.getvalue()
    for secret in (TOKEN, TOKEN.split(":")[1], "hook-secret-value", code):
        assert secret not in text, secret
    first, second = lines(captured)
    assert first["count"] == 3 and first["nested"]["url"] == "https://t.me/RBot?start=***"
    assert "RuntimeError" in second["error"] and second["exc"] == "again ***"


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_library_loggers_never_go_below_info(captured, level):
    logs.setup(level, stream=captured)
    floor = max(logging.INFO, logging.getLevelName(level))
    for name in ("telegram", "telegram.ext", "telegram.ext.Application", "telegram.Bot", "telegram.request"):
        assert logging.getLogger(name).getEffectiveLevel() == floor, name
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).getEffectiveLevel() >= floor
    assert logging.getLogger().level == logging.getLevelName(level)


async def test_a_conversation_with_a_disclosure_at_debug_logs_no_words_codes_or_tokens(captured, tmp_path, library):
    logs.setup("DEBUG", secrets=[TOKEN], stream=captured)
    safeguarding = SafeguardingConfig.load()
    store = Store(tmp_path / "logs.db")
    service = ConversationService(store, library, safeguarding=safeguarding)
    access = Access(store, library, Config(roles={"practitioner": [PRACTITIONER]}, leads=[LEAD]))
    access.seed()
    escalation = Escalation(store, safeguarding, leads=[LEAD], repeat_minutes=0.01)
    typed = ["Quietmornings Zebra", "6", "Bluebottle Picnic", "Marmalade Tuesday",
             "he hits me and i dont feel safe at home"]
    async with running_bot(service, access=access, escalation=escalation, alert_poll_seconds=0.1) as h:
        before = len(h.fake.messages(PRACTITIONER))
        await h.delivered(h.fake.inject_command(PRACTITIONER, "/invite scaling-checkin CASE-7"))
        link = h.fake.messages(PRACTITIONER)[before:][-1].text
        code = re.search(r"start=(\S+)", link).group(1)
        before = len(h.fake.messages(FAMILY))
        h.fake.inject_command(FAMILY, f"/start {code}")
        consent = await h.keyboard_after(FAMILY, before)
        data = next(cb for row in h.fake.buttons(consent) for (t, cb) in row if t == "Yes, start")
        await h.delivered(h.fake.press_button(FAMILY, consent.message_id, data))
        for text in typed:
            await h.delivered(h.fake.inject_message(FAMILY, text))
        await h.fake.wait_for(lambda: any("/ack" in (m.text or "") for m in h.fake.messages(LEAD)), 10)
        await h.delivered(h.fake.inject_command(FAMILY, "/start NotARealCodeButLooksLikeOne_12345"))
    store.close()
    text = captured.getvalue()
    records = lines(captured)
    assert logging.getLogger().level == logging.DEBUG and logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    assert any(r["event"] == "safeguarding alert sent" for r in records)  # the log did see the conversation
    for secret in [*(t for t in typed if not t.isdigit()), "hits me", code, "NotARealCodeButLooksLikeOne_12345", TOKEN, TOKEN.split(":")[1]]:
        assert secret not in text, secret
