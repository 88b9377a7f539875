"""Dominators of a flow's step graph, in time close to linear in the number of steps.

Step ``d`` dominates step ``v`` when every path from the first step to ``v`` passes through
``d``: an answer given at ``d`` is always there by the time ``v`` is asked. The linter asks
this for every ``answers.X`` a step uses.

Immediate dominators by Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm"
(2001): iterate over the reverse postorder, intersecting along the dominator tree. Flow
graphs are reducible or nearly so, and it settles in two or three passes. Each query is then
O(1) from the dominator tree's preorder and postorder numbers. Everything is iterative, so a
10,000-step chain does not meet Python's recursion limit.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping


class Dominators:
    def __init__(self, entry: Hashable, successors: Mapping[Hashable, Iterable[Hashable]]):
        self.entry = entry
        order = _reverse_postorder(entry, successors)  # reachable nodes only
        self.reachable = set(order)
        rpo = {node: i for i, node in enumerate(order)}
        preds: dict = {node: [] for node in order}
        for node in order:
            for s in successors.get(node, ()):
                if s in rpo:
                    preds[s].append(node)
        idom: dict = {entry: entry}

        def intersect(a, b):
            while a != b:
                while rpo[a] > rpo[b]:
                    a = idom[a]
                while rpo[b] > rpo[a]:
                    b = idom[b]
            return a

        changed = True
        while changed:
            changed = False
            for node in order[1:]:
                new = None
                for p in preds[node]:
                    if p in idom:
                        new = p if new is None else intersect(p, new)
                if new is not None and idom.get(node) != new:
                    idom[node] = new
                    changed = True
        self.idom = idom
        # preorder/postorder numbers on the dominator tree: d dominates v iff d's interval holds v's
        children: dict = {node: [] for node in order}
        for node, parent in idom.items():
            if node != entry:
                children[parent].append(node)
        self._pre: dict = {}
        self._post: dict = {}
        counter = 0
        stack = [(entry, False)]
        while stack:
            node, done = stack.pop()
            if done:
                self._post[node] = counter
                counter += 1
                continue
            self._pre[node] = counter
            counter += 1
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(children[node]))

    def dominates(self, d: Hashable, v: Hashable) -> bool:
        """Every path from the entry to ``v`` passes through ``d`` (a node dominates itself)."""
        if d not in self._pre or v not in self._pre:
            return False
        return self._pre[d] <= self._pre[v] and self._post[v] <= self._post[d]

    def immediate(self, v: Hashable) -> Hashable | None:
        """The closest strict dominator of ``v`` (None for the entry and unreachable nodes)."""
        if v == self.entry or v not in self.idom:
            return None
        return self.idom[v]


def _reverse_postorder(entry, successors) -> list:
    seen = {entry}
    post: list = []
    stack = [(entry, iter(successors.get(entry, ())))]
    while stack:
        node, it = stack[-1]
        for s in it:
            if s not in seen and s in successors:
                seen.add(s)
                stack.append((s, iter(successors.get(s, ()))))
                break
        else:
            stack.pop()
            post.append(node)
    post.reverse()
    return post
