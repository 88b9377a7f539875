"""The bot's own sentences (everything that is not flow content), from messages.yaml (English,
the source of truth), translated by the catalogues of bot/i18n for the language in force."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from bot.engine.yamlpos import parse_yaml
from bot.i18n import translate


@lru_cache(maxsize=1)
def messages() -> dict[str, Any]:
    text = resources.files("bot").joinpath("messages.yaml").read_text(encoding="utf-8")
    data, errors = parse_yaml(text, "bot/messages.yaml")  # YAML 1.2 booleans: `yes:` stays a word
    if errors:
        raise ValueError("\n".join(map(str, errors)))
    return data


def msg(path: str, **values: Any) -> str:
    """``msg("navigation.progress", n=3, total=8)`` -> "Question 3 of 8"."""
    node: Any = messages()
    for part in path.split("."):
        node = node[part]
    if isinstance(node, str):
        node = translate(path, node)  # the catalogue of the language in force (bot/i18n)
    elif isinstance(node, list) and all(isinstance(x, str) for x in node):
        return [translate(f"{path}.{i}", x) for i, x in enumerate(node)]  # e.g. the days of the week
    return node.format(**values) if values else node
