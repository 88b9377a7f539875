"""Webhooks: setWebhook, deleteWebhook, getWebhookInfo, and delivering updates to the bot's URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout

from .protocol import (
    DEFAULT_UPDATE_TYPES,
    BotAPIError,
    _bad,
)
from .records import (
    WebhookDelivery,
    _Webhook,
)

_LOG = logging.getLogger(__package__)


class Webhook:
    """Webhooks: setWebhook, deleteWebhook, getWebhookInfo, and delivering updates to the bot's URL."""


    # webhooks

    async def _api_setWebhook(self, *, params: dict[str, Any], token: str, **_: Any):
        url = str(params.get("url") or "")
        if not url:
            return await self._api_deleteWebhook(params=params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("bad webhook: Failed to resolve host: Name or service not known")
        secret = params.get("secret_token")
        if secret not in (None, ""):
            secret = str(secret)
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
                raise _bad("secret token contains unallowed characters")
        else:
            secret = None
        max_connections = params.get("max_connections")
        if not isinstance(max_connections, int):
            max_connections = 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        if params.get("drop_pending_updates"):
            self._pending.clear()
        unchanged = (
            self._webhook is not None
            and self._webhook.url == url
            and self._webhook.secret_token == secret
        )
        self._webhook = _Webhook(url=url, secret_token=secret, max_connections=max_connections,
                                 token=token)
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        self._restart_webhook_worker()
        self._changed()
        return True, ("Webhook is already set" if unchanged else "Webhook was set")

    async def _api_deleteWebhook(self, *, params: dict[str, Any], **_: Any):
        if params.get("drop_pending_updates"):
            self._pending.clear()
        had = self._webhook is not None
        self._webhook = None
        self._restart_webhook_worker()
        self._changed()
        return True, ("Webhook was deleted" if had else "Webhook is already deleted")

    async def _api_getWebhookInfo(self, **_: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        hook = self._webhook
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = hook.ip_address
            if self._allowed_updates != DEFAULT_UPDATE_TYPES:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    def _restart_webhook_worker(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        if self._webhook is not None:
            self._webhook_task = asyncio.get_running_loop().create_task(
                self._webhook_worker(self._webhook)
            )

    async def _webhook_worker(self, hook: _Webhook) -> None:
        """Deliver pending updates one at a time; retry failures with backoff."""
        if self._session is None:
            self._session = ClientSession()
        backoff = self.webhook_retry_delay
        while not self._closing and self._webhook is hook:
            event = self._change_event
            self._drop_unwanted()
            if not self._pending:
                await event.wait()
                continue
            entry = self._pending[0]
            headers = {"Content-Type": "application/json"}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            status: int | None = None
            error: str | None = None
            reply: Any = None
            try:
                async with self._session.post(
                    hook.url,
                    data=json.dumps(entry.update).encode(),
                    headers=headers,
                    timeout=ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    status = response.status
                    body = await response.read()
                    if 200 <= status < 300:
                        if response.content_type == "application/json" and body:
                            with contextlib.suppress(ValueError):
                                reply = json.loads(body)
                    else:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused, timeout, ...
                error = f"Connection failed: {exc!r}"
            self.webhook_deliveries.append(
                WebhookDelivery(entry.update_id, hook.url, status, error, time.monotonic())
            )
            if error is None:
                backoff = self.webhook_retry_delay
                if self.on_webhook_ok is not None:
                    self.on_webhook_ok(entry.update_id)  # the bot said 200: a test may kill it here
                self.delivered.append(entry.update_id)
                with contextlib.suppress(ValueError):
                    self._pending.remove(entry)
                self._changed()
                if isinstance(reply, dict) and reply.get("method"):
                    try:
                        await self._webhook_reply(reply, hook.token)
                    except Exception:  # never let one bad answer stop delivery
                        _LOG.exception("fake Bot API: webhook reply failed")
            else:
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                self._changed()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _webhook_reply(self, reply: dict[str, Any], token: str) -> None:
        """Telegram executes a method call returned in the webhook answer body."""
        method = str(reply.pop("method"))
        canonical, handler = self._methods.get(method.lower(), (method, None))
        params = {k: self._coerce(k, v) for k, v in reply.items()}
        call = self._record(canonical, params, token)
        if handler is None:
            call.status = 404
            return
        try:
            await handler(params=params, files={}, token=token, request=None)
            call.status = 200
        except BotAPIError as exc:
            call.status = exc.status
        self._changed()
