"""The command line: each command parses its options and calls one library function.

Heavy imports happen inside the commands so that ``restorative-bot --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

DB_HELP = "SQLite database file (default: $RESTORATIVE_DB or ./restorative.db)."
FLOWS_HELP = "Flow files or folders (default: the shipped flows/)."


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"restorative-bot: {message}", err=True)
    sys.exit(code)


def _library(flows: tuple[str, ...]):
    from bot.engine.library import FlowLibrary, FlowLoadError

    try:
        return FlowLibrary.load(list(flows) or None)
    except FlowLoadError as exc:
        for e in exc.errors:
            click.echo(str(e), err=True)
        _fail("the flows have errors; fix them (see above) or run 'restorative-bot validate'", 1)


def _store(db: str | None, create: bool = True, config=None):
    """Open the database with the key the configuration names (``--config``, else
    $RESTORATIVE_CONFIG), if it names one."""
    from bot.dbkey import KeyError_
    from bot.store import Store, StoreError, default_db_path

    path = db or default_db_path()
    config = config if config is not None else _config(None)
    try:
        keyring = config.keyring(create=create and not Path(path).exists())
        store = Store(path, create=create, keyring=keyring)
    except (StoreError, KeyError_) as exc:
        _fail(str(exc))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # let go of the database (and its lock) when the command ends
        ctx.call_on_close(store.close)
    return store


def _config(path: str | None):
    from bot.config import Config, ConfigError

    try:
        return Config.load(path)
    except ConfigError as exc:
        for e in exc.errors:
            click.echo(str(e), err=True)
        _fail("the configuration has errors; fix them (see above)", 1)


def _safeguarding(paths=()):
    """The safeguarding lexicon: always on; a deployment can add to it, never switch it off."""
    from bot.safeguarding import SafeguardingConfig, SafeguardingConfigError

    try:
        return SafeguardingConfig.load(*paths)
    except SafeguardingConfigError as exc:
        _fail(str(exc), 1)


def _service(db, flows, config=None, allow_unreviewed_languages: bool | None = None):
    from bot.conversation import ConversationService

    lexicon = config.lexicon if config is not None else []
    if allow_unreviewed_languages is None:
        allow_unreviewed_languages = bool(config is not None and config.allow_unreviewed_languages)
    return ConversationService(_store(db, config=config), _library(flows), safeguarding=_safeguarding(lexicon),
                               leads_configured=bool(config is not None and config.leads),
                               out_of_hours=config.out_of_hours if config is not None else None,
                               handback_minutes=config.present_handback_minutes if config is not None else 10.0,
                               allow_unreviewed_languages=allow_unreviewed_languages)


CONFIG_HELP = "Deployment configuration YAML (default: $RESTORATIVE_CONFIG)."
RESPONDENT_HELP = "Who is answering: child, young-person, adult or practitioner."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="restorative-bot")
def main() -> None:
    """restorative-bot: guided conversations for restorative practice with children and families.

    Flows are YAML files (see flows/); every answer is stored in SQLite.
    """
    # Everything this process creates (database, journals, exports, temporary files) is
    # readable by its owner only: transcripts are about children and families.
    os.umask(0o077)


def write_private(path: str, text: str, force: bool) -> None:
    """Write an export readable by its owner only; never replace a file unless told to."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        _fail(f"{path} already exists; choose another --out, or add --force to replace it")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}")
    os.fchmod(fd, 0o600)  # a file replaced with --force keeps no wider mode
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Load and lint flow files; print file:line:col: message for each error."""
    from bot.engine.library import DEFAULT_FLOWS, validate_paths

    from bot.audience import intro_warnings

    flows, errors = validate_paths(list(paths) or [DEFAULT_FLOWS])
    from bot.coach.commands import rehearsal_problems

    errors = list(errors) + rehearsal_problems(paths)  # coach rules and role-play scenarios
    from bot.i18n.lock import check as check_translations, files_in

    stale, unlocked = check_translations(files_in(list(paths) or [DEFAULT_FLOWS]))  # English changed since
    errors += stale
    for e in errors:
        click.echo(str(e))
    for warning in (w for f in flows for w in [*f.warnings, *intro_warnings(f)]):
        click.echo(str(warning))
    for warning in unlocked:
        click.echo(str(warning))
    if errors:
        click.echo(f"{len(errors)} error(s) in the flows.", err=True)
        sys.exit(1)
    click.echo(f"{len(flows)} flow(s) OK.")


@main.command("flows")
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
def list_flows(flow_paths: tuple[str, ...]) -> None:
    """List the flows: id, version, audience, title."""
    lib = _library(flow_paths)
    rows = [(f.id, str(f.version), f.audience, f.title) for f in lib]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("id", "version", "audience", "title"))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(("id", "version", "audience", "title"), widths)).rstrip())
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@main.command()
@click.argument("flow", required=False)
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--as", "as_name", default=None, help="Your name at this terminal (default: your user name). With --case you are the case's worker, "
              "and the answers are recorded as those of the person with you.")
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--for", "for_", metavar="RESPONDENT", help=RESPONDENT_HELP)
@click.option("--case", "case_ref", help="A real case reference (no names). Without it the conversation is practice.")
@click.option("--practice", is_flag=True, help="Practice, even with --case: alerts are recorded, never sent to anyone.")
@click.option("--lang", "lang", metavar="TAG", help="The language to talk in: en, cy, pl, ur (bot/locale/languages.yaml).")
def chat(flow: str | None, db: str | None, as_name: str | None, flow_paths: tuple[str, ...], config_path: str | None,
         for_: str | None, case_ref: str | None, practice: bool, lang: str | None) -> None:
    """Converse in the terminal (works with piped stdin).

    Without --case the conversation is practice. For a flow done with the worker present
    (Three Houses), --case REF --for child runs it on this terminal for the child.
    """
    from bot.frontends.console import run_console

    respondent = _respondent(for_)
    config = _config(config_path)
    # In the terminal the worker asks for the language: an unreviewed translation is
    # allowed, and the bot says it is unreviewed, in that language.
    service = _service(db, flow_paths, config, allow_unreviewed_languages=True)
    if lang is not None and lang not in service.languages_offered():
        from bot.messages import msg

        _fail(msg("language.unknown", tag=lang, tags=", ".join(service.languages_offered())))
    # The same schedule as `serve`: a reminder is recorded for anyone `serve` can reach, and
    # the chat ends by saying which reminders there are and which a terminal cannot have.
    service.schedule = config.schedule(service.store)
    if flow is not None and service.library.get(flow) is None:
        known = ", ".join(f.id for f in service.library)
        _fail(f"no flow called '{flow}'; choose one of: {known}")
    if respondent is not None and flow is not None:
        _check_respondent(service.library.get(flow), respondent)
    if case_ref is not None:
        _check_case_ref(case_ref)
        _check_own_device_only(service.library.get(flow) if flow is not None else None, case_ref)
    name = as_name or os.environ.get("USER") or "you"
    sys.exit(run_console(service, f"console:{name}", name, flow, respondent=respondent, case_ref=case_ref,
                         practice=practice, language=lang))


def _check_own_device_only(flow, case_ref: str) -> None:
    """A flow that promises nobody, the worker included, reads the answers until the person
    agrees is not done at the worker's terminal (as /with refuses it on Telegram)."""
    from bot import respondent as respondents
    from bot.messages import msg

    if flow is not None and respondents.own_device_only(flow) and "practitioner" not in respondents.admitted(flow):
        _fail(msg("staff.terminal_consent_first", flow=flow.id, ref=case_ref.strip()))


def _respondent(value: str | None) -> str | None:
    from bot.messages import msg
    from bot.respondent import parse

    if value is None:
        return None
    found = parse(value)
    if found is None:
        _fail(msg("respondent.unknown", value=value))
    return found


def _check_respondent(flow, respondent: str) -> None:
    from bot.respondent import admitted, refusal

    if respondent not in admitted(flow):
        _fail(refusal(flow, respondent))


def _check_case_ref(ref: str) -> None:
    from bot.access import CASE_REF_MAX

    if not ref.strip() or len(ref) > CASE_REF_MAX or any(ch.isspace() for ch in ref):
        _fail(f"a case reference is one word of up to {CASE_REF_MAX} characters, e.g. FGC-2041")


@main.command("test-flows")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
def test_flows(paths: tuple[str, ...], flow_paths: tuple[str, ...]) -> None:
    """Run the scripted conversations in flows/tests."""
    from bot.engine.library import DEFAULT_FLOWS
    from bot.engine.scripts import load_scripts, play
    from bot.testing.drivers import ServiceDriver

    lib = _library(flow_paths)
    convs, errors = load_scripts(list(paths) or [DEFAULT_FLOWS / "tests"])
    for e in errors:
        click.echo(str(e))
    failed = 0
    for conv in convs:
        if lib.get(conv.flow) is None:
            click.echo(f"FAIL {conv.file}:{conv.line}: no flow called '{conv.flow}'")
            failed += 1
            continue
        outcome = play(conv, ServiceDriver.in_memory(lib, _safeguarding()))
        if outcome.ok:
            click.echo(f"ok   {conv.flow}: {conv.name}")
        else:
            failed += 1
            click.echo(f"FAIL {conv.flow}: {conv.name}")
            for f in outcome.failures:
                click.echo("  " + f.replace("\n", "\n  "))
    from bot.coach.commands import play_rehearsal_scripts  # flows/tests/rehearsal/: role-play scenarios

    played, rehearsal_failed, rehearsal_errors = play_rehearsal_scripts(list(paths) or [DEFAULT_FLOWS / "tests"], click.echo)
    convs, failed, errors = convs + played, failed + rehearsal_failed, list(errors) + rehearsal_errors
    click.echo(f"{len(convs) - failed} passed, {failed} failed")
    if failed or errors or not convs:
        sys.exit(1)


@main.command()
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "png", "svg"]), default="mermaid", show_default=True)
@click.option("--out", "-o", type=click.Path(), help="Write to this file (default: standard output; PNG/SVG default to FLOW.png/.svg).")
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
def graph(flow: str, fmt: str, out: str | None, flow_paths: tuple[str, ...]) -> None:
    """Draw the flow as a mermaid state diagram, or PNG/SVG with Graphviz."""
    from bot.engine.graph import GraphError, draw

    lib = _library(flow_paths)
    f = lib.get(flow)
    if f is None:
        _fail(f"no flow called '{flow}'; run 'restorative-bot flows' to list them")
    try:
        data = draw(f, fmt)
    except GraphError as exc:
        _fail(str(exc))
    if out is None and fmt in ("png", "svg"):
        out = f"{flow}.{fmt}"
    if out:
        Path(out).write_bytes(data)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(data.decode(), nl=False)


@main.command()
@click.option("--session", "session_id", type=int, help="Export one conversation by id.")
@click.option("--case", "case_ref", help="Export every conversation in a case.")
@click.option("--practitioner", help="With --case: Telegram user id of the practitioner holding it, if several use REF.")
@click.option("--all", "all_", is_flag=True, help="Export every conversation.")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv", "json"]), default="md", show_default=True)
@click.option("--out", "-o", type=click.Path(), help="Write to this file, readable by you only (default: standard output).")
@click.option("--force", is_flag=True, help="Replace the --out file if it exists.")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
def export(session_id: int | None, case_ref: str | None, practitioner: str | None, all_: bool, fmt: str,
           out: str | None, force: bool, db: str | None, config_path: str | None) -> None:
    """Write transcripts out: flow, version, who, when, every question, answer and comment."""
    from bot.review.export import ExportError
    from bot.review.export import export as do_export

    if sum(x is not None and x is not False for x in (session_id, case_ref, all_ or None)) != 1:
        _fail("say what to export: one of --session ID, --case REF or --all")
    config = _config(config_path)
    store = _store(db, create=False, config=config)
    try:
        text = do_export(store, session=session_id, case=case_ref, all_=all_, fmt=fmt,
                         practitioner=_who(practitioner) if practitioner else None,
                         report=lambda note: click.echo(note, err=True),
                         telegram_names=config.people_names == "telegram")
    except ExportError as exc:
        _fail(str(exc))
    if out:
        write_private(out, text, force)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--case", "case_ref", required=True, help="The case reference.")
@click.option("--practitioner", help="Telegram user id of the practitioner holding it, if several use REF.")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--out", "-o", type=click.Path(), help="Write to this file, readable by you only (default: standard output).")
@click.option("--force", is_flag=True, help="Replace the --out file if it exists.")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
def summary(case_ref: str, practitioner: str | None, fmt: str, out: str | None, force: bool, db: str | None,
            config_path: str | None) -> None:
    """The coordinator's summary of a case on one page: who is coming, who should not and the
    arrangements, language, access, transport, childcare, food, the young person's views, worries
    and strengths; each answer with who gave it and when. Only shared answers (audited)."""
    from bot.access import Access, Refused
    from bot.engine.library import FlowLibrary
    from bot.review.summary import summary_text

    config = _config(config_path)
    access = Access(_store(db, create=False, config=config), FlowLibrary([]), config)  # flows from the store
    try:
        text = summary_text(access, None, case_ref, fmt, _who(practitioner) if practitioner else None)
    except Refused:
        _fail(f"no case {case_ref}; see /cases in Telegram")
    except ValueError as exc:
        _fail(str(exc))
    if out:
        write_private(out, text, force)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="Read the bot token from this file instead of $TELEGRAM_BOT_TOKEN.")
@click.option("--api-url", envvar="TELEGRAM_API_URL", help="Bot API base URL, e.g. http://127.0.0.1:8081/bot (env TELEGRAM_API_URL).")
@click.option("--webhook-url", help="Receive updates by webhook at this public URL instead of long polling.")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Webhook mode: address to listen on.")
@click.option("--port", default=8443, show_default=True, type=int, help="Webhook mode: port to listen on.")
@click.option("--webhook-secret-file", type=click.Path(exists=True, dir_okay=False),
              help="Webhook mode: read the secret token Telegram must send from this file (or set $TELEGRAM_WEBHOOK_SECRET).")
@click.option("--webhook-secret", "secret_in_argv", hidden=True,
              help="Refused: a secret on the command line is visible to everyone in ps.")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--alert-poll-seconds", default=30.0, show_default=True, type=float, hidden=True)
@click.option("--web-port", type=int, default=None, help="Also run the review website on this port.")
@click.option("--web-host", default="127.0.0.1", show_default=True, help="Address the review website listens on.")
def serve(db, flow_paths, token_file, api_url, webhook_url, listen, port, webhook_secret_file, secret_in_argv, log_level,
          config_path, alert_poll_seconds, web_port, web_host) -> None:
    """Run the Telegram bot (token from $TELEGRAM_BOT_TOKEN or --token-file).

    Needs a configuration naming the designated safeguarding leads (--config).
    """
    from bot import logs


    if secret_in_argv is not None:
        _fail("--webhook-secret is not accepted on the command line, where everyone on this machine can read it "
              "with ps; set TELEGRAM_WEBHOOK_SECRET or use --webhook-secret-file PATH")
    webhook_secret = (Path(webhook_secret_file).read_text().strip() if webhook_secret_file
                      else os.environ.get("TELEGRAM_WEBHOOK_SECRET", "").strip()) or None
    token = Path(token_file).read_text().strip() if token_file else os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        _fail("no bot token: set TELEGRAM_BOT_TOKEN or pass --token-file (ask @BotFather for a token)")
    config = _config(config_path)
    if not config.leads:
        _fail("no designated safeguarding lead is configured, so a disclosure could reach nobody; "
              "name at least one under safeguarding: leads: [TELEGRAM_USER_ID] in the file given by --config "
              "or RESTORATIVE_CONFIG")
    if api_url and not api_url.rstrip("/").endswith("/bot"):
        _fail(f"--api-url must look like http://host:port/bot, not {api_url}")
    if webhook_url and not webhook_secret:
        import secrets

        webhook_secret = secrets.token_urlsafe(32)
    logs.setup(log_level, secrets=[token, webhook_secret or ""])
    from bot.frontends.telegram.app import serve as run

    from bot.access import Access

    service = _service(db, flow_paths, config)
    from bot.safeguarding_worker import DetectorWorker, lexicon_recipe

    # the detector runs in a worker process, on the other core (detected in process until it is ready)
    service.detector_worker = DetectorWorker(lexicon_recipe(config.lexicon))
    access = Access(service.store, service.library, config)
    access.seed()
    escalation = config.escalation(service.store, service.safeguarding)
    reading = config.reading(service.store, access)
    service.schedule = config.schedule(service.store)  # nudges and date reminders, sent by the same loop
    from bot.retention import DailyPurge

    service.purger = DailyPurge(service.store, config.retention())  # once a day, by the same loop
    if web_port is not None:
        from bot.web.server import make_site, start_in_thread, telegram_notify

        if config.web_url is None:
            config.web_url = f"http://{web_host}:{web_port}"
        site = make_site(service.store.path, service.library, config, safeguarding=service.safeguarding,
                         notify=telegram_notify(token, api_url))
        start_in_thread(site, web_host, web_port)
    try:
        run(service, token, api_url=api_url, webhook_url=webhook_url, listen=listen, port=port,
            secret_token=webhook_secret, escalation=escalation, alert_poll_seconds=alert_poll_seconds, access=access,
            limits=config.rate_limits(), reading=reading)
    finally:
        service.detector_worker.close()


def _who(value: str) -> str:
    """A Telegram user id as a person key."""
    value = value.strip()
    if value.startswith("tg:"):
        value = value[3:]
    if not value.isdigit():
        _fail(f"'{value}' is not a Telegram user id (a number; the person can see theirs with @userinfobot)")
    return f"tg:{value}"


def _access(db, config_path=None, flow_paths=()):
    from bot.access import Access

    config = _config(config_path)
    return Access(_store(db, config=config), _library(flow_paths), config)


@main.group()
def role() -> None:
    """Grant, revoke and list roles (admin, supervisor, practitioner, family)."""


@role.command("grant")
@click.argument("telegram_id")
@click.argument("role_name", metavar="ROLE", type=click.Choice(["admin", "supervisor", "practitioner", "family"]))
@click.option("--db", type=click.Path(), help=DB_HELP)
def role_grant(telegram_id: str, role_name: str, db: str | None) -> None:
    """Give TELEGRAM_ID the ROLE."""
    changed = _access(db).grant(None, _who(telegram_id), role_name)
    click.echo(f"{role_name} granted to {telegram_id}" if changed else f"{telegram_id} already has {role_name}")


@role.command("revoke")
@click.argument("telegram_id")
@click.argument("role_name", metavar="ROLE", type=click.Choice(["admin", "supervisor", "practitioner", "family"]))
@click.option("--db", type=click.Path(), help=DB_HELP)
def role_revoke(telegram_id: str, role_name: str, db: str | None) -> None:
    """Take the ROLE away from TELEGRAM_ID."""
    changed = _access(db).revoke(None, _who(telegram_id), role_name)
    click.echo(f"{role_name} revoked from {telegram_id}" if changed else f"{telegram_id} did not have {role_name}")
    click.echo(f"It stays revoked even if the configuration lists {telegram_id}; `role grant` gives it back.", err=True)
    if role_name == "family":
        click.echo(f"Invitations {telegram_id} opens are refused until then (audited).", err=True)


@role.command("list")
@click.option("--db", type=click.Path(), help=DB_HELP)
def role_list(db: str | None) -> None:
    """List everyone with a role."""
    rows = _store(db).role_list()
    if not rows:
        click.echo("Nobody has a role yet. Grant one with: restorative-bot role grant TELEGRAM_ID ROLE")
    for r in rows:
        click.echo(f"{r['role']:<13} {r['key']:<16} {r['display_name'] or '':<20} granted {r['granted_at'][:16]} by {r['granted_by']}")
    for r in _store(db).role_revocations():
        click.echo(f"{r['role']:<13} {r['key']:<16} {'(revoked)':<20} revoked {r['revoked_at'][:16]} by {r['revoked_by']}")


@main.group()
def team() -> None:
    """Who supervises whom."""


@team.command("add")
@click.argument("supervisor_id")
@click.argument("practitioner_id")
@click.option("--db", type=click.Path(), help=DB_HELP)
def team_add(supervisor_id: str, practitioner_id: str, db: str | None) -> None:
    """SUPERVISOR_ID supervises PRACTITIONER_ID."""
    _access(db).team_add(None, _who(supervisor_id), _who(practitioner_id))
    click.echo(f"{supervisor_id} now supervises {practitioner_id}")


@team.command("remove")
@click.argument("supervisor_id")
@click.argument("practitioner_id")
@click.option("--db", type=click.Path(), help=DB_HELP)
def team_remove(supervisor_id: str, practitioner_id: str, db: str | None) -> None:
    """SUPERVISOR_ID no longer supervises PRACTITIONER_ID (at once; the configuration does not add it back)."""
    changed = _access(db).team_remove(None, _who(supervisor_id), _who(practitioner_id))
    click.echo(f"{supervisor_id} no longer supervises {practitioner_id}" if changed
               else f"{supervisor_id} did not supervise {practitioner_id}; it stays that way")


@team.command("list")
@click.option("--db", type=click.Path(), help=DB_HELP)
def team_list(db: str | None) -> None:
    """List who supervises whom, and where each link came from."""
    rows = _store(db).team_links()
    if not rows:
        click.echo("No teams yet. Add one with: restorative-bot team add SUPERVISOR_ID PRACTITIONER_ID")
    for r in rows:
        came = "the configuration" if r["added_by"] == "config" else f"team add by {r['added_by']}"
        click.echo(f"{r['supervisor_key']:<16} supervises {r['practitioner_key']:<16} since {r['created_at'][:16]} ({came})")


class _InviteGroup(click.Group):
    """`invite FLOW --case REF ...` makes a link (as before); `invite list` and `invite
    revoke CODE|ID` manage them: a first word that is not a subcommand means `create`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_InviteGroup)
def invite() -> None:
    """Invitation links: make one (invite FLOW --case REF --practitioner ID), list, revoke."""


@invite.command("create")
@click.argument("flow")
@click.option("--case", "case_ref", required=True, help="The case reference, e.g. FGC-2041 (no names).")
@click.option("--practitioner", required=True, help="The inviting practitioner's Telegram user id.")
@click.option("--bot-username", envvar="TELEGRAM_BOT_USERNAME", default="YourBot", show_default=True,
              help="The bot's @username, for the link (env TELEGRAM_BOT_USERNAME).")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--for", "for_", metavar="RESPONDENT", help=RESPONDENT_HELP + " Without it, they are asked.")
@click.option("--lang", "lang", metavar="TAG", help="The language of the conversation: en, cy, pl, ur. Without it, "
              "the person's own choice (Telegram's language is offered).")
def invite_create(flow: str, case_ref: str, practitioner: str, bot_username: str, db: str | None,
                  config_path: str | None, for_: str | None, lang: str | None) -> None:
    """Make a single-use invitation link to FLOW in a case."""
    from bot.access import Refused

    respondent = _respondent(for_)
    access = _access(db, config_path)
    try:
        code, invite_id = access.invite(_who(practitioner), flow, case_ref, respondent=respondent, language=lang)
    except Refused:
        _fail(f"{practitioner} is not a practitioner; grant the role first: restorative-bot role grant {practitioner} practitioner")
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"https://t.me/{bot_username.lstrip('@')}?start={code}")
    click.echo(f"invitation {invite_id}, expires in {access.config.invite_expiry_days:g} days", err=True)


@invite.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only links that still work (not used, withdrawn or expired).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def invite_list(open_only: bool, db: str | None) -> None:
    """List invitations (never their codes: only a hash is stored)."""
    rows = _access(db).invites(None, open_only=open_only)
    if not rows:
        click.echo("No open invitations." if open_only else "No invitations.")
    for r in rows:
        state = ("used " + r["used_at"][:16] if r["used_at"] else "withdrawn " + r["revoked_at"][:16] if r["revoked_at"]
                 else "opened, waiting for consent" if r["opened_by"] else "open")
        click.echo(f"#{r['id']:<5} {r['flow_id']:<24} case {r['case_ref']:<14} by {r['practitioner_key']:<14}"
                   f" expires {r['expires_at'][:16]}  {state}")


@invite.command("revoke")
@click.argument("code_or_id", metavar="CODE|ID")
@click.option("--db", type=click.Path(), help=DB_HELP)
def invite_revoke(code_or_id: str, db: str | None) -> None:
    """Withdraw a link, by its code (the part after start=) or its number from `invite list`."""
    from bot.access import Refused

    try:
        invite_id = _access(db).revoke_invite_by(None, code_or_id)
    except Refused:
        _fail(f"no invitation {code_or_id}; see restorative-bot invite list")
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"invitation {invite_id} withdrawn: the link no longer works")


@main.group()
def case() -> None:
    """Cases: name the people in one (pseudonyms), write its texts, move one to another practitioner, or hold one."""


@case.command("set")
@click.argument("ref")
@click.argument("key", required=False)
@click.option("--file", "file_", type=click.File("r", encoding="utf-8"),
              help="With KEY: the text to write for the case, from this file ('-' reads it from standard input).")
@click.option("--pseudonym", help="What to call the person in exports, alerts and lists, e.g. 'Parent A'.")
@click.option("--person", help="Telegram user id of the person, if more than one answered in the case.")
@click.option("--practitioner", help="Telegram user id of the practitioner holding it, if several use REF.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def case_set(ref: str, key: str | None, file_, pseudonym: str | None, person: str | None, practitioner: str | None,
             db: str | None) -> None:
    """Write a text for case REF that flows show as {{ case.KEY }} (danger_statement, safety_goal,
    bottom_lines, ...):  case set REF KEY --file FILE  (or --file - to read it from standard input).
    Or set the pseudonym of a person in case REF:  case set REF --pseudonym 'Parent A'."""
    if key is not None or file_ is not None:
        if pseudonym is not None:
            _fail("give either KEY --file FILE (a text for the case) or --pseudonym (a person's name), not both")
        if key is None or file_ is None:
            _fail("to write a text for the case, give its key and where to read it: case set REF KEY --file FILE"
                  " (--file - reads standard input)")
        _case_info_set(ref, key, file_.read(), practitioner, db)
        return
    if pseudonym is None:
        _fail("say what to set: case set REF KEY --file FILE (a text for the case) or case set REF --pseudonym NAME")
    access = _access(db)
    try:
        people = access.case_people(ref, _who(practitioner) if practitioner else None)
    except ValueError as exc:
        _fail(str(exc))
    if person is not None:
        people = [p for p in people if p["key"] == _who(person)]
    if not people:
        _fail(f"nobody has answered in case {ref}" + (f" as {person}" if person else "") + "; see /case in Telegram")
    if len(people) > 1:
        listed = ", ".join(f"{p['key'].removeprefix('tg:')} ({p['pseudonym'] or 'no pseudonym'})" for p in people)
        _fail(f"{len(people)} people answered in case {ref}: {listed}; say which with --person ID")
    from bot.access import Refused

    try:
        access.set_pseudonym(None, people[0]["conversation"], pseudonym)
    except ValueError as exc:
        _fail(str(exc))
    except Refused:
        _fail(f"no case {ref}")
    click.echo(f"in case {ref}, {people[0]['key'].removeprefix('tg:')} is now called {' '.join(pseudonym.split())}")


def _case_info_set(ref: str, key: str, text: str, practitioner: str | None, db: str | None) -> None:
    from bot.access import Refused

    try:
        done = _access(db).set_case_info(None, ref, key, text, _who(practitioner) if practitioner else None)
    except Refused:
        _fail(f"no case {ref}" + (f" held by {practitioner}" if practitioner else "")
              + "; see /cases in Telegram")
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"case {ref}: {key} written ({done['characters']} characters); flows show it as {{{{ case.{key} }}}}")


@case.command("hold")
@click.argument("ref")
@click.option("--reason", required=True, help="Why the case must be kept, e.g. 'court proceedings' (no names).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def case_hold(ref: str, reason: str, db: str | None) -> None:
    """Put case REF under a legal hold: nothing in it is purged or erased until it is released."""
    from bot.retention import hold

    try:
        n = hold(_store(db, create=False), ref, "cli", reason)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"case {ref} is under a legal hold: nothing in it is purged or erased until "
               f"`restorative-bot case release {ref}`" + ("" if n else " (it already was)"))


@case.command("release")
@click.argument("ref")
@click.option("--db", type=click.Path(), help=DB_HELP)
def case_release(ref: str, db: str | None) -> None:
    """Release the legal hold on case REF: its records follow the retention periods again."""
    from bot.retention import release

    try:
        n = release(_store(db, create=False), ref, "cli")
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"case {ref} is released from its legal hold" if n else f"case {ref} was not under a legal hold")


@main.group()
def erasure() -> None:
    """Requests to erase a person's data (/delete in Telegram): list them, approve or refuse one."""


@erasure.command("list")
@click.option("--all", "everything", is_flag=True, help="Decided requests too, not only open ones.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def erasure_list(everything: bool, db: str | None) -> None:
    """List erasure requests, with what weighs in the decision (data given as a child, holds)."""
    from bot import erasure as rights

    store = _store(db, create=False)
    rows = rights.pending(store, everything)
    with store.transaction():
        store.audit("cli", "erasure.list", None, f"{len(rows)} request(s)")
    if not rows:
        click.echo("No erasure requests." if everything else "No open erasure requests.")
    for row in rows:
        click.echo(rights.describe(row))


@erasure.command("request")
@click.option("--conversation", "conversation_id", type=int, required=True, metavar="ID",
              help="A conversation the person answered (its number, as /case shows it).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def erasure_request(conversation_id: int, db: str | None) -> None:
    """Make an erasure request for someone who asked you in person: above all a child who
    answered on your device (a worker-present session), who has no chat to send /delete from."""
    from bot import erasure as rights

    store = _store(db, create=False)
    try:
        made = rights.request_for_conversation(store, conversation_id, "cli")
    except ValueError as exc:
        _fail(f"{exc}; `restorative-bot export --case REF` lists a case's conversations")
    if not made.new:
        click.echo(f"that person already has an open erasure request, #{made.id} (made {made.created_at[:16].replace('T', ' ')})")
        return
    click.echo(made.full_notice)
    if not _in_telegram(store, made.id):
        click.echo("They have no Telegram chat, so the bot cannot tell them the outcome: tell them yourself.")


def _in_telegram(store, request_id: int) -> bool:
    return (_erasure_row(store, request_id)["person_key"] or "").startswith("tg:")


def _who_tells(store, request_id: int) -> str:
    if _in_telegram(store, request_id):
        return "the person is told by the bot"
    return "they have no Telegram chat, so tell them yourself"


def _erasure_row(store, request_id: int) -> dict:
    row = store.erasure_request(request_id)
    if row is None:
        _fail(f"there is no erasure request {request_id}; `restorative-bot erasure list` shows them")
    return row


@erasure.command("approve")
@click.argument("request_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why it is approved (the person is told the outcome).")
@click.option("--alert-words", type=click.Choice(["keep", "erase"]), default="keep", show_default=True,
              help="Erase the words of the person's safeguarding records too (alerts, review items, missed"
                   " disclosures): only where the safeguarding lead agrees.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def erasure_approve(request_id: int, reason: str, alert_words: str, yes: bool, db: str | None) -> None:
    """Erase the person's answers, transcripts, messages and name everywhere (other people keep theirs)."""
    from bot import erasure as rights

    store = _store(db, create=False)
    click.echo(rights.describe(_erasure_row(store, request_id)))
    click.echo(f"  safeguarding records' words: {alert_words}"
               + (" (the safeguarding lead has agreed to erase them)" if alert_words == "erase" else " (kept)"))
    if not yes and not click.confirm("Erase this person's words and name now? This cannot be undone"):
        _fail("nothing erased", 1)
    try:
        done = rights.approve(store, request_id, "cli", reason, alert_words)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"erasure request {request_id} approved: {sum(done.counts.values())} value(s) erased; "
               + _who_tells(store, request_id))
    if done.wiped is False:
        click.echo(_WIPE_BUSY, err=True)


_WIPE_BUSY = ("restorative-bot: the bot kept reading the database, so old copies of the erased words may still be "
              "in its journal (the -wal file); run `restorative-bot erasure wipe` when it is quieter, or after "
              "stopping the bot")


@erasure.command("wipe")
@click.option("--db", type=click.Path(), help=DB_HELP)
def erasure_wipe(db: str | None) -> None:
    """Move the journal (-wal file) into the database and empty it, so no old copy of erased words stays."""
    from bot import erasure as rights

    if not rights.wipe(_store(db, create=False), "cli"):
        _fail(_WIPE_BUSY.removeprefix("restorative-bot: "), 1)
    click.echo("the journal is empty: no old copy of erased words is left in it")


@erasure.command("refuse")
@click.argument("request_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why it is refused (the person is told this reason).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def erasure_refuse(request_id: int, reason: str, db: str | None) -> None:
    """Refuse an erasure request (e.g. records the law requires to be kept); the person is told why."""
    from bot import erasure as rights

    store = _store(db, create=False)
    click.echo(rights.describe(_erasure_row(store, request_id)))
    try:
        rights.refuse(store, request_id, "cli", reason)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"erasure request {request_id} refused; " + _who_tells(store, request_id))


@main.command()
@click.option("--dry-run", is_flag=True, help="Only count what is due; delete nothing.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False),
              help="Before deleting, add the transcripts of the conversations purged to this JSON-lines file "
                   "(readable by you only), as `export` would write them: a conversation the person has not "
                   "agreed to share is left out, but for any flagged lines. Without it nothing is exported.")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
def purge(dry_run: bool, export_path: str | None, db: str | None, config_path: str | None) -> None:
    """Delete what is past its retention period (the configuration's retention:, defaults in the README).

    Cases under a legal hold are kept. Works in batches, each its own transaction: if it is
    stopped, run it again to finish. The audit log records how many rows went, never what they said.
    """
    from bot import retention

    config = _config(config_path)
    retain = config.retention()
    store = _store(db, create=False, config=config)
    if dry_run:
        report = retention.purge(store, retain, dry_run=True)
        for rule, n in report.due.items():
            click.echo(f"{rule:<32} {n} due")
        click.echo(f"dry run: {sum(report.due.values())} row(s) due; nothing deleted")
        return
    export = None
    archived = {"written": 0, "left_out": 0}
    if export_path:
        import json

        from bot.access import Access
        from bot.engine.library import FlowLibrary

        # by the rule of `export`: only what the people who run the service may read, without
        # the parts kept back from them; of a conversation not shared, only its flagged lines
        gate = Access(store, FlowLibrary([]), config)  # each conversation's own flow version, from the store
        fd = os.open(export_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # a file that was there already too: readable by you only
        out = os.fdopen(fd, "a", encoding="utf-8")

        def export(ids: list[int]) -> None:
            for conversation_id in ids:
                record = gate.archive_record(conversation_id)
                if record is None:
                    archived["left_out"] += 1
                    continue
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                archived["written"] += 1
            out.flush()
            os.fsync(out.fileno())  # on disk before the rows go
    total = sum(retention.due(store, retain, retention.now()).values())
    with click.progressbar(length=max(total, 1), label="Purging", file=sys.stderr) as bar:
        report = retention.purge(store, retain, progress=bar.update, export=export)
    if export_path:
        out.close()
        with store.transaction():
            store.audit("cli", "purge.export", "archive", f"{archived['written']} conversation(s) written"
                        + (f"; {archived['left_out']} not shared, left out" if archived["left_out"] else ""))
        if archived["left_out"]:
            click.echo(f"{archived['left_out']} conversation(s) not written to {export_path}: not shared (the person "
                       "has not agreed to share them) and nothing in them flagged", err=True)
    click.echo(f"purged: {report.summary()}")


@main.command("rotate-key")
@click.option("--batch", default=500, show_default=True, help="Values re-encrypted per transaction.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def rotate_key(batch: int, db: str | None) -> None:
    """Re-encrypt every stored answer, transcript and name with a new database key.

    Needs the database to itself: it refuses while the bot, the web site or another command has
    it open, so stop those first. The new key is written beside the old one (<key file>.new) before anything
    changes; both open the database until every value is re-encrypted, then the new key replaces
    the old. If it is stopped, run it again: it carries on where it was.
    """
    from bot import encryption
    from bot.store import StoreError

    store = _store(db, create=False)
    total = store.count_person_text()
    try:
        with click.progressbar(length=max(total, 1), label="Re-encrypting", file=sys.stderr) as bar:
            done = encryption.rotate_key(store, batch=batch, progress=bar.update)
    except StoreError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if done.key_file:
        click.echo(f"rotated: {done.changed} value(s) re-encrypted; the new key is in {done.key_file}")
    else:
        click.echo(f"rotated: {done.changed} value(s) re-encrypted; now set RESTORATIVE_DB_KEY to the key in"
                   " RESTORATIVE_DB_NEW_KEY and remove RESTORATIVE_DB_NEW_KEY")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def backup(file: str, force: bool, db: str | None) -> None:
    """Copy the database to FILE while the bot runs (SQLite's backup API), readable by you only.

    The copy stays encrypted: it opens only with the database key, so keep the key apart from it.
    """
    from bot import encryption
    from bot.store import StoreError

    store = _store(db, create=False)
    try:
        encryption.backup(store, file, force=force)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"backed up to {file}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--db", type=click.Path(), help=DB_HELP)
def restore(file: str, db: str | None) -> None:
    """Replace the database with the backup FILE, after checking it (integrity, schema version,
    and that the database key decrypts its text). Needs the database to itself: stop the bot
    and the web site first."""
    from bot import encryption
    from bot.store import StoreError

    store = _store(db)
    try:
        reapplied = encryption.restore(store, file)
    except StoreError as exc:
        _fail(str(exc))
    finally:
        store.close()
    click.echo(f"restored from {file}")
    if reapplied:
        again = sum(sum(counts.values()) for _, counts in reapplied)
        click.echo(f"re-applied {len(reapplied)} approved erasure(s) made since that backup or before it"
                   f" (requests {', '.join('#' + str(rid) for rid, _ in reapplied)}; {again} value(s) erased again);"
                   " the requests and their audit lines are kept. The backup file itself still holds those"
                   " words: delete it, or keep it only until your backups expire.")


@case.command("reassign")
@click.argument("ref")
@click.option("--to", "to", required=True, help="Telegram user id of the practitioner taking the case over.")
@click.option("--from", "from_", help="Telegram user id of the practitioner holding it, if several use REF.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def case_reassign(ref: str, to: str, from_: str | None, db: str | None) -> None:
    """Move case REF, with its open invitations, to another practitioner (audited)."""
    from bot.access import Refused

    try:
        done = _access(db).reassign(None, ref, _who(to), _who(from_) if from_ else None)
    except Refused:
        _fail(f"no case {ref}" + (f" held by {from_}" if from_ else "") + "; see restorative-bot audit or the /cases command")
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"case {ref} moved from {done['from'].removeprefix('tg:')} to {done['to'].removeprefix('tg:')}")


@main.command()
@click.argument("conversation_id", type=int)
@click.argument("text")
@click.option("--by", "by", required=True, help="The commenting supervisor's Telegram user id.")
@click.option("--step", help="Comment on this answer (a step id) rather than the whole transcript.")
@click.option("--shared", is_flag=True, help="The family sees this comment too (default: internal, staff only).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def comment(conversation_id: int, text: str, by: str, step: str | None, shared: bool, db: str | None) -> None:
    """Comment on a transcript as a supervisor: internal (staff only) unless --shared."""
    from bot.access import Refused

    access = _access(db)
    try:
        access.comment(_who(by), conversation_id, text, step, shared)
    except Refused:
        _fail(f"{by} cannot comment on conversation {conversation_id}: only a supervisor of the practitioner "
              "holding it (or an admin) can, and only where they may read it")
    except ValueError as exc:
        _fail(str(exc))
    if shared:
        click.echo(f"shared comment saved on transcript {conversation_id}: the family will see it")
    else:
        click.echo(f"internal comment saved on transcript {conversation_id}: staff only, the family will not see it "
                   "(add --shared for one they see)")


@main.command()
@click.option("--since", help="Only entries from this date (YYYY-MM-DD or ISO 8601) on.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def audit(since: str | None, db: str | None) -> None:
    """List the audit log: who read, exported, changed or was refused what, and when."""
    store = _store(db, create=False)
    for r in store.audit_log(since):
        click.echo(f"{r['created_at'][:19]}  {r['actor'] or '-':<16} {r['action']:<28} {r['target'] or ''} {r['detail'] or ''}".rstrip())


@main.command()
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet acknowledged.")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
def alerts(open_only: bool, db: str | None, config_path: str | None) -> None:
    """List safeguarding alerts (practice ones marked: serve never sends them)."""
    from bot.names import person_label
    from bot.respondent import described

    config = _config(config_path)
    names = config.people_names == "telegram"
    store = _store(db, create=False, config=config)
    rows = store.alerts(open_only=open_only)
    if not rows:
        click.echo("No open alerts." if open_only else "No alerts.")
        return
    for a in rows:
        state = f"acknowledged {a['acknowledged_at']} by {a['acknowledged_by']}" if a["acknowledged_at"] else "OPEN"
        if a.get("practice"):
            state += " · PRACTICE (never sent)"
        who = person_label(a["person_key"], a["display_name"], a.get("pseudonym"), names)
        who += f", case {a['case_ref']}" if a.get("case_ref") else ""
        answering = f" · answering: {described(a['respondent'])}" if a.get("respondent") else ""
        click.echo(f"#{a['id']}  {a['created_at']}  {state}\n    {who} · {a['flow_id'] or '-'} · conversation {a['conversation_id']} · {a['concern']}{answering}\n    “{a['words']}”")


@main.command()
@click.option("--older-than", "older_than", type=float, metavar="HOURS",
              help="Only answers unread for longer than this many hours.")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
def unread(older_than: float | None, db: str | None, config_path: str | None, flow_paths: tuple[str, ...]) -> None:
    """List free-text answers nobody with access has read yet (not the answers themselves)."""
    if older_than is not None and older_than < 0:
        _fail("--older-than takes a number of hours, 0 or more, e.g. --older-than 48")
    config = _config(config_path)
    store = _store(db, create=False, config=config)
    from bot.access import Access

    reading = config.reading(store, Access(store, _library(flow_paths), config))
    rows = reading.unread(older_than)
    if not rows:
        click.echo("Nothing unread." if older_than is None else f"Nothing unread for longer than {older_than:g} hours.")
        return
    for r in rows:
        flag = "  FLAGGED" if r["flagged"] else ""
        who = r["practitioner_name"] or r["practitioner_key"] or "-"
        click.echo(f"{r['created_at'][:19]}  conversation {r['conversation_id']}#{r['step_id'] or '-'}  "
                   f"case {r['case_ref'] or '-'}  practitioner {who}{flag}")


@main.command("reminders")
@click.option("--case", "case_ref", required=True, help="The case reference, e.g. FGC-2041.")
@click.option("--cancel", "cancel_id", type=int, help="Cancel the waiting reminder with this number.")
@click.option("--db", type=click.Path(dir_okay=False), help="Database file (default $RESTORATIVE_DB or restorative.db).")
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
def reminders(case_ref: str, cancel_id: int | None, db: str | None, config_path: str | None) -> None:
    """List the reminders waiting in a case (never their answers), or cancel one."""
    config = _config(config_path)
    store = _store(db, create=False, config=config)
    schedule = config.schedule(store)
    if cancel_id is not None:
        if not schedule.cancel_in_case(case_ref, cancel_id, "cli"):
            _fail(f"there is no waiting reminder {cancel_id} in case {case_ref}; "
                  f"run `restorative-bot reminders --case {case_ref}` to see them")
        click.echo(f"Reminder {cancel_id} in case {case_ref} is cancelled.")
        return
    rows = schedule.of_case(case_ref)
    if not rows:
        click.echo(f"No reminders are waiting in case {case_ref}.")
        return
    for r in rows:
        click.echo(f"{r['id']}  {schedule.local(r['due_at'])}  {r['kind']}  to {r['person_key']}  {r['state']}  ({r['why']})")


@main.group("safeguarding")
def safeguarding_group() -> None:
    """Safeguarding tools for leads: try words against the lexicon."""


@safeguarding_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input line: text, tier, concerns, matched.")
@click.option("--lexicon", "lexicon", multiple=True, type=click.Path(),
              help="Override lexicon file merged on the packaged one (repeatable; later files win).")
@click.option("--score", type=click.IntRange(0, 10), default=None,
              help="Check as if the person's latest 0-10 scale answer were this (a low score can raise review to alert).")
def safeguarding_check(as_json: bool, lexicon: tuple[str, ...], score: int | None) -> None:
    """Read lines on standard input; print each line's tier (alert, review or -), concerns and matched words."""
    from bot.safeguarding.check import run

    config = _safeguarding(lexicon)
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    try:
        run(config, stdin, stdout, as_json=as_json, context={"score": score} if score is not None else None,
            flush_each=stdin.isatty())
    except BrokenPipeError:  # e.g. piped into head: stop quietly, without a traceback at exit
        os._exit(0)
    except KeyboardInterrupt:
        sys.exit(130)


@safeguarding_group.command("missed")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per missed disclosure.")
def safeguarding_missed(db: str | None, as_json: bool) -> None:
    """List disclosures the detector missed (recorded by practitioners and leads with /missed), verbatim."""
    import json as _json

    store = _store(db, create=False)
    rows = store.missed_disclosures()
    with store.transaction():
        store.audit("cli", "safeguarding.missed.list", None, f"{len(rows)} item(s)")
    if as_json:
        for r in rows:
            click.echo(_json.dumps({"id": r["id"], "time": r["created_at"], "conversation": r["conversation_id"],
                                    "flow": r["flow_id"], "step": r["step_id"], "reported_by": r["reported_by"],
                                    "words": r["words"]}, ensure_ascii=False))
        return
    if not rows:
        click.echo("No missed disclosures recorded.")
        return
    for r in rows:
        click.echo(f"#{r['id']}  {r['created_at'][:19]}  conversation {r['conversation_id']}#{r['step_id'] or '-'}"
                   f"  {r['flow_id'] or '-'}  reported by {r['reported_by']}\n    “{r['words']}”")


@main.command("web")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (put HTTPS in front of it).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--api-url", envvar="TELEGRAM_API_URL", help="Bot API base URL for comment notices (env TELEGRAM_API_URL).")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def web(db, config_path, flow_paths, host, port, api_url, log_level) -> None:
    """Run the review website (staff sign in with a link from /web in Telegram or web-link).

    Comment notices go to Telegram when $TELEGRAM_BOT_TOKEN is set."""
    from bot import logs
    from bot.web.server import make_site, run, telegram_notify

    token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    logs.setup(log_level, secrets=[token])
    config = _config(config_path)
    store = _store(db, config=config)
    path = store.path
    store.close()
    site = make_site(path, _library(flow_paths), config, safeguarding=_safeguarding(config.lexicon),
                     notify=telegram_notify(token, api_url) if token else None)
    run(site, host, port)


@main.command("web-link")
@click.argument("telegram_id")
@click.option("--db", type=click.Path(), help=DB_HELP)
@click.option("--config", "config_path", type=click.Path(), help=CONFIG_HELP)
@click.option("--url", "base_url", help="The website's address (default: web: url: in the configuration, else http://127.0.0.1:8080).")
def web_link(telegram_id, db, config_path, base_url) -> None:
    """Print a one-time sign-in link to the review website for a member of staff."""
    from bot.access import Refused
    from bot.web.server import link_url, signin_for

    access = _access(db, config_path)
    access.seed()
    try:
        code = signin_for(access).link(_who(telegram_id))
    except Refused:
        _fail(f"{telegram_id} is not a practitioner, supervisor, administrator or safeguarding lead; "
              "grant a role first (restorative-bot role grant ID practitioner)")
    minutes = access.config.web_link_minutes
    click.echo(link_url(base_url or access.config.web_url or "http://127.0.0.1:8080", code))
    click.echo(f"It works once, for {minutes:g} minutes.", err=True)


def _register_rehearsal() -> None:
    from bot.coach.commands import register

    register(main)


_register_rehearsal()


if __name__ == "__main__":
    main()


@main.group("i18n")
def i18n_group() -> None:
    """Message catalogues (bot/locale/): extract the English texts, check every translation."""


@i18n_group.command("extract")
@click.argument("tags", nargs=-1)
def i18n_extract(tags: tuple[str, ...]) -> None:
    """Write bot/locale/messages.pot from bot/messages.yaml and bot/safeguarding.yaml, and bring
    each language's messages.po up to date (TAGS: only these; a new tag starts a catalogue)."""
    from bot.i18n.catalogues import extract

    for path in extract(list(tags) or None):
        click.echo(f"wrote {path}")


@i18n_group.command("lock")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--lang", "langs", multiple=True, metavar="TAG",
              help="Only these languages' translations have been re-checked (repeat for more; default: all).")
def i18n_lock(paths: tuple[str, ...], langs: tuple[str, ...]) -> None:
    """Record that the translations in flow files PATHS (default: flows/) were checked against the
    English as it is now (translations.lock), so that `validate` flags them when it changes."""
    from bot.engine.library import DEFAULT_FLOWS
    from bot.i18n.lock import files_in, lock

    targets = [Path(p) for p in paths] or [DEFAULT_FLOWS]
    written, errors = lock(list(files_in(targets)), list(langs) or None,
                           root=next((p for p in targets if p.is_dir()), None))
    for e in errors:
        click.echo(str(e))
    if errors:
        click.echo("nothing written: fix the files above first", err=True)
        sys.exit(1)
    for path in written:
        click.echo(f"wrote {path}")


@i18n_group.command("check")
def i18n_check() -> None:
    """Every catalogue complete, with the same placeholders as the English: exit 1 if not."""
    from bot.i18n.catalogues import catalogue_tags, problems

    found = [p for tag in catalogue_tags() for p in problems(tag)]
    for p in found:
        click.echo(p)
    if found:
        sys.exit(1)
    click.echo(f"{len(catalogue_tags())} catalogue(s) complete.")
