"""Benchmark 6: the review website on the scale database (issue 16).

The scale benchmark's database (100,000 conversations, 1,000,000 answers, 1,000
practitioners with 10 cases of 10 conversations each), plus a supervisor of 10 of those
practitioners, an administrator, and 20 cases where two people answered the scaling
check-in six times each through the real service (the charts' data). Then each page is
requested through the ASGI application (httpx, no network: the time is the server's, from
the request to the last byte of the page) as the person it is for, on random targets, and
the median of each run is kept. Targets: every page under 100 ms, a case's chart under 200 ms.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Context, Figure, Target, long_flow, safeguarding
from benchmarks.scale import FLOW_ID, PER_CASE, QUESTIONS, generate

CHART_CASES = 20
CHECKINS = 6


def _prepare(path: Path, flow_text: str, facts: dict, log) -> dict:
    """Staff and scale answers, through the store's and the service's own functions."""
    from bot.access import Access
    from bot.config import Config
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.engine.loader import load_flow_text
    from bot.engine.runner import Input
    from bot.store import Store

    t0 = time.perf_counter()
    flow, _ = load_flow_text(flow_text, "<scale>")
    library = FlowLibrary([flow, *FlowLibrary.load()])
    store = Store(path)
    practitioners = [store.case_by_id(k * 10 + 1)["practitioner_id"] for k in range(10)]
    keys = [store.get_person(p)["key"] for p in practitioners]
    config = Config(roles={"admin": [1], "supervisor": [2]}, teams={2: [int(k[3:]) for k in keys]}, leads=[3])
    access = Access(store, library, config)
    access.seed()
    service = ConversationService(store, library, safeguarding=safeguarding())
    n = 0
    chart_cases = []
    for c in range(CHART_CASES):
        ref = f"CASE-{c * 10 + 1:06d}"  # held by practitioners[c // 10 * ...]: the first cases of each
        holder = store.cases_by_ref(ref)[0]["practitioner_id"]
        holder_key = store.get_person(holder)["key"]
        for who in range(2):
            fam = f"tg:{9_000_000_000 + c * 10 + who}"
            for week in range(CHECKINS):
                code, invite_id = access.invite(holder_key, "scaling-checkin", ref, "adult")
                access.open_invite(fam, code)
                n += 1

                def start(person_id, flow_id, case_id, respondent=None, n=n):
                    return service.start(person_id, flow_id, input_key=f"web-bench:{n}:0", frontend="telegram",
                                         chat_id=fam[3:], case_id=case_id, respondent=respondent).conversation_id

                conv = access.accept_invite(fam, invite_id, start)
                pid = store.person(fam)
                for i, text in enumerate(["We talk more", str((week + who * 2) % 11), "We eat together", "Less shouting",
                                          "8", "/skip"]):
                    service.handle(pid, Input.from_text(text), input_key=f"web-bench:{n}:{i + 1}", conversation_id=conv)
        chart_cases.append((ref, holder_key))
    store.db.execute("ANALYZE")
    store.close()
    log(f"  web: prepared {CHART_CASES} cases with scale answers ({n} conversations) in {time.perf_counter() - t0:.0f} s")
    return {"library": library, "config": config, "chart_cases": chart_cases, "practitioners": keys}


class Pages:
    def __init__(self, path: Path, prep: dict, facts: dict, seed: int):
        from bot.web.server import make_site

        self.site = make_site(str(path), prep["library"], prep["config"], safeguarding=safeguarding())
        self.app = self.site.app()
        self.prep, self.facts = prep, facts
        self.rng = random.Random(seed)
        self.clients: dict[str, object] = {}

    async def client(self, key: str):
        import httpx

        if key not in self.clients:
            session = await self.site.db(lambda: self.site.signin.redeem(self.site.signin.link(key)))
            c = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="https://bench.test")
            c.cookies.set(self.site.session_cookie, session.token, domain="bench.test")
            self.clients[key] = c
        return self.clients[key]

    async def timed(self, key: str, url: str, expect: str | None = None) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) for one request, first byte to last."""
        c = await self.client(key)
        t0, c0 = time.perf_counter(), time.process_time()
        r = await c.get(url)
        body = r.content
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        assert expect is None or expect.encode() in body, (url, expect)
        return dt, dc

    def random_case(self) -> tuple[str, str]:
        """A random case of the big database and its practitioner's key."""
        k = self.rng.randrange(self.facts["cases"]) + 1
        ref = f"CASE-{k:06d}"
        holder = (k - 1) // 10  # CASES_PER_PRACTITIONER
        return ref, f"tg:{7_000_000_000 - 1 - holder}"

    # the pages, each as the person it is for
    async def cases_practitioner(self):
        _, key = self.random_case()
        return await self.timed(key, "/", "My cases")

    async def cases_supervisor(self):
        return await self.timed("tg:2", "/", "My cases")

    async def cases_admin(self):
        return await self.timed("tg:1", "/", "My cases")

    async def case(self):
        ref, key = self.random_case()
        return await self.timed(key, f"/case?ref={ref}", ref)

    async def case_with_charts(self):
        ref, key = self.rng.choice(self.prep["chart_cases"])
        return await self.timed(key, f"/case?ref={ref}", "Scores for")

    async def transcript(self):
        n = self.rng.randrange(self.facts["conversations"])
        k = n // PER_CASE % self.facts["cases"]
        key = f"tg:{7_000_000_000 - 1 - k // 10}"
        return await self.timed(key, f"/conversations/{n + 1}", "Answer to:")

    async def comment_form(self):
        n = self.rng.randrange(self.facts["conversations"])
        return await self.timed("tg:1", f"/conversations/{n + 1}/comment?step=q3", "Your comment")

    async def review(self):
        return await self.timed("tg:2", "/review", "Review")

    async def alerts(self):
        return await self.timed("tg:3", "/alerts", "Safeguarding alerts")

    async def audit(self):
        return await self.timed("tg:1", "/audit", "Audit log")

    async def chart(self):
        """Drawn afresh each time (the cache of drawings emptied first)."""
        from bot.review import charts

        charts._CACHE.clear()
        ref, key = self.rng.choice(self.prep["chart_cases"])
        return await self.timed(key, f"/case/chart.svg?ref={ref}&n={self.rng.randrange(2)}", "<svg")

    async def chart_cached(self):
        """The same chart asked for a second time (the first draws it)."""
        ref, key = self.rng.choice(self.prep["chart_cases"])
        url = f"/case/chart.svg?ref={ref}&n={self.rng.randrange(2)}"
        await self.timed(key, url, "<svg")
        return await self.timed(key, url, "<svg")

    async def close(self):
        for c in self.clients.values():
            await c.aclose()
        self.site.close()
        self.site.store.close()


PAGES = [("cases_practitioner", "my cases, as a practitioner (10 cases)", 100),
         ("cases_supervisor", "my cases, as a supervisor of 10 practitioners (100 cases)", 100),
         ("cases_admin", "my cases, as an administrator (all 10,000 cases; 200 shown)", 100),
         ("case", "a case (10 conversations)", 100),
         ("case_with_charts", "a case with 12 check-ins: page and chart tables", 100),
         ("transcript", "a transcript (22 lines)", 100),
         ("comment_form", "comment on one answer (the form)", 100),
         ("review", "the review queue (supervisor)", 100),
         ("alerts", "the alerts queue (safeguarding lead)", 100),
         ("audit", "the audit log (administrator, 100 entries)", 100),
         ("chart", "a case's chart (SVG drawn by matplotlib, 2 people x 6 check-ins)", 200),
         ("chart_cached", "a case's chart seen again (the same numbers: the drawing kept)", 200)]


async def _measure(pages: Pages, runs: int, k: int, log) -> list[Figure]:
    for name, _, _ in PAGES:  # warm: imports, fonts, the first session of each person
        await getattr(pages, name)()
    figures = []
    for name, label, limit in PAGES:
        per_run, cpu, worst = [], [], 0.0
        for _ in range(runs):
            xs = [await getattr(pages, name)() for _ in range(k)]
            per_run.append(statistics.median(x[0] * 1000 for x in xs))
            cpu.append(statistics.median(x[1] * 1000 for x in xs))
            worst = max(worst, max(x[0] * 1000 for x in xs))
        log(f"  web {name}: {[round(x, 1) for x in per_run]} ms (CPU {[round(x, 1) for x in cpu]} ms),"
            f" slowest {worst:.1f} ms")
        figures.append(Figure("web", f"web_{name}", f"6. web page: {label}", "ms", per_run,
                              targets=[Target("value", "<=", limit, f"< {limit} ms")],
                              note=f"median of {k} requests per run, server-side (ASGI, no network); CPU time of the"
                                   f" process per request {statistics.median(cpu):.1f} ms; slowest {worst:.1f} ms",
                              extra={"worst_ms": worst, "cpu_ms": cpu}))
    return figures


def run(ctx: Context) -> list[Figure]:
    n = 10_000 if ctx.quick else ctx.scale_conversations
    k = 5 if ctx.quick else 15
    folder = Path(tempfile.mkdtemp(prefix="bench-web-", dir=ctx.workdir))
    try:
        path = folder / "scale.db"
        flow_text = long_flow(FLOW_ID, QUESTIONS)
        facts = generate(path, n, flow_text, ctx.log)
        prep = _prepare(path, flow_text, facts, ctx.log)
        facts["conversations"] = n  # the generated ones (ids 1..n)

        async def main():
            pages = Pages(path, prep, facts, seed=4)
            try:
                return await _measure(pages, ctx.runs, k, ctx.log)
            finally:
                await pages.close()

        return asyncio.run(main())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
