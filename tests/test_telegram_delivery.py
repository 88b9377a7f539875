"""Receiving updates without losing one and without one slow chat holding up the others
(issue 18, items 3 and 4): long polling and the webhook keep each update in the inbox before
Telegram is told it arrived, and handle it from there; polling goes on while batches are
handled; a chat waiting on a 429 delays no other chat; a SIGKILL at the moment an update is
confirmed (polling) or answered 200 (webhook) loses and doubles nothing."""

import asyncio
import os
import signal
import threading

import pytest

from bot.conversation import ConversationService
from bot.store import Store
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import running_bot
from tests.test_telegram import _free_port, _serve, start_flow


@pytest.fixture
async def bot(tmp_path, library):
    service = ConversationService(Store(tmp_path / "tg.db"), library)
    async with running_bot(service) as h:
        yield h


async def test_an_update_is_confirmed_only_once_it_is_kept_and_leaves_the_inbox_when_handled(bot):
    h, fe = bot, bot.frontend
    store = h.service.store
    await h.fake.wait_for(lambda: h.fake.calls_to("getUpdates"), 10)  # polling (what was kept is handled first)
    release = threading.Event()
    fe._db.submit(release.wait)  # the store thread is busy: nothing can be committed
    try:
        uid = h.fake.inject_message(21, "hello")
        await h.fake.wait_for(lambda: uid in h.fake.delivered, 10)  # fetched by the bot
        # an eager poller confirms at once, by asking again; watched for 1.5 s
        with pytest.raises(TimeoutError):
            await h.fake.wait_for(lambda: h.fake.is_confirmed(uid), 1.5)
    finally:
        release.set()
    await h.fake.wait_for(lambda: h.fake.is_confirmed(uid), 10)
    await h.delivered(uid)
    # handled: its row leaves the inbox in the group commit after the handler has returned
    for _ in range(400):  # a wait on the condition, up to 20 s
        if not await fe.db(store.inbox_pending):
            break
        await asyncio.sleep(0.05)
    assert await fe.db(store.inbox_pending) == []  # its words are no longer kept


async def test_the_inbox_keeps_each_polled_update_as_telegram_sent_it_parsed_once(bot, monkeypatch):
    """What the inbox keeps is the JSON getUpdates returned (an unknown field too), not a
    ``to_dict()`` of the parsed update, which costs as much again as parsing it: no update
    is turned back into JSON on the way in."""
    import json

    from telegram import TelegramObject

    h, fe = bot, bot.frontend
    store = h.service.store
    await h.fake.wait_for(lambda: h.fake.calls_to("getUpdates"), 10)
    kept: list = []
    add = store.inbox_add

    def recording(rows):
        kept.extend(rows)
        return add(rows)

    def refused(self, *args, **kwargs):
        raise AssertionError("an update was rebuilt with to_dict() to be kept")

    monkeypatch.setattr(store, "inbox_add", recording)
    monkeypatch.setattr(TelegramObject, "to_dict", refused)
    uid = h.fake.inject_message(43, "hello")
    sent = h.fake._all_updates[uid]  # noqa: SLF001 - the update as the server sends it
    sent["message"]["x_future_field"] = {"kept": True}  # a field this python-telegram-bot does not know
    await h.delivered(uid)
    assert [(r[0], r[1], r[2]) for r in kept] == [(uid, "43", "tg:43")]
    assert json.loads(kept[0][3]) == sent


async def test_an_inbox_that_cannot_keep_a_batch_does_not_stop_serve_and_loses_nothing(bot, monkeypatch, caplog):
    """Disk full (or the database locked) when a batch is to be kept: it is not confirmed, the
    poller waits and fetches it again, and serve goes on; before, the error ended ``serve`` for
    everyone. The log names the error's type only, never the words."""
    import logging
    import sqlite3

    h, fe = bot, bot.frontend
    store = h.service.store
    await h.fake.wait_for(lambda: h.fake.calls_to("getUpdates"), 10)
    add, failures = store.inbox_add, []

    def full(rows):
        if len(failures) < 2:
            failures.append(len(rows))
            raise sqlite3.OperationalError("database or disk is full")
        return add(rows)

    monkeypatch.setattr(store, "inbox_add", full)
    with caplog.at_level(logging.ERROR, logger="bot.frontends.telegram.polling"):
        uid = h.fake.inject_message(44, "a secret worry")
        await h.delivered(uid, timeout=30)
    assert len(failures) == 2  # refused twice, kept the third time
    await h.fake.wait_for(lambda: h.fake.is_confirmed(uid), 10)
    control = h.fake.inject_message(45, "a secret worry")  # the same words, kept at once
    await h.delivered(control)
    assert [m.text for m in h.fake.messages(44)] == [m.text for m in h.fake.messages(45)]  # answered once
    errors = [r for r in caplog.records if r.getMessage() == "could not keep received updates, retrying"]
    assert [r.error for r in errors] == ["OperationalError", "OperationalError"]
    assert not any("secret" in r.getMessage() or "secret" in str(r.__dict__) for r in caplog.records)


async def test_a_chat_held_by_a_429_delays_no_other_chat_and_keeps_its_own_order(bot):
    h = bot
    a, b = 31, 32
    await start_flow(h, a, "scaling-checkin")
    await start_flow(h, b, "scaling-checkin")
    h.fake.hold_chat(a)  # every call to chat A answers 429 until released
    held_from = len(h.fake.calls)
    a1 = h.fake.inject_message(a, "hopes of A")
    a2 = h.fake.inject_command(a, "/repeat")  # behind a1 in A's queue
    await h.fake.wait_for(lambda: a2 in h.fake.delivered, 10)
    b1 = h.fake.inject_message(b, "hopes of B")
    await h.delivered(b1, timeout=20)
    # B was answered while A is still held by the server: none of A's calls has gone through
    a_calls = [c for c in h.fake.calls[held_from:] if str(c.params.get("chat_id")) == str(a)]
    assert a_calls and all(c.status == 429 for c in a_calls)
    assert a1 not in h.frontend.finished and a2 not in h.frontend.finished
    assert "where are things now?" in h.fake.last_message(b).text
    h.fake.release_chat(a)
    await h.delivered(a1, timeout=60)
    await h.delivered(a2, timeout=60)
    after = [m.text for m in h.fake.messages(a)[-2:]]
    assert all("where are things now?" in t for t in after)  # a1's question, then a2's repeat of it


async def _to_first_question(fake, user: int) -> None:
    fake.inject_command(user, "/start")
    await fake.wait_for(lambda: any(fake.buttons(m) for m in fake.messages(user)), 20)
    menu = [m for m in fake.messages(user) if fake.buttons(m)][-1]
    fake.press_button(user, menu.message_id, "s:scaling-checkin")
    who = await fake.wait_for(lambda: next((m for m in fake.messages(user) if any(
        cb == "s:scaling-checkin:0" for row in fake.buttons(m) for (_, cb) in row)), None), 20)
    fake.press_button(user, who.message_id, "s:scaling-checkin:0")
    await fake.wait_for(lambda: any("best hopes" in (m.text or "") for m in fake.messages(user)), 20)


def _stored(db, users):
    """(answers per user as (step, raw, revision), inputs not yet recorded as delivered)."""
    store = Store(db)
    try:
        out = {}
        for u in users:
            convs = store.conversations(person_id=store.person(f"tg:{u}"))
            out[u] = [(a["step_id"], a["raw"], a["revision"]) for c in convs for a in store.answers(c["id"])]
        undelivered = store.db.execute("SELECT COUNT(*) FROM inputs WHERE delivered_at IS NULL"
                                       " AND reply IS NOT NULL").fetchone()[0]
        inbox = store.inbox_pending()
    finally:
        store.close()
    return out, undelivered, inbox


def _asked(fake, user, words):
    return [m for m in fake.messages(user) if words in (m.text or "")]


def _asked_once_or_again_across_the_kill(fake, users, words):
    """Each person is asked the next question, and at most once by each process. A reply the
    killed process had sent (or had in flight) before it could record the sending is sent
    again after the restart: nobody can ask Telegram whether it arrived, so delivery is at
    least once, and a person may see that one question twice across a crash. (The answer is
    still stored once: the callers check that.) More than two, or a different text, is a bug."""
    asked = {u: [m.text for m in _asked(fake, u, words)] for u in users}
    assert all(1 <= len(texts) <= 2 and len(set(texts)) == 1 for texts in asked.values()), asked


async def _restarted_loses_and_doubles_nothing(fake, db, users, answers, *args):
    """After the kill: `serve` again, until everyone is asked the next question and every
    answer is confirmed; then each answer is stored once, delivered, and out of the inbox."""
    proc = await _start(fake, db, *args)
    await fake.wait_for(lambda: all(_asked(fake, u, "where are things now?") for u in users), 60)
    await fake.wait_for(lambda: all(fake.is_confirmed(uid) for uid in answers.values()), 20)
    await _stop(proc)
    stored, undelivered, inbox = _stored(db, users)
    assert stored == {u: [("best_hopes", f"hopes of {u}", 1)] for u in users}
    _asked_once_or_again_across_the_kill(fake, users, "where are things now?")
    assert undelivered == 0 and inbox == []


_STARTED: list = []


@pytest.fixture(autouse=True)
def _no_process_left():
    """A failed test must not leave a `serve` behind (without the fake it would poll on)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.returncode is None:
            proc.kill()


async def _start(fake, db, *args):
    """`serve` with its output read as it comes (a full pipe would stop it), once it has made
    its first Bot API call: it sets its SIGTERM handler before any, so from then on a SIGTERM is
    a clean stop. (A restarted `serve` may find everything a test waits for already true — the
    killed one had asked and confirmed — and a SIGTERM while Python still starts ends it -15.)"""
    before = len(fake.calls)
    proc = await _serve(fake, db, *args)
    _STARTED.append(proc)
    proc.output = asyncio.ensure_future(proc.communicate())
    await fake.wait_for(lambda: len(fake.calls) > before or proc.output.done(), 60)
    return proc


async def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.output, 60)
    assert proc.returncode == 0, err.decode()[-3000:]
    return err.decode()


async def test_polling_sigkill_as_a_batch_is_confirmed_loses_and_doubles_nothing(tmp_path):
    db = tmp_path / "poll.db"
    users = [41, 42]  # strangers share a budget of 10 updates at once (RateLimits): 2 x 4 fit in it
    async with FakeBotAPI() as fake:
        proc = await _start(fake, db)
        await fake.wait_for(lambda: fake.calls_to("getUpdates"), 20)
        for u in users:
            await _to_first_question(fake, u)
        # every person answers at once; the bot is killed the moment it confirms any of them
        answers = {}
        killed = []

        def kill(ids):
            if not killed and set(ids) & set(answers.values()):
                killed.append(sorted(set(ids) & set(answers.values())))
                os.kill(proc.pid, signal.SIGKILL)

        fake.on_confirm = kill
        for u in users:
            answers[u] = fake.inject_message(u, f"hopes of {u}")
        await asyncio.wait_for(proc.output, 60)
        assert killed and proc.returncode == -signal.SIGKILL
        fake.on_confirm = None
        await _restarted_loses_and_doubles_nothing(fake, db, users, answers)


async def test_webhook_sigkill_right_after_200_loses_and_doubles_nothing(tmp_path):
    db = tmp_path / "hook.db"
    port = _free_port()
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret-value\n")
    args = ("--webhook-url", f"http://127.0.0.1:{port}/tg", "--port", str(port), "--webhook-secret-file", str(secret))
    users = [51, 52]  # strangers share a budget of 10 updates at once (RateLimits): 2 x 4 fit in it
    async with FakeBotAPI() as fake:
        proc = await _start(fake, db, *args)
        await fake.wait_for(lambda: fake.webhook_url, 20)
        for u in users:
            await _to_first_question(fake, u)
        # the bot's replies now crawl, so nothing can have been handled when it answers 200;
        # it is killed the moment it answers 200 for the first answer
        fake.set_latency(1.0)
        answers = {}
        killed = []

        def kill(update_id):
            if not killed and update_id in answers.values():
                killed.append(update_id)
                os.kill(proc.pid, signal.SIGKILL)

        fake.on_webhook_ok = kill
        for u in users:
            answers[u] = fake.inject_message(u, f"hopes of {u}")
        await asyncio.wait_for(proc.output, 60)
        assert killed and proc.returncode == -signal.SIGKILL
        assert fake.is_confirmed(killed[0])  # Telegram will never send it again
        fake.on_webhook_ok = None
        fake.set_latency(0)
        await _restarted_loses_and_doubles_nothing(fake, db, users, answers, *args)


async def _stderr_lines(proc, lines: list, changed: asyncio.Event) -> None:
    """Read the process's log as it comes (a full pipe would stop it)."""
    while line := await proc.stderr.readline():
        lines.append(line.decode(errors="replace"))
        changed.set()


async def _wait_logged(lines: list, changed: asyncio.Event, found, timeout: float) -> str:
    """The first log line for which ``found(line)`` holds, woken by each new line."""
    async def look():
        seen = 0
        while True:
            for line in lines[seen:]:
                if found(line):
                    return line
            seen = len(lines)
            changed.clear()
            await changed.wait()
    return await asyncio.wait_for(look(), timeout)


async def test_serve_whose_bot_api_is_gone_stops_at_once_on_sigterm(tmp_path):
    """The Bot API goes away; the poller backs off, up to 30 s between tries. A SIGTERM
    during a long back-off stops `serve` at once, not when the wait is over."""
    import json

    fake = FakeBotAPI()
    await fake.start()
    try:
        proc = await _serve(fake, tmp_path / "gone.db")
        _STARTED.append(proc)
        lines, changed = [], asyncio.Event()
        reader = asyncio.ensure_future(_stderr_lines(proc, lines, changed))
        drain = asyncio.ensure_future(proc.stdout.read())
        await fake.wait_for(lambda: fake.calls_to("getUpdates"), 20)
    finally:
        await fake.stop()  # gone: every later call is refused

    def long_back_off(line: str) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False
        return record.get("event") == "getUpdates failed, retrying" and record.get("delay", 0) >= 16

    # 0.5 + 1 + 2 + 4 + 8 s of failed tries, then it waits 16 s before the next
    await _wait_logged(lines, changed, long_back_off, 90)
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10)  # well inside the 16 s it would otherwise wait
    except asyncio.TimeoutError:
        pytest.fail("serve did not stop within 10 s of SIGTERM while its Bot API was gone")
    await reader
    await drain
    assert proc.returncode == 0, "".join(lines)[-3000:]
    assert any('"event": "stopped"' in line for line in lines)


async def test_serve_told_by_the_bot_api_to_wait_an_hour_stops_on_sigterm(tmp_path):
    """getUpdates answered 429 with retry_after of an hour, then the Bot API goes: a SIGTERM
    stops `serve` without waiting out the hour."""
    async with FakeBotAPI() as fake:
        proc = await _start(fake, tmp_path / "wait.db")
        await fake.wait_for(lambda: fake.calls_to("getUpdates"), 20)
        fake.fail_next("getUpdates", retry_after=3600)
        fake.inject_message(71, "hello")  # wakes the long poll: the next getUpdates is the 429
        await fake.wait_for(lambda: any(c.method == "getUpdates" and c.status == 429 for c in fake.calls), 20)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.output, 30)
    except asyncio.TimeoutError:
        pytest.fail("serve did not stop within 30 s of SIGTERM while told to wait an hour")
    assert proc.returncode == 0, err.decode()[-3000:]


class _InboxDouble:
    """The inbox the webhook's queues talk to, for tests that say how ``keep`` behaves."""

    def done(self, update_id):
        pass

    async def pending(self, bot):
        return []


class _AppDouble:
    """The Application the queues hand updates to: records what it was given."""

    def __init__(self, bot=None):
        self.bot, self.handled = bot, []

    async def process_update(self, u):
        self.handled.append(u.update_id)


async def test_webhook_deliveries_that_arrive_together_are_kept_in_one_commit_each_answered_after_it():
    """PTB's webhook handler puts each update (then answers 200). Those arriving while a
    batch is being kept go into the next commit together, not one commit each in turn."""
    from telegram import Update

    from bot.frontends.telegram.polling import ChatQueues

    class Inbox(_InboxDouble):
        def __init__(self):
            self.kept, self.gate = [], asyncio.Event()

        async def keep(self, updates, raw=None):
            self.kept.append([u.update_id for u in updates])
            await self.gate.wait()  # the commit (fsync) takes a while
            return [u.update_id for u in updates]

    def update(uid, chat):
        return Update.de_json({"update_id": uid, "message": {
            "message_id": uid, "date": 0, "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "T"}, "text": "hi"}}, None)

    inbox, app = Inbox(), _AppDouble()
    queues = ChatQueues(app, inbox)
    first = asyncio.ensure_future(queues.put(update(1, 10)))
    while not inbox.kept:
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(queues.put(update(uid, 10 + uid % 3))) for uid in (2, 3, 4, 5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert not first.done() and not any(r.done() for r in rest)  # no 200 before the commit
    inbox.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *rest), 20)
    assert inbox.kept == [[1], [2, 3, 4, 5]]
    await queues.drain()
    assert sorted(app.handled) == [1, 2, 3, 4, 5]


async def test_the_webhook_keeps_each_update_as_telegram_posted_it_and_still_checks_the_secret(monkeypatch):
    """The webhook's handler hands the inbox the JSON Telegram posted (an unknown field too),
    never a to_dict() of the parsed update; it answers 200 once that is kept, and still
    refuses a request without the secret token (403) or that is not JSON."""
    import json

    import httpx
    from telegram import Bot, TelegramObject

    from bot.frontends.telegram.polling import ChatQueues, webhook_app
    from telegram.ext._utils.webhookhandler import WebhookServer

    class Inbox(_InboxDouble):
        def __init__(self):
            self.kept = []

        async def keep(self, updates, raw=None):
            self.kept += [(u.update_id, (raw or {}).get(u.update_id)) for u in updates]
            return [u.update_id for u in updates]

    def refused(self, *args, **kwargs):
        raise AssertionError("an update was rebuilt with to_dict() to be kept")

    monkeypatch.setattr(TelegramObject, "to_dict", refused)
    inbox, app = Inbox(), _AppDouble(Bot("123456789:TEST-token-for-the-fake-server-only"))
    queues = ChatQueues(app, inbox)
    port = _free_port()
    server = WebhookServer("127.0.0.1", port, webhook_app("/tg", app.bot, queues, "s3cret"), None)
    await server.serve_forever()
    posted = [{"update_id": uid, "message": {
        "message_id": uid, "date": 1_700_000_000, "chat": {"id": 70, "type": "private", "first_name": "T"},
        "from": {"id": 70, "is_bot": False, "first_name": "T"}, "text": f"words {uid}",
        **({"x_future_field": [1, 2]} if uid == 3 else {})}} for uid in (1, 2, 3)]
    try:
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/tg"
            answers = [await client.post(url, content=json.dumps(p), headers={
                "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "s3cret"}) for p in posted]
            no_secret = await client.post(url, content=json.dumps(posted[0]), headers={"Content-Type": "application/json"})
            not_json = await client.post(url, content="x", headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
    finally:
        await server.shutdown()
    await queues.drain()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert (no_secret.status_code, not_json.status_code) == (403, 403)
    assert inbox.kept == [(p["update_id"], p) for p in posted]
    assert app.handled == [1, 2, 3]
