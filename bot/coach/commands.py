"""`restorative-bot coach` and `restorative-bot rehearse`: thin commands over bot.coach and
bot.rehearsal. Registered on the main CLI group by bot/cli.py."""

from __future__ import annotations

import json
import os
import sys

import click

from bot.messages import msg


def coach_stream(stream, write, as_json: bool, rules_paths=()) -> int:
    """Coach every line of a binary stream; exactly one output record per input line."""
    from bot.coach import Coach, load_rules

    c = Coach(load_rules(*rules_paths))
    data = stream.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for raw in lines:
        text = raw.decode("utf-8", errors="replace").removesuffix("\r")
        result = c.coach(text)
        if as_json:
            write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
        else:
            labels = ", ".join(result.labels) or msg("coach.no_labels")
            out = msg("coach.line", text=text, labels=labels)
            if result.suggestion:
                out += "\n" + msg("coach.try", suggestion=result.suggestion)
            write(out + "\n")
    return 0


def register(main: click.Group) -> None:
    @main.command("coach")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input line: text, labels, suggestion.")
    @click.option("--rules", "rules_paths", multiple=True, type=click.Path(), help="Extra coach rules (YAML) added to the shipped ones.")
    def coach_command(as_json: bool, rules_paths: tuple[str, ...]) -> None:
        """Label practitioners' questions read from standard input, one per line."""
        from bot.coach import RulesError

        try:
            code = coach_stream(sys.stdin.buffer, sys.stdout.write, as_json, rules_paths)
        except RulesError as exc:
            for e in exc.errors:
                click.echo(str(e), err=True)
            click.echo(msg("coach.rules_errors"), err=True)
            sys.exit(1)
        except BrokenPipeError:  # piped into head: stop quietly
            os._exit(0)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.stdout.flush()
        sys.exit(code)

    @main.command("rehearse")
    @click.argument("scenario", required=False)
    @click.option("--db", type=click.Path(), help="SQLite database file (default: $RESTORATIVE_DB or ./restorative.db).")
    @click.option("--as", "as_name", default=None, help="Who is rehearsing (default: your user name).")
    def rehearse_command(scenario: str | None, db: str | None, as_name: str | None) -> None:
        """Rehearse a conversation with a simulated person; the coach reads every question."""
        from bot.frontends.rehearse_console import run_rehearsal_console

        name = as_name or os.environ.get("USER") or "you"
        try:
            code = run_rehearsal_console(_rehearsals(db), f"console:{name}", name, scenario)
        except KeyboardInterrupt:
            code = 130
        sys.exit(code)


def _rehearsals(db: str | None):
    from bot.rehearsal.scenario import ScenarioError
    from bot.rehearsal.service import RehearsalService
    from bot.store import Store, StoreError, default_db_path

    from bot.config import Config, ConfigError
    from bot.dbkey import KeyError_

    path = db or default_db_path()
    try:
        config = Config.load(None)  # $RESTORATIVE_CONFIG, for the key file it may name
    except ConfigError as exc:
        for e in exc.errors:
            click.echo(str(e), err=True)
        sys.exit(1)
    try:
        store = Store(path, keyring=config.keyring(create=not os.path.exists(path)))
    except (StoreError, KeyError_) as exc:
        click.echo(f"restorative-bot: {exc}", err=True)
        sys.exit(2)
    try:
        return RehearsalService(store)
    except ScenarioError as exc:
        for e in exc.errors:
            click.echo(str(e), err=True)
        sys.exit(1)


def rehearsal_problems(paths=()) -> list:
    """Problems in the coach rules and role-play scenarios among these paths (default: the
    shipped flows/rehearsal/), for `restorative-bot validate`."""
    from pathlib import Path

    from bot.coach.rules import DEFAULT_RULES, check_rules_file
    from bot.rehearsal.scenario import DEFAULT_SCENARIOS, validate_scenarios

    rules_files, scenario_paths = [], []
    if not paths:
        rules_files, scenario_paths = [DEFAULT_RULES], [DEFAULT_SCENARIOS]
    for p in map(Path, paths):
        for f in ([p] if p.is_file() else sorted(p.rglob("*.y*ml")) if p.is_dir() else []):
            if "rehearsal" not in f.parts[:-1] or "tests" in f.parts[:-1]:
                continue
            (scenario_paths if "scenarios" in f.parts[:-1] else rules_files).append(f)
    errors = []
    for f in rules_files:
        errors.extend(check_rules_file(f))
    if scenario_paths:
        errors.extend(validate_scenarios(scenario_paths)[1])
    return errors


def play_rehearsal_scripts(paths, echo) -> tuple[list, int, list]:
    """Play the scripted rehearsals among these paths; (conversations, failures, load errors)."""
    from bot.engine.scripts import load_scripts, play
    from bot.testing.drivers import RehearsalDriver

    convs, errors = load_scripts(paths, rehearsals=True)
    for e in errors:
        echo(str(e))
    failed = 0
    for conv in convs:
        try:
            outcome = play(conv, RehearsalDriver.in_memory())
        except KeyError:
            echo(f"FAIL {conv.file}:{conv.line}: no scenario called '{conv.flow}'")
            failed += 1
            continue
        if outcome.ok:
            echo(f"ok   rehearsal {conv.flow}: {conv.name}")
        else:
            failed += 1
            echo(f"FAIL rehearsal {conv.flow}: {conv.name}")
            for f in outcome.failures:
                echo("  " + f.replace("\n", "\n  "))
    return convs, failed, errors
