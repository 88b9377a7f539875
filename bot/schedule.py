"""The schedule: the one table of due messages (issue 15).

Every reminder the bot promises lives in one store table (who, what, when, why, state), so
a restart changes nothing (python-telegram-bot's JobQueue forgets everything):

- **Written with its cause.** :meth:`Schedule.after_step` runs inside the transaction that
  commits an answer, so the answer and the reminder it schedules are saved together, or
  neither is.
- **Sent once.** A frontend asks :meth:`Schedule.due`, :meth:`claim` s each item (pending ->
  sending, so two passes never send the same one), sends it, and calls :meth:`sent` only
  after Telegram confirmed (or :meth:`failed`: it goes back to pending). A crash between
  claim and confirmation leaves it 'sending'; :meth:`recover` at start puts it back, the
  same at-least-once rule as replies committed but not recorded as sent.
- **Nudges.** An unfinished conversation gets a gentle nudge ``nudge_after`` (default two
  days) after its last step, at most ``nudge_times`` (default 2) per conversation, never
  after it finishes or is cancelled, never once the person has opted out.
- **People's time.** Nothing is handed out during the recipient's quiet hours in local time
  (the deployment's, default 20:00-08:00 Europe/London, or their own choice) nor on a day
  they said to leave alone ("no reminders on Sundays"); the row is deferred to the next
  allowed time, so /reminders shows when it will really come. A person may turn each kind
  off (``/reminders``) or all (``/stop``).
- **No surprises.** Texts come from bot/messages.yaml and carry no answer, question or
  flow title: a phone may be shared with the person someone is worried about.

- **Staff reminders.** The unread-answer and review-item reminders of :mod:`bot.reading`
  are rows here too (kinds ``unread`` and ``review``; ``seq`` 1 to the practitioner, 2 to
  the supervisor), with the same rules; they name the case reference, never an answer. A
  row whose items were all read or acknowledged before it went out is dropped. One that can
  never be delivered (the recipient blocked the bot) ends 'undeliverable' (:meth:`undeliverable`)
  and the next stage is told at once. (Any other row that can never be delivered ends
  'undeliverable' too, and is not tried again.) They are
  part of keeping people safe, so they cannot be turned off (/stop turns off the
  person's own reminders); the recipient's quiet hours and free days still apply.

The clock is injectable (``clock=``), so tests move time instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from bot import i18n
from bot.messages import msg
from bot.reading import STAGES
from bot.store import Store, from_iso, iso

KINDS = ("nudge", "date")  # a person's own reminders: each can be turned off
STAFF_KINDS = ("unread", "review")  # bot/reading.py: a practitioner's or supervisor's, never turned off
ALL = "*"
# A notice to a member of staff (a comment on a transcript) that could not go at once because a
# worker-present session runs on their device: kept here, not in memory, so a restart loses
# nothing, and sent (once) when the session ends. Not a reminder: no quiet hours, no opting out.
NOTICE = "notice"
# Whom `serve` can send to: a row for anyone else (a person in the terminal, someone answering
# on their worker's device) could never go out, so none is written, and one found is dropped.
REACHABLE = ("tg:",)
# The quiet hours a person may choose in /reminders (local time); None is the deployment's.
QUIET_CHOICES: tuple[tuple[str, str] | None, ...] = (None, ("18:00", "09:00"), ("21:00", "08:00"), ("22:00", "07:00"))
DAYS = range(7)  # weekdays, 0 Monday .. 6 Sunday (names in bot/messages.yaml schedule.days)


@dataclass(frozen=True)
class Times:
    """When a person may be sent something: quiet hours (local) and days left alone."""
    quiet_from: time
    quiet_until: time
    blocked: frozenset[int] = frozenset()
    choice: int = 0  # which of QUIET_CHOICES (0: the deployment's)


@dataclass
class Due:
    """One message to send now: to ``recipient`` (a person key, e.g. 'tg:12345')."""
    id: int
    recipient: str
    kind: str
    text: str
    conversation_id: int | None = None
    seq: int = 1


def _parse_hhmm(value: str) -> time:
    h, m = str(value).split(":")
    return time(int(h), int(m))


class Schedule:
    STALE_CLAIM = timedelta(minutes=10)
    REMIND_AT = time(9, 0)  # a date reminder goes at this local time, `before` ahead of the date

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None, nudge_after_hours: float = 48.0,
                 nudge_times: int = 2, quiet_from: str = "20:00", quiet_until: str = "08:00",
                 timezone_name: str = "Europe/London"):
        self.store = store
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.nudge_after = timedelta(hours=nudge_after_hours)
        self.nudge_times = nudge_times
        self.quiet_from = _parse_hhmm(quiet_from)
        self.quiet_until = _parse_hhmm(quiet_until)
        self.tz = ZoneInfo(timezone_name)

    # -- writing (inside the caller's transaction) ------------------------------------
    def after_step(self, conv, status: str, records=(), flow=None) -> None:
        """The conversation moved (started, answered, finished, cancelled): its pending nudge
        is replaced by one ``nudge_after`` from now while it is unfinished, or dropped; a date
        answered at a question that declares ``remind:`` schedules its reminder(s)."""
        if conv is None:
            return
        if flow is not None:
            for rec in records:
                step = flow.by_id.get(rec.step_id)
                if step is not None and step.type == "date" and step.remind is not None:
                    self._date(conv, step, rec.value)
        if status == "cancelled":  # the person stopped: nothing more from this conversation
            self.store.cancel_scheduled(conversation_id=conv.id, kind="date", by="bot")
        if status != "in_progress" or not self._nudgeable(conv):
            self.store.cancel_scheduled(conversation_id=conv.id, kind="nudge", by="bot")
            return
        if self.store.move_scheduled(conv.id, "nudge", iso(self.clock() + self.nudge_after)):
            return  # the waiting nudge now counts from this step (one row per nudge, not per answer)
        sent = len(self.store.scheduled_for_conversation(conv.id, "nudge", ("sent", "sending")))
        if sent >= self.nudge_times or self._off(conv.person_id, "nudge", conv.id):
            return
        self._add_nudge(conv.id, conv.person_id, conv.case_id, sent + 1, self.clock())

    def _add_nudge(self, conv_id: int, person_id: int, case_id: int | None, n: int, after: datetime) -> None:
        self.store.add_scheduled(person_id=person_id, kind="nudge", text=msg("schedule.nudge"),
                                 due_at=iso(after + self.nudge_after),
                                 why=msg("schedule.why_nudge", conversation=conv_id, n=n, of=self.nudge_times),
                                 conversation_id=conv_id, case_id=case_id, seq=n)

    def _date(self, conv, step, value) -> None:
        """A reminder ``before`` the date (at 09:00 local time that day), to the person, the
        case's practitioner or both. A changed answer replaces the earlier reminder; a time
        already gone schedules nothing."""
        from datetime import date as _date

        self.store.cancel_scheduled(conversation_id=conv.id, kind="date", step_id=step.id, by="bot")
        if not isinstance(value, str):
            return  # skipped
        try:
            day = _date.fromisoformat(value)
        except ValueError:
            return
        at = datetime.combine(day, self.REMIND_AT, tzinfo=self.tz) - timedelta(hours=step.remind.before_hours)
        if at <= self.clock():
            if day <= self.today():
                return  # the day itself has come: a reminder of it would be too late
            at = self.clock()  # chosen after the usual time (e.g. "tomorrow", in the afternoon): now
        why = msg("schedule.why_date", conversation=conv.id, step=step.id)
        targets = []
        if step.remind.who in ("person", "both") and self._nudgeable(conv) and step.remind.text:
            targets.append((conv.person_id, step.remind.text))
        if step.remind.who in ("practitioner", "both") and conv.case_id is not None:
            case = self.store.case_by_id(conv.case_id)
            holder = self.store.get_person(case["practitioner_id"]) if case and case.get("practitioner_id") else None
            if holder is not None and self.reachable(holder["key"]):
                targets.append((case["practitioner_id"], msg("schedule.date_practitioner", ref=case["ref"])))
        for person_id, text in targets:
            if not self._off(person_id, "date"):
                self.store.add_scheduled(person_id=person_id, kind="date", text=text, due_at=iso(at), why=why,
                                         conversation_id=conv.id, case_id=conv.case_id, step_id=step.id)

    @staticmethod
    def reachable(person_key: str | None) -> bool:
        return bool(person_key) and person_key.startswith(REACHABLE)

    @staticmethod
    def _nudgeable(conv) -> bool:
        """Someone's own conversation in a chat: not a worker-present session on a worker's
        device, not practice, not one with no chat to send to (the console)."""
        return (conv.chat_id is not None and getattr(conv, "present_id", None) is None
                and not getattr(conv, "practice", False))

    def _off(self, person_id: int, kind: str, conversation_id: int | None = None) -> bool:
        if kind not in KINDS:
            return False  # staff reminders (unread answers, review items) are not the person's to turn off
        off = self.store.opted_out(person_id)
        return ALL in off or kind in off or (conversation_id is not None and f"{kind}:{conversation_id}" in off)

    # -- sending -------------------------------------------------------------------------
    def today(self):
        """The local date on this schedule's clock (for date answers such as "next Tuesday")."""
        return self.clock().astimezone(self.tz).date()

    def quiet(self, now: datetime | None = None, times: Times | None = None) -> bool:
        """Whether ``now`` falls in quiet hours (the deployment's, or ``times``'), in local time."""
        local = (now or self.clock()).astimezone(self.tz).time()
        start, until = (times.quiet_from, times.quiet_until) if times else (self.quiet_from, self.quiet_until)
        if start <= until:
            return start <= local < until
        return local >= start or local < until

    def times(self, person_id: int) -> Times:
        """A person's quiet hours (their own choice, or the deployment's) and days left alone."""
        row = self.store.reminder_times(person_id)
        blocked = frozenset(d for d in row["blocked_days"] if d in DAYS)
        if row["quiet_from"] and row["quiet_until"]:
            own = (row["quiet_from"], row["quiet_until"])
            choice = QUIET_CHOICES.index(own) if own in QUIET_CHOICES else -1
            return Times(_parse_hhmm(own[0]), _parse_hhmm(own[1]), blocked, choice)
        return Times(self.quiet_from, self.quiet_until, blocked, 0)

    def allowed(self, now: datetime, times: Times) -> bool:
        """Not in their quiet hours, and not on a day they asked to be left alone (local time)."""
        return now.astimezone(self.tz).weekday() not in times.blocked and not self.quiet(now, times)

    def next_allowed(self, now: datetime, times: Times) -> datetime:
        """The first moment from ``now`` that :meth:`allowed` (``now`` itself if it is)."""
        local = now.astimezone(self.tz)
        for _ in range(2 * len(DAYS) + 2):  # at most a quiet spell and a blocked day per day of the week
            if local.weekday() in times.blocked:
                nxt = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=self.tz)
            elif self.quiet(local, times):
                day = local.date()
                if times.quiet_from > times.quiet_until and local.time() >= times.quiet_from:
                    day += timedelta(days=1)  # quiet past midnight: it ends tomorrow morning
                nxt = datetime.combine(day, times.quiet_until, tzinfo=self.tz)
            else:
                break
            local = nxt.astimezone(timezone.utc).astimezone(self.tz)  # normalised across a clock change
        return local.astimezone(timezone.utc)

    def due(self, now: datetime | None = None) -> list[Due]:
        """What to send now. Items no longer wanted (conversation over, person opted out) are
        cancelled here rather than sent; items falling in their recipient's quiet hours or on
        a day they keep free are deferred to the next time allowed."""
        now = now or self.clock()
        out = []
        times: dict[int, Times] = {}
        with self.store.transaction():
            for row in self.store.due_scheduled(iso(now)):
                over = row["kind"] == "nudge" and row["conversation_status"] != "in_progress"
                if row["kind"] in STAFF_KINDS:  # all read or acknowledged meanwhile: nothing to remind of
                    over = not self.store.reminder_items_open(row["kind"], row["seq"], row["id"])
                over = over or not self.reachable(row["person_key"])
                if over or self._off(row["person_id"], row["kind"], row["conversation_id"]):
                    self.store.cancel_scheduled(ids=[row["id"]], by="bot")
                    continue
                their = times.setdefault(row["person_id"], self.times(row["person_id"]))
                if row["kind"] != NOTICE and not self.allowed(now, their):
                    self.store.defer_scheduled(row["id"], iso(self.next_allowed(now, their)))
                    continue
                out.append(Due(row["id"], row["person_key"], row["kind"], row["text"], row["conversation_id"],
                               row["seq"]))
        return out

    def claim(self, item: Due, now: datetime | None = None) -> bool:
        """Take the item for sending; False if another pass took it, or it was cancelled."""
        with self.store.transaction():
            return self.store.claim_scheduled(item.id, iso(now or self.clock()))

    def sent(self, item: Due, now: datetime | None = None) -> None:
        """Telegram confirmed it: marked sent, and the next nudge (if any is left) scheduled."""
        now = now or self.clock()
        with self.store.transaction():
            if not self.store.finish_scheduled(item.id, sent_at=iso(now)):
                return
            if item.kind in STAFF_KINDS:  # (the supervisor's clock started when this fell due)
                n = self.store.reminder_sent(item.kind, item.seq, item.id, iso(now))
                self.store.audit("bot", f"reminder.{item.kind}.{STAGES[item.seq - 1]}", item.recipient,
                                 f"schedule:{item.id} {n} item(s)")
                return
            self.store.audit("bot", f"reminder.{item.kind}", item.recipient, f"schedule:{item.id}")
            if item.kind == "nudge" and item.conversation_id is not None and item.seq < self.nudge_times:
                conv = self.store.conversation(item.conversation_id)
                if conv is not None and conv.status == "in_progress" and not self._off(conv.person_id, "nudge", conv.id):
                    self._add_nudge(conv.id, conv.person_id, conv.case_id, item.seq + 1, now)

    def failed(self, item: Due) -> None:
        """Not delivered: back to pending, tried again at the next pass."""
        with self.store.transaction():
            self.store.finish_scheduled(item.id, sent_at=None)

    def undeliverable(self, item: Due, now: datetime | None = None) -> None:
        """It can never be delivered (the recipient blocked the bot, or has no chat with it):
        'undeliverable', audited, never tried again (trying at every pass of ``serve`` would
        be a failed call and an error line each time, for ever). A practitioner's or
        supervisor's reminder is then delivered to nobody, and the next stage (the
        supervisor, then the leads) is told at once instead of waiting for ever; a person's
        own reminder (a nudge, a date) or a kept-back notice has no next stage, and no
        further nudge follows it."""
        if item.kind not in STAFF_KINDS:
            with self.store.transaction():
                if self.store.scheduled_undeliverable(item.id):
                    self.store.audit("bot", f"reminder.{item.kind}.undeliverable", item.recipient, f"schedule:{item.id}")
            return
        with self.store.transaction():
            n = self.store.reminder_undeliverable(item.kind, item.seq, item.id, iso(now or self.clock()))
            self.store.audit("bot", f"reminder.{item.kind}.{STAGES[item.seq - 1]}.undeliverable", item.recipient,
                             f"schedule:{item.id} {n} item(s)")

    def recover(self, now: datetime | None = None) -> int:
        """At start: items a crash left half-sent go back to pending."""
        with self.store.transaction():
            return self.store.unclaim_stale_scheduled(iso((now or self.clock()) - self.STALE_CLAIM))

    # -- people's choices ----------------------------------------------------------------
    def not_now(self, person_id: int, conversation_id: int) -> None:
        """"Not now" under a nudge: no more nudges for that conversation."""
        with self.store.transaction():
            conv = self.store.conversation(conversation_id)
            if conv is None or person_id != conv.person_id:
                return
            self.store.cancel_scheduled(conversation_id=conversation_id, kind="nudge", by=f"person:{person_id}")
            self.store.opt_out(person_id, f"nudge:{conversation_id}")
            self.store.audit(f"person:{person_id}", "reminder.nudge.not_now", f"conversation:{conversation_id}")

    def turn(self, person_id: int, kind: str, off: bool) -> None:
        """Turn one kind (or ``ALL``) off or on for a person; off cancels what is waiting."""
        if kind != ALL and kind not in KINDS:
            raise ValueError(kind)
        with self.store.transaction():
            if not off and kind != ALL and ALL in self.store.opted_out(person_id):
                self.store.opt_out(person_id, ALL, False)  # after /stop: only this kind back on
                for other in KINDS:
                    self.store.opt_out(person_id, other, other != kind)
            self.store.opt_out(person_id, kind, off)
            if off:
                for each in (KINDS if kind == ALL else (kind,)):  # never their staff reminders
                    self.store.cancel_scheduled(person_id=person_id, kind=each, by=f"person:{person_id}")
            self.store.audit(f"person:{person_id}", f"reminder.{'off' if off else 'on'}", kind)

    def stop(self, person_id: int) -> None:
        self.turn(person_id, ALL, True)

    def set_quiet(self, person_id: int, choice: int) -> Times:
        """A person chooses their quiet hours: one of ``QUIET_CHOICES`` (0: the deployment's)."""
        if not 0 <= choice < len(QUIET_CHOICES):
            raise ValueError(choice)
        with self.store.transaction():
            self.store.set_reminder_times(person_id, quiet=QUIET_CHOICES[choice])
            self.store.audit(f"person:{person_id}", "reminder.quiet", "-".join(QUIET_CHOICES[choice] or ("default",)))
            return self.times(person_id)

    def set_day(self, person_id: int, day: int, free: bool) -> bool:
        """``free``: no reminders on that weekday (0 Monday .. 6 Sunday); else reminders again.
        False (nothing changed) if that would leave no day at all: /stop is for that."""
        if day not in DAYS:
            raise ValueError(day)
        with self.store.transaction():
            blocked = set(self.times(person_id).blocked)
            blocked = blocked | {day} if free else blocked - {day}
            if len(blocked) >= len(DAYS):
                return False
            self.store.set_reminder_times(person_id, blocked_days=blocked)
            self.store.audit(f"person:{person_id}", "reminder.days", ",".join(map(str, sorted(blocked))) or "none")
            return True

    def of_person(self, person_id: int) -> tuple[list[dict], set[str]]:
        """(what is waiting for them, the kinds they turned off: ``KINDS`` or ``ALL``)."""
        off = {k for k in self.store.opted_out(person_id) if k in KINDS or k == ALL}
        return self.store.scheduled_list(person_id=person_id), off

    def of_conversation(self, conversation_id: int) -> list[dict]:
        """What is waiting because of one conversation, each row with the recipient's key."""
        return self.store.scheduled_list(conversation_id=conversation_id, states=("pending", "sending"))

    def unsendable(self, conv, flow) -> list[str]:
        """The reminders the person answering would have had in their own Telegram chat and
        has not (e.g. the conversation runs in the terminal): 'nudge' while it is unfinished;
        for a date answered at a question that declares ``remind:``, 'date' when nobody is
        reminded of it, 'date_you' when only someone else (the case's worker) is."""
        rows = self.of_conversation(conv.id)
        theirs = {r["kind"] for r in rows if r["person_id"] == conv.person_id}
        out = []
        if conv.status == "in_progress" and "nudge" not in theirs:
            out.append("nudge")
        if "date" not in theirs and conv.status != "cancelled":
            answered = {a["step_id"]: a["value"] for a in self.store.answers(conv.id)}
            if any(s.type == "date" and s.remind is not None and isinstance(answered.get(s.id), str)
                   for s in flow.steps):
                out.append("date_you" if any(r["kind"] == "date" for r in rows) else "date")
        return out

    # -- practitioners -----------------------------------------------------------------------
    def of_case(self, ref: str) -> list[dict]:
        """What is waiting in a case (by reference), each row with the recipient's key."""
        ids = [c["id"] for c in self.store.cases_by_ref(ref)]
        return self.store.scheduled_list(case_ids=ids, states=("pending", "sending"), limit=200) if ids else []

    def cancel_in_case(self, ref: str, item_id: int, by: str) -> bool:
        """Cancel one waiting reminder of the case; False if there is no such one."""
        with self.store.transaction():
            if item_id not in {r["id"] for r in self.of_case(ref) if r["state"] == "pending"}:
                return False
            self.store.cancel_scheduled(ids=[item_id], by=by)
            self.store.audit(by, "reminder.cancel", f"schedule:{item_id}", f"case {ref}")
            return True

    def local(self, at: str) -> str:
        """A stored time as people read it, in the language in force: 'Tue 3 Mar, 09:00',
        'Dydd Mawrth 3 Mawrth, 09:00', 'wtorek 3 marca, 09:00' (Babel's CLDR names; other
        languages spell the day and month out, as their short forms can read alike)."""
        t = from_iso(at).astimezone(self.tz)
        lang = i18n.current()
        if lang != i18n.DEFAULT:
            from babel.dates import format_datetime

            try:
                return format_datetime(t, "EEEE d MMMM, HH:mm", tzinfo=self.tz, locale=lang.replace("-", "_"))
            except (ValueError, LookupError):  # a tag Babel does not know: English
                pass
        return f"{t:%a} {t.day} {t:%b}, {t:%H:%M}"


def hold_notice(store: Store, person_key: str, text: str, now: datetime | None = None, *,
                about_person: int | None, about_conversation: int | None = None) -> int:
    """Keep a notice for ``person_key`` in the schedule until it can be sent (see ``NOTICE``):
    the frontend sending the schedule leaves it due while their worker-present session runs.

    ``about_person`` (or the person who answered ``about_conversation``) is whom it is about: a
    comment may quote their words, an erasure notice names them. Erasing that person erases and
    cancels the notice (``schedule.text`` in PERSON_TEXT), so it is never sent afterwards. It
    must be given (None only for a notice about nobody), so a new caller cannot forget it."""
    with store.transaction():
        if about_person is None and about_conversation is not None:
            conv = store.conversation(about_conversation)
            about_person = conv.person_id if conv is not None else None
        return store.add_scheduled(person_id=store.person(person_key), kind=NOTICE, text=text,
                                   due_at=iso(now or datetime.now(timezone.utc)), why=msg("schedule.why_notice"),
                                   about_person_id=about_person)
