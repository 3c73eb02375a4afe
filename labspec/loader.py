"""Read a YAML document into plain Python values, keeping the line and column of every node.

PyYAML's loaders lose positions, silently keep the last of two duplicate keys, and expand
aliases without bound. This module composes the node graph (libyaml when available, pure
Python otherwise) and converts it itself:

- every value and every mapping key is located (:class:`Document` maps JSON paths to marks);
- duplicate keys, unsupported tags and recursive aliases are reported, not resolved;
- alias expansion is counted, so a few KB that would expand to billions of nodes stop at
  :data:`MAX_NODES` at once instead of eating memory;
- scalars follow YAML 1.2's core schema for booleans (only true/false, so ``restart: no``
  stays the string ``"no"``) and never read ``22:22`` as a base-60 number;
- problems come back as :class:`~labspec.errors.Problem` objects, all of them at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from labspec.errors import Problem, SpecError

PathKey = str | int
JsonPath = tuple[PathKey, ...]

MAX_BYTES = 2 * 1024 * 1024  # a spec is a few KB; anything this big is a mistake
MAX_NODES = 50_000  # values after alias expansion (a 100-container lab has ~5,000)
MAX_DEPTH = 64  # nesting of mappings and sequences

_TAG = "tag:yaml.org,2002:"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: JsonPath) -> str:
    """``("containers", "web", "ports", 0)`` -> ``$.containers.web.ports[0]``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


class Mark(NamedTuple):
    """A 1-based line and column in the file."""

    line: int
    column: int


@dataclass
class Document:
    """A YAML document as plain values, with the position of every value and key."""

    file: str  # how problems name the file
    data: Any
    values: dict[JsonPath, Mark] = field(default_factory=dict)
    keys: dict[JsonPath, Mark] = field(default_factory=dict)

    def where(self, path: JsonPath, *, key: bool = False) -> Mark:
        """Where the value at ``path`` (or, with ``key``, its key) was written; the nearest
        located ancestor for values that have no node of their own (rendered templates)."""
        if key and path in self.keys:
            return self.keys[path]
        probe = path
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(0, 0))

    def problem(
        self, path: JsonPath, message: str, *, hint: str | None = None, key: bool = False
    ) -> Problem:
        mark = self.where(path, key=key)
        return Problem(self.file, mark.line, mark.column, format_path(path), message, hint)


class _Resolver(BaseResolver):
    """Implicit tags: YAML 1.2 core booleans and nulls, ints and floats without base 60."""


_Resolver.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    _TAG + "int",
    re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(_TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])
_Resolver.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _PyComposer(Reader, Scanner, Parser, Composer, _Resolver):
    """Pure-Python composer: slower, but its error messages name the offending character."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _CComposer(CParser, _Resolver):
        """libyaml composer: about ten times faster; used first, re-run in Python on error."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

    _FAST: type[Any] | None = _CComposer
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _FAST = None


def read_text(path: Path, display: str) -> str:
    """The file's text; a located problem for missing files, huge files and bad UTF-8."""
    try:
        if path.is_dir():
            raise SpecError([Problem(display, 0, 0, "$", "is a folder, not a YAML file")])
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError(
                [
                    Problem(
                        display, 0, 0, "$", f"file is {size} bytes; a spec is at most {MAX_BYTES}"
                    )
                ]
            )
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise SpecError(
            [
                Problem(
                    display,
                    0,
                    0,
                    "$",
                    "no such file",
                    "check the path (relative to the current folder)",
                )
            ]
        ) from e
    except OSError as e:
        raise SpecError([Problem(display, 0, 0, "$", f"cannot read: {e.strerror or e}")]) from e
    return decode(raw, display)


def decode(raw: bytes, display: str) -> str:
    """UTF-8 (with or without a byte-order mark), else a problem at the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start : e.start + 1].hex()
        raise SpecError(
            [
                Problem(
                    display,
                    line,
                    column,
                    "$",
                    f"byte 0x{bad} is not UTF-8 text",
                    "save the file as UTF-8 (most editors: File > Save with Encoding > UTF-8)",
                )
            ]
        ) from e


def parse(text: str, display: str) -> tuple[Document, list[Problem]]:
    """Compose and convert one YAML document.

    Fatal problems (syntax, empty, too big) raise :class:`SpecError`; problems that leave a
    usable document (duplicate keys, unsupported tags) are returned beside it so validation
    can go on and report everything at once.
    """
    root = _compose(text, display)
    if root is None:
        raise SpecError(
            [
                Problem(
                    display, 1, 1, "$", "file is empty", "a spec starts with `apiVersion: labup/v1`"
                )
            ]
        )
    converter = _Converter(display)
    try:
        data = converter.convert(root, (), 0)
    except _Limit as e:
        raise SpecError(
            [Problem(display, e.mark.line, e.mark.column, "$", e.message, e.hint)]
        ) from None
    doc = Document(display, data, converter.values, converter.keys)
    if not isinstance(data, dict):
        kind = _kind(data)
        converter.problems.append(
            doc.problem((), f"expected a mapping (key: value lines), found {kind}")
        )
        raise SpecError(converter.problems)
    return doc, converter.problems


def load_file(path: str | Path) -> tuple[Document, list[Problem]]:
    """:func:`parse` a file, naming it as the user gave it."""
    display = str(path)
    return parse(read_text(Path(path), display), display)


def _compose(text: str, display: str) -> Node | None:
    if _FAST is not None:
        fast = _FAST(text)
        try:
            node: Node | None = fast.get_single_node()
            return node
        except yaml.YAMLError:
            pass  # re-run below: the pure-Python messages are clearer
        except RecursionError:
            pass
        finally:
            fast.dispose()
    try:
        node = _PyComposer(text).get_single_node()
    except yaml.MarkedYAMLError as e:
        raise SpecError([_syntax_problem(e, text, display)]) from None
    except yaml.reader.ReaderError as e:
        line, column = _line_col(text, e.position)
        char = e.character if isinstance(e.character, str) else chr(e.character)
        raise SpecError(
            [
                Problem(
                    display,
                    line,
                    column,
                    "$",
                    f"character U+{ord(char):04X} is not allowed in YAML text",
                    "remove the control character (often pasted from a terminal or a PDF)",
                )
            ]
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - every PyYAML error is one of the above
        raise SpecError([Problem(display, 0, 0, "$", f"YAML error: {e}")]) from None
    except RecursionError:
        raise SpecError(
            [Problem(display, 0, 0, "$", f"nesting deeper than {MAX_DEPTH} levels")]
        ) from None
    return node


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, display: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    problem = (e.problem or "syntax error").replace("'\\t'", "tab")
    message = f"YAML syntax: {problem}"
    if e.context:
        message += f" ({e.context}"
        if e.context_mark is not None and e.context_mark is not mark:
            message += f" at line {e.context_mark.line + 1}"
        message += ")"
    hint = None
    lines = text.splitlines()
    nearby = [n for n in (line - 1, line - 2) if 0 <= n < len(lines)]
    for n in nearby:
        indent = lines[n][: len(lines[n]) - len(lines[n].lstrip(" \t"))]
        if "\t" in indent:
            message = "YAML syntax: a tab is used for indentation"
            line, column = n + 1, indent.index("\t") + 1
            hint = "YAML indents with spaces only: replace the tab with spaces"
            break
    else:
        if "'\\t'" in (e.problem or "") or "tab" in problem:
            hint = "YAML indents with spaces only: replace the tab with spaces"
        elif "mapping values are not allowed" in problem:
            hint = "quote values that contain ': ', or check the indentation of this line"
        elif "could not find expected ':'" in problem or "expected <block end>" in problem:
            hint = "check the indentation: items of one mapping or list line up"
    return Problem(display, line, column, "$", message, hint)


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


class _Limit(Exception):
    def __init__(self, mark: Mark, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message
        self.hint = hint


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Nodes to values, counting every visit (aliases included) against the limits."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.count = 0
        self.values: dict[JsonPath, Mark] = {}
        self.keys: dict[JsonPath, Mark] = {}
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._marks: dict[int, Mark] = {}

    def _problem(self, node: Node, path: JsonPath, message: str, hint: str | None = None) -> None:
        mark = _mark(node)
        self.problems.append(
            Problem(self.display, mark.line, mark.column, format_path(path), message, hint)
        )

    def convert(self, node: Node, path: JsonPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Limit(
                _mark(node),
                f"document expands to more than {MAX_NODES} values (aliases included)",
                "an alias (*name) repeated inside anchors multiplies the document; "
                "a lab spec never needs that many values",
            )
        if depth > MAX_DEPTH:
            raise _Limit(_mark(node), f"nesting deeper than {MAX_DEPTH} levels")
        mark = self._marks.get(id(node))
        if mark is None:
            mark = self._marks[id(node)] = _mark(node)
        self.values[path] = mark
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            self._problem(node, path, "an alias refers to a mapping or list that contains it")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, path, "seq")
                return [
                    self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            if isinstance(node, MappingNode):
                self._check_tag(node, path, "map")
                return self._mapping(node, path, depth)
        finally:
            self._active.discard(id(node))
        raise AssertionError(f"unknown YAML node {node!r}")  # pragma: no cover

    def _check_tag(self, node: Node, path: JsonPath, kind: str) -> None:
        if node.tag != _TAG + kind:
            self._problem(node, path, f"unsupported YAML tag {_short(node.tag)}", "remove the tag")

    def _mapping(self, node: MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        pairs: list[tuple[str, Node]] = []
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(
                    key_node, path, "a mapping key must be a plain string, not a list or mapping"
                )
                continue
            key = key_node.value
            if key in first:
                line = _mark(first[key]).line
                self._problem(
                    key_node,
                    (*path, key),
                    f"duplicate key '{key}' (first written at line {line})",
                    "YAML keeps only one of them: remove or rename one",
                )
                continue
            first[key] = key_node
            pairs.append((key, value_node))
        # Merge keys (<<: *base) first, so explicit keys win and keep their own positions;
        # between merges, the earlier one wins.
        for source in merged:
            values = self.convert(source, path, depth + 1)
            if isinstance(values, dict):
                for key, value in values.items():
                    result.setdefault(key, value)
        for key, value_node in pairs:
            self.keys[(*path, key)] = _mark(first[key])
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        self.values[path] = _mark(node)
        return result

    def _merge_sources(self, value: Node, path: JsonPath) -> Iterator[Node]:
        if isinstance(value, MappingNode):
            yield value
        elif isinstance(value, SequenceNode) and all(
            isinstance(v, MappingNode) for v in value.value
        ):
            yield from value.value
        else:
            self._problem(value, path, "a merge key (<<) takes a mapping or a list of mappings")

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag, text = node.tag, node.value
        try:
            if tag == _TAG + "str":
                return text
            if tag == _TAG + "null":
                if text not in ("", "~", "null", "Null", "NULL"):
                    raise ValueError
                return None
            if tag == _TAG + "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                return text.lower() == "true"
            if tag == _TAG + "int":
                return _to_int(text)
            if tag == _TAG + "float":
                return _to_float(text)
        except ValueError:
            self._problem(node, path, f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}")
            return text
        self._problem(
            node, path, f"unsupported YAML tag {_short(tag)}", "remove the tag, or quote the value"
        )
        return text


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _to_int(text: str) -> int:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    digits = clean.lstrip("+-")
    if digits.startswith(("0b", "0B")):
        return sign * int(digits[2:], 2)
    if digits.startswith(("0x", "0X")):
        return sign * int(digits[2:], 16)
    if digits.startswith(("0o", "0O")):
        return sign * int(digits[2:], 8)
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)  # YAML 1.1 octal, as in `mode: 0644`
    return sign * int(digits, 10)


def _to_float(text: str) -> float:
    clean = text.replace("_", "").lower()
    if clean.endswith(".nan"):
        return math.nan
    if clean.endswith(".inf"):
        return -math.inf if clean.startswith("-") else math.inf
    return float(clean)
