"""Retention by record type, and the purge that applies it (issue 17).

How long each type of record is kept is configuration (``retention:`` in the deployment's
YAML, days or ``never``); :data:`DEFAULTS` applies where it says nothing. What each type
means is SQL in :data:`bot.store.PURGE_RULES`:

``completed``    answers, transcript, comments and reminders of a finished conversation, from when it finished
``abandoned``    a conversation stopped or left unfinished, from its last step
``practice``     practice conversations and rehearsals (with their practice alerts), from their last step
``alerts``       acknowledged safeguarding alerts, review items and missed disclosures; a conversation
                 is kept while any of these still is (an alert nobody acknowledged is never purged)
``invitations``  invitation links, from when they were used, withdrawn or expired
``inputs``       the record of each message received (exactly-once keys and the replies given)
``schedule``     reminders sent or cancelled
``audit``        the audit log (counts and ids only)
``web_signin``   the review website's sign-in links and sessions, from when they were used, ended or expired

A case under a legal hold (``restorative-bot case hold REF``) is never purged until released.
:func:`purge` works in bounded batches, each its own transaction with an audit row of its
counts (never content), so a kill mid-run leaves a consistent database and the next run
finishes the job; running it again when nothing is due changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from bot.store import PURGE_RULES, RECORD_TYPES, Store, iso

# Days each record type is kept; None: never purged. The reasons are in the README.
DEFAULTS: dict[str, float | None] = {
    "completed": 730.0,
    "abandoned": 180.0,
    "practice": 30.0,
    "alerts": 2190.0,
    "audit": 2190.0,
    "invitations": 90.0,
    "inputs": 30.0,
    "schedule": 90.0,
    "web_signin": 7.0,
}
assert set(DEFAULTS) == set(RECORD_TYPES)

BATCH = 200  # rows per transaction: a reply waits for at most one batch


def parse(node, pos_of, err) -> dict[str, float | None]:
    """The ``retention:`` mapping of a configuration, checked; ``err(pos, message)`` for each mistake."""
    out: dict[str, float | None] = {}
    for key, value in node.items():
        if key not in RECORD_TYPES:
            err(node.key_pos_of(key), f"unknown record type '{key}' under retention; use {', '.join(RECORD_TYPES)}")
        elif value == "never":
            out[key] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            err(pos_of(key), f"'{key}' must be a number of days above 0, or never (keep for ever), e.g. {key}: "
                             f"{DEFAULTS[key]:g}")
        else:
            out[key] = float(value)
    return out


@dataclass
class Retention:
    days: dict[str, float | None] = field(default_factory=lambda: dict(DEFAULTS))

    @classmethod
    def of(cls, overrides: dict[str, float | None] | None) -> "Retention":
        return cls({**DEFAULTS, **(overrides or {})})

    def cutoff(self, kind: str, at: datetime) -> str | None:
        days = self.days.get(kind)
        return None if days is None else iso(at - timedelta(days=days))


@dataclass
class PurgeReport:
    due: dict[str, int] = field(default_factory=dict)  # "type/table": rows due (before the run)
    deleted: dict[str, int] = field(default_factory=dict)  # table: rows deleted, with what hung on them
    batches: int = 0

    def add(self, counts: dict[str, int]) -> None:
        self.batches += 1
        for t, n in counts.items():
            self.deleted[t] = self.deleted.get(t, 0) + n

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.deleted.items()) if v) or "nothing"


def now() -> datetime:
    return datetime.now(timezone.utc)


def due(store: Store, retention: Retention, at: datetime) -> dict[str, int]:
    """Rows due now per rule ("type/table"), without touching anything."""
    out = {}
    for i, (kind, table, _where) in enumerate(PURGE_RULES):
        cutoff = retention.cutoff(kind, at)
        out[f"{kind}/{table}"] = store.purge_count(i, cutoff) if cutoff else 0
    return out


def batches(store: Store, retention: Retention, *, at: datetime, actor: str = "cli", batch: int = BATCH,
            export: Callable[[list[int]], None] | None = None) -> Iterator[tuple[dict[str, int], int]]:
    """Delete what is due, one batch per step: each its own transaction with an audit row of
    its counts. Yields (rows deleted per table, rows of the rule's table) after each commit, so
    a caller can let other work in between (``serve`` does: a reply waits for one batch at most).

    Each rule deletes at most the rows it had due when it began: what falls due meanwhile is
    the next run's. Otherwise, with ``at`` far ahead of the clock that stamps the rows (``at=``
    given, or a purge clock moved apart from the store's), the audit entries the run writes
    fell due at once, and each batch deleted the last one's entry and wrote another, for ever
    (in ``serve``, with the alert loop waiting on it)."""
    for i, (kind, table, _where) in enumerate(PURGE_RULES):
        cutoff = retention.cutoff(kind, at)
        if cutoff is None:
            continue
        left = store.purge_count(i, cutoff)
        while left > 0:
            with store.transaction():
                ids = store.purge_due(i, cutoff, min(batch, left))
                if not ids:
                    break
                if export is not None and table == "conversations":
                    export(ids)
                counts = store.purge_rows(i, ids)
                store.audit(actor, "purge.batch", kind, _counts(counts))
            left -= len(ids)
            yield counts, len(ids)


def finish(store: Store, actor: str, report: "PurgeReport", wait_ms: int = 10_000) -> None:
    """The run's audit summary; then, if anything went, the WAL is moved into the database and
    truncated, as after an erasure: in a long-running process the -wal file is reused, not
    shrunk, so old page images of the purged rows would stay in it (``secure_delete`` zeroes
    them in the database file only). If a reader keeps it busy for ``wait_ms``, that is audited
    and the next day's purge truncates it."""
    with store.transaction():
        store.audit(actor, "purge", None, _counts(report.deleted) or "nothing due")
    if report.deleted and store.wipe_free_space(wait_ms) is False:
        with store.transaction():
            store.audit(actor, "purge.wipe", None, "busy: the database was being read; the next purge tries again")


def purge(store: Store, retention: Retention, *, at: datetime | None = None, dry_run: bool = False,
          actor: str = "cli", batch: int = BATCH, progress: Callable[[int], None] | None = None,
          export: Callable[[list[int]], None] | None = None) -> PurgeReport:
    """Delete what is due. ``progress(n)`` after each batch of n rows; ``export(ids)`` is given
    the conversation ids of each batch before they are deleted (only when asked for)."""
    at = at or now()
    report = PurgeReport(due=due(store, retention, at))
    if dry_run:
        with store.transaction():
            store.audit(actor, "purge.dry-run", None, _counts(report.due))
        return report
    for counts, n in batches(store, retention, at=at, actor=actor, batch=batch, export=export):
        report.add(counts)
        if progress is not None:
            progress(n)
    finish(store, actor, report)
    return report


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v)


def hold(store: Store, ref: str, by: str, reason: str) -> int:
    """Put every case with this reference under a legal hold (audited); how many were not yet held."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("say why the case must be kept with --reason, e.g. --reason 'court proceedings'")
    with store.transaction():
        cases = store.cases_by_ref(ref)
        if not cases:
            raise ValueError(f"no case {ref}; see the /cases command")
        n = sum(store.hold_case(c["id"], by, reason) for c in cases)
        store.audit(by, "case.hold", f"case:{ref}", None if n else "already held")
    return n


def release(store: Store, ref: str, by: str) -> int:
    with store.transaction():
        cases = store.cases_by_ref(ref)
        if not cases:
            raise ValueError(f"no case {ref}; see the /cases command")
        n = sum(store.release_case(c["id"]) for c in cases)
        store.audit(by, "case.release", f"case:{ref}", None if n else "was not held")
    return n


class DailyPurge:
    """``serve`` runs the purge once a day: due when the last finished purge is a day old.
    The clock is injectable so tests move time instead of waiting."""

    EVERY = timedelta(days=1)

    def __init__(self, store: Store, retention: Retention, *, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.retention = retention
        self.clock = clock or now

    def is_due(self) -> bool:
        last = self.store.last_audit("purge")
        return last is None or last["created_at"] <= iso(self.clock() - self.EVERY)

    def steps(self) -> Iterator[PurgeReport]:
        """The day's purge one batch at a time (the report so far after each); the last step
        writes the audit summary. ``serve`` runs each step as its own job on the store's thread."""
        report = PurgeReport()
        for counts, _n in batches(self.store, self.retention, at=self.clock(), actor="serve"):
            report.add(counts)
            yield report
        finish(self.store, "serve", report, wait_ms=2_000)  # the bot's replies wait on this thread
        yield report

    def run(self) -> PurgeReport | None:
        if not self.is_due():
            return None
        report = None
        for report in self.steps():
            pass
        return report
