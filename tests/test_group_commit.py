"""Group commit in the store thread, and one hand-off per update (issue 18, items 1 and 2).

Inputs waiting together for the store thread go into one transaction with a savepoint each:
one failing input rolls back alone, the others commit; nobody gets a result (so no reply
is sent) before the commit; "this reply was delivered" rides in the next transaction
instead of an fsync of its own. A typed answer or a button press costs the event loop one
trip to the store thread."""

import asyncio
import threading

import pytest

from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.frontends.telegram.limits import PriorityExecutor
from bot.store import Store
from bot.testing.telegram import running_bot


def _world(tmp_path, library, people=3):
    store = Store(tmp_path / "group.db")
    service = ConversationService(store, library)
    pids = [service.person(f"tg:{900 + i}") for i in range(people)]
    convs = [service.start(pid, "scaling-checkin", respondent="adult").conversation_id for pid in pids]
    return store, service, pids, convs


def _commits(store):
    """Count the COMMIT statements the store's connection runs from now on."""
    seen = []
    store.db.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def _blocked(executor):
    """Keep the store thread busy until the returned event is set, so what is submitted
    meanwhile waits and goes into one group."""
    busy, running = threading.Event(), threading.Event()
    executor.submit(lambda: (running.set(), busy.wait()))
    assert running.wait(10)
    return busy


def test_one_failing_input_in_a_group_rolls_back_alone_and_the_others_commit(tmp_path, library):
    store, service, (a, b, c), (conv_a, conv_b, conv_c) = _world(tmp_path, library)
    lines_b = len(store.transcript(conv_b))
    state_b = store.conversation(conv_b).state
    executor = PriorityExecutor("store", group=store.run_group)
    try:
        busy = _blocked(executor)
        groups = executor.groups

        mark_input = store.mark_input

        def fails_for_b(key, *args, **kwargs):  # the last write of an input: its answer and lines are written by then
            if key == "k:b":
                raise RuntimeError("the disk said no")
            return mark_input(key, *args, **kwargs)

        store.mark_input = fails_for_b
        futures = [executor.submit(service.handle, a, Input.from_text("hopes of a"), input_key="k:a"),
                   executor.submit(service.handle, b, Input.from_text("hopes of b"), input_key="k:b"),
                   executor.submit(service.handle, c, Input.from_text("hopes of c"), input_key="k:c")]
        commits = _commits(store)
        busy.set()
        reply_a, reply_c = futures[0].result(10), futures[2].result(10)
        with pytest.raises(RuntimeError, match="the disk said no"):
            futures[1].result(10)
        assert executor.groups == groups + 2  # the busy one, then all three together
        assert len(commits) == 2  # the busy one's, then one commit (one fsync) for the three
    finally:
        store.db.conn.set_trace_callback(None)
        executor.shutdown()
        store.mark_input = mark_input
    assert reply_a.accepted and reply_c.accepted
    assert [a["value"] for a in store.answers(conv_a)] == ["hopes of a"]
    assert [a["value"] for a in store.answers(conv_c)] == ["hopes of c"]
    # b: nothing of the failed input is kept, and it can be applied again under its key
    assert store.answers(conv_b) == [] and store.seen_input("k:b") is None
    assert len(store.transcript(conv_b)) == lines_b and store.conversation(conv_b).state == state_b
    again = service.handle(b, Input.from_text("hopes of b"), input_key="k:b")
    assert again.accepted and not again.duplicate
    assert [a["value"] for a in store.answers(conv_b)] == ["hopes of b"]


def test_nobody_gets_a_result_before_the_group_is_committed(tmp_path, library):
    store, service, (a, b, _), (conv_a, _, _) = _world(tmp_path, library)
    executor = PriorityExecutor("store", group=store.run_group)
    try:
        busy = _blocked(executor)
        second_running, let_go = threading.Event(), threading.Event()
        first = executor.submit(service.handle, a, Input.from_text("hopes of a"), input_key="k:a")
        second = executor.submit(lambda: (second_running.set(), let_go.wait()))
        busy.set()
        assert second_running.wait(10)
        # a's input is applied but not committed while the group goes on: no result yet
        assert not first.done()
        other = Store(tmp_path / "group.db")  # another connection sees only what is committed
        assert other.seen_input("k:a") is None
        let_go.set()
        assert first.result(10).accepted
        assert other.seen_input("k:a") is not None
        other.close()
    finally:
        executor.shutdown()


def test_a_delivery_record_goes_into_the_next_transaction_not_its_own(tmp_path, library):
    store, service, (a, b, _), _ = _world(tmp_path, library)
    executor = PriorityExecutor("store", group=store.run_group)
    try:
        service.handle(a, Input.from_text("hopes of a"), input_key="k:a")
        busy = _blocked(executor)
        executor.defer(service.delivered, "k:a")  # nobody waits for this one
        commits = _commits(store)
        nxt = executor.submit(service.handle, b, Input.from_text("hopes of b"), input_key="k:b")
        busy.set()
        assert nxt.result(10).accepted
        assert len(commits) == 2  # the busy one's, then one: the record rode with b's input
        assert store.seen_input("k:a")["delivered"] and not store.seen_input("k:b")["delivered"]
        # with nothing else to do, a record still goes in at once (in a group of its own)
        executor.defer(service.delivered, "k:b")
        executor.submit(lambda: None).result(10)
        assert store.seen_input("k:b")["delivered"]
    finally:
        store.db.conn.set_trace_callback(None)
        executor.shutdown()
    # shutting down writes what was deferred
    executor = PriorityExecutor("store", group=store.run_group)
    executor.defer(service.delivered, "k:c")
    executor.shutdown()
    assert store.seen_input("k:c")["delivered"]


async def test_a_typed_answer_and_a_button_press_each_take_one_trip_to_the_store_thread(tmp_path, library):
    from tests.test_telegram import start_flow

    service = ConversationService(Store(tmp_path / "trips.db"), library)
    async with running_bot(service) as h:
        await start_flow(h, 7, "scaling-checkin")
        await h.say(7, "warm up: the person and the flow are known from here on")
        executor, me = h.frontend._db, asyncio.current_task()
        call, submit, trips, kept = executor.call, executor.submit, [], []

        def counting(loop, fn):
            task = asyncio.current_task()
            if getattr(task.get_coro(), "__qualname__", "") == "poll":
                kept.append(fn)  # the poller keeping a batch in the inbox: one trip per batch, not per update
            elif task is not me:  # not the test's own look at the store
                trips.append(fn)
            return call(loop, fn)

        def other(fn, /, *args, **kwargs):  # any hand-off not through call() counts too
            trips.append(fn)
            return submit(fn, *args, **kwargs)

        executor.call, executor.submit = counting, other
        await h.say(7, "we eat together")  # typed answer
        typed = len(trips)
        await h.press(7, h.fake.last_message(7), "6")  # button press
        pressed = len(trips) - typed
        executor.call, executor.submit = call, submit
        assert (typed, pressed) == (1, 1)
        assert len(kept) == 2  # each update came in a batch of its own here
        answers = {a["step_id"]: a["value"] for a in service.store.answers(service.store.active_conversation(
            service.store.person("tg:7")).id)}
        assert answers["best_hopes"] == "warm up: the person and the flow are known from here on"
        assert answers["scale_now"] == 6


async def test_a_persons_first_update_after_a_start_asks_who_they_are_and_their_language_in_one_trip(
        tmp_path, library):
    """After a restart everyone's next update is their first to this process: who they are
    and the language to answer in are asked in one trip (with the already-answered check),
    then the answer's own trip, then the flow it runs on (kept from then on)."""
    service = ConversationService(Store(tmp_path / "first.db"), library)
    pid = service.person("tg:8")
    service.start(pid, "scaling-checkin", frontend="telegram", chat_id="8", respondent="adult")
    async with running_bot(service) as h:
        await h.fake.wait_for(lambda: h.fake.calls_to("getUpdates"), 10)  # started (the start's own reads are over)
        executor, me = h.frontend._db, asyncio.current_task()
        call, trips = executor.call, []

        def counting(loop, fn):
            task = asyncio.current_task()
            if task is not me and getattr(task.get_coro(), "__qualname__", "") != "poll":  # not keeping a batch
                trips.append(fn)
            return call(loop, fn)

        executor.call = counting
        await h.say(8, "that we listen to each other")
        first = len(trips)
        await h.say(8, "7")
        executor.call = call
    assert (first, len(trips) - first) == (3, 1)
    answers = {a["step_id"]: a["value"] for a in service.store.answers(service.store.active_conversation(pid).id)}
    assert answers["best_hopes"] == "that we listen to each other" and answers["scale_now"] == 7


def test_a_call_in_a_group_keeps_what_it_committed_before_it_failed(tmp_path, library):
    """As alone: a refusal rolled back, then audited in a transaction of its own, then
    raised, stays audited (bot.access does this); only the failed transaction goes."""
    store, service, _, _ = _world(tmp_path, library, people=1)
    executor = PriorityExecutor("store", group=store.run_group)

    def refused():
        try:
            with store.transaction():
                store.audit("tg:1", "test.write", "x", "undone")
                raise PermissionError("refused")
        except PermissionError:
            with store.transaction():
                store.audit("tg:1", "test.refused", "x", "kept")
            raise

    try:
        busy = _blocked(executor)
        failed = executor.submit(refused)
        ok = executor.submit(service.person, "tg:2")
        busy.set()
        assert ok.result(10)
        with pytest.raises(PermissionError):
            failed.result(10)
    finally:
        executor.shutdown()
    assert [r["action"] for r in store.audit_log() if r["action"].startswith("test.")] == ["test.refused"]



async def test_a_typed_answer_reads_whether_it_was_handled_before_once_and_a_redelivery_writes_nothing(tmp_path,
                                                                                                        library):
    """The update's already-answered check is the service's own read of the input (with the
    conversation, in one statement), not a lookup of its own beside it; and an update
    delivered again after its reply went is stopped there: nothing sent, nothing written."""
    from bot.testing.telegram import WAIT
    from tests.test_telegram import start_flow

    service = ConversationService(Store(tmp_path / "reads.db"), library)
    async with running_bot(service) as h:
        await start_flow(h, 7, "scaling-checkin")
        await h.say(7, "warm up: the person and the flow are known from here on")
        fe, conn = h.frontend, service.store.db.conn
        tables = (" inputs", " transcript", " answers", " conversations", " alerts")

        async def handled(uid_of) -> list[str]:
            seen: list[str] = []
            conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split()))
                                    if any(t in sql for t in tables) else None)
            try:
                count = fe.finished_total
                uid = uid_of()
                assert await fe.wait_finished(lambda: uid in fe.finished and fe.finished_total > count, WAIT)
            finally:
                conn.set_trace_callback(None)
            return seen

        first = await handled(lambda: h.fake.inject_message(7, "we eat together"))
        uid = next(iter(reversed(fe.finished)))
        reads = [sql for sql in first if sql.upper().startswith("SELECT")]
        assert len(reads) == 1 and "LEFT JOIN inputs" in reads[0]
        await h.delivered(uid)  # its delivery is on record
        messages = len(h.fake.messages(7))
        again = await handled(lambda: h.fake.redeliver(uid))
        assert len(again) == 1 and again[0].upper().startswith("SELECT")  # the read, and no write at all
        assert len(h.fake.messages(7)) == messages


async def test_delivery_marks_made_while_the_store_thread_is_busy_are_written_in_one_go(tmp_path, library):
    """Each reply that has gone is put on record in the next group commit; the marks made
    while the store thread was busy go there together, as one write (one savepoint), not one
    each; and every one of them is recorded."""
    store, service, pids, _ = _world(tmp_path, library)
    async with running_bot(service) as h:
        fe = h.frontend
        keys = [f"tg:{800 + i}" for i in range(len(pids))]
        for pid, key in zip(pids, keys):  # committed, not yet sent
            await fe.db(service.handle, pid, Input.from_text("hopes"), input_key=key)
        assert not any([(await fe.db(store.seen_input, k))["delivered"] for k in keys])
        batches, delivered_all = [], service.delivered_all
        service.delivered_all = lambda ks: (batches.append(list(ks)), delivered_all(ks))[1]
        release = threading.Event()
        fe._db.submit(release.wait)  # the store thread is busy
        try:
            for key in keys:
                fe._delivered(key)  # each reply has gone
        finally:
            release.set()
        seen = [await fe.db(store.seen_input, k) for k in keys]  # after the marks: they went ahead of this call
        service.delivered_all = delivered_all
    assert batches == [keys]
    assert all(s["delivered"] for s in seen)


async def test_updates_handled_while_the_store_thread_is_busy_leave_the_inbox_in_one_write_after_their_marks(
        tmp_path, library):
    """The inbox rows of updates handled meanwhile go in the next group commit together, as
    one write with the delivery marks made meanwhile (marks first), not one deferred write
    per update; and every one of them goes."""
    store, service, pids, _ = _world(tmp_path, library)
    async with running_bot(service) as h:
        fe = h.frontend
        await h.fake.wait_for(lambda: h.fake.calls_to("getUpdates"), 10)  # polling: the start's replay is over
        rows = [(7001 + i, str(900 + i), f"tg:{900 + i}", "{}") for i in range(3)]
        await fe.db(store.inbox_add, rows)
        writes, inbox_done, delivered_all = [], store.inbox_done, service.delivered_all
        store.inbox_done = lambda ids: (writes.append(("done", list(ids))), inbox_done(ids))[1]
        service.delivered_all = lambda ks: (writes.append(("delivered", list(ks))), delivered_all(ks))[1]
        release = threading.Event()
        fe._db.submit(release.wait)  # the store thread is busy
        groups = fe._db.groups
        try:
            for uid, *_ in rows:
                fe._delivered(f"tg:{uid}")
                fe.done(uid)  # handled
        finally:
            release.set()
        left = await fe.db(store.inbox_pending)  # after the deferred writes: they went ahead of this call
        store.inbox_done, service.delivered_all = inbox_done, delivered_all
    assert writes == [("delivered", ["tg:7001", "tg:7002", "tg:7003"]), ("done", [7001, 7002, 7003])]
    assert left == []
    assert fe._db.groups - groups <= 2  # the busy call's own group, then one for the writes and the read
