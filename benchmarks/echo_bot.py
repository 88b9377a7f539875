"""A bare python-telegram-bot echo bot, long-polling a Bot API at --api-url (baseline)."""

from __future__ import annotations

import argparse
import os

from telegram import Update
from telegram.ext import ApplicationBuilder, MessageHandler, filters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--concurrent", type=int, default=256)
    parser.add_argument("--pool", type=int, default=256, help="connection pool size (the bot's build_application uses 256)")
    args = parser.parse_args()
    base = args.api_url.rstrip("/")
    app = (ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"]).base_url(base)
           .concurrent_updates(args.concurrent).connection_pool_size(args.pool).build())

    async def echo(update: Update, context) -> None:
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(allowed_updates=Update.ALL_TYPES, timeout=30)


if __name__ == "__main__":
    main()
