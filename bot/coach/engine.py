"""The coach: labels a practitioner's question and, for a weak one, offers a better wording.

Pure functions of the text and the rules (flows/rehearsal/coach.yaml); no I/O after the
rules are loaded, no state between questions. Every input gives an answer: empty, huge or
odd text simply gets fewer labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.coach.rules import MISTAKES, PRACTICE, Rules, load_rules, normalise

MAX_CHARS = 2000
SUBJECTS = {"you", "he", "she", "they", "it", "we", "i", "there", "that", "this", "things", "your", "anyone",
            "anything", "someone", "somebody", "anybody", "everyone", "everything", "the", "my", "his", "her",
            "their", "our", "school", "home", "mum", "dad", "people", "he", "what"}
WH_AFTER_CONDITION = re.compile(
    r"\b(?:what|whats|how|where|who|which)\s+[a-z0-9]+"
)


@dataclass(frozen=True)
class Coaching:
    text: str
    labels: tuple[str, ...]
    suggestion: str | None
    stages: tuple[str, ...] = ()  # the practice labels, in the order asked
    aimed_at: str | None = None  # the stage the words point to, even for a weak question

    def as_dict(self) -> dict:
        return {"text": self.text, "labels": list(self.labels), "suggestion": self.suggestion}

    @property
    def mistakes(self) -> tuple[str, ...]:
        return tuple(label for label in self.labels if label in MISTAKES)

    @property
    def is_open(self) -> bool:
        return "open" in self.labels


@dataclass
class _Segment:
    text: str  # normalised, fillers stripped
    context: str  # with the non-question words before it in the same sentence
    asked: bool  # the sentence ended with a question mark
    form: str = "statement"  # open | closed | why | leading | statement | lecture | none
    lecture: bool = False
    leading: bool = False
    stage: str | None = None
    lead_in: bool = False  # words before a question in the same sentence ("looking back, what...")
    last: bool = False  # the last words of the whole text


@dataclass
class Coach:
    rules: Rules = field(default_factory=load_rules)

    def __post_init__(self) -> None:
        r = self.rules
        spelled = sorted({k.pattern for k, _ in r.spelling}, key=len, reverse=True)
        self._spelling = dict((k.pattern, v) for k, v in r.spelling)
        self._spelling_keys = {re.sub(r"\\b", "", k).replace("\\ ", " "): v for k, v in self._spelling.items()}
        self._spelling_re = re.compile("|".join(spelled)) if spelled else None
        wh = "|".join(sorted(r.question_words, key=len, reverse=True)) or "what"
        aux = "|".join(sorted(r.auxiliaries, key=len, reverse=True)) or "did"
        subjects = "|".join(sorted(SUBJECTS, key=len, reverse=True))
        self._split_re = re.compile(
            rf"(?:,\s*|\s)(?:and|or|but|also)\s+(?:if (?:so|not),?\s+)?(?=(?:(?:{wh})\s+[a-z0-9]|(?:{aux})\s+(?:{subjects})\b|why\b))"
            rf"|,\s*(?=(?:{'|'.join(w for w in r.question_words if w != 'when') or 'what'})\s+[a-z])"
        )
        self._fillers_re = re.compile(r"^(?:(?:" + "|".join(map(re.escape, r.fillers)) + r")\b[\s,]*)+") if r.fillers else None
        self._first_word = re.compile(r"^([a-z0-9]+)(?:\s+([a-z0-9]+))?")

    # --- the public entry point -------------------------------------------------------
    def coach(self, text) -> Coaching:
        original = text if isinstance(text, str) else str(text)
        full, original = original, original[:MAX_CHARS]  # a question is read up to MAX_CHARS; the text is echoed whole
        t = self._spell(normalise(original))
        segments = self._segments(t)
        labels: list[str] = []
        stages: list[str] = []
        for seg in segments:
            self._classify(seg)
        forms = [s.form for s in segments]
        questions = [s for s in segments if s.form in ("open", "closed", "why", "leading") and (s.asked or s.form != "leading" or len(segments) == 1)]
        asked = [s for s in segments if s.form in ("open", "closed", "why") or (s.form == "leading" and s.asked)]
        if len([s for s in asked if not _ELLIPTICAL.match(s.text)]) + (1 if asked and all(_ELLIPTICAL.match(s.text) for s in asked) else 0) >= 2:
            labels.append("multiple")
        if "closed" in forms:
            labels.append("closed")
        if "why" in forms:
            labels.append("why")
        if any(s.leading for s in segments):
            labels.append("leading")
        blaming = self.rules.mistakes.get("blaming")
        if blaming and blaming.search(t):
            labels.append("blaming")
        if any(s.lecture for s in segments):
            labels.append("lecture")
        if "open" in forms:
            labels.append("open")
        for seg in segments:
            if seg.form == "open":
                seg.stage = self._stage(seg.context)
                if seg.stage and seg.stage not in stages:
                    stages.append(seg.stage)
        labels.extend(stages)
        aimed = stages[0] if stages else self._stage(t)
        ordered = tuple(sorted(set(labels), key=_LABEL_ORDER.__getitem__))
        suggestion = None
        if any(label in MISTAKES for label in ordered):
            suggestion = self._suggest(original, t, ordered, segments, questions)
        return Coaching(full, ordered, suggestion, tuple(stages), aimed)

    # --- steps ---------------------------------------------------------------------------
    def _spell(self, t: str) -> str:
        if not self._spelling_re:
            return t
        return self._spelling_re.sub(lambda m: self._spelling_keys.get(m.group(0), m.group(0)), t)

    def _segments(self, t: str) -> list[_Segment]:
        out: list[_Segment] = []
        context = ""
        for sentence in re.split(r"(?<=[?!;])\s*|\.+(?:\s+|$)|\n", t):
            if not sentence or not sentence.strip(" ?!.;,"):
                continue
            asked = sentence.rstrip().endswith("?")
            s = sentence.strip(" ?!.;,")
            tag_leading = False
            tags = self.rules.leading_tags
            if tags is not None:
                m = tags.search(s)
                if m and m.start() > 0:
                    tag_leading, asked = True, True
                    s = s[: m.start()].strip(" ,")
            parts = []
            raws = []
            for raw in (self._split_re.split(s) if s else []):
                raw = raw.strip(" ,")
                part = self._fillers_re.sub("", raw) if self._fillers_re is not None else raw
                if part:
                    parts.append(part)
                    raws.append(raw)
            starts = [self._is_question_start(p) for p in parts]
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                seg = _Segment(part, (context + " " + raws[i]).strip(), asked and last)
                seg.leading = tag_leading and last
                seg.lead_in = not last and any(starts[i + 1:])
                out.append(seg)
                context = "" if starts[i] else (context + " " + part).strip()
        if out:
            out[-1].last = True
        return out

    def _is_question_start(self, part: str) -> bool:
        m = self._first_word.match(part)
        return bool(m) and (m.group(1) in self.rules.question_words or m.group(1) in self.rules.auxiliaries or m.group(1) == "why")

    def _classify(self, seg: _Segment) -> None:
        r = self.rules
        s = seg.text
        m = self._first_word.match(s)
        first, second = (m.group(1), m.group(2) or "") if m else ("", "")
        why = r.mistakes.get("why")
        leading = r.mistakes.get("leading")
        lecture = r.mistakes.get("lecture")
        if why and why.search(s):
            seg.form = "why"
        elif re.search(r"\bwhy\b", s) and first not in r.auxiliaries:
            seg.form = "why"
        elif r.open_requests is not None and r.open_requests.match(s):
            seg.form = "open"
        elif first in r.question_words and not second.isdigit():
            seg.form = "open"
        elif first in r.auxiliaries and (not first.endswith("nt") or second in SUBJECTS):
            seg.form = "leading" if first.endswith("nt") else "closed"
        elif (not seg.lead_in and (seg.asked or seg.last) and r.conditional_openings is not None
              and r.conditional_openings.match(s) and WH_AFTER_CONDITION.search(s)):
            seg.form = "open"
        if seg.form in ("closed", "leading", "why") and leading and leading.search(s):
            seg.form = "leading" if seg.form != "why" else "why"
            seg.leading = seg.leading or seg.form == "leading"
        if seg.form == "leading":
            seg.leading = True
        if seg.leading and seg.form == "closed":
            seg.form = "leading"
        if seg.form in ("closed", "leading", "why") and lecture and lecture.anywhere and lecture.anywhere.search(s):
            seg.lecture = True
        if seg.form == "statement":
            conditional = r.conditional_openings is not None and r.conditional_openings.match(s)
            if lecture and lecture.search(s):
                seg.lecture, seg.form = True, "lecture"
            elif seg.leading or (leading and leading.search(s)):
                seg.leading, seg.form = True, "leading"
            elif seg.lead_in or conditional:
                seg.form = "none"
            elif seg.asked:
                seg.leading, seg.form = True, "leading"
            elif r.pleasantries is not None and r.pleasantries.match(s):
                seg.form = "none"
            elif len(s.split()) >= 2:
                seg.lecture, seg.form = True, "lecture"
            else:
                seg.form = "none"

    def _stage(self, text: str) -> str | None:
        for rule in self.rules.practice:
            if rule.exclude is not None and rule.exclude.search(text):
                continue
            if rule.matcher.search(text):
                return rule.label
        return None

    # --- suggestions -----------------------------------------------------------------------
    def _suggest(self, original: str, t: str, labels, segments, questions) -> str | None:
        person, with_ = self._topic(original, t)
        if "multiple" in labels and questions:
            first = questions[0]
            alone = self.coach(first.context)
            if alone.suggestion:
                return self._restore_names(alone.suggestion, original)
            return self._restore_names(_sentence(first.text), original)
        stages = [label for label in labels if label in PRACTICE]
        if stages:
            return self.question(stages[0], person, with_)
        rule = self._first_rule(labels, t, person)
        return self._fill(rule.say, person, with_) if rule else None

    def question(self, stage: str, person: str | None = None, with_: str = "") -> str | None:
        """The usual wording of a practice question, with the practitioner's topic if it fits."""
        for wording in self.rules.questions.get(stage, []):
            if "{person}" in wording and not person:
                continue
            return self._fill(wording, person, with_)
        return None

    def _restore_names(self, text: str, original: str) -> str:
        names = {w.lower(): w for w in re.findall(r"\b[A-Z][a-z]+\b", original) if w not in self.rules.not_names}
        return re.sub(r"\b[a-z]+\b", lambda m: names.get(m.group(0), m.group(0)), text)

    def _first_rule(self, labels, t, person, open_only: bool = False):
        for rule in self.rules.suggestions:
            if open_only and rule.matcher is not None:
                continue
            if rule.labels and not set(rule.labels) <= set(labels):
                continue
            if rule.matcher is not None and not rule.matcher.search(t):
                continue
            if rule.person and not person:
                continue
            return rule
        return None

    def _fill(self, say: str, person: str | None, with_: str) -> str:
        return say.replace("{with}", with_).replace("{person}", person or "they")

    def _topic(self, original: str, t: str) -> tuple[str | None, str]:
        """(person, " with Josh" | " at lunch" | "") from the practitioner's own words."""
        r = self.rules
        name = None
        words = re.findall(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|[.?!]", original)
        start = True
        for i, w in enumerate(words):
            if w in ".?!":
                start = True
                continue
            if (not start and w[0].isupper() and w[1:].islower() and w.isalpha() and w not in r.not_names
                    and (i + 1 >= len(words) or words[i + 1][:1] not in ("'", "\u2019"))):
                title = words[i - 1] if i > 0 and words[i - 1] in ("Mr", "Mrs", "Miss", "Ms", "Dr") else None
                name = f"{title} {w}" if title else w
                break
            if w in ("Mr", "Mrs", "Miss", "Ms", "Dr") and i + 1 < len(words) and words[i + 1][:1].isupper():
                name = f"{w} {words[i + 1]}"
                break
            start = False
        if name is None and r.topic_people is not None:
            m = r.topic_people.search(t)
            if m:
                name = m.group(0).replace("my ", "your ", 1)
        if name is None and r.topic_named is not None:
            m = r.topic_named.search(t)
            if m:
                name = m.group(0)
        if name:
            return name, f" with {name}"
        if r.topic_places is not None:
            m = r.topic_places.search(t)
            if m:
                return None, f" {m.group(0)}"
        if r.pronouns is not None:
            m = r.pronouns.search(t)
            if m:
                subject = {"him": "he", "her": "she"}.get(m.group(0))
                return subject, f" with {m.group(0)}"
        m = re.match(r"^(?:so\s+)?(he|she)\b", t)
        if m:
            return m.group(1), ""
        return None, ""


# A follow-up fragment that only continues the question before it: "Who has been affected?
# In what way?" is one question, as the IIRP asks it.
_ELLIPTICAL = re.compile(r"^(?:and\s+)?(?:in what ways?|how|how so|in which way)$")

_LABEL_ORDER = {label: i for i, label in enumerate(MISTAKES + ("open",) + PRACTICE)}


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip("?.! ") + "?" if text else text


_DEFAULT: Coach | None = None


def coach(text) -> Coaching:
    """Coach one question with the shipped rules."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Coach()
    return _DEFAULT.coach(text)
