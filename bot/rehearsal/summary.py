"""The end-of-rehearsal summary: stages covered in order and missed, open versus closed,
each flagged question with a better wording, a rubric, and confidence before and after.
Every sentence comes from bot/messages.yaml (rehearsal.summary)."""

from __future__ import annotations

from bot.coach import MISTAKES, Coach
from bot.messages import msg
from bot.rehearsal.scenario import Scenario

POOR = {"why", "blaming", "lecture", "leading"}


def _level(ratio: float | None) -> str:
    levels = msg("rehearsal.summary.levels")
    if ratio is None or ratio <= 0:
        return levels[0]
    if ratio < 0.5:
        return levels[1]
    if ratio < 0.85:
        return levels[2]
    return levels[3]


def _in_order(covered: list[str], expected: tuple[str, ...]) -> int:
    """How many expected stages were covered in the expected order (longest run in order)."""
    idx = [expected.index(s) for s in covered if s in expected]
    best: list[int] = []
    for i in idx:  # longest increasing subsequence, small n
        pos = next((k for k, v in enumerate(best) if v >= i), len(best))
        best[pos:pos + 1] = [i]
    return len(best)


def rubric(scenario: Scenario, turns: list[dict], covered: list[str]) -> dict[str, float | None]:
    total = len(turns)
    open_ = sum(1 for t in turns if "open" in t["labels"] and not {"closed", "why"} & set(t["labels"]))
    clean = sum(1 for t in turns if not POOR & set(t["labels"]))
    expected = scenario.stages

    def share(stages):
        return sum(1 for s in stages if s in covered) / len(stages)

    return {
        "open": open_ / total if total else None,
        "no_blame": clean / total if total else None,
        "order": _in_order(covered, expected) / len(expected),
        "impact": share(scenario.impact),
        "future": share(scenario.future),
    }


def summary_text(scenario: Scenario, state: dict, coach: Coach) -> str:
    turns = state.get("turns", [])
    covered = state.get("covered", [])
    names = msg("rehearsal.stage_names")
    label_names = msg("rehearsal.label_names")
    lines = [msg("rehearsal.summary.title", title=scenario.title), ""]
    lines.append(msg("rehearsal.summary.covered_title"))
    expected_covered = [s for s in covered if s in scenario.stages]
    in_order = set()
    # mark each covered stage that came after a later expected stage as out of order
    furthest = -1
    for s in covered:
        i = scenario.stages.index(s) if s in scenario.stages else None
        if i is None:
            in_order.add(s)
        elif i >= furthest:
            in_order.add(s)
            furthest = i
    if covered:
        for n, s in enumerate(covered, 1):
            key = "rehearsal.summary.covered_line" if s in in_order else "rehearsal.summary.covered_out_of_order"
            lines.append(msg(key, n=n, stage=names[s]))
    else:
        lines.append(msg("rehearsal.summary.covered_none"))
    missed = [s for s in scenario.stages if s not in covered]
    if missed:
        lines.append(msg("rehearsal.summary.missed_title"))
        for s in missed:
            lines.append(msg("rehearsal.summary.missed_line", stage=names[s], question=scenario.examples.get(s) or coach.question(s) or ""))
    else:
        lines.append(msg("rehearsal.summary.missed_none"))
    n_open = sum(1 for t in turns if "open" in t["labels"] and "why" not in t["labels"])
    n_closed = sum(1 for t in turns if "closed" in t["labels"])
    lines += ["", msg("rehearsal.summary.counts", total=len(turns), open=n_open, closed=n_closed,
                      other=len(turns) - n_open - n_closed)]
    flagged = [t for t in turns if set(t["labels"]) & set(MISTAKES)]
    lines += ["", msg("rehearsal.summary.flagged_title") if flagged else msg("rehearsal.summary.flagged_none")]
    for t in flagged:
        labels = ", ".join(label_names[label] for label in t["labels"] if label in MISTAKES)
        lines.append(msg("rehearsal.summary.flagged_line", n=t["n"], text=t["text"], labels=labels,
                         suggestion=t["suggestion"] or ""))
    scores = rubric(scenario, turns, covered)
    criteria = msg("rehearsal.summary.criteria")
    lines += ["", msg("rehearsal.summary.rubric_title")]
    for key in ("open", "no_blame", "order", "impact", "future"):
        name = criteria[key][scenario.model] if isinstance(criteria[key], dict) else criteria[key]
        lines.append(msg("rehearsal.summary.rubric_line", criterion=name, level=_level(scores[key])))
    before, after = state.get("confidence_before"), state.get("confidence_after")
    lines += ["", msg("rehearsal.summary.confidence", before="-" if before is None else before,
                      after="-" if after is None else after)]
    del expected_covered
    return "\n".join(lines)
