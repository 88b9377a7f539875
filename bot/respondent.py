"""Who is answering a conversation: the respondent model.

Every conversation records its respondent: ``child`` (about 8–12), ``young_person``
(13–17), ``adult`` (a parent, carer or other family member) or ``practitioner``. The
practitioner sets it on an invitation (``--for young-person``); the terminal takes
``chat FLOW --for ...``; where a flow admits several and nobody said, the frontend asks
"Who is filling this in?" before the flow's first question (wording in messages.yaml).
The safeguarding response, the help numbers and the alert to the lead follow the
respondent, not the flow's audience.

A flow declares whom it is for with ``respondents: [...]``; without that the flow's
audience decides (child -> child, practitioner -> practitioner, family -> young person or
adult). ``requires: worker_present`` marks a flow that is only ever done with the worker
there, on the worker's device (Three Houses): it is never sent as an invitation link.
"""

from __future__ import annotations

from bot.messages import msg

RESPONDENTS = ("child", "young_person", "adult", "practitioner")
BY_AUDIENCE = {"child": ("child",), "family": ("young_person", "adult"), "practitioner": ("practitioner",)}
REQUIREMENTS = ("worker_present",)


def parse(value: str | None) -> str | None:
    """'young-person', 'young_person' or 'Young person' -> 'young_person'; None if unknown."""
    if value is None:
        return None
    word = "_".join(str(value).strip().lower().replace("-", " ").split())
    return word if word in RESPONDENTS else None


def cli_name(respondent: str) -> str:
    """How a respondent is written on a command line: young_person -> young-person."""
    return respondent.replace("_", "-")


def admitted(flow) -> tuple[str, ...]:
    """The respondents a flow is for (declared, or from its audience)."""
    declared = getattr(flow, "respondents", ())
    return tuple(declared) if declared else BY_AUDIENCE.get(flow.audience, RESPONDENTS)


def default_for(flow) -> str | None:
    """The respondent when nobody says: the only one the flow admits, else None (ask)."""
    choices = admitted(flow)
    return choices[0] if len(choices) == 1 else None


def needs_asking(flow, respondent: str | None) -> bool:
    """Ask "Who is filling this in?" only for a flow that declares several respondents:
    one that declares none keeps the respondent unknown (its help covers both)."""
    return respondent is None and len(getattr(flow, "respondents", ())) > 1


def worker_present(flow) -> bool:
    return "worker_present" in getattr(flow, "requires", ())


def own_device_only(flow) -> bool:
    """Whether the flow must be answered on the person's own device: it first asks whether
    anyone may read the answers and promises that nobody, the worker included, does until
    they say yes (``without_consent: nobody``). On the worker's device (``/with``, or the
    terminal with ``--case``) the worker would see every word, so it is refused there."""
    return getattr(flow, "consent_step", None) is not None and getattr(flow, "without_consent", None) == "nobody"


def label(respondent: str) -> str:
    """The respondent in plain words, for a button or a list ("A young person, 13 to 17")."""
    return msg(f"respondent.options.{respondent}")


def described(respondent: str | None) -> str:
    """The respondent as named in an alert or a listing ("a young person (13–17)")."""
    return msg(f"respondent.named.{respondent or 'unknown'}")


def choices(flow) -> list[tuple[str, str]]:
    """(respondent, label) for the "Who is filling this in?" question, in the flow's order."""
    return [(r, label(r)) for r in admitted(flow)]


def refusal(flow, respondent: str) -> str:
    """Why this flow cannot be for this respondent, in words for the practitioner."""
    allowed = ", ".join(cli_name(r) for r in admitted(flow))
    return msg("respondent.not_for", flow=flow.id, respondent=cli_name(respondent), allowed=allowed)


def choose(flow, text: str) -> str | None:
    """The respondent a typed answer to "Who is filling this in?" names: its number, its
    label or its name; None if it names none of the flow's choices."""
    options = choices(flow)
    word = " ".join((text or "").strip().lower().rstrip(".").split())
    if word.isdigit() and 1 <= int(word) <= len(options):
        return options[int(word) - 1][0]
    for rid, text_ in options:
        if word in (rid, cli_name(rid), rid.replace("_", " "), text_.lower()):
            return rid
    return None
