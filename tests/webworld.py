"""A small world for the website and chart tests, built through the real service and access
layer (no SQL): staff, a case with two people answering the scaling check-in at different
times, a child's Three Houses that the child did not agree to share, a safeguarding alert and a
review-tier item. Used by tests/test_charts.py, tests/test_web*.py."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bot.access import Access
from bot.config import Config
from bot.conversation import ConversationService
from bot.engine.runner import Input
from bot.store import iso

ADMIN, SUP, P1, P2, LEAD, FAM_A, FAM_B, FAM_C = 1, 2, 3, 4, 5, 11, 12, 13
_keys = itertools.count(1)


@contextmanager
def at(when: datetime):
    """Everything the store writes inside is stamped ``when`` (answers given on other days)."""
    import bot.store

    before = bot.store.now
    bot.store.now = lambda: iso(when)
    try:
        yield
    finally:
        bot.store.now = before


def service_for(store, library) -> ConversationService:
    """The service with the safeguarding lexicon on (alerts and review-tier items)."""
    from bot.safeguarding import SafeguardingConfig

    return ConversationService(store, library, safeguarding=SafeguardingConfig.load())


def config() -> Config:
    return Config(roles={"admin": [ADMIN], "supervisor": [SUP], "practitioner": [P1, P2]}, teams={SUP: [P1]},
                  leads=[LEAD])


def invited(service: ConversationService, access: Access, practitioner: int, family: int, ref: str,
            answers: list[str], flow: str = "scaling-checkin", respondent: str = "adult") -> int:
    """An invitation from ``practitioner``, accepted by ``family``, answered with ``answers``."""
    code, invite_id = access.invite(f"tg:{practitioner}", flow, ref, respondent)
    access.open_invite(f"tg:{family}", code)

    def start(person_id, flow_id, case_id, respondent=None):
        return service.start(person_id, flow_id, input_key=f"w:{next(_keys)}", frontend="telegram",
                             chat_id=str(family), case_id=case_id, respondent=respondent).conversation_id

    conv = access.accept_invite(f"tg:{family}", invite_id, start)
    pid = service.person(f"tg:{family}")
    for text in answers:
        service.handle(pid, Input.from_text(text), input_key=f"w:{next(_keys)}", conversation_id=conv)
    return conv


def with_child(service: ConversationService, access: Access, practitioner: int, ref: str, answers: list[str]) -> int:
    """Three Houses on the practitioner's device (worker present)."""
    def start(person_id, flow_id, case_id, respondent, present_id):
        return service.start(person_id, flow_id, input_key=f"w:{next(_keys)}", frontend="telegram",
                             chat_id=str(practitioner), case_id=case_id, respondent=respondent,
                             present_id=present_id).conversation_id

    conv = access.start_with(f"tg:{practitioner}", ref, "three-houses", start)
    pid = service.store.conversation(conv).person_id
    for text in answers:
        service.handle(pid, Input.from_text(text), input_key=f"w:{next(_keys)}", conversation_id=conv)
    return conv


SCALING = ["{hopes}", "{now}", "{why}", "less shouting", "7", "/skip"]
DAY = timedelta(days=1)
T0 = datetime(2026, 9, 1, 10, 0, tzinfo=timezone.utc)


@dataclass
class World:
    service: ConversationService
    access: Access
    ref: str
    convs: dict = field(default_factory=dict)


def build(service, access, ref: str = "FGC-7", hopes: str = "We talk more", names=("Parent A", "Young person B"),
          extra: str = "") -> World:
    """Two people in case ``ref`` (held by P1, supervised by SUP) answer the scaling check-in
    three times a week apart (B's last "why" is worth a look: a review-tier item); a third person's
    best hopes raise a safeguarding alert; the child's Three Houses in the same case, not shared."""
    w = World(service, access, ref)
    scores = {FAM_A: [3, 5, 6], FAM_B: [2, 2, 4]}
    for week in range(3):
        for fam, who in ((FAM_A, "adult"), (FAM_B, "young_person")):
            with at(T0 + week * 7 * DAY + (fam - FAM_A) * timedelta(hours=3)):
                why = "I get scared sometimes when mum and dad argue" + extra if (fam, week) == (FAM_B, 2) else f"reason {week}"
                answers = [a.format(hopes=hopes, now=scores[fam][week], why=why) for a in SCALING]
                w.convs[(fam, week)] = invited(service, access, P1, fam, ref, answers, respondent=who)
    first = {FAM_A: w.convs[(FAM_A, 0)], FAM_B: w.convs[(FAM_B, 0)]}
    access.set_pseudonym(f"tg:{P1}", first[FAM_A], names[0])
    access.set_pseudonym(f"tg:{P1}", first[FAM_B], names[1])
    with at(T0 + 19 * DAY):
        w.convs["alert"] = invited(service, access, P1, FAM_C, ref, ["my dad hits me and I am scared to go home" + extra])
    with at(T0 + 20 * DAY):
        w.convs["child"] = with_child(service, access, P1, ref,
                                      ["OK", "House of Worries", "House of Dreams", "school", "no", "a big garden",
                                       "football", "no", "yes", "/skip"])  # the worker checks, writes no notes
    assert service.store.conversation(w.convs["child"]).status == "completed"  # the device is the worker's again
    return w


def built_db(folder, library, **kwargs) -> tuple[str, dict]:
    """The world in a database file of its own (build once a module, copy per test)."""
    from bot.store import Store

    path = str(folder / "world.db")
    store = Store(path)
    access = Access(store, library, config())
    access.seed()
    w = build(service_for(store, library), access, **kwargs)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path, w.convs


def copy_db(source: str, folder) -> str:
    import shutil

    target = str(folder / "copy.db")
    shutil.copyfile(source, target)
    return target
