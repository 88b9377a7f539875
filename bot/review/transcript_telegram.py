"""A transcript as Telegram messages (``/transcript ID``): Telegram's HTML (bold labels, the
question in italics, people's words in block quotes), reading like the review page.

Only this module makes structure: every text people typed, every name and every question is
escaped with :func:`html.escape` (and invisible characters shown by name), so ``<b>`` typed in
an answer arrives as the characters ``<b>``. Each message stays under Telegram's limit and is
whole: a message ends only between blocks, and a text too long for one message is cut
between words into several quotes, each opened and closed in its own message.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bot.messages import msg
from bot.review.export import _language_name, _status, _when, _withheld_key, line_note, status_words, visible

LIMIT = 4000  # Telegram allows 4,096 characters; room for right-to-left marks on RTL lines


def units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def esc(text) -> str:
    return html.escape(visible("" if text is None else str(text)), quote=False)


@dataclass
class Block:
    """A piece of a message: ``head`` (HTML this module wrote) and ``body``, untrusted text
    escaped here, inside ``<tag>`` when a tag is given."""

    head: str
    body: str | None = None
    tag: str | None = None

    def _wrap(self, escaped: str) -> str:
        return f"<{self.tag}>{escaped}</{self.tag}>" if self.tag else escaped

    def pieces(self, limit: int) -> list[str]:
        """This block as HTML, in as many whole pieces as it needs, each at most ``limit``."""
        sep = "\n" if self.head and self.body is not None else ""
        if self.body is None:
            return [self.head]
        whole = self.head + sep + self._wrap(esc(self.body))
        if units(whole) <= limit:
            return [whole]
        overhead = units(self._wrap(""))
        first = limit - overhead - units(self.head + sep)
        chunks = _chunks(self.body, first, limit - overhead)
        out = [self.head + sep + self._wrap(esc(chunks[0]))]
        out += [self._wrap(esc(c)) for c in chunks[1:]]
        return out


_TOKEN = re.compile(r"\s+|\S+")


def _chunks(text: str, first: int, rest: int) -> list[str]:
    """``text`` cut between words (or lines) so that each part, escaped, fits: the first in
    ``first`` units, the others in ``rest``. A word longer than that is cut between characters.
    Escaping works character by character, so the escaped length of a part is the sum of its
    pieces' (an entity such as ``&amp;`` is never cut)."""
    parts: list[str] = []
    current, used, budget = [], 0, first
    for token in _TOKEN.findall(text):
        size = units(esc(token))
        if used + size > budget and current:
            parts.append("".join(current))
            current, used, budget = [], 0, rest
            if token.isspace():  # a break between messages needs no spaces
                continue
        while size > budget:  # a single word longer than a message
            cut, n = "", 0
            for ch in token:
                u = units(esc(ch))
                if n + u > budget:
                    break
                cut, n = cut + ch, n + u
            parts.append(cut)
            token = token[len(cut):]
            size = units(esc(token))
            budget = rest
        current.append(token)
        used += size
    if current or not parts:
        parts.append("".join(current))
    return parts


def blocks(d: dict, limit: int = LIMIT) -> list[Block]:
    """The transcript of one conversation (:func:`bot.review.export.transcript_data`) as blocks."""
    t = lambda key, **kw: esc(msg(f"transcripts.{key}", **kw))  # noqa: E731
    status = esc(_status(d)) + (f", {t('finished', when=_when(d['finished_at']))}" if d.get("finished_at") else "")
    head = [f"<b>{esc(d['flow']['title'])}</b> ({t('version', version=d['flow']['version'])})",
            f"{t('conversation')}: {d['conversation_id']}",
            f"{t('who')}: {esc(d['person']['name'] or d['person']['key'] or '?')}"]
    if d.get("case"):
        head.append(f"{t('case')}: {esc(d['case'])}")
    head += [f"{t('started')}: {esc(_when(d['started_at']))}", f"{t('status')}: {status}"]
    if d.get("language", "en") != "en":
        head.append(f"{t('language')}: {esc(_language_name(d['language']))}")
    out = [Block("\n".join(head))]

    if d.get("worth_a_look"):
        lines = [f"<b>{t('worth_a_look')}</b>"]
        for r in d["worth_a_look"]:
            lines.append(f"R{r['id']} ({esc(_when(r['time']))})" + (f" <code>{esc(r['step_id'])}</code>" if r["step_id"] else "")
                         + f": {esc(r['concern'])}" + (f" — “{esc(r['matched'])}”" if r.get("matched") else ""))
        out.append(Block("\n".join(lines)))

    out.append(Block(f"<b>{t('answers')}</b>" + ("" if d["answers"] else "\n" + t("no_answers"))))
    for a in d["answers"]:
        step = f"<code>{esc(a['step_id'])}</code>"
        shown = (msg("transcripts.shown", language=_language_name(d.get("language")), question=a["question_shown"])
                 if a.get("question_shown") else None)
        question = (f" — <i>{esc(a['question_en'])}</i>" if a.get("question_en") else "") + \
            (f"\n<i>({esc(shown)})</i>" if shown else "")
        if units(step + question) <= limit // 4:  # the usual case: step, question and answer together
            out.append(Block(step + question, a["shown"] or "", "blockquote"))
        else:  # a very long question (a worker's text in it): blocks of its own, cut like answers
            out.append(Block(step + " —", a.get("question_en") or "", "i"))
            if shown:
                out.append(Block("", shown, "i"))
            out.append(Block("", a["shown"] or "", "blockquote"))
        if a["raw"] not in (None, a["shown"]):
            out.append(Block(t("typed"), a["raw"], "blockquote"))

    if d.get("withheld") or d.get("withheld_note"):
        out.append(Block(f"<i>{t(_withheld_key(d))}</i>\n" + "\n".join(
            f"<code>{esc(w['step_id'])}</code>" + (f" — <i>{esc(w['question_en'])}</i>" if w.get("question_en") else "")
            for w in d["withheld"])))

    if d.get("scores"):
        out.append(Block(f"<b>{t('scores')}</b>\n" + "\n".join(f"<code>{esc(k)}</code>: {esc(v)}"
                                                               for k, v in d["scores"].items())))
    if d.get("comments"):
        out.append(Block(f"<b>{t('comments')}</b>"))
        for c in d["comments"]:
            on = f" <code>{esc(c['step_id'])}</code>" if c["step_id"] else ""
            kind = t("shared" if c.get("visibility") == "shared" else "internal")
            out.append(Block(f"<i>{esc(c['by'])}</i> · {esc(_when(c['time']))} · {kind}{on}", c["text"], "blockquote"))

    out.append(Block(f"<b>{t('transcript')}</b>"))
    for line in d["transcript"]:
        flag = (f" ⚑ <b>{t('flag_review')}</b>" if line.get("tier") == "review"
                else f" ⚠ <b>{t('flag_alert')}</b>" if line["flagged"] else "")
        who = t("bot") if line["from"] == "bot" else t("person")
        if note := line_note(line):
            who += f" · <i>{esc(note)}</i>"
        out.append(Block(f"<b>{who}</b> · {esc(_when(line['time']))}{flag}", line["text"] or "",
                         "blockquote" if line["from"] != "bot" else None))
    return out


def pack(blocks: list[Block], limit: int = LIMIT, sep: str = "\n\n") -> list[str]:
    """Blocks as few messages as they fit in, in order, ``sep`` between them; each message
    whole (every tag closed) and at most ``limit`` UTF-16 units."""
    out: list[str] = []
    current = ""
    for block in blocks:
        for piece in block.pieces(limit):
            if current and units(current) + units(sep) + units(piece) <= limit:
                current += sep + piece
            else:
                if current:
                    out.append(current)
                current = piece
    if current:
        out.append(current)
    return out


def messages(d: dict, limit: int = LIMIT) -> list[str]:
    """The transcript as Telegram HTML messages, a blank line between blocks."""
    return pack(blocks(d, limit), limit)


def chart_table(chart, limit: int = LIMIT) -> list[str]:
    """The numbers of a chart (:class:`bot.review.charts.Chart`) as Telegram HTML: its
    caption, then one line per answer (date, who, score), names escaped."""
    lines = [Block(f"<b>{esc(msg('charts.table_caption', question=chart.question))}</b>")]
    lines += [Block(f"{esc(when)} — {esc(who)}: <b>{esc(score)}</b>") for when, who, score in chart.rows()]
    return pack(lines, limit, "\n")


__all__ = ["messages", "blocks", "pack", "chart_table", "units", "LIMIT", "status_words"]
