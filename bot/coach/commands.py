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
