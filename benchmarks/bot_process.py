"""The bot as its own process, exactly as ``restorative-bot serve`` builds and runs it in
polling mode (config, access rules, escalation, store, flows, the durable poller), with two
knobs the CLI does not have (on purpose): the outgoing rate limit, and running without the
safeguarding lexicon when it cannot be loaded.

Used (1) to measure the bot itself over HTTP with python-telegram-bot's rate limiter
lifted (``--max-rate``; ``serve`` keeps ~30 messages/s, Telegram's own limit), and (2) as
a stand-in for ``restorative-bot serve`` while the packaged safeguarding lexicon cannot
be loaded (``serve`` rightly refuses to start then). Every result that used it says so.
"""

from __future__ import annotations

import argparse
import logging
import os


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--flows", action="append", default=[])
    parser.add_argument("--max-rate", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=256,
                        help="build_application's concurrency: updates in flight and HTTP connection pool size")
    args = parser.parse_args()
    from telegram import Update

    from bot import logs
    from bot.access import Access
    from bot.config import Config
    from bot.conversation import ConversationService
    from bot.engine.library import FlowLibrary
    from bot.frontends.telegram.app import build_application
    from bot.store import Store

    token = os.environ["TELEGRAM_BOT_TOKEN"]
    logs.setup("WARNING", secrets=[token])
    config = Config.load(args.config)
    try:
        from bot.safeguarding import SafeguardingConfig

        safeguarding = SafeguardingConfig.load(*config.lexicon)
    except Exception as exc:  # noqa: BLE001 - being finished elsewhere
        logging.getLogger("bot").warning(f"bot_process: serving WITHOUT safeguarding ({type(exc).__name__})")
        safeguarding = None
    service = ConversationService(Store(args.db), FlowLibrary.load(args.flows or None), safeguarding=safeguarding)
    if safeguarding is not None:  # as serve runs it: the detector in a worker process, on the other core
        from bot.safeguarding_worker import DetectorWorker, lexicon_recipe

        service.detector_worker = DetectorWorker(lexicon_recipe(config.lexicon))
    access = Access(service.store, service.library, config)
    access.seed()
    escalation = None
    if safeguarding is not None:
        from bot.escalation import Escalation

        escalation = Escalation(service.store, safeguarding, leads=config.leads, repeat_minutes=config.repeat_minutes)
    app, frontend = build_application(service, token, api_url=os.environ["TELEGRAM_API_URL"], max_rate=args.max_rate,
                                      escalation=escalation, access=access, concurrency=args.concurrency,
                                      limits=config.rate_limits())
    service.store.checkpoint_in_background()  # as serve runs it (bot.frontends.telegram.app.serve)
    frontend.settle_heap_at_start = True  # as serve does (bot.frontends.telegram.app.settle_heap)
    from bot.frontends.telegram.polling import run as run_polling

    try:  # serve's own poller: the inbox, confirmed once kept (not python-telegram-bot's run_polling)
        run_polling(app, frontend, timeout=30, allowed_updates=Update.ALL_TYPES, gate=frontend.gate,
                    loose=frontend.loose_order)
    finally:
        frontend.close()
        if service.detector_worker is not None:
            service.detector_worker.close()


if __name__ == "__main__":
    main()
