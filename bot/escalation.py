"""Safeguarding escalation: who is told about an alert, when, and again until someone acts.

The schedule lives in the store (``alerts.next_notify_at``), never in memory, so a restart
between a disclosure and its acknowledgement changes nothing: the next pass finds the
alert due and sends it again. Frontends call :meth:`Escalation.due` and send what it
returns; this module decides nothing about transport.

Flood-proofing (anyone can write to the bot, and Telegram delivers about one message a
second to one chat, so every extra message to a lead delays the next real alert):

- one open alert per person (the service adds later words to it);
- a first notice, or new words on an alert, is one message per alert; reminders go to
  each recipient as one digest, however many alerts are waiting;
- alerts from people with a role or a case go first;
- first notices for people without a role: the first always goes at once, and at most
  ``flood_individual`` more in ``flood_window``; beyond that they wait (at most
  ``flood_window``) and go together as one digest. None is ever dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bot.messages import msg
from bot.respondent import described
from bot.names import person_label
from bot.store import Store
from bot.store import iso as _iso


#: A worker-present session left untouched this long no longer holds back what is sent to
#: the worker's device (a session forgotten open must not keep their alerts from them).
PRESENT_IDLE_MINUTES = 120.0


#: After a session ends, the device may still be in the hands of the person who answered
#: (worker_present.handback_minutes; words typed there are taken as theirs meanwhile).
PRESENT_HANDBACK_MINUTES = 10.0


def holding(store: Store, idle_minutes: float = PRESENT_IDLE_MINUTES, now: datetime | None = None,
            handback_minutes: float = PRESENT_HANDBACK_MINUTES) -> set[str]:
    """The people nothing may be sent to now: each is running a worker-present session on
    their own device, which someone else (a child, a family member) is holding, or ended one
    less than ``handback_minutes`` ago and has started nothing of their own since (it may not be
    back in their hands yet; the store's one hand-back rule, which
    ConversationService.handing_back follows too). What is meant
    for them waits until then (alerts: :meth:`Escalation.due`; the schedule's reminders and
    notices stay due; the leads are alerted as ever)."""
    now = now or datetime.now(timezone.utc)
    keys = store.presenting_keys(_iso(now - timedelta(minutes=idle_minutes)))
    if handback_minutes > 0:
        keys |= store.handed_back_keys(_iso(now - timedelta(minutes=handback_minutes)))
    return keys


@dataclass
class Notice:
    alert_ids: list[int]
    recipients: list[str]  # person keys, e.g. 'tg:12345'
    text: str
    repeat: bool  # a reminder (not the first notice)
    digest: bool = False
    known: bool = field(default=True)
    # kept back from a worker while a session ran on their device, sent once it ended: not a
    # notice of the alert's schedule (sending it does not move the next reminder)
    held: bool = False

    @property
    def alert_id(self) -> int:
        return self.alert_ids[0]


class Escalation:
    def __init__(self, store: Store, safeguarding, *, leads: list[int], repeat_minutes: float = 15.0,
                 ack_command: str = "/ack", flood_individual: int = 2, flood_window_seconds: float = 60.0,
                 telegram_names: bool = False, present_idle_minutes: float = PRESENT_IDLE_MINUTES, digest_lines: int = 20,
                 present_handback_minutes: float = PRESENT_HANDBACK_MINUTES):
        self.store = store
        self.digest_lines = max(1, int(digest_lines))  # alerts listed in one digest; the rest are counted
        self.present_idle_minutes = present_idle_minutes
        self.present_handback_minutes = present_handback_minutes
        self._holding: set[str] = set()  # as of this pass: see holding()
        self._held: dict[str, set[int]] = {}  # person key -> alerts kept back from their device
        self.telegram_names = telegram_names
        self.safeguarding = safeguarding
        self.leads = [f"tg:{i}" for i in leads]
        self.repeat = timedelta(minutes=repeat_minutes)
        self.ack_command = ack_command
        self.flood_individual = flood_individual
        self.flood_window = timedelta(seconds=flood_window_seconds)
        self._unknown_sent: deque[datetime] = deque()  # first notices sent alone for people without a role
        self._held_since: datetime | None = None  # first unknown notice held back by the limit
        # alert id -> (when it is tried again, the recipients its last notice reached none of):
        # see unreached(). In memory: after a restart each is tried once more at once.
        self._unreached: dict[int, tuple[datetime, frozenset[str]]] = {}
        #: the recipients of alerts that reached nobody: a message from one of them means they
        #: can be reached now (reachable()). Replaced whole, so another thread may read it.
        self.unreached_keys: frozenset[str] = frozenset()

    def is_lead(self, person_key: str) -> bool:
        return person_key in self.leads

    def recipients(self, alert: dict) -> list[str]:
        """The practitioner holding the case (while they hold the role) and every lead, for
        the first notice and for each reminder alike (the practitioner may not have seen the first)."""
        keys: list[str] = []
        practitioner = self.store.alert_practitioner_key(alert["id"])
        if practitioner:
            keys.append(practitioner)
        keys.extend(k for k in self.leads if k not in keys)
        held = set(self._holding)
        if alert.get("present_key") and alert.get("conversation_status") == "in_progress":
            held.add(alert["present_key"])  # the session's own alert, however long it has been idle
        # A worker-present session: a child or family member is holding the worker's device.
        # Nothing goes to that screen (another family's words, an /ack they could press) until
        # the session has ended; then the worker is sent what was kept back (held_notices).
        for key in keys:
            if key in held:
                self._held.setdefault(key, set()).add(alert["id"])
        return [k for k in keys if k not in held]

    @property
    def holds_back(self) -> bool:
        """Whether alerts are being kept back from someone's device (held_notices)."""
        return bool(self._held)

    def holding(self, now: datetime | None = None) -> set[str]:
        """See :func:`holding`."""
        return holding(self.store, self.present_idle_minutes, now, self.present_handback_minutes)

    def held_notices(self) -> list[Notice]:
        """For each worker whose session has ended since alerts were kept back from their
        device: one notice of those still open that they may handle (not a reminder: the
        schedule of each alert is unchanged). Kept in memory; after a restart the alert's
        next reminder (every ``repeat_minutes`` until acknowledged) reaches them instead."""
        out = []
        for key in [k for k in self._held if k not in self._holding]:
            ids = self._held.pop(key)
            alerts = [a for a in (self.store.alert_detail(i) for i in sorted(ids))
                      if a is not None and a["acknowledged_at"] is None and self.may_handle(a["id"], key)]
            if not alerts:
                continue
            text = self.text(alerts[0], False) if len(alerts) == 1 else self.digest_text(alerts, False)
            out.append(Notice([a["id"] for a in alerts], [key], f"{msg('alerts.held')}\n\n{text}", False,
                              digest=len(alerts) > 1, held=True))
        return out

    def _who(self, alert: dict) -> str:
        """The case reference and the pseudonym the practitioner chose, never a Telegram first
        name unless the deployment says people_names: telegram (see bot.names)."""
        who = person_label(alert.get("person_key"), alert.get("display_name"), alert.get("pseudonym"),
                           self.telegram_names)
        return f"{who}, case {alert['case_ref']}" if alert.get("case_ref") else who

    @staticmethod
    def _respondent(alert: dict) -> str:
        """Who was answering, for the lead: the help they were shown followed it."""
        who = described(alert.get("respondent"))
        if alert.get("present_id"):
            worker = alert.get("present_name") or alert.get("present_key") or "?"
            who = msg("respondent.present", who=who, worker=worker)
        return who

    def _concern(self, alert: dict) -> str:
        return ", ".join(self.safeguarding.concerns.get(c, c) for c in alert["concern"].split(","))

    #: Characters of a person's words shown in one alert message: each alert stays one
    #: Telegram message (a lead's chat takes about one a second). The start and the latest
    #: words are shown; all of them are kept (``restorative-bot alerts``, the transcript).
    WORDS_SHOWN = 1500

    def _words(self, words: str) -> str:
        if len(words) <= self.WORDS_SHOWN:
            return words
        half = self.WORDS_SHOWN // 2
        return f"{words[:half]} {msg('alerts.words_cut', n=len(words) - 2 * half)} {words[-half:]}"

    def text(self, alert: dict, repeat: bool) -> str:
        body = self.safeguarding.alert_text(
            person=self._who(alert), flow=alert.get("flow_id") or "(no conversation)", concern=self._concern(alert),
            words=self._words(alert["words"]), time=alert["created_at"], ack_command=f"{self.ack_command} {alert['id']}",
            respondent=self._respondent(alert),
        )
        if alert.get("update_count", 0) > alert.get("notified_updates", 0) and alert.get("notify_count", 0) > 0:
            body = f"{msg('alerts.updated', n=alert['update_count'])}\n\n{body}"
        elif repeat:
            body = f"REMINDER (sent {alert['notify_count'] + 1} times, not yet acknowledged)\n\n{body}"
        return body

    def digest_text(self, alerts: list[dict], repeat: bool) -> str:
        """One message listing at most ``digest_lines`` alerts (people with a role or a case
        first, then the oldest); how many more, and where to see them all, after them. A
        flood of strangers' alerts cannot make a digest that takes a lead's chat for minutes."""
        lines = [msg("alerts.digest_reminder" if repeat else "alerts.digest_new", n=len(alerts))]
        shown = sorted(alerts, key=lambda a: (not a.get("known", True), a["id"]))[:self.digest_lines]
        for a in shown:
            words = " ".join(a["words"].split())
            lines.append(msg("alerts.digest_line", id=a["id"], who=self._who(a), concern=self._concern(a),
                             words=words if len(words) <= 200 else words[:199] + "…",
                             ack=f"{self.ack_command} {a['id']}"))
        if len(alerts) > len(shown):
            lines.append(msg("alerts.digest_more", n=len(alerts) - len(shown)))
        lines.append(msg("alerts.digest_footer", ack=self.ack_command))
        return "\n\n".join(lines)

    # -- alerts that reached nobody ----------------------------------------------------
    def unreached(self, alert_ids, tried, now: datetime | None = None) -> list[int]:
        """A notice of these alerts reached none of its recipients (``tried``: their keys; each
        blocked the bot, never opened a chat with it, or Telegram could not be reached). The
        alerts stay due and unacknowledged, but are not tried again at every pass: after the
        re-alert interval (``repeat_minutes``), or at once when one of those recipients writes
        to the bot (:meth:`reachable`) or the alert gains a recipient not tried (a lead, a
        reassigned case). Returns the alerts that had been reaching someone until now (for
        the log: one line per alert per change, not one per pass)."""
        now = now or datetime.now(timezone.utc)
        new = [a for a in alert_ids if a not in self._unreached]
        for alert_id in alert_ids:
            self._unreached[alert_id] = (now + self.repeat, frozenset(tried))
        self._keys_changed()
        return new

    @property
    def any_unreached(self) -> bool:
        """Whether some alert reached nobody (cheap: asked before each notice is recorded)."""
        return bool(self._unreached)

    def reached(self, alert_ids) -> list[int]:
        """A notice of these alerts reached someone: those that had reached nobody before."""
        back = [a for a in alert_ids if self._unreached.pop(a, None) is not None]
        if back:
            self._keys_changed()
        return back

    def reachable(self, key: str) -> bool:
        """``key`` wrote to the bot, so a message to them can go now: every alert that reached
        nobody, ``key`` among those tried, is due again at once. Whether there was one."""
        now = datetime.min.replace(tzinfo=timezone.utc)
        found = False
        for alert_id, (_, tried) in list(self._unreached.items()):
            if key in tried:
                self._unreached[alert_id] = (now, tried)
                found = True
        return found

    def _keys_changed(self) -> None:
        self.unreached_keys = frozenset(k for _, tried in self._unreached.values() for k in tried)

    def _waiting(self, alert: dict, now: datetime) -> bool:
        """Whether this alert reached nobody and waits before it is tried again."""
        entry = self._unreached.get(alert["id"])
        if entry is None or now >= entry[0]:
            return False
        return set(self.recipients(alert)) <= entry[1]  # nobody new to try

    def _forget_closed(self, due_ids: set[int]) -> None:
        """An alert no longer due (acknowledged) is no longer waited on."""
        gone = [a for a in self._unreached if a not in due_ids]
        for alert_id in gone:
            del self._unreached[alert_id]
        if gone:
            self._keys_changed()

    def due(self, now: datetime | None = None) -> list[Notice]:
        now = now or datetime.now(timezone.utc)
        self._holding = self.holding(now)
        rows = self.store.due_alerts(_iso(now))
        if self._unreached:
            self._forget_closed({row["id"] for row in rows})
        fresh, reminders = [], []
        for row in rows:
            full = self.store.alert_detail(row["id"])
            full["known"] = bool(row["known"])
            if self._waiting(full, now):
                continue
            new_words = full["update_count"] > full["notified_updates"]
            (fresh if full["notify_count"] == 0 or new_words else reminders).append(full)
        fresh.sort(key=lambda a: (not a["known"], a["id"]))  # people with a role or a case first
        notices: list[Notice] = self.held_notices()
        held: list[dict] = []
        while self._unknown_sent and now - self._unknown_sent[0] > self.flood_window:
            self._unknown_sent.popleft()
        for alert in fresh:
            first_unknown = not alert["known"] and alert["notify_count"] == 0
            if first_unknown and (self._held_since is not None or held
                                  or len(self._unknown_sent) > self.flood_individual):
                held.append(alert)
                continue
            if first_unknown:
                self._unknown_sent.append(now)
            notices.append(Notice([alert["id"]], self.recipients(alert), self.text(alert, False), False,
                                  known=alert["known"]))
        if held:
            self._held_since = self._held_since or now
            if now - self._held_since >= self.flood_window:  # the flood digest: every held alert, once
                notices.extend(self._digests(held, repeat=False))
                self._held_since = None
        else:
            self._held_since = None
        notices.extend(self._digests(reminders, repeat=True))
        return notices

    def urgent(self, now: datetime | None = None) -> list[Notice]:
        """Notices that should not wait behind a pass already under way: a first notice, or
        new words, for a person with a role or a case. No bookkeeping: :meth:`due` would
        return them too."""
        now = now or datetime.now(timezone.utc)
        self._holding = self.holding(now)
        out = []
        for row in self.store.due_alerts(_iso(now)):
            if not row["known"] or (row["notify_count"] > 0 and row["update_count"] <= row["notified_updates"]):
                continue
            full = self.store.alert_detail(row["id"])
            if self._waiting(full, now):
                continue
            out.append(Notice([full["id"]], self.recipients(full), self.text(full, False), False, known=True))
        return out

    def _digests(self, alerts: list[dict], *, repeat: bool) -> list[Notice]:
        """One message per recipient listing every alert they are to hear about (recipients
        hearing about the same alerts share one notice)."""
        by_recipient: dict[str, list[dict]] = {}
        for alert in alerts:
            for key in self.recipients(alert):
                by_recipient.setdefault(key, []).append(alert)
        groups: dict[tuple[int, ...], list[str]] = {}
        for key, mine in by_recipient.items():
            groups.setdefault(tuple(a["id"] for a in mine), []).append(key)
        by_id = {a["id"]: a for a in alerts}
        notices = []
        for ids, keys in groups.items():
            mine = [by_id[i] for i in ids]
            text = self.text(mine[0], repeat) if len(mine) == 1 else self.digest_text(mine, repeat)
            notices.append(Notice(list(ids), keys, text, repeat, digest=len(mine) > 1,
                                  known=all(a["known"] for a in mine)))
        return notices

    def sent(self, alert_ids, now: datetime | None = None) -> None:
        """The notice went out: schedule the next reminder (cleared by acknowledgement)."""
        now = now or datetime.now(timezone.utc)
        if isinstance(alert_ids, int):
            alert_ids = [alert_ids]
        with self.store.transaction():
            for alert_id in alert_ids:
                self.store.mark_alert_notified(alert_id, _iso(now + self.repeat))

    def may_handle(self, alert_id: int, key: str) -> bool:
        """Who may see and acknowledge an alert: the leads, and the practitioner holding the
        case (while they hold the role). The one rule behind ``/ack`` and the website."""
        return self.is_lead(key) or self.store.alert_practitioner_key(alert_id) == key

    def open_for(self, key: str) -> list[dict]:
        """Open (unacknowledged, not practice) alerts this person may acknowledge, oldest
        first, with their details; the read is audited."""
        with self.store.transaction():
            rows = [self.store.alert_detail(a["id"]) for a in self.store.alerts(open_only=True)
                    if not a["practice"] and self.may_handle(a["id"], key)]
            self.store.audit(key, "alerts.list", None, f"{len(rows)} open")
        for r in rows:
            r["who"] = self._who(r)
            r["concern_text"] = self._concern(r)
            r["respondent_text"] = self._respondent(r)
        return rows

    def acknowledge(self, alert_id: int, by_key: str) -> str:
        """Returns 'ok', 'already' or 'unknown' (see :meth:`acknowledge_person`)."""
        return self.acknowledge_person(alert_id, by_key)[0]

    def acknowledge_person(self, alert_id: int, by_key: str) -> tuple[str, int]:
        """('ok' | 'already' | 'unknown', how many alerts were acknowledged). Only leads and
        the practitioner holding the case (while they hold the role) may; acknowledging one
        alert acknowledges every open alert of the same person that they may acknowledge."""
        with self.store.transaction():
            alert = self.store.alert(alert_id)
            if alert is None:
                return "unknown", 0
            may = lambda a: self.may_handle(a, by_key)  # noqa: E731
            if not may(alert_id):
                self.store.audit(by_key, "alert.ack.refused", f"alert:{alert_id}")
                return "unknown", 0  # do not reveal that the alert exists
            done = 0
            for other in dict.fromkeys([alert_id, *self.store.open_alert_ids_of(alert["person_id"])]):
                if may(other) and self.store.acknowledge_alert(other, by_key):
                    self.store.audit(by_key, "alert.ack", f"alert:{other}")
                    done += 1
            return ("ok" if done else "already"), done
