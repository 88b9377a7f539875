"""Words for families (DOMAIN.md, second edition): everything a family member or a child may
read says "your worker" (or their name), "the person at the council who keeps children safe",
never "practitioner", "designated safeguarding lead" or "close the case"; thanks people for
telling, not for being honest; does not praise a child's performance; and does not tell a
child about "end-to-end encryption" in those words. The invitation still says, plainly, that
Telegram chats are not end-to-end encrypted.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from bot.engine.yamlpos import parse_yaml
from bot.messages import messages

FOR_EVERYONE = {
    "practitioner": re.compile(r"\bpractitioners?\b", re.I),
    "designated safeguarding lead": re.compile(r"\b(designated )?safeguarding lead\b", re.I),
    "close the case": re.compile(r"\bclos(e|ing) the case\b", re.I),
    "thanks for honesty": re.compile(r"\b(being honest|honestly)\b", re.I),
    "supervisor": re.compile(r"\bsupervisors?\b", re.I),
}
FOR_CHILDREN = {
    "encryption": re.compile(r"\bencrypt", re.I),
    "praise of performance": re.compile(r"\b(you did (really |very )?well|well done|good job)\b", re.I),
}

# messages.yaml: the parts a family member or a child may read (the rest is for staff)
FAMILY_MESSAGES = ["validation", "navigation", "hold", "answers", "console", "telegram", "privacy",
                   "respondent.question", "respondent.options", "respondent.choose_hint", "worker_present.ended",
                   "staff.consent", "staff.consent_yes", "staff.consent_no", "staff.consent_declined",
                   "staff.link_unknown", "staff.link_expired", "staff.link_used", "staff.link_revoked",
                   "staff.uninvited", "staff.mydata_title", "staff.mydata_line", "staff.mydata_none",
                   "staff.mydata_file", "staff.refused"]
STAFF_ONLY_KEYS = {"practitioner", "ack_usage", "ack_ok", "ack_already", "ack_unknown", "supervisor",
                   "supervisor_named"}


def strings(node, path: str):
    """(path, text) for every string under ``node``, leaving out staff-only keys."""
    if isinstance(node, dict):
        for k, v in node.items():
            if str(k) not in STAFF_ONLY_KEYS:
                yield from strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def family_messages():
    out = []
    for where in FAMILY_MESSAGES:
        node = messages()
        for part in where.split("."):
            node = node[part]
        out += [(f"messages.yaml {p}", t, "child" in p) for p, t in strings(node, where)]
    return out


def flow_texts(library):
    out = []
    for flow in library:
        if flow.audience == "practitioner":
            continue
        child = flow.audience == "child"
        texts = [("intro", flow.intro or ""), ("description", flow.description)]
        data, _ = parse_yaml(flow.source, flow.path)
        if data.get("stop_message"):  # one text, or {en: ..., cy: ...} (issue 19): every language's
            texts += [(f"stop_message{p}", t) for p, t in strings(data["stop_message"], "")]
        for step in data.get("steps", []):
            texts += [(f"{step['id']}", t) for _, t in strings({k: v for k, v in step.items()
                                                               if k not in ("id", "type", "next", "if", "goto")}, "")]
        out += [(f"{flow.id} {where}", text, child) for where, text in texts]
    return out


def safeguarding_texts():
    text = resources.files("bot").joinpath("safeguarding.yaml").read_text(encoding="utf-8")
    data, _ = parse_yaml(text, "bot/safeguarding.yaml")
    out = []
    for who in ("child", "family", "young_person", "adult"):
        if who in data.get("responses", {}):
            out.append((f"safeguarding.yaml responses.{who}", data["responses"][who], who == "child"))
    for concern, spec in data.get("concerns", {}).items():
        for who, help_text in (spec.get("help") or {}).items():
            if who != "practitioner":
                out.append((f"safeguarding.yaml concerns.{concern}.help.{who}", help_text, who == "child"))
    return out


def problems(texts) -> list[str]:
    found = []
    for where, text, child in texts:
        rules = {**FOR_EVERYONE, **(FOR_CHILDREN if child else {})}
        for name, pattern in rules.items():
            hit = pattern.search(text)
            if hit:
                found.append(f"{where}: {name} ({hit.group(0)!r})")
    return found


def test_family_messages_use_words_for_families():
    texts = family_messages()
    assert len(texts) > 60
    assert problems(texts) == []


def test_family_and_child_flows_use_words_for_families(library):
    texts = flow_texts(library)
    assert {w.split()[0] for w, _, _ in texts} >= {"three-houses", "fgc-pre-conference", "scaling-checkin"}
    assert problems(texts) == []


def test_safeguarding_responses_and_help_for_families_use_words_for_families():
    texts = safeguarding_texts()
    assert any(w.endswith("responses.family") for w, _, _ in texts)
    assert problems(texts) == []


@pytest.mark.parametrize("text, child, expected", [
    ("Your practitioner will read it.", False, ["t: practitioner ('practitioner')"]),
    ("Our designated safeguarding lead will be told.", False, ["t: designated safeguarding lead ('designated safeguarding lead')"]),
    ("This chat is not end-to-end encrypted.", True, ["t: encryption ('encrypt')"]),
    ("This chat is not end-to-end encrypted.", False, []),
    ("You did really well.", True, ["t: praise of performance ('You did really well')"]),
])
def test_the_check_finds_jargon(text, child, expected):
    assert problems([("t", text, child)]) == expected


def test_the_invitation_still_says_telegram_is_not_end_to_end_encrypted():
    assert "not end-to-end encrypted" in messages()["privacy"]["telegram"]["default"]
    assert "encrypt" not in messages()["privacy"]["telegram"]["child"]
