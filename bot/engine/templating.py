"""Prompts and conditions: Jinja2 in its sandbox, so a flow file can never run code.

Prompts are templates over earlier answers (``{{ answers.scale_now + 1 }}``); conditions
are Jinja2 expressions (``answer <= 1``). Both are compiled once, at load time.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import re
from typing import Any, Callable

from jinja2 import TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

MAX_RENDERED = 4000
# What a template may build on its way to the text shown: far more than any question needs,
# far less than could hurt the process. Checked *before* building where the size is known
# (``*``, ``**``, ranges, padding, replace, join), and after everything else.
MAX_BUILT = 10 * MAX_RENDERED  # characters in a string
MAX_ITEMS = 1000  # items in a list, tuple, dict or range
MAX_INT_BITS = 4096  # about 1,200 decimal digits


class TooBig(SecurityError):
    """A template tried to build something over the limits above."""

    def __init__(self, what: str):
        super().__init__(f"the template would build {what}; flow text can build at most {MAX_BUILT} characters, "
                         f"{MAX_ITEMS} items or {MAX_INT_BITS // 3}-digit numbers")


def _check(value: Any) -> Any:
    if isinstance(value, (str, bytes)) and len(value) > MAX_BUILT:
        raise TooBig(f"text of {len(value)} characters")
    if isinstance(value, (list, tuple, dict, set, frozenset, range)) and len(value) > MAX_ITEMS:
        raise TooBig(f"{len(value)} items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TooBig("a number that large")
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) or isinstance(x, bool)


def _repeat_size(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and _is_int(n):
            limit = MAX_BUILT if isinstance(seq, (str, bytes)) else MAX_ITEMS
            if len(seq) * max(int(n), 0) > limit:
                raise TooBig(f"{len(seq)} × {n}")
    if _is_int(left) and _is_int(right) and int(left).bit_length() + int(right).bit_length() > MAX_INT_BITS:
        raise TooBig("a number that large")


def _power_size(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        if int(exponent) * abs(int(base)).bit_length() > MAX_INT_BITS:
            raise TooBig(f"{base} ** {exponent}")


def _bounded(items: Any) -> list:
    """An iterable as a list, refusing to read past the limit."""
    got = list(itertools.islice(items, MAX_ITEMS + 1))
    if len(got) > MAX_ITEMS:
        raise TooBig(f"more than {MAX_ITEMS} items")
    return got


def _replace_size(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        n = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            n = min(n, count)
        if len(text) + n * (len(new) - len(old)) > MAX_BUILT:
            raise TooBig("text that large")


def _join_size(items: list, sep: Any) -> None:
    total = sum(len(str(x)) for x in items) + len(str(sep)) * max(len(items) - 1, 0)
    if total > MAX_BUILT:
        raise TooBig(f"text of {total} characters")


def _capped_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_ITEMS:
        raise TooBig(f"a range of {len(rng)} numbers")
    return rng


def _concat(values) -> str:
    parts, total = [], 0
    for v in values:
        text = str(v)
        total += len(text)
        if total > MAX_BUILT:
            raise TooBig(f"text of more than {MAX_BUILT} characters")
        parts.append(text)
    return "".join(parts)


class _Generator(CodeGenerator):
    """``a ~ b`` goes through the environment, so joined text is measured as it is built."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.sized_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


# str methods that build text whose size the arguments decide; format strings are refused
# outright (a width or precision can ask for any size, and ``{{ }}`` does everything needed).
_PADDING = {"center", "ljust", "rjust", "zfill"}
_REFUSED_STR = {"format", "format_map", "expandtabs", "encode", "translate", "maketrans"}
_REFUSED_FILTERS = {"center", "indent", "format", "wordwrap", "filesizeformat", "xmlattr", "urlize", "pprint"}


def _size_filter(name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)  # keeps jinja_pass_arg, so context-taking filters still get it
    def sized(*args, **kwargs):
        args = list(args)
        values = [a for a in args if not hasattr(a, "environment")]  # skip a passed context/environment
        if name == "replace" and len(values) >= 3:
            _replace_size(*values[:4])
        if name == "join" and values:
            i = args.index(values[0])
            args[i] = _bounded(values[0]) if not isinstance(values[0], str) else values[0]
            _join_size(list(args[i]), values[1] if len(values) > 1 else kwargs.get("d", ""))
        return _check(fn(*args, **kwargs))
    return sized


class _Env(ImmutableSandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.globals["range"] = _capped_range
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs
        self.filters = {name: _size_filter(name, fn) for name, fn in self.filters.items()
                        if name not in _REFUSED_FILTERS}

    def wrap_str_format(self, value: Any):
        if super().wrap_str_format(value) is None:
            return None

        def refused(*args, **kwargs):
            raise SecurityError("format() is not available in flow text; use {{ }} instead")
        return refused

    def sized_concat(self, values) -> str:
        return _concat(values)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Nothing private, dunder or callable-looking beyond plain data is reachable.
        if attr.startswith("_"):
            return False
        if isinstance(obj, (str, bytes)) and attr in _REFUSED_STR:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context, op: str, left: Any, right: Any) -> Any:
        if op == "*":
            _repeat_size(left, right)
        elif op == "**":
            _power_size(left, right)
        elif op == "%" and isinstance(left, (str, bytes)):
            raise SecurityError("'%' formatting of text is not available in flow text; use {{ }} instead")
        return _check(super().call_binop(context, op, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        target = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(target, (str, bytes)):
            if name in _PADDING:
                width = args[0] if args else kwargs.get("width", 0)
                if isinstance(width, int) and width > MAX_BUILT:
                    raise TooBig(f"text of {width} characters")
            elif name == "replace" and len(args) >= 2:
                _replace_size(target, *args[:3])
            elif name == "join" and args:
                args = (_bounded(args[0]) if not isinstance(args[0], str) else args[0], *args[1:])
                _join_size(list(args[0]), target)
        return _check(super().call(__context, __obj, *args, **kwargs))


ENV = _Env(autoescape=False, keep_trailing_newline=False)


def _coach_labels(text: Any) -> list[str]:
    """``answer | coach``: the rehearsal coach's labels for a practitioner's question
    (closed, why, leading, blaming, lecture, multiple, open and the practice stage)."""
    from bot.coach import coach

    return list(coach(text if isinstance(text, str) else "").labels) if text is not None else []


def _coach_suggestion(text: Any) -> str:
    """``answer | coach_suggestion``: the coach's better wording, or "" for a good question."""
    from bot.coach import coach

    return (coach(text if isinstance(text, str) else "").suggestion or "") if text is not None else ""


ENV.filters["coach"] = _size_filter("coach", _coach_labels)
ENV.filters["coach_suggestion"] = _size_filter("coach_suggestion", _coach_suggestion)

# Flow text is wording with a few {{ answers.x }}, maybe an {% if %} or a simple loop: no
# macros, imports, or loops inside loops (each capped range is small; nested ones multiply).
_REFUSED_NODES = (nodes.Macro, nodes.CallBlock, nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)


class TemplateProblem(Exception):
    """A template or expression that cannot be compiled; ``lineno`` is relative to it."""

    def __init__(self, message: str, lineno: int = 1):
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def _all_nodes(tree: nodes.Node) -> list[nodes.Node]:
    """Every node of a parsed template, walked once and kept with it (the checks below and
    the linter's answer references all read the same list)."""
    found = getattr(tree, "_every_node", None)
    if found is None:
        found = list(tree.find_all(nodes.Node))
        tree._every_node = found
    return found


def _find(tree: nodes.Node, kinds) -> list:
    return [n for n in _all_nodes(tree) if isinstance(n, kinds)]


def _refused_statement(tree: nodes.Node) -> str | None:
    for node in _find(tree, nodes.Filter):
        if node.name not in ENV.filters:
            return f"there is no filter '{node.name}' in flow text"
    for node in _find(tree, nodes.Test):
        if node.name not in ENV.tests:
            return f"there is no test '{node.name}' in flow text"
    for node in _find(tree, _REFUSED_NODES):
        return f"{{% {type(node).__name__.lower()} %}} is not available in flow text"
    for loop in _find(tree, nodes.For):
        if loop.recursive:
            return "recursive loops are not available in flow text"
        if any(True for _ in loop.find_all(nodes.For)):
            return "a loop inside a loop is not available in flow text"
    return None


def _unsafe_names(tree: nodes.Node) -> list[str]:
    found = []
    for node in _find(tree, (nodes.Getattr, nodes.Getitem)):
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
    refused = _refused_statement(tree)
    if refused:
        raise TemplateProblem(refused)
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
    refused = _refused_statement(tree)
    if refused:
        raise TemplateProblem(refused)
    return tree


def answer_references(tree: nodes.Node) -> list[str]:
    """Step ids read as ``answers.X`` or ``answers['X']`` in a parsed template/expression."""
    refs = []
    for node in _find(tree, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name in ("answers", "shown"):
            if isinstance(node, nodes.Getattr):
                refs.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                refs.append(node.arg.value)
    return refs


def case_references(tree: nodes.Node) -> list[str]:
    """Keys read as ``case.X`` or ``case['X']`` (the practitioner's texts for the case)."""
    refs = []
    for node in _find(tree, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "case":
            if isinstance(node, nodes.Getattr):
                refs.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                refs.append(node.arg.value)
    return refs


def uses_name(tree: nodes.Node, name: str) -> bool:
    return any(n.name == name for n in _find(tree, nodes.Name))


# --- the common shapes, without Jinja's machinery ---------------------------------------
# Most flow text is words with a few ``{{ answers.x }}`` / ``{{ shown.x }}`` (maybe ``+ 1``),
# and most conditions compare an answer with a constant (``answer <= 1``). Rendering those
# through Jinja builds a template context and a generator each time (20 to 30 us); here they
# are read straight from the context, with exactly Jinja's result. Anything else, and any
# value off the plain path (a missing answer, a name that is also an attribute, arithmetic
# on anything but two small whole numbers), goes to Jinja as before.

class _Slow(Exception):
    """This evaluation leaves the fast path: Jinja decides."""


_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
            "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}
_CONSTANTS = (int, float, str, bool, type(None))
_FAST_NAMES = ("answer", "answers", "shown")


def _fast_value(node: nodes.Node) -> Callable[[dict], Any] | None:
    """A function of the context giving ``node``'s value as Jinja would (or raising _Slow),
    or None where the node is not one of the shapes handled here."""
    if isinstance(node, nodes.Const) and type(node.value) in _CONSTANTS:
        value = node.value
        return lambda ctx: value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = [_fast_value(item) for item in node.items]
        if any(item is None or not isinstance(sub, nodes.Const) for item, sub in zip(items, node.items)):
            return None
        values = [item(None) for item in items]
        kind = list if isinstance(node, nodes.List) else tuple
        return lambda ctx: kind(values)
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in _FAST_NAMES:
        name = node.name

        def lookup(ctx: dict) -> Any:
            try:
                return ctx[name]
            except KeyError:
                raise _Slow from None
        return lookup
    if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name) \
            and node.node.name in ("answers", "shown") and node.ctx == "load":
        base = node.node.name
        if isinstance(node, nodes.Getattr):
            key, attr = node.attr, True
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key, attr = node.arg.value, False
        else:
            return None

        def item(ctx: dict) -> Any:
            try:
                obj = ctx[base]
                # the sandbox reads an attribute first (``answers.items`` is dict.items): only a
                # name that is no attribute of the object is read as a key here
                if attr and hasattr(obj, key):
                    raise _Slow
                return obj[key]
            except _Slow:
                raise
            except Exception:  # not there (Jinja: undefined), or anything else: Jinja decides
                raise _Slow from None
        return item
    if isinstance(node, (nodes.Add, nodes.Sub)):
        left, right = _fast_value(node.left), _fast_value(node.right)
        if left is None or right is None:
            return None
        add = isinstance(node, nodes.Add)

        def arithmetic(ctx: dict) -> int:
            a, b = left(ctx), right(ctx)
            if type(a) is not int or type(b) is not int or a.bit_length() > 62 or b.bit_length() > 62:
                raise _Slow  # only small whole numbers here (the sandbox checks sizes and types)
            return a + b if add else a - b
        return arithmetic
    return None


def _fast_test(node: nodes.Node) -> Callable[[dict], Any] | None:
    """As _fast_value, for a condition: comparisons, ``and``, ``or``, ``not`` of the shapes above."""
    if isinstance(node, nodes.Compare):
        first = _fast_value(node.expr)
        ops = [(_COMPARE.get(op.op), _fast_value(op.expr)) for op in node.ops]
        if first is None or any(fn is None or value is None for fn, value in ops):
            return None

        def compare(ctx: dict) -> bool:
            left = first(ctx)
            for fn, value in ops:  # chained as Python chains them (Jinja compiles to the same)
                right = value(ctx)
                if not fn(left, right):
                    return False
                left = right
            return True
        return compare
    if isinstance(node, (nodes.And, nodes.Or)):
        left, right = _fast_test(node.left), _fast_test(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.And):
            return lambda ctx: left(ctx) and right(ctx)
        return lambda ctx: left(ctx) or right(ctx)
    if isinstance(node, nodes.Not):
        inner = _fast_test(node.node)
        return None if inner is None else (lambda ctx: not inner(ctx))
    return _fast_value(node)


def _fast_template(tree: nodes.Template | None) -> Callable[[dict], str] | None:
    """Words and ``{{ }}`` of the shapes above, as one function; None for anything else."""
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list = []
    for node in tree.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        else:
            value = _fast_value(node)
            if value is None:
                return None
            parts.append(value)
    if not any(callable(p) for p in parts):
        return None

    def render(ctx: dict) -> str:
        return "".join([p if type(p) is str else str(p(ctx)) for p in parts])
    return render


def _fast_expression(tree: nodes.Template | None) -> Callable[[dict], Any] | None:
    """A condition parsed by :func:`parse_expression` (``{{ (expr) }}``), as one function."""
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output) \
            or len(tree.body[0].nodes) != 1:
        return None
    return _fast_test(tree.body[0].nodes[0])



def _lazy(make: Callable[[], Any]) -> Callable[[], Any]:
    """Compile on first use: validating a flow parses every template but need not turn each
    into Python code (a millisecond apiece, which a 10,000-step flow would feel)."""
    made: list = []

    def get():
        if not made:
            made.append(make())
        return made[0]
    return get


def fixed_text(text: str) -> Callable[[dict], str]:
    """The render function of words without markup: ``text`` whatever the context. It says so
    (``render.fixed``), so the runner need not build a context to render it."""
    def render(context: dict) -> str:
        return text

    render.fixed = text
    return render


def compile_template(source: str, tree: nodes.Template | None = None) -> Callable[[dict], str]:
    """A render function; plain text without Jinja markup skips Jinja entirely. ``tree`` is
    the template already parsed by :func:`parse_template`, if at hand."""
    if "{" not in source:
        return fixed_text(source)
    template = _lazy(lambda: ENV.from_string(tree if tree is not None else source))
    fast = _fast_template(tree)

    def render(context: dict) -> str:
        if fast is not None:
            try:
                return fast(context)[:MAX_RENDERED]
            except _Slow:
                pass  # Jinja decides, as for any other template
        try:
            parts, size = [], 0
            for chunk in template().generate(context):  # stops building once the text is long enough
                parts.append(chunk)
                size += len(chunk)
                if size >= MAX_RENDERED:
                    break
            text = "".join(parts)
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError, RecursionError,
                MemoryError) as exc:
            # the message names the rule broken, never the answers it was built from
            log.warning("template could not be rendered: %s", type(exc).__name__,
                        extra={"problem": str(exc) if isinstance(exc, TooBig) else type(exc).__name__})
            text = source  # the author's wording, unrendered, rather than a traceback
        return text[:MAX_RENDERED]

    return render


def size_problem(source: str, context: dict) -> str | None:
    """Why rendering ``source`` with these (largest possible) answers would build too much,
    or None. Used by the linter, so a flow that could do it is refused before it runs."""
    if not _MAY_GROW.search(source):
        return None  # only names, attributes and text: nothing here can grow
    try:
        size = 0
        for chunk in ENV.from_string(source).generate(context):
            size += len(chunk)
            if size > MAX_BUILT:
                raise TooBig(f"text of more than {MAX_BUILT} characters")
    except TooBig as exc:
        return str(exc)
    except Exception:  # other problems depend on the answers given; rendering copes with them
        return None
    return None


_MAY_GROW = re.compile(r"[*%(|~+]|\{%")


def compile_condition(source: str, tree: nodes.Template | None = None) -> Callable[[dict], bool]:
    """``tree``: the condition already parsed by :func:`parse_expression`, if at hand (then
    the common shapes are evaluated without Jinja's machinery, with the same result)."""
    expression = _lazy(lambda: ENV.compile_expression(source))
    fast = _fast_expression(tree)

    def evaluate(context: dict) -> bool:
        if fast is not None:
            try:
                return bool(fast(context))
            except _Slow:
                pass  # Jinja decides
            except (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as exc:
                log.debug("condition %r is false: %s", source, type(exc).__name__)
                return False
        try:
            return bool(expression()(**context))
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError, RecursionError,
                MemoryError) as exc:
            # e.g. comparing a skipped (None) answer with a number: the branch is not taken.
            log.debug("condition %r is false: %s", source, type(exc).__name__)
            return False

    return evaluate


def compile_value(source: str) -> Callable[[dict], Any]:
    """An expression's value (e.g. ``exclude: answers.first_house``), or None where it cannot be
    worked out (a skipped answer, a refused operation): never an exception."""
    expression = _lazy(lambda: ENV.compile_expression(source))

    def evaluate(context: dict) -> Any:
        try:
            return _check(expression()(**context))
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError, RecursionError,
                MemoryError) as exc:
            log.debug("expression %r has no value: %s", source, type(exc).__name__)
            return None

    return evaluate
