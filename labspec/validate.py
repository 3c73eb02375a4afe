"""JSON Schema validation with located, readable problems.

The schemas in ``schemas/`` are registered in one ``referencing`` Registry (the lab schema
refers to ``checks.schema.json``), and one validator per document kind is built on first use
and kept: validators are pure configuration, not state.

Each jsonschema error becomes a :class:`~labspec.errors.Problem` at the YAML position of the
value (or, for unknown and badly named keys, of the key). ``oneOf``/``anyOf`` failures report
the branch that fits best (ranked with jsonschema's ``relevance``), not every branch.

Importing jsonschema costs more CPU than reading, rendering and building a whole lab, and
``labup up`` of an unchanged lab should be quick. So a document that passed is remembered by
a digest of its (rendered) content, the schemas and this module's own source, as an empty
file under ``$LABUP_CACHE_DIR`` (default ``~/.cache/labup``); the next run with the same
digest skips jsonschema entirely. Only passes are cached: a document with problems is always
checked in full. ``LABUP_NO_CACHE=1`` turns it off; deleting the folder is always safe.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labspec.document import Document, JsonPath
from labspec.errors import Problem
from labspec.resources import schemas_dir

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

KINDS = ("lab", "inventory", "checks", "class")


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a document kind: ``lab``, ``inventory`` or ``checks``."""
    path = schemas_dir() / f"{kind}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource

    resources = []
    for path in sorted(schemas_dir().glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents.get("$id", path.name), Resource.from_contents(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    """The validator of a document kind, built once."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(kind), registry=_registry())


def cache_dir() -> Path | None:
    """Where passes are remembered; None when ``LABUP_NO_CACHE=1``."""
    if os.environ.get("LABUP_NO_CACHE") == "1":
        return None
    base = os.environ.get("LABUP_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("LABUP_CACHE_DIR") else root / "labup") / "valid"


@functools.cache
def _fingerprint() -> bytes:
    """The schemas and this module's source: a change to either forgets every pass."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(schemas_dir().glob("*.schema.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _digest(kind: str, data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(_fingerprint() + kind.encode() + b"\0" + text.encode()).hexdigest()


def _remembered(path: Path | None) -> bool:
    return path is not None and path.is_file()


def _remember(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # best effort: a read-only home only means the next run validates again


def check(
    doc: Document, kind: str, *, skip: Callable[[JsonPath], bool] = lambda path: False
) -> list[Problem]:
    """Every schema problem of ``doc``, located; errors at paths where ``skip`` is true are
    dropped (their template already failed and was reported)."""
    from_cache = cache_dir()
    marker = from_cache / _digest(kind, doc.data) if from_cache is not None else None
    problems: list[Problem] = _unusable(doc, doc.data, ())
    if _remembered(marker):
        return problems
    from jsonschema.exceptions import relevance

    seen: set[tuple[int, int, str, str]] = set()
    errors = sorted(validator(kind).iter_errors(doc.data), key=relevance)
    for error in errors:
        if skip(tuple(error.absolute_path)):
            continue
        for problem in _convert(doc, error, None):
            key = (problem.line, problem.column, problem.path, problem.message)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
    if not errors:
        _remember(marker)
    return sorted(problems, key=lambda p: (p.line, p.column))


def _unusable(doc: Document, value: Any, path: JsonPath) -> list[Problem]:
    """Values JSON Schema cannot refuse but no field means: ``.nan``/``.inf`` pass every
    bound, and a NUL character fits no path, name or command."""
    if isinstance(value, float) and not math.isfinite(value):
        return [doc.problem(path, f"{value} is not a finite number")]
    if isinstance(value, str) and "\x00" in value:
        return [doc.problem(path, "text holds a NUL character (\\0)")]
    found: list[Problem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                found.append(doc.problem(path, "a key holds a NUL character (\\0)"))
            found.extend(_unusable(doc, item, (*path, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_unusable(doc, item, (*path, i)))
    return found


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "empty",
}


def _type_name(name: Any) -> str:
    return _TYPE_NAMES.get(str(name), str(name))


def _alternatives(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _schema_of(error: ValidationError) -> dict[str, Any]:
    node = error.schema
    return node if isinstance(node, dict) else {}


def _value_of(error: ValidationError) -> Any:
    return error.validator_value


def _description(node: Any) -> str | None:
    if isinstance(node, dict):
        text = node.get("description")
        if isinstance(text, str):
            return text
    return None


def _convert(doc: Document, error: ValidationError, context_hint: str | None) -> list[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    described = _description(error.schema) or context_hint
    kind = str(error.validator)
    value = _value_of(error)
    shown = _show(error.instance)
    if kind in ("oneOf", "anyOf") and error.context:
        return _branches(doc, error, path, described)
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys(doc, error, path)
    if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        name = error.instance
        hint = _pattern_hint(error) or described
        message = f"{name!r} is not a valid name here"
        return [doc.problem((*path, name), message, hint=hint, key=True)]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        message = f"missing required key '{missing}'"
        wanted = _schema_of(error).get("properties", {}).get(missing)
        hint = _description(wanted) or described
        return [doc.problem(path, message, hint=f"{missing}: {hint}" if hint else None, key=True)]
    if kind == "pattern":
        return [doc.problem(path, f"{shown} is not in the expected form", hint=described)]
    if kind == "enum":
        choices = [str(c) for c in value]
        close = difflib.get_close_matches(str(error.instance), choices, n=1)
        hint = f"did you mean {close[0]!r}?" if close else described
        message = f"{shown} is not one of {', '.join(choices)}"
        return [doc.problem(path, message, hint=hint)]
    if kind == "const":
        return [doc.problem(path, f"expected {value!r}, found {shown}", hint=described)]
    if kind == "not":
        return [doc.problem(path, f"{shown} is not allowed here", hint=described)]
    if kind == "type":
        names = _alternatives(
            [_type_name(t) for t in (value if isinstance(value, list) else [value])]
        )
        return [doc.problem(path, f"{shown} is not {names}", hint=described)]
    if kind == "oneOf" and not error.context:
        keys = _required_keys(value)
        present = [k for k in keys if isinstance(error.instance, dict) and k in error.instance]
        if len(present) > 1:
            message = f"has more than one of the keys {', '.join(present)}: keep one"
            return [doc.problem(path, message, hint=described)]
        return [doc.problem(path, "matches more than one of the allowed forms", hint=described)]
    return [doc.problem(path, error.message, hint=described)]


def _branches(
    doc: Document, error: ValidationError, path: JsonPath, described: str | None
) -> list[Problem]:
    """A failed oneOf/anyOf: one message for a plain type mismatch, else the best branch."""
    context = list(error.context or ())
    raw = _value_of(error)
    branches: list[Any] = raw if isinstance(raw, list) else []
    by_branch: dict[int, list[ValidationError]] = {}
    for e in context:
        index = e.relative_schema_path[0] if e.relative_schema_path else 0
        by_branch.setdefault(int(index), []).append(e)
    if all(e.validator in ("type", "const") and not e.relative_path for e in context):
        wanted: list[str] = []
        for e in context:
            expected = _value_of(e)
            if e.validator == "type":
                listed = expected if isinstance(expected, list) else [expected]
                wanted.extend(_type_name(v) for v in listed)
            else:
                wanted.append(repr(expected))
        message = f"{_show(error.instance)} is not {_alternatives(wanted)}"
        return [doc.problem(path, message, hint=described)]
    keyed = _required_keys(branches)
    if keyed and all(e.validator == "required" and not e.relative_path for e in context):
        message = f"needs one of the keys {', '.join(keyed)}"
        return [doc.problem(path, message, hint=described, key=True)]

    def score(index: int) -> tuple[int, int, int]:
        errors = by_branch[index]
        branch = branches[index] if index < len(branches) else {}
        depth = max(len(e.path) for e in errors)
        return (_type_fit(branch, error.instance), depth, -len(errors))

    from jsonschema.exceptions import relevance

    best = max(by_branch, key=score)
    problems: list[Problem] = []
    for e in sorted(by_branch[best], key=relevance):
        problems.extend(_convert(doc, e, described))
    return problems


def _required_keys(branches: Any) -> list[str]:
    """For branches that are each ``{"required": [key]}``-like, the keys; else []."""
    if not isinstance(branches, list):
        return []
    keys = []
    for branch in branches:
        required = branch.get("required") if isinstance(branch, dict) else None
        if not (isinstance(required, list) and len(required) == 1):
            return []
        keys.append(str(required[0]))
    return keys


def _type_fit(branch: Any, instance: Any) -> int:
    """2: the branch's type admits the value; 1: the branch names no type; 0: it does not."""
    if not isinstance(branch, dict):
        return 1
    if "const" in branch:
        return 2 if branch["const"] == instance else 0
    wanted = branch.get("type")
    if wanted is None:
        return 1
    types = wanted if isinstance(wanted, list) else [wanted]
    return 2 if any(_is_type(instance, t) for t in types) else 0


def _is_type(instance: Any, name: str) -> bool:
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    return name == "number" and isinstance(instance, int | float)


def _unknown_keys(doc: Document, error: ValidationError, path: JsonPath) -> list[Problem]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    node = _schema_of(error)
    properties = node.get("properties", {})
    patterns = [re.compile(p) for p in node.get("patternProperties", {})]
    valid = sorted(properties)
    problems = []
    for key in instance:
        if key in properties or any(p.search(key) for p in patterns):
            continue
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        hint += f"valid keys here: {', '.join(valid)}" if valid else "no keys are allowed here"
        problems.append(doc.problem((*path, key), f"unknown key '{key}'", hint=hint, key=True))
    return problems


def _pattern_hint(error: ValidationError) -> str | None:
    if error.validator != "pattern":
        return None
    if _value_of(error) == r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$":
        return "names start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
    return f"names must match {_value_of(error)}"


def _show(value: Any) -> str:
    if value is None:
        return "null (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
