"""Semantic rules of checks and the lab's files: check ids are unique, ``needs`` resolve and
form no cycle, fields naming containers and volumes resolve, regexes compile, and the
instructions and solution script are files in the lab folder."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labspec.document import JsonPath
from labspec.semantic_base import RuleBase, find_cycle, suggest


class CheckRules(RuleBase):
    # -- checks ---------------------------------------------------------------------
    def checks(self) -> None:
        ids: dict[str, int] = {}
        for i, check in enumerate(self.lab.checks):
            if check.id in ids:
                self.add(
                    ("checks", i, "id"),
                    f"duplicate check id {check.id!r} (also checks[{ids[check.id]}])",
                )
            ids.setdefault(check.id, i)
        graph: dict[str, list[str]] = {}
        for i, check in enumerate(self.lab.checks):
            graph.setdefault(check.id, [])
            for j, need in enumerate(check.needs):
                where: JsonPath = ("checks", i, "needs", j)
                if need == check.id:
                    self.add(where, f"check {check.id!r} needs itself")
                elif need not in ids:
                    self.add(where, f"unknown check id {need!r}", suggest(need, ids, "check ids"))
                else:
                    graph[check.id].append(need)
            self.fields(check.type, check.spec, ("checks", i, check.type))
        cycle = find_cycle(graph)
        if cycle:
            self.add(
                ("checks", ids[cycle[0]], "needs"),
                "needs cycle: " + " -> ".join(cycle),
                "no check can run first: remove one of these needs",
                key=True,
            )

    def fields(self, name: str, value: Any, path: JsonPath) -> None:
        """Walk a check's type mapping: container names, volume names and regexes."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(item, str):
                    self.field(str(key), item, (*path, key))
                else:
                    self.fields(str(key), item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.fields(name, item, (*path, i))

    def field(self, key: str, value: str, path: JsonPath) -> None:
        if key in ("container", "from") or (key == "to" and not any(ch in value for ch in ".:")):
            if value not in self.checkable_containers:
                self.add(
                    path,
                    f"unknown container {value!r}",
                    suggest(value, self.checkable_containers, "containers"),
                )
        elif key == "volume" and value not in self.volume_names:
            self.add(
                path, f"unknown volume {value!r}", suggest(value, self.volume_names, "volumes")
            )
        elif key.endswith("regex"):
            try:
                re.compile(value)
            except (re.error, OverflowError, RecursionError) as e:
                self.add(
                    path, f"{key} does not compile: {e}", "a Python regular expression (re module)"
                )

    # -- files ----------------------------------------------------------------------
    def files(self) -> None:
        if self.lab.instructions is not None:
            self.file(("instructions",), self.lab.instructions, "instructions")
        solution = self.lab.solution
        if solution is not None and solution.script is not None:
            where: JsonPath = (
                ("solution", "script")
                if isinstance(self.raw(("solution",)), dict)
                else ("solution",)
            )
            self.file(where, solution.script, "solution script")

    def solution_steps(self) -> None:
        """A solution in steps: each step names checks of the lab, once, and its script is a
        file in the lab folder."""
        solution = self.lab.solution
        if solution is None or not solution.keyed:
            return
        ids = {c.id for c in self.lab.checks}
        seen: dict[str, int] = {}
        for i, step in enumerate(solution.keyed):
            path: JsonPath = ("solution", i)
            for check in step.checks:
                where = (*path, "check") if isinstance(self.raw((*path, "check")), str) else (
                    *path, "check", step.checks.index(check))
                if check not in ids:
                    self.add(where, f"unknown check id {check!r}", suggest(check, ids, "check ids"))
                elif check in seen:
                    self.add(where, f"check {check!r} is the objective of step {seen[check]} too",
                             "a check is made to pass by one step")
                seen.setdefault(check, i)
            if step.script is not None:
                self.file((*path, "run"), step.script, "solution step script")

    def file(self, path: JsonPath, file: Path, what: str) -> None:
        if not self.inside_folder(file):
            self.add(path, f"the {what} is outside the lab folder")
        elif not file.is_file():
            self.add(path, f"{what} {self.raw(path)} does not exist in the lab folder")
