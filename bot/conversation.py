"""The conversation service: load the conversation, safeguard, run one engine step, commit.

Every frontend calls this and only this. One input = one transaction holding the answer,
the transcript lines (what was received and every prompt shown), the new state, any
safeguarding alert and the processed-input key. The prompts are returned only after the
commit, so a reply the person sees always describes saved state. A repeated input key
changes nothing and returns the reply given the first time.
"""

from __future__ import annotations

import functools
import inspect
from concurrent.futures import Future

import re
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.audience import case_of, respondent_for, sentence
from bot.engine.answers import Invalid, display, fold, parse, vocabulary
from bot.engine.flow import Flow, Option
from bot.engine.library import FlowLibrary
from bot.engine.runner import CASE, PREVIOUS, PRIVACY, FlowRunner, Input, Prompt, Result, Session
from bot import i18n
from bot import respondent as respondents
from bot.messages import messages, msg
from bot.reading import reason, split_tiers
from bot.store import Conversation, Store, from_iso, iso, now


class Detector(Protocol):
    def detect(self, text: str) -> list: ...
    def response(self, audience: str) -> str: ...


@dataclass
class Reply:
    conversation_id: int | None
    prompts: list[Prompt]
    status: str = "in_progress"
    accepted: bool = True
    duplicate: bool = False  # this input key was handled before; nothing changed
    delivered: bool = False  # (duplicates) the first reply is known to have reached the person
    closed: bool = False  # the input was for a conversation or question that is no longer open
    alerts: list[int] = field(default_factory=list)  # safeguarding alerts raised by this input
    step_id: str | None = None  # the question now waiting for an answer
    answered: str | None = None  # the accepted answer as read back ("Mum", "7", "Yes")

    def to_json(self) -> dict:
        """Plain JSON (stored with the input, to answer a re-delivery); written by hand,
        since dataclasses.asdict's deep copies cost a fifth of a step."""
        data = {k: v for k, v in vars(self).items() if k != "prompts"}
        data["prompts"] = [_prompt_json(p) for p in self.prompts]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Reply":
        prompts = []
        for p in data.get("prompts", []):
            p = dict(p)
            p["options"] = tuple(Option(**o) for o in p.get("options", ()))
            if p.get("progress"):
                p["progress"] = tuple(p["progress"])
            prompts.append(Prompt(**p))
        data = dict(data, prompts=prompts)
        return cls(**data)


def _prompt_json(p: Prompt) -> dict:
    data = {k: v for k, v in vars(p).items() if v is not None and v != () and v is not False}
    if p.options:
        data["options"] = [{"id": o.id, "label": o.label} for o in p.options]
    return data


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text as it can be stored: bytes a terminal could not decode (lone surrogates from
    Python's surrogateescape) become U+FFFD; everything else is kept exactly as typed."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _waiting_step(result_session: Session, flow: Flow) -> str | None:
    state = result_session.state
    return state if state in flow.by_id else None


def _for_respondent(conv: Conversation | None, prompts: list[Prompt]) -> list[Prompt]:
    """A child answering sees no question counter, whatever the flow's audience (a flow
    for children shows none anyway)."""
    if getattr(conv, "respondent", None) == "child":
        for p in prompts:
            p.progress = None
    return prompts


# Question types whose answers are picked from a closed set: an option's label, id or
# number typed there is an answer, not free text, so it is not screened as a disclosure.
_PICKED = ("choice", "multi", "yesno", "scale")


def _speaking(method):
    """Run a service entry point in the person's language (bot/i18n): everything it says,
    and every prompt it returns, is in the language of the conversation (or of the person)."""

    @functools.wraps(method)
    def wrapper(self, person_id, *args, **kwargs):
        with i18n.using(self.language_of(person_id, kwargs.get("conversation_id"))):
            return method(self, person_id, *args, **kwargs)

    return wrapper


class _Speaking:
    """What the runner reads while it works on one input (ConversationService._privacy):
    ``{{ privacy }}`` (who sees the answers), ``{{ case.KEY }}``, ``{{ previous.X }}`` and, for
    date answers, the schedule's clock. A plain object, not a generator: one per input."""

    __slots__ = ("service", "person_id", "case_id", "conv", "today", "facts", "tokens")

    def __init__(self, service: "ConversationService", person_id: int, case_id: int | None, conv, today=None):
        self.service, self.person_id, self.case_id, self.conv, self.today = service, person_id, case_id, conv, today
        self.facts = _Speaking  # not read yet (case_of may return None)

    def say(self, flow: Flow, answers: dict, mode: str) -> str:
        if self.facts is _Speaking:
            self.facts = case_of(self.service.store, self.case_id, self.person_id)
        return sentence(flow, self.facts, respondent_for(self.conv, flow), answers, mode)

    def case_texts(self) -> dict:  # {{ case.KEY }}: the practitioner's texts for the case
        return self.service.store.case_info(self.case_id) if self.case_id is not None else {}

    def previous(self, step_id: str):  # {{ previous.X }}: this person's own earlier answer in this case
        return self.service.store.previous_answer(self.person_id, self.case_id, step_id,
                                                  before=getattr(self.conv, "id", None))

    def __enter__(self) -> None:
        today = None
        if self.today is not None:
            from bot.engine.dates import TODAY

            today = (TODAY, TODAY.set(self.today))
        self.tokens = (PRIVACY.set(self.say), CASE.set(self.case_texts), PREVIOUS.set(self.previous), today)

    def __exit__(self, *exc) -> bool:
        privacy, case, previous, today = self.tokens
        if today is not None:
            today[0].reset(today[1])
        PREVIOUS.reset(previous)
        CASE.reset(case)
        PRIVACY.reset(privacy)
        return False


class ConversationService:
    def __init__(self, store: Store, library: FlowLibrary, *, safeguarding: Detector | None = None, schedule=None,
                 leads_configured: bool = True, out_of_hours: str | None = None,
                 allow_unreviewed_languages: bool = False, detector_worker=None, handback_minutes: float = 10.0):
        # detector_worker: a bot.safeguarding_worker.DetectorWorker, where prescreen sends the
        # words (the detector then runs in another process, on the other core), or None.
        self.detector_worker = detector_worker
        # allow_unreviewed_languages: offer translations no qualified translator has checked
        # (and say so to the person, in their language); otherwise only reviewed ones.
        self.allow_unreviewed_languages = allow_unreviewed_languages
        self.store = store
        self.library = library
        self.safeguarding = safeguarding
        self.schedule = schedule  # bot.schedule.Schedule: reminders written with the answer that causes them
        # Whether a disclosure here reaches a named person (the terminal without a
        # configuration does not: the help then says so), and the council's out-of-hours number.
        self.leads_configured = leads_configured
        self.out_of_hours = out_of_hours
        # For this long after a worker-present session ends, the person who answered may still
        # be holding the worker's device: words typed there are taken as theirs (_handed_back).
        self.handback = timedelta(minutes=handback_minutes)
        self.clock = lambda: datetime.now(timezone.utc)  # the hand-back's clock (tests move it)
        # Detection done before the hand-off to the store thread (:meth:`prescreen`), by input
        # key; and per person the runner and session their last input left (to guess there,
        # with no database, whether words pick an option and the detector's context).
        self._prescreened: dict[str, tuple] = {}
        self._recent: dict[int, tuple[FlowRunner, Session]] = {}

    # -- people and flows ------------------------------------------------------------
    def person(self, key: str, display_name: str | None = None) -> int:
        with self.store.transaction():
            return self.store.person(key, display_name)

    def present_person(self, case_ref: str) -> int:
        """A new person for someone answering on their worker's device (a worker-present
        session): the answers are theirs, not the worker's, though they have no account."""
        import secrets

        with self.store.transaction():
            return self.store.person(f"present:{secrets.token_hex(8)}", msg("worker_present.person", ref=case_ref))

    def flows(self) -> list[Flow]:
        return list(self.library)

    def active(self, person_id: int) -> Conversation | None:
        return self.store.active_conversation(person_id)

    def flow_of(self, person_id: int, conversation_id: int) -> tuple[Conversation, Flow] | None:
        """A conversation of this person's (or one they are present at, running it on their
        device) and the flow it runs on (None if neither)."""
        conv = self.store.conversation(conversation_id)
        if conv is None or person_id not in (conv.person_id, conv.present_id):
            return None
        return conv, self.runner_for(conv).flow

    def runner_for(self, conv: Conversation) -> FlowRunner:
        # kept on the conversation object (read afresh for each input) for the several asks of one input
        found = conv.__dict__.get("_runner")
        if found is not None and found[0] == (conv.flow_sha, conv.language):
            return found[1]
        runner = self.library.runner_for(conv.flow_sha, lambda: self.store.snapshot_source(conv.flow_sha),
                                         f"<{conv.flow_id} v{conv.flow_version}>", lang=conv.language)
        conv.__dict__["_runner"] = ((conv.flow_sha, conv.language), runner)
        return runner

    # -- languages (issue 19) ------------------------------------------------------------
    def languages_offered(self) -> list[str]:
        """The languages a person may choose: reviewed ones, and unreviewed ones only where
        the deployment allows them."""
        return i18n.offered(self.allow_unreviewed_languages)

    def language_of(self, person_id: int, conversation_id: int | None = None) -> str:
        """The language to speak to this person in: their conversation's (the named one, or
        their open one), else the one they chose, else English."""
        conv = self.store.conversation(conversation_id) if conversation_id is not None else \
            self.store.active_conversation(person_id)
        if conv is not None and conv.language:
            return conv.language
        return self.store.person_language(person_id) or i18n.DEFAULT

    def unreviewed(self, tag: str, flow: Flow | None = None) -> bool:
        """Whether what the person reads in ``tag`` includes a translation nobody qualified has checked."""
        if tag == i18n.DEFAULT:
            return False
        return not i18n.language(tag).reviewed or (flow is not None and tag in flow.languages
                                                   and not flow.reviewed.get(tag, False))

    def set_language(self, person_id: int, tag: str, *, input_key: str | None = None) -> Reply:
        """The person chose ``tag`` (/language, or accepting the language Telegram suggested):
        kept for them and for their open conversation, whose waiting question is shown again
        at once in the new language (the answers so far are kept as they were written)."""
        if tag not in self.languages_offered():
            raise ValueError(tag)
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            self.store.set_person_language(person_id, tag)
            conv = self.store.active_conversation(person_id)
            with i18n.using(tag):
                prompts = [Prompt(msg("language.chosen", name=i18n.own_name(tag)), kind="info")]
                if conv is None or conv.status != "in_progress":
                    if self.unreviewed(tag):
                        prompts.append(Prompt(msg("language.unreviewed"), kind="info"))
                    reply = Reply(conv.id if conv else None, prompts, "none" if conv is None else conv.status)
                else:
                    self.store.set_conversation_language(conv.id, tag)
                    conv = self.store.conversation(conv.id)
                    runner = self.runner_for(conv)
                    if runner.flow.lang != tag:
                        prompts.append(Prompt(msg("language.flow_not_translated", name=i18n.own_name(tag)), kind="info"))
                    elif self.unreviewed(tag, runner.flow):
                        prompts.append(Prompt(msg("language.unreviewed"), kind="info"))
                    self.store.add_line(conv.id, "in", f"(language: {tag})", kind="command", input_key=input_key)
                    now_asked = self.current(person_id)
                    prompts.extend(now_asked.prompts if now_asked else [])
                    self._write_prompts(conv.id, prompts, conv)
                    reply = Reply(conv.id, prompts, conv.status, step_id=now_asked.step_id if now_asked else None)
            if input_key:
                self.store.mark_input(input_key, reply.conversation_id, reply.to_json())
        return reply

    def _privacy(self, person_id: int, case_id: int | None, conv: Conversation | None = None,
                 today: bool = False) -> "_Speaking":
        """While the runner works, ``{{ privacy }}`` in the flow's texts says who sees the
        answers, decided by bot.audience from the case, the respondent and the consent answer
        (and ``{{ case.KEY }}``, ``{{ previous.X }}``; with ``today``, date answers such as "next
        Tuesday" count from the schedule's clock, so tests can move it)."""
        return _Speaking(self, person_id, case_id, conv, self.schedule.today if today and self.schedule else None)

    # -- the two entry points ----------------------------------------------------------
    def respondent_choices(self, flow_id: str) -> list[tuple[str, str]] | None:
        """What to ask before starting ("Who is filling this in?"): (respondent, label) for a
        flow that admits several, or None when the flow admits only one."""
        flow = self.library.get(flow_id)
        if flow is None or not respondents.needs_asking(flow, None):
            return None
        return respondents.choices(flow)

    def start(self, person_id: int, flow_id: str, *, input_key: str | None = None, frontend: str | None = None,
              chat_id: str | None = None, case_id: int | None = None, respondent: str | None = None,
              practice: bool = False, present_id: int | None = None, language: str | None = None) -> Reply:
        """Start a flow. ``respondent`` is who is answering (None: the flow's only one, or not
        known); ``practice`` marks a trial that is not a case (its alerts go to nobody);
        ``present_id`` is the worker present when someone answers on the worker's device.
        A respondent the flow is not for raises ValueError with a message for people."""
        flow = self.library.get(flow_id)
        if flow is None:
            raise KeyError(flow_id)
        if respondent is not None and respondent not in respondents.admitted(flow):
            raise ValueError(respondents.refusal(flow, respondent))
        respondent = respondent or respondents.default_for(flow)
        language = language if i18n.known(language) else (self.store.person_language(person_id) or i18n.DEFAULT)
        with i18n.using(language):
            return self._start(person_id, flow, input_key=input_key, frontend=frontend, chat_id=chat_id,
                               case_id=case_id, respondent=respondent, practice=practice, present_id=present_id,
                               language=language)

    def _start(self, person_id: int, flow: Flow, *, input_key, frontend, chat_id, case_id, respondent, practice,
               present_id, language: str) -> Reply:
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            runner = self.library.runner(flow, language)
            with self._privacy(person_id, case_id, SimpleNamespace(respondent=respondent)):
                result = runner.start()
            if self.unreviewed(language, flow):  # said in their language, before anything else
                result.prompts.insert(0, Prompt(msg("language.unreviewed"), kind="info"))
            self.store.save_snapshot(flow.sha, flow.id, flow.version, flow.source)
            conv_id = self.store.create_conversation(
                person_id=person_id, flow_id=flow.id, flow_version=flow.version, flow_sha=flow.sha,
                state=result.session.state, session=result.session.to_json(), status=result.status,
                frontend=frontend, chat_id=chat_id, case_id=case_id, respondent=respondent, practice=practice,
                present_id=present_id, language=language if language != i18n.DEFAULT else None,
            )
            self.store.add_line(conv_id, "in", f"(started {flow.title})", kind="command", input_key=input_key)
            # what _write_prompts reads of it (the whole conversation, read back, only for the schedule)
            conv = SimpleNamespace(respondent=respondent, present_id=present_id) if self.schedule is None \
                else self.store.conversation(conv_id)
            self._write_prompts(conv_id, result.prompts, conv)
            if self.schedule is not None:
                self.schedule.after_step(conv, result.status)
            if self.safeguarding is not None:
                self._remember(person_id, runner, result.session)
            reply = Reply(conv_id, result.prompts, result.status, step_id=_waiting_step(result.session, flow))
            if input_key:
                self.store.mark_input(input_key, conv_id, reply.to_json())
        return reply

    def handle(self, person_id: int, inp: Input, *, input_key: str | None = None,
               conversation_id: int | None = None, expect_step: str | None = None,
               seen: tuple[int | None, str | None] | None = None, message: str | None = None) -> Reply:
        """Apply one input to the person's conversation (the active one unless named).

        Free text is checked for a possible safeguarding disclosure first, whatever the
        state: in a conversation, at a button question, or with no conversation at all;
        only an option picked by its label, id or number at the question being answered
        is not free text.

        ``expect_step`` (buttons): the input is for that question only; if the conversation
        has moved on, nothing is done (``closed``). ``seen`` (typed text): the question the
        person last saw, as (conversation id, step id), (None, None) when it is known only
        that they had not seen the current one. If the conversation has moved on, the text
        is kept in the transcript and the person is asked whether it answers the question
        now asked; it is never silently applied to a question they had not seen.

        ``message``: the frontend's reference to the message this input was, kept with it so
        that an edit of that message, even after a restart, is kept beside it (:meth:`edited`).
        """
        if inp.text is not None:
            inp = replace(inp, text=clean_text(inp.text))
        pre = self._prescreened.pop(input_key, None) if input_key and self._prescreened else None
        with self.store.transaction():
            # whether this input was handled before, the conversation, and the person's language,
            # in one read (the language as language_of decides: the conversation's, else the
            # person's, else English)
            found = self.store.input_context(person_id, conversation_id, input_key)
            if found is None:  # no such person: nothing to read but the input
                found = (self.store.seen_input(input_key) if input_key else None), None, None
            done, conv, chosen = found
            language = conv.language if conv is not None and conv.language else chosen or i18n.DEFAULT
            if done is not None:
                with i18n.using(language):  # a reply stored before prompts carried their language
                    return self._duplicate(done)
            with i18n.using(language):
                if conv is not None and person_id not in (conv.person_id, conv.present_id):
                    conv = None  # a conversation named that is not theirs
                reply = self._handle(person_id, inp, conv, input_key, expect_step, seen, pre)
            if input_key:
                self.store.mark_input(input_key, reply.conversation_id, reply.to_json(), media=inp.media,
                                      message=message)
        return reply

    # -- safeguarding detection before the hand-off ------------------------------------
    PRESCREENED_MAX = 10_000  # inputs screened and not yet handled, kept at most (then forgotten)

    def prescreen(self, person_id: int, inp: Input, *, input_key: str | None) -> None:
        """Run the safeguarding detector on ``inp``'s words now, on the caller's thread, for
        :meth:`handle` of the same ``input_key`` to use (a frontend calls this just before
        handing the input to the store thread, so that detection, which needs no database,
        overlaps the store thread's commit instead of running on it).

        Optional and never changes what :meth:`handle` decides: it uses the result only for
        the very words and detector context it then finds (the person's latest 0-10 score);
        otherwise it detects again itself. Both, and whether the words pick an option of the
        question waiting (then nothing is screened), are guessed here from where the person's
        last input left their conversation: a wrong guess costs only time, never a check.

        With a :attr:`detector_worker` the words are only sent to it here (the detector runs
        in another process, on the other core) and ``handle`` takes its result; when the
        worker cannot take them, or has no result for ``handle``, they are detected in this
        process (bot/safeguarding_worker.py)."""
        if self.safeguarding is None or not input_key or inp.kind != "answer" or not inp.text:
            return
        text = clean_text(inp.text)
        context = None
        recent = self._recent.get(person_id)
        if recent is not None:
            runner, session = recent
            try:
                if self._picks(runner, session, text):
                    return  # an option picked is not free text: handle will (very likely) not screen it
                context = self._score_context(runner.flow, session.answers, session.history) \
                    if self._takes_context else None
            except Exception:  # noqa: BLE001 - only a guess (an option's condition, say): screen as if unknown
                context = None
        worker = self.detector_worker
        found = worker.submit(text, context) if worker is not None else None  # a future, or None: not taken
        if found is None:
            found = self._detector(text, context)
        if len(self._prescreened) >= self.PRESCREENED_MAX:  # handed off and never handled: forget them
            self._prescreened.clear()
        self._prescreened[input_key] = (text, context, found)

    def _handle(self, person_id: int, inp: Input, conv: Conversation | None, input_key: str | None,
                expect_step: str | None, seen, pre: tuple | None = None) -> Reply:
        open_ = conv is not None and conv.status == "in_progress"
        session = Session.from_json(conv.session) if open_ else None  # read once, for both uses below
        # Free text: typed words, not an option picked by its label, id or number.
        free = bool(inp.text) and inp.kind == "answer" and not (open_ and self._picks_option(conv, inp.text, session))
        concerns = self._detect(inp.text, conv if open_ else None, person_id, pre) \
            if self.safeguarding is not None and free else []
        # Only alert-tier concerns interrupt the person; review-tier ones are kept quietly.
        concerns, quiet = split_tiers(concerns)
        if not open_ or (expect_step is not None and conv.state != expect_step):
            after = free and not open_ and expect_step is None  # typed words, no conversation open
            if concerns or quiet or after:  # words to keep: whose are they? (in the hand-back, not
                # the worker's: words sent with a session's last answer are kept in that session)
                conv, person_id = self._handed_back(person_id, conv)
            if concerns:
                reply = self._safeguard_outside(person_id, conv, concerns, inp.text, input_key)
            elif quiet:
                reply = self._quiet_outside(person_id, conv, quiet, inp.text, input_key)
            else:
                reply = self._after_end(person_id, conv, inp.text, input_key) if after else None
                if reply is None:
                    reply = Reply(conv.id if conv else None, [], conv.status if conv else "none", accepted=False,
                                  closed=True)
        else:
            if conv.present_id is not None and inp.kind == "answer" and not conv.session.get("hold") \
                    and self._is_stop(inp.text):
                inp = Input("cancel", text=inp.text)  # "stop" ends a worker-present session
            with self._privacy(conv.person_id, conv.case_id, conv, today=True):
                reply = self._step(conv, inp, concerns, input_key, seen, quiet=quiet, free=free, session=session)
            if conv.present_id is not None and reply.status != "in_progress":
                # a worker-present session ended: the device goes back to the worker
                reply.prompts.append(Prompt(msg("worker_present.ended"), kind="info"))
        return reply

    def _after_end(self, person_id: int, conv: Conversation | None, words: str, input_key: str | None) -> Reply | None:
        """Words from a family member, young person or child written after their conversation
        ended (or was stopped), that the detector did not flag: kept in their most recent
        conversation in a case as a line after the end, unread for the worker under that
        conversation's consent rules, and the person told, truthfully, who can see it. None
        for someone with no case (a worker, a stranger): nothing is kept, as before. (Words
        typed on a worker's device in the hand-back come here as the words of the person who
        answered there, for the session just handed back: :meth:`_handed_back`.)"""
        if conv is None or conv.case_id is None or conv.person_id != person_id:
            conv = self.store.latest_case_conversation(person_id)
        if conv is None or not self._unread_counts(conv):
            return None
        flow = self.runner_for(conv).flow
        line_id = self.store.add_line(conv.id, "in", words, kind="after_end", input_key=input_key)
        self.store.add_unread(line_id, conv.id, False)
        who = sentence(flow, case_of(self.store, conv.case_id, conv.person_id), respondent_for(conv, flow),
                       conv.session.get("answers", {}), "after")
        prompts = [Prompt(msg("answers.after_end", title=flow.title, who_can_see=who), kind="info")]
        self._write_prompts(conv.id, prompts, conv)
        return Reply(conv.id, prompts, conv.status, accepted=False)

    def _handed_back(self, person_id: int, conv: Conversation | None) -> tuple[Conversation | None, int]:
        """Whose words these are, typed outside an open conversation: (conversation, person).
        On a worker's device, in a worker-present session (named) or within ``handback`` of
        one ending (the worker has started nothing of their own since), they are taken as the
        words of the person who answered there (a child still holding the device), not the
        worker's: the help is for who they are and the alert names that session's case."""
        if conv is not None:
            return conv, (conv.person_id if conv.present_id == person_id else person_id)
        session = self._handback_session(person_id)
        if session is None:
            return None, person_id
        return session, session.person_id

    def _handback_session(self, person_id: int) -> Conversation | None:
        """The worker-present session that ended on this person's device less than
        ``handback`` ago, if they have started nothing of their own since: the person who
        answered there may still be holding it."""
        if not self.handback:
            return None
        # the store's one rule, which escalation.holding uses too: ended less than handback ago,
        # and the worker has started nothing of their own on the device since
        return self.store.handed_back_session(person_id, iso(self.clock() - self.handback))

    def handing_back(self, person_id: int) -> datetime | None:
        """When the hand-back after a worker-present session on this person's device ends,
        while it lasts (else None): until then the device may still be in the hands of the
        person who answered, so their words are taken as theirs and nothing of the worker's
        own (staff commands, transcripts, sign-in links) answers there."""
        session = self._handback_session(person_id)
        if session is None or not session.finished_at:
            return None
        ended = from_iso(session.finished_at)
        if ended.tzinfo is None:
            ended = ended.replace(tzinfo=timezone.utc)
        return ended + self.handback

    # -- words turned away by a rate limit ------------------------------------------
    def screen(self, text: str | None) -> list:
        """The alert-tier concerns in free text, from the detector alone (no store, about
        the cost of one regular-expression pass): for words a frontend turns away before
        they reach :meth:`handle`, such as updates over a rate limit."""
        if self.safeguarding is None or not text:
            return []
        return split_tiers(self._detect(clean_text(text), None))[0]

    @_speaking
    def screen_dropped(self, person_id: int, texts: list[str]) -> Reply:
        """Words dropped by a rate limit are never applied or stored as inputs, but a
        disclosure among them is never lost: it raises (or joins) the person's one open
        alert, with the words, exactly as if it had been typed outside a conversation.
        Nothing else is kept. For a person without a role the words kept are bounded, so a
        flood of disclosure-like text cannot grow the store. The reply carries the help
        text only when this opened a new alert (one per open alert, however long the flood)."""
        found = [(t, c) for t in (clean_text(t) for t in texts if t) for c in [self.screen(t)] if c]
        if not found:
            return Reply(None, [], "none", accepted=False, closed=True)
        words = "\n".join(t for t, _ in found)
        concerns = [c for _, cs in found for c in cs]
        with self.store.transaction():
            if not self.store.roles_of(person_id):
                words = words[:self.ALERT_WORDS_MAX]
            conv = self.store.latest_conversation(person_id)
            practice = bool(conv is not None and conv.practice)
            opened = self.store.open_alert_in_case(
                person_id, conv.case_id if conv is not None else None, practice) is None
            alert_id = self._alert(conv.id if conv is not None else None, person_id, concerns, words, None,
                                   practice=practice)
            prompts = []
            if opened:
                prompts = [Prompt(self._help(conv, self.runner_for(conv).flow if conv is not None else None),
                                  kind="safeguarding")]
        return Reply(conv.id if conv is not None else None, prompts, conv.status if conv else "none",
                     accepted=False, alerts=[alert_id])

    def _detector(self, text: str, context: dict | None) -> list:
        return self.safeguarding.detect(text) if context is None else self.safeguarding.detect(text, context)

    def _detect(self, text: str, conv: Conversation | None, person_id: int | None = None,
                pre: tuple | None = None) -> list:
        """The detector, told what the service knows beyond the words: the person's latest
        0-10 scale answer in this conversation, which can raise a review-tier concern to
        alert ("nothing keeps me going" after a 0 is not a shrug). ``pre``: what
        :meth:`prescreen` found, used only if it screened these very words in this context."""
        context = self._context(conv) if self._takes_context else None
        if pre is not None and pre[0] == text and pre[1] == context:
            found = pre[2]
            if isinstance(found, Future):  # sent to the worker process: its result, else detect here
                try:
                    found = self.detector_worker.result(found)
                except Exception:  # noqa: BLE001 - WorkerUnavailable, or anything else: never unchecked
                    found = self._detector(text, context)
        else:
            found = self._detector(text, context)
        # The person's language (issue 19): its own word list, and for a language without a
        # reviewed one, every free-text answer to the quiet review tier (bot/i18n/safeguarding.py).
        language = i18n.current()
        if language == i18n.DEFAULT:  # English adds nothing (extra() returns [] at once)
            return list(found)
        from bot.i18n.safeguarding import extra

        return list(found) + extra(text, language, found, getattr(self.safeguarding, "concerns", None))

    @functools.cached_property
    def _takes_context(self) -> bool:
        """Whether the detector takes ``context`` (older detectors and stand-ins do not)."""
        try:
            return "context" in inspect.signature(self.safeguarding.detect).parameters
        except (TypeError, ValueError):
            return False

    RECENT_MAX = 2_048  # people whose last input is kept for prescreen's guess (the least recent go first)

    def _remember(self, person_id: int, runner: FlowRunner, session: Session) -> None:
        """Where this person's conversation now is, for :meth:`prescreen` to guess from.
        (Only the store thread writes here; prescreen only reads.)"""
        recent = self._recent
        recent.pop(person_id, None)  # to the end: the most recent
        if len(recent) >= self.RECENT_MAX:
            del recent[next(iter(recent))]  # the person heard from least recently
        recent[person_id] = (runner, session)

    def _context(self, conv: Conversation | None) -> dict | None:
        if conv is None:
            return None
        return self._score_context(self.runner_for(conv).flow, conv.session.get("answers", {}),
                                   conv.session.get("history", ()))

    @staticmethod
    def _score_context(flow: Flow, answers: dict, history) -> dict | None:
        by_id = flow.by_id
        for step_id in reversed(history):  # the path taken, latest last
            step = by_id.get(step_id)
            value = answers.get(step_id)
            if step is not None and step.type == "scale" and isinstance(value, int) and not isinstance(value, bool):
                return {"score": value}
        return None

    def _picks_option(self, conv: Conversation, text: str, session: Session | None = None) -> bool:
        """The text picks an option (label, id or number, or a scale value, yes or no) of
        the question the conversation is waiting on, so it is an answer, not free text.
        Not while a safeguarding response is on hold: no question is being answered then.
        (``session``: the conversation's, already read; only read here, never changed.)"""
        if session is None:
            session = Session.from_json(conv.session)
        return self._picks(self.runner_for(conv), session, text)

    @staticmethod
    def _picks(runner: FlowRunner, session: Session, text: str) -> bool:
        if session.hold:
            return False
        step = runner.flow.by_id.get(session.state)
        if step is None or step.type not in _PICKED:
            return False
        try:
            parse(step, text, None, runner.offered(step, session.answers) if step.options else None)
        except Invalid:
            return False
        return True

    def _step(self, conv: Conversation, inp: Input, concerns: list, input_key: str | None,
              seen: tuple[int | None, str | None] | None = None, *, quiet: list = (), free: bool = False,
              session: Session | None = None) -> Reply:
        runner = self.runner_for(conv)
        if session is None:
            session = Session.from_json(conv.session)
        said = inp.text if inp.text is not None else self._button_text(runner, session, inp)
        # Typed for a question the person saw before the bot moved on (a retype after a slow
        # reply, a message sent while the bot was down): not for the question now asked.
        stale = (seen is not None and inp.kind == "answer" and inp.text is not None and not session.hold
                 and tuple(seen) != (conv.id, session.state))
        typed_for = seen[1] if stale and seen[0] == conv.id and seen[1] in runner.flow.by_id else session.state
        line_id = self.store.add_line(
            conv.id, "in", said if said is not None else "", kind="answer" if inp.kind == "answer" else "command",
            step_id=typed_for, input_key=input_key, flagged=bool(concerns or quiet),
            tier="alert" if concerns else "review" if quiet else None,
        )
        self._keep_for_reading(conv, session, inp, line_id, concerns, quiet, free)
        if session.hold:
            return self._held(conv, runner, session, inp, concerns, line_id)
        if stale:
            if concerns:  # help at once; the words are kept, but not as an answer to an unseen question
                return self._safeguard(conv, runner, Result(session, [], accepted=False), concerns, inp.text, line_id,
                                       again=True)
            # A newer text replaces one still waiting (both stay in the transcript): its confirm
            # carries the new line id, so "Yes" under the earlier confirm applies nothing.
            session.pending = {"text": inp.text, "step": session.state, "id": line_id}
            return self._ask_pending(conv, runner, session)
        if inp.kind in ("apply", "discard") or session.pending is not None:
            decision = inp.kind if inp.kind in ("apply", "discard") else self._pending_choice(inp)
            pending, session.pending = session.pending, None
            if decision is not None and (pending is None or pending.get("step") != session.state):
                # a yes/no button from an earlier "is this your answer?": nothing to apply now
                return Reply(conv.id, [], conv.status, accepted=False, closed=True)
            if inp.kind in ("apply", "discard") and (inp.button is None or inp.button != pending.get("id")):
                # a button under an earlier confirm (another text waited then) or from before
                # buttons named their text: which words it meant is unknown, so nothing is
                # applied or dropped; the confirm for the text waiting now is shown again
                session.pending = pending
                if pending.get("id") is None:  # waiting since before texts had ids: named now
                    pending["id"] = line_id
                reply = self._ask_pending(conv, runner, session, lead=[Prompt(msg("answers.stale_gone"), kind="info")])
                reply.closed = True
                return reply
            if decision == "apply":
                inp = Input("answer", pending["text"])  # screened when it arrived
            elif decision == "discard":
                prompts = runner.current(session)
                self._write_prompts(conv.id, prompts, conv)
                self.store.update_conversation(conv.id, state=session.state, session=session.to_json(),
                                               status=conv.status)
                return Reply(conv.id, prompts, conv.status, accepted=False,
                             step_id=_waiting_step(session, runner.flow))
            # anything else: the person has now seen the question, so this answers it
        if inp.kind == "continue":  # nothing was on hold: just show the question again
            inp = Input("repeat")
        asked = runner.flow.by_id.get(session.state)
        result = runner.step(session, inp)
        if concerns:
            if asked is not None and asked.expects_concerns and result.accepted and not self._urgent(concerns):
                return self._safeguard_expected(conv, runner, result, concerns, inp.text, line_id)
            return self._safeguard(conv, runner, result, concerns, inp.text, line_id)
        self._commit_result(conv, result)
        return Reply(conv.id, result.prompts, result.status, accepted=result.accepted, closed=result.closed,
                     step_id=_waiting_step(result.session, runner.flow),
                     answered=result.records[0].shown if result.records else None)

    def _keep_for_reading(self, conv: Conversation, session: Session, inp: Input, line_id: int, concerns: list,
                          quiet: list, free: bool) -> None:
        """A review-tier concern becomes a review item (the person is not interrupted); a
        free-text answer in a case is unread until someone with access reads it. Words
        typed only to carry on, stop, or confirm an earlier answer are not answers."""
        if quiet and not concerns:
            ids, matched = reason(quiet)
            self.store.add_review_item(conversation_id=conv.id, person_id=conv.person_id, transcript_id=line_id,
                                       concern=ids, matched=matched)
        flagged = bool(concerns or quiet)
        if not free or not self._unread_counts(conv):
            return
        if not flagged and (session.hold or (session.pending is not None and self._pending_choice(inp))):
            return
        self.store.add_unread(line_id, conv.id, flagged)

    def _unread_counts(self, conv: Conversation) -> bool:
        """Whether free text in this conversation is counted unread: family members', young
        people's and children's words in a case (not a worker's, nor typed on the worker's own
        account with the worker present: they have seen it). Consent is applied when the
        unread answers are read out (bot/reading.py), as for every answer."""
        if conv.case_id is None or getattr(conv, "respondent", None) == "practitioner":
            return False
        case = self.store.case_by_id(conv.case_id)
        return not (case is not None and case["practitioner_id"] == conv.person_id)

    @staticmethod
    def _urgent(concerns: list) -> bool:
        """Immediate danger always gets the full response (999 at once), even at a worries question."""
        return any(c.concern == "immediate_danger" for c in concerns)

    def _safeguard_expected(self, conv: Conversation, runner: FlowRunner, result: Result, concerns: list, words: str,
                            line_id: int) -> Reply:
        """At a worries question (``expects_concerns: true``) a disclosure is what was asked
        for: the alert is raised as ever, but the person is thanked and told who will see
        it, and the questions go on, instead of the full interruption."""
        alert_id = self._alert(conv.id, conv.person_id, concerns, words, line_id, practice=conv.practice)
        result.prompts = [Prompt(self._expected_thanks(conv, runner.flow, concerns), kind="message")] \
            + list(result.prompts)
        self._commit_result(conv, result)
        return Reply(conv.id, result.prompts, result.status, accepted=result.accepted, closed=result.closed,
                     alerts=[alert_id], step_id=_waiting_step(result.session, runner.flow),
                     answered=result.records[0].shown if result.records else None)

    def _expected_thanks(self, conv: Conversation, flow: Flow, concerns: list) -> str:
        """The calm reply at a worries question: thanks, who will see it (truthfully: in
        practice, or with nobody set up to be told, nobody is), and the help lines of the
        concerns found for who is answering (e.g. the domestic abuse helpline for an adult),
        without pausing the questions."""
        told = "practice" if conv.practice else ("real" if self.leads_configured else "nobody")
        lines = [msg("concerns.expected_thanks" if told == "real" else "concerns.expected_thanks_practice")]
        help_lines = getattr(self.safeguarding, "help_lines", None)
        if help_lines is not None:
            respondent = respondent_for(conv, flow)
            for who in ([respondent] if respondent else ["young_person", "adult"]):
                lines += [line for line in help_lines(concerns, who) if line not in lines]
        lines.append(msg("concerns.expected_help"))
        if self.out_of_hours and respondent_for(conv, flow) != "practitioner":
            lines.append(self.safeguarding.text("out_of_hours").format(number=self.out_of_hours))
        return "\n".join(lines)

    def _quiet_outside(self, person_id: int, conv: Conversation | None, quiet: list, words: str,
                       input_key: str | None) -> Reply:
        """Review-tier words typed outside an open conversation: kept with the person's latest
        conversation (so its case practitioner sees them) and queued, not answered."""
        if conv is None:
            conv = self.store.latest_conversation(person_id)
        conv_id = conv.id if conv is not None else None
        line_id = None
        if conv_id is not None:
            line_id = self.store.add_line(conv_id, "in", words, kind="answer", input_key=input_key, tier="review")
            if conv.case_id is not None:
                self.store.add_unread(line_id, conv_id, True)
        ids, matched = reason(quiet)
        kept = None
        if line_id is None:  # no conversation to hold the words: the item keeps them (bounded for a stranger)
            kept = words if self.store.roles_of(person_id) else words[:self.ALERT_WORDS_MAX]
        self.store.add_review_item(conversation_id=conv_id, person_id=person_id, transcript_id=line_id, concern=ids,
                                   matched=matched, words=kept)
        return Reply(conv_id, [], conv.status if conv else "none", accepted=False, closed=True)

    # -- a message edited after it was sent (Telegram) -----------------------------------
    @_speaking
    def edited(self, person_id: int, text: str, *, input_key: str | None = None,
               original_key: str | None = None, original_message: str | None = None,
               media: str | None = None) -> Reply:
        """The person edited a message they had sent (``original_key``: that message's input
        key; or ``original_message``: the frontend's reference to it, as :meth:`handle` kept
        it; ``media``: the words are a picture's or file's, as a caption). An edit never moves the conversation on and
        never answers a question (it could land on one nobody saw): the new words are kept as
        a line of their own (kind ``edit``) beside the answer they change, counted unread like
        any free-text answer (the same consent rules), and checked for safeguarding like any
        answer: the help and an alert, or a quiet review item. Nothing is asked again; an
        alert pauses an open conversation as a disclosure in an answer does. With no
        conversation at all, only a disclosure is kept, as for words typed outside one."""
        text = clean_text(text)
        with self.store.transaction():
            if input_key:
                seen = self.store.seen_input(input_key)
                if seen is not None:
                    return self._duplicate(seen)
            if original_key is None and original_message is not None:
                found = self.store.input_of_message(original_message)
                original_key = found["key"] if found else None
            reply = self._edited(person_id, text, input_key, original_key)
            if input_key:
                self.store.mark_input(input_key, reply.conversation_id, reply.to_json(), media=media)
        return reply

    def media_only(self, person_id: int, media: str, *, input_key: str | None = None) -> int | None:
        """A picture or file sent without words (``media``: its kind; it is not kept). In the
        person's open conversation a line says that one was sent, so whoever reads the
        transcript knows they tried to show something and can ask; it answers nothing (the
        question still waits for words) and is not screened (there are no words). The line
        id, or None with no open conversation (nothing is kept, as for words outside one)."""
        with self.store.transaction():
            if input_key and self.store.seen_input(input_key) is not None:
                return None
            conv = self.store.active_conversation(person_id)
            if conv is None or conv.status != "in_progress":
                return None
            line_id = self.store.add_line(conv.id, "in", "", kind="media", step_id=conv.state, input_key=input_key)
            if input_key:
                self.store.mark_input(input_key, conv.id, Reply(conv.id, [], conv.status, accepted=False).to_json(),
                                      media=media)
        return line_id

    def _edited(self, person_id: int, text: str, input_key: str | None, original_key: str | None) -> Reply:
        conv, step_id = None, None
        found = self.store.input_line(original_key) if original_key else None
        if found is not None:
            conv = self.store.conversation(found["conversation_id"])
            step_id = found["step_id"]
            if conv is not None and person_id not in (conv.person_id, conv.present_id):
                conv, step_id = None, None  # not theirs (never expected): kept as if the original were unknown
        if conv is None:
            conv = self.store.active_conversation(person_id) or self.store.latest_conversation(person_id)
        if conv is None:
            conv, person_id = self._handed_back(person_id, None)
        screened = self._detect(text, conv if conv is not None and conv.status == "in_progress" else None, person_id) \
            if self.safeguarding is not None else []
        concerns, quiet = split_tiers(screened)
        if conv is None:  # nobody's conversation: as words typed outside one
            if concerns:
                return self._safeguard_outside(person_id, None, concerns, text, input_key)
            if quiet:
                return self._quiet_outside(person_id, None, quiet, text, input_key)
            return Reply(None, [], "none", accepted=False, closed=True)
        runner = self.runner_for(conv)
        line_id = self.store.add_line(conv.id, "in", text, kind="edit", step_id=step_id, input_key=input_key,
                                      flagged=bool(concerns or quiet),
                                      tier="alert" if concerns else "review" if quiet else None)
        if quiet and not concerns:
            ids, matched = reason(quiet)
            self.store.add_review_item(conversation_id=conv.id, person_id=conv.person_id, transcript_id=line_id,
                                       concern=ids, matched=matched)
        if self._unread_counts(conv):
            self.store.add_unread(line_id, conv.id, bool(concerns or quiet))
        if not concerns:  # kept quietly (a review item too): the same few words whatever was found
            prompts = [Prompt(msg("answers.edit_kept"), kind="info")]
            self._write_prompts(conv.id, prompts, conv)
            return Reply(conv.id, prompts, conv.status, accepted=False)
        asked = runner.flow.by_id.get(step_id) if step_id else None
        if asked is not None and asked.expects_concerns and not self._urgent(concerns):
            alert_id = self._alert(conv.id, conv.person_id, concerns, text, line_id, practice=conv.practice)
            prompts = [Prompt(self._expected_thanks(conv, runner.flow, concerns), kind="message")]
            self._write_prompts(conv.id, prompts, conv)
            return Reply(conv.id, prompts, conv.status, accepted=False, alerts=[alert_id])
        if conv.status == "in_progress":  # help at once, and the carry-on-or-stop choice; no question re-asked
            session = Session.from_json(conv.session)
            with self._privacy(conv.person_id, conv.case_id, conv):
                return self._safeguard(conv, runner, Result(session, [], accepted=False), concerns, text, line_id,
                                       again=True)
        alert_id = self._alert(conv.id, conv.person_id, concerns, text, line_id, practice=conv.practice)
        prompts = [Prompt(self._help(conv, runner.flow, concerns), kind="safeguarding")]
        self._write_prompts(conv.id, prompts, conv)
        return Reply(conv.id, prompts, conv.status, accepted=False, alerts=[alert_id])

    def _held(self, conv: Conversation, runner: FlowRunner, session: Session, inp: Input, concerns: list,
              line_id: int) -> Reply:
        """After a safeguarding response only carry on or stop leave the hold. Anything
        else is kept in the transcript (already written), screened again, and the choice
        is offered again gently; nothing is stored against a question not yet shown."""
        if concerns:
            return self._safeguard(conv, runner, Result(session, [], accepted=False), concerns, inp.text, line_id,
                                   again=True)
        if inp.kind in ("continue", "cancel"):
            decision = inp.kind
        else:
            decision = self._hold_choice(inp) if inp.kind == "answer" else None
        if decision == "continue":
            session.hold = False
            prompts = [Prompt(h["text"], kind=h.get("kind", "message"), step_id=h.get("step_id")) for h in session.held]
            prompts += runner.current(session)
            session.held = []
            self._write_prompts(conv.id, prompts, conv)
            self.store.update_conversation(conv.id, state=session.state, session=session.to_json(), status=conv.status)
            return Reply(conv.id, prompts, conv.status, accepted=False, step_id=_waiting_step(session, runner.flow))
        if decision == "cancel":
            session.hold, session.held = False, []
            result = runner.step(session, Input("cancel"))
            self._commit_result(conv, result, force=True)
            return Reply(conv.id, result.prompts, result.status, accepted=result.accepted,
                         step_id=_waiting_step(result.session, runner.flow))
        prompts = [Prompt(msg("hold.reask"), kind="offer")]
        self._write_prompts(conv.id, prompts, conv)
        return Reply(conv.id, prompts, conv.status, accepted=False)

    def _ask_pending(self, conv: Conversation, runner: FlowRunner, session: Session, lead: list = ()) -> Reply:
        """Ask whether text typed for an earlier question answers the one now asked."""
        prompts = [*lead, self._pending_prompt(runner, session)]
        self._write_prompts(conv.id, prompts, conv)
        self.store.update_conversation(conv.id, state=session.state, session=session.to_json(), status=conv.status)
        return Reply(conv.id, prompts, conv.status, accepted=False, step_id=session.state)

    @staticmethod
    def _pending_prompt(runner: FlowRunner, session: Session) -> Prompt:
        """"Is that your answer?" about the text waiting now; ``ref`` names it (its transcript
        line), so a frontend's Yes / No can say which text it was pressed for."""
        question = runner.question(runner.flow.by_id[session.state], session).text
        return Prompt(msg("answers.stale", text=session.pending["text"], question=question), kind="confirm",
                      step_id=session.state, ref=session.pending.get("id"))

    @staticmethod
    def _pending_choice(inp: Input) -> str | None:
        if inp.kind != "answer" or inp.text is None:
            return None
        yes, no, _ = vocabulary()
        word = fold(inp.text)
        return "apply" if word in yes else "discard" if word in no else None

    @staticmethod
    def _hold_choice(inp: Input) -> str | None:
        yes, no, _ = vocabulary()
        words = messages()["parsing"]
        own = i18n.language(i18n.current()).parsing  # the person's language too (bot/locale/languages.yaml)
        word = fold(inp.text or "")
        if word in yes or word in {fold(w) for w in words["continue_words"] + own.get("continue_words", [])}:
            return "continue"
        if word in no or word in {fold(w) for w in words["stop_words"] + own.get("stop_words", [])}:
            return "cancel"
        return None  # anything else: the choice is offered again

    @staticmethod
    def _is_stop(text: str | None) -> bool:
        own = i18n.language(i18n.current()).parsing.get("stop_words", [])
        return bool(text) and fold(text) in {fold(w) for w in messages()["parsing"]["stop_words"] + own}

    @_speaking
    def current(self, person_id: int) -> Reply | None:
        """The question an unfinished conversation is waiting on (for resuming): after a
        safeguarding response, the carry-on-or-stop choice instead (the question is shown
        only once they carry on); with text waiting to be confirmed, that question."""
        conv = self.store.active_conversation(person_id)
        if conv is None:
            return None
        with self._privacy(conv.person_id, conv.case_id, conv):
            return self._current(conv)

    def _current(self, conv: Conversation) -> Reply:
        runner = self.runner_for(conv)
        session = Session.from_json(conv.session)
        if session.hold:
            prompts = [Prompt(msg("hold.reask"), kind="offer")]
        elif session.pending and session.pending.get("step") == session.state:
            prompts = [self._pending_prompt(runner, session)]
        else:
            prompts = _for_respondent(conv, runner.current(session))
        return Reply(conv.id, prompts, conv.status, step_id=_waiting_step(session, runner.flow))

    def cancel_active(self, person_id: int, input_key: str | None = None) -> Reply | None:
        if self.store.active_conversation(person_id) is None:
            return None
        return self.handle(person_id, Input("cancel"), input_key=input_key)

    # -- internals ---------------------------------------------------------------------
    def _duplicate(self, seen: dict) -> Reply:
        reply = Reply.from_json(seen["reply"]) if seen.get("reply") else Reply(seen.get("conversation_id"), [])
        reply.duplicate = True
        reply.delivered = bool(seen.get("delivered"))
        return reply

    def already_answered(self, input_key: str) -> bool:
        """This input was handled and its reply reached the person: a re-delivery does nothing."""
        seen = self.store.seen_input(input_key)
        return bool(seen and seen["delivered"])

    def undelivered(self, key_prefix: str, max_age_hours: float = 24.0) -> list[tuple[str, int, Reply]]:
        """Replies committed but never recorded as sent (a crash between commit and send),
        newest per conversation: (input key, person id, reply) for a frontend to send on start."""
        since = iso(datetime.now(timezone.utc) - timedelta(hours=max_age_hours))
        return [(r["key"], r["person_id"], Reply.from_json(r["reply"]))
                for r in self.store.undelivered_replies(since, key_prefix)]

    def delivered(self, input_key: str) -> None:
        """The reply to this input reached the person (so a re-delivery sends nothing)."""
        with self.store.transaction():
            self.store.mark_delivered(input_key)

    def delivered_all(self, input_keys: list[str]) -> None:
        """As :meth:`delivered`, for several inputs at once, in one transaction."""
        with self.store.transaction():
            for key in input_keys:
                self.store.mark_delivered(key)

    def _button_text(self, runner: FlowRunner, session: Session, inp: Input) -> str | None:
        if inp.kind in ("apply", "discard"):  # the Yes / No buttons of "is this your answer?"
            return msg("answers.stale_yes" if inp.kind == "apply" else "answers.stale_no")
        if inp.kind != "answer":
            return f"/{inp.kind}"
        step = runner.flow.by_id.get(session.state)
        if step is None or inp.button is None:
            return None if inp.button is None else str(inp.button)
        try:
            if step.type == "yesno":
                return display(step, str(inp.button).lower() in ("yes", "true", "1"))
            return display(step, inp.button)
        except (KeyError, AttributeError, TypeError):
            return str(inp.button)

    def _commit_result(self, conv: Conversation, result: Result, force: bool = False) -> None:
        for rec in result.records:
            self.store.save_answer(conv.id, rec.step_id, rec.value, rec.raw, rec.shown)
        if result.retracted:
            self.store.retract_answers(conv.id, result.retracted)
        session = result.session.to_json()
        if force or result.records or session != conv.session or result.status != conv.status:
            self.store.update_conversation(conv.id, state=result.session.state, session=session, status=result.status)
        if self.safeguarding is not None:
            self._remember(conv.person_id, self.runner_for(conv), result.session)
        self._write_prompts(conv.id, result.prompts, conv)
        if self.schedule is not None:  # in the answer's transaction: both are saved, or neither
            self.schedule.after_step(conv, result.status, result.records, self.runner_for(conv).flow)

    def _write_prompts(self, conv_id: int, prompts: list[Prompt], conv: Conversation | None = None) -> None:
        """Write what is shown to the transcript. A step's note for the worker goes in the
        transcript and leaves the list (so the person never sees it), unless the worker is
        there holding the device (a worker-present session)."""
        _for_respondent(conv, prompts)
        for p in prompts:
            self.store.add_line(conv_id, "out", p.plain(), kind=p.kind, step_id=p.step_id)
        if getattr(conv, "present_id", None) is None:
            prompts[:] = [p for p in prompts if p.kind != "worker_note"]

    #: Words kept on one alert from a person without a role (a flood cannot grow it further).
    ALERT_WORDS_MAX = 20_000

    def _alert(self, conv_id: int | None, person_id: int, concerns: list, words: str, line_id: int | None,
               practice: bool | None = None) -> int:
        """Record a possible disclosure: at most one open alert per person per case (and one
        outside any case), so one practitioner's case never carries another's words. Later
        words are added to it, with the time, and notified once more at once; for a person
        with neither a role nor a case (anyone can write to the bot) the next reminder
        carries them instead. A
        practice alert (a trial, not a case) is recorded the same way but is never due."""
        conv = self.store.conversation(conv_id) if conv_id is not None else None
        if practice is None:  # a practice conversation's alerts are practice, whichever path raised them
            practice = bool(conv is not None and conv.practice)
        case_id = conv.case_id if conv is not None else None
        concern = ",".join(c.concern for c in concerns)
        open_ = self.store.open_alert_in_case(person_id, case_id, practice)  # one per person per case
        if open_ is None:
            return self.store.add_alert(conversation_id=conv_id, person_id=person_id, transcript_id=line_id,
                                        concern=concern, words=words, next_notify_at=now(),  # due at once
                                        practice=practice)
        # Known as store.due_alerts counts it: a role, or a case (a child in a worker-present session).
        known = case_id is not None or bool(self.store.roles_of(person_id))
        merged = ",".join(dict.fromkeys(open_["concern"].split(",") + concern.split(",")))
        text = open_["words"]
        if known or len(text) < self.ALERT_WORDS_MAX:
            text = f"{text}\n[{now()[11:19]} UTC] {words}"
            if not known:
                text = text[:self.ALERT_WORDS_MAX]
        self.store.add_to_alert(open_["id"], concern=merged, words=text, conversation_id=conv_id,
                                transcript_id=line_id, next_notify_at=now() if known and not practice else None)
        return open_["id"]

    # The help shown follows who is answering, not the flow's audience.
    def _help(self, conv: Conversation | None, flow: Flow | None, concerns=()) -> str:
        """The safeguarding response for who is answering, the concerns found, and whether a
        named person will really be told (not in practice, nor with no lead set up)."""
        respondent = respondent_for(conv, flow)
        told = "practice" if conv is not None and conv.practice else ("real" if self.leads_configured else "nobody")
        help_for = getattr(self.safeguarding, "help_for", None)
        if help_for is not None:
            return help_for(respondent, concerns, told=told, out_of_hours=self.out_of_hours)
        key = {"young_person": "child", "adult": "family"}.get(respondent, respondent)
        if key is None:  # not knowing who this is: the help for a young person and for an adult
            return self.safeguarding.response("child") + "\n\n" + self.safeguarding.response("family")
        return self.safeguarding.response(key)

    def _safeguard(self, conv: Conversation, runner: FlowRunner, result: Result, concerns: list, words: str,
                   line_id: int, *, again: bool = False) -> Reply:
        """A possible disclosure: keep the words (as the answer too, if it is one), stop the
        flow, show help at once, and record an alert in this same transaction. Messages
        due before the next question are held and shown when the person carries on
        (``again``: already on hold, or no question was answered; keep what is held)."""
        alert_id = self._alert(conv.id, conv.person_id, concerns, words, line_id, practice=conv.practice)
        prompts = [Prompt(self._help(conv, runner.flow, concerns), kind="safeguarding")]
        if result.finished:
            prompts += result.prompts
        else:
            if not again:
                result.session.held = [{"text": p.text, "kind": p.kind, "step_id": p.step_id}
                                       for p in result.prompts
                                       if result.accepted and p.kind not in ("question", "worker_note")]
            result.session.hold = True
            prompts.append(Prompt(self.safeguarding.offer(), kind="offer"))
        result.prompts = prompts
        self._commit_result(conv, result, force=True)
        return Reply(conv.id, prompts, result.status, accepted=result.accepted, alerts=[alert_id],
                     step_id=_waiting_step(result.session, runner.flow),
                     answered=result.records[0].shown if result.records else None)

    def _safeguard_outside(self, person_id: int, conv: Conversation | None, concerns: list, words: str,
                           input_key: str | None) -> Reply:
        """A disclosure typed outside any open conversation (none started, or it ended).

        It belongs with the person's latest conversation, open or not: the words go into
        that transcript (flagged) and the alert into its case, so the practitioner holding
        the case is alerted and may acknowledge it."""
        if conv is None:
            conv = self.store.latest_conversation(person_id)
        conv_id = conv.id if conv is not None else None
        line_id = None
        if conv_id is not None:
            line_id = self.store.add_line(conv_id, "in", words, kind="answer", input_key=input_key, flagged=True)
            if conv.case_id is not None:
                self.store.add_unread(line_id, conv_id, True)
        alert_id = self._alert(conv_id, person_id, concerns, words, line_id,
                               practice=conv.practice if conv is not None else False)
        text = self._help(conv, self.runner_for(conv).flow if conv is not None else None, concerns)
        prompts = [Prompt(text, kind="safeguarding")]
        if conv_id is not None:
            self._write_prompts(conv_id, prompts)
        return Reply(conv_id, prompts, conv.status if conv else "none", accepted=False, alerts=[alert_id])
