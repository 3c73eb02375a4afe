"""Sandboxed Jinja2 over params, host variables, the instance and the lab.

- A string that is exactly one ``{{ expr }}`` renders to the expression's native value, so
  ``host: "{{ port }}"`` gives an int; any other string renders to a string.
- Undefined names fail (StrictUndefined); Python internals (``''.__class__``) are out of
  reach (jinja2.sandbox); every render is bounded in output size, loop steps and time, and
  ``'x' * 10**9`` or ``10 ** 10 ** 10`` are refused before they run
  (:mod:`labspec.template_limits`).
- Every failure is a :class:`~labspec.errors.TemplateError` located at the string's node.

jinja2 is imported on first use, so specs without templates never pay for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from labspec.document import Document, JsonPath
from labspec.errors import Problem, TemplateError, UserInputError
from labspec.model import Lab, Param, ParamValue, lab_key

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_MARKERS = ("{{", "{%", "{#")
_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}$", re.S)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
INSTANCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,30}$")

DEFAULT_HOST: dict[str, Any] = {"name": "local", "vars": {}}


def has_template(text: str) -> bool:
    return any(marker in text for marker in TEMPLATE_MARKERS)


@functools.cache
def _environment() -> SandboxedEnvironment:
    from labspec.template_limits import BoundedEnvironment

    return BoundedEnvironment()


@functools.lru_cache(maxsize=4096)
def _expression(source: str) -> Callable[..., Any]:
    """Compiled once per text: a fleet renders one spec per host with the same templates."""
    return _environment().compile_expression(source, undefined_to_none=False)


@functools.lru_cache(maxsize=4096)
def _template(source: str) -> Template:
    return _environment().from_string(source)


def _render_string(text: str, context: Mapping[str, Any]) -> str:
    """Render a template, stopping once the output passes MAX_LENGTH characters."""
    from jinja2.exceptions import SecurityError

    from labspec.template_limits import MAX_LENGTH, budget

    parts: list[str] = []
    size = 0
    with budget():
        for chunk in _template(text).generate(**context):
            size += len(chunk)
            if size > MAX_LENGTH:
                raise SecurityError(f"output longer than {MAX_LENGTH} characters")
            parts.append(chunk)
    return "".join(parts)


def _undefined_message(value: Any) -> str | None:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        try:
            str(value)
        except Exception as e:  # StrictUndefined raises UndefinedError with the message
            return str(e)
        return "undefined value"  # pragma: no cover - StrictUndefined always raises
    return None


def render_value(text: str, context: Mapping[str, Any]) -> Any:
    """Render one string: a native value for a lone ``{{ expr }}``, else a string.

    Raises the jinja2 exception (or ValueError for a non-data result); callers locate it.
    """
    single = _SINGLE.match(text.strip())
    if single is not None:
        from labspec.template_limits import budget, check_size

        with budget():
            value = _expression(single.group("expr"))(**context)
        message = _undefined_message(value)
        if message is not None:
            from jinja2.exceptions import UndefinedError

            raise UndefinedError(message)
        return _plain(check_size(value))
    return _render_string(text, context)


def _plain(value: Any, depth: int = 0) -> Any:
    """Keep only data a spec may hold: str, int, float, bool, None, lists and string-keyed maps."""
    if depth > 32:
        raise ValueError("the value is nested too deeply")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # Markup -> str
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    message = _undefined_message(value)
    if message is not None:
        raise ValueError(message)
    raise ValueError(f"the expression gives a {type(value).__name__}, not text, a number or a list")


def _describe(error: Exception) -> str:
    name = type(error).__name__
    text = str(error).strip() or name
    if name == "SecurityError" or text.endswith("is unsafe."):
        return f"not allowed in a template: {text}"
    if name == "TemplateSyntaxError":
        return f"template syntax: {text}"
    if name in ("UndefinedError", "ValueError"):
        return f"template: {text}"
    return f"template: {name}: {text}"


@dataclass
class Rendered:
    """The result of :func:`render_tree`."""

    data: Any
    problems: list[Problem] = field(default_factory=list)
    failed: set[JsonPath] = field(default_factory=set)  # paths whose template failed
    sources: dict[JsonPath, str] = field(default_factory=dict)  # template text by path


def render_tree(
    doc: Document,
    context: Mapping[str, Any],
    *,
    skip: Callable[[JsonPath], bool] = lambda path: False,
) -> Rendered:
    """Render every string of ``doc.data`` (keys are not rendered).

    Returns the rendered data, the located problems, the paths whose rendering failed (so
    schema validation can skip them instead of reporting a second, confusing error there) and
    the template text of every rendered value (so a schema error can show where it came from).
    """
    problems: list[Problem] = []
    failed: set[JsonPath] = set()
    sources: dict[JsonPath, str] = {}
    names = ", ".join(sorted(k for k in context if k != "params"))

    def walk(value: Any, path: JsonPath) -> Any:
        if skip(path):
            return value
        if isinstance(value, str):
            if not has_template(value):
                return value
            sources[path] = value
            try:
                return render_value(value, context)
            except Exception as e:  # a template may raise anything; each becomes a located problem
                failed.add(path)
                hint = None
                if type(e).__name__ == "UndefinedError":
                    hint = f"names a template can use: {names}"
                elif type(e).__name__ == "TemplateSyntaxError":
                    hint = (
                        "to keep a literal {{ write {{ '{{' }}, "
                        "or wrap the text in {% raw %}...{% endraw %}"
                    )
                problems.append(doc.problem(path, _describe(e), hint=hint))
                return value
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    from labspec.template_limits import budget

    with budget():  # one budget (steps, time) for the whole document
        data = walk(doc.data, ())
    return Rendered(data, problems, failed, sources)


def render_text(text: str, context: Mapping[str, Any], *, file: str) -> str:
    """Render a whole text file (instructions) in the sandbox; errors are TemplateError."""
    try:
        return _render_string(text, context)
    except Exception as e:  # a template may raise anything; report it, located when possible
        line = getattr(e, "lineno", None) or _template_line(e)
        raise TemplateError([Problem(file, line, 1 if line else 0, "$", _describe(e))]) from None


def _template_line(error: BaseException) -> int:
    """The template line of a runtime error: jinja2 rewrites tracebacks to template lines."""
    line = 0
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def context(
    *,
    values: Mapping[str, ParamValue],
    lab_id: int | None,
    lab_name: str,
    host: Mapping[str, Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The names templates see: each param, ``params``, ``host``, ``instance``, ``lab``
    (``id``, ``name``, ``key``, ``prefix``)."""
    host_ctx: dict[str, Any] = dict(DEFAULT_HOST)
    if host:
        host_ctx.update(host)
        host_ctx["vars"] = dict(host.get("vars") or {})
    key = lab_key(lab_id, lab_name)
    ctx: dict[str, Any] = dict(values)
    ctx.update(
        params=dict(values),
        host=host_ctx,
        instance=instance or "default",
        # prefix: how this instance's Docker names start (lab5, lab5-alice): lab5-alice-web
        lab={"id": lab_id, "name": lab_name, "key": key,
             "prefix": key if (instance or "default") == "default" else f"{key}-{instance}"},
    )
    return ctx


def template_context(
    lab: Lab, *, host: Mapping[str, Any] | None = None, instance: str | None = None
) -> dict[str, Any]:
    """The template context of a loaded lab (for rendering its instructions)."""
    return context(
        values=lab.values, lab_id=lab.id, lab_name=lab.name, host=host, instance=instance
    )


def check_instance(instance: str | None) -> None:
    if instance is not None and not INSTANCE_PATTERN.match(instance):
        raise UserInputError(
            f"instance name {instance!r} is not valid",
            hint="use lowercase letters, digits, '_', '.' or '-', starting with a letter or digit",
        )


def coerce(param: Param, raw: str) -> ParamValue:
    """A ``--set`` string as the param's type; UserInputError naming the param otherwise
    (a secret param's value is never echoed)."""
    if param.secret:
        try:
            return coerce(replace(param, secret=False), raw)
        except UserInputError as e:
            hidden = e.message.replace(f"={raw}:", "=***:")
            raise UserInputError(hidden, hint=e.hint) from None
    if param.type == "integer":
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise UserInputError(
                f"--set {param.name}={raw}: {param.name} is an integer param",
                hint=f"e.g. --set {param.name}=8080",
            ) from None
    if param.type == "boolean":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UserInputError(
            f"--set {param.name}={raw}: {param.name} is a boolean param", hint="use true or false"
        )
    if param.type == "enum" and raw not in param.choices:
        raise UserInputError(
            f"--set {param.name}={raw}: not one of {', '.join(param.choices)}",
            hint=f"{param.name} is an enum param",
        )
    return raw


def resolve_values(
    params: tuple[Param, ...], raw: Mapping[str, str] | None, *, file: str
) -> dict[str, ParamValue]:
    """Param values from the defaults and ``--set`` strings (unknown or missing: UserInputError)."""
    by_name = {p.name: p for p in params}
    raw = raw or {}
    for name in raw:
        if name not in by_name:
            valid = ", ".join(sorted(by_name)) or "none (the lab has no params)"
            raise UserInputError(
                f"--set {name}: {file} has no param {name!r}", hint=f"valid params: {valid}"
            )
    values: dict[str, ParamValue] = {}
    missing = []
    for param in params:
        if param.name in raw:
            values[param.name] = coerce(param, raw[param.name])
        elif param.default is not None:
            values[param.name] = param.default
        else:
            missing.append(param.name)
    if missing:
        what = (
            f"params {', '.join(missing)} have" if len(missing) > 1 else f"param {missing[0]} has"
        )
        raise UserInputError(
            f"{file}: {what} no default and no value",
            hint="pass " + " ".join(f"--set {name}=VALUE" for name in missing),
        )
    return values


__all__ = [
    "context",
    "render_text",
    "render_tree",
    "render_value",
    "resolve_values",
    "template_context",
]
