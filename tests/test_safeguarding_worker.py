"""Safeguarding detection in a worker process (bot/safeguarding_worker.py, issue 18).

The worker must find exactly what the detector finds in process, and a worker that is
starting, dies (mid-batch), hangs or cannot load its detector must never leave words
unchecked or an answer unstored: the service then detects in its own process. Stand-in
detectors (tests/safeguarding_worker_helpers.py) are built inside the worker from a recipe."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from bot.conversation import ConversationService
from bot.engine.library import FlowLibrary
from bot.engine.runner import Input
from bot.frontends.telegram.limits import PriorityExecutor
from bot.safeguarding import SafeguardingConfig
from bot.safeguarding_worker import DetectorWorker, WorkerUnavailable, lexicon_recipe
from bot.store import Store
from tests.conftest import flow_from
from tests.safeguarding_helpers import OVERRIDE
from tests.safeguarding_worker_helpers import Words

ROOT = Path(__file__).resolve().parents[1]
HELPERS = "tests.safeguarding_worker_helpers"

FLOW = flow_from("""
id: worker
version: 1
title: Worker
audience: family
steps:
  - id: hopes
    ask: What are your hopes?
  - id: why
    ask: Why?
  - id: more
    ask: Anything more?
  - id: last
    ask: Anything else?
""")


def _worker(recipe, **settings) -> DetectorWorker:
    worker = DetectorWorker(recipe, start=False)
    for name, value in settings.items():
        setattr(worker, name, value)
    worker._thread.start()
    return worker


@pytest.fixture
def ready_worker():
    made = []

    def make(recipe=(HELPERS, "words_in_worker", ()), **settings):
        worker = _worker(recipe, **settings)
        made.append(worker)
        assert worker.wait_ready(60), worker.failure
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def world(tmp_path):
    """A service whose in-process detector is the stand-in (it records the words it checks)."""
    store = Store(tmp_path / "w.db")
    detector = Words()
    service = ConversationService(store, FlowLibrary([FLOW]), safeguarding=detector)
    executor = PriorityExecutor("store", group=store.run_group)
    pid = service.person("tg:1")
    executor.submit(service.start, pid, "worker", input_key="k0").result(10)
    yield service, detector, executor, pid, store
    executor.shutdown()
    store.close()


def _replaced(worker, starts: int = 2, timeout: float = 60.0) -> bool:
    """Whether a new worker (the ``starts``-th) is ready within ``timeout`` seconds (the old one
    is killed at once, but its reader notices only a moment later)."""
    deadline = time.monotonic() + timeout
    while worker.starts < starts and time.monotonic() < deadline:
        time.sleep(0.01)
    return worker.starts >= starts and worker.wait_ready(max(0.0, deadline - time.monotonic()))


def _stored_once(store, keys):
    rows = store.db.execute("SELECT input_key FROM transcript WHERE direction = 'in'").fetchall()
    ins = [r[0] for r in rows]
    assert all(ins.count(k) == 1 for k in keys), ins
    got = [r[0] for r in store.db.execute("SELECT key FROM inputs").fetchall()]
    assert all(got.count(k) == 1 for k in keys), got


def test_the_worker_finds_exactly_what_the_detector_finds_on_the_corpus(ready_worker):
    corpus = yaml.safe_load((ROOT / "tests" / "safeguarding_corpus.yaml").read_text(encoding="utf-8"))
    texts = [d["text"] for d in corpus["disclosures"]] + list(corpus["ordinary"])
    assert len(texts) > 600
    config = SafeguardingConfig.load()
    worker = ready_worker(lexicon_recipe())
    assert worker.pid() not in (None, os.getpid())
    cases = [(t, None) for t in texts] + [(t, {"score": 0}) for t in texts[::5]] + [("", None), ("x" * 5000, None)]
    found, todo = [], list(cases)
    while todo:  # as many at a time as the worker takes (max_waiting, max_bytes)
        futures = []
        while todo:
            future = worker.submit(*todo[0])
            if future is None:
                break
            futures.append(future)
            todo.pop(0)
        assert futures  # an idle worker takes any one of these
        found += [worker.result(f) for f in futures]
    expected = [config.detect(text) if context is None else config.detect(text, context) for text, context in cases]
    assert found == expected
    assert sum(1 for f in found if f) > 300  # the comparison is not of empty lists


def test_a_deployments_own_lexicon_is_loaded_in_the_worker_and_a_changed_one_refused(tmp_path, ready_worker):
    local = tmp_path / "local.yaml"
    local.write_text(OVERRIDE)
    worker = ready_worker(lexicon_recipe([local]))
    text = "he blorked me"
    assert worker.result(worker.submit(text, None)) == SafeguardingConfig.load(local).detect(text)
    assert worker.result(worker.submit(text, None))  # found by the deployment's own rule
    worker.close()
    recipe = lexicon_recipe([local])
    local.write_text(OVERRIDE.replace("blorked me", "glorped me"))  # changed after the bot loaded it
    changed = _worker(recipe)
    try:
        assert changed.wait_tried(60)
        assert not changed.wait_ready(0) and "changed since the bot started" in changed.failure
        assert changed.submit(text, None) is None  # the caller detects in process
    finally:
        changed.close()


def test_prescreened_words_are_checked_in_the_worker_not_in_process(world, ready_worker):
    service, detector, executor, pid, store = world
    service.detector_worker = ready_worker()
    for key, text in (("k1", "We talk more"), ("k2", "he hits me ALERTWORD")):
        service.prescreen(pid, Input.from_text(text), input_key=key)
        reply = executor.submit(service.handle, pid, Input.from_text(text), input_key=key).result(30)
    assert len(reply.alerts) == 1 and reply.prompts[0].kind == "safeguarding"
    assert [a["concern"] for a in store.alerts()] == ["physical_abuse"]
    assert detector.calls == []  # both were checked in the worker
    assert service._prescreened == {}
    _stored_once(store, ["k1", "k2"])


def test_a_worker_killed_mid_batch_leaves_nothing_unchecked_and_each_answer_stored_once(world, ready_worker):
    service, detector, executor, pid, store = world
    worker = ready_worker(restart_after=0.0)
    service.detector_worker = worker
    sent = [("k1", "HANGWORD first"), ("k2", "he hits me ALERTWORD"), ("k3", "ordinary words")]
    for key, text in sent:  # the worker is stuck on the first; the others wait behind it
        service.prescreen(pid, Input.from_text(text), input_key=key)
    assert all(not service._prescreened[k][2].done() for k, _ in sent)
    first = worker.pid()
    os.kill(first, signal.SIGKILL)
    replies = [executor.submit(service.handle, pid, Input.from_text(t), input_key=k).result(30) for k, t in sent]
    assert detector.calls == [t for _, t in sent]  # each checked here instead
    assert replies[1].alerts and [a["concern"] for a in store.alerts()] == ["physical_abuse"]
    _stored_once(store, ["k1", "k2", "k3"])
    # a new worker takes over, and checks the next words itself
    assert _replaced(worker) and worker.pid() != first
    service.prescreen(pid, Input.from_text("Carry on"), input_key="k4")
    executor.submit(service.handle, pid, Input.from_text("Carry on"), input_key="k4").result(30)
    assert detector.calls == [t for _, t in sent]


def test_a_stuck_worker_is_waited_for_only_so_long_then_replaced(world, ready_worker):
    service, detector, executor, pid, store = world
    worker = ready_worker(timeout=0.5, restart_after=0.0)
    service.detector_worker = worker
    first = worker.pid()
    text = "HANGWORD and ALERTWORD"
    service.prescreen(pid, Input.from_text(text), input_key="k1")
    reply = executor.submit(service.handle, pid, Input.from_text(text), input_key="k1").result(30)
    assert reply.alerts and detector.calls == [text]
    _stored_once(store, ["k1"])
    assert _replaced(worker) and worker.pid() != first


def test_a_worker_that_cannot_load_its_detector_leaves_detection_in_process(world):
    service, detector, executor, pid, store = world
    worker = _worker((HELPERS, "refuse", ()))
    try:
        assert worker.wait_tried(60) and "cannot load its detector" in worker.failure
        service.detector_worker = worker
        service.prescreen(pid, Input.from_text("ALERTWORD"), input_key="k1")
        reply = executor.submit(service.handle, pid, Input.from_text("ALERTWORD"), input_key="k1").result(30)
        assert reply.alerts and detector.calls == ["ALERTWORD"]  # once, on the caller's side
    finally:
        worker.close()


def test_a_worker_refuses_more_than_it_can_hold_without_blocking_the_caller(ready_worker):
    worker = ready_worker(max_waiting=2)
    stuck = worker.submit("HANGWORD", None)
    queued = worker.submit("ALERTWORD", None)
    assert stuck is not None and queued is not None
    assert worker.submit("one too many", None) is None
    roomy = ready_worker()
    assert roomy.submit("x" * roomy.max_bytes, None) is None  # more than the pipe may hold unread
    assert roomy.result(roomy.submit("x" * 1000, None)) == []
    worker.close()  # closing fails what was waiting: no caller waits for ever
    with pytest.raises(WorkerUnavailable):
        worker.result(queued, timeout=30)


# --- serve uses it ---------------------------------------------------------------------------

async def test_serve_detects_in_a_worker_process_and_stops_it_when_it_stops(tmp_path):
    import asyncio
    import json

    from bot.testing.fake_bot_api import FakeBotAPI
    from tests.test_telegram import LEAD, _serve

    corpus = yaml.safe_load((ROOT / "tests" / "safeguarding_corpus.yaml").read_text(encoding="utf-8"))
    disclosure = corpus["disclosures"][0]["text"]
    db = tmp_path / "serve.db"
    async with FakeBotAPI() as fake:
        proc = await _serve(fake, db)
        try:
            async def worker_ready() -> int:
                async for line in proc.stderr:
                    if b"safeguarding worker ready" in line:
                        return json.loads(line)["pid"]
                raise AssertionError("serve stopped before its safeguarding worker was ready")

            pid = await asyncio.wait_for(worker_ready(), 60)
            status = Path(f"/proc/{pid}/status").read_text()
            assert f"PPid:\t{proc.pid}\n" in status
            assert b"bot.safeguarding_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if v.startswith((b"TELEGRAM_BOT_TOKEN=", b"RESTORATIVE_DB_KEY="))]
            assert os.environ["RESTORATIVE_DB_KEY"]  # (which serve has)
            fake.inject_message(11, disclosure)
            await fake.wait_for(lambda: fake.messages(LEAD), 20)  # the lead is alerted
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert not Path(f"/proc/{pid}").exists()  # stopped (and reaped) with serve
    alerts = Store(db).alerts()
    assert [a["concern"] for a in alerts] == [corpus["disclosures"][0]["concern"]]
    assert disclosure not in err.decode()


async def test_the_first_words_of_a_turn_go_at_once_and_the_rest_of_the_turn_in_one_write(ready_worker):
    import asyncio

    worker = ready_worker()
    before = worker.writes
    futures = [worker.submit(text, None) for text in ("one", "two ALERTWORD", "three", "four")]
    # the first at once (the worker checks it while the loop finishes its turn), the rest not yet
    assert worker.writes == before + 1
    found = [await asyncio.wrap_future(f) for f in futures]
    assert [[c.concern for c in f] for f in found] == [[], ["physical_abuse"], [], []]
    assert worker.writes == before + 2  # the other three together, at the end of the turn
    # a later turn starts afresh: its first words go at once again
    again = worker.submit("five", None)
    assert worker.writes == before + 3
    assert await asyncio.wrap_future(again) == []
    assert worker.writes == before + 3  # nothing else was waiting at the end of that turn


def test_words_waiting_for_a_loop_that_closed_are_sent_with_the_next(ready_worker):
    import asyncio

    worker = ready_worker()

    loop = asyncio.new_event_loop()
    box = []

    def submit_and_stop():
        box.append(worker.submit("first", None))  # the first of a turn: written at once
        box.append(worker.submit("ALERTWORD", None))
        loop.stop()  # after this turn: the write due at its end never happens

    loop.call_soon(submit_and_stop)
    loop.run_forever()
    loop.close()
    first, left = box
    assert worker.result(first, timeout=30) == []
    assert not left.done() and worker.writes == 1  # not sent
    other = worker.submit("words", None)  # no loop here: written at once, with what waited
    assert worker.writes == 2
    assert [c.concern for c in worker.result(left, timeout=30)] == ["physical_abuse"]
    assert worker.result(other, timeout=30) == []


def test_a_worker_whose_parent_is_gone_ends_quietly():
    """serve killed (kill -9) while its worker starts: the worker's answer meets a closed pipe.
    It ends with nothing in serve's log (its stderr), which would read as the bot's error."""
    import subprocess
    import sys

    from bot.safeguarding_worker import _frame

    to_worker, from_worker = os.pipe(), os.pipe()
    os.close(from_worker[0])  # the parent is gone before the worker says it is ready
    proc = subprocess.Popen([sys.executable, "-m", "bot.safeguarding_worker", str(to_worker[0]), str(from_worker[1])],
                            pass_fds=(to_worker[0], from_worker[1]), stderr=subprocess.PIPE, cwd=ROOT)
    os.close(to_worker[0])
    os.close(from_worker[1])
    os.write(to_worker[1], _frame((HELPERS, "words_in_worker", ())))
    os.close(to_worker[1])
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (0, "")

