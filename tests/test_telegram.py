"""The Telegram frontend end to end: the real python-telegram-bot Application over loopback
HTTP against the fake Bot API server (bot/testing/fake_bot_api/). Nothing reaches Telegram."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot.conversation import ConversationService
from bot.engine.library import DEFAULT_FLOWS, FlowLibrary
from bot.engine.scripts import load_scripts, play_async
from bot.frontends.telegram.render import Callback, keyboard, split_text
from bot.store import Store
from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import TOKEN, TelegramDriver, running_bot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def bot(tmp_path, library):
    service = ConversationService(Store(tmp_path / "tg.db"), library)
    async with running_bot(service) as h:
        yield h


def texts(messages):
    return [m.text for m in messages]


async def start_flow(h, user, flow_id, respondent="adult"):
    before = len(h.fake.messages(user))
    h.fake.inject_command(user, "/start")
    menu = await h.keyboard_after(user, before)
    before = len(h.fake.messages(user))
    uid = h.fake.press_button(user, menu.message_id, f"s:{flow_id}")
    await h.delivered(uid)
    if await h.frontend.db(h.service.respondent_choices, flow_id):  # "Who is filling this in?"
        asked = len(h.fake.messages(user))
        await h.who(user, before, respondent)
        before = asked
    return h.fake.messages(user)[before:]


def answers_of(h, user):
    store = h.service.store
    conv = store.conversations(person_id=store.person(f"tg:{user}"))[-1]
    return {a["step_id"]: a["value"] for a in store.answers(conv["id"])}


async def test_start_greets_offers_flows_and_registers_commands(bot):
    h = bot
    await h.fake.wait_for(lambda: h.fake.commands, 5)
    names = [c["command"] for c in h.fake.commands]
    assert {"start", "back", "skip", "repeat", "cancel", "help", "flows"} <= set(names)
    before = len(h.fake.messages(1))
    h.fake.inject_command(1, "/start")
    await h.keyboard_after(1, before)
    msgs = h.fake.messages(1)[before:]
    # one message, not two: the greeting heads the menu (each costs one of Telegram's 30 a second)
    assert len(msgs) == 1 and msgs[0].text.startswith("Hello Test.")
    assert msgs[0].text.endswith("\n\nWhich would you like to start?")
    buttons = [t for row in h.fake.buttons(msgs[-1]) for (t, _) in row]
    assert set(buttons) == {f.title[:100] for f in h.service.library}


async def test_scale_buttons_edit_the_question_and_typed_answers_close_keyboards(bot):
    h = bot
    msgs = await start_flow(h, 2, "scaling-checkin")
    # the flow's intro and its first question in one message, the intro first
    assert len(msgs) == 1 and msgs[0].text.startswith("This is a short check-in before your next meeting.")
    assert msgs[0].text.endswith("\n\nQuestion 1\nWhat are your best hopes from our talking together?")
    msgs = await h.say(2, "We argue less")
    scale = msgs[-1]
    rows = h.fake.buttons(scale)
    assert len(rows) == 2 and [t for row in rows for t, _ in row] == [str(i) for i in range(11)]
    assert "0 = the worst things have been, 10 = your best hopes met" in scale.text
    msgs = await h.press(2, scale, "6")
    edited = h.fake.message(2, scale.message_id)
    assert edited.text.endswith("✓ 6") and h.fake.buttons(edited) == []
    assert h.fake.answered_callbacks
    assert "What puts you at 6 and not lower?" in msgs[-1].text
    # typing a number at a scale question works too, and closes its buttons
    await h.say(2, "We eat together")
    await h.say(2, "Less shouting")
    good_enough = h.fake.last_message(2)
    assert h.fake.buttons(good_enough)
    await h.say(2, "eight")
    assert h.fake.buttons(h.fake.message(2, good_enough.message_id)) == []
    assert h.fake.message(2, good_enough.message_id).text.endswith("✓ 8")
    assert answers_of(h, 2)["good_enough"] == 8


async def test_every_scripted_conversation_gives_the_same_answers_over_telegram(tmp_path, library):
    """Parity: flows/tests, played through Telegram with buttons, concurrently, with
    safeguarding on (some scripts disclose, then carry on or stop)."""
    from bot.safeguarding import SafeguardingConfig

    convs, errors = load_scripts([DEFAULT_FLOWS / "tests"])
    assert convs and not errors
    # Welsh and Polish scripts choose their language with /language: offer the unreviewed translations too.
    service = ConversationService(Store(tmp_path / "parity.db"), library, safeguarding=SafeguardingConfig.load(),
                                  allow_unreviewed_languages=True)
    # Concurrently, but at most 16 at a time: the library keeps growing, and with every
    # script at once on a shared machine, updates wait past the harness's 10 s per update.
    limit = asyncio.Semaphore(16)

    async def play_one(i, c):
        async with limit:
            return await play_async(c, TelegramDriver(bot, 1000 + i))

    async with running_bot(service) as bot:
        outcomes = await asyncio.gather(*(play_one(i, c) for i, c in enumerate(convs)))
    failures = [f"{o.conversation.flow}: {o.conversation.name}\n" + "\n".join(o.failures) for o in outcomes if not o.ok]
    assert not failures, "\n\n".join(failures)


async def test_stale_button_answers_closed_and_changes_nothing(bot):
    h = bot
    await start_flow(h, 3, "scaling-checkin")
    msgs = await h.say(3, "hopes")
    scale = msgs[-1]
    await h.press(3, scale, "4")
    state = answers_of(h, 3)
    data = next(cb for row in h.fake.buttons(scale.versions[0]["reply_markup"]) for (t, cb) in row if t == "9")
    before = len(h.fake.messages(3))
    h.fake.press_button(3, scale.message_id, data, force=True)
    await h.fake.wait_for(lambda: any(c.text == "This question has closed." for c in h.fake.answered_callbacks), 5)
    assert answers_of(h, 3) == state and len(h.fake.messages(3)) == before
    # forged or unknown callback data is refused the same way
    h.fake.press_button(3, scale.message_id, "a:999999:0:1", force=True)
    h.fake.press_button(3, scale.message_id, "zz:not-ours", force=True)
    await h.fake.wait_for(lambda: sum(c.text == "This question has closed." for c in h.fake.answered_callbacks) >= 3, 5)
    assert answers_of(h, 3) == state


async def test_cancelled_conversation_buttons_are_closed(bot):
    h = bot
    await start_flow(h, 4, "scaling-checkin")
    msgs = await h.say(4, "hopes")
    scale = msgs[-1]
    msgs = await h.say(4, "/cancel")
    assert "You have stopped" in msgs[-1].text
    assert h.fake.buttons(h.fake.message(4, scale.message_id)) == []
    data = next(cb for row in h.fake.buttons(scale.versions[0]["reply_markup"]) for (t, cb) in row if t == "3")
    h.fake.press_button(4, scale.message_id, data, force=True)
    await h.fake.wait_for(lambda: any(c.text == "This question has closed." for c in h.fake.answered_callbacks), 5)


async def test_unknown_deep_link_and_non_text_input(bot):
    h = bot
    before = len(h.fake.messages(5))
    h.fake.inject_command(5, "/start", "not-a-real-invite-code")
    msgs = await h.settle(5, before)
    assert "isn't one I recognise" in msgs[0].text
    await start_flow(h, 5, "scaling-checkin")
    conv = h.service.store.active_conversation(h.service.store.person("tg:5"))
    lines = len(h.service.store.transcript(conv.id))
    for inject in (h.fake.inject_photo, h.fake.inject_sticker, h.fake.inject_voice):
        before = len(h.fake.messages(5))
        inject(5)
        msgs = await h.settle(5, before)
        assert msgs[-1].text == "Sorry, I can only read typed text. Please answer in words."
    # a picture and a voice message are noted (that one was sent, not what); a sticker is not; nothing answered
    added = [(t["kind"], t["text"], t["media"]) for t in h.service.store.transcript(conv.id)[lines:]]
    assert added == [("media", "", "photo"), ("media", "", "voice")]
    assert h.service.store.answers(conv.id) == []


async def test_duplicated_update_changes_nothing(bot):
    h = bot
    await start_flow(h, 6, "scaling-checkin")
    uid = h.fake.inject_message(6, "We talk more")
    await h.delivered(uid)
    await h.fake.wait_for(lambda: h.fake.is_confirmed(uid), 5)
    n_msgs = len(h.fake.messages(6))
    conv = h.service.store.active_conversation(h.service.store.person("tg:6"))
    n_lines = len(h.service.store.transcript(conv.id))
    question = h.fake.messages(6)[-1].text
    h.fake.redeliver(uid)
    # a probe in the same chat, handled after the duplicate (one chat's updates go in order):
    # once it is answered, anything the duplicate would have sent has been sent
    probe = h.fake.inject_command(6, "/repeat")
    await h.delivered(probe)
    await h.fake.wait_for(lambda: h.fake.is_confirmed(uid) and h.fake.is_confirmed(probe), 5)
    assert [m.text for m in h.fake.messages(6)[n_msgs:]] == [question]  # the probe's answer, nothing else
    assert [ln for ln in h.service.store.transcript(conv.id)[n_lines:] if ln["text"] == "We talk more"] == []
    assert [a["revision"] for a in h.service.store.answers(conv.id)] == [1]


async def test_429_and_500_and_dropped_connections_lose_nothing(bot):
    h = bot
    await start_flow(h, 7, "scaling-checkin")
    h.fake.fail_next("sendMessage", status=429, retry_after=1)
    msgs = await h.say(7, "hopes")
    assert "where are things now?" in msgs[-1].text
    h.fake.fail_next("sendMessage", status=500)
    msgs = await h.press(7, msgs[-1], "5")
    assert "What puts you at 5" in msgs[-1].text
    h.fake.fail_next("sendMessage", drop_connection=True)
    msgs = await h.say(7, "family")
    assert "different at 6" in msgs[-1].text
    assert answers_of(h, 7) == {"best_hopes": "hopes", "scale_now": 5, "not_lower": "family"}
    sends = [c for c in h.fake.calls_to("sendMessage") if c.params.get("chat_id") in (7, "7")]
    assert len([c for c in sends if "different at 6" in str(c.params.get("text"))]) >= 1


async def test_long_messages_are_split_on_paragraphs(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    para = "This paragraph explains who will see your answers and why. " * 12
    intro = "\n\n".join(f"Part {i}. {para}" for i in range(12))
    (flows / "long.yaml").write_text(
        "id: long\nversion: 1\ntitle: Long\naudience: family\nintro: |\n"
        + "".join(f"  {line}\n" if line else "\n" for line in intro.split("\n"))
        + "steps:\n  - id: a\n    ask: What happened?\n")
    service = ConversationService(Store(tmp_path / "l.db"), FlowLibrary.load([flows]))
    async with running_bot(service) as h:
        msgs = await start_flow(h, 8, "long")
    assert len(intro) > 4096
    assert all(len(m.text) <= 4096 for m in msgs)
    parts = [m.text for m in msgs]  # the intro, then the question in the same last message
    assert len(parts) >= 2 and all(p.startswith("Part ") for p in parts)
    got = [p.strip() for p in "\n\n".join(parts).split("\n\n")]
    assert got == [p.strip() for p in intro.strip().split("\n\n")] + ["Question 1 of 1\nWhat happened?"]
    assert all(h.fake.buttons(m) == [] for m in msgs)


def test_split_text_limits():
    assert split_text("a" * 5000) == ["a" * 4096, "a" * 904]
    parts = split_text(("word " * 2000).strip())
    assert all(0 < len(p) <= 4096 for p in parts) and " ".join(parts) == ("word " * 2000).strip()
    assert split_text("") == ["…"]


def test_callback_data_fits_64_bytes_for_every_shipped_step(library):
    from bot.engine.runner import FlowRunner

    huge = 10 ** 15
    for flow in library:
        runner = FlowRunner(flow)
        for step in flow.steps:
            if not step.is_question:
                continue
            markup = keyboard(runner.question(step, runner.start().session), flow, huge)
            for row in (markup.inline_keyboard if markup else []):
                for b in row:
                    assert len(b.callback_data.encode()) <= 64
                    assert Callback.parse(b.callback_data) is not None


def test_a_question_s_buttons_are_sent_as_the_json_of_the_buttons_in_every_conversation(library):
    """The buttons are laid out once per question and kept; what is sent (``to_json``) is the
    JSON of the very buttons (``inline_keyboard``) for each conversation, ticks included."""
    import json

    from bot.engine.runner import FlowRunner

    seen = 0
    for flow in library:
        runner = FlowRunner(flow)
        for step in flow.steps:
            if not step.is_question:
                continue
            prompt = runner.question(step, runner.start().session)
            for conv, ticked in ((7, frozenset()), (123456, frozenset({0, 2})), (7, frozenset())):
                markup = keyboard(prompt, flow, conv, ticked)
                if markup is None:
                    continue
                rows = [[{"text": b.text, "callback_data": b.callback_data} for b in row]
                        for row in markup.inline_keyboard]
                assert json.loads(markup.to_json()) == {"inline_keyboard": rows}
                assert all(Callback.parse(b["callback_data"]).conv == conv for row in rows for b in row
                           if Callback.parse(b["callback_data"]).action in ("a", "t", "d"))
                seen += 1
    assert seen > 100
    scale = next(s for f in library for s in f.steps if s.type == "scale")
    flow = next(f for f in library if scale in f.steps)
    with pytest.raises(ValueError, match="callback data too long"):
        keyboard(FlowRunner(flow).question(scale, FlowRunner(flow).start().session), flow, 10 ** 60)


async def test_fifty_users_in_parallel_never_cross(bot):
    h = bot

    async def one(user):
        await start_flow(h, user, "scaling-checkin")
        await h.say(user, f"hopes of {user}")
        msgs = await h.press(user, h.fake.last_message(user), str(user % 8 + 2))
        await h.say(user, f"reason of {user}")
        await h.say(user, f"different for {user}")
        await h.say(user, "9")
        await h.say(user, f"nothing else from {user}")
        return msgs

    users = list(range(100, 150))
    await asyncio.gather(*(one(u) for u in users))
    for u in users:
        got = answers_of(h, u)
        assert got == {"best_hopes": f"hopes of {u}", "scale_now": u % 8 + 2, "not_lower": f"reason of {u}",
                       "one_point_up": f"different for {u}", "good_enough": 9, "anything_else": f"nothing else from {u}"}
        for m in h.fake.messages(u):
            for other in users:
                if other != u:
                    assert f"of {other}" not in (m.text or "") and f"for {other}" not in (m.text or "")


async def test_restart_mid_flow_resumes(tmp_path, library):
    db = tmp_path / "restart.db"
    async with FakeBotAPI() as fake:
        async with running_bot(ConversationService(Store(db), library), fake=fake) as h:
            await start_flow(h, 9, "scaling-checkin")
            await h.say(9, "hopes")
        async with running_bot(ConversationService(Store(db), library), fake=fake) as h:
            before = len(fake.messages(9))
            fake.inject_command(9, "/start")
            offer = await h.keyboard_after(9, before)
            assert "unfinished conversation" in offer.text
            await h.press(9, offer, "Carry on")
            await h.settle(9, len(fake.messages(9)) - 1)
            shown = texts(fake.messages(9)[-2:])
            assert any("where are things now?" in t for t in shown)
            await h.press(9, fake.last_message(9), "3")
            assert answers_of(h, 9) == {"best_hopes": "hopes", "scale_now": 3}


# --- the real `restorative-bot serve` process --------------------------------------------

LEAD = 424242


async def _serve(fake, db, *extra, env_extra=None, config_text=None):
    config = Path(db).with_suffix(".config.yaml")
    config.write_text(config_text or f"safeguarding:\n  leads: [{LEAD}]\n  repeat_minutes: 0.02\n"
                      "demo_flow: scaling-checkin\n")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.base_url, **(env_extra or {})}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--db", str(db), "--config", str(config), "--alert-poll-seconds", "0.2",
        *extra, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def _delivered_in(db, key: str) -> bool:
    """Whether another process has recorded this input's reply as delivered (read-only)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT delivered_at FROM inputs WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row is not None and row[0] is not None


async def test_serve_process_sigkill_and_restart_loses_nothing_and_logs_no_token(tmp_path):
    db = tmp_path / "serve.db"
    async with FakeBotAPI() as fake:
        proc = await _serve(fake, db)
        await fake.wait_for(lambda: fake.calls_to("getUpdates"), 20)
        fake.inject_command(11, "/start")
        await fake.wait_for(lambda: any(fake.buttons(m) for m in fake.messages(11)), 10)
        menu = [m for m in fake.messages(11) if fake.buttons(m)][-1]
        fake.press_button(11, menu.message_id, "s:scaling-checkin")
        who = await fake.wait_for(lambda: next((m for m in fake.messages(11) if any(
            cb == "s:scaling-checkin:0" for row in fake.buttons(m) for (_, cb) in row)), None), 10)
        pressed = fake.press_button(11, who.message_id, "s:scaling-checkin:0")  # Who is filling this in? A parent or carer
        await fake.wait_for(lambda: any("best hopes" in (m.text or "") for m in fake.messages(11)), 10)
        # the first question is on record as delivered (else a restart rightly sends it again,
        # and an answer typed before that copy is asked about, not applied)
        await fake.wait_for(lambda: _delivered_in(db, f"tg:{pressed}"), 10)
        # an answer arrives, and the process dies before it can possibly reply
        fake.set_latency(0.5)
        answer = fake.inject_message(11, "We talk more")
        await fake.wait_for(lambda: answer in fake.delivered, 20)  # handed to the bot, whose replies now crawl
        proc.send_signal(signal.SIGKILL)
        _, err1 = await proc.communicate()
        fake.set_latency(0)
        polls = len(fake.calls_to("getUpdates"))
        proc = await _serve(fake, db)
        await fake.wait_for(lambda: any("where are things now?" in (m.text or "") for m in fake.messages(11)), 20)
        await fake.wait_for(lambda: len(fake.calls_to("getUpdates")) >= polls + 2, 20)  # the new process is polling
        # SIGTERM stops cleanly
        proc.send_signal(signal.SIGTERM)
        _, err2 = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err2.decode()[-3000:]
    store = Store(db)
    conv = store.conversations()[0]
    assert [(a["step_id"], a["raw"], a["revision"]) for a in store.answers(conv["id"])] == [("best_hopes", "We talk more", 1)]
    logs = (err1 + err2).decode()
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs
    assert '"event": "serving"' in logs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_webhook_mode_checks_the_secret(tmp_path):
    port = _free_port()
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret-value\n")
    async with FakeBotAPI() as fake:
        proc = await _serve(fake, tmp_path / "wh.db", "--webhook-url", f"http://127.0.0.1:{port}/tg", "--port", str(port),
                            "--webhook-secret-file", str(secret))
        try:
            assert b"s3cret-value" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            await fake.wait_for(lambda: fake.webhook_url, 20)
            assert fake.webhook_url == f"http://127.0.0.1:{port}/tg"
            fake.inject_command(12, "/start")
            await fake.wait_for(lambda: any(fake.buttons(m) for m in fake.messages(12)), 15)
            # a delivery without the secret is refused by the bot
            import aiohttp

            async with aiohttp.ClientSession() as s:
                async with s.post(f"http://127.0.0.1:{port}/tg", json={"update_id": 999999}) as r:
                    assert r.status == 403
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert "s3cret-value" not in err.decode() and TOKEN not in err.decode()


def test_a_webhook_secret_on_the_command_line_is_refused(tmp_path):
    """Finding 11: argv is readable by every user (ps); the secret comes from the environment or a file."""
    import subprocess

    config = tmp_path / "c.yaml"
    config.write_text(f"safeguarding:\n  leads: [{LEAD}]\n")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{_free_port()}/bot"}
    proc = subprocess.run([sys.executable, "-m", "bot", "serve", "--db", str(tmp_path / "x.db"), "--config", str(config),
                           "--webhook-url", "https://example.org/tg", "--webhook-secret", "s3cret-value"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "TELEGRAM_WEBHOOK_SECRET" in proc.stderr and "--webhook-secret-file" in proc.stderr
    assert "s3cret-value" not in proc.stderr and "Traceback" not in proc.stderr


def test_serve_without_a_safeguarding_lead_refuses_to_start(tmp_path):
    import subprocess

    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    env.pop("RESTORATIVE_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "bot", "serve", "--db", str(tmp_path / "x.db")], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=30)
    assert proc.returncode == 2 and "no designated safeguarding lead" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_without_token_says_how_to_get_one(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "bot", "serve", "--db", str(tmp_path / "x.db")], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=30)
    assert proc.returncode == 2 and "TELEGRAM_BOT_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


async def test_help_lists_the_menus_other_commands_with_or_without_a_conversation(bot):
    """/help explains answering (back, skip, repeat, cancel), then names every other command of
    the menu with the menu's own words, so /reminders, /stop, /language and /privacy are found."""
    from bot.messages import msg

    h = bot
    navigation = {"back", "skip", "repeat", "cancel", "help"}
    others = [f"/{name} — {msg(f'telegram.commands.{name}')}" for name in msg("telegram.commands")
              if name not in navigation]
    assert {"/reminders", "/stop", "/language", "/privacy", "/delete"} <= {line.split(" — ")[0] for line in others}

    async def help_text(user):
        before = len(h.fake.messages(user))
        uid = h.fake.inject_command(user, "/help")
        await h.delivered(uid)
        return [m.text for m in await h.settle(user, before)]

    idle = await help_text(41)
    assert idle[0] == msg("navigation.help") + "\n" + "\n".join(others)
    await start_flow(h, 42, "scaling-checkin")
    during = await help_text(42)
    assert during[-1] == "\n".join(others)
    assert msg("navigation.help") in "\n".join(during[:-1])
    await h.say(42, "calmer mornings")  # the question asked before /help still takes the answer
    assert answers_of(h, 42) == {"best_hopes": "calmer mornings"}
