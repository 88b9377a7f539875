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


def _store(db: str | None, create: bool = True):
    from bot.store import Store, StoreError, default_db_path

    try:
        return Store(db or default_db_path(), create=create)
    except StoreError as exc:
        _fail(str(exc))


def _safeguarding(paths: tuple[str, ...] = ()):
    try:
        from bot.safeguarding import SafeguardingConfig, SafeguardingConfigError
    except ImportError:  # pragma: no cover - the module ships with the package
        return None
    try:
        return SafeguardingConfig.load(*paths)
    except SafeguardingConfigError as exc:
        _fail(str(exc), 1)


def _service(db, flows, safeguarding_files=()):
    from bot.conversation import ConversationService

    return ConversationService(_store(db), _library(flows), safeguarding=_safeguarding(safeguarding_files))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="restorative-bot")
def main() -> None:
    """restorative-bot: guided conversations for restorative practice with children and families.

    Flows are YAML files (see flows/); every answer is stored in SQLite.
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Load and lint flow files; print file:line:col: message for each error."""
    from bot.engine.library import DEFAULT_FLOWS, validate_paths

    flows, errors = validate_paths(list(paths) or [DEFAULT_FLOWS])
    for e in errors:
        click.echo(str(e))
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
@click.option("--as", "as_name", default=None, help="Who is answering (default: your user name).")
@click.option("--flows", "flow_paths", multiple=True, type=click.Path(), help=FLOWS_HELP)
def chat(flow: str | None, db: str | None, as_name: str | None, flow_paths: tuple[str, ...]) -> None:
    """Converse in the terminal (works with piped stdin)."""
    from bot.frontends.console import run_console

    service = _service(db, flow_paths)
    if flow is not None and service.library.get(flow) is None:
        known = ", ".join(f.id for f in service.library)
        _fail(f"no flow called '{flow}'; choose one of: {known}")
    name = as_name or os.environ.get("USER") or "you"
    sys.exit(run_console(service, f"console:{name}", name, flow))


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
@click.option("--all", "all_", is_flag=True, help="Export every conversation.")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv", "json"]), default="md", show_default=True)
@click.option("--out", "-o", type=click.Path(), help="Write to this file (default: standard output).")
@click.option("--db", type=click.Path(), help=DB_HELP)
def export(session_id: int | None, all_: bool, fmt: str, out: str | None, db: str | None) -> None:
    """Write transcripts out: flow, version, who, when, every question and answer."""
    from bot.review.export import ExportError
    from bot.review.export import export as do_export

    if session_id is None and not all_:
        _fail("say what to export: --session ID or --all")
    store = _store(db, create=False)
    try:
        text = do_export(store, session=session_id, all_=all_, fmt=fmt)
    except ExportError as exc:
        _fail(str(exc))
    if out:
        Path(out).write_text(text, encoding="utf-8")
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
@click.option("--webhook-secret", envvar="TELEGRAM_WEBHOOK_SECRET", help="Webhook mode: secret token Telegram must send (env TELEGRAM_WEBHOOK_SECRET).")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def serve(db, flow_paths, token_file, api_url, webhook_url, listen, port, webhook_secret, log_level) -> None:
    """Run the Telegram bot (token from $TELEGRAM_BOT_TOKEN or --token-file)."""
    from bot import logs

    token = Path(token_file).read_text().strip() if token_file else os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        _fail("no bot token: set TELEGRAM_BOT_TOKEN or pass --token-file (ask @BotFather for a token)")
    if api_url and not api_url.rstrip("/").endswith("/bot"):
        _fail(f"--api-url must look like http://host:port/bot, not {api_url}")
    if webhook_url and not webhook_secret:
        import secrets

        webhook_secret = secrets.token_urlsafe(32)
    logs.setup(log_level, secrets=[token, webhook_secret or ""])
    from bot.frontends.telegram.app import serve as run

    service = _service(db, flow_paths)
    run(service, token, api_url=api_url, webhook_url=webhook_url, listen=listen, port=port, secret_token=webhook_secret)


@main.command()
@click.option("--open", "open_only", is_flag=True, help="Only alerts not yet acknowledged.")
@click.option("--db", type=click.Path(), help=DB_HELP)
def alerts(open_only: bool, db: str | None) -> None:
    """List safeguarding alerts."""
    store = _store(db, create=False)
    rows = store.alerts(open_only=open_only)
    if not rows:
        click.echo("No open alerts." if open_only else "No alerts.")
        return
    for a in rows:
        state = f"acknowledged {a['acknowledged_at']} by {a['acknowledged_by']}" if a["acknowledged_at"] else "OPEN"
        who = a["display_name"] or a["person_key"]
        click.echo(f"#{a['id']}  {a['created_at']}  {state}\n    {who} · {a['flow_id'] or '-'} · conversation {a['conversation_id']} · {a['concern']}\n    “{a['words']}”")


if __name__ == "__main__":
    main()
