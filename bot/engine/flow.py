"""The typed flow model that the loader builds from YAML and the engine runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from bot.engine.yamlpos import Pos

AUDIENCES = ("family", "child", "practitioner")
# The coordinator's summary (bot/review/summary.py): a question with ``summary: SECTION`` feeds
# that section, in this order. Headings are in bot/messages.yaml (summary.sections).
SUMMARY_SECTIONS = ("attendance", "should_not_come", "when_where", "language", "access", "transport", "childcare",
                    "food", "young_person_views", "worries_strengths")
QUESTION_TYPES = ("text", "choice", "multi", "scale", "yesno", "number", "date")
STEP_TYPES = ("say",) + QUESTION_TYPES
END = "__end__"
CANCELLED = "__cancelled__"


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    # ``if:`` on an option: offered only while this condition over earlier answers holds
    condition: str | None = field(default=None, compare=False)
    test: Callable[[dict], bool] | None = field(default=None, compare=False, repr=False)


@dataclass
class Branch:
    goto: str  # a step id or END
    condition: str | None = None
    test: Callable[[dict], bool] | None = None
    pos: Pos | None = None


@dataclass
class Check:
    condition: str
    error: str
    test: Callable[[dict], bool]
    render: Callable[[dict], str] | None = None  # the error, rendered in the sandbox

    def message(self, context: dict) -> str:
        return self.render(context) if self.render else self.error


@dataclass(frozen=True)
class Remind:
    """``remind: {who: person|practitioner|both, before: 1d, text: ...}`` on a date question."""
    who: str  # person | practitioner | both
    before_hours: float
    text: str  # to the person; never carries an answer (the linter refuses templates in it)


@dataclass
class Step:
    id: str
    type: str
    text: str
    render: Callable[[dict], str]
    pos: Pos
    optional: bool = False
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    min_label: str | None = None
    max_label: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: Any = None  # compiled re.Pattern
    min_choices: int | None = None
    max_choices: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    error_renders: dict[str, Callable[[dict], str]] = field(default_factory=dict)  # the same, in the sandbox
    checks: list[Check] = field(default_factory=list)
    next: list[Branch] = field(default_factory=list)
    help: str | None = None
    expects_concerns: bool = False  # a worries question: an alert thanks the person instead of interrupting
    number: int = 0  # position among the flow's questions, 1-based; 0 for say steps
    remind: "Remind | None" = None  # a date question's reminder (bot/schedule.py)
    allow_past: bool = False  # a date question that accepts past dates ("When did it happen?")
    # ``exclude:`` on a choice/multi: an expression over earlier answers giving an option id (or a
    # list of ids) not to offer, e.g. ``exclude: answers.first_house``
    summary: str | None = None  # the coordinator's summary section this answer feeds (SUMMARY_SECTIONS)
    # ``note_for_worker:`` shown to the worker (transcripts, exports, a worker-present session), never the person
    note: str | None = None
    render_note: Callable[[dict], str] | None = None
    exclude: Callable[[dict], Any] | None = None
    exclude_source: str | None = None

    @property
    def is_question(self) -> bool:
        return self.type != "say"

    def option(self, option_id: str) -> Option | None:
        for opt in self.options:
            if opt.id == option_id:
                return opt
        return None


@dataclass
class Flow:
    id: str
    version: int
    title: str
    audience: str
    steps: list[Step]
    source: str
    path: str
    description: str = ""
    intro: str | None = None
    render_intro: Callable[[dict], str] | None = None
    render_stop: Callable[[dict], str] | None = None  # what /cancel says (default: by audience)
    consent_step: str | None = None  # a yes/no step: until it is answered yes, answers are not shown to others
    without_consent: str = "nobody"  # who else may read without consent: nobody | practitioner
    # consent.which: the multiple-choice step where the person says WHICH parts may be shown,
    # and the steps each of its options covers; a part not chosen stays with those who may read
    # without consent (Three Houses: the houses the child did not choose to share).
    consent_which: str | None = None
    consent_parts: dict = field(default_factory=dict)  # option id -> tuple of step ids
    consent_every: tuple[str, ...] = ()  # steps about every part (notes): shown only when every part is
    respondents: tuple[str, ...] = ()  # who may answer (bot/respondent.py); () = from the audience
    requires: tuple[str, ...] = ()  # e.g. ("worker_present",): only with the worker there, never a link
    languages: tuple[str, ...] = ("en",)  # the languages every text is written in (issue 19)
    reviewed: dict = field(default_factory=lambda: {"en": True})  # language -> checked by a qualified translator
    lang: str = "en"  # the language of this variant's wording (the loader builds one per language)
    variants: dict = field(default_factory=dict, repr=False, compare=False)  # language -> Flow (on the English flow)

    def in_language(self, tag: str | None) -> "Flow":
        """This flow's wording in ``tag``; English when the flow has no such translation."""
        return self.variants.get(tag or "en") or self.variants.get("en") or self

    def __post_init__(self) -> None:
        self.warnings: list = []  # the linter's "file:line:col: warning: ..." (the flow still runs)
        self.case_keys: tuple[str, ...] = ()  # the case.KEY texts it shows (written per case by the worker)
        self.by_id = {step.id: step for step in self.steps}
        self.question_count = sum(1 for s in self.steps if s.is_question)

    @cached_property
    def sha(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def first(self) -> str:
        return self.steps[0].id if self.steps else END

    def step(self, step_id: str) -> Step:
        return self.by_id[step_id]
