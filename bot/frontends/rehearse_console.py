"""The terminal frontend for rehearsals: reads questions, prints the persona's replies.
All rules live in bot.rehearsal.service; works with piped stdin and ends cleanly on EOF."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.messages import msg
from bot.rehearsal.service import RehearsalService


def run_rehearsal_console(service: RehearsalService, person_key: str, name: str | None, scenario: str | None,
                          stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() if hasattr(stdin, "isatty") else False

    def say(text: str = "") -> None:
        stdout.write(text + "\n")
        stdout.flush()

    def ask() -> str | None:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = stdin.readline()
        return None if line == "" else line.rstrip("\r\n")

    with service.store.transaction():
        pid = service.store.person(person_key, name)
    chosen = service.find(scenario) if scenario else None
    if scenario and chosen is None:
        say(msg("rehearsal.unknown", name=scenario))
        return 2
    while chosen is None:
        say(msg("rehearsal.choose"))
        for n, s in enumerate(service.listing(), 1):
            say(msg("rehearsal.choose_line", n=n, title=s.title, id=s.id))
        line = ask()
        if line is None:
            return 0
        chosen = service.find(line)
        if chosen is None:
            say(msg("rehearsal.unknown", name=line))
    reply = service.start(pid, chosen.id, frontend="console")
    for m in reply.messages:
        say(m)
        say()
    while reply.status == "rehearsing":
        line = ask()
        if line is None:
            return 0
        reply = service.handle(pid, line)
        for m in reply.messages:
            say(m)
            say()
    return 0
