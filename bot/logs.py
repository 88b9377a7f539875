"""Structured logs: one JSON object per line, with secrets (bot tokens) redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

TOKEN_RE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
# Invitation codes (secrets.token_urlsafe(24): 32 URL-safe characters), wherever they appear,
# and the code in any deep link.
CODE_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])|(?<=start=)[^\s&\"']+")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# Loggers of the libraries underneath: at DEBUG, python-telegram-bot logs every update it
# receives (the words people type) and every call it makes; httpx logs every request URL.
# They never go below this, whatever --log-level says.
LIBRARY_FLOOR = {"telegram": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.WARNING,
                 "apscheduler": logging.WARNING, "aiohttp": logging.INFO, "asyncio": logging.INFO,
                 "transitions": logging.INFO}  # transitions: a line per state change of every conversation


class Redact(logging.Filter):
    """Every part of a record is cleaned: the message, its arguments, every ``extra=`` field
    (however nested) and the traceback."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s]

    def _clean(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return CODE_RE.sub("***", TOKEN_RE.sub("***", text))

    def _value(self, value):
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, dict):
            return {self._clean(str(k)): self._value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._value(v) for v in value]
        return self._clean(str(value))  # exceptions, objects: as the formatter would show them

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = self._clean(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and not key.startswith("_"):
                setattr(record, key, self._value(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


def setup(level: str = "INFO", secrets: list[str] | None = None, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    wanted = logging.getLevelName(level) if isinstance(level, str) else level
    for name, floor in LIBRARY_FLOOR.items():
        logging.getLogger(name).setLevel(max(floor, wanted if isinstance(wanted, int) else logging.INFO))
