"""The review website as a Starlette application: server-rendered pages (Jinja2, autoescape
on), plain HTML forms, no JavaScript at all.

Each page calls the same access function as its Telegram command, in one database thread
of its own (its own connection to the store), so a refusal, a consent rule or an audit
entry is exactly the bot's. A refusal reads the same whether the thing asked for exists or
not. Answers and comments travel in POST bodies, never in a URL; the request log names the
route and the status, never a path, a query or a form.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FunctionLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.access import Access, AmbiguousCase, Refused
from bot.messages import msg
from bot.names import person_label
from bot.respondent import described
from bot.review import charts as charts_mod
from bot.review.export import line_note, md_quote, question_line, status_words
from bot.web.signin import Session, SignIn, Throttle, csrf_token

log = logging.getLogger("bot.web")

SESSION_COOKIE = "rb_session"
PRE_COOKIE = "rb_signin"  # the sign-in form's own CSRF secret (there is no session yet)
# When the site's address is https the cookies carry the prefixes browsers enforce: a
# __Host- cookie is only accepted with Secure, Path=/ and no Domain, so neither a plain-http
# page nor a sibling host can set or overwrite it (the sign-in form's cookie is on /signin,
# so __Secure-). A cookie from before the change is ignored: that person signs in again.
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
SECURE_PRE_COOKIE = "__Secure-" + PRE_COOKIE
HSTS = b"max-age=31536000"  # a year; not includeSubDomains: the council's other hosts are not ours
COMMENT_MAX = 4000
SIGNIN_BODY_MAX = 4096  # the sign-in form is a code and a token: about 150 bytes
SIGNIN_FIELDS_MAX = 10
CASES_SHOWN = 200

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
# An SVG chart is shown through <img>: matplotlib styles its lines with style attributes.
CSP_SVG = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
HEADERS = [(b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff"),
           (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin"),
           (b"permissions-policy", b"camera=(), microphone=(), geolocation=()")]

Notify = Callable[[str, str], Awaitable[None]]


def template_source(name: str):
    """Templates ship in the package (bot/web/templates)."""
    try:
        text = resources.files("bot.web").joinpath("templates", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return text, None, lambda: True


def environment(loader=None) -> Environment:
    """Jinja2 with autoescape on for every template: any text from people is escaped."""
    env = Environment(loader=loader or FunctionLoader(template_source), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["t"] = lambda path, **kw: msg(f"web.{path}", **kw)
    env.globals["m"] = msg
    env.globals["q"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = lambda ts: (ts or "")[:16].replace("T", " ") or "—"
    return env


class SecurityHeaders:
    """Adds the security headers to every response, errors included."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.hsts = hsts  # Strict-Transport-Security, when the site's address is https

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                csp = CSP_SVG if ctype.startswith(b"image/svg+xml") else CSP
                headers += [(b"content-security-policy", csp.encode())] + HEADERS
                if self.hsts:
                    headers.append((b"strict-transport-security", HSTS))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            endpoint = scope.get("endpoint")
            log.info("web request", extra={"route": getattr(endpoint, "__name__", None) or "-", "method": scope.get("method"),
                                           "status": status.get("code"), "ms": round((time.perf_counter() - t0) * 1000, 1)})


class Site:
    """The pages. ``notify(person_key, text)`` tells a practitioner about a comment in
    Telegram (None: nobody is told, e.g. no bot token)."""

    def __init__(self, access: Access, *, escalation, reading, signin: SignIn | None = None,
                 notify: Notify | None = None, throttle: Throttle | None = None, env: Environment | None = None,
                 secure: bool | None = None):
        self.access = access
        self.store = access.store
        self.library = access.library
        self.escalation = escalation
        self.reading = reading
        self.signin = signin or SignIn(access)
        self.notify = notify
        self.throttle = throttle or Throttle()
        self.env = env or environment()
        self.secure = secure  # True: the site's address is https; None: Secure cookies when the request came over HTTPS
        self.session_cookie = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE
        self.pre_cookie = SECURE_PRE_COOKIE if secure else PRE_COOKIE
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="web-db")  # one connection, one thread
        self.stylesheet = resources.files("bot.web").joinpath("static", "site.css").read_bytes()

    async def db(self, fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # -- plumbing ------------------------------------------------------------------------
    def _secure(self, request: Request) -> bool:
        return self.secure if self.secure is not None else request.url.scheme == "https"

    def render(self, request: Request, name: str, session: Session | None = None, status: int = 200,
               **context) -> HTMLResponse:
        me = getattr(request.state, "me", None)
        context.setdefault("active", name.removesuffix(".html"))
        html = self.env.get_template(name).render(me=me, csrf=session.csrf if session else "", **context)
        return HTMLResponse(html, status_code=status)

    async def user(self, request: Request) -> Session | None:
        session = await self.db(self.signin.session, request.cookies.get(self.session_cookie))
        if session is not None:
            request.state.me = await self.db(self._me, session.key)
        return session

    def _me(self, key: str) -> dict:
        row = self.store.person_by_key(key) or {}
        roles = self.access.roles(key)
        lead = key in {f"tg:{i}" for i in self.access.config.leads}
        return {"key": key, "name": row.get("display_name") or key, "admin": "admin" in roles,
                "supervisor": bool(roles & {"supervisor", "admin"}), "lead": lead}

    def refused(self, request: Request, session: Session | None, status: int = 404) -> HTMLResponse:
        return self.render(request, "error.html", session, status=status, message=msg("web.errors.not_available"))

    def bad_form(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(request, "error.html", session, status=403, message=msg("web.errors.form"))

    @staticmethod
    def to_signin() -> RedirectResponse:
        return RedirectResponse("/signin", status_code=303)

    async def form(self, request: Request, session: Session) -> dict | None:
        """The form's fields, or None if its CSRF token is not this session's."""
        form = await request.form()
        sent = str(form.get("csrf") or "")
        if not sent or not hmac.compare_digest(sent, session.csrf):
            return None
        return {k: str(v) for k, v in form.items()}

    @staticmethod
    def status_words(status: str) -> str:
        return status_words(status)  # the same words as the exports

    def flow_title(self, flow_id: str) -> str:
        flow = self.library.get(flow_id)
        return flow.title if flow else flow_id

    def concern_text(self, concern: str) -> str:
        labels = getattr(getattr(self.escalation, "safeguarding", None), "concerns", None) or {}
        return ", ".join(labels.get(c, c) for c in (concern or "").split(",") if c)

    def who(self, row: dict) -> str:
        return person_label(row.get("person_key"), row.get("display_name"), row.get("pseudonym"),
                            self.access.telegram_names)

    # -- sign in and out -------------------------------------------------------------------
    async def signin_page(self, request: Request) -> Response:
        if await self.user(request) is not None:
            return RedirectResponse("/", status_code=303)
        ended = request.query_params.get("ended") == "1"
        return self.render(request, "signin.html", message=msg("web.signin.ended" if ended else "web.signin.signed_out"))

    async def signin_link(self, request: Request) -> Response:
        """The page a link opens: a button, so a link preview that fetches it uses nothing."""
        code = request.path_params["code"]
        if not await self._tries(request, code):
            return self.render(request, "signin.html", status=429, message=msg("web.signin.refused.throttled"))
        reason = await self.db(self.signin.check, code)
        if reason:
            return self.render(request, "signin.html", status=400, message=msg(f"web.signin.refused.{reason}"))
        pre = secrets.token_urlsafe(32)
        response = self.render(request, "signin.html", code=code, form_token=csrf_token(pre),
                               message=msg("web.signin.confirm"))
        response.set_cookie(self.pre_cookie, pre, max_age=15 * 60, path="/signin", httponly=True, samesite="strict",
                            secure=self._secure(request))
        return response

    async def signin_post(self, request: Request) -> Response:
        """The sign-in button. Nothing is read before the address's limit (a real link goes on
        past it, so one with the form's cookie is let through to show its code), and then only
        a small URL-encoded form: 415, 411 or 413 otherwise, before any of it is parsed."""
        pre = request.cookies.get(self.pre_cookie) or ""
        if not pre and await self.db(self.throttle.busy, self._client(request)):
            return self.render(request, "signin.html", status=429, message=msg("web.signin.refused.throttled"))
        fields = await self._small_form(request)
        if isinstance(fields, int):
            return self.render(request, "signin.html", status=fields, message=msg("web.signin.refused.unreadable"))
        code = fields.get("code", "")
        if not await self._tries(request, code):
            return self.render(request, "signin.html", status=429, message=msg("web.signin.refused.throttled"))
        sent = fields.get("csrf", "")
        if not pre or not sent or not hmac.compare_digest(sent, csrf_token(pre)):
            return self.render(request, "signin.html", status=403, message=msg("web.signin.refused.form"))
        try:
            session = await self.db(self.signin.redeem, code)
        except Refused as exc:
            return self.render(request, "signin.html", status=400, message=msg(f"web.signin.refused.{exc.reason}"))
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(self.session_cookie, session.token, max_age=int(self.signin.session_life.total_seconds()),
                            path="/", httponly=True, samesite="strict", secure=self._secure(request))
        response.delete_cookie(self.pre_cookie, path="/signin", secure=self._secure(request), httponly=True,
                               samesite="strict")
        return response

    @staticmethod
    async def _small_form(request: Request) -> dict[str, str] | int:
        """The sign-in form's fields, or the status refusing it: 415 unless URL-encoded, 411
        without a Content-Length, 413 if that (or what actually comes, whatever it said) is over
        SIGNIN_BODY_MAX bytes. At most SIGNIN_BODY_MAX bytes are ever read."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return 415
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            return 411
        if int(length) > SIGNIN_BODY_MAX:
            return 413
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > SIGNIN_BODY_MAX:
                return 413
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=SIGNIN_FIELDS_MAX)
        except ValueError:  # not UTF-8, or more fields than the form has
            return 400
        fields: dict[str, str] = {}
        for k, v in pairs:
            fields.setdefault(k, v)
        return fields

    async def _tries(self, request: Request, code: str) -> bool:
        """The sign-in throttle: per address, per code, and everyone's together; a real link
        passes the address's and everyone's limit (so neither strangers rotating addresses nor
        one sharing the address, e.g. a proxy's or a council NAT's, can lock staff out)."""
        return await self.db(self.throttle.allow, self._client(request), code or None,
                             lambda: bool(code) and self.signin.check(code) is None)

    @staticmethod
    def _client(request: Request) -> str:
        return request.client.host if request.client else "?"

    async def signout(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        if await self.form(request, session) is None:
            return self.bad_form(request, session)
        await self.db(self.signin.sign_out, session)
        response = RedirectResponse("/signin?ended=1", status_code=303)
        response.delete_cookie(self.session_cookie, path="/", secure=self._secure(request), httponly=True,
                               samesite="strict")
        return response

    # -- my cases ----------------------------------------------------------------------------
    def _cases(self, key: str) -> dict:
        rows, total = self.access.cases_page(key, CASES_SHOWN)
        activity = self.store.case_activity([r["id"] for r in rows])
        for r in rows:
            a = activity[r["id"]]
            r["alerts"], r["review_items"] = a["alerts"], a["review_items"]
            r["unread"] = sum(n if self.reading.counts_unread(conv) else flagged
                              for conv, (n, flagged) in a["unread_by_conversation"].items())
        rows.sort(key=lambda r: r["last_activity"] or r["created_at"], reverse=True)
        rows.sort(key=lambda r: (not r["alerts"], not r["review_items"], not r["unread"]))
        return {"rows": rows, "total": total}

    async def cases(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        try:
            data = await self.db(self._cases, session.key)
        except Refused:
            return self.refused(request, session, status=403)
        return self.render(request, "cases.html", session, **data, shown=len(data["rows"]))

    # -- a case ----------------------------------------------------------------------------
    @staticmethod
    def _whose(request: Request) -> str | None:
        """``p=ID`` on a case's pages: whose case (a practitioner's Telegram id), where two
        practitioners use the same reference."""
        p = request.query_params.get("p", "")
        return f"tg:{p}" if p.isdigit() else None

    def _case(self, key: str, ref: str, whose: str | None = None) -> dict:
        rows = self.access.case(key, ref, practitioner=whose)
        convs = []
        for c in rows:
            if c["shared"]:
                sharing = msg(f"web.consent.{c['consent']}")
            else:
                sharing = msg("web.case.not_shared_no" if c.get("consent") == "no" else "web.case.not_shared")
            convs.append({**c, "who": self.who(c), "respondent_text": described(c.get("respondent")),
                          "flow_title": self.flow_title(c["flow_id"]), "status_text": self.status_words(c["status"]),
                          "sharing": sharing})
        items = [dict(f, reason=self.concern_text(f["concern"])) for c in rows for f in c.get("review_items", ())]
        charts = charts_mod.build(self.store, self.library, rows, self.access.telegram_names)
        return {"ref": ref, "convs": convs, "items": items, "charts": charts, "summary": self._summary(key, ref, whose),
                "p": whose[3:] if whose else None}

    def _summary(self, key: str, ref: str, whose: str | None = None):
        """The coordinator's summary (bot/review/summary.py, the same as /summary) as HTML that
        its renderer escaped, when that module is there and the case has one."""
        try:
            from bot.review import summary
        except ImportError:
            return None
        from markupsafe import Markup

        try:
            found = summary.build(self.access, key, ref, whose)
        except (Refused, ValueError):  # ValueError: several practitioners use this reference
            return None
        if getattr(found, "empty", False):
            return None
        return Markup(summary.render_html(found, page=False))  # escaped by the summary's own autoescape

    async def case(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        ref = request.query_params.get("ref", "")
        try:
            data = await self.db(self._case, session.key, ref, self._whose(request))
        except Refused:
            return self.refused(request, session)
        except AmbiguousCase as exc:  # two families under one reference: never one page of both
            return self.render(request, "case_whose.html", session, ref=ref,
                               holders=[(name, key[3:]) for key, name in exc.holders if key.startswith("tg:")])
        return self.render(request, "case.html", session, **data)

    async def chart(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return Response(status_code=403)
        ref = request.query_params.get("ref", "")
        try:
            n = int(request.query_params.get("n", "0"))
            found = await self.db(charts_mod.case_charts, self.access, session.key, ref, self._whose(request))
            chart = found[n] if 0 <= n < len(found) else None
        except (Refused, ValueError):
            chart = None
        if chart is None:
            return Response(status_code=404)
        svg = await asyncio.get_running_loop().run_in_executor(None, charts_mod.svg, chart)
        return Response(svg, media_type="image/svg+xml")

    # -- a transcript --------------------------------------------------------------------
    def _case_href(self, ref: str, practitioner_id: int | None) -> str:
        """The link to case ``ref`` with whose case it is (``p=ID``), so a reference two
        practitioners use opens the right family's case instead of asking whose."""
        person = self.store.get_person(practitioner_id) if practitioner_id else None
        holder = (person or {}).get("key") or ""
        whose = f"&p={quote(holder[3:], safe='')}" if holder.startswith("tg:") else ""
        return f"/case?ref={quote(ref, safe='')}{whose}"

    def _transcript(self, key: str, conversation_id: int) -> dict:
        data = self.access.transcript(key, conversation_id)
        owner = self.store.conversation_owner(conversation_id)
        data["case_href"] = self._case_href(data["case"], owner["practitioner_id"]) if data.get("case") and owner else None
        may_comment = self.access.has(key, "supervisor") and not data.get("withheld_note")
        # transcript_data lists the comments in the store's order; their ids are the anchors
        hidden = {w["step_id"] for w in data["withheld"]}  # transcript_data left their comments out too
        ids = [c["id"] for c in self.store.comments(conversation_id,
                                                     shared_only=not self.access.sees_internal(key, conversation_id))
               if c["step_id"] not in hidden]
        data["comments"] = [dict(c, id=i) for c, i in zip(data["comments"], ids)]
        by_step: dict[str | None, list] = {}
        for c in data["comments"]:
            by_step.setdefault(c["step_id"], []).append(c)
        lines, question = [], {}
        last_answer: dict[str, int] = {}
        english = {a["step_id"]: a["question_en"] for a in data["answers"]}
        for t in data["transcript"]:
            entry = dict(t, question=None, question_en=None, comments=[], note=line_note(t))
            if t["from"] == "bot" and t["kind"] == "question" and t["step_id"]:
                question[t["step_id"]] = (question_line(t["text"], t.get("language")), t.get("language") or "en")
            elif t["from"] == "person" and t["kind"] == "answer" and t["step_id"]:
                asked, language = question.get(t["step_id"], (None, "en"))
                entry["question"], entry["question_lang"] = asked, language
                if language != "en" and english.get(t["step_id"]) not in (None, asked):
                    entry["question_en"] = english[t["step_id"]]  # beside the words they were shown
                last_answer[t["step_id"]] = len(lines)
            lines.append(entry)
        orphans = []
        for step, comments in by_step.items():
            if step is None:
                continue
            if step in last_answer:
                lines[last_answer[step]]["comments"] = comments
            else:
                orphans.extend(comments)
        answered = set(last_answer)
        for entry in lines:
            entry["commentable"] = may_comment and entry["from"] == "person" and entry["kind"] == "answer" \
                and entry["step_id"] in answered
        return {"d": data, "lines": lines, "whole": by_step.get(None, []) + orphans, "may_comment": may_comment,
                "flow_title": data["flow"]["title"], "status_text": self.status_words(data["status"]),
                "who": data["person"]["name"] or data["person"]["key"] or "?"}

    async def transcript(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        cid = request.path_params["id"]
        try:
            data = await self.db(self._transcript, session.key, cid)
        except Refused:
            return self.refused(request, session)
        done = request.query_params.get("done")
        notice = {"comment": msg("web.comment.saved"), "comment-quiet": msg("web.comment.saved_no_notice")}.get(done)
        return self.render(request, "transcript.html", session, notice=notice, **data)

    async def comment_form(self, request: Request) -> Response:
        """Commenting on one answer: the answer, its question, and the form (works without JavaScript)."""
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        cid = request.path_params["id"]
        step = request.query_params.get("step") or None
        try:
            data = await self.db(self._transcript, session.key, cid)
        except Refused:
            return self.refused(request, session)
        answer = next((e for e in reversed(data["lines"]) if e["commentable"] and e["step_id"] == step), None)
        if step is not None and answer is None or not data["may_comment"]:
            return self.refused(request, session)
        return self.render(request, "comment.html", session, cid=cid, step=step, answer=answer, error=None, text="",
                           visibility="internal", flow_title=data["flow_title"])

    async def comment_post(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        form = await self.form(request, session)
        if form is None:
            return self.bad_form(request, session)
        cid = request.path_params["id"]
        text = (form.get("text") or "").strip()
        step = form.get("step") or None
        shared = form.get("visibility") == "shared"
        error = msg("web.comment.empty") if not text else (
            msg("web.comment.too_long", n=COMMENT_MAX) if len(text) > COMMENT_MAX else None)
        if error:
            try:
                data = await self.db(self._transcript, session.key, cid)
            except Refused:
                return self.refused(request, session)
            answer = next((e for e in reversed(data["lines"]) if e["commentable"] and e["step_id"] == step), None)
            return self.render(request, "comment.html", session, status=400, cid=cid, step=step, answer=answer,
                               error=error, text=text, visibility="shared" if shared else "internal",
                               flow_title=data["flow_title"])
        try:
            comment_id, notify_key = await self.db(self.access.comment, session.key, cid, text, step, shared)
        except (Refused, ValueError):
            return self.refused(request, session)
        told = False
        if notify_key and notify_key.startswith("tg:") and self.notify is not None:
            me = getattr(request.state, "me", None) or {}
            who = me.get("name") if me.get("name") != session.key else msg("web.comment_notice_who")
            notice = msg("staff.comment_notice_shared" if shared else "staff.comment_notice", who=who, id=cid,
                         text="\n".join(md_quote(text)))
            try:
                if notify_key in await self.db(self.escalation.holding):
                    # a worker-present session runs on their device (a child or a family member is
                    # holding it): kept in the schedule and sent by `serve` once the session ends
                    from bot.schedule import hold_notice

                    await self.db(hold_notice, self.store, notify_key, notice, about_person=None,
                                  about_conversation=cid)  # it quotes them: erased with them
                else:
                    await self.notify(notify_key, notice)
                told = True
            except Exception as exc:  # the comment is saved; the worker also sees it on the page
                log.warning("comment notice not sent", extra={"error": type(exc).__name__})
        done = "comment" if told else "comment-quiet"
        return RedirectResponse(f"/conversations/{cid}?done={done}#comment-{comment_id}", status_code=303)

    # -- review and alerts -----------------------------------------------------------------
    def _review(self, key: str) -> dict | None:
        try:
            items = self.access.worth_a_look(key)
        except Refused:
            items = None
        supervisor = self.access.has(key, "supervisor")
        if items is None and not supervisor:
            raise Refused("refused")
        queue = self.access.review_queue(key) if supervisor else None
        for f in items or ():
            f["reason"] = self.concern_text(f["concern"])
            f["who"] = self.who(f)
            f["case_href"] = self._case_href(f["case_ref"], f.get("practitioner_id")) if f.get("case_ref") else None
        for r in queue or ():
            r["flow_title"] = self.flow_title(r["flow_id"])
            r["case_href"] = self._case_href(r["case_ref"], r.get("practitioner_id")) if r.get("case_ref") else None
        return {"items": items, "queue": queue}

    async def review(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        try:
            data = await self.db(self._review, session.key)
        except Refused:
            return self.refused(request, session, status=403)
        done, item = request.query_params.get("done"), request.query_params.get("id", "")
        notice = None
        if done in ("ok", "already") and item.isdigit():
            notice = msg("web.review.acked" if done == "ok" else "web.review.ack_already", id=int(item))
        return self.render(request, "review.html", session, notice=notice, **data)

    async def review_ack(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        if await self.form(request, session) is None:
            return self.bad_form(request, session)
        item_id = request.path_params["id"]
        result = await self.db(self.reading.acknowledge, item_id, session.key)  # the rule behind /ack R12
        if result == "unknown":
            return self.refused(request, session)
        back = request.query_params.get("back")
        target = "/alerts" if back == "alerts" else "/review"
        return RedirectResponse(f"{target}?{urlencode({'done': result, 'id': item_id})}", status_code=303)

    def _alerts(self, key: str) -> list[dict]:
        rows = self.escalation.open_for(key)
        for r in rows:  # a link to the transcript only for those who may read it (a lead may not)
            r["readable"] = bool(r.get("conversation_id")) and self.access.can_read(key, r["conversation_id"])
        return rows

    async def alerts(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        rows = await self.db(self._alerts, session.key)
        done, alert = request.query_params.get("done"), request.query_params.get("id", "")
        notice = None
        if done in ("ok", "already") and alert.isdigit():
            more = int(request.query_params.get("more", "0") or 0)
            notice = msg("web.alerts.ack_already", id=int(alert)) if done == "already" else (
                msg("web.alerts.acked_all", id=int(alert), more=more) if more else msg("web.alerts.acked", id=int(alert)))
        return self.render(request, "alerts.html", session, rows=rows, notice=notice)

    async def alert_ack(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        if await self.form(request, session) is None:
            return self.bad_form(request, session)
        alert_id = request.path_params["id"]
        result, count = await self.db(self.escalation.acknowledge_person, alert_id, session.key)  # as /ack
        if result == "unknown":
            return self.refused(request, session)
        query = urlencode({"done": result, "id": alert_id, "more": max(0, count - 1)})
        return RedirectResponse(f"/alerts?{query}", status_code=303)

    # -- audit log ---------------------------------------------------------------------------
    async def audit(self, request: Request) -> Response:
        session = await self.user(request)
        if session is None:
            return self.to_signin()
        before = request.query_params.get("before", "")
        try:
            rows = await self.db(self.access.audit_entries, session.key, 100, int(before) if before.isdigit() else None)
        except Refused:
            return self.refused(request, session, status=403)
        older = rows[-1]["id"] if len(rows) == 100 else None
        return self.render(request, "audit.html", session, rows=rows, older=older)

    async def css(self, request: Request) -> Response:
        return Response(self.stylesheet, media_type="text/css", headers={"cache-control": "public, max-age=3600"})

    # -- errors -------------------------------------------------------------------------------
    async def not_found(self, request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            return self.render(request, "error.html", status=405, message=msg("web.errors.not_available"))
        return self.render(request, "error.html", status=404, message=msg("web.errors.not_available"))

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.error("web page failed", extra={"error": type(exc).__name__})
        return HTMLResponse(self.env.get_template("error.html").render(me=None, csrf="", active="error",
                                                                       message=msg("web.errors.server")),
                            status_code=500)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.cases, name="cases"),
            Route("/signin", self.signin_page, name="signin", methods=["GET"]),
            Route("/signin", self.signin_post, name="signin_post", methods=["POST"]),
            Route("/signin/{code}", self.signin_link, name="signin_link", methods=["GET"]),
            Route("/signout", self.signout, name="signout", methods=["POST"]),
            Route("/case", self.case, name="case"),
            Route("/case/chart.svg", self.chart, name="chart"),
            Route("/conversations/{id:int}", self.transcript, name="transcript"),
            Route("/conversations/{id:int}/comment", self.comment_form, name="comment_form", methods=["GET"]),
            Route("/conversations/{id:int}/comments", self.comment_post, name="comment_post", methods=["POST"]),
            Route("/review", self.review, name="review"),
            Route("/review-items/{id:int}/ack", self.review_ack, name="review_ack", methods=["POST"]),
            Route("/alerts", self.alerts, name="alerts"),
            Route("/alerts/{id:int}/ack", self.alert_ack, name="alert_ack", methods=["POST"]),
            Route("/audit", self.audit, name="audit"),
            Route("/static/site.css", self.css, name="css"),
        ]

    def app(self) -> "SecurityHeaders":
        app = Starlette(routes=self.routes(), exception_handlers={HTTPException: self.not_found,
                                                                   Exception: self.server_error})
        app.state.site = self
        outer = SecurityHeaders(app, hsts=bool(self.secure))  # outside everything, so error pages carry the headers too
        outer.site = self
        return outer


def create_app(access: Access, *, escalation, reading, **kwargs) -> SecurityHeaders:
    return Site(access, escalation=escalation, reading=reading, **kwargs).app()
