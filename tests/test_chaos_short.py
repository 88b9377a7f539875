"""The short form of scripts/chaos (benchmarks/chaos/): small counts, bounded in time.

kill -9 of the real ``serve`` process during concurrent conversations, Bot API faults,
and fuzzing of the loader, the service and the Telegram frontend. What is checked is
correctness only (nothing lost, doubled, crossed; right resume; no traceback); timings
are never asserted, and a fixed number of kills and faults is driven, however long they
take. Every update a simulated person sent must have been handled: a lost one is a
violation even though the person, like a real one, would /start and carry on. ``scripts/chaos`` runs the same for longer, with more users.
"""

import asyncio

from benchmarks import chaos
from bot.testing.telegram import WAIT

SEED = 20261126
# How long, at most, the simulated people have after the chaos to finish their conversations:
# a ceiling (the run ends as soon as they have), generous because three restarts of `serve`
# on a loaded 2-core machine take many seconds; "could not finish in time" would otherwise
# fail a correct bot for the machine's speed.
FINISH = 4 * WAIT


def _show(report) -> str:
    return report.line() + "\n" + "\n".join(report.violations) + "\n" + "\n".join(report.notes)


def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path):
    report = asyncio.run(chaos.run_scenario("kill", duration=10, users=6, seed=SEED, workdir=tmp_path, kills=3,
                                            faults=False, stall=4, finish=FINISH, log=lambda s: None))
    assert report.kills == 3, _show(report)  # a fixed number, however long they take
    assert not report.violations, _show(report)
    assert report.finished == 6, _show(report)


def test_429_500_dropped_and_slow_replies_lose_and_double_nothing(tmp_path):
    report = asyncio.run(chaos.run_scenario("faults", duration=8, users=8, seed=SEED + 1, workdir=tmp_path,
                                            kills=False, faults=12, stall=12, finish=FINISH, log=lambda s: None))
    assert report.faults == 12, _show(report)  # a fixed number, each taken by a call
    assert not report.violations, _show(report)
    assert report.duplicate_questions == 0, _show(report)


def test_fuzzed_flows_files_input_and_callbacks_never_give_a_traceback(tmp_path):
    report = chaos.run_fuzz(40, SEED, tmp_path, log=lambda s: None, telegram_examples=12)
    assert not report.violations, "\n".join(report.violations)


def test_undecodable_input_is_stored_or_refused_clearly(tmp_path):
    problems = chaos.cli_processes(tmp_path, invalid_stdin=True)
    chaos.fuzz_service(5, SEED, surrogates=True)
    assert not problems, "\n".join(problems)


def test_a_redelivered_update_after_commit_gets_its_committed_reply(tmp_path):
    problems = asyncio.run(chaos.check_redelivery(tmp_path))
    assert not problems, "\n".join(problems)


def test_after_kill_9_a_committed_answer_still_gets_its_reply(tmp_path):
    problems = asyncio.run(chaos.check_restart_sends_committed_replies(tmp_path))
    assert not problems, "\n".join(problems)


def test_a_flood_from_many_accounts_delays_neither_a_genuine_alert_nor_a_practitioner(tmp_path):
    report = asyncio.run(chaos.run_flood(accounts=15, messages=4, seed=SEED, workdir=tmp_path, chat_interval=0.2,
                                         probes=1, timeout=30, log=lambda s: None))
    assert not report.violations, _show(report)
    # at most one per person (run_flood counts people with two open alerts as a violation); fewer,
    # as people without a role share one budget and most of the flood is turned away
    assert report.inputs == 60 and 1 < report.figures["alerts"] <= 16, _show(report)
    assert report.figures["rate-limit audit rows"] <= 15, _show(report)  # one row per account, with a count
    assert report.figures["genuine alert to lead (median/max)"] != "none", _show(report)
    assert report.figures["/cases (median/max)"] != "none", _show(report)


def test_simulated_people_have_their_time_to_finish_from_the_end_of_the_chaos_not_from_the_start():
    """A fixed number of faults may take long to be taken on a loaded machine: the people's
    time to finish their last conversation counts from when the chaos ended, never from a
    fixed moment (which failed a correct bot for the machine's speed)."""
    from benchmarks.chaos.person import ChaosUser
    from benchmarks.chaos.report import BotState

    bot = BotState(chaos_done=False)
    person = ChaosUser.__new__(ChaosUser)
    person.bot = bot
    assert person._hard(soft=100.0, finish=30.0) == float("inf")  # the chaos is still under way
    bot.finish_chaos()
    assert person._hard(soft=0.0, finish=30.0) == bot.chaos_done_at + 30.0  # it ended after the soft limit
    assert person._hard(soft=bot.chaos_done_at + 50.0, finish=30.0) == bot.chaos_done_at + 80.0
