"""The linter's dominators (issue 11, finding 14): right on every graph, iterative on deep
ones, and a flow over the step limit is refused with its position. Timing is measured by
scripts/bench_lint.py, not asserted here."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.dominators import Dominators
from bot.engine.loader import MAX_STEPS, load_flow_text


def reachable(entry, succ, without=None) -> set:
    seen, todo = set(), [entry]
    while todo:
        n = todo.pop()
        if n in seen or n == without or n not in succ:
            continue
        seen.add(n)
        todo.extend(succ[n])
    return seen


def brute_force(entry, succ) -> dict:
    """d dominates v iff v is reachable, and unreachable once d is taken away (or d == v)."""
    nodes = reachable(entry, succ)
    return {v: {d for d in nodes if d == v or v not in reachable(entry, succ, without=d)} for v in nodes}


graphs = st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, n), max_size=3), min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_dominators_match_the_definition_on_any_graph(edges):
    n = len(edges)
    succ = {i: [t for t in targets if t < n] + [-1] * any(t == n for t in targets) for i, targets in enumerate(edges)}
    dom = Dominators(0, succ)  # -1 stands for the end, which is no step
    expected = brute_force(0, succ)
    assert dom.reachable == set(expected)
    for v in range(n):
        for d in range(n):
            assert dom.dominates(d, v) == (v in expected and d in expected[v]), (succ, d, v)
    for v, doms in expected.items():
        strict = doms - {v}
        if v == 0:
            assert dom.immediate(v) is None
        else:  # the strict dominator every other strict dominator dominates
            (idom,) = [d for d in strict if all(e in expected[d] for e in strict)]
            assert dom.immediate(v) == idom


def test_the_example_from_cooper_harvey_kennedy():
    # Figure 4 of "A Simple, Fast Dominance Algorithm" (nodes renamed by letter)
    succ = {"6": ["5", "4"], "5": ["1"], "4": ["2", "3"], "1": ["2"], "2": ["1", "3"], "3": ["2"]}
    dom = Dominators("6", succ)
    assert {v: dom.immediate(v) for v in succ} == {"6": None, "5": "6", "4": "6", "1": "6", "2": "6", "3": "6"}


def test_a_very_long_chain_needs_no_recursion():
    n = 50_000
    succ = {i: [i + 1] if i + 1 < n else [] for i in range(n)}
    dom = Dominators(0, succ)
    assert all(dom.immediate(i) == i - 1 for i in range(1, n))
    assert dom.dominates(0, n - 1) and dom.dominates(n // 2, n - 1) and not dom.dominates(n - 1, n // 2)


LOOP_FLOW = """id: x
version: 1
title: T
audience: family
steps:
  - id: a
    ask: First
  - id: b
    ask: "Again? {{ answers.a }}"
    type: yesno
    next:
      - if: answer
        goto: c
      - goto: d
  - id: c
    ask: "Loop {{ answers.b }} {{ answers.a }}"
    next: b
  - id: d
    ask: "{{ answers.c }}"
"""


def test_answers_on_a_loop_are_available_only_where_every_path_has_them():
    flow, errors = load_flow_text(LOOP_FLOW, "f.yaml")
    assert flow is None
    assert [(e.line, e.message) for e in errors] == [
        (19, "the wording of step 'd' uses answers.c, but on some path 'c' has not been asked yet; "
             "only use answers from steps that always come before")]


def test_a_flow_over_the_step_limit_is_refused_at_the_first_step_too_many():
    lines = ["id: x", "version: 1", "title: T", "audience: family", "steps:"]
    lines += [f"  - {{id: s{i}, ask: Q}}" for i in range(MAX_STEPS + 1)]
    flow, errors = load_flow_text("\n".join(lines) + "\n", "big.yaml")
    assert flow is None
    assert [str(e) for e in errors] == [
        f"big.yaml:{6 + MAX_STEPS}:5: a flow can have at most {MAX_STEPS:,} steps and this one has "
        f"{MAX_STEPS + 1:,}; split it into several flows"]


def test_a_flow_at_the_step_limit_loads():
    lines = ["id: x", "version: 1", "title: T", "audience: family", "steps:", "  - {id: s0, ask: First}"]
    lines += [f'  - {{id: s{i}, ask: "Q {{{{ answers.s0 }}}}"}}' for i in range(1, MAX_STEPS)]
    flow, errors = load_flow_text("\n".join(lines) + "\n", "big.yaml")
    assert errors == [] and len(flow.steps) == MAX_STEPS
