"""Nothing unread: the quiet safeguarding tier, unread answers, and missed disclosures.

A word list will never be perfect, so no answer depends on it alone to reach a person
(issue 12):

- **Tiers.** The detector gives each concern a ``tier``: ``alert`` (grave or precise: the
  person gets help at once and the lead and practitioner are alerted, see
  :mod:`bot.escalation`) or ``review`` (broad signals: the person is *not* interrupted; the
  line is marked in the transcript and a review item goes to the top of the case
  practitioner's queue with the reason). A concern without ``.tier`` counts as ``alert``.
- **Unread answers.** Every free-text answer in a case is unread until someone with access
  opens its transcript or the case view (the person who wrote it does not count). Answers
  that nobody but the person may read until they consent (``without_consent: nobody``) are
  not counted until consent is given, except flagged ones.
- **Reminders.** An unread answer older than ``read_within_hours`` (default 48), or an
  unacknowledged review item older than ``review_within_hours`` (default 24), reminds the
  practitioner; the same time later, still untouched, it is sent to their supervisor (the
  safeguarding leads when nobody supervises them, or there is no case).
- **Missed disclosures.** ``/missed ID#step words`` records what the detector missed, for
  whoever maintains the lexicon, and the audit log keeps it.

The clock is injectable (``clock=``, or ``now=`` on each call), so tests move time instead
of waiting. :meth:`Reading.plan` writes what is due as rows of the one schedule table
(:mod:`bot.schedule`), linked to their items in the same transaction; the schedule sends
them with its exactly-once rules (claimed, marked sent only once Telegram confirmed, put
back after a crash, deferred in the recipient's quiet hours, dropped if everything in them
was read or acknowledged meanwhile). So a restart loses nothing and sends nothing twice.
The supervisor's clock starts when the practitioner's reminder fell due, not when it was
sent: a practitioner's quiet hours or days off delay their own reminder, not the
supervisor's. A reminder that can never reach its recipient (they blocked the bot, or are not on
Telegram at all: a case held in the terminal) is marked undeliverable and the next stage
comes at once (the leads, when it was the supervisor's), unless someone else at the same
stage was, or may still be, reached (two supervisors: one blocked the bot, the other was
told). Nobody who cannot hold the case is reminded: a holder whose practitioner
role was revoked, or who may no longer see the item, is skipped (their supervisor, or the
leads, are told instead, and they cannot /ack it); a reminder written for someone who is no
longer the right person (the case was reassigned) is withdrawn and written again for the
right one before it goes. Practice conversations (trials, not cases) remind nobody, as
their alerts alert nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from bot.messages import msg
from bot.store import Store, iso

TIERS = ("alert", "review")
STAGES = ("practitioner", "supervisor")  # a schedule row's seq: 1 the practitioner, 2 the supervisor


def tier_of(concern) -> str:
    """``alert`` or ``review``; anything else (or no ``.tier`` at all) is ``alert``."""
    tier = getattr(concern, "tier", "alert")
    return tier if tier in TIERS else "alert"


def split_tiers(concerns: Iterable) -> tuple[list, list]:
    """(alert-tier concerns, review-tier concerns)."""
    alert, review = [], []
    for c in concerns:
        (alert if tier_of(c) == "alert" else review).append(c)
    return alert, review


def reason(concerns: list) -> tuple[str, str]:
    """(concern ids, the phrases that matched) for a review item."""
    ids = ",".join(dict.fromkeys(c.concern for c in concerns))
    matched = "; ".join(dict.fromkeys(str(getattr(c, "matched", "") or "") for c in concerns if getattr(c, "matched", "")))
    return ids, matched


class UnknownStep(ValueError):
    """``/missed ID#step``: the conversation has no such step (most likely words typed after
    the ``#`` with no space). ``steps``: the ones it has, to choose from."""

    def __init__(self, steps: list[str]):
        super().__init__("no such step in this conversation")
        self.steps = steps


@dataclass
class Reminder:
    recipient: str  # a person key, e.g. 'tg:12345'
    text: str
    kind: str  # 'unread' | 'review'
    stage: str  # 'practitioner' | 'supervisor'
    ids: list[int] = field(default_factory=list)  # transcript ids (unread) or review item ids


class Reading:
    LIST_AT_MOST = 20  # review item numbers named in one reminder
    def __init__(self, store: Store, access=None, *, leads: Iterable[int | str] = (), read_within_hours: float = 48.0,
                 review_within_hours: float = 24.0, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.access = access  # for consent (None: every answer counts)
        self.leads = [k if isinstance(k, str) else f"tg:{k}" for k in leads]
        self.read_within = timedelta(hours=read_within_hours)
        self.review_within = timedelta(hours=review_within_hours)
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # -- unread answers -----------------------------------------------------------------
    def _counted(self, rows: list[dict], consent: dict[int, bool] | None = None) -> list[dict]:
        """Drop answers nobody may read until the person consents (flagged ones stay);
        ``consent``: what was found per conversation (kept for the rest of a pass)."""
        if self.access is None:
            return rows
        consent = {} if consent is None else consent
        out = []
        for r in rows:
            cid = r["conversation_id"]
            if cid not in consent:
                consent[cid] = self.counts_unread(cid)
            if consent[cid] or r["flagged"]:
                out.append(r)
        return out

    def counts_unread(self, conversation_id: int) -> bool:
        """Whether every unread answer of this conversation counts (consent given, or someone
        may read it without); otherwise only its flagged ones do."""
        if self.access is None:
            return True
        given, fallback = self.access.consented(conversation_id)
        return given or fallback != "nobody"

    def unread(self, older_than_hours: float | None = None, now: datetime | None = None) -> list[dict]:
        """Unread free-text answers, oldest first (``older_than_hours``: only those older)."""
        before = None
        if older_than_hours is not None:
            before = iso((now or self.clock()) - timedelta(hours=older_than_hours))
        return self._counted(self.store.unread_answers(before))

    # -- review items ---------------------------------------------------------------------
    def acknowledge(self, item_id: int, by_key: str) -> str:
        """'ok', 'already' or 'unknown' (also for someone who may not see it: nothing revealed)."""
        with self.store.transaction():
            item = self.store.review_item(item_id)
            if item is None or not self._may_handle(item, by_key):
                self.store.audit(by_key, "review_item.ack.refused", f"review:{item_id}")
                return "unknown"
            if item["acknowledged_at"]:
                return "already"
            self.store.acknowledge_review_item(item_id, by_key)
            self.store.audit(by_key, "review_item.ack", f"review:{item_id}")
            return "ok"

    def _may_handle(self, item: dict, key: str) -> bool:
        if key in self.leads:
            return True
        row = self.store.person_by_key(key)
        if row is None:
            return False
        roles = self.store.roles_of(row["id"])
        if "admin" in roles:
            return True
        holder = item.get("practitioner_id")
        if holder is None:
            return False
        if holder == row["id"]:  # while they may act on it (_holder): a revoked role cuts them off at once
            return self._holder(holder, item.get("conversation_id")) == key
        return "supervisor" in roles and self.store.supervises(row["id"], holder) \
            and self._sees(key, item.get("conversation_id"))

    def _sees(self, key: str, conversation_id: int | None) -> bool:
        return self.access is None or self.access.sees_review_item(key, conversation_id)

    def _holder(self, practitioner_id: int | None, conversation_id: int | None, cache: dict | None = None) -> str | None:
        """The key of the case's practitioner while they may act on it: they hold the
        practitioner role and may still see the item (the same rule as alerts,
        Store.alert_practitioner_key); None when nobody does (no case, or they left)."""
        if practitioner_id is None:
            return None
        cache = {} if cache is None else cache
        if (practitioner_id, conversation_id) not in cache:
            person = self.store.get_person(practitioner_id)
            ok = person is not None and "practitioner" in self.store.roles_of(practitioner_id) \
                and self._sees(person["key"], conversation_id)
            cache[(practitioner_id, conversation_id)] = person["key"] if ok else None
        return cache[(practitioner_id, conversation_id)]

    def _recipients(self, stage: str, item: dict, cache: dict | None = None) -> list[str]:
        """Who is told about ``item`` at this stage: the holder, then their supervisors (or
        the leads); with no holder who may act on it, their supervisors (or the leads), then
        the leads."""
        holder = self._holder(item.get("practitioner_id"), item.get("conversation_id"), cache)
        if stage == "practitioner":
            return [holder] if holder else self._escalation_targets(item.get("practitioner_id"),
                                                                    item.get("conversation_id"), cache)
        if holder is None:
            return list(self.leads)
        return self._escalation_targets(item.get("practitioner_id"), item.get("conversation_id"), cache)

    # -- reminders ------------------------------------------------------------------------
    def _escalation_targets(self, practitioner_id: int | None, conversation_id: int | None = None,
                            cache: dict | None = None) -> list[str]:
        """The practitioner's supervisors who may open what the reminder names; the leads when
        there are none (no supervisor, no case, or a conversation the person has not agreed to
        share with them, whose items /review and /case do not show them)."""
        cache = {} if cache is None else cache
        if ("targets", practitioner_id, conversation_id) not in cache:
            sups = self.store.supervisor_keys(practitioner_id) if practitioner_id is not None else []
            if self.access is not None and conversation_id is not None:
                sups = [k for k in sups if self.access.sees_review_item(k, conversation_id)]
            cache[("targets", practitioner_id, conversation_id)] = sups or list(self.leads)
        return list(cache[("targets", practitioner_id, conversation_id)])

    def _next_targets(self, item: dict, cache: dict) -> list[str]:
        """The supervisor stage's recipients, or, when that reminder could not be delivered,
        the leads (once: nothing after a lead who cannot be reached)."""
        if item.get("escalate_state") == "undeliverable":
            if item.get("escalate_key") in self.leads:
                return []
            return [k for k in self.leads if k != item.get("escalate_key")]
        return self._recipients("supervisor", item, cache)

    def _handover(self, item: dict, cache: dict) -> bool:
        """The case changed hands after its practitioner's reminder went out (or could not):
        the new holder is reminded too, before the supervisor is told, on the same clock."""
        if item["escalated_at"] is not None or item.get("remind_state") not in ("sent", "undeliverable"):
            return False
        if item.get("remind_person_id") is None or item["remind_person_id"] == item.get("practitioner_id"):
            return False
        return self._holder(item.get("practitioner_id"), item.get("conversation_id"), cache) is not None

    def _variant(self, stage: str, item: dict, cache: dict) -> str:
        """Which wording: the usual one for the stage, or for a case nobody may act on now
        ('no_holder'), or after the practitioner could not be reached ('unreachable')."""
        if stage == "practitioner":
            return stage if item.get("practitioner_id") is None or \
                self._holder(item["practitioner_id"], item.get("conversation_id"), cache) else "no_holder"
        return "unreachable" if item.get("remind_state") == "undeliverable" else stage

    def due(self, now: datetime | None = None, cache: dict | None = None) -> list[Reminder]:
        """Reminders due now, one per recipient and kind: practitioners first, then supervisors.
        When each stage falls due is the store's one rule (Store.reading_due); who is told is
        decided here. ``cache``: the access answers found so far in this pass (Reading.plan)."""
        now = now or self.clock()
        grouped: dict[tuple[str, str, str, str], list[dict]] = {}
        cache = {} if cache is None else cache
        consent = cache.setdefault("consent", {})

        def add(keys: list[str], kind: str, stage: str, row: dict) -> None:
            variant = self._variant(stage, row, cache)
            for key in keys:
                grouped.setdefault((key, kind, stage, variant), []).append(row)

        at = iso(now)
        for kind, within in (("unread", self.read_within), ("review", self.review_within)):
            before = iso(now - within)
            remind, escalate = self.store.reading_due(kind, remind_before=before, escalate_before=before, now=at)
            if kind == "unread":  # answers nobody may read until the person consents do not count
                remind, escalate = self._counted(remind, consent), self._counted(escalate, consent)
            item_id = "transcript_id" if kind == "unread" else "id"
            handed = set()
            for item in remind:
                if item["practice"]:
                    continue  # a trial, not a case: nobody is reminded (its alerts go to nobody either)
                if not (item["reminded_at"] is None and item["remind_state"] in (None, "cancelled")):
                    if not self._handover(item, cache):
                        continue
                    handed.add(item[item_id])  # the new holder first; the supervisor at the next pass
                add(self._recipients("practitioner", item, cache), kind, "practitioner", item)
            for item in escalate:
                if not item["practice"] and item[item_id] not in handed:
                    add(self._next_targets(item, cache), kind, "supervisor", item)

        out = []
        for (key, kind, stage, variant), rows in sorted(grouped.items(),
                                                        key=lambda kv: (kv[0][2] != "practitioner", kv[0])):
            out.append(Reminder(key, self._text(kind, variant, rows), kind, stage,
                                [r["transcript_id"] if kind == "unread" else r["id"] for r in rows]))
        return out

    def recheck(self, cache: dict | None = None) -> list[int]:
        """Withdraw the reminders waiting to go (e.g. held by quiet hours) whose recipient is
        no longer the right one for every item in them: the case was reassigned, the holder's
        role revoked, a supervisor moved. Their items are then planned again, for the right
        person and from the first stage still owed. Returns the rows withdrawn."""
        cache = {} if cache is None else cache
        wrong = set()
        for row in self.store.pending_reading_rows():
            stage = STAGES[row["seq"] - 1]
            right = self._recipients(stage, row, cache)
            if stage == "supervisor":
                right = right + self.leads  # the leads may always be told (after a supervisor who cannot be reached)
            if row["person_key"] not in right:
                wrong.add(row["id"])
        if wrong:
            self.store.cancel_scheduled(ids=sorted(wrong), by="bot")
            for row_id in sorted(wrong):
                self.store.audit("bot", "reminder.withdrawn", f"schedule:{row_id}", "recipient no longer right")
        return sorted(wrong)

    def _text(self, kind: str, stage: str, rows: list[dict]) -> str:
        hours = (self.read_within if kind == "unread" else self.review_within).total_seconds() / 3600
        where = ", ".join(sorted({f"#{r['conversation_id']}" + (f" ({r['case_ref']})" if r.get("case_ref") else "")
                                  for r in rows if r.get("conversation_id")})) or msg("reading.no_case")
        names = set()
        for r in rows:
            if r.get("practitioner_id"):
                person = self.store.get_person(r["practitioner_id"]) or {}
                names.add(person.get("display_name") or person.get("key") or "")
        names = ", ".join(sorted(n for n in names if n))
        ids = ", ".join(f"R{r['id']}" for r in rows[:self.LIST_AT_MOST]) if kind == "review" else ""
        if kind == "review" and len(rows) > self.LIST_AT_MOST:
            ids += ", …"
        if len(where) > 400:  # many conversations (e.g. a flood from people without a case): keep it short
            where = where[:400].rsplit(", ", 1)[0] + ", …"
        return msg(f"reading.{kind}_{stage}", n=len(rows), hours=f"{hours:g}", where=where, ids=ids,
                   practitioner=names or msg("reading.no_practitioner"))

    def plan(self, now: datetime | None = None) -> list[int]:
        """Write each reminder now due as a row of the schedule table (due at once; the
        schedule defers it to the recipient's next allowed time), linked to its items in the
        same transaction so the next pass does not write it again. Returns the row ids."""
        now = now or self.clock()
        rows = []
        with self.store.transaction():
            from bot.schedule import Schedule  # (it imports this module's STAGES)

            cache: dict = {}  # each access question asked once in the pass
            self.recheck(cache)
            unreachable = []
            for reminder in self.due(now, cache):
                stage = STAGES.index(reminder.stage) + 1
                row = self.store.add_scheduled(
                    person_id=self.store.person(reminder.recipient), kind=reminder.kind, text=reminder.text,
                    due_at=iso(now), seq=stage,
                    why=msg("schedule.why_reading", kind=reminder.kind, stage=reminder.stage, n=len(reminder.ids)))
                # the supervisor's turn counts from now, when the practitioner's reminder fell due
                window = self.read_within if reminder.kind == "unread" else self.review_within
                self.store.link_reminder(reminder.kind, stage, reminder.ids, row,
                                         escalate_after=iso(now + window) if stage == 1 else None)
                if Schedule.reachable(reminder.recipient):
                    rows.append(row)
                else:  # e.g. a case held in the terminal: `serve` can never send it
                    unreachable.append((reminder, stage, row))
            # undeliverable at once, as for someone who blocked the bot: the next stage is told
            # at the next pass (once every row at this stage is written: another recipient at
            # the same stage who can be reached keeps the next stage on its usual clock)
            for reminder, stage, row in unreachable:
                n = self.store.reminder_undeliverable(reminder.kind, stage, row, iso(now))
                self.store.audit("bot", f"reminder.{reminder.kind}.{reminder.stage}.undeliverable", reminder.recipient,
                                 f"schedule:{row} {n} item(s)")
        return rows

    # -- missed disclosures -------------------------------------------------------------
    def record_missed(self, by_key: str, conversation_id: int, step_id: str | None, words: str) -> int:
        """A practitioner or lead records a disclosure the detector missed (verbatim).
        Refused (:class:`bot.access.Refused`) for anyone else, or a conversation they may not read."""
        from bot.access import Refused

        words = words.strip()
        if not words:
            raise ValueError("say what was missed, in the person's words")
        with self.store.transaction():
            conv = self.store.conversation(conversation_id)
            lead = by_key in self.leads
            reader = self.access is not None and self.access.has(by_key, "practitioner", "supervisor") \
                and self.access.can_read(by_key, conversation_id)
            if conv is None or not (lead or reader):
                self.store.audit(by_key, "safeguarding.missed.refused", f"conversation:{conversation_id}")
                refused = True
            else:
                refused = False
                if step_id is not None:
                    steps = {s for s in self.store.line_steps(conversation_id) if s is not None}
                    if step_id not in steps:  # not recorded, nor audited: it may be the person's words
                        raise UnknownStep(sorted(steps))
                missed_id = self.store.add_missed(conversation_id=conversation_id, step_id=step_id, words=words,
                                                  reported_by=by_key)
                # the audit names the record, never the words: it is kept longer than anything,
                # is not encrypted and is not erased; the words are in missed_disclosures
                self.store.audit(by_key, "safeguarding.missed", f"conversation:{conversation_id}",
                                 f"missed:{missed_id} step {step_id or '-'}")
        if refused:
            raise Refused("refused")
        return missed_id
