"""A person's right to erasure (issue 17 item 2).

- ``/delete`` (:func:`request`) records a request and audits it (or, for someone without a
  chat of their own, their worker does: :func:`request_for_conversation`); the practitioner holding
  each of the person's cases and the data-protection contact (a Telegram id or a role in the
  configuration) are told, without a word of the answers, each only of the cases they may read
  (a worker never learns of another worker's case or label for the person).
- An administrator decides (:func:`approve` / :func:`refuse`, ``restorative-bot erasure``),
  because some records must be kept by law. Data given as a child or young person weighs
  for erasure (the ICO's guidance): :func:`pending` shows it, and so does the decision prompt.
- Approval erases the person's words and name from every column listed in
  :data:`bot.store.PERSON_TEXT` (answers, transcripts, inputs, comments on their answers,
  reminders, pseudonyms, their name); the safeguarding records (alert words, review items,
  missed disclosures) only when the safeguarding lead agrees (``alert_words="erase"``; the
  default keeps them, and the choice is recorded). Other people in the case keep theirs.
  A case under a legal hold cannot be erased until released. Afterwards the WAL is moved
  into the database and truncated; ``secure_delete`` has zeroed the freed space, so the
  words are not left in the file either. Backups made before it (and ``purge --export``
  archives) still hold the words until they expire: the person is told so, and a restore
  from such a backup does every approved erasure again (:meth:`bot.store.Store.restore_from`).
- A notice kept back for a worker (during a worker-present session) that names or quotes the
  person is erased with them; the worker is told, without a name, that request N was decided.
- The person is told the outcome in Telegram (:func:`untold` / :func:`told`, sent by
  ``serve``'s loop); every step is audited, with counts and ids, never content.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from bot import i18n
from bot.access import handles_case
from bot.messages import msg
from bot.names import person_label
from bot.store import Store, now

ALERT_WORDS = ("keep", "erase")


@dataclass
class Requested:
    id: int
    new: bool  # False: the person had already asked, and that request is still open
    created_at: str
    child: bool  # the person answered as a child or young person (child-friendly wording)
    recipients: list[str]  # keys to tell (practitioners of their cases, the data-protection contact)
    full_notice: str  # every case (no answers): for the command line only; never send it to a recipient as is
    notices: dict[str, str] = field(default_factory=dict)  # what each recipient is told: only the cases they may read
    person_id: int | None = None  # whom it is about (a notice kept back names them: erased with them)


@dataclass
class Approved:
    counts: dict[str, int]  # values erased per table.column
    wiped: bool | None  # the WAL was truncated too (False: a running bot kept reading, `erasure wipe` later;
    # None: inside a group commit, it is truncated just after that commits)


@dataclass
class Outcome:
    id: int
    recipient: str  # the person's key
    text: str


def contact_keys(store: Store, contact) -> list[str]:
    """The data-protection contact: a Telegram user id, or everyone holding a role."""
    if contact is None:
        return []
    if isinstance(contact, int):
        return [f"tg:{contact}"]
    return sorted({r["key"] for r in store.role_list() if r["role"] == contact})


def request(store: Store, key: str, contact="admin") -> Requested:
    """The person ``key`` asks (/delete)."""
    with store.transaction():
        return _request(store, store.person(key), key, contact)


def request_for_conversation(store: Store, conversation_id: int, by: str, contact="admin") -> Requested:
    """Someone asks their worker to make the request for them (``restorative-bot erasure
    request --conversation ID``): above all a child who answered on the worker's device, who
    has no chat of their own to send /delete from. The request is the person who answered
    that conversation's; ``by`` is recorded as who made it. ValueError: no such conversation."""
    with store.transaction():
        conv = store.conversation(conversation_id)
        if conv is None:
            raise ValueError(f"there is no conversation {conversation_id}")
        return _request(store, conv.person_id, by, contact, detail=f"for conversation:{conversation_id}")


def _request(store: Store, pid: int, by: str, contact, detail: str | None = None) -> Requested:
    existing = store.open_erasure_request(pid)
    if existing is not None:
        store.audit(by, "erasure.request.again", f"erasure:{existing['id']}", detail)
        return Requested(existing["id"], False, existing["created_at"], bool(existing["as_child"]), [], "",
                         person_id=pid)
    rid = store.add_erasure_request(pid)
    row = store.erasure_request(rid)
    key = row["person_key"]
    store.audit(by, "erasure.request", f"erasure:{rid}", detail)
    cases = store.person_case_practitioners(pid)
    contacts = contact_keys(store, contact)
    recipients = [c["practitioner_key"] for c in cases] + contacts
    recipients = [r for i, r in enumerate(recipients) if r not in recipients[:i] and r != key]

    def notice(shown: list[dict]) -> str:
        who = ", ".join(person_label(key, row["display_name"], store.pseudonym(c["id"], pid)) for c in shown) \
            or person_label(key, row["display_name"])
        cases_said = ", ".join(c["ref"] for c in shown) or msg("erasure.no_case" if not cases else "erasure.not_yours")
        text = msg("erasure.staff_notice", id=rid, who=who, cases=cases_said,
                   child=msg("erasure.as_child") if row["as_child"] else "")
        return " ".join(text.split())

    # Each recipient is told only of the cases they may read, by the names they know the person
    # by there: two workers holding two cases of the same person never learn each other's case
    # reference or private label. The data-protection contact named by id, and administrators,
    # may read every case: they get the whole notice.
    whole = notice(cases)
    everything = {f"tg:{contact}"} if isinstance(contact, int) else set()
    notices = {r: whole if r in everything else notice([c for c in cases if handles_case(store, r, c["practitioner_id"])])
               for r in recipients}
    return Requested(rid, True, row["created_at"], bool(row["as_child"]), recipients, whole, notices, person_id=pid)


def notified(store: Store, request_id: int, reached: int) -> None:
    with store.transaction():
        store.audit("serve", "erasure.notify", f"erasure:{request_id}", f"{reached} told")


def pending(store: Store, everything: bool = False) -> list[dict]:
    """Requests (open ones unless ``everything``), with what weighs in the decision."""
    return store.erasure_requests(None if everything else "open")


def describe(row: dict) -> str:
    """The decision prompt for one request (for an administrator; no answers)."""
    lines = [f"Erasure request #{row['id']} from {person_label(row['person_key'], row['display_name'])}, made {row['created_at'][:16].replace('T', ' ')}"
             f" ({row['status']})",
             f"  conversations: {row['conversations']}; cases: {row['case_refs'] or 'none'}; "
             f"safeguarding records: {row['alerts']} alert(s), {row['review_items']} review item(s),"
             f" {row['missed']} missed disclosure(s)"
             + (" (their words are kept unless --alert-words erase)" if safeguarding_records(row) else "")]
    if row["as_child"]:
        lines.append("  GIVEN AS A CHILD OR YOUNG PERSON: the ICO asks that this weighs in favour of erasure")
    if row["held_refs"]:
        lines.append(f"  UNDER A LEGAL HOLD: {row['held_refs']} (release it first, or refuse)")
    if row["status"] != "open":
        lines.append(f"  decided {row['decided_at'][:16].replace('T', ' ')} by {row['decided_by']}: {row['reason']}"
                     + (f"; alert words {row['alert_words']}" if row["alert_words"] else ""))
    return "\n".join(lines)


def safeguarding_records(row: dict) -> int:
    """How many safeguarding records hold the person's words (alerts, review items, missed
    disclosures): kept by default when the request is approved."""
    return row["alerts"] + row["review_items"] + row["missed"]


def _open(store: Store, request_id: int) -> dict:
    row = store.erasure_request(request_id)
    if row is None:
        raise ValueError(f"there is no erasure request {request_id}; `restorative-bot erasure list` shows them")
    if row["status"] != "open":
        raise ValueError(f"erasure request {request_id} was already {row['status']} on {row['decided_at'][:10]}")
    return row


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValueError("give the reason with --reason: the person is told it")
    return reason


def approve(store: Store, request_id: int, by: str, reason: str, alert_words: str = "keep",
            wait_ms: int = 10_000) -> Approved:
    """Erase the person's words and name, then the journal's old copies of them."""
    reason = _reason(reason)
    if alert_words not in ALERT_WORDS:
        raise ValueError("--alert-words is erase (the safeguarding lead agrees) or keep")
    with store.transaction():
        row = _open(store, request_id)
        if row["held_refs"]:
            raise ValueError(f"case {row['held_refs']} is under a legal hold, so nothing in it may be erased; "
                             f"release it (restorative-bot case release REF) or refuse the request")
        # Notices kept back for workers about this person (a comment quoting them, this request's
        # own notice naming them) are erased and cancelled with the rest of their words. Each
        # worker who had one waiting still learns that the request was made and decided, in a
        # notice that names nobody: the request number is enough to look it up.
        waiting = store.held_notice_recipients(row["person_id"])
        counts = store.erase_person(row["person_id"], safeguarding=alert_words == "erase")
        for worker in waiting:
            store.add_scheduled(person_id=worker, kind="notice", text=msg("erasure.staff_withdrawn", id=request_id),
                                due_at=now(), why=msg("schedule.why_notice"))
        store.decide_erasure(request_id, status="approved", by=by, reason=reason, alert_words=alert_words,
                             counts=counts)
        store.audit(by, "erasure.approve", f"erasure:{request_id}",
                    f"alert words {alert_words}; " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                                                      or "nothing stored"))
    return Approved(counts, wipe(store, by, request_id, wait_ms))


def wipe(store: Store, by: str, request_id: int | None = None, wait_ms: int = 10_000) -> bool | None:
    """Truncate the WAL so no old copy of erased words stays in it (audited either way)."""
    done = store.wipe_free_space(wait_ms)
    detail = {True: None, None: "just after the commit",
              False: "busy: the database was being read; run restorative-bot erasure wipe"}[done]
    with store.transaction():
        store.audit(by, "erasure.wipe", f"erasure:{request_id}" if request_id else None, detail)
    return done


def refuse(store: Store, request_id: int, by: str, reason: str) -> None:
    reason = _reason(reason)
    with store.transaction():
        _open(store, request_id)
        store.decide_erasure(request_id, status="refused", by=by, reason=reason, alert_words=None, counts=None)
        store.audit(by, "erasure.refuse", f"erasure:{request_id}")


def untold(store: Store) -> list[Outcome]:
    """Decided requests whose person has not been told yet, with what to tell them."""
    out = []
    for row in store.erasures_untold():
        variant = "child" if row["as_child"] else "default"
        # any safeguarding record kept (an alert, a quiet review item, a missed disclosure): the
        # person is told some words are kept, in words that do not say which kind of record
        kept = row["status"] == "approved" and row["alert_words"] == "keep" and safeguarding_records(row)
        # in the language the person chose (kept through erasure: a language tag is nobody's words)
        said = functools.partial(_outcome_text, variant=variant, language=row["language"])
        text = said(f"erasure.outcome.{row['status']}{'_kept' if kept else ''}").format(
            id=row["id"], reason=row["reason"] or "")
        if row["status"] == "approved":  # backups made before it still hold the words until they expire
            text += " " + said("erasure.outcome.backups")
        out.append(Outcome(row["id"], row["person_key"], text))
    return out


def _outcome_text(path: str, variant: str, language: str | None) -> str:
    """One outcome sentence (``default`` or ``child`` wording), translated into ``language``."""
    node = msg(path)
    key = variant if variant in node else "default"
    return i18n.translate(f"{path}.{key}", node[key], language)


def told(store: Store, request_id: int, reached: bool = True, why: str = "not in Telegram") -> None:
    """The outcome was given, or (``reached`` false, ``why``) can never be given here: either
    way it is not tried again; the audit line says which."""
    with store.transaction():
        if store.mark_erasure_told(request_id):
            store.audit("serve", "erasure.told", f"erasure:{request_id}", None if reached else why)


def counts_of(row: dict) -> dict:
    return json.loads(row["counts"]) if row.get("counts") else {}
