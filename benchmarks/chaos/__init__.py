"""Break the bot on purpose, and check that nothing a person said is lost or doubled.

``python -m benchmarks.chaos`` (``scripts/chaos``) runs, each bounded in time:

kill
    ``restorative-bot serve`` runs as its own process against the fake Bot API server in
    this one, while many simulated users go through a scripted conversation (typing and
    pressing buttons). At random moments the bot is killed with SIGKILL and restarted.
    Users act like people: when no reply comes after the bot is back, they send /start
    and press "Carry on". Checked: every answer a user saw acknowledged (the next question
    arrived) is in the database right after each kill, and exactly once at the end; every
    resume shows the right question (the one after the last answer the bot committed);
    everyone finishes with exactly their own answers.
faults
    The same, without kills, while the fake server answers a stream of calls with 429
    (retry_after), 500, dropped connections and slow replies. Checked: the same, and no
    question is sent twice unless the person asked for it again.
fuzz
    hypothesis, seeded: the YAML loader on mutated flows and arbitrary text; flow files
    of arbitrary bytes (invalid UTF-8, NULs, BOMs) through the loader and through
    ``restorative-bot validate`` / ``chat`` processes; arbitrary text and button values
    through the conversation service; arbitrary messages and callback data (including
    another person's conversation ids) through the real Telegram frontend. Checked: never
    an exception or a traceback, always a clear message.

flood
    ``restorative-bot serve`` with its real rate limits, while many accounts without a
    role send disclosure-like and bulky (4 KB) messages as fast as they can, and the fake
    server delivers about one message a second to one chat, as Telegram does. Meanwhile a
    family member in a case makes a genuine disclosure and the practitioner and the lead
    use commands. Reported: how long the genuine alert takes to reach the lead and the
    practitioner, and how long /cases and /ack take to answer. Checked: every genuine
    alert and command arrives, one open alert per person, what was stored and audited
    stays bounded, and no error in serve's log.

Every run prints what it did and what it found, and exits 1 on any violation.

Layout: ``flow``, ``person``, ``report``, ``checks``, ``kill_faults``, ``flood``,
``redelivery``, ``fuzz``, ``cli``.
"""

from benchmarks.chaos.flow import (
    FLOW_ID,
    STEPS,
    CHOICES,
    CHAOS_FLOW,
    TAG,
    plan_for,
    expected_shown,
)
from benchmarks.chaos.report import (
    BotState,
    Report,
)
from benchmarks.chaos.person import (
    ChaosUser,
)
from benchmarks.chaos.checks import (
    _db,
    _conversations,
    check_acknowledged,
    check_none_lost,
    check_final,
    count_repeats,
    _error_lines,
)
from benchmarks.chaos.kill_faults import (
    _wait_up,
    run_scenario,
    _harness_failed,
    _keep_or_clean,
    FAULT_METHODS,
    _inject_faults,
    _trickle,
)
from benchmarks.chaos.flood import (
    FLOOD_PRACTITIONER,
    FLOOD_FAMILY,
    FLOOD_TEXTS,
    _flood_text,
    run_flood,
)
from benchmarks.chaos.redelivery import (
    check_redelivery,
    check_restart_sends_committed_replies,
)
from benchmarks.chaos.fuzz import (
    LINE_RE,
    _check_errors,
    fuzz_loader,
    fuzz_files,
    cli_processes,
    fuzz_service,
    fuzz_telegram,
    run_fuzz,
)
from benchmarks.chaos.cli import (
    main,
)
