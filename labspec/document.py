"""A YAML document as plain values, with the line and column of every value and key.

Problems anywhere in labspec are located through a :class:`Document`: a JSON path
(``("containers", "web", "ports", 0)``, shown as ``$.containers.web.ports[0]``) maps to the
:class:`Mark` where it was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labspec.errors import Problem

PathKey = str | int
JsonPath = tuple[PathKey, ...]

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
