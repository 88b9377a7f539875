"""Deployment configuration: one YAML file (``--config`` or ``RESTORATIVE_CONFIG``).

```yaml
safeguarding:
  leads: [111111111, 222222222]   # Telegram user ids of the designated safeguarding leads
  repeat_minutes: 15              # re-send an unacknowledged alert this often
  digest_lines: 20                # alerts listed in one digest to a lead; the rest are counted
  out_of_hours: "0300 123 4567"   # the council's Emergency Duty Team, shown with the help
  lexicon: [local-safeguarding.yaml]   # extra lexicon/response files merged on the default
  review_within_hours: 24         # a "worth a look" item not looked at by then reminds the
                                  # practitioner; as long again, their supervisor
read_within_hours: 48             # an answer nobody has read by then reminds the practitioner;
                                  # as long again, their supervisor
invites:
  expiry_days: 7
demo_flow: scaling-checkin        # what an uninvited person may try (omit for nothing)
people_names: pseudonyms          # or telegram: keep and show the first names Telegram gives
allow_unreviewed_languages: false # true: also offer translations no qualified translator has
                                  # checked (the bot then says so to the person, in their language)
roles:                            # seeded at start; `restorative-bot role grant` also works
  admin: [333333333]
  supervisor: [444444444]
  practitioner: [555555555]
teams:                            # supervisor id: [practitioner ids]
  444444444: [555555555]
limits:                           # per-person Telegram rate limits (these are the defaults)
  stranger_burst: 8               # people without a role: updates at once,
  stranger_per_minute: 12         # then this many a minute,
  stranger_per_day: 300           # and at most this many a day (so at most this many stored)
  member_burst: 60                # families and staff
  member_per_minute: 300
  strangers_burst: 10             # everyone without a role together
  strangers_per_second: 5
  stranger_backlog: 2             # a stranger's updates waiting behind their own unsent replies
web:                              # the review website (restorative-bot web, serve --web-port)
  url: https://review.example.org # its address as staff open it (sign-in links start with it)
  link_minutes: 10                # a sign-in link from /web works once, for this long
  session_hours: 8                # then the session lasts at most this long
worker_present:                   # /with: a session on the worker's own device (these are the defaults)
  handback_minutes: 10            # after it ends, words typed there are taken as the answering
                                  # person's (still holding the device), not the worker's,
                                  # and the worker's own commands wait
  idle_minutes: 120               # while it runs, nothing of the worker's is sent to the device;
                                  # a session left untouched this long no longer holds that back
reminders:                        # bot/schedule.py (these are the defaults)
  nudge_after_hours: 48           # an unfinished conversation is nudged this long after its last step,
  nudge_times: 2                  # at most this many times
  quiet_hours: "20:00-08:00"      # nothing is sent then, in local time (a person may choose their own,
                                  # and days without reminders, in /reminders)
  timezone: Europe/London
retention:                        # days each record type is kept, or never (defaults: README)
  completed: 730                  # answers and transcripts of finished conversations
  abandoned: 180                  # conversations stopped or left unfinished
  practice: 30                    # practice conversations and rehearsals
  alerts: 2190                    # acknowledged safeguarding alerts, review items, missed disclosures
  audit: 2190
  invitations: 90
  inputs: 30
  schedule: 90                    # reminders sent or cancelled
data_protection:
  contact: admin                  # told of each /delete request: a Telegram user id, or a role
  key_file: /etc/restorative-bot/db.key  # the database key (encryption at rest), relative to this
                                  # file's folder; RESTORATIVE_DB_KEY and RESTORATIVE_DB_KEY_FILE come
                                  # first; without any, ~/.config/restorative-bot/db.key
```
Errors come as ``file:line:col: message`` like flow errors.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine.yamlpos import SourceError, YDict, parse_yaml, read_source

_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,22}[0-9]")
ROLES = ("admin", "supervisor", "practitioner", "family")


class ConfigError(Exception):
    def __init__(self, errors: list[SourceError]):
        super().__init__("\n".join(map(str, errors)))
        self.errors = errors


@dataclass
class Config:
    path: str | None = None
    leads: list[int] = field(default_factory=list)
    repeat_minutes: float = 15.0
    digest_lines: int = 20  # alerts listed in one reminder/flood digest; the rest are counted
    lexicon: list[str] = field(default_factory=list)
    out_of_hours: str | None = None  # the council's Emergency Duty Team number, shown with the help
    review_within_hours: float = 24.0
    read_within_hours: float = 48.0
    invite_expiry_days: float = 7.0
    demo_flow: str | None = None
    people_names: str = "pseudonyms"  # pseudonyms | telegram (store and show Telegram first names)
    roles: dict[str, list[int]] = field(default_factory=dict)
    teams: dict[int, list[int]] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)  # RateLimits fields to override
    reminders: dict = field(default_factory=dict)  # bot.schedule.Schedule keyword arguments to override
    allow_unreviewed_languages: bool = False  # offer unreviewed translations too (issue 19)
    web_url: str | None = None  # the review website's address, for the sign-in links /web sends
    web_link_minutes: float = 10.0  # a sign-in link works once, for this long
    web_session_hours: float = 8.0  # a website session lasts at most this long
    retention_days: dict = field(default_factory=dict)  # record type -> days (None: never); bot.retention
    dp_contact: int | str = "admin"  # told of erasure requests: a Telegram user id, or a role
    db_key_file: str | None = None  # data_protection: key_file: the database key's file (bot.dbkey)
    present_handback_minutes: float = 10.0  # worker_present: handback_minutes
    present_idle_minutes: float = 120.0  # worker_present: idle_minutes

    def keyring(self, *, create: bool = True):
        """The database key, when this configuration names its file (None: the store finds it,
        from the environment or the default key file). The environment still comes first."""
        if self.db_key_file is None:
            return None
        from bot import dbkey

        return dbkey.load_keyring(key_file=Path(self.db_key_file), create=create)

    def retention(self):
        from bot.retention import Retention

        return Retention.of(self.retention_days)

    def schedule(self, store, clock=None):
        from bot.schedule import Schedule

        return Schedule(store, clock=clock, **self.reminders)

    def escalation(self, store, safeguarding):
        """Who is told of an alert and when (bot.escalation), as this configuration says: the
        same for `serve` and the website."""
        from bot.escalation import Escalation

        return Escalation(store, safeguarding, leads=self.leads, repeat_minutes=self.repeat_minutes,
                          telegram_names=self.people_names == "telegram", digest_lines=self.digest_lines,
                          present_idle_minutes=self.present_idle_minutes,
                          present_handback_minutes=self.present_handback_minutes)

    def reading(self, store, access):
        """Unread answers and review items, and their reminders (bot.reading)."""
        from bot.reading import Reading

        return Reading(store, access, leads=self.leads, read_within_hours=self.read_within_hours,
                       review_within_hours=self.review_within_hours)

    def rate_limits(self):
        from bot.frontends.telegram.limits import RateLimits

        return RateLimits(**self.limits)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Config":
        path = path or os.environ.get("RESTORATIVE_CONFIG")
        if not path:
            return cls()
        p = Path(path)
        text, errors = read_source(p)
        if text is None:
            raise ConfigError(errors)
        data, errors = parse_yaml(text, str(p))
        if errors:
            raise ConfigError(errors)
        return cls.from_data(data, str(p))

    @classmethod
    def from_data(cls, data, name: str) -> "Config":
        errors: list[SourceError] = []

        def err(pos, message):
            errors.append(SourceError(name, pos.line, pos.col, message))

        cfg = cls(path=name)
        if data is None:
            return cfg
        if not isinstance(data, YDict):
            raise ConfigError([SourceError(name, 1, 1, "the configuration must be a mapping (safeguarding:, invites:, roles: ...)")])

        def ids(node, where, pos) -> list[int]:
            if not isinstance(node, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in node):
                err(pos, f"{where} must be a list of Telegram user ids (numbers), e.g. [111111111]")
                return []
            return list(node)

        for key in data:
            if key not in ("safeguarding", "invites", "demo_flow", "roles", "teams", "limits", "read_within_hours",
                           "reminders", "people_names", "retention", "data_protection", "web",
                           "allow_unreviewed_languages", "worker_present"):
                err(data.key_pos_of(key), f"unknown key '{key}'; use safeguarding, invites, demo_flow, roles, teams,"
                                          " limits, read_within_hours, reminders, people_names, retention,"
                                          " data_protection, web, worker_present or allow_unreviewed_languages")
        if "allow_unreviewed_languages" in data:
            value = data["allow_unreviewed_languages"]
            if not isinstance(value, bool):
                err(data.pos_of("allow_unreviewed_languages"), "'allow_unreviewed_languages' must be true or false")
            else:
                cfg.allow_unreviewed_languages = value
        sg = data.get("safeguarding")
        if sg is not None:
            if not isinstance(sg, YDict):
                err(data.pos_of("safeguarding"), "'safeguarding' must be a mapping with leads, repeat_minutes, lexicon")
            else:
                for key in sg:
                    if key not in ("leads", "repeat_minutes", "lexicon", "review_within_hours", "out_of_hours",
                                   "digest_lines"):
                        err(sg.key_pos_of(key), f"unknown key '{key}' under safeguarding; use leads, repeat_minutes,"
                                                " digest_lines, lexicon, review_within_hours or out_of_hours")
                if "digest_lines" in sg:
                    value = sg["digest_lines"]
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        err(sg.pos_of("digest_lines"), "'digest_lines' must be a whole number of alerts, 1 or more")
                    else:
                        cfg.digest_lines = value
                if "out_of_hours" in sg:
                    value = sg["out_of_hours"]
                    if not isinstance(value, str) \
                            or not _PHONE.fullmatch(str(value).strip()):
                        err(sg.pos_of("out_of_hours"), "'out_of_hours' must be the council's out-of-hours (Emergency"
                                                       " Duty Team) phone number in quotes, e.g. \"0300 123 4567\"")
                    else:
                        cfg.out_of_hours = str(value).strip()
                if "review_within_hours" in sg:
                    value = sg["review_within_hours"]
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                        err(sg.pos_of("review_within_hours"), "'review_within_hours' must be a number of hours above 0")
                    else:
                        cfg.review_within_hours = float(value)
                if "leads" in sg:
                    cfg.leads = ids(sg["leads"], "'leads'", sg.pos_of("leads"))
                if "repeat_minutes" in sg:
                    value = sg["repeat_minutes"]
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                        err(sg.pos_of("repeat_minutes"), "'repeat_minutes' must be a number of minutes above 0")
                    else:
                        cfg.repeat_minutes = float(value)
                if "lexicon" in sg:
                    lex = sg["lexicon"]
                    if not isinstance(lex, list) or not all(isinstance(x, str) for x in lex):
                        err(sg.pos_of("lexicon"), "'lexicon' must be a list of file paths")
                    else:
                        base = Path(name).parent
                        cfg.lexicon = [str(base / x) for x in lex]
        if "read_within_hours" in data:
            value = data["read_within_hours"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                err(data.pos_of("read_within_hours"), "'read_within_hours' must be a number of hours above 0, e.g. 48")
            else:
                cfg.read_within_hours = float(value)
        inv = data.get("invites")
        if isinstance(inv, YDict):
            value = inv.get("expiry_days", 7)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                err(inv.pos_of("expiry_days"), "'expiry_days' must be a number of days above 0")
            else:
                cfg.invite_expiry_days = float(value)
        elif inv is not None:
            err(data.pos_of("invites"), "'invites' must be a mapping, e.g. invites: {expiry_days: 7}")
        if "people_names" in data:
            if data["people_names"] not in ("pseudonyms", "telegram"):
                err(data.pos_of("people_names"), "'people_names' must be pseudonyms (the default: practitioners name "
                    "people in a case) or telegram (store and show the first names Telegram gives)")
            else:
                cfg.people_names = data["people_names"]
        if "demo_flow" in data:
            if not isinstance(data["demo_flow"], str):
                err(data.pos_of("demo_flow"), "'demo_flow' must be a flow id")
            else:
                cfg.demo_flow = data["demo_flow"]
        roles = data.get("roles")
        if isinstance(roles, YDict):
            for role, members in roles.items():
                if role not in ROLES:
                    err(roles.key_pos_of(role), f"unknown role '{role}'; use one of {', '.join(ROLES)}")
                else:
                    cfg.roles[role] = ids(members, f"the {role} list", roles.pos_of(role))
        elif roles is not None:
            err(data.pos_of("roles"), "'roles' must be a mapping from a role to a list of Telegram user ids")
        teams = data.get("teams")
        if isinstance(teams, YDict):
            for sup, members in teams.items():
                if isinstance(sup, bool) or not isinstance(sup, int):
                    err(teams.key_pos_of(sup), "each key under 'teams' must be a supervisor's Telegram user id")
                else:
                    cfg.teams[sup] = ids(members, "a team", teams.pos_of(sup))
        elif teams is not None:
            err(data.pos_of("teams"), "'teams' must be a mapping from a supervisor id to a list of practitioner ids")
        limits = data.get("limits")
        if isinstance(limits, YDict):
            from dataclasses import fields

            from bot.frontends.telegram.limits import RateLimits

            known = [f.name for f in fields(RateLimits)]
            for key, value in limits.items():
                if key not in known:
                    err(limits.key_pos_of(key), f"unknown key '{key}' under limits; use {', '.join(known)}")
                elif key == "stranger_loose_order":
                    if not isinstance(value, bool):
                        err(limits.pos_of(key), f"'{key}' must be true or false")
                    else:
                        cfg.limits[key] = value
                elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    err(limits.pos_of(key), f"'{key}' must be a number above 0")
                else:
                    cfg.limits[key] = value
        elif limits is not None:
            err(data.pos_of("limits"), "'limits' must be a mapping, e.g. limits: {stranger_per_minute: 30}")
        web = data.get("web")
        if isinstance(web, YDict):
            _web(web, cfg, err)
        elif web is not None:
            err(data.pos_of("web"), "'web' must be a mapping, e.g. web: {url: https://review.example.org}")
        wp = data.get("worker_present")
        if isinstance(wp, YDict):
            for key, value in wp.items():
                if key not in ("handback_minutes", "idle_minutes"):
                    err(wp.key_pos_of(key), f"unknown key '{key}' under worker_present; use handback_minutes or"
                                            " idle_minutes")
                elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    err(wp.pos_of(key), f"'{key}' must be a number of minutes, 0 or more, e.g. 10")
                else:
                    setattr(cfg, f"present_{key}", float(value))
        elif wp is not None:
            err(data.pos_of("worker_present"), "'worker_present' must be a mapping, e.g. worker_present: "
                                               "{handback_minutes: 10}")
        rem = data.get("reminders")
        if isinstance(rem, YDict):
            _reminders(rem, cfg, err)
        elif rem is not None:
            err(data.pos_of("reminders"), "'reminders' must be a mapping, e.g. reminders: {nudge_after_hours: 48}")
        ret = data.get("retention")
        if isinstance(ret, YDict):
            from bot.retention import parse

            cfg.retention_days = parse(ret, ret.pos_of, err)
        elif ret is not None:
            err(data.pos_of("retention"), "'retention' must be a mapping of record types to days, e.g. "
                                          "retention: {completed: 730, practice: 30}")
        dp = data.get("data_protection")
        if isinstance(dp, YDict):
            for key, value in dp.items():
                if key == "key_file":
                    if isinstance(value, str) and value.strip():
                        base = Path(name).parent if name else Path(".")
                        cfg.db_key_file = str(base / os.path.expanduser(value.strip()))
                    else:
                        err(dp.pos_of(key), "'key_file' must be the path of the database key file, e.g. "
                                            "key_file: /etc/restorative-bot/db.key")
                elif key != "contact":
                    err(dp.key_pos_of(key), f"unknown key '{key}' under data_protection; use contact or key_file")
                elif (isinstance(value, int) and not isinstance(value, bool)) or value in ROLES[:3]:
                    cfg.dp_contact = value
                else:
                    err(dp.pos_of(key), "'contact' must be the Telegram user id of the data-protection contact,"
                                        " or a role (admin, supervisor or practitioner), e.g. contact: admin")
        elif dp is not None:
            err(data.pos_of("data_protection"), "'data_protection' must be a mapping, e.g. data_protection: "
                                                "{contact: admin}")
        if errors:
            raise ConfigError(errors)
        return cfg


def _reminders(rem: YDict, cfg: Config, err) -> None:
    import re
    from zoneinfo import ZoneInfo

    for key, value in rem.items():
        if key == "nudge_after_hours":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                err(rem.pos_of(key), "'nudge_after_hours' must be a number of hours above 0, e.g. 48")
            else:
                cfg.reminders[key] = float(value)
        elif key == "nudge_times":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                err(rem.pos_of(key), "'nudge_times' must be a whole number, 0 or more, e.g. 2 (0: no nudges)")
            else:
                cfg.reminders[key] = value
        elif key == "quiet_hours":
            m = re.fullmatch(r"\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)\s*", str(value))
            if not m:
                err(rem.pos_of(key), "'quiet_hours' must be two 24-hour times, e.g. \"20:00-08:00\"")
            else:
                cfg.reminders["quiet_from"] = f"{m.group(1)}:{m.group(2)}"
                cfg.reminders["quiet_until"] = f"{m.group(3)}:{m.group(4)}"
        elif key == "timezone":
            try:
                ZoneInfo(str(value))
                cfg.reminders["timezone_name"] = str(value)
            except (ValueError, KeyError, OSError):
                err(rem.pos_of(key), f"unknown time zone '{value}'; use a name like Europe/London")
        else:
            err(rem.key_pos_of(key), f"unknown key '{key}' under reminders; use nudge_after_hours, nudge_times,"
                                     " quiet_hours or timezone")


def _web(web: YDict, cfg: Config, err) -> None:
    for key, value in web.items():
        if key == "url":
            text = str(value).strip().rstrip("/")
            if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", text):
                err(web.pos_of(key), "'url' must be the website's address, e.g. https://review.example.org")
            else:
                cfg.web_url = text
        elif key in ("link_minutes", "session_hours"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                err(web.pos_of(key), f"'{key}' must be a number above 0")
            else:
                setattr(cfg, f"web_{key}", float(value))
        else:
            err(web.key_pos_of(key), f"unknown key '{key}' under web; use url, link_minutes or session_hours")
