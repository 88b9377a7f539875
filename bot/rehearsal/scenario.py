"""Role-play scenarios (flows/rehearsal/scenarios/*.yaml): load and check.

A scenario is a situation, a persona and the persona's replies, keyed by the coach's labels
(why, blaming, lecture, leading, multiple, closed) and by the practice stage asked about.
Every problem is reported as ``file:line:col: message``; nothing here raises on a bad file.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.coach.rules import PRACTICE
from bot.engine.yamlpos import Pos, SourceError, YDict, YList, parse_yaml, read_source

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[2] / "flows" / "rehearsal" / "scenarios"
MODELS = ("restorative", "solution_focused", "fgc")
MISTAKE_REPLIES = ("why", "blaming", "lecture", "leading", "multiple", "closed")
OTHER_REPLIES = ("open", "repeat")
TOP_KEYS = {"id", "version", "title", "model", "situation", "persona", "opening", "stages", "examples", "rubric",
            "replies"}
RUBRIC_KEYS = {"impact", "future"}
REPLY_KEYS = {"say", "if_covered", "unless_covered"}
ID_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")


@dataclass(frozen=True)
class Reply:
    say: str
    if_covered: tuple[str, ...] = ()
    unless_covered: tuple[str, ...] = ()

    def fits(self, covered) -> bool:
        """``if_covered``: only once all these stages are covered; ``unless_covered``: only
        while they are not all covered (a guarded answer to a question asked too early)."""
        if self.if_covered and not all(s in covered for s in self.if_covered):
            return False
        return not (self.unless_covered and all(s in covered for s in self.unless_covered))

    @property
    def guard(self) -> bool:
        return bool(self.unless_covered)


@dataclass
class Scenario:
    id: str
    version: int
    title: str
    model: str
    situation: str
    persona: str
    opening: str
    stages: tuple[str, ...]
    impact: tuple[str, ...]
    future: tuple[str, ...]
    replies: dict = field(default_factory=dict)  # key -> tuple[Reply, ...]
    examples: dict = field(default_factory=dict)  # stage -> a good question for it, in this situation
    source: str = ""
    file: str = ""

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def flow_id(self) -> str:
        """The id its transcripts are stored under, beside flows' ids."""
        return f"rehearsal-{self.id}"


class ScenarioError(Exception):
    def __init__(self, errors: list[SourceError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class _Ctx:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[SourceError] = []

    def err(self, pos: Pos, message: str) -> None:
        self.errors.append(SourceError(self.file, pos.line, pos.col, message))


def _hint(word, choices) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; use one of: {', '.join(sorted(choices))}"


def _text(ctx: _Ctx, d: YDict, key: str, where: str) -> str | None:
    if key not in d:
        ctx.err(d.pos, f"{where} needs '{key}'")
        return None
    value = d[key]
    if not isinstance(value, str) or not value.strip():
        ctx.err(d.pos_of(key), f"'{key}' must be text; put quotes around it if it starts with a special character")
        return None
    return value.strip()


def _stage_list(ctx: _Ctx, d: YDict, key: str, where: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
        positions = [d.pos_of(key)]
    elif isinstance(value, YList):
        positions = [value.pos_of(i) for i in range(len(value))]
    else:
        ctx.err(d.pos_of(key), f"'{key}' in {where} must be a list of practice stages, like [rp_what_happened]")
        return ()
    out = []
    for item, pos in zip(value, positions):
        if item not in PRACTICE:
            ctx.err(pos, f"'{item}' is not a practice stage{_hint(item, PRACTICE)}")
        else:
            out.append(item)
    return tuple(out)


def _replies(ctx: _Ctx, key: str, value, pos: Pos) -> tuple[Reply, ...]:
    if isinstance(value, str):
        return (Reply(value.strip()),)
    if not isinstance(value, YList) or not value:
        ctx.err(pos, f"replies.{key} must be a list of replies (text, or a mapping with 'say')")
        return ()
    out = []
    for i, item in enumerate(value):
        ipos = value.pos_of(i)
        if isinstance(item, str) and item.strip():
            out.append(Reply(item.strip()))
        elif isinstance(item, YDict):
            for k in item:
                if k not in REPLY_KEYS:
                    ctx.err(item.key_pos_of(k), f"unknown key '{k}' in a reply{_hint(k, REPLY_KEYS)}")
            say = _text(ctx, item, "say", "a reply")
            if say:
                out.append(Reply(say, _stage_list(ctx, item, "if_covered", "a reply"),
                                 _stage_list(ctx, item, "unless_covered", "a reply")))
        else:
            ctx.err(ipos, "each reply is text, or a mapping with 'say' (and 'if_covered' / 'unless_covered')")
    return tuple(out)


def load_scenario_text(text: str, filename: str) -> tuple[Scenario | None, list[SourceError]]:
    data, errors = parse_yaml(text, filename)
    if data is None:
        if not errors:
            errors = [SourceError(filename, 1, 1, "the file is empty; a scenario needs id, title, situation, persona, opening, stages and replies")]
        return None, errors
    ctx = _Ctx(filename)
    ctx.errors.extend(errors)
    if not isinstance(data, YDict):
        ctx.err(getattr(data, "pos", Pos(1, 1)), "a scenario must be a mapping (id, title, situation, ...), not a list or text")
        return None, ctx.errors
    for key in data:
        if key not in TOP_KEYS:
            ctx.err(data.key_pos_of(key), f"unknown key '{key}' in a scenario{_hint(key, TOP_KEYS)}")
    sid = data.get("id")
    if not isinstance(sid, str) or not ID_RE.match(sid):
        ctx.err(data.pos_of("id"), "id must be lower-case letters, digits and '-', starting with a letter, at most 30 characters")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        ctx.err(data.pos_of("version"), "version must be a whole number from 1 up")
    model = data.get("model")
    if model not in MODELS:
        ctx.err(data.pos_of("model"), f"model must be one of: {', '.join(MODELS)}")
    title = _text(ctx, data, "title", "a scenario")
    situation = _text(ctx, data, "situation", "a scenario")
    persona = _text(ctx, data, "persona", "a scenario")
    opening = _text(ctx, data, "opening", "a scenario")
    stages = _stage_list(ctx, data, "stages", "the scenario")
    if "stages" not in data or not stages:
        ctx.err(data.pos_of("stages") if "stages" in data else data.pos, "a scenario needs 'stages': the practice stages it expects, in order")
    if len(set(stages)) != len(stages):
        ctx.err(data.pos_of("stages"), "a stage is listed twice in 'stages'; list each once, in the order expected")
    impact = future = ()
    rubric = data.get("rubric")
    if rubric is not None:
        if not isinstance(rubric, YDict):
            ctx.err(data.pos_of("rubric"), "rubric must be a mapping with 'impact' and 'future' stage lists")
        else:
            for k in rubric:
                if k not in RUBRIC_KEYS:
                    ctx.err(rubric.key_pos_of(k), f"unknown key '{k}' in rubric{_hint(k, RUBRIC_KEYS)}")
            impact = _stage_list(ctx, rubric, "impact", "rubric")
            future = _stage_list(ctx, rubric, "future", "rubric")
    if not impact or not future:
        ctx.err(data.pos_of("rubric") if "rubric" in data else data.pos,
                "a scenario needs 'rubric:' with 'impact' and 'future' stage lists (what counts as curiosity about impact and future focus)")
    replies: dict = {}
    raw = data.get("replies")
    if not isinstance(raw, YDict):
        ctx.err(data.pos_of("replies") if "replies" in data else data.pos, "a scenario needs 'replies:', a mapping from a coach label or stage to replies")
    else:
        allowed = set(MISTAKE_REPLIES) | set(OTHER_REPLIES) | set(PRACTICE)
        for key, value in raw.items():
            if key not in allowed:
                ctx.err(raw.key_pos_of(key), f"'{key}' is not a coach label or practice stage{_hint(key, allowed)}")
                continue
            replies[key] = _replies(ctx, key, value, raw.pos_of(key))
        for key in MISTAKE_REPLIES + OTHER_REPLIES:
            if key not in raw:
                ctx.err(raw.pos, f"replies needs '{key}' (what the persona says to a {key} question)")
        for stage in stages:
            if stage not in raw:
                ctx.err(data.pos_of("stages"), f"stage '{stage}' has no replies; add replies.{stage}")
            elif replies.get(stage) and not any(not r.if_covered for r in replies[stage]) and stage == stages[0]:
                ctx.err(raw.pos_of(stage), f"the first stage '{stage}' needs a reply without 'if_covered'")
    examples: dict = {}
    raw_examples = data.get("examples")
    if raw_examples is not None:
        if not isinstance(raw_examples, YDict):
            ctx.err(data.pos_of("examples"), "examples must be a mapping from a practice stage to a good question for it")
        else:
            for stage, question in raw_examples.items():
                if stage not in PRACTICE:
                    ctx.err(raw_examples.key_pos_of(stage), f"'{stage}' is not a practice stage{_hint(stage, PRACTICE)}")
                elif not isinstance(question, str) or not question.strip():
                    ctx.err(raw_examples.pos_of(stage), "an example must be the question as you would ask it")
                else:
                    examples[stage] = question.strip()
    if ctx.errors:
        return None, ctx.errors
    return Scenario(sid, version, title, model, situation, persona, opening, stages, impact, future, replies,
                    examples, text, filename), []


def load_scenario_file(path: Path) -> tuple[Scenario | None, list[SourceError]]:
    text, errors = read_source(path)
    if text is None:
        return None, errors
    return load_scenario_text(text, str(path))


def scenario_files(paths) -> tuple[list[Path], list[SourceError]]:
    found, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in list(p.rglob("*.yaml")) + list(p.rglob("*.yml")) if not f.name.startswith(".")))
        elif p.exists():
            found.append(p)
        else:
            errors.append(SourceError(str(p), 1, 1, "no such file or folder"))
    return found, errors


def validate_scenarios(paths=None) -> tuple[list[Scenario], list[SourceError]]:
    files, errors = scenario_files(paths or [DEFAULT_SCENARIOS])
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for f in files:
        scenario, errs = load_scenario_file(f)
        errors.extend(errs)
        if scenario is None:
            continue
        if scenario.id in seen:
            errors.append(SourceError(str(f), 1, 1, f"scenario '{scenario.id}' is also defined in {seen[scenario.id]}; change one id"))
            continue
        seen[scenario.id] = str(f)
        out.append(scenario)
    return out, errors


def load_scenarios(paths=None) -> dict[str, Scenario]:
    scenarios, errors = validate_scenarios(paths)
    if errors:
        raise ScenarioError(errors)
    return {s.id: s for s in scenarios}
