"""What people are called in exports, alerts and lists (data minimisation).

A practitioner may give each person in a case a pseudonym (``restorative-bot case set REF
--pseudonym NAME``, or ``/pseudonym ID NAME`` in Telegram); that is what everyone else sees,
with the case reference. Telegram first names of the people answering are not stored, and
never shown, unless the deployment says ``people_names: telegram``. A name given at the
terminal (``chat --as sam``) is the operator's own choice and is shown as given.
"""

from __future__ import annotations

PSEUDONYM_MAX = 40


def person_label(key: str | None, display_name: str | None = None, pseudonym: str | None = None,
                 telegram_names: bool = False) -> str:
    if pseudonym:
        return pseudonym
    if display_name and (telegram_names or not (key or "").startswith("tg:")):
        return display_name
    return key or "someone"


def clean_pseudonym(text: str) -> str:
    """A pseudonym as stored: one line, trimmed; ValueError (worded for people) if unusable."""
    value = " ".join((text or "").split())
    if not value or len(value) > PSEUDONYM_MAX:
        raise ValueError(f"a pseudonym is a few words of up to {PSEUDONYM_MAX} characters, e.g. Parent A")
    return value
