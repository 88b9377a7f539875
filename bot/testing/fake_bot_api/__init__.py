"""A fake Telegram Bot API server for tests, benchmarks and chaos scripts.

The real python-telegram-bot ``Application`` talks to it over loopback HTTP::

    async with FakeBotAPI() as fake:
        app = (
            ApplicationBuilder()
            .token("123456:TEST")
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .build()
        )
        ...
        update_id = fake.inject_message(42, "hello")
        [reply] = await fake.wait_for_messages(42, 1)

What it models (closely enough that PTB cannot tell the difference for the methods
below): the ``{"ok": ..., "result"/"error_code"/"description"}`` envelope, real error
texts and limits (4096-character messages after entity parsing, 64-byte callback data,
"message is not modified"), ``getUpdates`` with offset confirmation and long polling,
webhook delivery with the secret-token header (and 409 Conflict for ``getUpdates`` while
a webhook is set), per-chat message ids, edits with history, uploads and downloads.

What it is for beyond that: injecting user input (messages, commands, button presses,
photos, stickers, voice notes, edits, arbitrary updates, re-deliveries) and faults
(HTTP errors, 429 with ``retry_after``, dropped connections, delays, latency), and
inspecting everything the bot did.

All chats are private chats (chat id == user id). One update queue is shared by every
token; calls record which token they used.

Like the real server, a call that has arrived is carried out even if its client hangs up
(so a client-side timeout may still send the message); only a long poll ends with its
client. ``fail_next(..., take_effect=True)`` models "sent, but the answer was lost".

Hooks are plain methods meant to be called from the event loop the server runs on.
Waiters (``wait_for`` and friends) wake on every state change, not by sleeping.

Standalone: ``python -m bot.testing.fake_bot_api --port 8081`` serves until Ctrl-C and
exposes the hooks over HTTP under ``/_fake/<hook>`` (POST a JSON object of keyword
arguments), e.g. ``curl -d '{"user_id": 1, "text": "hi"}' localhost:8081/_fake/inject_message``.

Layout: ``protocol`` (limits, error texts, parameter types), ``records`` (what is kept),
``entities`` (formatting), ``server`` (the FakeBotAPI class: lifecycle and HTTP) and its
parts ``faults``, ``chats``, ``inject``, ``inspection``, ``validation``,
``methods_updates``, ``methods_messages``, ``methods_files``, ``methods_commands``,
``webhook``; ``standalone`` (the command line).
"""

from bot.testing.fake_bot_api.entities import parse_entities
from bot.testing.fake_bot_api.protocol import BotAPIError
from bot.testing.fake_bot_api.records import (
    AnsweredCallback,
    Call,
    StoredDocument,
    StoredMessage,
    UploadedFile,
    WebhookDelivery,
)
from bot.testing.fake_bot_api.server import FakeBotAPI
from bot.testing.fake_bot_api.standalone import main

__all__ = [
    "AnsweredCallback",
    "BotAPIError",
    "Call",
    "FakeBotAPI",
    "StoredDocument",
    "StoredMessage",
    "UploadedFile",
    "WebhookDelivery",
]
