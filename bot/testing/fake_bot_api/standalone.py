"""Standalone: ``python -m bot.testing.fake_bot_api --port 8081``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import FakeBotAPI


async def _serve(host: str, port: int, tokens: list[str], latency: float) -> None:
    fake = FakeBotAPI(valid_tokens=tokens or None)
    fake.set_latency(latency)
    await fake.start(host, port)
    print(f"base_url: {fake.base_url}", flush=True)
    print(f"base_file_url: {fake.base_file_url}", flush=True)
    print(f"control: POST JSON kwargs to {fake.control_url}/<hook>", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.testing.fake_bot_api",
        description="Fake Telegram Bot API server (loopback).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", action="append", default=[], help="accept only these")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token, args.latency))
