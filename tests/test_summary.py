"""Issue 13, item 4: the coordinator's summary. A case with an FGC check-in from a parent and
one from the young person shows both, grouped, in Markdown and HTML, each item with who said
it and when; the young person's section is left out when they did not agree to share."""

import html
import re
import subprocess
import sys

import pytest

from bot.access import Access, Refused
from bot.conversation import ConversationService
from bot.engine.flow import SUMMARY_SECTIONS
from bot.engine.loader import load_flow_text
from bot.engine.runner import Input
from bot.messages import msg
from bot.review.summary import build, render_html, render_md, render_telegram
from bot.store import Store

WORKER, OTHER = "tg:100", "tg:200"
MARKUP = "<b>bold</b> & *stars* [link](x)"  # typed by a person: must come out as plain words


def _answer(service, person, reply, consent: bool, said: dict) -> None:
    """Answer every question until the flow ends: words naming the step (with markup in them),
    the first option, yes (no for a consent question if so told), a date."""
    while reply.status == "in_progress":
        q = next(p for p in reply.prompts if p.kind == "question")
        if q.type == "text":
            text = f"{q.step_id} words {MARKUP}"
        elif q.type in ("choice", "multi"):
            text = "1"
        elif q.type == "yesno":
            text = "no" if q.step_id == "share_with_coordinator" and not consent else "yes"
        elif q.type == "date":
            text = "next Tuesday"
        else:
            text = "5"
        said[q.step_id] = text
        reply = service.handle(person, Input.from_text(text))
        assert reply.accepted, (q.step_id, text, [p.text for p in reply.prompts])


@pytest.fixture
def case(tmp_path, library):
    def make(young_person_agrees: bool):
        store = Store(tmp_path / f"s{young_person_agrees}.db")
        access = Access(store, library)
        service = ConversationService(store, library)
        with store.transaction():
            worker = store.person(WORKER)
            store.grant_role(worker, "practitioner", "test")
            store.grant_role(store.person(OTHER), "practitioner", "test")
            case_id = store.create_case(worker, "FGC-7")
        parent, young = service.person("tg:1"), service.person("tg:2")
        with store.transaction():
            store.set_pseudonym(case_id, parent, "Mum", WORKER)
            store.set_pseudonym(case_id, young, "Sam", WORKER)
        said = {"parent": {}, "young": {}}
        _answer(service, parent, service.start(parent, "fgc-pre-conference", case_id=case_id, respondent="adult"),
                True, said["parent"])
        _answer(service, young, service.start(young, "fgc-young-person", case_id=case_id, respondent="young_person"),
                young_person_agrees, said["young"])
        return access, store, said
    return make


def test_both_check_ins_grouped_with_who_and_when_in_markdown_and_html(case):
    access, store, said = case(True)
    summary = build(access, WORKER, "FGC-7")
    names = [s.name for s in summary.sections]
    assert names == [n for n in SUMMARY_SECTIONS if n in names]  # in the set order
    assert {"attendance", "should_not_come", "young_person_views", "worries_strengths", "language", "food"} <= set(names)
    attendance = next(s for s in summary.sections if s.name == "attendance")
    assert {(i.who, i.respondent) for i in attendance.items} == {
        ("Mum", msg("respondent.named.adult")), ("Sam", msg("respondent.named.young_person"))}
    views = next(s for s in summary.sections if s.name == "young_person_views")
    assert {i.who for i in views.items} == {"Sam"}
    assert [i.step_id for i in views.items] == ["feel_about_meeting", "good_now", "worries", "want_to_happen",
                                                "not_said", "anything_else"]
    good_now = next(i for i in views.items if i.step_id == "good_now")
    assert good_now.answer == f"good_now words {MARKUP}"  # their own words, verbatim
    assert good_now.question == "What is good in your life right now?"
    answered = {a["step_id"]: a["answered_at"] for c in store.conversations(case_id=1) for a in store.answers(c["id"])}
    assert good_now.when == answered["good_now"]
    assert summary.hidden == 0

    md = render_md(summary)
    assert md.startswith(f"# {msg('summary.title', ref='FGC-7')}\n")
    for section in summary.sections:
        assert f"\n## {section.heading}\n" in md
    assert md.index(msg("summary.sections.attendance")) < md.index(msg("summary.sections.young_person_views"))
    assert "**Mum**" in md and "**Sam**" in md
    assert "<b>" not in md and "&lt;b&gt;bold&lt;/b&gt; &amp; \\*stars\\* \\[link\\](x)" in md

    page = render_html(summary)
    assert page.startswith("<!doctype html>") and "<b>bold</b>" not in page
    assert html.escape(f"good_now words {MARKUP}", quote=True).replace("&#x27;", "&#39;") in page
    assert re.findall(r"<h2 id=\"(\w+)\">", page) == [s.name for s in summary.sections]
    assert render_html(summary, page=False).startswith('<section class="summary">')


def test_the_young_persons_section_is_left_out_when_they_did_not_agree_to_share(case):
    access, store, said = case(False)
    summary = build(access, WORKER, "FGC-7")
    names = [s.name for s in summary.sections]
    assert "young_person_views" not in names
    assert all(i.who == "Mum" for s in summary.sections for i in s.items)  # nothing of Sam's at all
    assert "attendance" in names and summary.hidden == 1
    md, page = render_md(summary), render_html(summary)
    for text in (md, page):
        assert msg("summary.sections.young_person_views") not in html.unescape(text).replace("\\", "")
        assert "good_now words" not in text
    assert msg("summary.hidden", n=1) in html.unescape(page)


def test_only_those_who_may_read_the_case_get_a_summary_and_it_is_audited(case):
    access, store, _ = case(True)
    for stranger in (OTHER, "tg:1", "tg:999"):
        with pytest.raises(Refused):
            build(access, stranger, "FGC-7")
    build(access, WORKER, "FGC-7")
    log = [(a["actor"], a["action"], a["target"]) for a in store.audit_log() if a["action"].startswith("summary")]
    assert log == [(OTHER, "summary.refused", "case:FGC-7"), ("tg:1", "summary.refused", "case:FGC-7"),
                   ("tg:999", "summary.refused", "case:FGC-7"), (WORKER, "summary.read", "case:FGC-7")]


def test_telegram_html_is_escaped_and_split_under_the_limit(case):
    access, _, _ = case(True)
    messages = render_telegram(build(access, WORKER, "FGC-7"))
    assert all(len(m) <= 4096 for m in messages)
    joined = "\n".join(messages)
    assert "<b>bold</b>" not in joined and "&lt;b&gt;bold&lt;/b&gt; &amp; *stars*" in joined
    assert f"<b>{msg('summary.sections.attendance')}</b>" in joined
    assert re.sub(r"</?(b|i|blockquote)>", "", joined).count("<") == 0  # no tag but ours


def test_validate_checks_section_names():
    text = ("id: s\nversion: 1\ntitle: S\naudience: family\nsteps:\n  - id: who\n    ask: Who is coming?\n"
            "    summary: atendance\n")
    _, errors = load_flow_text(text, "s.yaml")
    assert [str(e) for e in errors] == [
        "s.yaml:8:14: 'atendance' is not a section of the coordinator's summary; did you mean 'attendance'?"]


def test_cli_summary_md_and_html(case, tmp_path):
    access, store, _ = case(True)
    store.close()
    path = tmp_path / "sTrue.db"
    proc = subprocess.run([sys.executable, "-m", "bot", "summary", "--case", "FGC-7", "--db", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"# {msg('summary.title', ref='FGC-7')}") and "**Sam**" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "bot", "summary", "--case", "FGC-7", "--format", "html", "--db", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("<!doctype html>")
    proc = subprocess.run([sys.executable, "-m", "bot", "summary", "--case", "NOPE", "--db", str(path)],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr.strip()) == (2, "restorative-bot: no case NOPE; see /cases in Telegram")


async def test_summary_over_telegram_is_html_with_the_words_as_typed(case):
    from bot.testing.telegram import running_bot
    from tests.test_telegram_roles import REFUSED

    access, store, _ = case(True)
    service = ConversationService(store, access.library)
    async with running_bot(service, access=access) as h:
        sent = await h.say(100, "/summary FGC-7")
        assert sent and all(m.entities for m in sent)  # parsed as HTML: bold headings, quotes
        text = "\n".join(m.text for m in sent)
        assert text.startswith(msg("summary.title", ref="FGC-7"))
        assert f"good_now words {MARKUP}" in text  # the person's words exactly, no markup made of them
        assert msg("summary.sections.young_person_views") in text
        bold = {m.text[e["offset"]:e["offset"] + e["length"]] for m in sent for e in m.entities if e["type"] == "bold"}
        assert msg("summary.sections.attendance") in bold and "bold" not in bold
        assert [m.text for m in await h.say(200, "/summary FGC-7")] == [REFUSED]
        assert [m.text for m in await h.say(100, "/summary")] == [msg("summary.usage")]


def test_a_reference_two_practitioners_use_is_refused_for_export_and_summary_unless_whose_is_said(tmp_path, library):
    """Trust review finding 14: two workers chose FGC-1 for two different families;
    `export --case FGC-1`, `summary` (and /summary for a supervisor of both) merged both
    families into one document with no warning. Refused now, as `case set` is, unless the
    practitioner is named."""
    import webworld as W
    from click.testing import CliRunner

    from bot.cli import main
    from bot.review.export import ExportError, export
    from bot.review.summary import summary_text

    path = tmp_path / "ref.db"
    store = Store(str(path))
    access = Access(store, library, W.config())
    access.seed()
    service = W.service_for(store, library)
    W.invited(service, access, W.P1, W.FAM_A, "FGC-1", ["Family A hopes: dad moves back", "6", "x", "y", "7", "/skip"])
    W.invited(service, access, W.P2, W.FAM_B, "FGC-1", ["Family B hopes: keep away from uncle", "3", "x", "y", "5", "/skip"])
    with pytest.raises(ExportError, match="more than one practitioner has a case 'FGC-1'.*--practitioner"):
        export(store, case="FGC-1", fmt="md")
    mine = export(store, case="FGC-1", fmt="md", practitioner=f"tg:{W.P2}")
    assert "keep away from uncle" in mine and "dad moves back" not in mine
    with pytest.raises(ValueError, match="more than one practitioner has a case FGC-1"):
        summary_text(access, None, "FGC-1")
    with pytest.raises(ValueError, match="more than one practitioner has a case FGC-1"):
        build(access, f"tg:{W.ADMIN}", "FGC-1")          # an administrator (or a supervisor of both)
    # each practitioner still gets their own, unambiguously
    assert build(access, f"tg:{W.P1}", "FGC-1") is not None
    store.close()
    out = CliRunner().invoke(main, ["export", "--case", "FGC-1", "--db", str(path)])
    assert out.exit_code == 2 and "--practitioner" in out.output and "dad moves back" not in out.output
    out = CliRunner().invoke(main, ["summary", "--case", "FGC-1", "--db", str(path)])
    assert out.exit_code == 2 and "--practitioner" in out.output
    out = CliRunner().invoke(main, ["export", "--case", "FGC-1", "--practitioner", str(W.P1), "--db", str(path)])
    assert out.exit_code == 0 and "dad moves back" in out.output and "keep away from uncle" not in out.output
    out = CliRunner().invoke(main, ["summary", "--case", "FGC-1", "--practitioner", str(W.P1), "--db", str(path)])
    assert out.exit_code == 0, out.output
