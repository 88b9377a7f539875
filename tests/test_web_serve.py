"""`restorative-bot serve --web-port`: the review website runs beside the bot in the same
process and answers on loopback; /web in Telegram (through the fake Bot API) gives a link
that signs in on that site; SIGTERM stops both (issue 16 item 1)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from bot.testing.fake_bot_api import FakeBotAPI
from bot.testing.telegram import TOKEN

ROOT = Path(__file__).resolve().parents[1]
LEAD, WORKER = 424242, 31


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until_up(url: str, proc, timeout: float = 30.0) -> httpx.Response:
    """The first answer from the site (it starts beside the bot); fails if serve exits first."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            assert proc.returncode is None, "serve exited"
            try:
                return await client.get(url)
            except httpx.TransportError:
                if loop.time() > end:
                    raise
                await asyncio.sleep(0.1)  # polling for the port to open, not waiting a fixed time


async def test_serve_runs_the_website_beside_the_bot(tmp_path):
    port = _free_port()
    db = tmp_path / "serve-web.db"
    config = tmp_path / "config.yaml"
    config.write_text(f"safeguarding:\n  leads: [{LEAD}]\nroles:\n  practitioner: [{WORKER}]\n")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
    async with FakeBotAPI() as fake:
        env["TELEGRAM_API_URL"] = fake.base_url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--db", str(db), "--config", str(config), "--web-port", str(port),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await fake.wait_for(lambda: fake.calls_to("getUpdates"), 30)  # the bot is polling
            page = await _until_up(f"http://127.0.0.1:{port}/signin", proc)
            assert page.status_code == 200 and "send /web to the bot in Telegram" in page.text
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

            # /web in Telegram: a one-time link to this very site (web.url defaults to it)
            fake.inject_command(WORKER, "/web")
            reply = await fake.wait_for(lambda: next((m for m in fake.messages(WORKER)
                                                      if "/signin/" in (m.text or "")), None), 20)
            link = re.search(r"http://127\.0\.0\.1:(\d+)/signin/\S+", reply.text)
            assert link and int(link.group(1)) == port
            async with httpx.AsyncClient() as client:
                confirm = await client.get(link.group(0))
                assert confirm.status_code == 200
                csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
                code = re.search(r'name="code" value="([^"]+)"', confirm.text).group(1)
                done = await client.post(f"http://127.0.0.1:{port}/signin", data={"code": code, "csrf": csrf})
                assert done.status_code == 303 and done.headers["location"] == "/"
                cases = await client.get(f"http://127.0.0.1:{port}/")
                assert cases.status_code == 200 and "My cases" in cases.text
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-3000:]
    logs = err.decode()
    assert TOKEN not in logs and code not in logs and link.group(0) not in logs
    assert '"route": "signin_post"' in logs  # the site's own request log, which names routes only
    with socket.socket() as s:  # and the site stopped with the bot
        assert s.connect_ex(("127.0.0.1", port)) != 0
