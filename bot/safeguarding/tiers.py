"""Tiers, and what the detector returns: one :class:`Concern` per concern found in a message.

Two tiers (issue 12):

``alert``
    Precise and grave words ("he raped me", "I'm going to kill myself tonight"). The person
    is given help at once, the flow pauses, and people are alerted until someone acknowledges.
``review``
    Broad signals worth a look (hurt, scared, dread, a bruise, locked in, "nobody notices",
    police, money and pictures, an older friend online, an idiom that might not be one). The
    person is not interrupted; the answer goes to the top of the practitioner's queue.

How a line gets its tier:

1. each lexicon rule has a tier: ``phrases``/``patterns`` are ``alert``, ``review``/
   ``review_patterns`` are ``review``; ``grave`` phrases are ``alert`` that no net may lower
   (round 10: a child left alone overnight, a cover story taken back, a method of suicide);
2. a match inside one of its concern's ``soften`` phrases (an idiom that might not be one)
   is at most ``review``; a match near a ``contexts`` phrase (a lesson, a film, an accident,
   play, a resolved past; near, and unless the context says ``overlap: true``, not
   overlapping the match) drops one tier: ``alert`` becomes ``review``, ``review`` nothing;
   a context marked ``cap: review`` only caps a match near it at ``review`` (never removes it);
3. a concern keeps its highest surviving match; the review net and the tier net
   (:mod:`bot.safeguarding.classify`) may then add a review, lift review to alert, lower a
   lexicon alert to review or drop a review, never past a deployment's own words and never
   raising what a soften phrase or a context capped; ``raise.low_score`` lifts ``review`` to
   ``alert`` for the listed concerns when the caller says the person's latest 0-10 scale
   answer is at or below ``at_most`` (``detect(text, context={"score": 0})``);
4. a line's tier is the highest of its concerns' (:func:`tier_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

ALERT = "alert"
REVIEW = "review"
TIERS = (ALERT, REVIEW)  # highest first
GRAVE_RANK = 3  # an alert of a ``grave`` rule: no net may lower it (round 10); shown as alert
ALERT_RANK = 2
REVIEW_RANK = 1
RANK_TIER = {GRAVE_RANK: ALERT, ALERT_RANK: ALERT, REVIEW_RANK: REVIEW}


@dataclass(frozen=True)
class Concern:
    concern: str  # id, e.g. "sexual_abuse"
    label: str  # human label, e.g. "Sexual abuse"
    matched: str  # fragment of the original message that matched (best effort)
    rule: str  # the lexicon phrase or pattern that fired, as written in the YAML
    tier: str = ALERT  # "alert" or "review"


def tier_of(concerns: Iterable[object]) -> str | None:
    """The highest tier among ``concerns`` ("alert", "review"), or None when there are none.

    A concern object without ``.tier`` (from older code) counts as ``alert``.
    """
    best = None
    for c in concerns:
        t = getattr(c, "tier", ALERT)
        if t == ALERT:
            return ALERT
        if t == REVIEW:
            best = REVIEW
    return best


NET_RULE = "review net"  # how the rule of a concern the review net added on its own begins


def net_alone(concern: object) -> bool:
    """Did the review net alone find ``concern`` (no phrase or pattern of the lexicon matched)?
    Its rule then reads "review net (p)" (maybe "+ tier net (q)" after it). A concern id
    given as a plain string was found by a rule."""
    return str(getattr(concern, "rule", "")).startswith(NET_RULE)
