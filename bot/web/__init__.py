"""The review website: another thin frontend over the same access layer.

- :mod:`bot.web.signin`: one-time sign-in links and sessions (no HTTP here; Telegram's /web
  and ``restorative-bot web-link`` call it too).
- :mod:`bot.web.app`: the Starlette application (pages, forms, security headers).
- :mod:`bot.web.server`: running it with uvicorn, alone (``restorative-bot web``) or beside
  the bot (``serve --web-port``).

Every page asks the function its Telegram command asks (``Access.cases``, ``Access.case``,
``Access.transcript``, ``Access.comment``, ``Access.review_queue``, ``Reading.acknowledge``,
``Escalation.acknowledge_person`` ...), so the rules and the audit log are the same.
"""
