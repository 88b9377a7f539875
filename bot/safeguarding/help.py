"""Help texts: the wording shown to the person and sent in alerts, and its checks.

Person-facing texts are refused if they promise secrecy ("secret", "confidential",
"won't tell", "nobody will know", "stays between us", "stays private"); saying it can *not*
be kept ("I can't keep this just between us", "I cannot keep this a secret") is the right
thing and is allowed.
"""

from __future__ import annotations

import re
import string

AUDIENCES = ("child", "family", "practitioner")
ALERT_FIELDS = frozenset({"person", "flow", "concern", "words", "time", "ack_command"})


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
            allowed = ALERT_FIELDS if key == "alert" else frozenset()
            bad = sorted(f for f in fields if f not in allowed)
            if bad:
                names = ", ".join("{%s}" % f for f in sorted(allowed)) or "none"
                raise it.error(f"texts.{key}: unknown placeholder {{{bad[0]}}} (allowed: {names})")

    def response(self, audience: str) -> str:
        """The help text for ``audience`` ("child", "family" or "practitioner")."""
        try:
            return self._responses[audience]
        except KeyError:
            raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(AUDIENCES)}") from None

    def text(self, key: str) -> str:
        try:
            return self.texts[key]
        except KeyError:
            raise KeyError(f"no safeguarding text {key!r}; have {', '.join(sorted(self.texts))}") from None

    def offer(self) -> str:
        """The follow-up offer shown after the help text (carry on, or stop for now)."""
        return self.texts["follow_up_offer"]

    def alert_text(self, *, person: str, flow: str, concern: str, words: str, time: str, ack_command: str) -> str:
        """The alert for the practitioner and the designated safeguarding lead, filled in."""
        return self.texts["alert"].format(person=person, flow=flow, concern=concern, words=words, time=time,
                                          ack_command=ack_command)

    def concern_help(self, concern: str, audience: str) -> str | None:
        """The extra help line a concern carries for ``audience`` (YAML ``concerns.<id>.help``),
        e.g. the National Domestic Abuse Helpline for an adult; None when it has none."""
        if audience not in AUDIENCES:
            raise ValueError(f"unknown audience {audience!r}; expected one of {', '.join(AUDIENCES)}")
        return self._helps.get(concern, {}).get(audience)

    def help_lines(self, concerns, audience: str) -> list[str]:
        """The extra help lines for the concerns found (ids or Concern objects), most serious
        first, each line once: to show after :meth:`response`."""
        out: list[str] = []
        for c in concerns:
            line = self.concern_help(getattr(c, "concern", c), audience)
            if line and line not in out:
                out.append(line)
        return out
