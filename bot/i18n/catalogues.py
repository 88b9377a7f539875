"""Extraction and checking of the gettext catalogues (``restorative-bot i18n extract|check``).

The template (.pot) is built in memory from bot/messages.yaml and the person-facing texts of
bot/safeguarding.yaml (what only staff see is listed under ``staff_only`` in
bot/locale/languages.yaml); ``extract`` writes it to bot/locale/messages.pot (a generated
file, not committed) and brings every language's .po up to date with Babel's
``Catalog.update`` (new English text: a new empty entry; changed English text: the old
translation kept but marked fuzzy, so it is not used until someone checks it).

A catalogue is complete (Welsh, Polish) unless its language lists ``catalogue_required`` in
bot/locale/languages.yaml (Urdu): then it must translate those messages (a key, or every key
under a prefix; ``safeguarding:`` is every safeguarding response and help text), and anything
else left empty is said in English. ``problems`` holds each catalogue to its rule.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Iterator

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot import i18n
from bot.engine.yamlpos import YDict, YList, parse_yaml

_FIELDS = string.Formatter()


def _walk(node, path: str = "") -> Iterator[tuple[str, str, int]]:
    if isinstance(node, YDict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str):
                yield sub, value, node.pos_of(key).line
            elif isinstance(value, YList) and value and all(isinstance(x, str) for x in value):
                for i, item in enumerate(value):  # a list of words, e.g. the days of the week
                    yield f"{sub}.{i}", item, value.pos_of(i).line
            else:
                yield from _walk(value, sub)


def _skipped(path: str, prefixes, keep) -> bool:
    if path in keep:
        return False
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def entries() -> list[tuple[str, str, str, int]]:
    """(context, English text, file, line) of every text the catalogues translate."""
    cfg = i18n._config().get("staff_only", {})
    out = []
    data, _ = parse_yaml(i18n.resource_text("messages.yaml"), "bot/messages.yaml")
    for path, text, line in _walk(data):
        if not _skipped(path, cfg.get("messages", []), set(cfg.get("person_facing", []))):
            out.append((path, text, "bot/messages.yaml", line))
    data, _ = parse_yaml(i18n.resource_text("safeguarding.yaml"), "bot/safeguarding.yaml")
    skip = set(cfg.get("safeguarding", []))
    for section in ("responses", "texts"):
        for path, text, line in _walk(data.get(section, YDict()), section):
            if path not in skip:
                out.append((i18n.SAFEGUARDING + path, text, "bot/safeguarding.yaml", line))
    for cid, concern in (data.get("concerns") or {}).items():
        helps = concern.get("help") if isinstance(concern, dict) else None
        if isinstance(helps, YDict):
            for path, text, line in _walk(helps, f"concerns.{cid}.help"):
                if not path.endswith(".practitioner"):
                    out.append((i18n.SAFEGUARDING + path, text, "bot/safeguarding.yaml", line))
    return out


def template() -> Catalog:
    cat = Catalog(domain=i18n.DOMAIN, project="restorative-bot", charset="utf-8")
    for context, text, file, line in entries():
        cat.add(text, "", locations=[(file, line)], context=context)
    return cat


def read(tag: str) -> Catalog:
    with i18n.po_path(tag).open("rb") as fh:
        return read_po(fh, locale=tag, domain=i18n.DOMAIN)


def write(cat: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, cat, width=0, omit_header=False, sort_output=False, include_previous=True)


def catalogue_tags() -> list[str]:
    """The languages that have a catalogue (a language without one speaks English around
    its translated flows)."""
    return [t for t in i18n.languages() if t != i18n.DEFAULT and i18n.po_path(t).exists()]


def extract(tags=None) -> list[Path]:
    """Write bot/locale/messages.pot and update each language's .po from it."""
    pot = template()
    written = [i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"]
    write(pot, written[0])
    for tag in tags or catalogue_tags():
        path = i18n.po_path(tag)
        if path.exists():
            cat = read(tag)
            cat.update(pot, no_fuzzy_matching=True)
        else:
            cat = Catalog(locale=tag, domain=i18n.DOMAIN, project="restorative-bot", charset="utf-8")
            for m in pot:
                if m.id:
                    cat.add(m.id, "", locations=m.locations, context=m.context)
        write(cat, path)
        written.append(path)
    i18n.clear_caches()
    return written


def _fields(text: str) -> set[str]:
    try:
        return {f for _lit, f, _spec, _conv in _FIELDS.parse(text) if f}
    except ValueError:
        return {"<unbalanced braces>"}


_COMMAND = re.compile(r"(?<![\w/])/[a-z]+\b")


def required(tag: str) -> tuple[str, ...] | None:
    """The messages a partial catalogue must translate (keys or key prefixes), from the
    language's ``catalogue_required`` in bot/locale/languages.yaml; None: every message."""
    conf = (i18n._config().get("languages") or {}).get(tag) or {}
    wanted = conf.get("catalogue_required")
    return None if wanted is None else tuple(str(p) for p in wanted)


def is_required(context: str, prefixes) -> bool:
    """Whether ``context`` is one of ``prefixes`` or under one (``required``'s answer; None: all)."""
    if prefixes is None:
        return True
    return any(context == p or context.startswith(p if p.endswith((".", ":")) else p + ".") for p in prefixes)


def problems(tag: str) -> list[str]:
    """Every way ``tag``'s catalogue falls short: a text with no translation (for a partial
    catalogue, a required one), a fuzzy one, a translation whose {placeholders} or /commands differ from the English, and an
    entry for a text that no longer exists. ``[]`` when complete."""
    path = i18n.po_path(tag)
    if not path.exists():
        return [f"{path}: no catalogue for '{tag}'; run  restorative-bot i18n extract"]
    cat = read(tag)
    out = []
    wanted = {(c, t) for c, t, _f, _l in entries()}
    prefixes = required(tag)
    for p in prefixes or ():
        if not any(is_required(c, (p,)) for c, _t in wanted):
            out.append(f"bot/locale/languages.yaml: {tag}: catalogue_required lists '{p}', which names no message; "
                       f"check the spelling against bot/messages.yaml")
    for context, text, file, line in entries():
        m = cat.get(text, context=context)
        where = f"{path}: {context} ({file}:{line})"
        if m is None or not m.string:
            if prefixes is None:
                out.append(f"{where}: not translated into {tag}")
            elif is_required(context, prefixes):
                out.append(f"{where}: not translated into {tag} (a required message of this partial catalogue: "
                           f"catalogue_required in bot/locale/languages.yaml)")
        elif m.fuzzy:
            out.append(f"{where}: the English changed; check the {tag} translation and remove the fuzzy mark")
        else:
            if _fields(m.string) != _fields(text):
                out.append(f"{where}: placeholders {sorted(_fields(m.string))} differ from the English {sorted(_fields(text))}")
            if set(_COMMAND.findall(m.string)) != set(_COMMAND.findall(text)):
                out.append(f"{where}: commands {sorted(set(_COMMAND.findall(m.string)))} differ from the English "
                           f"{sorted(set(_COMMAND.findall(text)))} (commands stay in English: /cancel works in every language)")
    for m in cat:
        if m.id and (m.context, m.id) not in wanted:
            out.append(f"{path}: {m.context}: an entry for English text that no longer exists; run  restorative-bot i18n extract")
    return out
