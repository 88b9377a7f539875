"""Transcripts out: Markdown, HTML (one self-contained file), CSV and JSON."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata

from bot.messages import msg
from bot.names import person_label
from bot.store import Store


class ExportError(Exception):
    pass


def transcript_data(store: Store, conversation_id: int, internal_comments: bool = True,
                    telegram_names: bool = False, withhold: frozenset = frozenset(),
                    safeguarding_marks: bool | None = None, plain_questions: bool = False) -> dict:
    """Everything about one conversation. ``internal_comments=False`` for anyone who is not
    staff (the family): only comments shared with them are included, and no flow's notes
    for the worker (``note_for_worker``). ``withhold``: steps this reader may not see (the parts
    the person chose not to share, :meth:`bot.access.Access.withheld`): their answers, lines,
    scores and comments are left out, and ``withheld`` lists the questions. The person is named by
    their pseudonym in the case (see :mod:`bot.names`), never by a Telegram first name unless
    ``telegram_names`` (the deployment's ``people_names: telegram``). ``safeguarding_marks``
    (default: as ``internal_comments``): the safeguarding flags on lines and the items worth a
    look, for staff only. The person reading their own words (perhaps on a shared phone) is not
    shown which of them were marked: the quiet review tier stays quiet, and an alert was already
    told to them, in the calm words the flow chose. Questions are filled in only with the
    answers this reader may see; ``plain_questions``: with none (as the flow writes them, the
    filled-in parts shown as "…"), the question lines of the transcript too."""
    marks = internal_comments if safeguarding_marks is None else safeguarding_marks
    conv = store.conversation(conversation_id)
    if conv is None:
        raise ExportError(f"no conversation with id {conversation_id}")
    person = store.get_person(conv.person_id) or {}
    source = store.snapshot_source(conv.flow_sha) or ""
    flow = _english_flow(source, conv.flow_id)
    title = flow.title if flow is not None else conv.flow_id
    if flow is None:
        for line in source.splitlines():
            if line.startswith("title:"):
                title = line.split(":", 1)[1].strip().strip("'\"")
                break
    answers = store.answers(conversation_id)
    # filled in only with what this reader may see: "What puts it at 3 and not lower?" tells a
    # score kept back from them
    english = _plain_questions(flow) if plain_questions else \
        _english_questions(flow, [a for a in answers if a["step_id"] not in withhold], withhold)
    language = conv.language or "en"
    lines = store.transcript(conversation_id)
    if plain_questions and flow is not None:  # the question lines as the flow writes them, in English
        lines = [dict(t, text=english[t["step_id"]], language="en")
                 if t["direction"] == "out" and t["kind"] == "question" and t["step_id"] in english else t
                 for t in lines]
    shown = _shown_questions(lines, language)
    withheld = [{"step_id": a["step_id"], "question_en": english.get(a["step_id"]) or shown.get(a["step_id"], (None,))[0]}
                for a in answers if a["step_id"] in withhold]
    if withhold:
        answers = [a for a in answers if a["step_id"] not in withhold]
        lines = [t for t in lines if t["step_id"] not in withhold]
    return {
        "conversation_id": conv.id,
        "flow": {"id": conv.flow_id, "version": conv.flow_version, "title": title, "sha256": conv.flow_sha},
        "person": {"key": person.get("key"), "pseudonym": store.pseudonym(conv.case_id, conv.person_id),
                   "name": person_label(person.get("key"), person.get("display_name"),
                                        store.pseudonym(conv.case_id, conv.person_id), telegram_names)},
        "status": conv.status,
        "status_text": status_words(conv.status),  # in words, as the page shows it
        "started_at": conv.started_at,
        "updated_at": conv.updated_at,
        "finished_at": conv.finished_at,
        # the language the conversation is in (it may have switched: each line says its own)
        "language": language,
        "answers": [
            {"step_id": a["step_id"], "value": a["value"], "raw": a["raw"], "shown": a["shown"],
             "answered_at": a["answered_at"], "revision": a["revision"],
             # the English question, beside the answer in any language, and the words the person
             # was shown when that was not English (None in English)
             "question_en": english.get(a["step_id"]) or shown.get(a["step_id"], (None, None))[0],
             "question_shown": _if_not_english(*shown.get(a["step_id"], (None, None)))}
            for a in answers
        ],
        "comments": [
            {"time": m["created_at"], "by": m["author_name"] or m["author_key"], "step_id": m["step_id"], "text": m["text"],
             "visibility": m["visibility"]}
            for m in store.comments(conversation_id, shared_only=not internal_comments)
            if m["step_id"] not in withhold
        ],
        "scores": {a["step_id"]: a["value"] for a in store.scale_scores(conversation_id) if a["step_id"] not in withhold},
        # answered, but in a part the person chose not to share with this reader
        "withheld": withheld,
        "case": (store.case_by_id(conv.case_id) or {}).get("ref") if conv.case_id else None,
        "transcript": [
            {"time": t["created_at"], "from": "bot" if t["direction"] == "out" else "person", "kind": t["kind"],
             "step_id": t["step_id"], "text": t["text"], "flagged": marks and bool(t.get("flagged")),
             "tier": (t.get("tier") or ("alert" if t.get("flagged") else None)) if marks else None,
             "language": t.get("language") or language,
             "media": t.get("media")}  # the words came with a picture or file (not kept)
            for t in lines
            if internal_comments or t["kind"] != "worker_note"  # notes for the worker stay with staff
        ],
        # Review-tier safeguarding items not yet looked at: first in every export (issue 12).
        "worth_a_look": [
            {"id": r["id"], "time": r["created_at"], "step_id": r["step_id"], "concern": r["concern"],
             "matched": r["matched"]}
            # kept whatever the person chose: a safeguarding signal is never withheld (they are told so)
            for r in (store.review_items(conversation_ids=[conversation_id]) if marks else ())
        ],
    }


def status_words(status: str | None) -> str:
    """A conversation's status as people say it ("in progress", "completed", "stopped")."""
    try:
        return msg(f"status.{status}")
    except (KeyError, TypeError):
        return msg("status.other", status=(status or "").replace("_", " "))


def _progress_line(line: str, language: str | None) -> bool:
    """Whether a line is the progress line ("Question 2 of 6") in the language it was shown in."""
    from bot import i18n

    with i18n.using(language if i18n.known(language) else i18n.DEFAULT):
        forms = (msg("navigation.progress"), msg("navigation.progress_open"))
    for form in forms:
        pattern = re.escape(form).replace(re.escape("{n}"), r"\d+").replace(re.escape("{total}"), r"\d+")
        if re.fullmatch(pattern, line.strip()):
            return True
    return False


def question_line(text: str | None, language: str | None = None) -> str:
    """The wording of a question line as recorded: the progress line ("Question 2 of 6") left
    out, the hints after the question too."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) > 1 and (_progress_line(lines[0], language) or _progress_line(lines[0], "en")):
        lines = lines[1:]
    return lines[0] if lines else ""


def _shown_questions(lines: list[dict], language: str) -> dict[str, tuple[str, str]]:
    """step id -> (the question as the person was shown it last, the language it was shown in)."""
    out = {}
    for t in lines:
        if t["direction"] == "out" and t["kind"] == "question" and t["step_id"]:
            lang = t.get("language") or language
            out[t["step_id"]] = (question_line(t["text"], lang), lang)
    return out


def _if_not_english(text: str | None, language: str | None) -> str | None:
    return text if text and language and language != "en" else None


def _english_flow(source: str, flow_id: str):
    """The English wording of the flow version a conversation ran on (None if it cannot be read)."""
    if not source:
        return None
    from bot.engine.loader import load_flow_text

    flow, _errors = load_flow_text(source, f"<{flow_id}>")
    return flow


def _english_questions(flow, answers: list[dict], withhold: frozenset = frozenset()) -> dict[str, str]:
    """step id -> the question in English, filled in with the answers as far as it can be.
    A question whose wording uses an answer of a step in ``withhold`` (kept back from the
    reader), or that cannot be filled in, is shown as the flow writes it (:func:`_plain_questions`)."""
    if flow is None:
        return {}
    values = {a["step_id"]: a["value"] for a in answers}
    shown = {a["step_id"]: a["shown"] for a in answers}
    uses = re.compile(r"\b(?:" + "|".join(map(re.escape, withhold)) + r")\b") if withhold else None
    out = {}
    for step in flow.steps:
        if not step.is_question:
            continue
        if uses is not None and any(uses.search(m) for m in _MARKUP.findall(step.text)):
            out[step.id] = _plain(step.text)
            continue
        try:
            out[step.id] = step.render({"answers": values, "shown": shown, "answer": None, "privacy": "",
                                        "who_can_see": ""})
        except Exception:  # noqa: BLE001 - a template that needs more than the answers: show it as written
            out[step.id] = _plain(step.text)
    return out


_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def _plain_questions(flow) -> dict[str, str]:
    """step id -> the question in English as the flow writes it, each filled-in part shown as
    "…" (filled in with no answer at all)."""
    if flow is None:
        return {}
    return {step.id: _plain(step.text) for step in flow.steps if step.is_question}


def _plain(text: str) -> str:
    """A question's text as the flow writes it, each filled-in part shown as "…"."""
    plain = _MARKUP.sub(lambda m: "…" if m.group(0).startswith("{{") else "", text)
    return re.sub(r"[ \t]{2,}", " ", plain).strip()


def _language_name(tag: str | None) -> str:
    from bot import i18n

    lang = i18n.language(tag)
    return f"{lang.english_name} ({lang.tag})"


def _dir(language: str | None, text: str = "") -> str:
    """The HTML dir of a person's words or a line shown to them: rtl for a right-to-left
    language (Urdu, Arabic) or text that starts in a right-to-left script; otherwise auto,
    so the browser follows the words themselves."""
    from bot import i18n

    return "rtl" if i18n.direction(language) == "rtl" or i18n.is_rtl_text(text) else "auto"


def _lang_attrs(language: str | None, text: str = "") -> str:
    from bot import i18n

    tag = language if i18n.known(language) else "en"
    return f" lang='{tag}' dir='{_dir(tag, text)}'"


# -- making untrusted text safe to show ----------------------------------------------------
# Answers, comments and names are typed by people; an export must show them exactly as words,
# never let them add structure (a forged answer line, a fake heading, a link, HTML), never let
# an invisible character reorder or hide what a reader sees, and never start a spreadsheet
# formula.

# Joiners stay: emoji sequences and Persian, Hindi and other scripts need them, and they
# cannot reorder or hide text. Every other format or control character is shown by name.
_KEEP = {"\n", "\t", "\u200c", "\u200d"}


def visible(text: str) -> str:
    """Invisible format and control characters (bidi overrides, zero-width spaces, ...) as [U+XXXX]."""
    return "".join(f"[U+{ord(ch):04X}]" if ch not in _KEEP and unicodedata.category(ch) in ("Cf", "Cc", "Zl", "Zp")
                   else ch for ch in text)


_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*\d*)([#>+=.)-])")


def md_escape(text: str) -> str:
    """One line of untrusted text as literal Markdown: no emphasis, links, images, code,
    headings, lists or HTML (``<`` and ``&`` become entities). Line breaks become spaces:
    use :func:`md_quote` for text of several lines."""
    text = _MD_INLINE.sub(r"\\\1", visible(" ".join(text.splitlines())))
    text = html.escape(text, quote=False)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


def md_ident(text: str) -> str:
    """A step id as written (the linter allows only a-z, 0-9 and _, which cannot make structure
    inside a word); anything else escaped."""
    return text if _IDENT.match(text or "") else md_escape(text or "")


def md_quote(text: str | None, indent: str = "") -> list[str]:
    """Untrusted text as a Markdown block quote, every line quoted and escaped."""
    lines = (text or "").splitlines() or [""]
    return [f"{indent}> {md_escape(line)}".rstrip() for line in lines]


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: never a formula (OWASP: prefix with ')."""
    if value is None:
        return ""
    text = visible(str(value).replace("\r\n", "\n"))
    bare = text.lstrip(" \u200c\u200d")
    if text.startswith(_FORMULA) or bare.startswith(_FORMULA) or str(value).startswith(_FORMULA):
        return "'" + text
    return text


def render(items: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(items if len(items) != 1 else items[0], indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return "\n\n---\n\n".join(_markdown(d) for d in items) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        # the machine fields first, as before; the question and the status in words added after
        w.writerow(["conversation_id", "flow_id", "flow_version", "person", "time", "from", "kind", "step_id", "text", "flagged",
                    "question_en", "question_shown", "status", "status_text", "media"])
        for d in items:
            questions = {a["step_id"]: a for a in d["answers"]}
            for t in d["transcript"]:
                a = questions.get(t["step_id"]) or {}
                w.writerow([d["conversation_id"], csv_cell(d["flow"]["id"]), d["flow"]["version"], csv_cell(_who(d)),
                            csv_cell(t["time"]), t["from"], csv_cell(t["kind"]), csv_cell(t["step_id"]), csv_cell(t["text"]),
                            ("review" if t.get("tier") == "review" else "yes") if t["flagged"] else "",
                            csv_cell(a.get("question_en")), csv_cell(a.get("question_shown")), csv_cell(d["status"]),
                            csv_cell(_status(d)), csv_cell(t.get("media"))])
        return buf.getvalue()
    if fmt == "html":
        return _html(items)
    raise ExportError(f"unknown format '{fmt}'; use md, html, csv or json")


#: Kinds of line from the person that are not an answer to the question they were shown, and
#: are labelled as such wherever a transcript is read: a message they edited after sending it,
#: and words written after the conversation had ended.
NOTED_KINDS = ("edit", "after_end")


def line_note(line: dict) -> str:
    """The label beside a person's line of a noted kind ("changed an earlier message"), and
    beside words that came with a picture or file (not kept), else ''."""
    if line.get("from", "person") != "person":
        return ""
    kind = line.get("kind")
    notes = [msg(f"transcripts.kind_{kind}")] if kind in NOTED_KINDS else []
    if line.get("media"):
        notes.append(msg("transcripts.with_media"))
    return "; ".join(notes)


def _when(ts: str | None) -> str:
    """A stored UTC timestamp as people read it: 2026-11-26 13:24:32 UTC."""
    if not ts:
        return "—"
    return ts[:19].replace("T", " ") + " UTC"


def _withheld_key(d: dict) -> str:
    """Why parts of a transcript are not shown: the person chose not to share them, or (a
    worker or lead reading a conversation not shared with them) only what raised a
    safeguarding concern is shown (:meth:`bot.access.Access.transcript`)."""
    return "withheld_flagged_only" if d.get("withheld_note") == "flagged_only" else "withheld"


def _t(key: str, **values) -> str:
    """The words around the answers (``transcripts:`` in bot/messages.yaml), in the language in force."""
    return msg(f"transcripts.{key}", **values)


def _visibility(comment: dict) -> str:
    return _t("shared" if comment.get("visibility") == "shared" else "internal")


def _who(d: dict) -> str:
    return d["person"]["name"] or d["person"]["key"] or "unknown"


def _status(d: dict) -> str:
    return d.get("status_text") or status_words(d["status"])


def _shown_in(d: dict, a: dict) -> str:
    """ "as asked in Welsh (cy): Beth yw..." for an answer to a question not shown in English."""
    return msg("transcripts.shown", language=_language_name(d.get("language")), question=a["question_shown"])


def _markdown(d: dict) -> str:
    """Markdown where only this function makes structure: every answer, comment and line
    people typed is a quoted, escaped block (see :func:`md_quote`)."""
    e = md_escape
    out = [
        f"# {e(d['flow']['title'])} ({e(_t('version', version=d['flow']['version']))})",
        "",
        f"- {e(_t('conversation'))}: {d['conversation_id']}",
        f"- {e(_t('who'))}: {e(_who(d))}",
        *([f"- {e(_t('case'))}: {e(d['case'])}"] if d.get("case") else []),
        f"- {e(_t('started'))}: {_when(d['started_at'])}",
        f"- {e(_t('status'))}: {e(_status(d))}"
        + (f", {e(_t('finished', when=_when(d['finished_at'])))}" if d["finished_at"] else ""),
        *([f"- {e(_t('language'))}: {e(_language_name(d['language']))}"] if d.get("language", "en") != "en" else []),
        "",
    ]
    if d.get("worth_a_look"):
        out += [f"## {e(_t('worth_a_look'))}", ""]
        for r in d["worth_a_look"]:
            out.append(f"- R{r['id']} ({_when(r['time'])})" + (f" at **{md_ident(r['step_id'])}**" if r["step_id"] else "")
                       + f": {e(r['concern'])}" + (f" — matched “{e(r['matched'])}”" if r.get("matched") else ""))
        out.append("")
    out += [f"## {e(_t('answers'))}", ""]
    if not d["answers"]:
        out.append(e(_t("no_answers")))
    for a in d["answers"]:
        question = f" — {e(a['question_en'])}" if a.get("question_en") else ""
        out.append(f"- **{md_ident(a['step_id'])}**{question}")
        if a.get("question_shown"):
            out.append(f"  ({e(_shown_in(d, a))})")
        out += md_quote(a["shown"], "  ")
        if a["raw"] not in (None, a["shown"]):
            out.append("  >")
            out.append(f"  > {e(_t('typed'))}")
            out += md_quote(a["raw"], "  > ")
        out.append("")
    if d.get("withheld") or d.get("withheld_note"):
        out += [e(_t(_withheld_key(d))), ""] + [f"- **{md_ident(w['step_id'])}**" + (f" — {e(w['question_en'])}" if w.get("question_en") else "")
                                         for w in d["withheld"]] + [""]
    if d.get("scores"):
        out += ["", f"## {e(_t('scores'))}", ""] + [f"- {md_ident(k)}: {e(str(v))}" for k, v in d["scores"].items()]
    if d.get("comments"):
        out += ["", f"## {e(_t('comments'))}", ""]
        for c in d["comments"]:
            out.append(f"- {e(c['by'])} ({_when(c['time'])}, {e(_visibility(c))})"
                       + (f" on **{md_ident(c['step_id'])}**" if c["step_id"] else "") + ":")
            out += md_quote(c["text"], "  ")
            out.append("")
    out += ["", f"## {e(_t('transcript'))}", ""]
    for t in d["transcript"]:
        flag = (f" ⚑ **{e(_t('flag_review'))}**" if t.get("tier") == "review"
                else f" ⚠ **{e(_t('flag_alert'))}**" if t["flagged"] else "")
        who = _t("bot") if t["from"] == "bot" else _t("person")
        note = f" · *{e(n)}*" if (n := line_note(t)) else ""
        out.append(f"**{e(who)}** · {_when(t['time'])}{note}{flag}")
        out += md_quote(t["text"])
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.4rem;margin-bottom:.2rem} h2{font-size:1.1rem;border-bottom:1px solid #ccc;margin-top:1.6rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem} dt{font-weight:600}
.line{margin:.5rem 0;padding:.4rem .7rem;border-radius:.4rem;white-space:pre-wrap;page-break-inside:avoid}
.bot{background:#f1f4f8} .comment{background:#eef7ee;border-left:4px solid #2e7d32} .person{background:#fff8e6;margin-left:2rem} .flag{border:2px solid #b00020}
.meta{font-size:.75rem;color:#666} .sep{page-break-after:always} .q{font-weight:400;color:#555}
figure.chart{margin:1rem 0;page-break-inside:avoid} figure.chart img{max-width:100%;height:auto}
table{border-collapse:collapse;margin-top:.4rem} th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
@media print{body{margin:0;max-width:none}.line{border:1px solid #ddd}}
"""


def _html(items: list[dict], charts: list | None = None) -> str:
    def e(text: str) -> str:
        return html.escape(visible(text))

    parts = ["<!doctype html><html lang='en-GB'><head><meta charset='utf-8'>",
             "<title>restorative-bot transcripts</title><style>", _CSS, "</style></head><body>"]
    if charts:
        parts += [_chart_html(charts), "<div class='sep'></div>"]
    for i, d in enumerate(items):
        if i:
            parts.append("<div class='sep'></div>")
        parts.append(f"<h1>{e(d['flow']['title'])} <small>({e(_t('version', version=d['flow']['version']))})</small></h1><dl>")
        for k, v in ((_t("conversation"), d["conversation_id"]), (_t("who"), _who(d)), (_t("case"), d.get("case") or "—"),
                     (_t("started"), _when(d["started_at"])),
                     (_t("status"), _status(d)), (_t("finished_label"), _when(d["finished_at"]))):
            parts.append(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>")
        parts.append("</dl>")
        if d.get("worth_a_look"):
            parts.append(f"<h2>{e(_t('worth_a_look'))}</h2><ul>")
            for r in d["worth_a_look"]:
                at = f" at {e(r['step_id'])}" if r["step_id"] else ""
                matched = f" — matched “{e(r['matched'])}”" if r.get("matched") else ""
                parts.append(f"<li>R{r['id']} ({e(_when(r['time']))}){at}: {e(r['concern'])}{matched}</li>")
            parts.append("</ul>")
        parts.append(f"<h2>{e(_t('answers'))}</h2><dl>")
        lang = d.get("language", "en")
        for a in d["answers"]:
            question = f"<div class='q' lang='en' dir='ltr'>{e(a['question_en'])}</div>" if a.get("question_en") else ""
            if a.get("question_shown"):
                question += f"<div class='q'{_lang_attrs(lang, a['question_shown'])}>{e(_shown_in(d, a))}</div>"
            parts.append(f"<dt>{e(a['step_id'])}{question}</dt><dd{_lang_attrs(lang, a['shown'] or '')}>"
                         f"{e(a['shown'] or '')}</dd>")
        parts.append("</dl>")
        if d.get("withheld") or d.get("withheld_note"):
            parts.append(f"<p>{e(_t(_withheld_key(d)))}</p><ul>" + "".join(
                f"<li>{e(w['step_id'])}" + (f" — {e(w['question_en'])}" if w.get("question_en") else "") + "</li>"
                for w in d["withheld"]) + "</ul>")
        if d.get("scores"):
            parts.append(f"<h2>{e(_t('scores'))}</h2><dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in d["scores"].items()) + "</dl>")
        if d.get("comments"):
            parts.append(f"<h2>{e(_t('comments'))}</h2>")
            for c in d["comments"]:
                on = f" on {e(c['step_id'])}" if c["step_id"] else ""
                kind = e(_visibility(c))
                parts.append(f"<div class='line comment'><div class='meta'>{e(c['by'])} · {e(_when(c['time']))} · {kind}{on}</div>{e(c['text'])}</div>")
        parts.append(f"<h2>{e(_t('transcript'))}</h2>")
        for t in d["transcript"]:
            cls = "bot" if t["from"] == "bot" else "person"
            flag = " flag" if t["flagged"] else ""
            note = (f" · {e(_t('flag_review'))}" if t.get("tier") == "review"
                    else f" · {e(_t('flag_alert'))}" if t["flagged"] else "")
            who = _t("bot") if t["from"] == "bot" else _t("person")
            if said := line_note(t):
                who += f" · {said}"
            parts.append(f"<div class='line {cls}{flag}'><div class='meta'>{e(who)} · {e(_when(t['time']))}{note}</div>"
                         f"<div class='text'{_lang_attrs(t.get('language'), t['text'])}>{e(t['text'])}</div></div>")
    parts.append("</body></html>\n")
    return "".join(parts)


def export(store: Store, *, session: int | None = None, case: str | None = None, all_: bool = False,
           fmt: str = "md", actor: str = "cli", report=None, telegram_names: bool = False,
           practitioner: str | None = None) -> str:
    """Export transcripts; every export is written to the audit log.

    Only what ``actor`` may read is exported (bot.audience decides; the command line counts
    as the people who run the service): answers someone has not agreed to share stay out,
    as they were told. ``report(text)`` hears how many were left out.
    """
    if session is not None:
        ids = [session]
        target = f"conversation:{session}"
    elif case is not None:
        cases = store.cases_by_ref(case)
        if practitioner is not None:
            holder = store.person_by_key(practitioner)
            cases = [k for k in cases if holder is not None and k["practitioner_id"] == holder["id"]]
        if len(cases) > 1:  # two workers chose the same reference: never one document of two families
            raise ExportError(f"more than one practitioner has a case '{case}'; say whose it is with --practitioner ID")
        ids = [c["id"] for k in cases for c in store.conversations(case_id=k["id"])]
        if not ids:
            raise ExportError(f"no case '{case}' (or it has no conversations)")
        target = f"case:{case}"
    elif all_:
        ids = store.conversation_ids()
        target = "all"
    else:
        raise ExportError("say what to export: --session ID, --case REF or --all")
    from bot.access import Access
    from bot.engine.library import FlowLibrary

    gate = Access(store, FlowLibrary([]))  # each conversation's own flow version, from the store
    shared = [i for i in ids if gate.can_read(actor, i)]
    if session is not None and not shared:
        raise ExportError(f"conversation {session} does not exist or is not shared with the people who run the "
                          "service (the person has not agreed); they can get it themselves with /mydata file")
    withheld = {i: gate.withheld(actor, i) for i in shared}  # parts the person chose not to share
    items = [transcript_data(store, i, telegram_names=telegram_names, withhold=withheld[i]) for i in shared]
    # A case's HTML file carries the case's charts (only what was shared is drawn), so it reads
    # like the case page, and stays one self-contained file.
    case_charts = None
    if case is not None and fmt == "html":
        from bot.review import charts

        case_charts = charts.build(store, gate.library, [{"id": i, "shared": True, "withheld": withheld[i]}
                                                         for i in shared], telegram_names)
    left_out = len(ids) - len(shared)
    with store.transaction():
        store.audit(actor, "export", target, f"{len(items)} conversation(s) as {fmt}"
                    + (f"; {left_out} not shared, left out" if left_out else ""))
    if left_out and report is not None:
        report(f"{left_out} conversation(s) left out: not shared (the person has not agreed to share them)")
    if case_charts:
        return _html(items, case_charts)
    return render(items, fmt)


def _chart_html(found: list) -> str:
    """The charts as pictures inside the file (PNG as a data: URI: no script, nothing fetched),
    each with its numbers as a table beside it, every text escaped."""
    import base64

    from bot.review import charts

    def e(text) -> str:
        return html.escape(visible(str(text)))

    parts = [f"<h2>{e(msg('charts.title'))}</h2>"]
    for chart in found:
        data = base64.b64encode(charts.png(chart)).decode("ascii")
        rows = "".join(f"<tr><td>{e(when)}</td><td>{e(who)}</td><td>{e(score)}</td></tr>" for when, who, score in chart.rows())
        parts.append(f"<figure class='chart'><img src='data:image/png;base64,{data}' alt='{e(chart.description())}'>"
                     f"<figcaption><table><caption>{e(msg('charts.table_caption', question=chart.question))}</caption>"
                     f"<thead><tr><th scope='col'>{e(msg('charts.col_when'))}</th><th scope='col'>{e(msg('charts.col_who'))}</th>"
                     f"<th scope='col'>{e(msg('charts.col_score'))}</th></tr></thead><tbody>{rows}</tbody></table>"
                     "</figcaption></figure>")
    return "".join(parts)
