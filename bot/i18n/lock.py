"""Stale flow translations (issue 19): a translation written against English that has changed since.

A flow text may be ``{en: ..., cy: ..., pl: ...}``. When someone edits the English, the Welsh
and Polish beside it still read like translations, but of the old sentence. The gettext
catalogues catch this with fuzzy marks (bot/i18n/catalogues.py); flows have no such marks, so
a lock file records, for each translated text and each language, a short hash of the English
that translation was checked against:

    flows/translations.lock
    solution-focused/scaling-checkin.yaml:
      "steps.coping.ask": {"cy": "1a2b3c4d", "pl": "1a2b3c4d", "ur": "1a2b3c4d"}

Texts are named by where they sit in the flow (``title``, ``steps.STEP.ask``,
``steps.STEP.options.OPTION.label``, ``steps.STEP.errors.RULE``), by step and option id
rather than by position, so that moving a step does not make its translations stale.

``restorative-bot validate`` reports a translation whose English no longer has the recorded
hash as ``file:line:col`` (the translation's own position), and warns, once per file, about
translations never recorded. ``restorative-bot i18n lock [FLOW...] [--lang cy]`` records the
English as it is now, for every language or only the ones given: run it once a translation
has been re-checked. The running bot is not affected: this is a check for the people who edit
flows, like ``validate`` itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bot.engine.yamlpos import SourceError, YDict, YList, parse_yaml, read_source

LOCK_NAME = "translations.lock"
HEADER = """\
# Flow translations and the English they were checked against (issue 19; bot/i18n/lock.py).
# For each translated text of a flow, per language: a short hash of the English text that
# translation was written from. `restorative-bot validate` flags a translation whose English
# has changed since. After re-checking it, record the English as it is now with
#   restorative-bot i18n lock [FLOW...] [--lang TAG]
# Generated: do not edit by hand.
"""


def short_hash(english: str) -> str:
    return hashlib.sha256(english.encode("utf-8")).hexdigest()[:8]


def _is_tag(key) -> bool:
    from bot.engine.loader import LANG_TAG_RE

    return isinstance(key, str) and bool(LANG_TAG_RE.match(key))


def _translated(node) -> bool:
    return (isinstance(node, YDict) and isinstance(node.get("en"), str) and len(node) > 1
            and all(_is_tag(k) and isinstance(v, str) for k, v in node.items()))


@dataclass(frozen=True)
class Text:
    key: str  # steps.coping.ask
    node: YDict  # {en: ..., cy: ...}

    @property
    def english(self) -> str:
        return self.node["en"]

    def tags(self) -> list[str]:
        return [t for t in self.node if t != "en"]


def texts(data) -> list[Text]:
    """Every translated text of a parsed flow, named by its place (step and option ids)."""
    out: list[Text] = []

    def walk(node, path: str) -> None:
        if _translated(node):
            out.append(Text(path, node))
        elif isinstance(node, YDict):
            for key, value in node.items():
                if key != "languages":
                    walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, YList):
            for i, item in enumerate(node):
                name = item.get("id") if isinstance(item, YDict) else None
                walk(item, f"{path}.{name}" if isinstance(name, (str, int)) and not isinstance(name, bool) else f"{path}[{i}]")

    walk(data, "")
    return out


def find_lock(flow: Path) -> Path | None:
    """The translations.lock of a flow file: in its folder or the nearest folder above."""
    for folder in Path(flow).resolve().parents:
        candidate = folder / LOCK_NAME
        if candidate.is_file():
            return candidate
    return None


def _key(lock: Path, flow: Path) -> str:
    return Path(flow).resolve().relative_to(lock.parent.resolve()).as_posix()


def read_lock(lock: Path) -> tuple[dict[str, dict[str, dict[str, str]]], list[SourceError]]:
    """{flow file (relative to the lock's folder): {text key: {tag: hash}}}."""
    text, errors = read_source(lock)
    if text is None:
        return {}, errors
    data, errors = parse_yaml(text, str(lock))
    if errors:
        return {}, errors
    if data is None:
        return {}, []
    if not isinstance(data, YDict):
        return {}, [SourceError(str(lock), 1, 1, "the lock file must be a mapping of flow files; run  restorative-bot i18n lock  to write it again")]
    out: dict = {}
    for flow, entries in data.items():
        if not isinstance(entries, YDict) or not all(
                isinstance(h, YDict) and all(isinstance(v, str) for v in h.values()) for h in entries.values()):
            pos = data.pos_of(flow)
            return {}, [SourceError(str(lock), pos.line, pos.col, f"the entries of '{flow}' are not key: {{tag: hash}} mappings; "
                                                                  "run  restorative-bot i18n lock  to write it again")]
        out[str(flow)] = {str(k): {str(t): str(h) for t, h in v.items()} for k, v in entries.items()}
    return out, []


def write_lock(lock: Path, data: dict) -> None:
    lines = [HEADER.rstrip("\n")]
    for flow in sorted(data):
        if not data[flow]:
            continue
        lines.append(f"{json.dumps(flow, ensure_ascii=False)}:")
        for key in sorted(data[flow]):
            hashes = ", ".join(f"{json.dumps(t)}: {json.dumps(h)}" for t, h in sorted(data[flow][key].items()))
            lines.append(f"  {json.dumps(key, ensure_ascii=False)}: {{{hashes}}}")
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _parse(flow: Path) -> tuple[list[Text] | None, list[SourceError]]:
    text, errors = read_source(flow)
    if text is None:
        return None, errors
    data, errors = parse_yaml(text, str(flow))
    if errors:
        return None, errors
    return texts(data), []


def _language_name(tag: str) -> str:
    from bot import i18n

    return i18n.language(tag).english_name if i18n.known(tag) else f"'{tag}'"


def check(files) -> tuple[list[SourceError], list[SourceError]]:
    """(errors, warnings) for flow ``files``: a translation whose English changed since it was
    locked is an error at the translation's line and column; translations never locked are
    one warning per file."""
    errors: list[SourceError] = []
    warnings: list[SourceError] = []
    locks: dict[Path, dict] = {}
    for flow in map(Path, files):
        found, problems = _parse(flow)
        if found is None:
            continue  # validate reports the file's own errors
        if not found:
            continue
        lock = find_lock(flow)
        if lock is not None and lock not in locks:
            locks[lock], lock_errors = read_lock(lock)
            errors.extend(lock_errors)
        recorded = locks.get(lock, {}).get(_key(lock, flow), {}) if lock is not None else {}
        unlocked = 0
        for t in found:
            want = short_hash(t.english)
            for tag in t.tags():
                have = recorded.get(t.key, {}).get(tag)
                if have is None:
                    unlocked += 1
                elif have != want:
                    pos = t.node.pos_of(tag)
                    name = _language_name(tag)
                    errors.append(SourceError(
                        str(flow), pos.line, pos.col,
                        f"the English changed since this {name} text was written; re-check it, then run  "
                        f"restorative-bot i18n lock {flow} --lang {tag}"))
        if unlocked:
            first = found[0].node.pos
            warnings.append(SourceError(
                str(flow), first.line, first.col,
                f"warning: {unlocked} translation(s) are not in {LOCK_NAME} yet, so a later change to their English "
                f"cannot be flagged; run  restorative-bot i18n lock {flow}"))
    return errors, warnings


def lock(files, tags=None, root: Path | None = None) -> tuple[list[Path], list[SourceError]]:
    """Record the English of every translated text of ``files`` as checked, for ``tags`` (None:
    every language). Writes the nearest translations.lock (a new one in ``root``, or else in
    the flow's folder). Returns the lock files written and any errors (nothing is written
    for a file that does not parse)."""
    wanted = set(tags) if tags else None
    errors: list[SourceError] = []
    changes: dict[Path, dict] = {}
    for flow in map(Path, files):
        found, problems = _parse(flow)
        if found is None:
            errors.extend(problems)
            continue
        lock_path = find_lock(flow) or (Path(root) if root else flow.parent) / LOCK_NAME
        if lock_path not in changes:
            existing, lock_errors = read_lock(lock_path) if lock_path.exists() else ({}, [])
            if lock_errors:
                errors.extend(lock_errors)
                existing = {}
            changes[lock_path] = existing
        key = _key(lock_path, flow)
        before = changes[lock_path].get(key, {})
        after: dict[str, dict[str, str]] = {}
        for t in found:
            hashes = {}
            for tag in t.tags():
                if wanted is None or tag in wanted:
                    hashes[tag] = short_hash(t.english)
                elif tag in before.get(t.key, {}):
                    hashes[tag] = before[t.key][tag]  # another language's check stands
            if hashes:
                after[t.key] = hashes
        changes[lock_path][key] = after
    if errors:
        return [], errors
    for path, data in changes.items():
        write_lock(path, data)
    return list(changes), []


def files_in(paths) -> Iterator[Path]:
    from bot.engine.loader import flow_files

    found, _ = flow_files(paths)
    yield from found
