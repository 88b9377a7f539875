"""The flood: many accounts without a role sending disclosures and bulky messages while a genuine alert must get through."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.checks import (
    _db,
    _error_lines,
)
from benchmarks.chaos.kill_faults import (
    _harness_failed,
    _keep_or_clean,
    _wait_up,
)
from benchmarks.chaos.report import (
    BotState,
    Report,
)
from benchmarks.common import ROOT, stop_serve
from benchmarks.users import WatchedFake

# -- the flood ------------------------------------------------------------------------------

FLOOD_PRACTITIONER, FLOOD_FAMILY = 998, 997
FLOOD_TEXTS = ["i want to die", "he hits me and i dont feel safe at home", "i am going to kill myself tonight",
               "someone touches me at night", "nobody feeds us and i am scared"]


def _flood_text(rng: random.Random, user: int, n: int, bulky_kb: int) -> str:
    words = f"{rng.choice(FLOOD_TEXTS)} ({user}-{n})"
    if rng.random() < 0.5:  # bulky: the same words, padded to a few KB
        words += " " + "x" * (bulky_kb * 1024 - len(words) - 1)
    return words


async def run_flood(*, accounts: int, messages: int, seed: int, workdir: Path, chat_interval: float = 1.0,
                    probes: int = 3, bulky_kb: int = 4, timeout: float = 60.0, log=print) -> Report:
    """Many accounts without a role flood the real serve process; genuine alerts and staff
    commands are timed while it lasts (see the module docstring)."""
    from benchmarks.common import LEAD, serve_argv, serve_env
    from benchmarks.users import SimUser, button_data, has, has_button

    rng = random.Random(seed)
    report = Report("flood", users=accounts)
    folder = Path(tempfile.mkdtemp(prefix="chaos-flood-", dir=workdir))
    db, serve_log, config = folder / "flood.db", folder / "serve.log", folder / "flood-config.yaml"
    # the real limits (no 'limits:' section): this part is about them
    config.write_text(f"safeguarding:\n  leads: [{LEAD}]\nroles:\n  practitioner: [{FLOOD_PRACTITIONER}]\n"
                      "demo_flow: scaling-checkin\n", encoding="utf-8")
    t_start = time.monotonic()
    alert_s: list[float] = []
    cases_s: list[float] = []
    ack_s: list[float] = []
    try:
        async with WatchedFake() as fake:
            with open(serve_log, "ab") as err:
                proc = await asyncio.create_subprocess_exec(
                    *serve_argv(db, config), cwd=str(ROOT), env=serve_env(fake.base_url),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err)
            try:
                await _wait_up(fake, proc, BotState())
                pract, fam, lead = (SimUser(fake, u, timeout) for u in (FLOOD_PRACTITIONER, FLOOD_FAMILY, LEAD))
                made = await pract.say("/invite scaling-checkin FLOOD-1 --for adult", has("start="))
                code = re.search(r"start=(\S+)", made.text).group(1)
                consent = await fam.say(f"/start {code}", has_button("i:"))
                await fam.press(consent, button_data(consent, "Yes, start"), has("best hopes"))
                # from now on, like Telegram: about one message a second to one chat, and a
                # 429 Too Many Requests with a retry_after for a send that comes too soon
                fake.chat_send_interval, fake.chat_send_mode = chat_interval, "429"
                flooders = [3_000_000 + seed % 1000 * 1000 + i for i in range(accounts)]
                injected = [0, 0]  # messages, last update id

                async def flood() -> None:
                    for n in range(messages):
                        for u in flooders:
                            injected[1] = fake.inject_message(u, _flood_text(rng, u, n, bulky_kb), first_name="Flood")
                            injected[0] += 1
                        await asyncio.sleep(0.05)  # a round from every account, twenty rounds a second

                flooding = asyncio.create_task(flood())
                for k in range(probes):
                    await asyncio.sleep(0.5 if k == 0 else 1.0)  # the flood is under way
                    words = f"my stepdad hurts me and i am scared to go home, probe {k}"
                    before_lead, before_pract = fake.count(LEAD), fake.count(FLOOD_PRACTITIONER)
                    t0 = time.perf_counter()
                    fake.inject_message(FLOOD_FAMILY, words)
                    got = await fake.wait_new(LEAD, before_lead, has(words), timeout)
                    if got is None:
                        report.violations.append(f"probe {k}: the genuine alert did not reach the lead within {timeout:.0f} s")
                        continue
                    alert_s.append(fake.arrived[(LEAD, got.message_id)] - t0)
                    to_pract = await fake.wait_new(FLOOD_PRACTITIONER, before_pract, has(words), timeout)
                    if to_pract is None:
                        report.violations.append(f"probe {k}: the genuine alert did not reach the practitioner")
                    try:
                        await pract.say("/cases", has("FLOOD-1"))
                        cases_s.append(pract.latencies[-1])
                        alert_id = re.search(r"/ack (\d+)", got.text).group(1)
                        await lead.say(f"/ack {alert_id}", has("Reminders have stopped"))
                        ack_s.append(lead.latencies[-1])
                    except TimeoutError as exc:
                        report.violations.append(f"probe {k}: {exc}")
                await flooding
                await fake.wait_for(lambda: fake.is_confirmed(injected[1]), timeout=timeout)  # all read
                report.inputs = injected[0]
                lead_msgs = fake.count(LEAD)
            finally:
                if not await stop_serve(proc):
                    report.violations.append("serve did not stop on SIGTERM within 20 s")
        conn = _db(db)
        try:
            doubled = conn.execute("""SELECT person_id, COUNT(*) FROM alerts WHERE acknowledged_at IS NULL
                                      GROUP BY person_id HAVING COUNT(*) > 1""").fetchall()
            alerts = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
            stored = conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0]
            limited = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'rate.limited'").fetchone()[0]
            audit_rows = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        finally:
            conn.close()
        if doubled:
            report.violations.append(f"{len(doubled)} people have more than one open alert")
        if stored > accounts * 25 + 100:
            report.violations.append(f"{stored} inputs stored from {accounts} accounts: the cap did not hold")

        def stat(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}/{max(xs):.2f} s" if xs else "none"

        report.notes.append("genuine alert to lead, each probe: " + ", ".join(f"{x:.2f}" for x in alert_s)
                            + " s; /cases: " + ", ".join(f"{x:.2f}" for x in cases_s) + " s")

        report.figures = {
            "accounts": accounts, "flood messages": report.inputs, "genuine alert to lead (median/max)": stat(alert_s),
            "/cases (median/max)": stat(cases_s), "/ack (median/max)": stat(ack_s), "alerts": alerts,
            "messages to the lead": lead_msgs, "inputs stored": stored, "audit rows": audit_rows,
            "rate-limit audit rows": limited,
        }
        errors = _error_lines(serve_log)
        report.error_logs = len(errors)
        if errors:
            report.violations.append(f"{len(errors)} error lines in serve's log, e.g. {errors[0]}")
    except Exception as exc:  # the harness itself must report, not crash
        _harness_failed(report, "flood", exc, serve_log)
    finally:
        _keep_or_clean(report, folder, workdir / f"chaos-flood-failed-{seed}", t_start)
    log(report.line())
    return report
