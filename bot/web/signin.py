"""Signing in to the review website without passwords.

A member of staff (practitioner, supervisor, admin or safeguarding lead) asks for a link:
``/web`` in Telegram, or ``restorative-bot web-link TELEGRAM_ID`` at the terminal. The link
carries a one-time code (192 bits, ``secrets.token_urlsafe(24)``) that expires in minutes;
only its SHA-256 is stored. Opening the link shows a button; pressing it (a POST, so a link
preview fetching the page uses nothing) uses the code once and starts a session. The
session's cookie value (256 bits) is likewise stored only as a hash; a session ends when
signed out (server-side), after ``session_hours``, or after ``idle_minutes`` unused, and
when the person no longer holds a staff role.

Nothing here knows about HTTP: the website (bot/web/app.py) and the Telegram command call
these functions. Every link made, used or refused, and every session started and ended, is in
the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from bot.access import Access, Refused
from bot.store import iso

STAFF_ROLES = ("practitioner", "supervisor")  # and admin (Access.has counts admins in)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass
class Session:
    id: int
    key: str  # the person's key, e.g. 'tg:12345'
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(session_token: str) -> str:
    """The form token of a session: derived from the cookie value, so nothing more is stored;
    a page of another site can neither read the cookie nor compute it."""
    return hmac.new(session_token.encode("utf-8"), b"restorative-bot web form", hashlib.sha256).hexdigest()


class SignIn:
    def __init__(self, access: Access, *, link_minutes: float = 10.0, session_hours: float = 8.0,
                 idle_minutes: float = 60.0, clock: Callable[[], datetime] | None = None):
        self.access = access
        self.store = access.store
        self.link_life = timedelta(minutes=link_minutes)
        self.session_life = timedelta(hours=session_hours)
        self.idle = timedelta(minutes=idle_minutes)
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def is_staff(self, key: str) -> bool:
        return self.access.has(key, *STAFF_ROLES) or key in {f"tg:{i}" for i in self.access.config.leads}

    def link(self, key: str) -> str:
        """A new one-time code for ``key``; :class:`Refused` (audited) for anyone not staff."""
        if not self.is_staff(key):
            with self.store.transaction():
                self.store.audit_coalesced(key, "web.link.refused", key)
            raise Refused("not staff")
        code = secrets.token_urlsafe(24)
        with self.store.transaction():
            person = self.store.person(key)
            self.store.add_web_link(_hash(code), person, iso(self.clock() + self.link_life))
            self.store.audit(key, "web.link", key)
        return code

    def check(self, code: str) -> str | None:
        """The reason a code cannot be used (unknown | used | expired | not_staff), or None;
        for the page that asks "Sign in?" before the code is used. Nothing is changed."""
        link = self.store.web_link(_hash(code)) if code else None
        return self._invalid(link)

    def _invalid(self, link: dict | None) -> str | None:
        if link is None:
            return "unknown"
        if link["used_at"]:
            return "used"
        if link["expires_at"] <= iso(self.clock()):
            return "expired"
        if not self.is_staff(link["person_key"]):
            return "not_staff"
        return None

    def redeem(self, code: str, client: str = "?") -> Session:
        """Use a code once and start a session; :class:`Refused` with the reason otherwise
        (each refusal audited; repeats counted on one row)."""
        at = self.clock()
        with self.store.transaction():
            link = self.store.web_link(_hash(code)) if code else None
            reason = self._invalid(link)
            if reason is None and not self.store.use_web_link(link["id"], iso(at)):
                reason = "used"
            if reason:
                self.store.audit_coalesced(link["person_key"] if link else None, f"web.signin.{reason}",
                                           f"web_link:{link['id']}" if link else "web_link:?", None)
                refused = Refused(reason)
            else:
                token = secrets.token_urlsafe(32)
                sid = self.store.add_web_session(_hash(token), link["person_id"], iso(at + self.session_life), iso(at))
                self.store.audit(link["person_key"], "web.signin", f"web_session:{sid}", f"web_link:{link['id']}")
                return Session(sid, link["person_key"], token)
        raise refused

    def session(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, ended, expired, idle, or the
        person is no longer staff). Seen again: its idle clock starts over."""
        if not token:
            return None
        row = self.store.web_session(_hash(token))
        if row is None or row["ended_at"]:
            return None
        at = self.clock()
        now = iso(at)
        if row["expires_at"] <= now or row["last_seen_at"] <= iso(at - self.idle) or not self.is_staff(row["person_key"]):
            with self.store.transaction():
                if self.store.end_web_session(row["id"], now):
                    self.store.audit(row["person_key"], "web.session.expired", f"web_session:{row['id']}")
            return None
        if row["last_seen_at"] <= iso(at - timedelta(seconds=60)):  # one write a minute at most
            with self.store.transaction():
                self.store.touch_web_session(row["id"], now)
        return Session(row["id"], row["person_key"], token)

    def sign_out(self, session: Session) -> None:
        with self.store.transaction():
            if self.store.end_web_session(session.id, iso(self.clock())):
                self.store.audit(session.key, "web.signout", f"web_session:{session.id}")


class Throttle:
    """Sign-in tries, sliding one-minute windows in memory: at most ``per_minute`` from one
    client, ``per_code`` for one code (however many addresses it comes from), and
    ``total_per_minute`` from everyone together. Codes are 192 bits, so the limits bound what
    strangers cost, not guessing. Neither an address's limit nor the shared limit may lock
    staff out (behind a proxy that sends no X-Forwarded-For everyone is 127.0.0.1; council
    offices and mobile networks share addresses): when either is reached a try still goes on
    if its code is a real, usable link (``valid``: one indexed read, nothing written), within
    its own code's limit (and a link works once).

    Memory stays bounded: the queues of each table are kept in order of last use, and each
    call drops those whose newest try has left the window (amortised O(1)); a refused try
    creates nothing; and a table never holds more than ``max_keys`` queues: when full, a try
    needing a new one is refused, unless its code is a real link (real links are few: staff
    ask for them). Allowed tries are themselves bounded by the shared limit, so the cap is a
    backstop that normal traffic, even a flood, does not reach."""

    WINDOW = 60.0

    def __init__(self, per_minute: int = 30, total_per_minute: int = 600, per_code: int = 10,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.per_minute = per_minute
        self.total_per_minute = total_per_minute
        self.per_code = per_code
        self.clock = clock
        self.max_keys = max_keys
        self._by: OrderedDict[str, deque] = OrderedDict()     # client -> times of its tries, least recent first
        self._codes: OrderedDict[bytes, deque] = OrderedDict()  # SHA-256 of a code -> times of its tries
        self._all: deque = deque()

    def _forget(self, t: float) -> None:
        """Drop what has left the window: queues whose newest try is a minute old (they are
        kept least recently used first, so only the front is looked at)."""
        edge = t - self.WINDOW
        for table in (self._by, self._codes):
            while table:
                q = next(iter(table.values()))
                if q[-1] > edge:
                    break
                table.popitem(last=False)
        while self._all and self._all[0] <= edge:
            self._all.popleft()

    def _trim(self, q: deque | None, t: float) -> int:
        if q is None:
            return 0
        while q and q[0] <= t - self.WINDOW:
            q.popleft()
        return len(q)

    def busy(self, client: str) -> bool:
        """Would a try from ``client`` with no real link be refused? Changes nothing that
        matters (only forgets what has left the window); for refusing early, before a request
        body is read."""
        t = self.clock()
        self._forget(t)
        mine = self._by.get(client)
        return (self._trim(mine, t) >= self.per_minute or len(self._all) >= self.total_per_minute
                or (mine is None and len(self._by) >= self.max_keys))

    def allow(self, client: str, code: str | None = None, valid: Callable[[], bool] | None = None) -> bool:
        t = self.clock()
        self._forget(t)
        mine = self._by.get(client)
        key = hashlib.sha256(code.encode("utf-8")).digest() if code else None
        of_code = self._codes.get(key) if key else None
        if self._trim(of_code, t) >= self.per_code:
            return False  # a code's own limit binds real links too
        over = (self._trim(mine, t) >= self.per_minute or len(self._all) >= self.total_per_minute
                or (mine is None and len(self._by) >= self.max_keys)
                or (key is not None and of_code is None and len(self._codes) >= self.max_keys))
        real = False
        if over:
            if not (key is not None and valid is not None and valid()):
                return False
            real = True
        if mine is not None:
            mine.append(t)
            self._by.move_to_end(client)
        elif len(self._by) < self.max_keys:
            self._by[client] = deque((t,))
        if key is not None:
            if of_code is not None:
                of_code.append(t)
                self._codes.move_to_end(key)
            elif real or len(self._codes) < self.max_keys:
                self._codes[key] = deque((t,))  # a real link beyond the cap: bounded by the links staff asked for
        self._all.append(t)
        return True
