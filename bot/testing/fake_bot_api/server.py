"""The server: lifecycle, HTTP routing and the call envelope; the Bot API methods and hooks come from the mixins next to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import ClientSession, web

from .chats import Chats
from .faults import Faults
from .inject import Injection
from .inspection import Inspection
from .methods_commands import CommandMethods
from .methods_files import FileMethods
from .methods_messages import MessageMethods
from .methods_updates import UpdateMethods
from .protocol import (
    _BOOL_FIELDS,
    _FLOAT_FIELDS,
    _INT_FIELDS,
    _JSON_FIELDS,
    _STATUS_TEXT,
    DEFAULT_UPDATE_TYPES,
    ERR_MARKUP_JSON,
    MAX_UPLOAD_BYTES,
    BotAPIError,
    _bad,
)
from .records import (
    AnsweredCallback,
    Call,
    StoredMessage,
    UploadedFile,
    WebhookDelivery,
    _Fault,
    _FileRecord,
    _Pending,
    _Webhook,
)
from .validation import Validation
from .webhook import Webhook

_LOG = logging.getLogger(__package__)


_CALL_KEY: web.RequestKey[Call] = web.RequestKey("fake_bot_api_call", "Call")


# --- the server ---------------------------------------------------------------------------


class FakeBotAPI(
    Faults, Chats, Injection, Inspection, Validation,
    UpdateMethods, MessageMethods, FileMethods, CommandMethods, Webhook,
):
    """A fake Telegram Bot API server on loopback (see the module docstring)."""

    def __init__(
        self,
        *,
        valid_tokens: Iterable[str] | None = None,
        bot_username: str = "fake_test_bot",
        bot_first_name: str = "Fake Bot",
        strict_chats: bool = False,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
    ):
        #: When set, any other token is answered with 401 Unauthorized.
        self.valid_tokens: set[str] | None = set(valid_tokens) if valid_tokens else None
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        #: When True, sending to a user who never wrote to the bot fails with "chat not found".
        self.strict_chats = strict_chats
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self.latency: float = 0.0
        #: Seconds between two messages to one chat, like Telegram's limit of about one
        #: message a second per chat: a send queues behind the previous ones (0: no limit).
        self.chat_send_interval: float = 0.0
        #: With ``chat_send_interval``: "queue" holds a send until its slot; "429" answers
        #: too early a send with 429 Too Many Requests and a retry_after, as Telegram does.
        self.chat_send_mode: str = "queue"
        self._chat_free_at: dict[int, float] = {}

        self.host: str | None = None
        self.port: int | None = None

        # inspection
        self.calls: list[Call] = []
        self.answered_callbacks: list[AnsweredCallback] = []
        self.chat_actions: list[tuple[int, str, float]] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.delivered: list[int] = []  # update_ids in the order they were served
        self.commands: list[dict[str, Any]] | None = None  # last setMyCommands
        self.commands_by_scope: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.logged_out = False
        self.closed = False

        # state
        self._users: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._chat_log: dict[int, list[StoredMessage]] = {}
        self._by_id: dict[tuple[int, int], StoredMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._pending: list[_Pending] = []
        self._all_updates: dict[int, dict[str, Any]] = {}
        self._last_update_id = 0
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._callback_counter = 0
        self._files: dict[str, _FileRecord] = {}
        self._file_counter = 0
        self._faults: list[_Fault] = []
        # hooks for tests, called synchronously: with the update ids a getUpdates confirmed
        # (before it is answered), and with an update id whose webhook delivery got a 2xx
        self.on_confirm: Callable[[list[int]], None] | None = None
        self.on_webhook_ok: Callable[[int], None] | None = None
        self._held_chats: dict[str, int] = {}  # chat id -> retry_after: every call to it answers 429 (hold_chat)
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task | None = None
        self._poll_generation = 0
        self._last_commands_key: tuple[str, str] | None = None

        # machinery
        self._change_event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._closing = False
        self._inflight: set[asyncio.Task] = set()
        self._methods: dict[str, tuple[str, Callable]] = {}
        for name in (
            "getMe",
            "getUpdates",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "deleteMessage",
            "answerCallbackQuery",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "sendChatAction",
            "sendDocument",
            "sendPhoto",
            "getFile",
            "logOut",
            "close",
        ):
            self._methods[name.lower()] = (name, getattr(self, f"_api_{name}"))

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeBotAPI:
        """Serve on ``host:port`` (0 picks a free port); returns self."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already running")
        self._loop = asyncio.get_running_loop()
        self._closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_route("*", "/_fake/{hook}", self._handle_control)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, access_log=None,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.host = host
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop serving; wakes long polls and cancels webhook delivery."""
        self._closing = True
        self._fire()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        for task in list(self._inflight):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token and /method."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    @property
    def control_url(self) -> str:
        """Hooks over HTTP: POST JSON kwargs to ``{control_url}/<hook>``."""
        return f"{self.url}/_fake"

    # --- change notification ------------------------------------------------------------

    def _fire(self) -> None:
        event, self._change_event = self._change_event, asyncio.Event()
        event.set()

    def _changed(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fire()
        else:
            loop.call_soon_threadsafe(self._fire)

    # --- HTTP handlers ------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        # Like the real server, a call that arrived is carried out even if the client hangs
        # up (timeout): only a long poll ends with its client.
        if request.match_info["method"].lower() != "getupdates":
            task = asyncio.ensure_future(self._handle_api_call(request))
            self._inflight.add(task)
            task.add_done_callback(self._call_done)
            return await asyncio.shield(task)
        try:
            return await self._handle_api_call(request)
        except asyncio.CancelledError:
            # the client went away (e.g. PTB cancelled its long poll) or we dropped it
            call = request.get(_CALL_KEY)
            if call is not None and call.status is None:
                call.status = "cancelled"
                self._changed()
            raise

    def _call_done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a client that hung up gets nothing anyway

    async def _handle_api_call(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        canonical, handler = self._methods.get(raw_method.lower(), (raw_method, None))
        try:
            params, files = await self._read_params(request)
        except BotAPIError as exc:
            call = self._record(canonical, {}, token)
            return self._error_response(call, exc)
        call = self._record(canonical, {**params, **files}, token)
        request[_CALL_KEY] = call

        if self.valid_tokens is not None and token not in self.valid_tokens:
            return self._error_response(call, BotAPIError(401, "Unauthorized"))
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.chat_send_interval and canonical in ("sendMessage", "sendDocument"):
            wait = await self._chat_slot(params.get("chat_id"))
            if wait:
                return self._error_response(call, BotAPIError(
                    429, f"Too Many Requests: retry after {wait}", {"retry_after": wait}))
        held = self._held(params)
        if held is not None:
            return self._error_response(call, BotAPIError(
                429, f"Too Many Requests: retry after {held}", {"retry_after": held}))
        fault = self._take_fault(canonical)
        if fault is not None:
            call.fault = fault
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.hold is not None:
                await fault.hold.wait()
            status = fault.status
            if status is None and fault.delay is None and fault.hold is None and not fault.drop_connection:
                status = 500
            if fault.take_effect and handler is not None and (
                fault.drop_connection or status is not None
            ):
                # the call happens, only its answer is lost or replaced
                with contextlib.suppress(BotAPIError):
                    await handler(params=params, files=files, token=token, request=request)
            if fault.drop_connection:
                call.status = "dropped"
                self._changed()
                return self._drop(request)
            if status is not None:
                parameters = None
                description = fault.description or _STATUS_TEXT.get(status, "Error")
                if status == 429:
                    retry_after = fault.retry_after if fault.retry_after is not None else 1
                    parameters = {"retry_after": retry_after}
                    description = (
                        fault.description or f"Too Many Requests: retry after {retry_after}"
                    )
                return self._error_response(call, BotAPIError(status, description, parameters))
        if handler is None:
            return self._error_response(call, BotAPIError(404, "Not Found"))
        try:
            result = await handler(params=params, files=files, token=token, request=request)
        except BotAPIError as exc:
            return self._error_response(call, exc)
        except Exception:  # a bug in the fake: answer like a server error, keep serving
            _LOG.exception("fake Bot API failed on %s", canonical)
            return self._error_response(call, BotAPIError(500, "Internal Server Error"))
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, tuple):
            body["result"], body["description"] = result
        else:
            body["result"] = result
        call.status = 200
        self._changed()
        return web.json_response(body)

    async def _chat_slot(self, chat_id: Any) -> int:
        """Wait for this chat's next free sending slot (``chat_send_interval``); in "429"
        mode, return the whole seconds to wait instead (0: send now)."""
        if not isinstance(chat_id, int):
            return 0
        now = time.monotonic()
        free = self._chat_free_at.get(chat_id, 0.0)
        if self.chat_send_mode == "429":
            if free > now:
                return max(1, int(free - now + 0.999))
            self._chat_free_at[chat_id] = now + self.chat_send_interval
            return 0
        slot = max(now, free)
        self._chat_free_at[chat_id] = slot + self.chat_send_interval
        if slot > now:
            await asyncio.sleep(slot - now)
        return 0

    def _record(self, method: str, params: dict[str, Any], token: str) -> Call:
        call = Call(method, params, token, time.monotonic())
        self.calls.append(call)
        self._changed()
        return call

    def _error_response(self, call: Call, exc: BotAPIError) -> web.Response:
        call.status = exc.status
        self._changed()
        return web.json_response(exc.payload(), status=exc.status)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp cannot write to an aborted transport; it will discard this quietly.
        raise asyncio.CancelledError

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["file_path"]
        for record in self._files.values():
            if record.file_path == path:
                return web.Response(body=record.data, content_type="application/octet-stream")
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad("JSON object expected")
                raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge:
                    raise BotAPIError(413, "Request Entity Too Large") from None
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = UploadedFile(
                            filename=value.filename,
                            data=value.file.read(),
                            content_type=value.content_type,
                        )
                    else:
                        raw[key] = value
        params = {key: self._coerce(key, value) for key, value in raw.items()}
        return params, files

    @staticmethod
    def _coerce(name: str, value: Any) -> Any:
        """Form values are strings; PTB JSON-encodes every non-string value."""
        if name in _JSON_FIELDS and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                if name == "reply_markup":
                    raise _bad(ERR_MARKUP_JSON) from None
                raise _bad(f"can't parse {name} JSON object") from None
        if name in _INT_FIELDS and isinstance(value, str):
            if re.fullmatch(r"-?\d+", value.strip()):
                return int(value)
            return value
        if name in _FLOAT_FIELDS and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _bad(f"wrong parameter {name} in request") from None
        if name in _BOOL_FIELDS and isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return value

    async def _handle_control(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        allowed = {
            "inject_message",
            "inject_command",
            "inject_update",
            "inject_photo",
            "inject_sticker",
            "inject_voice",
            "inject_edited_message",
            "press_button",
            "redeliver",
            "fail_next",
            "clear_faults",
            "set_latency",
            "block_user",
            "messages",
            "calls_summary",
        }
        if hook not in allowed:
            return web.json_response({"error": f"unknown hook {hook!r}"}, status=404)
        kwargs: dict[str, Any] = dict(request.query)
        if request.body_exists:
            try:
                kwargs.update(await request.json())
            except ValueError:
                return web.json_response({"error": "body must be a JSON object"}, status=400)
        for key in ("user_id", "message_id", "update_id", "count", "status", "retry_after"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = int(kwargs[key])
        try:
            result = getattr(self, hook)(**kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)
        if hook == "messages":
            result = [m.to_api() for m in result]
        return web.json_response({"result": result})
