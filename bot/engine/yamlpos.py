"""YAML loading that remembers where every node came from.

Flow authors fix their files from our error messages alone, so every value we read
keeps the line and column it was written at. Mappings load as :class:`YDict` and
sequences as :class:`YList`; both carry the position of the node and of each key and
item. Anything that goes wrong while reading the file becomes a :class:`SourceError`
with ``file:line:col: message`` wording, never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True, order=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based


@dataclass(frozen=True)
class SourceError:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class YDict(dict):
    pos: Pos
    key_pos: dict
    val_pos: dict

    def pos_of(self, key: Any) -> Pos:
        return self.val_pos.get(key, self.pos)

    def key_pos_of(self, key: Any) -> Pos:
        return self.key_pos.get(key, self.pos)


class YList(list):
    pos: Pos
    item_pos: list

    def pos_of(self, index: int) -> Pos:
        return self.item_pos[index] if index < len(self.item_pos) else self.pos


def _mark(node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: several times faster


class _PosLoader(_BASE):
    """SafeLoader that builds YDict/YList and records duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Pos, str]] = []


def _construct_mapping(loader: _PosLoader, node, deep=False):
    loader.flatten_mapping(node)
    result = YDict()
    result.pos, result.key_pos, result.val_pos = _mark(node), {}, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            loader.duplicate_keys.append((_mark(key_node), "a key must be a plain word, not a list or mapping"))
            continue
        if key in result:
            first = result.key_pos[key]
            loader.duplicate_keys.append(
                (_mark(key_node), f"key '{key}' appears twice in this mapping (first at line {first.line}); keep one")
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_pos[key] = _mark(key_node)
        result.val_pos[key] = _mark(value_node)
    return result


def _construct_sequence(loader: _PosLoader, node, deep=False):
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.pos = _mark(node)
    result.item_pos = [_mark(child) for child in node.value]
    return result


# YAML 1.2 booleans: only true/false. Under YAML 1.1 an option written `- Yes`, `- No`
# or `- On` would silently become a boolean; flow authors mean the words.
_PosLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PosLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_PosLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_PosLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _friendly_yaml_error(exc: yaml.YAMLError, text: str = "") -> tuple[int, int, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (getattr(exc, "problem", None) or str(exc)).strip()
    context = (getattr(exc, "context", None) or "").strip()
    lines = text.splitlines()
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = source_line[: len(source_line) - len(source_line.lstrip())]
    if "'\\t'" in problem or "\t" in problem or "\t" in indent:
        return line, col, "a tab character is used for indentation; YAML needs spaces (use two spaces per level)"
    if "did not find expected key" in problem or "did not find expected '-' indicator" in problem:
        return line, col, (
            f"the indentation is off here ({problem}); line this up with the keys above it, using spaces"
        )
    if "mapping values are not allowed" in problem:
        return line, col, (
            "a ':' appears where YAML did not expect one; put quotes around text that contains ': '"
            " (for example  ask: \"Scale: where are things now?\")"
        )
    if "could not find expected ':'" in problem or "expected <block end>" in problem:
        return line, col, (
            f"the indentation is off here ({problem}); line this up with the keys above it, using spaces"
        )
    if "found undefined alias" in problem or "found unhashable key" in problem:
        return line, col, problem
    if "found character" in problem and "that cannot start any token" in problem:
        return line, col, f"{problem}; put quotes around this text"
    where = f" {context}" if context else ""
    return line, col, f"YAML could not be read:{where} {problem}".strip()


def read_source(path: Path) -> tuple[str | None, list[SourceError]]:
    """Read a text file for parsing, refusing what cannot be a flow file."""
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, [SourceError(name, 1, 1, f"cannot read the file: {exc.strerror or exc}")]
    if size > MAX_FILE_BYTES:
        return None, [
            SourceError(name, 1, 1, f"the file is {size / 1_000_000:.1f} MB; a flow file must be under 1 MB — split it up")
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [SourceError(name, 1, 1, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            SourceError(name, line, col, "the file is not UTF-8 text; save it as UTF-8 (in most editors: 'Save with encoding')")
        ]
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, []


def parse_yaml(text: str, filename: str) -> tuple[Any, list[SourceError]]:
    """Parse YAML text into YDict/YList values; errors are returned, never raised."""
    if not text.strip():
        return None, [SourceError(filename, 1, 1, "the file is empty; a flow needs id, version, title, audience and steps")]
    loader = _PosLoader(text)
    try:
        value = loader.get_single_data()
    except yaml.YAMLError as exc:
        line, col, message = _friendly_yaml_error(exc, text)
        return None, [SourceError(filename, line, col, message)]
    except RecursionError:
        return None, [SourceError(filename, 1, 1, "the file is nested too deeply to be a flow")]
    finally:
        loader.dispose()
    errors = [SourceError(filename, p.line, p.col, msg) for p, msg in loader.duplicate_keys]
    return value, errors
