"""What every semantic rule uses: a problem list located through the document, the lab's
names, close-match suggestions and cycle finding (depends_on, check ``needs``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labspec.document import Document, JsonPath
from labspec.errors import Problem
from labspec.model import Lab

UNSAFE_HINT = "pass --allow-unsafe if you trust this lab"


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of a directed graph as ``[a, b, a]``, or None. Nodes in insertion order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def suggest(name: str, valid: Iterable[str], what: str) -> str:
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"{what} of this lab: {', '.join(names)}" if names else f"this lab declares no {what}"


class RuleBase:
    """The state the rules share; the rules themselves are methods of subclasses."""

    def __init__(self, lab: Lab, doc: Document, allow_unsafe: bool) -> None:
        self.lab = lab
        self.doc = doc
        self.allow_unsafe = allow_unsafe
        self.problems: list[Problem] = []
        self.container_names = {c.name for c in lab.containers}
        # checks may also name the containers the learner creates
        self.checkable_containers = self.container_names | set(lab.learner_containers)
        self.network_names = {n.name for n in lab.networks}
        self.volume_names = {v.name for v in lab.volumes}

    def add(self, path: JsonPath, message: str, hint: str | None = None, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, hint=hint, key=key))

    def raw(self, path: JsonPath) -> Any:
        value: Any = self.doc.data
        for part in path:
            if isinstance(value, dict) and isinstance(part, str):
                value = value.get(part)
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            else:
                return None
        return value

    def inside_folder(self, path: Path) -> bool:
        return path == self.lab.folder or path.is_relative_to(self.lab.folder)
