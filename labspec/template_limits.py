"""The bounded Jinja2 sandbox: output size, loop steps and a time limit for every render.

jinja2's sandbox keeps templates away from Python internals; it does not bound what they
allocate or how long they run. This environment does, for every template a spec or an
instructions file holds:

- **Size**: no value a template builds may exceed :data:`MAX_LENGTH` characters (a list
  counts its items), checked on every operator, call, filter and ``~`` before the work is
  done where the work could blow up (``*``, ``replace``, ``join``, ``center``, ``indent``,
  ``wordwrap``, ``%`` and format widths) and on every result after; the output as a whole is
  bounded the same way (:func:`labspec.templating.render_text`).
- **Steps**: every loop iteration, call, filter and operator is a step; a render (a whole
  spec, or one instructions file) may take :data:`MAX_STEPS`.
- **Time**: a render stops after :data:`MAX_SECONDS` of wall time, checked at every step;
  between two steps the work is bounded by the size limit.
- ``range()`` gives at most :data:`MAX_RANGE` numbers, exponents are at most
  :data:`MAX_EXPONENT`, ``lipsum`` is gone and ``str`` has only the methods in
  :data:`STR_METHODS` (none of ``translate``, ``expandtabs``, ``encode``, ``format_map``).

Each limit raises ``jinja2.exceptions.SecurityError``; the caller reports it located, as a
template problem (exit 2). The budget of a render lives in a context variable, so renders in
different threads (a fleet renders one spec per host) each have their own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_LENGTH = 1_000_000  # characters of any value a template builds (a list: its items too)
MAX_EXPONENT = 1_000
MAX_RANGE = 10_000
MAX_STEPS = 100_000  # loop iterations, calls, filters and operators in one render
MAX_SECONDS = 2.0  # wall time of one render

STR_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index",
    "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
    "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
    "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper", "zfill",
})
_WIDE_FORMAT = re.compile(r"\d{7,}")  # a format width or precision of a million or more
_LOOP = "labspec.template_limits.loop_items"
_CONCAT = "labspec.template_limits.concat"


class _Budget:
    __slots__ = ("deadline", "steps")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.steps = 0


_budget: ContextVar[_Budget | None] = ContextVar("labup_template_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """One render's budget; nested calls share the outermost one."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


def step() -> None:
    """Count one step of the current render; SecurityError past the step or time limit."""
    current = _budget.get()
    if current is None:  # compiling outside a render (constant folding is off): no budget
        return
    current.steps += 1
    if current.steps > MAX_STEPS:
        raise SecurityError(f"the template takes more than {MAX_STEPS} steps (loops, calls)")
    if time.monotonic() > current.deadline:
        raise SecurityError(f"rendering took longer than {MAX_SECONDS:g}s")


def size(value: Any, limit: int = MAX_LENGTH) -> int:
    """Characters ``value`` holds (strings by length, containers by their items, anything
    else 1), counting stops just past ``limit``."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        total = len(value)
        items: Iterable[Any] = value.items() if isinstance(value, dict) else value
        for item in items:
            if total > limit:
                break
            total += size(item, limit - total)
        return total
    return 1


def check_size(value: Any, what: str = "the result") -> Any:
    if size(value) > MAX_LENGTH:
        raise SecurityError(f"{what} would be longer than {MAX_LENGTH} characters")
    return value


def _too_big(n: int) -> None:
    raise SecurityError(f"the result would be longer than {MAX_LENGTH} characters ({n:.3g})")


def _check_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_LENGTH:
            raise SecurityError(f"the number {value} is too large here (limit {MAX_LENGTH})")
        check_size(value, "an argument")


def _estimate(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse the few operations whose result can be far larger than their inputs before
    they run: ``replace``, ``join``, ``indent``, ``wordwrap``, format widths."""
    first = args[0] if args else None
    if name == "replace" and isinstance(first, str) and len(args) >= 3:
        old, new = str(args[1]), str(args[2])
        hits = first.count(old) if old else len(first) + 1
        if len(first) + hits * (len(new) - len(old)) > MAX_LENGTH:
            _too_big(len(first) + hits * (len(new) - len(old)))
    elif name == "join" and len(args) >= 2:  # (separator, items)
        sep, items = args[0], args[1]
        if isinstance(items, list | tuple | str):
            total = size(items) + len(str(sep)) * max(len(items) - 1, 0)
            if total > MAX_LENGTH:
                _too_big(total)
    elif name == "indent" and isinstance(first, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        lines = first.count("\n") + 1
        total = len(first) + lines * (width if isinstance(width, int) else len(str(width)))
        if total > MAX_LENGTH:
            _too_big(total)
    elif name == "wordwrap" and isinstance(first, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 79)
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
        lines = len(first) // max(int(width) if isinstance(width, int) else 1, 1) + 1
        if len(first) + lines * len(str(wrap)) > MAX_LENGTH:
            _too_big(len(first) + lines * len(str(wrap)))
    elif name in ("format", "__mod__") and isinstance(first, str) and _WIDE_FORMAT.search(first):
        raise SecurityError("a format width of a million or more is not allowed")


def loop_items(iterable: Any) -> Iterator[Any]:
    """What a ``{% for %}`` iterates, one step per item."""
    step()
    for item in iterable:
        step()
        yield item


def concat(parts: list[Any]) -> str:
    """``a ~ b``: the sizes are checked before the string is built."""
    step()
    texts = [str(check_size(p, "a part of ~")) for p in parts]
    total = sum(len(t) for t in texts)
    if total > MAX_LENGTH:
        _too_big(total)
    return "".join(texts)


class _Bounder(NodeTransformer):
    """Every ``for`` iterates through :func:`loop_items`; every ``~`` is :func:`concat`."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.ImportedName(_LOOP), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.ImportedName(_CONCAT), [nodes.List(list(node.nodes), lineno=node.lineno)],
            [], None, None, lineno=node.lineno,
        )


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _Bounder().visit(node)
        super().visit_Template(node, frame)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        step()
        _check_args(args, kwargs)
        plain = _filter_args(args)
        if name == "join" and plain:
            _estimate("join", (plain[1] if len(plain) > 1 else kwargs.get("d", ""), plain[0]), {})
        else:
            _estimate(name, plain, kwargs)
        return check_size(func(*args, **kwargs))

    return bounded


def _filter_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A filter's arguments without the context/environment jinja passes some of them."""
    from jinja2 import Environment
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    while args and isinstance(args[0], Context | EvalContext | Environment):
        args = args[1:]
    return args


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() longer than {MAX_RANGE}")
    return result


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the limits of this module."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            optimized=False,  # no constant folding at compile time: every value is checked
            finalize=lambda value: check_size(value, "an output value"),
        )
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        step()
        _check_args(args, kwargs)
        name = getattr(__obj, "__name__", "")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and name in ("replace", "join", "format"):
            _estimate(name, (owner, *args), kwargs)
        from jinja2.runtime import LoopContext

        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (loop_items(args[0]), *args[1:])
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        step()
        check_size(left, "an operand")
        check_size(right, "an operand")
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and size(seq) * times > MAX_LENGTH:
                    raise SecurityError(f"result would be longer than {MAX_LENGTH}")
        elif operator == "%" and isinstance(left, str):
            _check_args(right if isinstance(right, tuple) else (right,), {})
            _estimate("__mod__", (left,), {})
        return check_size(super().call_binop(context, operator, left, right))
