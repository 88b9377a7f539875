"""What the detector returns: one :class:`Concern` per concern found in a message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Concern:
    concern: str  # id, e.g. "sexual_abuse"
    label: str  # human label, e.g. "Sexual abuse"
    matched: str  # fragment of the original message that matched (best effort)
    rule: str  # the lexicon phrase or pattern that fired, as written in the YAML

