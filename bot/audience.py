"""Who may see a conversation, and every sentence that tells people so.

One function, :func:`audience`, takes the flow's consent settings, the case, who is
answering and their consent answer, and returns the set of people who may read the
answers. Every access decision (``/transcript``, ``/review``, ``/case``, exports) asks
:meth:`Audience.allows`; every privacy sentence (the invitation, the flow intro's
``{{ privacy }}``, ``/mydata``) is chosen by :meth:`Audience.intro` or :meth:`Audience.now`
from that same set. So what people are told can never drift from what the rules allow.
The wording itself lives in ``messages.yaml`` under ``privacy:``.

Viewers are described by their relation to the conversation:

``answerer``            the person who answered (a family member, a child, a practitioner rehearsing)
``family``              someone else in the same case (a parent, a brother, the child)
``practitioner``        the worker holding the case
``supervisor``          a supervisor of that worker (or of the person rehearsing)
``other_practitioner``  any other practitioner or supervisor
``admin``               the people who run the service (administrators, and the CLI)
``stranger``            anyone else
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.messages import msg

VIEWERS = ("answerer", "family", "practitioner", "supervisor", "other_practitioner", "admin", "stranger")
CONSENT_STATES = ("not_asked", "yes", "no")
RESPONDENTS = ("child", "young_person", "adult", "practitioner")


@dataclass(frozen=True)
class Case:
    """The case a conversation belongs to, as far as privacy is concerned.

    ``ref`` is None for a conversation outside any case (the demo, practice, a
    practitioner's rehearsal): then nobody holds it but the person who answered, and
    ``managers`` are that person's own supervisors.
    """

    ref: str | None = None
    worker: str | None = None  # display name of the worker holding the case, if known
    managers: tuple[str | None, ...] = ()  # their supervisors (names, None where unknown)
    supervised: bool = False  # someone supervises the holder (always assumed in a case)


@dataclass(frozen=True)
class Consent:
    """A flow's consent settings (``consent:`` in the flow file)."""

    step: str | None = None
    without_consent: str = "nobody"  # nobody | practitioner
    which: str | None = None  # the step where the person chose which parts may be shown
    parts: tuple = ()  # ((option id, (step id, ...)), ...): what each choice covers
    every: tuple = ()  # steps about every part (the worker's notes): withheld with any part

    @classmethod
    def of(cls, flow) -> "Consent":
        parts = tuple((k, tuple(v)) for k, v in (getattr(flow, "consent_parts", None) or {}).items())
        return cls(getattr(flow, "consent_step", None), getattr(flow, "without_consent", "nobody"),
                   getattr(flow, "consent_which", None), parts, tuple(getattr(flow, "consent_every", None) or ()))


def consent_state(answer) -> str:
    """The stored answer to the consent question as a state: not_asked | yes | no."""
    if answer is True:
        return "yes"
    if answer is False:
        return "no"
    return "not_asked"


@dataclass(frozen=True)
class Audience:
    consent: Consent
    case: Case
    respondent: str | None
    state: str
    readers: frozenset = field(default_factory=frozenset)

    def allows(self, viewer: str) -> bool:
        return viewer in self.readers

    def withheld(self, viewer: str, chosen) -> frozenset:
        """The steps ``viewer`` may not read although they may read the conversation: the parts
        the person did not choose to share (``consent.which``), for everyone who reads only
        because of the consent. ``chosen`` is the answer to the which-step (option ids; None when
        it was never answered, and then no part is shared). The person who answered, and anyone
        who may read without the consent (the worker, with ``without_consent: practitioner``),
        read every step."""
        if not self.consent.parts or viewer == "answerer":
            return frozenset()
        without = audience(self.consent, self.case, self.respondent, "no").readers
        if viewer in without:
            return frozenset()
        picked = set(chosen) if isinstance(chosen, (list, tuple, set, frozenset)) else set()
        kept = {s for option, steps in self.consent.parts if option not in picked for s in steps}
        if kept:  # notes about every part would tell what the parts kept back say
            kept.update(self.consent.every)
        return frozenset(kept)

    # -- sentences -----------------------------------------------------------------------
    def _child(self) -> bool:
        return self.respondent == "child"

    def _names(self, who) -> list[str]:
        """Phrases for the readers in ``who`` (never the answerer), in a fixed order."""
        out = []
        if "practitioner" in who:
            out.append(msg("privacy.names.worker_named", name=self.case.worker) if self.case.worker
                       else msg("privacy.names.worker"))
        if "supervisor" in who:
            own = self.case.ref is None  # a rehearsal: the person's own supervisor
            named = [m for m in self.case.managers if m]
            if named:
                key = "privacy.names.supervisor_named" if own else "privacy.names.manager_named"
                out.extend(msg(key, name=m) for m in named)
            else:
                out.append(msg("privacy.names.supervisor" if own else "privacy.names.manager"))
        if "admin" in who:
            out.append(msg("privacy.names.admins"))
        return out

    @staticmethod
    def _join(parts: list[str]) -> str:
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + msg("privacy.names.and") + parts[-1]

    def _pick(self, kind: str, **values) -> str:
        variant = self.respondent if self.respondent in ("child", "practitioner") else "default"
        node = msg(f"privacy.{kind}")
        if isinstance(node, dict):  # through msg, so the catalogue of the language in force translates it
            text = msg(f"privacy.{kind}.{variant if node.get(variant) else 'default'}", **values)
        else:
            text = node.format(**values)
        return text[:1].upper() + text[1:]

    def intro(self) -> str:
        """What the person is told before answering (the intro and the invitation)."""
        now = audience(self.consent, self.case, self.respondent, "not_asked").readers - {"answerer"}
        if self.consent.step is None:
            if self.case.ref is None and now:  # the demo, practice, a rehearsal: nobody holds it
                return self._pick("intro.no_case", others=self._join([msg("privacy.names.you"), *self._names(now)]))
            return self._pick("intro.shared" if now else "intro.only_you", others=self._join(self._names(now)))
        later = audience(self.consent, self.case, self.respondent, "yes").readers - {"answerer"} - now
        extra = self._join(self._names(later))
        if now:
            text = self._pick("intro.first_then_more", others=self._join(self._names(now)), extra=extra)
        else:
            text = self._pick("intro.you_first", extra=extra)
        if self.consent.parts and later:  # a yes shows them only the parts the person chooses
            text = f"{text} {self._pick('parts.intro')}"
        return f"{text} {self._pick('intro.safety')}"  # never a promise of secrecy

    def _only_parts(self, text: str) -> str:
        """``text``, and after a yes with ``consent.which``: who sees only the parts chosen."""
        if not self.consent.parts or self.state != "yes":
            return text
        partial = self.readers - audience(self.consent, self.case, self.respondent, "no").readers
        if not partial:
            return text
        return f"{text} {self._pick('parts.after', others=self._join(self._names(partial)))}"

    def after(self) -> str:
        """Who can see the answers once the consent question has been answered."""
        others = self.readers - {"answerer"}
        if not others:
            return self._pick("after.only_you")
        return self._only_parts(
            self._pick("after.some", others=self._join([msg("privacy.names.you"), *self._names(others)])))

    def say(self) -> str:
        """``{{ privacy }}`` in a flow's texts: before the consent answer what :meth:`intro`
        says, after it what :meth:`after` says."""
        if self.consent.step is None or self.state == "not_asked":
            return self.intro()
        return self.after()

    def now(self) -> str:
        """Who can see it at this moment (``/mydata``)."""
        others = self.readers - {"answerer"}
        if not others:
            return self._pick("now.only_you")
        return self._only_parts(
            self._pick("now.some", others=self._join([msg("privacy.names.you"), *self._names(others)])))

    def telegram(self) -> str:
        """Telegram chats are cloud chats, not end-to-end encrypted, in plain words."""
        return self._pick("telegram")


# -- /privacy: the whole notice -------------------------------------------------------------

# Record types a person is told about, in this order (practice only for staff).
NOTICE_TYPES = ("completed", "abandoned", "alerts", "practice")


def duration(days: float | None) -> str:
    """730 -> "2 years", 180 -> "6 months", 30 -> "30 days", None -> kept until deleted."""
    if days is None:
        return msg("privacy.notice.duration.never")
    n = int(days)
    if n >= 365 and n % 365 == 0:
        return msg("privacy.notice.duration.year") if n == 365 else msg("privacy.notice.duration.years", n=n // 365)
    if n >= 60 and n % 30 == 0:
        return msg("privacy.notice.duration.months", n=n // 30)
    return msg("privacy.notice.duration.day") if n == 1 else msg("privacy.notice.duration.days", n=f"{days:g}")


def notice(respondent: str | None, conversations: list[tuple[str, "Audience"]], retention_days: dict,
           staff: bool = False) -> str:
    """The ``/privacy`` notice: who sees what (from :func:`audience`, for each of the person's
    conversations, or for a new one in a case), how long things are kept (the retention
    configuration), that Telegram is not end-to-end encrypted, how to get a copy or ask for
    deletion, and how to complain to the ICO. ``respondent`` picks the wording: a child or
    young person gets the child-friendly one."""
    who = "child" if respondent in ("child", "young_person") else ("practitioner" if staff else respondent)
    base = audience(Consent(), Case(ref="?"), who, "not_asked")

    def pick(kind: str, **values) -> str:
        return base._pick(f"notice.{kind}", **values)

    parts = [pick("title"), "", pick("who_title")]
    if conversations:
        parts += [msg("privacy.notice.line", flow=flow, who=aud.now()) for flow, aud in conversations]
        parts.append(pick("who_depends"))
    else:
        parts.append(f"{base.intro()} {pick('who_depends')}")
    parts += ["", pick("keep_title")]
    for kind in NOTICE_TYPES:
        if kind == "practice" and not staff:
            continue
        parts.append(pick(f"keep.{kind}", time=duration(retention_days.get(kind))))
    parts += ["", base._pick("intro.safety"), "", base.telegram(), "", pick("rights"), "", pick("complain")]
    return "\n".join(parts)


def audience(consent: Consent, case: Case, respondent: str | None, state: str) -> Audience:
    """The one rule: who may read a conversation's answers.

    - The person who answered always may.
    - Nobody else in the family, no other practitioner and no stranger ever may.
    - Without a consent question, or once it is answered yes: the worker holding the case,
      their supervisors and the administrators. Outside a case (demo, practice, rehearsal)
      nobody holds it: the person's own supervisors, if they have any, and the administrators.
    - Before the consent question is answered, or after a no: the worker holding the case if
      the flow says ``without_consent: practitioner``; otherwise nobody else at all.
    - With ``consent.which`` (the person chose which parts may be shown), a reader who may read
      only because of the consent does not see the parts left out: :meth:`Audience.withheld`.
    """
    if state not in CONSENT_STATES:
        raise ValueError(f"unknown consent state {state!r}")
    readers = {"answerer"}
    shared = consent.step is None or state == "yes"
    in_case = case.ref is not None
    if shared:
        readers.add("admin")
        if in_case:
            readers.add("practitioner")
        if in_case or case.supervised:
            readers.add("supervisor")
    elif in_case and consent.without_consent == "practitioner":
        readers.add("practitioner")
    return Audience(consent, case, respondent, state, frozenset(readers))


def decide(flow, case: Case, respondent: str | None, consent_answer, viewer: str) -> bool:
    """May ``viewer`` read a conversation on ``flow`` in ``case``, given the consent answer?"""
    if viewer not in VIEWERS:
        raise ValueError(f"unknown viewer {viewer!r}")
    return audience(Consent.of(flow), case, respondent, consent_state(consent_answer)).allows(viewer)


def sentence(flow, case: Case, respondent: str | None, answers: dict, mode: str = "say") -> str:
    """``{{ privacy }}`` (mode "say": :meth:`Audience.say`) or ``{{ who_can_see }}`` (mode
    "after": :meth:`Audience.after`) for a conversation with these answers so far."""
    answer = answers.get(flow.consent_step) if getattr(flow, "consent_step", None) else None
    aud = audience(Consent.of(flow), case, respondent or respondent_for(None, flow), consent_state(answer))
    return aud.say() if mode == "say" else aud.after()


def respondent_for(conv, flow) -> str | None:
    """Who is answering: the conversation's respondent once recorded, else the flow's audience."""
    who = getattr(conv, "respondent", None) if conv is not None else None
    if who:
        return who
    audience_ = getattr(flow, "audience", None)
    return {"child": "child", "practitioner": "practitioner"}.get(audience_)


# -- reading the facts from the store ------------------------------------------------------

def case_of(store, case_id: int | None, person_id: int | None) -> Case:
    """The :class:`Case` for a conversation in ``case_id`` (or outside a case, by ``person_id``)."""
    if case_id is not None:
        row = store.case_by_id(case_id) or {}
        holder = row.get("practitioner_id")
        worker = (store.get_person(holder) or {}).get("display_name") if holder else None
        managers = tuple((store.get_person(s) or {}).get("display_name") for s in store.supervisors_of(holder)) \
            if holder else ()
        return Case(ref=row.get("ref") or "?", worker=worker, managers=managers, supervised=True)
    sups = store.supervisors_of(person_id) if person_id is not None else []
    return Case(ref=None, managers=tuple((store.get_person(s) or {}).get("display_name") for s in sups),
                supervised=bool(sups))


# -- validate: an intro that promises what the consent block does not enforce --------------

# (pattern, applies when, what is wrong). Patterns are matched on the intro text folded to
# lower case with single spaces.
_PROMISES = [
    (re.compile(r"\b(nobody|no one|no-one) else (will|can|may) (see|read)|\bunless you (say|agree)|"
                r"only (be )?(passed on|shared|shown) if you|stays? with you"),
     lambda c: c.step is None,
     "that promises the answers stay private until the person agrees, but the flow has no 'consent:' "
     "block, so they are shared from the start; add  consent: {step: <a yes/no step>, without_consent: "
     "nobody}, or write {{ privacy }} and let the bot say who sees them"),
    (re.compile(r"\b(seen|read) by [^.]*\b(supervisors?|managers?)\b|\b(supervisors?|managers?)\b[^.]*\b(see|read)\b"),
     lambda c: c.step is not None,
     "that says a supervisor or manager sees the answers, but 'consent:' keeps them from supervisors "
     "until the person says yes; write {{ privacy }} and let the bot say it"),
    (re.compile(r"\b(worker|practitioner|social worker|coordinator)\b[^.]*\b(will|can|may) (see|read)|"
                r"\b(seen|read) by (your|the) (worker|practitioner|social worker|coordinator)"),
     lambda c: c.step is not None and c.without_consent == "nobody",
     "that says the worker sees the answers, but 'without_consent: nobody' keeps them from the worker "
     "until the person says yes; use  without_consent: practitioner, or write {{ privacy }}"),
    (re.compile(r"only (be )?(passed on|shared|shown) if you|stays? with you"),
     lambda c: c.step is not None and c.without_consent == "practitioner",
     "that says the answers stay with the person until they agree, but 'without_consent: practitioner' "
     "lets the worker read them before that; use  without_consent: nobody, or write {{ privacy }}"),
]


def intro_warnings(flow) -> list:
    """``file:line:col: warning: ...`` for promises in a flow's intro that its consent block breaks."""
    from bot.engine.yamlpos import SourceError, YDict, parse_yaml

    if not getattr(flow, "intro", None):
        return []
    data, _ = parse_yaml(flow.source, flow.path)
    pos = data.pos_of("intro") if isinstance(data, YDict) else None
    text = " ".join(flow.intro.lower().replace("\u2019", "'").split())
    consent = Consent.of(flow)
    out = []
    for pattern, applies, why in _PROMISES:
        found = pattern.search(text) if applies(consent) else None
        if found:
            line, col = _where(flow.source, pos, found.group(0))
            out.append(SourceError(flow.path, line, col, f"warning: the intro says \"{found.group(0)}\": {why}"))
    return out


def _where(source: str, pos, phrase: str) -> tuple[int, int]:
    """Line and column of ``phrase`` in the file (it may be folded over lines), from ``pos`` on."""
    lines = source.splitlines(keepends=True)
    start_line = pos.line if pos else 1
    start = sum(len(x) for x in lines[:start_line - 1]) + ((pos.col - 1) if pos else 0)
    words = phrase.split()
    found = re.compile(r"\s+".join(re.escape(w) for w in words), re.I).search(source, start) if words else None
    if found is None:
        return (pos.line, pos.col) if pos else (1, 1)
    before = source[:found.start()]
    return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1
