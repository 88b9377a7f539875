"""The terminal frontend: reads lines, renders prompts. All rules live in the service.

Works the same with a person at a terminal and with piped stdin; ends cleanly on EOF or
Ctrl-C with everything answered already committed.
"""

from __future__ import annotations

import sys
from typing import TextIO

from bot import respondent as respondents
from bot.conversation import ConversationService, Reply
from bot.engine.answers import fold, vocabulary
from bot.engine.runner import Input, Prompt
from bot import i18n
from bot.messages import msg


class Console:
    def __init__(self, service: ConversationService, person_key: str, name: str | None = None,
                 stdin: TextIO | None = None, stdout: TextIO | None = None):
        self.service = service
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.person = service.person(person_key, name)
        self.interactive = self.stdin.isatty() if hasattr(self.stdin, "isatty") else False

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def ask_line(self) -> str | None:
        if self.interactive:
            self.stdout.write("> ")
            self.stdout.flush()
        line = self.stdin.readline()
        if line == "":
            return None
        return line.rstrip("\r\n")

    def render(self, prompts: list[Prompt]) -> None:
        for p in prompts:
            prefix = "! " if p.kind in ("error", "safeguarding") else ""
            self.say(prefix + p.plain())
            if p.kind == "offer":  # no buttons here: say what to type to carry on or stop
                self.say(msg("console.hold_hint"))
            elif p.kind == "confirm":
                self.say(msg("console.confirm_hint"))
            self.say()

    def choose_flow(self) -> str | None:
        flows = self.service.flows()
        if not flows:
            self.say(msg("console.no_flows"))
            return None
        self.say(msg("console.choose_flow"))
        for i, f in enumerate(flows, 1):
            self.say(f"{i}. {f.title} ({f.id})")
        while True:
            line = self.ask_line()
            if line is None:
                return None
            t = fold(line)
            if t.isdigit() and 1 <= int(t) <= len(flows):
                return flows[int(t) - 1].id
            for f in flows:
                if t in (fold(f.id), fold(f.title)):
                    return f.id
            self.say(msg("validation.choice"))

    def yes_no(self, question: str) -> bool | None:
        yes, no, _ = vocabulary()  # the same yes/no words the flows accept
        self.say(question)
        while True:
            line = self.ask_line()
            if line is None:
                return None
            if fold(line) in yes:
                return True
            if fold(line) in no:
                return False
            self.say(msg("validation.yesno"))

    def choose_respondent(self, flow_id: str) -> str | None:
        """Ask "Who is filling this in?" when the flow admits several and nobody said."""
        flow = self.service.library.get(flow_id)
        choices = self.service.respondent_choices(flow_id)
        if not choices:
            return None
        self.say(msg("respondent.question"))
        for i, (_, label) in enumerate(choices, 1):
            self.say(f"{i}. {label}")
        while True:
            line = self.ask_line()
            if line is None:
                return None
            chosen = respondents.choose(flow, line)
            if chosen is not None:
                self.say()
                return chosen
            self.say(msg("respondent.choose_hint"))

    def run(self, flow_id: str | None = None, *, respondent: str | None = None, case_id: int | None = None,
            practice: bool = True, present: dict | None = None) -> int:
        """``present``: a worker-present session ({"ref": case ref, "person": the answering
        person's id}); the console person is the worker, recorded as present."""
        self.respondent, self.case_id, self.practice, self.present = respondent, case_id, practice, present
        self.conversation_id = None
        with i18n.using(self.service.language_of(self.person)):
            return self._run(flow_id)

    def _run(self, flow_id: str | None) -> int:
        practice = self.practice
        self.say(msg("console.welcome"))
        self.say()
        if practice:
            self.say(msg("console.practice"))
            self.say()
        try:
            reply = self._open(flow_id)
            if reply is None:
                self.say(msg("console.goodbye"))
                return 0
            self.conversation_id = reply.conversation_id
            self.render(reply.prompts)
            while reply.status == "in_progress":
                line = self.ask_line()
                if line is None:
                    self.say()
                    self.show_reminders()
                    self.say(msg("console.goodbye"))
                    return 0
                reply = self.service.handle(self.person, Input.from_text(line), conversation_id=reply.conversation_id)
                if reply.closed:
                    break
                self.render(reply.prompts)
                self.show_alerts(reply)
            self.show_reminders()
            return 0
        except KeyboardInterrupt:
            self.say()
            self.show_reminders()
            self.say(msg("console.goodbye"))
            return 130

    def show_reminders(self) -> None:
        """Say truthfully what reminders this conversation has: those recorded in the schedule
        (`serve` sends them), and those it would have had in someone's own Telegram chat but
        cannot have here (a terminal has no chat to send to)."""
        schedule = getattr(self.service, "schedule", None)
        conv = self.service.store.conversation(self.conversation_id) if self.conversation_id else None
        if schedule is None or conv is None:
            return
        rows = schedule.of_conversation(conv.id)
        if rows:
            self.say(msg("console.reminders_recorded"))
            for r in rows:
                who = msg("console.to_you" if r["person_id"] == conv.person_id else "console.to_worker")
                self.say(msg("console.reminders_line", when=schedule.local(r["due_at"]),
                             kind=msg(f"schedule.case_kinds.{r['kind']}"), who=who))
            self.say()
        for kind in schedule.unsendable(conv, self.service.runner_for(conv).flow):
            self.say(msg(f"console.no_reminder.{kind}"))
            self.say()

    def show_alerts(self, reply: Reply) -> None:
        """Say that an alert was recorded, and whether it is practice (sent to nobody)."""
        if not reply.alerts or reply.conversation_id is None:
            return
        conv = self.service.store.conversation(reply.conversation_id)
        for alert_id in reply.alerts:
            self.say(msg("console.alert_practice" if conv is not None and conv.practice else "console.alert_recorded",
                         id=alert_id))
            self.say()

    def _open(self, flow_id: str | None) -> Reply | None:
        active = self.service.active(self.person)
        if active is not None and (flow_id is None or active.flow_id == flow_id):
            flow = self.service.runner_for(active).flow
            answer = self.yes_no(msg("console.resume_offer", title=flow.title, started=active.started_at[:16].replace("T", " ")))
            if answer is None:
                return None
            if answer:
                self.say(msg("console.resumed"))
                return self.service.current(self.person)
            self.service.cancel_active(self.person)
        if flow_id is None:
            flow_id = self.choose_flow()
            if flow_id is None:
                return None
        respondent = self.respondent
        if respondent is None and self.service.respondent_choices(flow_id):
            respondent = self.choose_respondent(flow_id)
            if respondent is None:
                return None
        flow = self.service.library.get(flow_id)
        if self.present is not None and respondent != "practitioner" and "practitioner" not in respondents.admitted(flow):
            if respondents.own_device_only(flow):
                self.say(msg("staff.terminal_consent_first", flow=flow_id, ref=self.present["ref"]))
                return None
            if "person" not in self.present:
                self.present["person"] = self.service.present_person(self.present["ref"])
            self.say(msg("console.worker_present", ref=self.present["ref"], who=respondents.described(respondent)))
            self.say()
            return self.service.start(self.present["person"], flow_id, frontend="console", respondent=respondent,
                                      case_id=self.case_id, practice=self.practice, present_id=self.person,
                                      language=i18n.current())
        return self.service.start(self.person, flow_id, frontend="console", respondent=respondent,
                                  case_id=self.case_id, practice=self.practice)


def run_console(service: ConversationService, person_key: str, name: str | None, flow_id: str | None,
                stdin=None, stdout=None, *, respondent: str | None = None, case_ref: str | None = None,
                practice: bool = False, language: str | None = None) -> int:
    """Converse in the terminal. Without a case (or with ``practice``) the conversation is
    practice: its alerts are recorded, marked practice, and sent to nobody. With
    a case, the console person is the case's worker and the answers are recorded as the
    respondent's, with the worker present."""
    console = Console(service, person_key, name, stdin, stdout)
    if language is not None:  # chat --lang: kept as the person's choice, like /language
        with service.store.transaction():
            service.store.set_person_language(console.person, language)
    case_id, present = None, None
    if case_ref is not None:
        with service.store.transaction():
            case_id = service.store.create_case(console.person, case_ref)
        # The terminal is the worker's: whoever answers in a case answers on the worker's
        # device, with the worker present (as /with on Telegram), so their answers are theirs
        # and the privacy notice names the worker as their worker. A practitioner's own flow
        # (rehearsal, reflection) is answered by the worker.
        present = {"ref": case_ref}
    return console.run(flow_id, respondent=respondent, case_id=case_id, practice=practice or case_ref is None,
                       present=present)


