"""Scripted conversations: YAML files that pin a flow's behaviour.

A script names a flow and lists conversations; each is a list of ``bot:`` expectations
(``*`` wildcards), ``user:`` lines and ``press:`` button presses, then the answers and
status expected at the end. A :class:`Driver` plays a conversation; the default one runs
through the conversation service on an in-memory store, and frontends (Telegram) provide
their own so the same scripts prove every frontend gives the same answers.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.engine.yamlpos import SourceError, YDict, YList, parse_yaml, read_source
from bot.respondent import RESPONDENTS
from bot.respondent import parse as parse_respondent


@dataclass
class ScriptLine:
    kind: str  # bot | user | press
    text: str
    line: int


@dataclass
class ScriptedConversation:
    file: str
    flow: str
    name: str
    script: list[ScriptLine]
    answers: dict | None
    status: str | None
    line: int
    today: str | None = None  # date answers ("next Tuesday") count from this day (YYYY-MM-DD)
    respondent: str | None = None  # who is answering (set as a practitioner would on the invitation)
    alerts: list[str] | None = None  # the alerts the lead is sent, in order (``*`` wildcards)
    answers_subset: bool = False  # the answers listed are checked, others recorded are allowed
    case: dict | None = None  # the worker's texts for the case ({{ case.KEY }}); None: not in a case
    previous: dict | None = None  # answers from an earlier conversation by the same person ({{ previous.X }})
    language: str | None = None  # the language the person chose (issue 19): /language in Telegram, --lang in the terminal


@dataclass
class Outcome:
    conversation: ScriptedConversation
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class Driver(Protocol):
    # case: the worker's texts for the case the conversation runs in (a script's case:)
    def start(self, flow_id: str, respondent: str | None = None, case: dict | None = None) -> list[str]: ...
    # for scripts with previous: an earlier, finished conversation on the flow by the same person
    def seed_previous(self, flow_id: str, answers: dict) -> None: ...
    def send(self, text: str) -> list[str]: ...
    def press(self, value: str) -> list[str]: ...
    def answers(self) -> dict: ...
    def status(self) -> str: ...
    def alerts(self) -> list[str]: ...  # the alert texts the lead is sent (for scripts with alerts:)


def load_scripts(paths, rehearsals: bool = False) -> tuple[list[ScriptedConversation], list[SourceError]]:
    """Scripted conversations for flows, or (``rehearsals``) for role-play scenarios: those
    live in a ``rehearsal`` folder (flows/tests/rehearsal/) and name a ``scenario:``."""
    files: list[Path] = []
    errors: list[SourceError] = []
    key = "scenario" if rehearsals else "flow"
    other = "flow" if rehearsals else "scenario"
    named: set[Path] = set()  # files named one by one: which kind they are is read from the file
    for p in map(Path, paths):
        if p.is_dir():
            tests = p / "tests" if (p / "tests").is_dir() and p.name != "tests" else p
            found = sorted(list(tests.rglob("*.yaml")) + list(tests.rglob("*.yml")))
            # a folder's kind by where its files are: under a "rehearsal" folder (the one named
            # too, as in  test-flows flows/tests/rehearsal), or not
            files.extend(f for f in found if ("rehearsal" in f.relative_to(tests.parent).parts[:-1]) == rehearsals)
        elif p.exists():
            files.append(p)
            named.add(p)
        else:
            errors.append(SourceError(str(p), 1, 1, "no such file or folder"))
    convs: list[ScriptedConversation] = []
    for f in files:
        text, errs = read_source(f)
        if text is None:
            errors.extend(errs)
            continue
        data, errs = parse_yaml(text, str(f))
        errors.extend(errs)
        if data is None and errs:
            continue
        if not isinstance(data, YDict):
            errors.append(SourceError(str(f), 1, 1, "a script file must be a mapping with 'flow' and 'conversations'"))
            continue
        flow = data.get(key)
        if f in named and flow is None and data.get(other) is not None:
            continue  # the other kind of script: the other player plays it
        items = data.get("conversations")
        file_respondent = data.get("respondent")
        if not isinstance(flow, str) or not isinstance(items, YList):
            errors.append(SourceError(str(f), data.pos.line, data.pos.col, f"a script file needs '{key}: <{key} id>' and a 'conversations:' list"))
            continue
        for i, item in enumerate(items):
            pos = items.pos_of(i)
            if not isinstance(item, YDict) or not isinstance(item.get("script"), YList):
                errors.append(SourceError(str(f), pos.line, pos.col, "each conversation needs 'name' and a 'script:' list"))
                continue
            lines = []
            script = item["script"]
            for j, entry in enumerate(script):
                epos = script.pos_of(j)
                if not isinstance(entry, YDict) or len(entry) != 1 or next(iter(entry)) not in ("bot", "user", "press"):
                    errors.append(SourceError(str(f), epos.line, epos.col, "each script line is one of  - bot: ...  - user: ...  - press: ..."))
                    continue
                kind, value = next(iter(entry.items()))
                lines.append(ScriptLine(kind, "" if value is None else str(value), epos.line))
            answers = item.get("answers")
            respondent = item.get("respondent", file_respondent)
            if respondent is not None and parse_respondent(respondent) is None:
                where = item.pos_of("respondent") if "respondent" in item else data.pos_of("respondent")
                errors.append(SourceError(str(f), where.line, where.col,
                                          f"respondent '{respondent}' is not known; use {', '.join(RESPONDENTS)}"))
                continue
            previous = item.get("previous")
            if previous is not None and not isinstance(previous, dict):
                ppos = item.pos_of("previous")
                errors.append(SourceError(str(f), ppos.line, ppos.col, "'previous' must be a mapping of step id to the"
                                          " answer given last time, e.g.  previous: {scale_now: 4}"))
                continue
            language = item.get("language", data.get("language"))
            if language is not None:
                from bot import i18n

                if not i18n.known(str(language)):
                    where = item.pos_of("language") if "language" in item else data.pos_of("language")
                    errors.append(SourceError(str(f), where.line, where.col,
                                              f"language '{language}' is not known; use one of {', '.join(i18n.languages())}"))
                    continue
            alerts = item.get("alerts")
            if alerts is not None and not (isinstance(alerts, YList) and all(isinstance(a, str) for a in alerts)):
                apos = item.pos_of("alerts")
                errors.append(SourceError(str(f), apos.line, apos.col, "'alerts' must be a list of the alert texts the lead is sent (* wildcards)"))
                continue
            case = item.get("case", data.get("case"))
            if case is not None and not (isinstance(case, dict) and all(
                    isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in case.items())):
                where = item.pos_of("case") if "case" in item else data.pos_of("case")
                errors.append(SourceError(str(f), where.line, where.col, "'case' must be a mapping from a key to the "
                                          "worker's text, e.g.  case: {bottom_lines: Sam goes to school every day.}"))
                continue
            convs.append(ScriptedConversation(
                str(f), str(item.get(key, flow)), str(item.get("name", f"conversation {i + 1}")), lines,
                dict(answers) if isinstance(answers, dict) else None, item.get("status"), pos.line,
                str(item.get("today", data.get("today"))) if item.get("today", data.get("today")) else None,
                parse_respondent(respondent) if respondent is not None else None,
                list(alerts) if alerts is not None else None,
                item.get("answers_subset") is True,
                {k: str(v) for k, v in case.items()} if case is not None else None,
                _norm(dict(previous)) if previous is not None else None,
                str(language) if language is not None else None,
            ))
    return convs, errors


def _wildcard(pattern: str) -> re.Pattern:
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile(".*".join(parts), re.DOTALL)


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


async def _call(value):
    return await value if inspect.isawaitable(value) else value


def play(conv: ScriptedConversation, driver: Driver) -> Outcome:
    """Play a conversation with a synchronous driver."""
    return asyncio.run(play_async(conv, driver))


async def play_async(conv: ScriptedConversation, driver: Driver) -> Outcome:
    """Play a conversation; the driver's methods may be coroutines (e.g. over Telegram)."""
    from datetime import date

    from bot.engine.dates import fixed_today

    try:
        day = date.fromisoformat(conv.today) if conv.today else None
    except ValueError:
        return Outcome(conv, [f"{conv.file}:{conv.line}: 'today' must be a date like 2026-01-12, not {conv.today!r}"])
    with fixed_today(day):
        return await _play(conv, driver)


async def _play(conv: ScriptedConversation, driver: Driver) -> Outcome:
    out = Outcome(conv)
    extra = {"case": conv.case} if conv.case is not None else {}
    if conv.previous is not None:
        if not hasattr(driver, "seed_previous"):
            return Outcome(conv, [f"{conv.file}:{conv.line}: this driver cannot set up an earlier conversation ('previous:')"])
        await _call(driver.seed_previous(conv.flow, conv.previous))
    options = {}
    if conv.respondent is not None:
        options["respondent"] = conv.respondent
    if conv.language is not None:
        options["language"] = conv.language
    pending = await _call(driver.start(conv.flow, **options, **extra))
    for line in conv.script:
        where = f"{conv.file}:{line.line}"
        if line.kind == "bot":
            # the next message the bot said, not any later one: a message the script does
            # not expect is never skipped silently
            rx = _wildcard(line.text.strip())
            if pending and rx.fullmatch(pending[0].strip()):
                pending = pending[1:]
            else:
                seen = "\n".join(f"    | {s}".replace("\n", "\n    | ") for s in pending) or "    (nothing)"
                later = any(rx.fullmatch(p.strip()) for p in pending)
                out.failures.append(f"{where}: expected the bot to say next\n    {line.text!r}\nbut it said:\n{seen}"
                                    + ("\n  (it said that later: the script skips a message it does not expect)"
                                       if later else ""))
                return out
        elif line.kind == "user":
            pending = await _call(driver.send(line.text))
        else:
            pending = await _call(driver.press(line.text))
    if conv.answers is not None:
        got = await _call(driver.answers())
        for key, want in conv.answers.items():
            have = got.get(key, "<no answer>")
            if _norm(have) != _norm(want):
                diff = "\n".join(difflib.unified_diff([repr(want)], [repr(have)], "expected", "recorded", lineterm=""))
                out.failures.append(f"{conv.file}:{conv.line}: answer '{key}' differs\n{diff}")
        extra = [k for k in got if k not in conv.answers]
        if extra and not conv.answers_subset:
            out.failures.append(f"{conv.file}:{conv.line}: answers recorded but not in the script: "
                                + ", ".join(f"'{k}': {got[k]!r}" for k in extra)
                                + " (list them under answers:, or add answers_subset: true)")
    status = await _call(driver.status())
    if conv.status is not None and status != conv.status:
        out.failures.append(f"{conv.file}:{conv.line}: expected status {conv.status}, got {status}")
    if conv.alerts is not None:
        sent = await _call(driver.alerts())
        matched = len(sent) == len(conv.alerts) and all(
            _wildcard(want.strip()).fullmatch(got.strip()) for want, got in zip(conv.alerts, sent))
        if not matched:
            seen = "\n".join(f"    | {a}".replace("\n", "\n    | ") for a in sent) or "    (none)"
            out.failures.append(f"{conv.file}:{conv.line}: expected {len(conv.alerts)} alert(s) to the lead like\n    "
                                + "\n    ".join(repr(a) for a in conv.alerts) + f"\nbut the lead was sent:\n{seen}")
    return out

