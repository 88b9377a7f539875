"""Fuzzing (hypothesis, seeded): the loader, flow files of arbitrary bytes, CLI processes, the service and the Telegram frontend."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.flow import (
    CHAOS_FLOW,
)
from benchmarks.chaos.report import (
    Report,
)
from benchmarks.common import ROOT

# -- fuzzing --------------------------------------------------------------------------------

LINE_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$", re.S)


def _check_errors(errors, name: str, text: str | None = None) -> None:
    assert errors, "no flow and no error"
    for e in errors:
        s = str(e)
        m = LINE_RE.match(s)
        assert m and m.group("file") == name, f"not file:line:col: message: {s!r}"
        assert int(m.group("line")) >= 1 and int(m.group("col")) >= 1, s
        if text is not None:
            assert int(m.group("line")) <= text.count("\n") + 2, f"line out of range: {s!r}"
        assert "Traceback" not in s, s


def fuzz_loader(examples: int, seed: int) -> int:
    """Mutated flows and arbitrary text through load_flow_text: a flow or clear errors."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from benchmarks.common import ten_step_flow
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import FlowRunner, Input

    base = ten_step_flow().splitlines() + CHAOS_FLOW.splitlines()
    pieces = st.sampled_from(base + ["  - id: x", "    next: nowhere", "    type: scale", "    min: 10", "    max: 0",
                                     "    ask: '{{ answers.nope }}'", "    ask: '{% for x in y %}'", "steps: 5",
                                     "    options: []", "    if: answer >", "\t- tab", "id: [", "&a x", "*a",
                                     "    goto: q1", "version: -1", "audience: martians", "    pattern: '('",
                                     "    validate: [{if: answer == 1}]", "    optional: maybe", "%YAML 9.9", "---"])
    mutated = st.lists(pieces, min_size=0, max_size=40).map("\n".join)
    spliced = st.tuples(st.integers(0, len(base)), st.integers(0, len(base)), st.text(max_size=30)).map(
        lambda t: "\n".join(base[:t[0]]) + t[2] + "\n".join(base[t[1]:]))
    count = [0]

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.text(max_size=400), mutated, spliced))
    def prop(text):
        count[0] += 1
        flow, errors = load_flow_text(text, "<fuzz>")
        if flow is None:
            _check_errors(errors, "<fuzz>", text)
            return
        runner = FlowRunner(flow)  # a loaded flow always compiles and runs
        result = runner.start()
        for word in ("yes", "3", "/back", "x" * 50, "/skip", ""):
            if result.finished:
                break
            result = runner.step(result.session, Input.from_text(word))
            assert result.prompts or result.finished

    prop()
    return count[0]


def fuzz_files(examples: int, seed: int, folder: Path) -> int:
    """Arbitrary bytes as flow files: invalid UTF-8, NULs, BOMs, CRLF, huge lines."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from bot.engine.loader import load_flow_file

    good = CHAOS_FLOW.encode()
    blobs = st.one_of(
        st.binary(max_size=600),
        st.tuples(st.integers(0, len(good)), st.binary(min_size=1, max_size=8)).map(lambda t: good[:t[0]] + t[1] + good[t[0]:]),
        st.sampled_from([b"\xef\xbb\xbf" + good, good.replace(b"\n", b"\r\n"), good + b"\x00", b"\xff\xfe" + good,
                         good.decode().encode("utf-16"), b"id: x\n" + b"a" * 100_000]),
    )
    count = [0]
    path = folder / "fuzz.yaml"

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(blobs)
    def prop(data):
        count[0] += 1
        path.write_bytes(data)
        flow, errors = load_flow_file(path)
        if flow is None:
            _check_errors(errors, str(path))
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                assert flow is None and errors, "invalid UTF-8 accepted"

    prop()
    return count[0]


def cli_processes(folder: Path, invalid_stdin: bool = True) -> list[str]:
    """The CLI on bad files (and, with ``invalid_stdin``, undecodable bytes typed into
    ``chat``): exit codes, messages, never a traceback."""
    import subprocess

    problems = []
    bad = folder / "bad.yaml"
    bad.write_bytes(b"id: x\nversion: 1\ntitle: \xff\xfe broken\n")
    cases = [
        (["validate", str(bad)], None, 1, str(bad) + ":"),
        (["validate", str(folder / "missing.yaml")], None, 1, "missing.yaml"),
        (["chat", "scaling-checkin", "--db", str(folder / "c.db"), "--as", "fuzz", "--for", "adult"],
         b"\x00control\x01\n\x1b[31mred\x07\nok fine\n" + "🙂 émoji ".encode() * 500 + b"\n", None, None),
    ]
    if invalid_stdin:
        cases += [
            (["chat", "scaling-checkin", "--db", str(folder / "c2.db"), "--as", "fuzz2", "--for", "adult"],
             b"\xff\xfe bad bytes\n\xc3\x28\n7\n", None, None),
        ]
    for args, stdin, code, needle in cases:
        p = subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=60)
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        if "Traceback" in out + err:
            problems.append(f"restorative-bot {' '.join(args[:2])}: traceback\n{err[-1500:]}")
        if code is not None and p.returncode != code:
            problems.append(f"restorative-bot {' '.join(args[:2])}: exit {p.returncode}, expected {code}: {err[-500:]}")
        if needle and needle not in out + err:
            problems.append(f"restorative-bot {' '.join(args[:2])}: no clear message naming {needle!r}: {out[-300:]} {err[-300:]}")
    return problems


def fuzz_service(examples: int, seed: int, surrogates: bool = True) -> int:
    """Arbitrary text (control characters, emoji, 100 kB, and with ``surrogates`` the lone
    surrogates that undecodable bytes become) and button values through
    ConversationService, in every flow: a reply with something to show, every time."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from benchmarks.common import safeguarding
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.engine.runner import Input
    from bot.store import Store

    library = FlowLibrary.load()
    flows = [f.id for f in library]
    service = ConversationService(Store(":memory:"), library, safeguarding=safeguarding())
    pid = service.person("fuzz:1", "Fuzz")
    anything = st.characters(codec=None, exclude_categories=() if surrogates else ("Cs",))
    odd = ["🙂" * 3000, "\x00\x01\x02\x1b[2J", "a" * 100_000, "\u202e\u200b\ufeff", "/back", "/skip", "/cancel",
           "/repeat", "/help", "/start", "10", "-1", "1e9", "Yes", "no", " ", "", "\n\n", "NaN", "inf", "1,2,3", "0x10",
           "٣", "½", "e\u0301", "\r\n", "\t"]
    if surrogates:
        odd += ["\ud800", "\udcff hello", "caf\udce9"]  # what b"caf\xe9" becomes with errors="surrogateescape"
    texts = st.one_of(st.text(max_size=200), st.text(alphabet=anything, max_size=100), st.sampled_from(odd))
    buttons = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=4),
                        st.floats(allow_nan=True), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    kinds = st.sampled_from(["answer"] * 6 + ["back", "skip", "repeat", "cancel", "help", "continue"])
    count = [0]

    def prop(flow_id, inputs):
        count[0] += 1
        if service.active(pid) is None:
            service.start(pid, flow_id)
        for kind, text, button, as_button in inputs:
            if kind == "answer":
                inp = Input("answer", button=button) if as_button else Input.from_text(text)
            else:
                inp = Input(kind, text=f"/{kind}")
            reply = service.handle(pid, inp)
            if not reply.closed:
                assert reply.prompts, f"nothing to show for {inp!r}"
                assert all((p.text or "").strip() for p in reply.prompts), f"an empty prompt for {inp!r}"
                assert all("Traceback" not in p.text for p in reply.prompts)
            if service.active(pid) is None:
                service.start(pid, flow_id)

    test = given(st.sampled_from(flows), st.lists(st.tuples(kinds, texts, buttons, st.booleans()), min_size=1, max_size=12))(prop)
    for text in odd:  # every odd case at least once, whatever the example budget
        test = example(flows[0], [("answer", text, None, False)])(test)
    test = example(flows[0], [("answer", "", [1, None, {}], True), ("answer", "", float("nan"), True)])(test)
    test = settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))(test)
    hseed(seed)(test)()
    return count[0]


def fuzz_telegram(examples: int, seed: int, folder: Path) -> int:
    """Arbitrary messages and callback data, including forged button presses on another
    person's conversation, through the real Telegram frontend and fake Bot API."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from benchmarks.common import safeguarding
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.store import Store
    from bot.testing.telegram import running_bot

    class Errors(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    errors = Errors()
    logging.getLogger().addHandler(errors)
    loop = asyncio.new_event_loop()
    library = FlowLibrary.load()
    service = ConversationService(Store(folder / "tg-fuzz.db"), library, safeguarding=safeguarding())
    cm = running_bot(service)
    h = loop.run_until_complete(cm.__aenter__())
    victim = 4_000_001

    async def setup_victim():
        before = len(h.fake.messages(victim))
        h.fake.inject_command(victim, "/start")
        menu = await h.keyboard_after(victim, before)
        uid = h.fake.press_button(victim, menu.message_id, "s:scaling-checkin")
        await h.delivered(uid)
        await h.who(victim, before)  # "Who is filling this in?": a parent or carer
        uid = h.fake.inject_message(victim, "the victim's own hopes")
        await h.delivered(uid)

    loop.run_until_complete(setup_victim())
    victim_conv = service.store.active_conversation(service.store.person(f"tg:{victim}"))
    victim_answers = service.store.answers(victim_conv.id)
    cb_parts = st.one_of(st.sampled_from(["a", "t", "d", "s", "r", "h", "i", "zz", ""]), st.text(max_size=4))
    numbers = st.one_of(st.integers(-5, 10**12), st.just(victim_conv.id)).map(str)
    forged = st.lists(st.one_of(cb_parts, numbers), min_size=1, max_size=5).map(":".join).map(
        lambda s: s.encode()[:64].decode(errors="ignore"))
    actions = st.one_of(
        st.tuples(st.just("text"), st.text(min_size=1, max_size=300).filter(lambda s: s.strip())),
        st.tuples(st.just("text"), st.sampled_from(["/start", "/flows", "/back", "/skip", "/cancel", "/help", "/repeat",
                                                    "/ack", "/ack 99999", "/start bogus-invite", "/mydata", "/nonsense",
                                                    "🙂" * 1000, "\x00\x1b[31m", "x" * 4096])),
        st.tuples(st.just("press"), forged),
        st.tuples(st.just("press"), st.sampled_from([f"a:{victim_conv.id}:1:3", f"r:{victim_conv.id}:n",
                                                     f"h:{victim_conv.id}:n", f"d:{victim_conv.id}:0", "s:nope",
                                                     "s:scaling-checkin", f"t:{victim_conv.id}:0:0"])),
        st.tuples(st.just("photo"), st.just("")),
        st.tuples(st.just("sticker"), st.just("")),
    )
    user_ids = iter(range(4_100_000, 5_000_000))
    count = [0]

    async def play(user: int, steps) -> None:
        for kind, value in steps:
            before = len(h.fake.messages(user))
            answered = len(h.fake.answered_callbacks)
            if kind == "text":
                uid = h.fake.inject_message(user, value)
            elif kind == "press":
                msgs = h.fake.messages(user)
                target = msgs[-1].message_id if msgs else None
                if target is None:  # no bot message yet: get one
                    await h.delivered(h.fake.inject_command(user, "/start"))
                    msgs = h.fake.messages(user)
                    before = len(msgs)
                    target = msgs[-1].message_id
                uid = h.fake.press_button(user, target, value, force=True)
            elif kind == "photo":
                uid = h.fake.inject_photo(user)
            else:
                uid = h.fake.inject_sticker(user)
            await h.delivered(uid, timeout=15)
            if kind == "press":
                await h.fake.wait_for(lambda: len(h.fake.answered_callbacks) > answered, 10)
            else:  # something to read, every time
                await h.fake.wait_for(lambda: len(h.fake.messages(user)) > before, 10)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(actions, min_size=1, max_size=6))
    def prop(steps):
        count[0] += 1
        loop.run_until_complete(play(next(user_ids), steps))
        assert not errors.records, f"error logged: {errors.records[0].getMessage()} {errors.records[0].exc_info}"

    try:
        prop()
        assert service.store.answers(victim_conv.id) == victim_answers, "another person's conversation was changed"
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
        logging.getLogger().removeHandler(errors)
        service.store.close()
    return count[0]


def run_fuzz(examples: int, seed: int, workdir: Path, log=print, telegram_examples: int | None = None,
             undecodable: bool = True) -> Report:
    report = Report("fuzz")
    t0 = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="chaos-fuzz-", dir=workdir))
    parts = [("loader", lambda: fuzz_loader(examples, seed)),
             ("files", lambda: fuzz_files(max(20, examples // 2), seed, folder)),
             ("service", lambda: fuzz_service(examples, seed, surrogates=undecodable)),
             ("telegram", lambda: fuzz_telegram(telegram_examples or max(10, examples // 4), seed, folder))]
    try:
        for name, fn in parts:
            t = time.monotonic()
            try:
                n = fn()
                report.inputs += n
                log(f"  fuzz {name}: {n} examples, no traceback ({time.monotonic() - t:.1f} s)")
            except Exception as exc:  # hypothesis prints the falsifying example
                report.violations.append(f"fuzz {name}: {type(exc).__name__}: {str(exc)[:2000]}")
                log(f"  fuzz {name}: FAILED: {type(exc).__name__}: {str(exc)[:400]}")
        problems = cli_processes(folder, invalid_stdin=undecodable)
        report.violations += problems
        log(f"  fuzz cli processes: {len(problems)} problems")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    log(f"fuzz: {report.inputs} examples, {len(report.violations)} violations, {report.seconds:.0f} s")
    return report
