"""Safeguarding escalation: who is told about an alert, when, and again until someone acts.

The schedule lives in the store (``alerts.next_notify_at``), never in memory, so a restart
between a disclosure and its acknowledgement changes nothing: the next pass finds the
alert due and sends it again. Frontends call :meth:`Escalation.due` and send what it
returns; this module decides nothing about transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.store import Store
from bot.store import iso as _iso


@dataclass
class Notice:
    alert_id: int
    recipients: list[str]  # person keys, e.g. 'tg:12345'
    text: str
    repeat: bool  # a reminder (not the first notice)


class Escalation:
    def __init__(self, store: Store, safeguarding, *, leads: list[int], repeat_minutes: float = 15.0,
                 ack_command: str = "/ack"):
        self.store = store
        self.safeguarding = safeguarding
        self.leads = [f"tg:{i}" for i in leads]
        self.repeat = timedelta(minutes=repeat_minutes)
        self.ack_command = ack_command

    def is_lead(self, person_key: str) -> bool:
        return person_key in self.leads

    def recipients(self, alert: dict) -> list[str]:
        """The practitioner holding the case (if any) and every lead, for the first notice
        and for each reminder alike (the practitioner may not have seen the first)."""
        keys: list[str] = []
        practitioner = self.store.alert_practitioner_key(alert["id"])
        if practitioner:
            keys.append(practitioner)
        keys.extend(k for k in self.leads if k not in keys)
        return keys

    def text(self, alert: dict, repeat: bool) -> str:
        who = alert.get("display_name") or alert.get("person_key") or "someone"
        concern = ", ".join(self.safeguarding.concerns.get(c, c) for c in alert["concern"].split(","))
        body = self.safeguarding.alert_text(
            person=who, flow=alert.get("flow_id") or "(no conversation)", concern=concern, words=alert["words"],
            time=alert["created_at"], ack_command=f"{self.ack_command} {alert['id']}",
        )
        if repeat:
            body = f"REMINDER (sent {alert['notify_count'] + 1} times, not yet acknowledged)\n\n{body}"
        return body

    def due(self, now: datetime | None = None) -> list[Notice]:
        now = now or datetime.now(timezone.utc)
        notices = []
        for alert in self.store.due_alerts(_iso(now)):
            full = self.store.alert_detail(alert["id"])
            repeat = alert["notify_count"] > 0
            notices.append(Notice(alert["id"], self.recipients(full), self.text(full, repeat), repeat))
        return notices

    def sent(self, alert_id: int, now: datetime | None = None) -> None:
        """The notice went out: schedule the next reminder (cleared by acknowledgement)."""
        now = now or datetime.now(timezone.utc)
        with self.store.transaction():
            self.store.mark_alert_notified(alert_id, _iso(now + self.repeat))

    def acknowledge(self, alert_id: int, by_key: str) -> str:
        """Returns 'ok', 'already' or 'unknown'; only leads and the linked practitioner may."""
        with self.store.transaction():
            alert = self.store.alert(alert_id)
            if alert is None:
                return "unknown"
            allowed = self.is_lead(by_key) or self.store.alert_practitioner_key(alert_id) == by_key
            if not allowed:
                self.store.audit(by_key, "alert.ack.refused", f"alert:{alert_id}")
                return "unknown"  # do not reveal that the alert exists
            if alert["acknowledged_at"]:
                return "already"
            self.store.acknowledge_alert(alert_id, by_key)
            self.store.audit(by_key, "alert.ack", f"alert:{alert_id}")
            return "ok"
