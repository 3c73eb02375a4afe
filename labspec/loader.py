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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from labspec.document import Document, JsonPath, Mark, format_path
from labspec.errors import Problem, SpecError
from labspec.yaml_compose import MAX_DEPTH, _compose
from labspec.yaml_compose import TAG as _TAG

MAX_BYTES = 2 * 1024 * 1024  # a spec is a few KB; anything this big is a mistake
MAX_NODES = 50_000  # values after alias expansion (a 100-container lab has ~5,000)



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
