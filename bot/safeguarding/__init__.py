"""Safeguarding detection: recognise a possible disclosure of harm or risk in free text.

Why this exists: in 2018 the BBC typed "I'm being forced to have sex and I'm only 12" into
two wellbeing chatbots and neither told the user to get help. Every free-text answer the
bot receives goes through :meth:`SafeguardingConfig.detect` first. Detection errs towards
flagging: a false alarm costs a practitioner a minute, a missed disclosure can cost a child.
This package only *recognises* and supplies the wording; the conversation service shows the
help, records the words verbatim and raises the alert.

Where things are
----------------
``normalise``  text normalising (the form matching runs on)
``lexicon``    the lexicon YAML, its loader and :class:`SafeguardingConfig`
``match``      matching phrases, patterns and exclusions (``detect``), bounded on long texts
``classify``   the review net: a small classifier over concepts of the words (person near
               harm, injury near a cover story...), trained by scripts/train_safeguarding.py
``tiers``      the two tiers (alert, review) and the :class:`Concern` objects returned
``help``       help texts, per-concern help lines, alert wording and their secrecy check
``check``      ``restorative-bot safeguarding check [--json]``: lines in, tiers out

Public API
----------
``Concern(concern, label, matched, rule, tier)``
    One detected concern: its id, its human label, the fragment of the *original* message
    that matched (best effort), the lexicon phrase or pattern that fired, and its tier,
    ``"alert"`` or ``"review"`` (see :mod:`bot.safeguarding.tiers`). ``tier_of(concerns)``
    gives a message's tier: the highest, or None.
``SafeguardingConfig.load(*paths, default=True, classifier=True)``
    The packaged lexicon (``bot/safeguarding.yaml``) with per-deployment override files
    merged on top, in order, and (with the packaged lexicon) the review net
    (``bot/safeguarding_model.json``; ``classifier=False`` for the lexicon alone). A bad file raises :class:`SafeguardingConfigError` whose text
    is ``file:line:col: message``.
``config.detect(text, context=None) -> list[Concern]``
    ``[]`` when nothing is found; at most one Concern per concern id, most serious first.
    Never raises on any ``str`` (``None`` gives ``[]``). ``context={"score": N}`` passes the
    person's latest 0-10 scale answer: a low score can raise review to alert.
``config.help_lines(concerns, audience)``
    Extra help lines of the concerns found (``concerns.<id>.help`` in the YAML), e.g. the
    National Domestic Abuse Helpline for domestic abuse.
``config.response(audience) -> str``
    The help text shown at once to the person: audience ``child``, ``family`` or
    ``practitioner``.
``config.text(key) -> str`` and ``config.texts``
    Other wording from the YAML ``texts:`` section. Shipped keys:
    ``follow_up_offer`` (asked after the help text: carry on or stop),
    ``follow_up_continue`` / ``follow_up_stop`` (button labels), and ``alert``, the message
    sent to the named practitioner and the designated safeguarding lead. ``alert`` is a
    ``str.format`` template with the fields ``{person}``, ``{flow}``, ``{concern}``,
    ``{words}``, ``{time}`` and ``{ack_command}``; use :meth:`SafeguardingConfig.alert_text`
    to fill it. ``config.offer()`` returns ``follow_up_offer``.
``config.concerns``  (id -> label, most serious first), ``config.severity`` (ids, most
    serious first), ``config.audiences``, ``config.normalise(text)``.
``normalise(text)`` and ``detect(text)`` at module level use the packaged default
    (loaded lazily on first use, never at import), as does ``default_config()``.

How matching works
------------------
Normalising: see :mod:`bot.safeguarding.normalise`; phrases, patterns and exclusions:
see :mod:`bot.safeguarding.match`.

Override files: see :mod:`bot.safeguarding.lexicon`.
"""

from __future__ import annotations

from bot.safeguarding.help import ALERT_FIELDS, AUDIENCES, _promises_secrecy  # noqa: F401 (tests use it)
from bot.safeguarding.lexicon import (
    DEFAULT_MAX_GAP,
    SafeguardingConfig,
    SafeguardingConfigError,
    default_config,
    detect,
    normalise,
)
from bot.safeguarding.tiers import ALERT, REVIEW, TIERS, Concern, tier_of

__all__ = [
    "ALERT",
    "REVIEW",
    "TIERS",
    "tier_of",
    "AUDIENCES",
    "ALERT_FIELDS",
    "DEFAULT_MAX_GAP",
    "Concern",
    "SafeguardingConfig",
    "SafeguardingConfigError",
    "default_config",
    "detect",
    "normalise",
]
