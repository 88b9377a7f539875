"""Languages (issue 19): which language the bot is speaking, and its message catalogues.

Two kinds of wording, two homes, one rule each:

* **Flow texts** stay in the flow files: any text may be ``{en: ..., cy: ...}`` (see
  bot/engine/loader.py); the loader builds one variant of the flow per language.
* **Everything else** (bot/messages.yaml and the person-facing texts of bot/safeguarding.yaml)
  is written once, in English, in those YAML files, which stay the source of truth. Gettext
  catalogues (``bot/locale/<tag>/LC_MESSAGES/messages.po``, read with Babel) translate it:
  each entry's ``msgctxt`` is the key (``navigation.progress``) and its ``msgid`` the English
  text, so an English sentence that changes is no longer translated until its catalogue
  entry is brought up to date (``restorative-bot i18n extract`` then ``i18n check``).

The language in force is a context variable, set by the conversation service (and the
frontends) around everything said to one person: ``with using("cy"): msg(...)``.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT = "en"
LANGUAGE: ContextVar[str] = ContextVar("language", default=DEFAULT)
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"
SAFEGUARDING = "safeguarding:"  # context prefix of the safeguarding texts


@dataclass(frozen=True)
class Language:
    tag: str
    name: str  # its own name: Cymraeg, Polski, اردو
    english_name: str
    dir: str  # ltr | rtl
    reviewed: bool
    parsing: dict = field(default_factory=dict, hash=False, compare=False)
    dates: dict = field(default_factory=dict, hash=False, compare=False)  # date words (bot/engine/dates.py)

    @property
    def rtl(self) -> bool:
        return self.dir == "rtl"


def _yaml(name: str) -> Any:
    from bot.engine.yamlpos import parse_yaml

    text = (LOCALE_DIR / name).read_text(encoding="utf-8")
    data, errors = parse_yaml(text, f"bot/locale/{name}")
    if errors:
        raise ValueError("\n".join(map(str, errors)))
    return data


@lru_cache(maxsize=1)
def _config() -> dict:
    return _yaml("languages.yaml")


@lru_cache(maxsize=1)
def languages() -> dict[str, Language]:
    out = {}
    for tag, d in _config()["languages"].items():
        out[tag] = Language(tag, d["name"], d.get("english_name", d["name"]), d.get("dir", "ltr"),
                            bool(d.get("reviewed", False)), dict(d.get("parsing") or {}), dict(d.get("dates") or {}))
    return out


def language(tag: str | None) -> Language:
    return languages().get(tag or DEFAULT) or languages()[DEFAULT]


def known(tag: str | None) -> bool:
    return bool(tag) and tag in languages()


def current() -> str:
    return LANGUAGE.get()


@contextlib.contextmanager
def using(tag: str | None):
    """Speak ``tag`` (None or unknown: English) inside the block."""
    token = LANGUAGE.set(tag if known(tag) else DEFAULT)
    try:
        yield
    finally:
        LANGUAGE.reset(token)


def offered(allow_unreviewed: bool = False) -> list[str]:
    """The languages a deployment offers: reviewed ones, and the others only when the
    deployment says ``allow_unreviewed_languages: true``."""
    return [t for t, lang in languages().items() if lang.reviewed or allow_unreviewed]


def match(code: str | None, choices=None) -> str | None:
    """The language for a Telegram ``language_code`` (``pl``, ``pl-PL``, ``cy_GB``), among
    ``choices`` (default: every known language), or None."""
    if not code:
        return None
    base = str(code).replace("_", "-").split("-", 1)[0].lower()
    pool = list(choices) if choices is not None else list(languages())
    return base if base in pool else None


def direction(tag: str | None) -> str:
    return language(tag).dir


def is_rtl_text(text: str) -> bool:
    """Whether the first strong character of ``text`` is right to left (Arabic, Hebrew script)."""
    import unicodedata

    for ch in text or "":
        bidi = unicodedata.bidirectional(ch)
        if bidi in ("R", "AL"):
            return True
        if bidi == "L":
            return False
    return False


# -- catalogues ---------------------------------------------------------------------------
def po_path(tag: str) -> Path:
    return LOCALE_DIR / tag / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def catalogue(tag: str):
    """The Babel catalogue of ``tag`` read straight from its .po file (no compiled .mo to go
    stale), or None for English and for a language without one."""
    if tag == DEFAULT:
        return None
    path = po_path(tag)
    if not path.exists():
        return None
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        return read_po(fh, locale=tag.replace("-", "_"), domain=DOMAIN)


def lookup(context: str, english: str, tag: str | None = None) -> str | None:
    """The translation of ``english`` (keyed ``context``) in ``tag``, or None when there is
    none (missing, empty or marked fuzzy)."""
    tag = tag or LANGUAGE.get()
    if tag == DEFAULT:
        return None
    cat = catalogue(tag)
    if cat is None:
        return None
    m = cat.get(english, context=context)
    if m is None or not m.string or m.fuzzy:
        return None
    return m.string if isinstance(m.string, str) else m.string[0]


def translate(context: str, english: str, tag: str | None = None) -> str:
    """``english`` in the current language (or ``tag``); English when not translated."""
    return lookup(context, english, tag) or english


def own_name(tag: str) -> str:
    return language(tag).name


def clear_caches() -> None:
    """After editing a catalogue in a running process (tests)."""
    catalogue.cache_clear()
    languages.cache_clear()
    _config.cache_clear()


def resource_text(name: str) -> str:
    return resources.files("bot").joinpath(name).read_text(encoding="utf-8")
