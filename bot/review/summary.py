"""The coordinator's summary: one page per case, grouped by what a coordinator plans with.

A flow says which answers feed which section with ``summary: SECTION`` on a question
(sections: :data:`bot.engine.flow.SUMMARY_SECTIONS`; headings and wording in bot/messages.yaml,
``summary:``). :func:`build` gathers, for one viewer, the answers of every conversation in the
case that this viewer may read — decided by :meth:`bot.access.Access.summary_sources`, the
same rule as transcripts, so a young person who has not agreed to share is simply not there —
and names, for each item, who said it and when. :func:`render_md`, :func:`render_html` and
:func:`render_telegram` only lay it out; every word people typed is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from jinja2 import Environment

from bot.engine.flow import SUMMARY_SECTIONS
from bot.messages import msg
from bot.names import person_label
from bot.review.export import md_escape, md_quote, visible
from bot.store import from_iso


@dataclass
class Item:
    section: str
    question: str  # as the flow asks it
    answer: str  # as it was read back to the person (labels, "Yes", a date in words)
    who: str  # the person, by their pseudonym in the case where one is set
    respondent: str  # "a young person (13 to 17)", ... (as bot.respondent names them)
    when: str  # UTC timestamp the answer was given
    flow: str  # the flow's title
    conversation_id: int
    step_id: str


@dataclass
class Section:
    name: str
    heading: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Summary:
    ref: str
    sections: list[Section]  # only those with something in them, in SUMMARY_SECTIONS order
    hidden: int = 0  # conversations in the case not shared with this viewer

    @property
    def empty(self) -> bool:
        return not self.sections


def build(access, viewer: str | None, ref: str, practitioner: str | None = None) -> Summary:
    """The summary of case ``ref`` as ``viewer`` may see it (None: the command line, which reads
    as the people who run the service). Raises :class:`bot.access.Refused` for a case the viewer
    has no part in, exactly like reading its transcripts."""
    conversations, hidden = access.summary_sources(viewer, ref, practitioner)
    store = access.store
    by_section: dict[str, list[Item]] = {name: [] for name in SUMMARY_SECTIONS}
    for row in conversations:
        conv = store.conversation(row["id"])
        runner = access.library.runner_for(conv.flow_sha, lambda: store.snapshot_source(conv.flow_sha))
        flow = runner.flow
        fed = {s.id: s for s in flow.steps if s.summary}
        if not fed:
            continue
        withheld = access.withheld(viewer or "cli", conv.id)  # parts the person chose not to share
        answers = [a for a in store.answers(conv.id) if a["step_id"] not in withheld]
        values = {a["step_id"]: a["value"] for a in answers}
        who = person_label(row["person_key"], row.get("display_name"), row.get("pseudonym"), access.telegram_names)
        respondent = msg(f"respondent.named.{conv.respondent or 'unknown'}")
        for a in answers:
            step = fed.get(a["step_id"])
            if step is None or a["value"] is None:  # skipped: nothing to plan with
                continue
            question = step.render(runner.context(values))
            by_section[step.summary].append(Item(step.summary, question, a["shown"] or "", who, respondent,
                                                 a["answered_at"], flow.title, conv.id, step.id))
    sections = [Section(name, msg(f"summary.sections.{name}"), sorted(items, key=lambda i: (i.when, i.conversation_id)))
                for name, items in by_section.items() if items]
    return Summary(ref, sections, hidden)


def when(ts: str) -> str:
    """A stored UTC timestamp as people read it: 26 Nov 2026, 13:24 UTC."""
    try:
        t = from_iso(ts)
    except (TypeError, ValueError):
        return ts or "—"
    return f"{t.day} {t:%b %Y}, {t:%H:%M} UTC"


# -- Markdown ---------------------------------------------------------------------------------
def render_md(summary: Summary) -> str:
    """Markdown where only this function makes structure: every answer and name is escaped or
    quoted (bot.review.export)."""
    out = [f"# {md_escape(msg('summary.title', ref=summary.ref))}", "", md_escape(msg("summary.intro")), ""]
    if summary.empty:
        out += [md_escape(msg("summary.nothing")), ""]
    for section in summary.sections:
        out += [f"## {md_escape(section.heading)}", ""]
        for item in section.items:
            out.append(f"- **{md_escape(item.who)}** ({md_escape(item.respondent)}), {md_escape(when(item.when))}"
                       f" — {md_escape(item.flow)}: *{md_escape(item.question)}*")
            out += md_quote(item.answer, "  ")
            out.append("")
    if summary.hidden:
        out += [md_escape(msg("summary.hidden", n=summary.hidden)), ""]
    return "\n".join(out).rstrip() + "\n"


# -- HTML (one self-contained page, or the part of it to put inside another page) ----------------
_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_BODY = _ENV.from_string("""\
<section class="summary">
<h1>{{ title }}</h1>
<p class="intro">{{ intro }}</p>
{% if summary.empty %}
<p>{{ nothing }}</p>
{% endif %}
{% for section in summary.sections %}
<h2 id="{{ section.name }}">{{ section.heading }}</h2>
<ul>
{% for item in section.items %}
<li><div class="meta"><strong>{{ clean(item.who) }}</strong> ({{ item.respondent }}), {{ when(item.when) }} — {{ item.flow }}</div>
<div class="question">{{ clean(item.question) }}</div>
<blockquote>{{ clean(item.answer) }}</blockquote></li>
{% endfor %}
</ul>
{% endfor %}
{% if summary.hidden %}
<p class="hidden">{{ hidden }}</p>
{% endif %}
</section>
""")
_PAGE = _ENV.from_string("""\
<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>{{ title }}</title><style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.4rem} h2{font-size:1.1rem;border-bottom:1px solid #ccc;margin-top:1.6rem}
ul{list-style:none;padding:0} li{margin:.6rem 0;page-break-inside:avoid}
.meta{font-size:.8rem;color:#555} .question{font-style:italic}
blockquote{margin:.2rem 0 0 0;padding:.3rem .7rem;background:#fff8e6;border-left:4px solid #e0a800;white-space:pre-wrap}
@media print{body{margin:0;max-width:none}}
</style></head><body>
{{ body }}
</body></html>
""")


def render_html(summary: Summary, page: bool = True) -> str:
    """HTML with every value escaped by Jinja2's autoescape (and invisible characters shown by
    name). ``page=False`` gives the section alone, to put inside another page (the web site)."""
    body = _BODY.render(summary=summary, title=msg("summary.title", ref=summary.ref), intro=msg("summary.intro"),
                        nothing=msg("summary.nothing"), hidden=msg("summary.hidden", n=summary.hidden),
                        when=when, clean=visible)
    if not page:
        return body
    from markupsafe import Markup

    return _PAGE.render(title=msg("summary.title", ref=summary.ref), body=Markup(body))


# -- Telegram (HTML parse mode; each message under Telegram's 4,096 characters) -------------------
TELEGRAM_LIMIT = 4000


def render_telegram(summary: Summary) -> list[str]:
    """Messages in Telegram's HTML (bold headings, quoted answers), every value escaped; split
    between items so each message stays whole and under the limit."""
    e = lambda text: html.escape(visible(text), quote=False)  # noqa: E731
    blocks = [f"<b>{e(msg('summary.title', ref=summary.ref))}</b>\n{e(msg('summary.intro'))}"]
    if summary.empty:
        blocks.append(e(msg("summary.nothing")))
    for section in summary.sections:
        first = True
        for item in section.items:
            head = f"<b>{e(section.heading)}</b>\n" if first else ""
            first = False
            raw, cut = item.answer, False
            while len(e(raw)) > TELEGRAM_LIMIT // 2:  # one very long answer: the transcript has it whole
                raw, cut = raw[:len(raw) * 3 // 4], True
            answer = e(raw) + (" " + e(msg("summary.cut")) if cut else "")
            blocks.append(f"{head}<i>{e(item.who)}</i> ({e(item.respondent)}), {e(when(item.when))}\n"
                          f"{e(item.question)}\n<blockquote>{answer}</blockquote>")
    if summary.hidden:
        blocks.append(e(msg("summary.hidden", n=summary.hidden)))
    messages, current = [], ""
    for block in blocks:
        if current and len(current) + 2 + len(block) > TELEGRAM_LIMIT:
            messages.append(current)
            current = block
        else:
            current = f"{current}\n\n{block}" if current else block
    if current:
        messages.append(current)
    return messages


RENDERERS = {"md": render_md, "html": render_html}


def summary_text(access, viewer: str | None, ref: str, fmt: str = "md", practitioner: str | None = None) -> str:
    """The whole page in ``fmt`` (md or html), for the command line and exports."""
    if fmt not in RENDERERS:
        raise ValueError(f"unknown format '{fmt}'; use md or html")
    return RENDERERS[fmt](build(access, viewer, ref, practitioner))
