"""Help texts: the wording shown to the person and sent in alerts, and its checks.

Person-facing texts are refused if they promise secrecy ("secret", "confidential",
"won't tell", "nobody will know", "stays between us", "stays private"); saying it can *not*
be kept ("I can't keep this just between us", "I cannot keep this a secret") is the right
thing and is allowed.
"""

from __future__ import annotations

import re
import string

from bot.safeguarding.tiers import net_alone

AUDIENCES = ("child", "family", "practitioner")
# Help follows who is answering (bot/respondent.py), not the flow's audience: responses and
# concern help may also be written for a young person and an adult; without them a young
# person gets the child's wording and an adult the family's.
RESPONSE_KEYS = AUDIENCES + ("young_person", "adult")
_FALLBACK = {"young_person": "child", "adult": "family"}
RESPONDENTS = ("child", "young_person", "adult", "practitioner")
# How the "who will be told" sentence reads: real (a named person will be told), practice
# (a trial that is not a case: nobody is told) or nobody (no safeguarding lead is set up).
TOLD = ("real", "practice", "nobody")
ALERT_FIELDS = frozenset({"person", "flow", "concern", "words", "time", "ack_command", "respondent"})
TEXT_FIELDS = {"alert": ALERT_FIELDS, "out_of_hours": frozenset({"number"})}


_SECRECY = [
    re.compile(r"\bsecrets?\b"),
    re.compile(r"\bconfidential\w*\b"),
    re.compile(r"\b(?:will|would|shall|do|does|did) not (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bnot going to (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bnever (?:tell|share|pass|say|repeat)\b"),
    re.compile(r"\bpromise not to\b"),
    re.compile(r"\b(?:no one|nobody|noone)(?: else)? (?:will|would|is going to|needs to|has to|is to|can) "
               r"(?:know|see|find out|hear|read)\b"),
    re.compile(r"\bonly (?:you and (?:me|i)|we|us) (?:will |would )?(?:know|see)\b"),
    re.compile(r"\bbetween (?:us|you and me|you and i|me and you|ourselves)\b"),
    re.compile(r"\b(?:stays?|remains?|kept|keep it|keep this|is|are) (?:private|hidden)\b"),
    re.compile(r"\boff the record\b"),
    re.compile(r"\bto (?:myself|ourselves)\b"),
]
# "I can't keep this a secret" and "I can't keep this just between us" are the right thing to say.
_SECRECY_OK = re.compile(r"\b(?:can not|cannot|could not|not able to|unable to|not allowed to) keep\b")


def _in_language(key: str, english: str) -> str:
    """A help text in the language in force (bot/i18n catalogues; the English when it has
    none, or when a deployment's override changed the English: a translation is keyed by
    the exact English it translates)."""
    from bot.i18n import SAFEGUARDING, translate

    return translate(SAFEGUARDING + key, english)


def _promises_secrecy(norm: str) -> str | None:
    for rx in _SECRECY:
        for m in rx.finditer(norm):
            before = norm[max(0, m.start() - 40):m.start()]
            if _SECRECY_OK.search(before):
                continue
            return m.group()
    return None


class _HelpTexts:
    """The wording half of :class:`bot.safeguarding.lexicon.SafeguardingConfig`."""

    def _check_wording(self, merged: dict) -> None:
        for aud, it in merged["responses"].items():
            hit = _promises_secrecy(self._plain.normalise(it.value))
            if hit:
                raise it.error(f"responses.{aud} must never promise secrecy (found '{hit}'); "
                               "say that someone will be told so they can help")
        for cid, by_audience in merged.get("helps", {}).items():
            for aud, it in by_audience.items():
                hit = _promises_secrecy(self._plain.normalise(it.value))
                if hit:
                    raise it.error(f"{cid}.help.{aud} must never promise secrecy (found '{hit}')")
        fmt = string.Formatter()
        for key, it in merged["texts"].items():
            if key != "alert":
                hit = _promises_secrecy(self._plain.normalise(it.value))
                if hit:
                    raise it.error(f"texts.{key} must never promise secrecy (found '{hit}')")
            try:
                fields = {f for _lit, f, _spec, _conv in fmt.parse(it.value) if f is not None}
            except ValueError as exc:
                raise it.error(f"texts.{key}: bad {{placeholder}}: {exc} (write {{{{ and }}}} for braces)") from None
            allowed = TEXT_FIELDS.get(key, frozenset())
            bad = sorted(f for f in fields if f not in allowed)
            if bad:
                names = ", ".join("{%s}" % f for f in sorted(allowed)) or "none"
                raise it.error(f"texts.{key}: unknown placeholder {{{bad[0]}}} (allowed: {names})")

    def response(self, audience: str) -> str:
        """The help text for ``audience`` ("child", "family" or "practitioner"), or for a
        respondent ("young_person", "adult": the child's and the family's unless written).
        A ``{told}`` in it is where :meth:`help_for` puts who will be told."""
        if audience not in RESPONSE_KEYS:
            raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(RESPONSE_KEYS)}")
        key = audience if self._responses.get(audience) else _FALLBACK[audience]
        return _in_language(f"responses.{key}", self._responses[key])

    def help_for(self, respondent: str | None, concerns=(), *, told: str = "real",
                 out_of_hours: str | None = None) -> str:
        """The whole response shown at once to the person, by who is answering: the help
        text, who will be told (``told``: real, practice or nobody; for real, with the
        truthful line that nobody may read it straight away), the extra help lines of the
        concerns found (e.g. the domestic abuse helpline for an adult), and the local
        out-of-hours number when the deployment gives one. ``respondent`` None (not known):
        the help for a young person and for an adult, one after the other."""
        if respondent is None:
            return "\n\n".join(self.help_for(r, concerns, told=told, out_of_hours=out_of_hours)
                                for r in ("young_person", "adult"))
        if respondent not in RESPONDENTS:
            raise ValueError(f"unknown respondent {respondent!r}; expected one of {', '.join(RESPONDENTS)}")
        if told not in TOLD:
            raise ValueError(f"unknown told {told!r}; expected one of {', '.join(TOLD)}")
        told_text = self._told(respondent, told)
        text = self.response(respondent)
        if "{told}" in text:
            text = text.replace("{told}", told_text)
        elif told != "real":  # a deployment's own wording without {told}: still say the truth first
            text = f"{told_text}\n{text}"
        lines = [text] + self.help_lines(concerns, respondent)
        if out_of_hours and respondent != "practitioner":
            lines.append(self.text("out_of_hours").format(number=out_of_hours))
        return "\n".join(lines)

    def _told(self, respondent: str, told: str) -> str:
        if told != "real":
            return self.text(f"told_{told}")
        for key in (f"told_{respondent}", f"told_{_FALLBACK.get(respondent, respondent)}"):
            if key in self.texts:
                return self.text(key)
        raise KeyError(f"no safeguarding text told_{respondent}")

    def text(self, key: str) -> str:
        try:
            return _in_language(f"texts.{key}", self.texts[key])
        except KeyError:
            raise KeyError(f"no safeguarding text {key!r}; have {', '.join(sorted(self.texts))}") from None

    def offer(self) -> str:
        """The follow-up offer shown after the help text (carry on, or stop for now)."""
        return self.text("follow_up_offer")

    def alert_text(self, *, person: str, flow: str, concern: str, words: str, time: str, ack_command: str,
                   respondent: str = "") -> str:
        """The alert for the practitioner and the designated safeguarding lead, filled in;
        ``respondent`` names who was answering (a young person, an adult, ...)."""
        return self.texts["alert"].format(person=person, flow=flow, concern=concern, words=words, time=time,
                                          ack_command=ack_command, respondent=respondent)

    def concern_help(self, concern: str, audience: str) -> str | None:
        """The extra help line a concern carries for ``audience`` (YAML ``concerns.<id>.help``),
        e.g. the National Domestic Abuse Helpline for an adult; None when it has none."""
        if audience not in RESPONSE_KEYS:
            raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(RESPONSE_KEYS)}")
        helps = self._helps.get(concern, {})
        key = audience if helps.get(audience) else _FALLBACK.get(audience, audience)
        line = helps.get(key)
        return _in_language(f"concerns.{concern}.help.{key}", line) if line else None

    def help_lines(self, concerns, audience: str) -> list[str]:
        """The extra help lines for the concerns found (ids or Concern objects), most serious
        first, each line once: to show after :meth:`response`.

        A concern that only the review net found (no phrase matched: :func:`~bot.safeguarding.
        tiers.net_alone`) brings no line of its own: the net names its concern with a small
        naive Bayes model that is often wrong (the domestic abuse helpline for a child's
        self-harm), so the person gets the help for who they are (:meth:`response`: Childline
        for a young person, the NSPCC, NHS 111 and Samaritans for an adult) and nothing that
        names a concern they did not speak of."""
        out: list[str] = []
        for c in concerns:
            if net_alone(c):
                continue
            line = self.concern_help(getattr(c, "concern", c), audience)
            if line and line not in out:
                out.append(line)
        return out
