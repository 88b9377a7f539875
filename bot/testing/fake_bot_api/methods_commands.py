"""Bot API methods for the command menu: setMyCommands, getMyCommands, deleteMyCommands."""

from __future__ import annotations

import re
from typing import Any

from .protocol import (
    _bad,
    _canon,
)


class CommandMethods:
    """Bot API methods for the command menu: setMyCommands, getMyCommands, deleteMyCommands."""


    # commands

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        return _canon(scope), str(params.get("language_code") or "")

    async def _api_setMyCommands(self, *, params: dict[str, Any], **_: Any) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params)
        self.commands_by_scope[key] = cleaned
        self.commands = cleaned
        self._last_commands_key = key
        return True

    async def _api_getMyCommands(self, *, params: dict[str, Any], **_: Any) -> list:
        return list(self.commands_by_scope.get(self._commands_key(params), []))

    async def _api_deleteMyCommands(self, *, params: dict[str, Any], **_: Any) -> bool:
        key = self._commands_key(params)
        self.commands_by_scope.pop(key, None)
        if key == self._last_commands_key:
            self.commands = []
        return True
