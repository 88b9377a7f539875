"""Who may see and do what: roles, cases, invitations, review, and the audit log.

Every read of a transcript, export, role change, invite creation and use, and every
refusal is written to the audit log in the same transaction as the action. A refusal
never says whether the thing asked for exists: "not found" and "not yours" read the same.

Roles: admin (everything), supervisor (the cases and rehearsals of the practitioners they
supervise), practitioner (the cases they hold and their own rehearsals), family (their own
conversations; granted on accepting an invitation). Anyone else may only try the demo flow.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot import i18n
from bot import respondent as respondents
from bot.audience import Audience, Consent, audience, case_of, consent_state, decide, respondent_for
from bot.config import ROLES, Config
from bot.engine.library import FlowLibrary
from bot.messages import msg
from bot.store import Store
from bot.store import iso as _iso

CASE_REF_MAX = 40
log = logging.getLogger(__name__)


def handles_case(store: Store, key: str, practitioner_id: int) -> bool:
    """Whether ``key`` may act on a case held by ``practitioner_id``: an administrator, that
    practitioner (while they hold the role), or a supervisor of theirs. Read from the store at
    every call, so a revoked role or a removed team link takes effect at once."""
    me = store.person_by_key(key)
    if me is None:
        return False
    roles = store.roles_of(me["id"])
    return ("admin" in roles or ("practitioner" in roles and practitioner_id == me["id"])
            or ("supervisor" in roles and store.supervises(me["id"], practitioner_id)))


def _invite_code() -> str:
    """A new invitation code: 32 URL-safe characters (192 bits), never starting with "-".
    One in 64 would, and a code pasted after a command (`restorative-bot invite revoke CODE`)
    would then be read as an option and refused."""
    while True:
        code = secrets.token_urlsafe(24)
        if not code.startswith("-"):
            return code


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)




class AmbiguousCase(ValueError):
    """Two practitioners use the same case reference and this reader may see both: they are
    two families, and no view (the case, its charts, its summary) ever shows them as one.
    ``holders``: (key, name) of each practitioner, for the reader to say whose case they mean."""

    def __init__(self, ref: str, holders: list[tuple[str, str]], message: str | None = None):
        super().__init__(message or f"more than one practitioner has a case {ref}; say whose it is")
        self.ref, self.holders = ref, holders


class Refused(Exception):
    """Not allowed, or not found: the same for the person asking. ``reason`` is for logs.

    ``audit`` is the (actor, action, target, detail) entry to log: it is written after the
    refused transaction is rolled back, so the refusal itself is always on record.
    """

    def __init__(self, reason: str = "refused", audit: tuple | None = None):
        super().__init__(reason)
        self.reason = reason
        self.audit = audit


@dataclass
class InviteView:
    invite_id: int
    flow_id: str
    flow_title: str
    practitioner_name: str
    case_ref: str
    respondent: str | None = None  # set by the practitioner on the invitation
    ask_respondent: bool = False  # nobody said and the flow admits several: ask "Who is filling this in?"
    language: str | None = None  # set by the practitioner on the invitation (--lang); None: not said


class Access:
    def __init__(self, store: Store, library: FlowLibrary, config: Config | None = None):
        self.store = store
        self.library = library
        self.config = config or Config()

    @contextlib.contextmanager
    def _tx(self):
        """One transaction; a refusal rolls it back and is then logged on its own."""
        try:
            with self.store.transaction():
                yield
        except Refused as exc:
            if exc.audit:  # coalesced: a refusal repeated (e.g. bogus /start codes) is one row with a count
                with self.store.transaction():
                    self.store.audit_coalesced(*exc.audit)
            raise

    # -- identity and roles ------------------------------------------------------------
    def pid(self, key: str, name: str | None = None) -> int:
        return self.store.person(key, name)

    def roles(self, key: str) -> set[str]:
        row = self.store.person_by_key(key)
        return self.store.roles_of(row["id"]) if row else set()

    def has(self, key: str, *roles: str) -> bool:
        mine = self.roles(key)
        return "admin" in mine or any(r in mine for r in roles)

    def seed(self) -> None:
        """Roles and teams named in the configuration, each grant and link audited.

        A person's decision wins over the file: a role taken away with `role revoke` (or a link
        removed with `team remove`) is not granted back while the configuration still lists it
        (a warning in the log says so) until a person grants or adds it again. A team link the
        configuration added and no longer lists is removed (audited); links added with `team add`
        stay. Roles the configuration no longer lists are kept: take them with `role revoke`."""
        with self._tx():
            for role, ids in self.config.roles.items():
                for i in ids:
                    key = f"tg:{i}"
                    pid = self.pid(key)
                    if self.store.role_revoked(pid, role):
                        log.warning("configured role not granted: it was revoked; `role grant` restores it",
                                    extra={"person": key, "role": role})
                    elif self.store.grant_role(pid, role, "config"):
                        self.store.audit("config", "role.grant", key, role)
            listed = set()
            for sup, members in self.config.teams.items():
                for m in members:
                    skey, mkey = f"tg:{sup}", f"tg:{m}"
                    s_id, m_id = self.pid(skey), self.pid(mkey)
                    listed.add((s_id, m_id))
                    if self.store.team_removed(s_id, m_id):
                        log.warning("configured team link not added: it was removed; `team add` restores it",
                                    extra={"supervisor": skey, "practitioner": mkey})
                    elif self.store.add_team(s_id, m_id, "config"):
                        self.store.audit("config", "team.add", skey, mkey)
            for link in self.store.team_links():
                if link["added_by"] == "config" and (link["supervisor_id"], link["practitioner_id"]) not in listed:
                    self.store.remove_team(link["supervisor_id"], link["practitioner_id"])
                    self.store.audit("config", "team.remove", link["supervisor_key"], link["practitioner_key"])

    def grant(self, actor: str | None, target: str, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
        with self._tx():
            if actor is not None and not self.has(actor, "admin"):
                raise Refused("not an admin", audit=(actor, "role.grant.refused", target, role))
            pid = self.pid(target)
            self.store.unrevoke_role(pid, role)  # a person grants it again: the configuration may too
            changed = self.store.grant_role(pid, role, actor or "cli")
            self.store.audit(actor or "cli", "role.grant", target, role)
            return changed

    def revoke(self, actor: str | None, target: str, role: str) -> bool:
        """Take ``role`` from ``target``, audited; it stays taken (the configuration listing the
        person does not give it back at the next start) until :meth:`grant`."""
        with self._tx():
            if actor is not None and not self.has(actor, "admin"):
                raise Refused("not an admin", audit=(actor, "role.revoke.refused", target, role))
            pid = self.pid(target)
            changed = self.store.revoke_role(pid, role, actor or "cli")
            self.store.audit(actor or "cli", "role.revoke", target, role)
            if role == "practitioner":
                # Their links stop working with their role; their cases wait for `case reassign`.
                for invite_id in self.store.withdraw_invites_of(pid):
                    self.store.audit(actor or "cli", "invite.revoke", f"invite:{invite_id}", "role revoked")
            return changed

    def team_add(self, actor: str | None, supervisor: str, practitioner: str) -> bool:
        """``supervisor`` supervises ``practitioner`` (audited); the link stays whatever the
        configuration says, until :meth:`team_remove`."""
        with self._tx():
            if actor is not None and not self.has(actor, "admin"):
                raise Refused("not an admin", audit=(actor, "team.add.refused", supervisor, practitioner))
            s_id, p_id = self.pid(supervisor), self.pid(practitioner)
            self.store.unremove_team(s_id, p_id)
            changed = self.store.add_team(s_id, p_id, actor or "cli")
            self.store.audit(actor or "cli", "team.add", supervisor, practitioner)
            return changed

    def team_remove(self, actor: str | None, supervisor: str, practitioner: str) -> bool:
        """``supervisor`` no longer supervises ``practitioner`` (audited): their cases and
        rehearsals are closed to the supervisor at once, and the configuration listing the link
        does not add it back at the next start, until :meth:`team_add`. True if there was a link."""
        with self._tx():
            if actor is not None and not self.has(actor, "admin"):
                raise Refused("not an admin", audit=(actor, "team.remove.refused", supervisor, practitioner))
            changed = self.store.remove_team(self.pid(supervisor), self.pid(practitioner), actor or "cli")
            self.store.audit(actor or "cli", "team.remove", supervisor, practitioner)
            return changed

    def reassign(self, actor: str | None, ref: str, to: str, from_: str | None = None) -> dict:
        """Move the case ``ref`` (held by ``from_`` if several practitioners use that
        reference) to the practitioner ``to``, with its open invitations; audited.

        The CLI (actor None), an admin, or a supervisor of both practitioners may."""
        with self._tx():
            cases = self.store.cases_by_ref(ref)
            if from_ is not None:
                holder = self.store.person_by_key(from_)
                cases = [c for c in cases if holder and c["practitioner_id"] == holder["id"]]
            if actor is not None and not self.has(actor, "admin"):
                me = self.store.person_by_key(actor)
                mine = me is not None and "supervisor" in self.store.roles_of(me["id"])
                cases = [c for c in cases if mine and self.store.supervises(me["id"], c["practitioner_id"])]
            if not cases:
                raise Refused("refused", audit=(actor or "cli", "case.reassign.refused", f"case:{ref}", to))
            if len(cases) > 1:
                raise ValueError(f"more than one practitioner has a case {ref}; say whose it is with --from ID")
            target = self.store.person_by_key(to)
            if target is None or "practitioner" not in self.store.roles_of(target["id"]):
                raise ValueError(f"{to.removeprefix('tg:')} is not a practitioner; grant the role first")
            if actor is not None and not self.has(actor, "admin") and not self.store.supervises(
                    self.store.person_by_key(actor)["id"], target["id"]):
                raise Refused("refused", audit=(actor, "case.reassign.refused", f"case:{ref}", to))
            case = cases[0]
            if case["practitioner_id"] == target["id"]:
                raise ValueError(f"case {ref} is already held by {to.removeprefix('tg:')}")
            if self.store.case(target["id"], ref) is not None:
                raise ValueError(f"{to.removeprefix('tg:')} already has a case called {ref}; the references must differ")
            old = self.store.get_person(case["practitioner_id"])
            self.store.reassign_case(case["id"], target["id"])
            self.store.audit(actor or "cli", "case.reassign", f"case:{ref}", f"{old['key']} -> {to}")
            return {"ref": ref, "from": old["key"], "to": to}

    # -- what a person may start ---------------------------------------------------------
    def startable_flows(self, key: str):
        """Practitioners and above may start any flow (to rehearse); others only the demo."""
        if self.has(key, "practitioner", "supervisor"):
            return list(self.library)
        demo = self.library.get(self.config.demo_flow) if self.config.demo_flow else None
        return [demo] if demo else []

    def may_start(self, key: str, flow_id: str) -> bool:
        return any(f.id == flow_id for f in self.startable_flows(key))

    # -- invitations -------------------------------------------------------------------
    def invite(self, practitioner: str, flow_id: str, case_ref: str, respondent: str | None = None,
               language: str | None = None) -> tuple[str, int]:
        """A new single-use code (128+ bits) for ``flow_id`` in the practitioner's case, for
        ``respondent`` (None: the flow's only one, or asked when the link is opened), in
        ``language`` (None: the person's own choice, or what Telegram suggests).

        A flow that requires the worker present (Three Houses) is never sent as a link, and a
        respondent the flow is not for is refused: both raise ValueError with the reason."""
        ref = case_ref.strip()
        with self._tx():
            if not self.has(practitioner, "practitioner"):
                raise Refused("not a practitioner", audit=(practitioner, "invite.create.refused", flow_id, ref))
            flow = self.library.get(flow_id)
            if flow is None:
                raise ValueError(f"no flow called '{flow_id}'")
            self._check_ref(ref)
            if respondents.worker_present(flow):
                raise ValueError(msg("respondent.worker_present_only", flow=flow.id, title=flow.title))
            if respondent is not None and respondent not in respondents.admitted(flow):
                raise ValueError(respondents.refusal(flow, respondent))
            respondent = respondent or respondents.default_for(flow)
            offered = i18n.offered(self.config.allow_unreviewed_languages)
            if language is not None and language not in offered:
                raise ValueError(msg("language.unknown", tag=language, tags=", ".join(offered)))
            pid = self.pid(practitioner)
            case_id = self.store.create_case(pid, ref)
            code = _invite_code()
            expires = _now() + timedelta(days=self.config.invite_expiry_days)
            invite_id = self.store.add_invite(code_hash=_hash(code), flow_id=flow_id, case_id=case_id,
                                              practitioner_id=pid, expires_at=_iso(expires), respondent=respondent,
                                              language=language)
            self.store.audit(practitioner, "invite.create", f"invite:{invite_id}",
                             f"{flow_id} case {ref}" + (f" for {respondent}" if respondent else "")
                             + (f" in {language}" if language else ""))
        return code, invite_id

    def unwritten_case_texts(self, practitioner: str, flow_id: str, case_ref: str) -> list[str]:
        """The ``{{ case.KEY }}`` texts ``flow_id`` shows that are not written yet for the
        practitioner's case ``case_ref`` (told to them when they invite someone to it)."""
        flow = self.library.get(flow_id)
        me = self.store.person_by_key(practitioner)
        case = self.store.case(me["id"], case_ref.strip()) if me else None
        if flow is None or case is None or not flow.case_keys:
            return []
        written = self.store.case_info(case["id"])
        return [key for key in flow.case_keys if not written.get(key)]

    @staticmethod
    def _check_ref(ref: str) -> None:
        if not ref or len(ref) > CASE_REF_MAX or any(ch.isspace() for ch in ref):
            raise ValueError(f"a case reference is one word of up to {CASE_REF_MAX} characters, e.g. FGC-2041")

    def start_with(self, practitioner: str, case_ref: str, flow_id: str, start, respondent: str | None = None) -> int:
        """A worker-present session: the practitioner starts ``flow_id`` in their case for
        someone (a child) who answers on the practitioner's own device, with them there.
        The answers are recorded as the respondent's, the practitioner as present.

        ``start(person_id, flow_id, case_id, respondent, present_id) -> conversation id`` runs
        inside this transaction. Refused unless a practitioner; ValueError (for people) for
        an unknown flow, a bad case reference or a respondent the flow is not for."""
        ref = case_ref.strip()
        with self._tx():
            if not self.has(practitioner, "practitioner"):
                raise Refused("not a practitioner", audit=(practitioner, "with.start.refused", flow_id, ref))
            flow = self.library.get(flow_id)
            if flow is None:
                raise ValueError(f"no flow called '{flow_id}'")
            self._check_ref(ref)
            admitted = respondents.admitted(flow)
            if respondent is None:
                respondent = "child" if "child" in admitted else respondents.default_for(flow)
            if respondent is None or respondent == "practitioner" or respondent not in admitted:
                raise ValueError(msg("respondent.with_who", flow=flow.id,
                                     allowed=", ".join(respondents.cli_name(r) for r in admitted if r != "practitioner")))
            if respondents.own_device_only(flow):
                raise ValueError(msg("staff.with_consent_first", flow=flow.id, who=respondents.described(respondent),
                                     respondent=respondents.cli_name(respondent)))
            me = self.pid(practitioner)
            case_id = self.store.create_case(me, ref)
            person = self.store.person(f"present:{secrets.token_hex(8)}", msg("worker_present.person", ref=ref))
            conv_id = start(person, flow.id, case_id, respondent, me)
            self.store.audit(practitioner, "with.start", f"conversation:{conv_id}", f"{flow.id} case {ref} for {respondent}")
            return conv_id

    def revoke_invite(self, actor: str, invite_id: int) -> bool:
        with self._tx():
            inv = self.store.invite(invite_id)
            mine = inv is not None and (self.has(actor, "admin") or self.store.person_by_key(actor) is not None
                                        and inv["practitioner_id"] == self.store.person_by_key(actor)["id"])
            if not mine:
                raise Refused("refused", audit=(actor, "invite.revoke.refused", f"invite:{invite_id}"))
            done = self.store.revoke_invite(invite_id)
            self.store.audit(actor, "invite.revoke", f"invite:{invite_id}")
            return done

    def invite_id_of(self, code_or_id: str) -> int | None:
        """An invitation named by its number or by its code (as in the link); None if neither."""
        value = code_or_id.strip().rsplit("start=", 1)[-1]
        if value.lstrip("#").isdigit() and len(value) < 16:
            return int(value.lstrip("#"))
        inv = self.store.invite_by_hash(_hash(value)) if value else None
        return inv["id"] if inv else None

    def revoke_invite_by(self, actor: str | None, code_or_id: str) -> int:
        """Withdraw a link by its code or number: the CLI (actor None), an admin, or the
        practitioner who made it. Returns the invitation's number; Refused otherwise."""
        invite_id = self.invite_id_of(code_or_id)
        if invite_id is None:
            with self._tx():
                raise Refused("refused", audit=(actor or "cli", "invite.revoke.refused", "invite:?"))
        if actor is None:
            with self._tx():
                if self.store.invite(invite_id) is None:
                    raise Refused("refused", audit=("cli", "invite.revoke.refused", f"invite:{invite_id}"))
                if not self.store.revoke_invite(invite_id):
                    raise ValueError(f"invitation {invite_id} was already used or withdrawn")
                self.store.audit("cli", "invite.revoke", f"invite:{invite_id}")
            return invite_id
        if not self.revoke_invite(actor, invite_id):
            raise ValueError(f"invitation {invite_id} was already used or withdrawn")
        return invite_id

    def invites(self, actor: str | None, open_only: bool = False) -> list[dict]:
        """Invitations: all of them for the CLI and admins, a practitioner's own otherwise."""
        with self._tx():
            if actor is None or self.has(actor, "admin"):
                return self.store.invites(open_only=open_only)
            if not self.has(actor, "practitioner"):
                raise Refused("refused", audit=(actor, "invite.list.refused"))
            return self.store.invites(self.pid(actor), open_only=open_only)

    def open_invite(self, person: str, code: str) -> InviteView:
        """Someone opened a deep link: check the code and say who invited them.

        The first person to open a link holds it: anyone opening it later is refused with
        reason 'taken', which the frontend words exactly like an unknown code."""
        with self._tx():
            inv = self.store.invite_by_hash(_hash(code)) if code else None
            pid = self.pid(person)
            reason = "taken" if inv is not None and inv["opened_by"] not in (None, pid) else self._invalid(inv)
            reason = reason or self._family_revoked(pid)
            if reason:
                raise Refused(reason, audit=(person, f"invite.open.{reason}", f"invite:{inv['id']}" if inv else "invite:?"))
            self.store.open_invite(inv["id"], pid)
            if inv.get("language"):  # the invitation says which language: it is theirs from now on
                self.store.set_person_language(pid, inv["language"])
            self.store.audit(person, "invite.open", f"invite:{inv['id']}")
            return self._view(inv)

    def _invalid(self, inv: dict | None) -> str | None:
        if inv is None:
            return "unknown"
        if inv["revoked_at"]:
            return "revoked"
        if inv["used_at"]:
            return "used"
        if inv["expires_at"] < _iso(_now()):
            return "expired"
        if "practitioner" not in self.store.roles_of(inv["practitioner_id"]):
            return "revoked"  # the inviting practitioner no longer holds the role
        return None

    def _family_revoked(self, pid: int) -> str | None:
        """'family-revoked' if an admin took this person's family role away (`role revoke`).
        An invitation is a practitioner's deliberate act, but using it would grant the role
        again behind the admin's back: it is refused (kindly, and audited) until an admin runs
        `role grant ID family`, which clears the revocation."""
        return "family-revoked" if self.store.role_revoked(pid, "family") else None

    def _view(self, inv: dict) -> InviteView:
        flow = self.library.get(inv["flow_id"])
        practitioner = self.store.get_person(inv["practitioner_id"]) or {}
        case = self.store.case_by_id(inv["case_id"]) or {}
        language = inv.get("language")
        with i18n.using(language or i18n.current()):
            return InviteView(inv["id"], inv["flow_id"], flow.in_language(i18n.current()).title if flow else inv["flow_id"],
                              practitioner.get("display_name") or msg("privacy.names.worker"), case.get("ref", ""),
                              respondent=inv.get("respondent"),
                              ask_respondent=flow is not None and respondents.needs_asking(flow, inv.get("respondent")),
                              language=language)

    def invite_respondents(self, invite_id: int) -> list[tuple[str, str]]:
        """The answers to "Who is filling this in?" for an invitation that did not say."""
        inv = self.store.invite(invite_id)
        flow = self.library.get(inv["flow_id"]) if inv else None
        return respondents.choices(flow) if flow is not None else []

    def accept_invite(self, person: str, invite_id: int, start, respondent: str | None = None) -> int:
        """Consent given: mark the code used and start the flow in the case.

        ``start(person_id, flow_id, case_id[, respondent=...]) -> conversation id`` runs inside
        this transaction, so a code can never start two conversations. The conversation's
        respondent is the invitation's, else ``respondent`` (the person's answer to "Who is
        filling this in?", which must be one the flow admits).
        """
        with self._tx():
            inv = self.store.invite(invite_id)
            pid = self.pid(person)
            # Only the person who opened the link may consent; to anyone else every id is
            # "unknown", so a forged button cannot tell used, revoked or expired links apart.
            if inv is None or inv["opened_by"] != pid:
                raise Refused("unknown" if inv is None else "not-opened",
                              audit=(person, "invite.use.refused", f"invite:{invite_id}"))
            reason = self._invalid(inv) or self._family_revoked(pid)
            if reason:
                raise Refused(reason, audit=(person, f"invite.use.{reason}", f"invite:{invite_id}"))
            flow = self.library.get(inv["flow_id"])
            chosen = inv.get("respondent") or respondent
            if chosen is not None and flow is not None and chosen not in respondents.admitted(flow):
                raise Refused("unknown", audit=(person, "invite.use.respondent", f"invite:{invite_id}", chosen))
            if chosen is not None:  # the respondent from the start: the intro's privacy sentence follows it
                conv_id = start(pid, inv["flow_id"], inv["case_id"], respondent=chosen)
                self.store.set_respondent(conv_id, chosen)
            else:
                conv_id = start(pid, inv["flow_id"], inv["case_id"])
            if not self.store.use_invite(inv["id"], pid, conv_id):
                raise Refused("used")
            self.store.grant_role(pid, "family", "invite")
            self.store.audit(person, "invite.use", f"invite:{invite_id}", f"conversation:{conv_id}")
            return conv_id

    # -- reading -------------------------------------------------------------------------
    def _practitioners_visible_to(self, key: str) -> list[int] | None:
        """Practitioner ids whose cases this person may read (None: all, for admins)."""
        row = self.store.person_by_key(key)
        if row is None:
            return []
        mine = self.store.roles_of(row["id"])
        if "admin" in mine:
            return None
        ids: list[int] = []
        if "practitioner" in mine:
            ids.append(row["id"])
        if "supervisor" in mine:
            ids.extend(self.store.team_of(row["id"]))
        return ids

    def _facts(self, conversation_id: int) -> tuple | None:
        """(flow, case, respondent, consent answer) of a conversation: what bot.audience decides by."""
        conv = self.store.conversation(conversation_id)
        if conv is None:
            return None
        flow = self._flow_of(conv)
        answer = None
        if flow.consent_step is not None:
            answer = next((a["value"] for a in self.store.answers(conversation_id) if a["step_id"] == flow.consent_step),
                          None)
        return flow, case_of(self.store, conv.case_id, conv.person_id), respondent_for(conv, flow), answer

    def audience(self, conversation_id: int) -> Audience | None:
        """Who may read this conversation, by :func:`bot.audience.audience` (None: no such conversation)."""
        facts = self._facts(conversation_id)
        if facts is None:
            return None
        flow, case, respondent, answer = facts
        return audience(Consent.of(flow), case, respondent, consent_state(answer))

    def withheld(self, key: str, conversation_id: int) -> frozenset:
        """The steps of a readable conversation this person may still not read: the parts the
        person who answered chose not to share (``consent.which``, e.g. a house of the Three
        Houses), for everyone who reads only because of the consent (:meth:`Audience.withheld`)."""
        conv = self.store.conversation(conversation_id)
        flow = self._flow_of(conv) if conv is not None else None
        consent = Consent.of(flow)
        if not consent.parts:  # most flows: nothing more to read
            return frozenset()
        values = {a["step_id"]: a["value"] for a in self.store.answers(conversation_id)}  # one read for both answers
        aud = audience(consent, case_of(self.store, conv.case_id, conv.person_id), respondent_for(conv, flow),
                       consent_state(values.get(flow.consent_step)))
        return aud.withheld(self.relation(key, conversation_id), values.get(consent.which))

    def _flow_of(self, conv):
        """The flow version a conversation ran on (its own snapshot)."""
        return self.library.runner_for(conv.flow_sha, lambda: self.store.snapshot_source(conv.flow_sha)).flow

    def consented(self, conversation_id: int) -> tuple[bool, str]:
        """(consent given, who may read without it) for the flow the conversation ran on."""
        aud = self.audience(conversation_id)
        return aud.consent.step is None or aud.state == "yes", aud.consent.without_consent

    def relation(self, key: str, conversation_id: int) -> str:
        """How this person stands to the conversation: one of :data:`bot.audience.VIEWERS`."""
        if key == "cli":
            return "admin"  # the command line is run by the people who run the service
        owner = self.store.conversation_owner(conversation_id)
        row = self.store.person_by_key(key)
        if owner is None or row is None:
            return "stranger"
        me = row["id"]
        if owner["person_id"] == me:
            return "answerer"
        mine = self.store.roles_of(me)
        in_case = owner["case_id"] is not None
        holder = owner["practitioner_id"] if in_case else owner["person_id"]
        if in_case and holder == me and "practitioner" in mine:
            return "practitioner"
        if "supervisor" in mine and holder is not None and self.store.supervises(me, holder):
            return "supervisor"
        if "admin" in mine:
            return "admin"
        if in_case and any(c["person_id"] == me for c in self.store.conversations(case_id=owner["case_id"])):
            return "family"
        if mine & {"practitioner", "supervisor"}:
            return "other_practitioner"
        return "stranger"

    def can_read(self, key: str, conversation_id: int) -> bool:
        """Every read of a conversation asks :func:`bot.audience.decide`."""
        facts = self._facts(conversation_id)
        return facts is not None and decide(*facts, self.relation(key, conversation_id))

    def _check(self, key: str, conversation_id: int, action: str) -> None:
        if not self.can_read(key, conversation_id):
            raise Refused("refused", audit=(key, f"{action}.refused", f"conversation:{conversation_id}"))

    def transcript(self, key: str, conversation_id: int) -> dict:
        from bot.review.export import transcript_data

        with self._tx():
            if not self.can_read(key, conversation_id) and self._reads_flagged_only(key, conversation_id):
                return self._flagged_only(key, conversation_id)
            self._check(key, conversation_id, "transcript.read")
            self.store.audit(key, "transcript.read", f"conversation:{conversation_id}")
            withhold = self.withheld(key, conversation_id)
            self._mark_read(key, conversation_id, withhold)
            return transcript_data(self.store, conversation_id, internal_comments=self.sees_internal(key, conversation_id),
                                   telegram_names=self.telegram_names, withhold=withhold)

    def _reads_flagged_only(self, key: str, conversation_id: int) -> bool:
        """A conversation this person may not read (the person has not agreed to share it, or
        not with them) that has flagged lines, and this person is the case's worker or a
        safeguarding lead: they were told those two see what worried us, whatever the consent,
        and the reminders of those lines go to them. Without this, a flagged answer given
        before consent could be read by nobody and its reminder never cleared."""
        if key not in {f"tg:{i}" for i in self.config.leads} and self.relation(key, conversation_id) != "practitioner":
            return False
        return any(self.store.line_steps(conversation_id).values())

    def _flagged_only(self, key: str, conversation_id: int) -> dict:
        """The flagged lines of a conversation and the questions they answer, nothing else
        (see :meth:`_reads_flagged_only`); audited as such, and only those are marked read."""
        data, hidden = self._flagged_view(conversation_id)
        self.store.audit(key, "transcript.read.flagged_only", f"conversation:{conversation_id}")
        self._mark_read(key, conversation_id, hidden)
        return data

    def _flagged_view(self, conversation_id: int, said: dict | None = None) -> tuple[dict, frozenset]:
        """The flagged-only view of a conversation (:meth:`_flagged_only`), and the steps left
        out; ``said``: its :meth:`Store.line_steps`, if the caller has read them already."""
        from bot.review.export import transcript_data

        if said is None:
            said = self.store.line_steps(conversation_id)
        flagged_steps = {step for step, flagged in said.items() if flagged and step is not None}
        steps = {step for step in said if step is not None} | {a["step_id"] for a in self.store.answers(conversation_id)}
        hidden = frozenset(steps - flagged_steps)
        # the questions as the flow writes them: filled in, they could tell an answer not shown
        data = transcript_data(self.store, conversation_id, internal_comments=False,
                               telegram_names=self.telegram_names, withhold=hidden, safeguarding_marks=True,
                               plain_questions=True)
        # each flagged line, and the question it answers (the last one of its step asked before
        # it); not the other lines of the step (an earlier answer replaced with /back, say)
        lines = data["transcript"]
        keep: set[int] = set()
        for i, t in enumerate(lines):
            if t["from"] != "person" or not t["flagged"]:
                continue
            keep.add(i)
            if t["step_id"] is not None:
                asked = next((j for j in range(i - 1, -1, -1) if lines[j]["from"] == "bot"
                              and lines[j]["kind"] == "question" and lines[j]["step_id"] == t["step_id"]), None)
                if asked is not None:
                    keep.add(asked)
        data["transcript"] = [t for i, t in enumerate(lines) if i in keep]
        words = {(t["step_id"], t["text"]) for t in data["transcript"] if t["from"] == "person"}
        data["answers"] = [a for a in data["answers"] if (a["step_id"], a["raw"]) in words
                           or (a["step_id"], a["value"]) in words]
        kept = {a["step_id"] for a in data["answers"]}
        data["scores"] = {k: v for k, v in data["scores"].items() if k in kept}
        data["comments"] = []
        data["withheld_note"] = "flagged_only"  # the renderers say why the rest is not shown
        return data, hidden

    def archive_record(self, conversation_id: int, actor: str = "cli") -> dict | None:
        """What ``purge --export`` keeps of a conversation before it is deleted, by the rule of
        ``export``: what the people who run the service may read (``actor``: the command line),
        without the parts the person kept back from them. Of one not shared with them, only
        its flagged lines and the questions they answer, as the safeguarding leads may read them
        (:meth:`_flagged_only`); None if it has none: nothing of it is written. A conversation
        whose flow version cannot be read counts as not shared."""
        from bot.engine.library import FlowLoadError
        from bot.review.export import transcript_data

        try:
            readable = self.can_read(actor, conversation_id)
        except FlowLoadError:  # its flow version cannot be read, nor so who may read it: as not shared
            readable = False
        if readable:
            return transcript_data(self.store, conversation_id, telegram_names=self.telegram_names,
                                   withhold=self.withheld(actor, conversation_id))
        said = self.store.line_steps(conversation_id)
        return self._flagged_view(conversation_id, said)[0] if any(said.values()) else None

    # -- names (data minimisation, bot.names) ----------------------------------------
    @property
    def telegram_names(self) -> bool:
        return self.config.people_names == "telegram"

    def keeps_name(self, key: str) -> bool:
        """Whether to store the first name Telegram gives this person: staff, whose names tell
        families who invited them, or everyone if the deployment says people_names: telegram."""
        return self.telegram_names or self.has(key, "practitioner", "supervisor")

    def set_pseudonym(self, actor: str | None, conversation_id: int, pseudonym: str) -> str:
        """Name the person who answered this conversation, within its case. The practitioner
        holding the case, an admin, or the CLI (actor None) may; audited."""
        from bot.names import clean_pseudonym

        value = clean_pseudonym(pseudonym)
        with self._tx():
            owner = self.store.conversation_owner(conversation_id)
            allowed = owner is not None and owner["case_id"] is not None and (
                actor is None or self.has(actor, "admin")
                or self.relation(actor, conversation_id) == "practitioner")
            if not allowed:
                raise Refused("refused", audit=(actor, "pseudonym.set.refused", f"conversation:{conversation_id}"))
            self.store.set_pseudonym(owner["case_id"], owner["person_id"], value, actor or "cli")
            self.store.audit(actor or "cli", "pseudonym.set", f"case:{owner['case_ref']}",
                             f"person {owner['person_id']}")
            return owner["case_ref"]

    # -- per-case content the practitioner writes (issue 13) -----------------------------
    CASE_INFO_MAX = 2000  # characters: a danger statement or a bottom line is a paragraph, and it is shown in a message

    def _cases_for(self, actor: str | None, ref: str, practitioner: str | None) -> list[dict]:
        """The cases ``ref`` this actor may write for: the CLI (None) and admins any; a
        practitioner their own; a supervisor their team's."""
        cases = self.store.cases_by_ref(ref)
        if practitioner is not None:
            row = self.store.person_by_key(practitioner)
            cases = [c for c in cases if row and c["practitioner_id"] == row["id"]]
        if actor is None:
            return cases
        return [c for c in cases if handles_case(self.store, actor, c["practitioner_id"])]

    def set_case_info(self, actor: str | None, ref: str, key: str, text: str | None,
                      practitioner: str | None = None) -> dict:
        """Write (``text`` None: remove) the practitioner's text ``key`` for case ``ref``, shown in
        flows as ``{{ case.KEY }}``. The practitioner holding the case, their supervisor, an admin
        or the CLI (actor None) may; audited (the key, never the words)."""
        from bot.engine.loader import CASE_KEY_RE

        if not CASE_KEY_RE.match(key or ""):
            raise ValueError(f"'{key}' cannot be a case key: use a-z, 0-9 and _, starting with a letter, "
                             "e.g. danger_statement")
        if text is not None:
            text = text.strip()
            if not text:
                raise ValueError("the text is empty; write what the family should read")
            if len(text) > self.CASE_INFO_MAX:
                raise ValueError(f"the text has {len(text)} characters; keep it under {self.CASE_INFO_MAX} so it fits"
                                 " in a message, or split it over two keys")
        with self._tx():
            cases = self._cases_for(actor, ref, practitioner)
            if not cases:
                raise Refused("refused", audit=(actor or "cli", "case.info.refused", f"case:{ref}", key))
            if len(cases) > 1:
                raise ValueError(f"more than one practitioner has a case {ref}; say whose it is with --practitioner ID")
            self.store.set_case_info(cases[0]["id"], key, text, actor or "cli")
            self.store.audit(actor or "cli", "case.info.set" if text is not None else "case.info.remove",
                             f"case:{ref}", key)
            return {"ref": ref, "key": key, "characters": len(text or "")}

    def case_info(self, actor: str | None, ref: str, practitioner: str | None = None) -> dict[str, str]:
        """The texts written for case ``ref``, for those who may write them; audited."""
        with self._tx():
            cases = self._cases_for(actor, ref, practitioner)
            if len(cases) != 1:
                if len(cases) > 1:
                    raise ValueError(f"more than one practitioner has a case {ref}; say whose it is with --practitioner ID")
                raise Refused("refused", audit=(actor or "cli", "case.info.read.refused", f"case:{ref}"))
            self.store.audit(actor or "cli", "case.info.read", f"case:{ref}")
            return self.store.case_info(cases[0]["id"])

    def case_people(self, ref: str, practitioner: str | None = None) -> list[dict]:
        """(CLI) The people who answered in case ``ref``: person key, one conversation id, pseudonym."""
        cases = self.store.cases_by_ref(ref)
        if practitioner is not None:
            row = self.store.person_by_key(practitioner)
            cases = [c for c in cases if row and c["practitioner_id"] == row["id"]]
        if len(cases) > 1:
            raise ValueError(f"several practitioners have a case {ref}; add --practitioner ID")
        people: dict = {}
        for case in cases:
            for conv in self.store.conversations(case_id=case["id"]):
                people.setdefault(conv["person_key"], {"key": conv["person_key"], "conversation": conv["id"],
                                                       "pseudonym": conv.get("pseudonym")})
        return list(people.values())

    def sees_internal(self, key: str, conversation_id: int) -> bool:
        """Internal comments (and the quiet safeguarding marks, which follow them) are for staff:
        the practitioner, their supervisors, admins, and a member of staff reading their own
        rehearsal or practice (a conversation with no case). A family member sees shared ones
        only, and so does a member of staff who answered in someone's case as family (a kinship
        carer who works for the council): there they are the family, not the staff."""
        relation = self.relation(key, conversation_id)
        if relation in ("practitioner", "supervisor", "admin"):
            return True
        if relation != "answerer" or not self.has(key, "practitioner", "supervisor"):
            return False
        owner = self.store.conversation_owner(conversation_id)
        return owner is not None and owner["case_id"] is None

    def _mark_read(self, key: str, conversation_id: int, withheld: frozenset = frozenset()) -> None:
        """Someone with access (not the person who wrote the answers) has now read them: all
        but the ``withheld`` steps, which they were not shown (they stay unread for the worker)."""
        owner = self.store.conversation_owner(conversation_id)
        row = self.store.person_by_key(key)
        if owner is not None and row is not None and owner["person_id"] != row["id"]:
            self.store.mark_read(conversation_id, key, except_steps=withheld)

    def worth_a_look(self, key: str) -> list[dict]:
        """Open review-tier items this person should look at, oldest first: a practitioner's
        own cases, a supervisor's team's, everything for admins and safeguarding leads."""
        with self._tx():
            lead = key in {f"tg:{i}" for i in self.config.leads}
            visible = None if lead else self._practitioners_visible_to(key)
            if visible == [] or (visible is not None and not self.has(key, "practitioner", "supervisor")):
                raise Refused("refused", audit=(key, "review_items.list.refused"))
            self.store.audit(key, "review_items.list")
            items = self.store.review_items(practitioner_ids=visible)
            return items if lead else [i for i in items if self.sees_review_item(key, i["conversation_id"])]

    def sees_review_item(self, key: str, conversation_id: int | None) -> bool:
        """A review item quotes the person's words: on a conversation this person may not read
        (no consent yet, or not with them) only the case's worker and the safeguarding leads see
        it, as the person was told ("your worker and the person who keeps children safe")."""
        if key in {f"tg:{i}" for i in self.config.leads}:
            return True
        if conversation_id is None:  # outside any conversation: as the store's rule already decides
            return True
        return self.relation(key, conversation_id) == "practitioner" or self.can_read(key, conversation_id)

    def cases(self, key: str) -> list[dict]:
        with self._tx():
            visible = self._practitioners_visible_to(key)
            if visible == []:
                raise Refused("refused", audit=(key, "cases.list.refused"))
            if visible is None:
                visible = self.store.case_holders()
            self.store.audit(key, "cases.list")
            return self.store.cases_of(visible)

    def cases_page(self, key: str, limit: int = 200) -> tuple[list[dict], int]:
        """:meth:`cases` a page at a time (the website): the cases needing attention and then
        the most recently active, up to ``limit`` more; (rows, how many cases in all). The same
        rule (the practitioners this person may read) and the same audit entry."""
        with self._tx():
            visible = self._practitioners_visible_to(key)
            if visible == []:
                raise Refused("refused", audit=(key, "cases.list.refused"))
            rows, total = self.store.cases_page(visible, self.store.attention_case_ids(), limit)
            self.store.audit(key, "cases.list")
            return rows, total

    def _one_case(self, actor: str, ref: str, cases: list[dict], practitioner: str | None, action: str,
                  message: str | None = None) -> list[dict]:
        """The case ``ref`` of ``practitioner`` (a person key) among ``cases``; refused if none;
        :class:`AmbiguousCase` if several practitioners hold one and nobody said whose."""
        if practitioner is not None:
            holder = self.store.person_by_key(practitioner)
            cases = [c for c in cases if holder is not None and c["practitioner_id"] == holder["id"]]
        if not cases:
            raise Refused("refused", audit=(actor, f"{action}.refused", f"case:{ref}"))
        if len(cases) > 1:
            people = [self.store.get_person(c["practitioner_id"]) or {} for c in cases]
            raise AmbiguousCase(ref, [(p.get("key") or "", p.get("display_name") or p.get("key") or "") for p in people],
                                message)
        return cases

    def case(self, key: str, ref: str, action: str = "case.read", practitioner: str | None = None) -> list[dict]:
        """Conversations in the case with this reference that the person may read; audited as
        ``action`` (the website's chart of the case: ``chart.read``). Where two practitioners
        use the reference and this person may see both, ``practitioner`` (a person key) says
        whose; without it, :class:`AmbiguousCase`."""
        with self._tx():
            visible = self._practitioners_visible_to(key)
            rows = [c for c in self.store.cases_by_ref(ref) if visible is None or c["practitioner_id"] in visible]
            rows = self._one_case(key, ref, rows, practitioner, action)
            out = []
            for case in rows:
                convs = self.store.conversations(case_id=case["id"])
                flags = self.store.review_items(conversation_ids=[c["id"] for c in convs])
                for conv in convs:
                    # Review-tier items go to the top of the case, with their reason.
                    conv["shared"] = self.can_read(key, conv["id"])
                    conv["review_items"] = ([f for f in flags if f["conversation_id"] == conv["id"]]
                                            if conv["shared"] or self.sees_review_item(key, conv["id"]) else [])
                    conv["consent"] = self.audience(conv["id"]).state  # not_asked | yes | no
                    # the parts the person chose not to share with this reader (consent.which)
                    # Not marked read here: the case view (and /trend, the charts, /case REF cancel)
                    # shows scores and the review list, never the free-text answers. Only the
                    # transcript, where the words are shown, marks them read (nothing unread).
                    conv["withheld"] = hidden = self.withheld(key, conv["id"]) if conv["shared"] else frozenset()
                    conv["scores"] = ({s["step_id"]: s["value"] for s in self.store.scale_scores(conv["id"])
                                       if s["step_id"] not in hidden} if conv["shared"] else {})
                    conv["case_ref"] = case["ref"]
                    out.append(conv)
            self.store.audit(key, action, f"case:{ref}")
            out.sort(key=lambda c: not c["review_items"])  # stable: otherwise in order
            return out

    @staticmethod
    def sees_reminder(conv: dict, reminder: dict) -> bool:
        """Whether the reader of the case view (``conv``: a row of :meth:`case`) may see, and
        cancel, this reminder of the conversation: only of a conversation they may read, and
        not one set by an answer kept back from them. Its time tells what was answered (a date
        reminder is due the day before the date the person gave)."""
        return bool(conv.get("shared")) and reminder.get("conversation_id") == conv["id"] \
            and reminder.get("step_id") not in conv.get("withheld", frozenset())

    def summary_sources(self, key: str | None, ref: str, practitioner: str | None = None) -> tuple[list[dict], int]:
        """For the coordinator's summary of case ``ref`` (bot.review.summary): the conversations in
        it this person may read, by the same rule as transcripts (:meth:`can_read`), and how many
        others there are (not shared: the person has not agreed, or not with this reader).
        The CLI (None) reads as the people who run the service. Audited."""
        actor = key or "cli"
        with self._tx():
            visible = None if key is None else self._practitioners_visible_to(key)
            cases = [c for c in self.store.cases_by_ref(ref) if visible is None or c["practitioner_id"] in visible]
            # two workers chose the same reference: never one summary of two families
            cases = self._one_case(actor, ref, cases, practitioner, "summary",
                                   f"more than one practitioner has a case {ref}; say whose it is"
                                   + (" with --practitioner ID" if key is None else ""))
            readable, hidden = [], 0
            for case in cases:
                for conv in self.store.conversations(case_id=case["id"]):
                    if self.can_read(actor, conv["id"]):
                        readable.append(conv)
                    else:
                        hidden += 1
            self.store.audit(actor, "summary.read", f"case:{ref}",
                             f"{len(readable)} conversations" + (f", {hidden} not shared" if hidden else ""))
            return readable, hidden

    def comment(self, key: str, conversation_id: int, text: str, step_id: str | None = None,
                shared: bool = False) -> tuple[int, str | None]:
        """A supervisor's (or admin's) comment, internal (staff only) unless ``shared`` (the
        family sees it too); returns (comment id, key of the practitioner to notify)."""
        with self._tx():
            if not self.has(key, "supervisor") or not self.can_read(key, conversation_id):
                raise Refused("refused", audit=(key, "comment.refused", f"conversation:{conversation_id}"))
            if step_id is not None and (step_id in self.withheld(key, conversation_id)
                                        or not any(a["step_id"] == step_id for a in self.store.answers(conversation_id))):
                raise ValueError(f"conversation {conversation_id} has no answer '{step_id}'")
            me = self.pid(key)
            visibility = "shared" if shared else "internal"
            comment_id = self.store.add_comment(conversation_id, me, text, step_id, visibility)
            self.store.mark_reviewed(conversation_id, me)
            self.store.audit(key, "comment.add", f"conversation:{conversation_id}",
                             " ".join(x for x in (visibility, step_id) if x))
            owner = self.store.conversation_owner(conversation_id)
            holder = owner["practitioner_id"] if owner["case_id"] is not None else owner["person_id"]
            person = self.store.get_person(holder) if holder else None
            # Only someone who may still read the conversation is told (a revoked worker is not);
            # otherwise the holder's supervisor, or nobody, said in the audit.
            candidates = ([person["key"]] if person else []) + (self.store.supervisor_keys(holder) if holder else [])
            notify = next((k for k in candidates if k != key and self.can_read(k, conversation_id)), None)
            if person and notify != person["key"] and person["key"] != key:
                self.store.audit(key, "comment.notify.elsewhere" if notify else "comment.notify.nobody",
                                 f"conversation:{conversation_id}")
            return comment_id, notify

    def review_queue(self, key: str) -> list[dict]:
        with self._tx():
            if not self.has(key, "supervisor"):
                raise Refused("refused", audit=(key, "review.list.refused"))
            me = self.pid(key)
            visible = self._practitioners_visible_to(key)
            if visible is None:
                visible = self.store.practitioner_ids()
            self.store.audit(key, "review.list")
            return [r for r in self.store.unreviewed(visible, me) if self.can_read(key, r["id"])]

    def audit_entries(self, key: str, limit: int = 100, before_id: int | None = None) -> list[dict]:
        """The audit log, newest first, for administrators only; reading it is audited too."""
        with self._tx():
            if not self.has(key, "admin"):
                raise Refused("refused", audit=(key, "audit.read.refused"))
            rows = self.store.audit_page(limit, before_id)
            self.store.audit(key, "audit.read", None, f"before {before_id}" if before_id else None)
            return rows

    def export_case(self, actor: str, ref: str) -> list[dict]:
        """Transcript data for every conversation in the case (CLI exports: actor 'cli')."""
        from bot.review.export import transcript_data

        with self._tx():
            cases = self.store.cases_by_ref(ref)
            if not cases:
                raise Refused("refused", audit=(actor, "export.refused", f"case:{ref}"))
            convs = [c["id"] for k in cases for c in self.store.conversations(case_id=k["id"])]
            readable = [c for c in convs if self.can_read(actor, c)]
            if not readable and convs:
                raise Refused("refused", audit=(actor, "export.refused", f"case:{ref}"))
            items = [transcript_data(self.store, c, telegram_names=self.telegram_names, withhold=self.withheld(actor, c))
                     for c in readable]
            self.store.audit(actor, "export", f"case:{ref}",
                             f"{len(items)} conversations" + (f", {len(convs) - len(items)} not shared" if len(convs) > len(items) else ""))
            return items

    def mydata(self, key: str) -> dict:
        """What is stored about this person, and for each conversation who can see it now.

        Words of theirs kept in safeguarding records (a disclosure typed outside any
        conversation is in no transcript) are counted, not shown: a phone may be shared with
        the person someone is worried about, and the council may withhold such words where giving
        them would likely cause serious harm (DPA 2018 Sch 3), which is a person's decision,
        not the bot's. /mydata says they exist and how to ask for a copy (a subject access
        request); the tier (alert or quiet review) and staff's notes are never shown."""
        with self._tx():
            row = self.store.person_by_key(key)
            if row is None:
                return {"person": None, "conversations": [], "roles": [], "safeguarding_records": 0}
            data = self.store.data_about(row["id"])
            for conv in data["conversations"]:
                conv["who_can_see"] = self.audience(conv["id"]).now()
            self.store.audit(key, "mydata.read", key)
            return data

    def privacy(self, key: str) -> str:
        """The /privacy notice for this person (bot.audience.notice): who can see each of their
        conversations now, how long things are kept (the retention configuration), their rights."""
        from bot.audience import notice

        with self._tx():
            row = self.store.person_by_key(key)
            convs = self.store.conversations(person_id=row["id"]) if row else []
            seen = [(c["flow_id"], self.audience(c["id"])) for c in convs]
            young = [c["respondent"] for c in convs if c["respondent"] in ("child", "young_person")]
            staff = self.has(key, "practitioner", "supervisor")
            self.store.audit(key, "privacy.read", key)
            return notice(young[-1] if young else (convs[-1]["respondent"] if convs else None),
                          [(f, a) for f, a in seen if a is not None], self.config.retention().days, staff=staff)

    def invitation(self, view: "InviteView") -> str:
        """What someone opening an invitation reads: who invited them to what, who will see
        the answers (bot.audience) and how Telegram keeps the chat; then the consent question."""
        flow = self.library.get(view.flow_id)
        inv = self.store.invite(view.invite_id)
        aud = audience(Consent.of(flow), case_of(self.store, inv["case_id"], None),
                       inv.get("respondent") or respondent_for(None, flow), "not_asked")
        name = view.practitioner_name[:1].upper() + view.practitioner_name[1:]
        return msg("staff.consent", worker=name, flow=view.flow_title, privacy=f"{aud.intro()} {aud.telegram()}")
