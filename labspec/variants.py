"""Variants: a lab of one's own. A param with ``random:`` gets a value per learner.

``random: {choices: [otter, falcon, lynx]}`` draws one of the choices, ``random: {min: 8100,
max: 8199}`` an integer in the range (both ends included). The draw is a SHA-256 of the
learner's identity, the lab's key and the param's name, so it is the same on every run for one
learner (``up``, ``reset``, ``check`` and the instructions all agree, on any machine) and
differs between learners: a copied answer fails the copier's checks. ``--set`` still wins.
No ``random`` module is involved, so a value never changes with the Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from labspec.document import Document, JsonPath
from labspec.errors import Problem
from labspec.model import Param, ParamValue

SEED_VERSION = "labup-variant-1"


def draw(param: Param, *, learner: str, lab_key: str) -> ParamValue | None:
    """This learner's value of ``param`` (None when the param is not random)."""
    spec = param.random
    if spec is None:
        return None
    seed = f"{SEED_VERSION}\0{learner}\0{lab_key}\0{param.name}".encode()
    number = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    if spec.choices:
        return spec.choices[number % len(spec.choices)]
    low, high = int(spec.minimum or 0), int(spec.maximum or 0)
    return low + number % (high - low + 1)


def with_drawn(params: tuple[Param, ...], *, learner: str, lab_key: str) -> tuple[Param, ...]:
    """The params with each random one's drawn value as its default (for resolving values)."""
    out = []
    for param in params:
        value = draw(param, learner=learner, lab_key=lab_key)
        out.append(param if value is None else dataclasses.replace(param, default=value))
    return tuple(out)


def check(doc: Document) -> list[Problem]:
    """What the schema cannot say about ``random``: it fits the param's type, has no
    ``default`` beside it, and a range is not empty."""
    problems: list[Problem] = []
    for name, spec in (doc.data.get("params") or {}).items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("random"), Mapping):
            continue
        path: JsonPath = ("params", name, "random")
        problems.extend(_check_one(doc, path, spec))
    return problems


def _check_one(doc: Document, path: JsonPath, spec: Mapping[str, Any]) -> list[Problem]:
    kind = spec.get("type")
    random = spec["random"]
    problems: list[Problem] = []
    if "default" in spec:
        problems.append(doc.problem(
            path, "a random param takes no default: every learner gets a value of their own",
            hint="remove `default` (or `random`); `--set NAME=VALUE` still overrides it",
            key=True))
    if kind == "boolean":
        problems.append(doc.problem(
            path, "a boolean param cannot be random", hint="use an enum param", key=True))
        return problems
    if "choices" in random:
        choices = random["choices"]
        for i, choice in enumerate(choices):
            where: JsonPath = (*path, "choices", i)
            is_int = isinstance(choice, int) and not isinstance(choice, bool)
            if kind == "integer" and not is_int:
                problems.append(doc.problem(where, f"{choice!r} is not an integer"))
            elif kind in ("string", "enum") and not isinstance(choice, str):
                problems.append(doc.problem(where, f"{choice!r} is not a string"))
            elif kind == "enum" and choice not in (spec.get("choices") or ()):
                problems.append(doc.problem(
                    where, f"{choice!r} is not one of the param's choices",
                    hint="an enum param draws among its own choices"))
        return problems
    if kind != "integer":
        problems.append(doc.problem(
            path, f"a range (min, max) draws integers, and this param is a {kind}",
            hint="use `choices` for strings", key=True))
    elif random["min"] > random["max"]:
        problems.append(doc.problem(
            (*path, "min"), f"min {random['min']} is more than max {random['max']}"))
    return problems
