"""The fake Bot API server, driven by the real python-telegram-bot over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.testing.fake_bot_api import FakeBotAPI

TOKEN = "123456:TEST-token"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fake():
    async with FakeBotAPI() as server:
        yield server


def make_app(fake: FakeBotAPI, token: str = TOKEN, rate_limiter=None) -> Application:
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    seen: list[Update] = []
    app.bot_data["seen"] = seen

    async def record(update: Update, context) -> None:
        seen.append(update)

    async def echo(update: Update, context) -> None:
        await update.message.reply_text(f"echo: {update.message.text}")

    async def start(update: Update, context) -> None:
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Yes", callback_data="yes"),
              InlineKeyboardButton("No", callback_data="no")]]
        )
        await update.message.reply_text("Shall we begin?", reply_markup=keyboard)

    async def on_button(update: Update, context) -> None:
        query = update.callback_query
        await query.answer(f"you chose {query.data}")
        await query.edit_message_text(f"You chose: {query.data}")

    app.add_handler(MessageHandler(filters.ALL, record), group=-1)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(CallbackQueryHandler(record), group=-1)
    return app


@contextlib.asynccontextmanager
async def polling(app: Application):
    async with app:
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


def plain_bot(fake: FakeBotAPI, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=fake.base_url, base_file_url=fake.base_file_url)


async def raw(fake: FakeBotAPI, method: str, token: str = TOKEN, **params):
    """Call the fake with a JSON body; returns (status, body)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}{token}/{method}", json=params) as resp:
            return resp.status, await resp.json()


# --- round trips with the real Application ----------------------------------------------


async def test_echo_round_trip(fake):
    app = make_app(fake)
    async with polling(app):
        fake.inject_message(42, "hello", first_name="Ada", username="ada")
        [reply] = await fake.wait_for_messages(42, 1)
        fake.inject_message(42, "again")
        await fake.wait_for_messages(42, 2)

    assert reply.text == "echo: hello"
    assert reply.from_bot and reply.sender["id"] == 123456 and reply.sender["is_bot"]
    assert reply.chat == {"id": 42, "type": "private", "first_name": "Ada", "username": "ada"}
    # user and bot share the chat's message-id counter, strictly increasing
    ids = [m.message_id for m in fake.chat_history(42)]
    assert ids == [1, 2, 3, 4]
    assert [m.text for m in fake.messages(42)] == ["echo: hello", "echo: again"]
    assert fake.last_message(42).text == "echo: again"
    methods = {c.method for c in fake.calls}
    assert methods >= {"getMe", "deleteWebhook", "getUpdates", "sendMessage"}
    assert all(c.token == TOKEN for c in fake.calls)
    seen = app.bot_data["seen"]
    assert [u.message.from_user.first_name for u in seen] == ["Ada", "Ada"]


async def test_button_press_answers_and_edits(fake):
    app = make_app(fake)
    async with polling(app):
        fake.inject_command(7, "start")
        [question] = await fake.wait_for_messages(7, 1)
        assert fake.buttons(question) == [[("Yes", "yes"), ("No", "no")]]
        fake.press_button(7, question.message_id, "yes")
        await fake.wait_for(lambda: fake.last_message(7).text == "You chose: yes")

    [answer] = fake.answered_callbacks
    assert answer.text == "you chose yes" and answer.data == "yes" and answer.user_id == 7
    edited = fake.last_message(7)
    assert edited.message_id == question.message_id and edited.edit_date is not None
    # editMessageText without reply_markup removes the inline keyboard, as in Telegram
    assert edited.reply_markup is None and fake.buttons(edited) == []
    assert [v["text"] for v in edited.versions] == ["Shall we begin?", "You chose: yes"]
    assert edited.history[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"
    with pytest.raises(ValueError):
        fake.press_button(7, question.message_id, "yes")  # keyboard is gone
    # a command arrives with a bot_command entity, so CommandHandler matched it
    [cmd] = [u for u in app.bot_data["seen"] if u.message]
    assert cmd.message.entities[0].type == "bot_command"


async def test_redelivered_update_arrives_again(fake):
    app = make_app(fake)
    async with polling(app):
        update_id = fake.inject_message(5, "once")
        await fake.wait_for_messages(5, 1)
        await fake.wait_for_confirmed(update_id)
        fake.redeliver(update_id)
        await fake.wait_for_messages(5, 2)
        later = fake.inject_message(5, "twice")
        await fake.wait_for_messages(5, 3)
        await fake.wait_for_confirmed(later)

    seen = [u.update_id for u in app.bot_data["seen"]]
    assert seen == [update_id, update_id, later]
    assert fake.delivered.count(update_id) == 2
    assert fake.pending_updates == []


async def test_webhook_delivery_with_secret_token(fake):
    app = make_app(fake)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with app:
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret_T0ken",
        )
        await app.start()
        try:
            fake.inject_message(9, "over the hook")
            [reply] = await fake.wait_for_messages(9, 1)
            # while the webhook is set, getUpdates is a 409 Conflict
            async with plain_bot(fake) as other:
                with pytest.raises(Conflict, match="webhook is active"):
                    await other.get_updates()
                info = await other.get_webhook_info()
        finally:
            await app.updater.stop()
            await app.stop()
    assert reply.text == "echo: over the hook"
    [set_call] = fake.calls_to("setWebhook")
    assert set_call.params["secret_token"] == "s3cret_T0ken"
    assert info.url == f"http://127.0.0.1:{port}/hook" and info.pending_update_count == 0
    assert [d.status for d in fake.webhook_deliveries] == [200]


async def test_webhook_receiver_sees_header_and_retries(fake):
    received: list[tuple[str | None, dict]] = []
    answers = [500, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        status = answers.pop(0) if answers else 200
        if status == 200:
            # Telegram runs a method call returned in the webhook answer
            return web.json_response({"method": "sendMessage", "chat_id": 3, "text": "inline"})
        return web.Response(status=status)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        status, body = await raw(
            fake, "setWebhook", url=f"http://127.0.0.1:{port}/hook", secret_token="abc"
        )
        assert status == 200
        assert body == {"ok": True, "result": True, "description": "Webhook was set"}
        update_id = fake.inject_message(3, "hi")
        await fake.wait_for_messages(3, 1)
        assert fake.last_message(3).text == "inline"
        _, info = await raw(fake, "getWebhookInfo")
    finally:
        await fake.stop()  # stop delivering before the receiver goes away
        await runner.cleanup()
    assert [secret for secret, _ in received] == ["abc", "abc"]
    assert [u["update_id"] for _, u in received] == [update_id, update_id]
    assert received[0][1]["message"]["text"] == "hi"
    assert [d.status for d in fake.webhook_deliveries] == [500, 200]
    assert info["result"]["url"] == f"http://127.0.0.1:{port}/hook"
    assert info["result"]["last_error_message"].startswith("Wrong response from the webhook: 500")


# --- faults ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_is_retried_by_the_rate_limiter(fake):
    fake.fail_next("sendMessage", status=429, retry_after=1)
    async with plain_bot(fake) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(1, "no limiter")
    assert str(caught.value) == "Flood control exceeded. Retry in 1 seconds"
    fake.fail_next("sendMessage", retry_after=1)
    status, body = await raw(fake, "sendMessage", chat_id=1, text="x")
    assert status == 429 and body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }

    fake.fail_next("sendMessage", status=429, retry_after=1)
    bot = ApplicationBuilder().token(TOKEN).base_url(fake.base_url).rate_limiter(
        AIORateLimiter(max_retries=2)
    ).build().bot
    async with bot:
        started = time.monotonic()
        message = await bot.send_message(1, "with limiter")
        waited = time.monotonic() - started
    assert message.text == "with limiter" and waited >= 1.0
    statuses = [c.status for c in fake.calls_to("sendMessage")]
    assert statuses[-2:] == [429, 200]


async def test_500_and_dropped_connection_are_network_errors(fake):
    async with plain_bot(fake) as bot:
        fake.fail_next("sendMessage", status=500)
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(1, "a")
        fake.fail_next("*", drop_connection=True)
        with pytest.raises(NetworkError, match="disconnected"):
            await bot.send_message(1, "b")
        assert fake.messages(1) == []
        # the reply is lost but the message was sent: the duplicate-send hazard
        fake.fail_next("sendMessage", drop_connection=True, take_effect=True)
        with pytest.raises(NetworkError):
            await bot.send_message(1, "c")
        assert [m.text for m in fake.messages(1)] == ["c"]
        fake.fail_next("sendMessage", delay=1.0)
        with pytest.raises(TimedOut):
            await bot.send_message(1, "slow", read_timeout=0.2)
        # the server still carries out a call whose client timed out, like Telegram
        await fake.wait_for(lambda: fake.last_message(1).text == "slow")
        fake.set_latency(0.05)
        started = time.monotonic()
        await bot.send_message(1, "d")
        assert time.monotonic() - started >= 0.05
        fake.set_latency(0)
        fake.fail_next("sendMessage", status=502, count=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.send_message(1, "e")
        await bot.send_message(1, "f")
    assert [c.status for c in fake.calls_to("sendMessage")] == [
        500, "dropped", "dropped", 200, 200, 502, 502, 200
    ]


async def test_polling_survives_getupdates_faults(fake):
    app = make_app(fake)
    async with polling(app):
        fake.fail_next("getUpdates", status=502)
        fake.fail_next("getUpdates", drop_connection=True)
        fake.inject_message(4, "still here")
        [reply] = await fake.wait_for_messages(4, 1, timeout=10)
    assert reply.text == "echo: still here"
    assert {"dropped", 502} <= {c.status for c in fake.calls_to("getUpdates")}


# --- limits and error texts -----------------------------------------------------------


async def test_message_length_limits(fake):
    async with plain_bot(fake) as bot:
        await bot.send_message(1, "x" * 4096)
        with pytest.raises(BadRequest, match="^Message is too long$"):
            await bot.send_message(1, "x" * 4097)
        # the limit applies after entity parsing
        await bot.send_message(1, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
        await bot.send_message(1, "*" + "y" * 4096 + "*", parse_mode="MarkdownV2")
        with pytest.raises(BadRequest, match="^Message text is empty$"):
            await bot.send_message(1, "   ")
        with pytest.raises(BadRequest, match="^Message text is empty$"):
            await bot.send_message(1, "<b></b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Can't parse entities: character '.' is reserved"):
            await bot.send_message(1, "end.", parse_mode="MarkdownV2")
        with pytest.raises(BadRequest, match='unsupported start tag "blink" at byte offset 0'):
            await bot.send_message(1, "<blink>x</blink>", parse_mode="HTML")
        message = await bot.send_message(1, "a <b>bold</b> &amp; <i>it</i>", parse_mode="HTML")
    assert message.text == "a bold & it"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 2, 4), ("italic", 9, 2)
    ]
    status, body = await raw(fake, "sendMessage", chat_id=1, text="z" * 4097)
    assert (status, body) == (
        400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
    )
    assert len(fake.messages(1)) == 4


async def test_callback_data_limit_is_64_bytes(fake):
    ok = "é" * 32  # 64 bytes in UTF-8
    too_long = "é" * 32 + "x"
    async with plain_bot(fake) as bot:
        await bot.send_message(
            1,
            "fits",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data=ok)]]),
        )
        with pytest.raises(BadRequest, match="(?i)^button_data_invalid$"):
            await bot.send_message(
                1,
                "too long",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("a", callback_data=too_long)]]
                ),
            )
    assert fake.buttons(fake.last_message(1)) == [[("a", ok)]]
    status, body = await raw(
        fake, "sendMessage", chat_id=1, text="t",
        reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]},
    )
    assert status == 400 and body["description"] == "Bad Request: BUTTON_DATA_INVALID"


async def test_edit_not_modified_and_markup_edits(fake):
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    async with plain_bot(fake) as bot:
        sent = await bot.send_message(2, "pick", reply_markup=keyboard)
        with pytest.raises(BadRequest, match="^Message is not modified"):
            await bot.edit_message_reply_markup(2, sent.message_id, reply_markup=keyboard)
        with pytest.raises(BadRequest, match="^Message is not modified"):
            await bot.edit_message_text("pick", 2, sent.message_id, reply_markup=keyboard)
        edited = await bot.edit_message_reply_markup(2, sent.message_id, reply_markup=None)
        assert edited.reply_markup is None
        with pytest.raises(BadRequest, match="^Message is not modified"):
            await bot.edit_message_reply_markup(2, sent.message_id)
        with pytest.raises(BadRequest, match="^Message to edit not found$"):
            await bot.edit_message_text("x", 2, 999)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query("nope")
    stored = fake.last_message(2)
    assert stored.text == "pick" and stored.reply_markup is None and len(stored.history) == 1


# --- the update queue -----------------------------------------------------------------


async def test_offset_confirmation_limit_and_long_poll(fake):
    first = fake.inject_message(1, "a")
    second = fake.inject_message(1, "b")
    third = fake.inject_message(1, "c")
    assert first < second < third

    status, body = await raw(fake, "getUpdates")
    assert status == 200 and [u["update_id"] for u in body["result"]] == [first, second, third]
    # not confirmed yet: served again
    _, body = await raw(fake, "getUpdates", limit=2)
    assert [u["update_id"] for u in body["result"]] == [first, second]
    # offset confirms (drops) everything before it
    _, body = await raw(fake, "getUpdates", offset=second)
    assert [u["update_id"] for u in body["result"]] == [second, third]
    assert fake.is_confirmed(first) and not fake.is_confirmed(second)
    _, body = await raw(fake, "getUpdates", offset=third + 1)
    assert body == {"ok": True, "result": []}
    assert fake.pending_updates == []

    # a long poll returns as soon as an update arrives
    async def later():  # once the long poll is waiting
        await fake.wait_for(lambda: any(c.method == "getUpdates" and c.status is None for c in fake.calls))
        return fake.inject_message(1, "d")

    started = time.monotonic()
    injected, (_, body) = await asyncio.gather(later(), raw(fake, "getUpdates", timeout=5))
    assert time.monotonic() - started < 2
    assert [u["update_id"] for u in body["result"]] == [injected]

    # an empty long poll waits out its timeout
    await raw(fake, "getUpdates", offset=injected + 1)
    started = time.monotonic()
    _, body = await raw(fake, "getUpdates", timeout=0.3)
    assert body["result"] == [] and time.monotonic() - started >= 0.29

    # allowed_updates filters (and drops) other update types
    fake.inject_message(1, "e")
    keyboard = {"inline_keyboard": [[{"text": "k", "callback_data": "k"}]]}
    _, sent = await raw(fake, "sendMessage", chat_id=1, text="k", reply_markup=keyboard)
    query = fake.press_button(1, sent["result"]["message_id"], "k")
    _, body = await raw(fake, "getUpdates", allowed_updates=["callback_query"])
    assert [u["update_id"] for u in body["result"]] == [query]
    assert body["result"][0]["callback_query"]["message"]["text"] == "k"


async def test_second_poller_conflicts(fake):
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}{TOKEN}/getUpdates"

        async def poll(timeout: str) -> tuple[int, dict]:
            async with session.post(url, data={"timeout": timeout}) as response:
                return response.status, await response.json()

        first = asyncio.create_task(poll("3"))
        await fake.wait_for(lambda: fake.calls_to("getUpdates"))
        assert await poll("0") == (200, {"ok": True, "result": []})
        status, body = await asyncio.wait_for(first, 1)
    assert status == 409 and body["description"] == (
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running"
    )


async def test_params_from_query_form_json_and_multipart(fake):
    async with aiohttp.ClientSession() as session:
        base = f"{fake.base_url}{TOKEN}"
        markup = {"inline_keyboard": [[{"text": "a", "callback_data": "1"}]]}
        async with session.get(f"{base}/sendMessage", params={"chat_id": "8", "text": "q"}) as r:
            assert (await r.json())["result"]["text"] == "q"
        async with session.post(
            f"{base}/sendMessage",
            data={"chat_id": "8", "text": "f", "reply_markup": json.dumps(markup)},
        ) as r:
            assert (await r.json())["result"]["reply_markup"] == markup
        async with session.post(
            f"{base}/sendMessage", json={"chat_id": 8, "text": "j", "reply_markup": markup}
        ) as r:
            assert (await r.json())["result"]["reply_markup"] == markup
        form = aiohttp.FormData()
        form.add_field("chat_id", "8")
        form.add_field(
            "document", b"%PDF-1.4", filename="plan.pdf", content_type="application/pdf"
        )
        async with session.post(f"{base}/sendDocument", data=form) as r:
            assert (await r.json())["result"]["document"]["file_name"] == "plan.pdf"
        async with session.post(f"{base}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert [m.text for m in fake.messages(8)][:3] == ["q", "f", "j"]
    [doc] = fake.documents(8)
    assert (doc.filename, doc.data, doc.mime_type) == ("plan.pdf", b"%PDF-1.4", "application/pdf")


# --- other methods --------------------------------------------------------------------


async def test_documents_files_commands_and_misc(fake):
    from telegram import BotCommand, BotCommandScopeChat

    async with plain_bot(fake) as bot:
        sent = await bot.send_document(
            11, b"line 1\nline 2\n", filename="transcript.txt", caption="<b>Your</b> transcript",
            parse_mode="HTML",
        )
        assert sent.document.file_name == "transcript.txt" and sent.caption == "Your transcript"
        downloaded = await (await bot.get_file(sent.document.file_id)).download_as_bytearray()
        assert bytes(downloaded) == b"line 1\nline 2\n"

        commands = [BotCommand("start", "Begin"), BotCommand("help", "Help")]
        assert await bot.set_my_commands(commands)
        assert await bot.set_my_commands(
            [BotCommand("admin", "Admin")], scope=BotCommandScopeChat(11)
        )
        assert await bot.get_my_commands() == tuple(commands)
        assert await bot.delete_my_commands(scope=BotCommandScopeChat(11))
        assert await bot.get_my_commands(scope=BotCommandScopeChat(11)) == ()
        with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand("Bad-Name", "x")])

        assert await bot.send_chat_action(11, "typing")
        assert await bot.delete_webhook()
        assert await bot.log_out() and await bot.close()
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")

        fake.block_user(12)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(12, "hello?")
    [doc] = fake.documents(11)
    assert doc.data == b"line 1\nline 2\n" and doc.caption == "Your transcript"
    # the last setMyCommands (chat scope) was deleted again; the default scope remains
    assert fake.commands == []
    assert list(fake.commands_by_scope.values()) == [
        [{"command": "start", "description": "Begin"}, {"command": "help", "description": "Help"}]
    ]
    assert fake.chat_actions[0][:2] == (11, "typing")
    assert fake.logged_out and fake.closed


async def test_valid_tokens_give_401(fake):
    fake.valid_tokens = {TOKEN}
    app = ApplicationBuilder().token("999:WRONG").base_url(fake.base_url).build()
    with pytest.raises(InvalidToken):
        await app.initialize()
    async with plain_bot(fake) as bot:
        assert (await bot.get_me()).id == 123456
    # Bot.initialize() calls getMe itself, then get_me() again
    assert [(c.method, c.token, c.status) for c in fake.calls] == [
        ("getMe", "999:WRONG", 401), ("getMe", TOKEN, 200), ("getMe", TOKEN, 200)
    ]


async def test_injected_media_updates_deserialise(fake):
    async with plain_bot(fake) as bot:
        ids = [
            fake.inject_photo(6, caption="look"),
            fake.inject_sticker(6),
            fake.inject_voice(6, duration=4),
        ]
        text_id = fake.inject_message(6, "typo")
        ids.append(fake.inject_edited_message(6, 4, "fixed"))
        ids.append(fake.inject_update({"message": {
            "message_id": 99, "date": 0, "chat": {"id": 6, "type": "private"}, "text": "raw"}}))
        updates = await bot.get_updates()
        by_id = {u.update_id: u for u in updates}
        photo, sticker, voice, edited, custom = (by_id[i] for i in ids)
        assert photo.message.photo[-1].width == 1280 and photo.message.caption == "look"
        assert filters.PHOTO.check_update(photo) and filters.Sticker.ALL.check_update(sticker)
        assert voice.message.voice.mime_type == "audio/ogg" and voice.message.voice.file_size
        assert edited.edited_message.text == "fixed" and edited.edited_message.edit_date
        assert custom.message.text == "raw"
        assert by_id[text_id].message.text == "typo"
        data = await (await bot.get_file(voice.message.voice.file_id)).download_as_bytearray()
        assert bytes(data).startswith(b"OggS")
    assert ids == sorted(ids)


async def test_standalone_cli_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.testing.fake_bot_api", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)
        assert line.startswith("base_url: http://127.0.0.1:")
        base_url = line.split(": ", 1)[1].strip()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base_url}{TOKEN}/getMe") as r:
                assert (await r.json())["result"]["is_bot"] is True
            control = base_url.removesuffix("/bot") + "/_fake"
            hook = f"{control}/inject_message"
            async with session.post(hook, json={"user_id": 1, "text": "hi"}) as r:
                assert (await r.json()) == {"result": 1}
            async with session.get(f"{base_url}{TOKEN}/getUpdates") as r:
                [update] = (await r.json())["result"]
                assert update["message"]["text"] == "hi"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
