"""The kill (SIGKILL and restart) and faults (429, 500, dropped connections, slow replies) runs."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.checks import (
    _error_lines,
    check_acknowledged,
    check_final,
    check_none_lost,
    count_repeats,
)
from benchmarks.chaos.flow import (
    CHAOS_FLOW,
    FLOW_ID,
    plan_for,
)
from benchmarks.chaos.person import (
    ChaosUser,
)
from benchmarks.chaos.report import (
    BotState,
    Report,
)
from benchmarks.common import start_serve, stop_serve, write_flow
from benchmarks.users import WatchedFake

# -- the kill and fault runs ----------------------------------------------------------------

async def _wait_up(fake: WatchedFake, proc, bot: BotState, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while fake.polls <= bot.polls_at_start:
        if proc.returncode is not None:
            raise RuntimeError(f"serve exited with {proc.returncode} before polling")
        if time.monotonic() > end:
            raise TimeoutError("serve did not start polling")
        await asyncio.sleep(0.02)
    bot.up, bot.ready_at = True, time.monotonic()


async def run_scenario(name: str, *, duration: float, users: int, seed: int, workdir: Path, kills: bool | int,
                       faults: bool | int, stall: float = 4.0, finish: float = 60.0, log=print) -> Report:
    """``kills`` / ``faults``: True for as many as fit in ``duration``; a number for exactly
    that many, however long they take (users carry on conversations until they are done),
    so that a slow machine runs the same chaos, only slower."""
    rng = random.Random(seed)
    report = Report(name, users=users)
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-", dir=workdir))
    flows = folder / "flows"
    write_flow(flows, FLOW_ID, CHAOS_FLOW)
    db, serve_log = folder / "chaos.db", folder / "serve.log"
    t_start = time.monotonic()
    deadline = t_start + duration
    bot = BotState(chaos_done=not (kills is not True and kills) and not (faults is not True and faults))
    try:
        async with WatchedFake() as fake:
            ids = [900_000 + seed % 1000 * 1000 + i for i in range(users)]
            people = [ChaosUser(fake, u, plan_for(u, rng), bot, report, stall) for u in ids]

            async def serve():
                bot.polls_at_start = fake.polls
                with open(serve_log, "ab") as err:
                    proc = await start_serve(db, fake, folder, flows=[flows], stderr=err, demo_flow=FLOW_ID)
                await _wait_up(fake, proc, bot)
                return proc

            proc = await serve()
            # users start staggered over the first second
            async def person(p: ChaosUser):
                await asyncio.sleep(rng.random())
                await p.run(deadline, finish)  # until the deadline and the chaos done; then a while to finish

            tasks = [asyncio.create_task(person(p)) for p in people]
            injector = asyncio.create_task(_inject_faults(fake, rng, deadline, report, faults, bot)) if faults else None
            try:
                while kills and ((report.kills < kills) if kills is not True
                                 else time.monotonic() < deadline and not all(t.done() for t in tasks)):
                    await asyncio.sleep(rng.uniform(0.3, 3.0))  # a random moment
                    if kills is True and time.monotonic() >= deadline:
                        break
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    bot.up = False
                    report.kills += 1
                    check_acknowledged(db, people, report)
                    proc = await serve()
                if kills is not True and kills and injector is None:
                    bot.finish_chaos()
                if injector is not None:
                    await injector  # a fixed number: wait for every fault to be taken
                finish_by = max(time.monotonic(), deadline) + finish  # then a while, at most, to finish
                while not all(t.done() for t in tasks) and time.monotonic() < finish_by:
                    await asyncio.sleep(0.1)
                if injector is not None:
                    injector.cancel()
                    fake.clear_faults()
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if not await stop_serve(proc):
                    report.violations.append("serve did not stop on SIGTERM within 20 s")
            count_repeats(fake, people, report)
            sent = [(p.id, u) for p in people for u in p.updates]
        check_final(db, people, report)
        check_none_lost(db, sent, report)
        bad = {int(m.group(1)) for v in report.violations if (m := re.match(r"user (\d+):", v))}
        for p in people:
            if p.id in bad:
                report.notes.append(f"trace of user {p.id}:\n    " + "\n    ".join(p.trace))
        unfinished = [p.id for p in people if not p.done]
        if unfinished:
            report.violations.append(f"{len(unfinished)} users could not finish in time: {unfinished[:10]}")
        errors = _error_lines(serve_log)
        report.error_logs = len(errors)
        if errors:
            report.notes += errors[:5]
        if faults is False and errors:
            report.violations.append(f"{len(errors)} error lines in serve's log, e.g. {errors[0]}")
    except Exception as exc:  # the harness itself must report, not crash
        _harness_failed(report, name, exc, serve_log)
    finally:
        _keep_or_clean(report, folder, workdir / f"chaos-{name}-failed-{seed}", t_start)
    log(report.line())
    return report


def _harness_failed(report, name: str, exc: Exception, serve_log: Path) -> None:
    """The harness itself failed: a violation, with the tail of serve's log to say why."""
    tail = serve_log.read_text(errors="replace")[-3000:] if serve_log.exists() else ""
    report.violations.append(f"{name}: {type(exc).__name__}: {exc}\nserve log tail:\n{tail}")


def _keep_or_clean(report, folder: Path, keep: Path, t_start: float) -> None:
    """Time the run; keep its database and serve log where a violation was found, else delete them."""
    report.seconds = time.monotonic() - t_start
    if report.violations:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.move(str(folder), keep)
        report.notes.append(f"kept the database and serve log in {keep}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


FAULT_METHODS = ["sendMessage", "sendMessage", "editMessageText", "answerCallbackQuery", "getUpdates",
                 "editMessageReplyMarkup"]


async def _inject_faults(fake: WatchedFake, rng: random.Random, deadline: float, report: Report,
                         count: bool | int = True, bot: BotState | None = None) -> None:
    """A steady trickle of faults, at most a few queued at once (so retries can succeed):
    until ``deadline``, or (``count`` a number) exactly that many, each taken by a call."""
    fixed = count is not True
    try:
        await _trickle(fake, rng, deadline, report, count if fixed else None)
    finally:
        if fixed and bot is not None:
            bot.finish_chaos()


async def _trickle(fake: WatchedFake, rng: random.Random, deadline: float, report: Report, count: int | None) -> None:
    while (report.faults < count) if count is not None else time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        if len(fake._faults) >= 3:  # noqa: SLF001 - the queue of faults not yet taken
            continue
        method = rng.choice(FAULT_METHODS)
        kind = rng.choice(["429", "500", "drop", "slow"])
        if kind == "429":
            fake.fail_next(method, status=429, retry_after=1)
        elif kind == "500":
            fake.fail_next(method, status=rng.choice([500, 502, 503]))
        elif kind == "drop":
            fake.fail_next(method, drop_connection=True)
        else:
            fake.fail_next(method, delay=rng.uniform(0.2, 2.0))
        report.faults += 1
    while count is not None and fake._faults:  # noqa: SLF001 - each fault asked for is taken by a call
        await asyncio.sleep(0.05)
