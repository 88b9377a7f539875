"""Benchmarks and the reliability (chaos) harness for restorative-bot.

Kept outside the ``bot`` package on purpose: nothing here ships, and the bot never imports it.

``python -m benchmarks`` (``scripts/bench``) measures speed, scale and start-up, each
side by side with a baseline measured in the same run. ``python -m benchmarks.chaos``
(``scripts/chaos``) breaks the bot on purpose: kill -9, Bot API faults, fuzzing.
"""
