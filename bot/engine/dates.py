"""Dates as people in the UK type them: "12/3", "12 March", "Friday 14 March", "next Tuesday",
"tomorrow", "in two weeks". Day before month. A date without a year is the next one to come.

In another language (issue 19), an answer the English reading does not understand is read
word by word through that language's ``dates:`` words in bot/locale/languages.yaml ("dydd
Gwener nesaf" reads as "next friday", "za dwa tygodnie" as "in 2 weeks") and parsed again;
the wording lives in that file, only the reading is here. Dates shown back to a person are
in their language (Babel's CLDR data: "dydd Sadwrn 14 Mawrth 2026", "sobota 14 marca 2026").

``today`` is whatever :data:`TODAY` says (the service sets it from its injectable clock, so
tests move time instead of waiting); by default the date in Europe/London.
"""

from __future__ import annotations

import re
import unicodedata
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Callable
from zoneinfo import ZoneInfo

from bot.engine.answers import fold, parse_int
from bot.i18n import current as current_language

TODAY: ContextVar[Callable[[], date] | None] = ContextVar("TODAY", default=None)
_FIXED: list[date] = []  # scripted conversations pin "today" (``today:`` in a script), across threads
MAX_AHEAD_DAYS = 2 * 366  # a follow-up or a conference more than two years ahead is a typo

MONTHS = {m: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], 1) for m in names}
DAYS = {d: i for i, names in enumerate(
    [("mon", "monday"), ("tue", "tues", "tuesday"), ("wed", "wednesday"), ("thu", "thur", "thurs", "thursday"),
     ("fri", "friday"), ("sat", "saturday"), ("sun", "sunday")]) for d in names}
UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "fortnight": 14, "fortnights": 14}


class BadDate(Exception):
    """``rule``: 'date' (not a date), 'date_past' or 'date_far'."""

    def __init__(self, rule: str):
        super().__init__(rule)
        self.rule = rule


def today() -> date:
    fn = TODAY.get()
    if fn is not None:
        return fn()
    if _FIXED:
        return _FIXED[-1]
    return datetime.now(ZoneInfo("Europe/London")).date()


class fixed_today:
    """``with fixed_today(date(2026, 1, 12)):`` date answers count from that day."""

    def __init__(self, day: date | None):
        self.day = day

    def __enter__(self):
        if self.day is not None:
            _FIXED.append(self.day)

    def __exit__(self, *exc):
        if self.day is not None:
            _FIXED.pop()


def _year(y: str | None) -> int | None:
    if y is None:
        return None
    n = int(y)
    return 2000 + n if n < 100 else n


def _make(day: int, month: int, year: int | None, now: date, nearest: bool = False) -> date:
    try:
        d = date(year or now.year, month, day)
    except ValueError:
        raise BadDate("date") from None
    if year is None and nearest:  # past dates allowed: the nearest one, before or after today
        near = []
        for y in (now.year - 1, now.year, now.year + 1):
            try:
                near.append(date(y, month, day))
            except ValueError:  # 29 February
                continue
        return min(near, key=lambda c: (abs((c - now).days), c > now))
    if year is None and d < now:
        try:
            d = date(now.year + 1, month, day)
        except ValueError:  # 29 February
            raise BadDate("date") from None
    return d


def parse_date(text: str, now: date | None = None, allow_past: bool = False) -> date:
    """The date meant, or :class:`BadDate`. Dates over two years ahead are refused, and past
    dates too unless ``allow_past`` (a flow's ``allow_past: true``, e.g. "When did it happen?"):
    then a date without a year is the nearest one ("3 December" on 5 December is two days ago)."""
    now = now or today()
    t = fold(text).replace(",", " ")
    t = re.sub(r"\s+", " ", t).strip()
    try:
        d = _parse(t, now, allow_past)
    except BadDate:
        english = _in_english(t, current_language())
        if english is None:
            raise
        d = _parse(english, now, allow_past)
    if d < now and not allow_past:
        raise BadDate("date_past")
    if (d - now).days > MAX_AHEAD_DAYS:
        raise BadDate("date_far")
    return d


def _parse(t: str, now: date, nearest: bool = False) -> date:
    if t in ("today", "tonight"):
        return now
    if t == "tomorrow":
        return now + timedelta(days=1)
    if t in ("yesterday", "last night"):  # past: refused as date_past unless the flow allows it
        return now - timedelta(days=1)
    if t in ("last week", "a week ago"):
        return now - timedelta(days=7)
    m = re.fullmatch(r"(a|an|one|\w+) (days?|weeks?|fortnights?) ago", t)
    if m:
        n = 1 if m.group(1) in ("a", "an", "one") else parse_int(m.group(1))
        if n is not None and 0 < n <= 200:
            return now - timedelta(days=n * UNITS[m.group(2)])
    m = re.fullmatch(r"last ([a-z]+)", t)
    if m and m.group(1) in DAYS:
        return now - timedelta(days=(now.weekday() - DAYS[m.group(1)]) % 7 or 7)
    if t in ("next week", "in a week", "a week", "in one week"):
        return now + timedelta(days=7)
    if t in ("next month", "in a month", "in one month"):
        month = now.month % 12 + 1
        year = now.year + (now.month == 12)
        for day in (now.day, 30, 29, 28):
            try:
                return date(year, month, day)
            except ValueError:
                continue
    m = re.fullmatch(r"(?:in )?(a|an|one|\w+) (days?|weeks?|fortnights?)(?: time)?", t)
    if m and t.startswith("in "):
        n = 1 if m.group(1) in ("a", "an", "one") else parse_int(m.group(1))
        if n is not None and 0 < n <= 200:
            return now + timedelta(days=n * UNITS[m.group(2)])
    if t in ("in a fortnight", "a fortnight", "fortnight"):
        return now + timedelta(days=14)
    # 12/3, 12/03/2026, 12-3-26, 12.3
    m = re.fullmatch(r"(?:[a-z]+ )?(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?", t)
    if m:
        return _make(int(m.group(1)), int(m.group(2)), _year(m.group(3)), now, nearest)
    # (Friday) 14(th) (of) March (2026)
    m = re.fullmatch(r"(?:([a-z]+) )?(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([a-z]+)(?: (\d{4}))?", t)
    if m and m.group(3) in MONTHS and (m.group(1) is None or m.group(1) in DAYS or m.group(1) == "on"):
        return _make(int(m.group(2)), MONTHS[m.group(3)], _year(m.group(4)), now, nearest)
    # (Friday) March 14(th) (2026)
    m = re.fullmatch(r"(?:([a-z]+) )?([a-z]+) (\d{1,2})(?:st|nd|rd|th)?(?: (\d{4}))?", t)
    if m and m.group(2) in MONTHS and (m.group(1) is None or m.group(1) in DAYS or m.group(1) == "on"):
        return _make(int(m.group(3)), MONTHS[m.group(2)], _year(m.group(4)), now, nearest)
    # (next | this | on) Tuesday (week)
    m = re.fullmatch(r"(?:(next|this|on|coming|this coming) )?([a-z]+)( week)?", t)
    if m and m.group(2) in DAYS:
        ahead = (DAYS[m.group(2)] - now.weekday()) % 7 or 7
        if m.group(3):  # "Tuesday week": a week after the coming Tuesday
            ahead += 7
        return now + timedelta(days=ahead)
    raise BadDate("date")


# -- other languages ---------------------------------------------------------------------------
_UNIT_WORDS = frozenset({"day", "days", "week", "weeks", "fortnight", "fortnights", "month"})
_DAY_WORDS = frozenset(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))


def plain(word: str) -> str:
    """``word`` without accents, for matching what people type on any keyboard ("środę" = "srode")."""
    word = unicodedata.normalize("NFKD", word.replace("’", "'").replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in word if not unicodedata.combining(ch))


@lru_cache(maxsize=16)
def _words(lang: str) -> tuple[dict[tuple[str, ...], str], frozenset, re.Pattern | None, dict]:
    """(phrase -> English, English words said after the day or week, ordinal endings, number words)
    of ``lang``'s ``dates:`` in bot/locale/languages.yaml; empty when it has none."""
    from bot import i18n

    spec = i18n.language(lang).dates if lang != "en" else {}
    words = {tuple(plain(fold(str(k))).split()): str(v) for k, v in (spec.get("words") or {}).items()}
    endings = [re.escape(plain(fold(str(e)))) for e in spec.get("ordinals") or []]
    ordinal = re.compile(rf"(\d{{1,2}})-?(?:{'|'.join(endings)})") if endings else None
    numbers = {plain(fold(str(k))): int(v) for k, v in (i18n.language(lang).parsing.get("number_words") or {}).items()}
    return words, frozenset(map(str, spec.get("after") or [])), ordinal, numbers


def _in_english(t: str, lang: str) -> str | None:
    """A folded date answer in ``lang`` read as English words the parser knows, or None when the
    language lists no date words. Words it does not know are kept (people mix languages)."""
    words, after, ordinal, numbers = _words(lang)
    if not words:
        return None
    tokens = [plain(w) for w in t.split()]
    longest = max(len(k) for k in words)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            english = words.get(tuple(tokens[i:i + n]))
            if english is not None:
                break
        else:
            n, english = 1, tokens[i]
            m = ordinal.fullmatch(english) if ordinal else None
            if m:
                english = m.group(1)
            elif re.fullmatch(r"\d{1,2}\.", english):  # "14. marca"
                english = english[:-1]
            elif english in numbers:
                english = str(numbers[english])
        i += n
        for word in english.split():
            if word in after and out and (out[-1] in _DAY_WORDS or out[-1] in _UNIT_WORDS):
                out.insert(len(out) - 1, word)  # "dydd Gwener nesaf": next friday
            else:
                out.append(word)
    # "ymhen wythnos", "za tydzień": a week (a number of days or weeks is said before them)
    for j in range(len(out) - 1, -1, -1):
        if out[j] in _UNIT_WORDS and (j == 0 or not (out[j - 1].isdigit() or out[j - 1] in ("a", "next", "last", "this"))):
            out.insert(j, "a")
    return " ".join(out)


def shown(value: str | date, lang: str | None = None, weekday: bool = True) -> str:
    """How a date answer reads back, in the person's language: 'Friday 14 March 2026',
    'Dydd Gwener 14 Mawrth 2026', 'piątek 14 marca 2026'; without the day of the week
    ('14 March 2026', for a day gone by: "You asked on ...")."""
    d = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    lang = lang or current_language()
    if lang != "en":
        from babel.dates import format_date

        try:
            return format_date(d, "EEEE d MMMM y" if weekday else "d MMMM y", locale=lang.replace("-", "_"))
        except (ValueError, LookupError):  # a tag Babel does not know: English
            pass
    return f"{d:%A} {d.day} {d:%B %Y}" if weekday else f"{d.day} {d:%B %Y}"
