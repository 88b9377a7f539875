"""Running a flow: one compiled ``transitions`` machine per flow, and a pure step function.

``FlowRunner(flow)`` compiles the flow once. ``runner.start()`` and
``runner.step(session, input)`` take the saved state (a :class:`Session`, which is plain
data stored as JSON) and return a :class:`Result`: the new session, the answers to record,
the prompts to show, and whether the flow finished. Nothing here touches storage or I/O.

Per conversation we do not build or attach a machine: each runner keeps one cursor
model attached to its machine and sets its state before firing a trigger (under a lock),
which costs a few microseconds where ``add_model``/``remove_model`` per step costs tens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from bot.engine.answers import Invalid, display, error_text, parse
from bot.engine.flow import CANCELLED, END, Flow, Option, Step
from bot import i18n
from bot.messages import msg

log = logging.getLogger(__name__)

COMMANDS = {"/back": "back", "/skip": "skip", "/repeat": "repeat", "/cancel": "cancel", "/help": "help"}


@dataclass(frozen=True)
class Input:
    kind: str = "answer"  # answer | back | skip | repeat | cancel | help
    text: str | None = None
    button: Any = None
    media: str | None = None  # the words came with a picture or file (not kept): its kind

    @classmethod
    def from_text(cls, text: str) -> "Input":
        word = (text or "").strip().split("@", 1)[0].lower()
        if word in COMMANDS:
            return cls(COMMANDS[word], text=text)
        return cls("answer", text=text)


# Who will see the answers, for ``{{ privacy }}`` and ``{{ who_can_see }}`` in a flow's texts:
# ``fn(flow, answers, mode) -> str`` (bot.audience decides; the consent answer changes it), set
# by the conversation service around each call. A runner used on its own speaks as for a
# conversation outside any case.
PRIVACY: ContextVar = ContextVar("privacy", default=None)


def _outside_any_case(flow, answers: dict, mode: str) -> str:
    from bot.audience import Case, sentence

    return sentence(flow, Case(), None, answers, mode)


# The practitioner's texts for the case (``{{ case.danger_statement }}``): ``fn() -> dict``, set by
# the conversation service around each call; outside any case there are none.
CASE: ContextVar = ContextVar("case", default=None)


class NotWritten(str):
    """What ``case.KEY`` gives where the worker has not written KEY: it reads as the plain
    sentence saying so (``{{ case.KEY }}``), and counts as false, so a flow can say it its own
    way instead (``{% if case.KEY %}...{% else %}...{% endif %}``, ``if: case.KEY``)."""

    def __bool__(self) -> bool:
        return False


class CaseText:
    """``case.KEY`` in a flow's texts: what the practitioner wrote for this case, or a plain
    sentence that they have not written it yet (messages.yaml, see :class:`NotWritten`), never
    an error. Read from the store only where a text uses it."""

    __slots__ = ("_load", "_values")

    def __init__(self, load=None):
        self._load = load
        self._values = None

    def _get(self, key: str) -> str:
        if self._values is None:
            self._values = dict(self._load() if self._load is not None else {})
        text = self._values.get(key)
        return text if text else NotWritten(msg("case_info.not_written"))

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        return self._get(key)

    def __getitem__(self, key: str) -> str:
        return self._get(str(key))

    def __str__(self) -> str:
        return ""


# The person's own earlier answers (``{{ previous.scale_now }}``): ``fn(step_id) -> value | None``,
# set by the conversation service around each call (bot.store.previous_answer decides which
# conversations count); a runner used on its own has none.
PREVIOUS: ContextVar = ContextVar("previous", default=None)


class Previous:
    """``previous.X`` in a flow's texts and conditions: this person's own most recent answer to
    a question with id X in an earlier conversation in the same case, or None (test it with
    ``previous.X is not none``). Read from the store only where a text uses it."""

    __slots__ = ("_load", "_seen")

    def __init__(self, load=None):
        self._load = load
        self._seen: dict = {}

    def __getattr__(self, key: str):
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in self._seen:
            self._seen[key] = self._load(key) if self._load is not None else None
        return self._seen[key]

    def __getitem__(self, key):
        return self.__getattr__(str(key))

    def __contains__(self, key) -> bool:
        return self.__getattr__(str(key)) is not None

    def __str__(self) -> str:
        return ""


class _Privacy:
    """Worked out only where a text uses it."""

    __slots__ = ("flow", "answers", "mode")

    def __init__(self, flow, answers: dict, mode: str):
        self.flow, self.answers, self.mode = flow, answers, mode

    def __str__(self) -> str:
        return (PRIVACY.get() or _outside_any_case)(self.flow, self.answers, self.mode)


@dataclass
class Session:
    state: str
    answers: dict[str, Any] = field(default_factory=dict)  # every answer given, for defaults after /back
    history: list[str] = field(default_factory=list)  # the questions answered on the path taken
    hold: bool = False  # paused after a safeguarding response, until the person carries on or stops
    # Messages due between questions (say steps, feedback on a choice) that a safeguarding
    # response held back: shown when the person carries on. Plain {"text", "kind", "step_id"}.
    held: list[dict] = field(default_factory=list)
    # Text typed for a question the person saw before the bot moved on, waiting for them to
    # say whether it answers the question now asked: {"text", "step"}.
    pending: dict | None = None

    def to_json(self) -> dict:
        data = {"state": self.state, "answers": self.answers, "history": self.history}
        if self.hold:
            data["hold"] = True
        if self.held:
            data["held"] = self.held
        if self.pending:
            data["pending"] = self.pending
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Session":
        return cls(data["state"], dict(data.get("answers", {})), list(data.get("history", [])), bool(data.get("hold")),
                   [dict(h) for h in data.get("held", ())], dict(data["pending"]) if data.get("pending") else None)

    def copy(self) -> "Session":
        return Session(self.state, dict(self.answers), list(self.history), self.hold, [dict(h) for h in self.held],
                       dict(self.pending) if self.pending else None)

    def off_path(self) -> list[str]:
        """Answers given on a branch since abandoned with /back (not the question now asked)."""
        on_path = set(self.history)
        on_path.add(self.state)
        return [sid for sid in self.answers if sid not in on_path]


def progress_text(progress: tuple[int, int | None]) -> str:
    """"Question 3 of 7", or "Question 3" where the total depends on the path."""
    n, total = progress
    return msg("navigation.progress", n=n, total=total) if total else msg("navigation.progress_open", n=n)


@dataclass
class Prompt:
    text: str
    kind: str = "message"  # message | question | error | info | worker_note (never shown to the person)
    step_id: str | None = None
    type: str | None = None
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    min_label: str | None = None
    max_label: str | None = None
    optional: bool = False
    progress: tuple[int, int | None] | None = None  # (n, total or None), see FlowRunner.progress
    default: str | None = None
    lang: str | None = None  # the language it was written in (bot/i18n): its hints and buttons too
    ref: int | None = None  # (confirm) which waiting text it asks about: its transcript line id

    def __post_init__(self) -> None:
        if self.lang is None:
            self.lang = i18n.current()

    def plain(self) -> str:
        """The canonical text form, as stored in transcripts whatever the frontend."""
        if self.lang == i18n.current():  # the usual case: already speaking its language
            return self._plain()
        with i18n.using(self.lang):
            return self._plain()

    def _plain(self) -> str:
        lines = []
        if self.progress:
            lines.append(progress_text(self.progress))
        lines.append(self.text)
        if self.type in ("choice", "multi"):
            lines.extend(f"{i}. {opt.label}" for i, opt in enumerate(self.options, 1))
        if self.type == "scale":
            lines.append(msg("navigation.scale_hint", min=self.min, max=self.max))
            if self.min_label or self.max_label:
                lines.append(msg("navigation.scale_ends", min=self.min, max=self.max,
                                 min_label=self.min_label or "", max_label=self.max_label or ""))
        if self.optional:
            lines.append(msg("navigation.optional_hint"))
        if self.default is not None:
            lines.append(msg("navigation.earlier_answer", answer=self.default))
        return "\n".join(lines)


@dataclass
class Record:
    step_id: str
    value: Any
    raw: str | None
    shown: str


@dataclass
class Result:
    session: Session
    prompts: list[Prompt]
    records: list[Record] = field(default_factory=list)
    status: str = "in_progress"  # in_progress | completed | cancelled
    retracted: list[str] = field(default_factory=list)  # answers now off the path taken
    accepted: bool = True  # False when the input was refused and the question re-asked
    closed: bool = False  # the conversation had already ended; nothing was done

    @property
    def finished(self) -> bool:
        return self.status != "in_progress"


class _Shown(Mapping):
    """``shown.step_id`` in templates: the answer as the person saw it (labels, not ids)."""

    def __init__(self, flow: Flow, answers: dict):
        self._flow, self._answers = flow, answers

    def __getitem__(self, key):
        return display(self._flow.by_id[key], self._answers[key])

    def __iter__(self):
        return iter(self._answers)

    def __len__(self):
        return len(self._answers)


class _Cursor:
    """The light model attached to a flow's machine; carries the context for conditions."""

    state: str
    context: dict


def _branch_condition(branch):
    condition = lambda event: branch.test(event.model.context)  # noqa: E731
    condition.test = branch.test  # for FlowRunner._moves: the same test, without the event
    return condition


class FlowRunner:
    def __init__(self, flow: Flow):
        self.flow = flow
        states = [s.id for s in flow.steps] + [END, CANCELLED]
        self.machine = Machine(
            model=None, states=states, initial=flow.first, auto_transitions=False,
            send_event=True, ignore_invalid_triggers=False,
        )
        for i, step in enumerate(flow.steps):
            if step.next:
                for branch in step.next:
                    conditions = [_branch_condition(branch)] if branch.test else []
                    self.machine.add_transition("advance", step.id, branch.goto, conditions=conditions)
            else:
                following = flow.steps[i + 1].id if i + 1 < len(flow.steps) else END
                self.machine.add_transition("advance", step.id, following)
        self.machine.add_transition("cancel", [s.id for s in flow.steps], CANCELLED)
        self._cursor = _Cursor()
        self.machine.add_model(self._cursor, initial=flow.first)
        self._lock = threading.Lock()
        self._moves = self._compile_moves()
        self.total = self._fixed_total()

    def _compile_moves(self) -> dict[tuple[str, str], tuple] | None:
        """The machine's transitions as a table read once here: (state, trigger) -> the
        candidate moves in the machine's order, each ``(((test, target), ...), destination)``.
        Firing a trigger is then a lookup and the branch tests, as the machine would run them
        (the first transition whose conditions all hold wins; none: the state stays), without
        building the machine's event objects on every step. None (fire through the machine)
        if any transition or state carries a callback the table would not run."""
        machine = self.machine
        if machine.before_state_change or machine.after_state_change or machine.prepare_event \
                or machine.finalize_event or machine.on_exception:
            return None
        if any(state.on_enter or state.on_exit for state in machine.states.values()):
            return None
        moves: dict[tuple[str, str], tuple] = {}
        for trigger, event in machine.events.items():
            for source, transitions in event.transitions.items():
                entries = []
                for t in transitions:
                    if t.prepare or t.before or t.after or t.dest is None:
                        return None
                    tests = []
                    for c in t.conditions:
                        test = getattr(c.func, "test", None)
                        if test is None:
                            return None
                        tests.append((test, c.target))
                    entries.append((tuple(tests), t.dest))
                moves[(source, trigger)] = tuple(entries)
        return moves

    def _fixed_total(self) -> int | None:
        """The number of questions every way through the flow asks, if it is the same on
        every path (then "Question n of N" can never go wrong); None when branches ask
        different numbers of questions or the flow loops back on itself (then only
        "Question n" is shown, so the total never changes mid-flow)."""
        succ: dict[str, list[str]] = {}
        for i, step in enumerate(self.flow.steps):
            if step.next:
                succ[step.id] = [b.goto for b in step.next]
            else:
                succ[step.id] = [self.flow.steps[i + 1].id if i + 1 < len(self.flow.steps) else END]
        memo: dict[str, tuple[int, int]] = {END: (0, 0)}
        visiting: set[str] = set()

        def span(sid: str) -> tuple[int, int]:
            """(fewest, most) questions from this step to the end, itself included."""
            if sid in memo:
                return memo[sid]
            if sid in visiting:
                raise RecursionError
            visiting.add(sid)
            spans = [span(t) for t in succ[sid]] or [(0, 0)]
            visiting.discard(sid)
            own = 1 if self.flow.by_id[sid].is_question else 0
            memo[sid] = (min(lo for lo, _ in spans) + own, max(hi for _, hi in spans) + own)
            return memo[sid]

        try:
            fewest, most = span(self.flow.first)
        except RecursionError:
            return None
        return most if fewest == most else None

    def progress(self, step: Step, session: Session) -> tuple[int, int | None] | None:
        """(n, total): n counts the questions asked on the path taken, this one included, so
        it goes up by one with each answer; total only where no path can change it. A
        child's flow shows no counter."""
        if self.flow.audience == "child":
            return None
        return len(session.history) + 1, self.total

    # -- helpers -------------------------------------------------------------------
    def context(self, answers: dict, answer: Any = None) -> dict:
        return {"answers": answers, "answer": answer, "shown": _Shown(self.flow, answers), "case": CaseText(CASE.get()),
                "privacy": _Privacy(self.flow, answers, "say"), "who_can_see": _Privacy(self.flow, answers, "after"),
                "previous": Previous(PREVIOUS.get())}

    def _fire(self, state: str, trigger: str, context) -> str:
        """Fire ``trigger`` from ``state``; ``context`` is the conditions' context, or a
        function making it (made only if a condition is there to read it)."""
        moves = self._moves.get((state, trigger)) if self._moves is not None else None
        if moves is None:  # not a move the table holds: the machine says what happens (or raises)
            return self._fire_machine(state, trigger, context)
        for tests, dest in moves:
            for test, target in tests:
                if callable(context):
                    context = context()
                if not test(context) == target:
                    break
            else:
                return dest
        return state  # no condition held: the machine stays where it is

    def _fire_machine(self, state: str, trigger: str, context) -> str:
        if callable(context):
            context = context()
        with self._lock:
            self.machine.set_state(state, self._cursor)
            self._cursor.context = context
            self._cursor.trigger(trigger)
            return self._cursor.state

    def offered(self, step: Step, answers: dict) -> tuple[Option, ...]:
        """The options a choice offers now: those no ``exclude:`` names and whose ``if:`` holds
        (Three Houses never offers the house already chosen). Should a flow leave nothing at all,
        every option is offered rather than a question nobody can answer."""
        if not step.options or (step.exclude is None and all(o.test is None for o in step.options)):
            return step.options
        ctx = self.context(answers)
        gone: set[str] = set()
        if step.exclude is not None:
            value = step.exclude(ctx)
            items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
            gone = {str(v) for v in items if v is not None and not isinstance(v, bool)}
        left = tuple(o for o in step.options if o.id not in gone and (o.test is None or o.test(ctx)))
        if not left:
            log.warning("every option was filtered out; offering them all",
                        extra={"flow": self.flow.id, "step": step.id})
            return step.options
        return left

    def _render(self, render, answers: dict) -> str:
        """A text of the flow: words without markup as they are, a template in a context."""
        fixed = getattr(render, "fixed", None)
        return fixed if fixed is not None else render(self.context(answers))

    def question(self, step: Step, session: Session) -> Prompt:
        earlier = session.answers.get(step.id)
        earlier = display(step, earlier) if earlier is not None else None
        return Prompt(
            text=self._render(step.render, session.answers), kind="question", step_id=step.id, type=step.type,
            options=self.offered(step, session.answers), min=step.min, max=step.max, min_label=step.min_label,
            max_label=step.max_label, optional=step.optional,
            progress=self.progress(step, session), default=earlier,
        )

    def _walk(self, session: Session, prompts: list[Prompt]) -> str:
        """Show say steps from the current state until a question or the end."""
        status = "in_progress"
        last_said = False
        for _ in range(len(self.flow.steps) + 1):
            if session.state == END:
                status = "completed"
                break
            step = self.flow.by_id[session.state]
            if step.render_note is not None:  # the service keeps it from anyone but the worker
                note = step.render_note(self.context(session.answers))
                prompts.append(Prompt(msg("worker_present.note", note=note), kind="worker_note", step_id=step.id))
            if step.is_question:
                prompts.append(self.question(step, session))
                return status
            prompts.append(Prompt(self._render(step.render, session.answers), step_id=step.id))
            last_said = True
            session.state = self._fire(session.state, "advance", lambda: self.context(session.answers))
            if session.state == END:
                status = "completed"
                break
            last_said = False
        else:  # a loop made only of say steps: stop rather than spin
            status = "completed"
            session.state = END
        if not last_said:
            prompts.append(Prompt(msg("navigation.finished")))
        return status

    # -- the public, pure API ----------------------------------------------------------
    def start(self) -> Result:
        session = Session(self.flow.first)
        prompts: list[Prompt] = []
        if self.flow.render_intro:
            prompts.append(Prompt(self.flow.render_intro(self.context({})), kind="info"))
        status = self._walk(session, prompts)
        return Result(session, prompts, status=status)

    def current(self, session: Session) -> list[Prompt]:
        """The prompt to show again on resume (nothing once the conversation ended)."""
        if session.state in (END, CANCELLED):
            return []
        return [self.question(self.flow.by_id[session.state], session)]

    def step(self, session: Session, inp: Input) -> Result:
        if session.state in (END, CANCELLED) or session.state not in self.flow.by_id:
            return Result(session, [], status="completed" if session.state == END else "cancelled",
                          accepted=False, closed=True)
        session = session.copy()
        step = self.flow.by_id[session.state]
        if inp.kind == "cancel":
            retracted = self._prune(session)
            session.state = self._fire(session.state, "cancel", self.context(session.answers))
            return Result(session, [Prompt(self.stop_message(session))], status="cancelled", retracted=retracted)
        if inp.kind == "repeat":
            return Result(session, [self.question(step, session)], accepted=False)
        if inp.kind == "help":
            text = msg("navigation.help") if not step.help else f"{step.help}\n\n{msg('navigation.help')}"
            return Result(session, [Prompt(text, kind="info"), self.question(step, session)], accepted=False)
        if inp.kind == "back":
            if not session.history:
                return self._refuse(session, step, msg("validation.nothing_to_go_back_to"))
            session.state = session.history.pop()
            return Result(session, [self.question(self.flow.by_id[session.state], session)],
                          retracted=session.off_path())
        if inp.kind == "skip":
            if not step.optional:
                return self._refuse(session, step, msg("validation.cannot_skip"))
            value, raw = None, None
        else:
            try:
                value = parse(step, inp.text, inp.button, self.offered(step, session.answers))
            except Invalid as problem:
                if problem.rule == "required" and step.optional:
                    return self._refuse(session, step, msg("validation.required"))
                return self._refuse(session, step, error_text(step, problem))
            raw = inp.text if inp.text is not None else str(inp.button)
            if step.checks:
                ctx = self.context(session.answers, value)
                for check in step.checks:
                    if check.test(ctx):
                        return self._refuse(session, step, check.message(ctx))
        session.answers[step.id] = value
        session.history.append(step.id)
        record = Record(step.id, value, raw, display(step, value))
        session.state = self._fire(step.id, "advance", lambda: self.context(session.answers, value))
        prompts: list[Prompt] = []
        status = self._walk(session, prompts)
        # After /back and a different answer, answers on the abandoned branch stop counting.
        retracted = self._prune(session) if status == "completed" else session.off_path()
        return Result(session, prompts, [record], status=status, retracted=retracted)

    @staticmethod
    def _prune(session: Session) -> list[str]:
        """At the end, keep only the answers on the path taken."""
        on_path = set(session.history)
        gone = [sid for sid in session.answers if sid not in on_path]
        for sid in gone:
            del session.answers[sid]
        return gone

    def stop_message(self, session: Session) -> str:
        if self.flow.render_stop is not None:
            return self.flow.render_stop(self.context(session.answers))
        return msg(f"navigation.cancelled.{self.flow.audience}",
                   who_can_see=str(_Privacy(self.flow, session.answers, "after")))

    def _refuse(self, session: Session, step: Step, text: str) -> Result:
        return Result(session, [Prompt(text, kind="error"), self.question(step, session)], accepted=False)


def replay(runner: FlowRunner, inputs) -> Result:
    """Run a whole list of inputs from the start (used by tests and benchmarks)."""
    result = runner.start()
    session = result.session
    for inp in inputs:
        result = runner.step(session, inp if isinstance(inp, Input) else Input.from_text(inp))
        session = result.session
    return result


__all__ = ["CASE", "CaseText", "PREVIOUS", "FlowRunner", "Input", "Previous", "Prompt", "Record", "Result", "Session",
           "progress_text", "replay"]
