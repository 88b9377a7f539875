"""Prompts and conditions: Jinja2 in its sandbox, so a flow file can never run code.

Prompts are templates over earlier answers (``{{ answers.scale_now + 1 }}``); conditions
are Jinja2 expressions (``answer <= 1``). Both are compiled once, at load time.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

MAX_RENDERED = 4000


class _Env(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Nothing private, dunder or callable-looking beyond plain data is reachable.
        if attr.startswith("_"):
            return False
        return super().is_safe_attribute(obj, attr, value)


ENV = _Env(autoescape=False, keep_trailing_newline=False)


class TemplateProblem(Exception):
    """A template or expression that cannot be compiled; ``lineno`` is relative to it."""

    def __init__(self, message: str, lineno: int = 1):
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def _unsafe_names(tree: nodes.Node) -> list[str]:
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            found.append(attr)
    return found


def parse_template(source: str) -> nodes.Template:
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template error: {exc.message}", exc.lineno or 1) from None
    bad = _unsafe_names(tree)
    if bad:
        raise TemplateProblem(f"'{bad[0]}' is not allowed: names starting with _ are private")
    return tree


def parse_expression(source: str) -> nodes.Template:
    # An expression is parsed as the body of {{ ... }} so we can walk its names.
    try:
        tree = ENV.parse("{{ (" + source + ") }}")
    except TemplateSyntaxError:
        try:  # the expression on its own gives the clearer message
            ENV.compile_expression(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"condition error: {exc.message}", 1) from None
        raise TemplateProblem("condition error: this is not a single expression", 1) from None
    bad = _unsafe_names(tree)
    if bad:
        raise TemplateProblem(f"'{bad[0]}' is not allowed: names starting with _ are private")
    return tree


def answer_references(tree: nodes.Node) -> list[str]:
    """Step ids read as ``answers.X`` or ``answers['X']`` in a parsed template/expression."""
    refs = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name in ("answers", "shown"):
            if isinstance(node, nodes.Getattr):
                refs.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                refs.append(node.arg.value)
    return refs


def uses_name(tree: nodes.Node, name: str) -> bool:
    return any(n.name == name for n in tree.find_all(nodes.Name))


def compile_template(source: str) -> Callable[[dict], str]:
    """A render function; plain text without Jinja markup skips Jinja entirely."""
    if "{" not in source:
        return lambda context: source
    template = ENV.from_string(source)

    def render(context: dict) -> str:
        try:
            text = template.render(context)
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
            log.warning("template could not be rendered: %s", exc)
            text = source  # the author's wording, unrendered, rather than a traceback
        return text[:MAX_RENDERED]

    return render


def compile_condition(source: str) -> Callable[[dict], bool]:
    expression = ENV.compile_expression(source)

    def evaluate(context: dict) -> bool:
        try:
            return bool(expression(**context))
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
            # e.g. comparing a skipped (None) answer with a number: the branch is not taken.
            log.debug("condition %r is false: %s", source, exc)
            return False

    return evaluate
