"""The Class document and the roster: who is in a class on a Swarm cluster, and what each
learner's sandbox may use.

Same pipeline and error format as a lab spec or an inventory: YAML with positions, the JSON
Schema (``schemas/class.schema.json``), then what the schema cannot say (unique learner names,
a roster file that exists and parses, reservations within limits). A roster is a CSV file, one
learner per line: the name, then optional ``key=value`` cells; its problems are located by line
and column like a YAML document's. Nothing here knows of Docker.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labspec import validate
from labspec.document import format_path
from labspec.errors import Problem, SpecError, UserInputError
from labspec.loader import load_file, read_text
from labspec.units import parse_size

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
LEARNER = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_SSH_PORT = 22000
DEFAULT_REGISTRY_PORT = 5000
DEFAULT_SEED_PORT = 5001
DEFAULT_GPU_KIND = "NVIDIA-GPU"
MAX_LEARNERS = 500


@dataclass(frozen=True)
class Learner:
    """One learner: the name (their sandbox and inventory host), vars, reserved GPUs."""

    name: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    gpus: int | None = None  # None: the sandbox default


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandbox may use; Swarm reserves and enforces it."""

    memory: int = 2 * 1024**3
    memory_reservation: int = 256 * 1024**2
    cpus: float | None = None
    cpu_reservation: float | None = None
    pids: int = 4096
    gpus: int = 0
    gpu_kind: str = DEFAULT_GPU_KIND
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassSpec:
    """A class: its learners, their sandboxes' limits, and the ports it publishes."""

    name: str | None = None
    learners: tuple[Learner, ...] = ()
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    ssh_port: int = DEFAULT_SSH_PORT
    registry_port: int = DEFAULT_REGISTRY_PORT
    seed_port: int = DEFAULT_SEED_PORT
    path: Path | None = None

    def gpus_of(self, learner: Learner) -> int:
        return self.sandbox.gpus if learner.gpus is None else learner.gpus


def numbered(count: int) -> tuple[Learner, ...]:
    """``learner01`` .. ``learnerNN`` (two digits at least, so they sort)."""
    width = max(2, len(str(count)))
    return tuple(Learner(f"learner{i:0{width}d}") for i in range(1, count + 1))


def load_class(path: str | Path) -> ClassSpec:
    """Read, validate and build a Class document; SpecError lists every problem."""
    doc, problems = load_file(path)
    problems = problems or validate.check(doc, "class")
    if problems:
        raise SpecError(problems)
    data: dict[str, Any] = doc.data
    folder = Path(path).resolve().parent
    learners: tuple[Learner, ...] = ()
    raw = data.get("learners")
    if isinstance(raw, int):
        learners = numbered(raw)
    elif isinstance(raw, list):
        entries = []
        for item in raw:
            if isinstance(item, str):
                entries.append(Learner(item))
            else:
                entries.append(Learner(item["name"], dict(item.get("vars") or {}),
                                       item.get("gpus")))
        learners = tuple(entries)
        for i, dup in _duplicates([learner.name for learner in learners]):
            problems.append(doc.problem(("learners", i), f"learner {dup!r} is listed twice"))
    if raw is not None and "roster" in data:
        problems.append(doc.problem(("roster",), "give either learners or a roster, not both",
                                    key=True))
    elif "roster" in data:
        roster = folder / str(data["roster"])
        try:
            learners = load_roster(roster)
        except SpecError as e:
            problems.extend(e.problems)
        except UserInputError as e:
            problems.append(doc.problem(("roster",), e.message, hint=e.hint))
    box: dict[str, Any] = data.get("sandbox") or {}
    sandbox = SandboxLimits(
        memory=parse_size(box["memory"]) if "memory" in box else SandboxLimits.memory,
        memory_reservation=(parse_size(box["memory_reservation"])
                            if "memory_reservation" in box else SandboxLimits.memory_reservation),
        cpus=box.get("cpus"),
        cpu_reservation=box.get("cpu_reservation"),
        pids=box.get("pids", SandboxLimits.pids),
        gpus=box.get("gpus", 0),
        gpu_kind=box.get("gpu_kind", DEFAULT_GPU_KIND),
        constraints=tuple(" ".join(c.split()) for c in box.get("constraints", ())),
    )
    for message, key in limit_problems(sandbox):
        problems.append(doc.problem(("sandbox", key), message))
    registry: dict[str, Any] = data.get("registry") or {}
    spec = ClassSpec(
        name=data.get("name"),
        learners=learners,
        sandbox=sandbox,
        ssh_port=int(data.get("ssh_port", DEFAULT_SSH_PORT)),
        registry_port=int(registry.get("port", DEFAULT_REGISTRY_PORT)),
        seed_port=int(registry.get("seed_port", DEFAULT_SEED_PORT)),
        path=Path(path).resolve(),
    )
    if spec.registry_port == spec.seed_port:
        problems.append(doc.problem(("registry", "seed_port"),
                                    "the seed port must differ from the registry's port"))
    if problems:
        raise SpecError(problems)
    return spec


def limit_problems(sandbox: SandboxLimits) -> list[tuple[str, str]]:
    """Reservations above their limits: (message, the sandbox field to blame)."""
    found = []
    if sandbox.memory < 64 * 1024**2:
        found.append(("a sandbox needs at least 64m of memory (its own Docker engine)", "memory"))
    if sandbox.memory_reservation > sandbox.memory:
        found.append(("memory_reservation is above the memory limit", "memory_reservation"))
    if (sandbox.cpus is not None and sandbox.cpu_reservation is not None
            and sandbox.cpu_reservation > sandbox.cpus):
        found.append(("cpu_reservation is above the cpus limit", "cpu_reservation"))
    return found


def _duplicates(names: Sequence[str]) -> list[tuple[int, str]]:
    seen: set[str] = set()
    found = []
    for i, name in enumerate(names):
        if name in seen:
            found.append((i, name))
        seen.add(name)
    return found


def load_roster(path: str | Path) -> tuple[Learner, ...]:
    """The learners of a CSV roster; SpecError locates every problem (line, column)."""
    file = Path(path)
    if not file.is_file():
        raise UserInputError(f"roster {file} does not exist",
                             hint="one learner per line: name[,key=value...]")
    text = read_text(file, str(path))
    problems: list[Problem] = []
    learners: list[Learner] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = next(csv.reader(io.StringIO(line), skipinitialspace=True))
        columns = _columns(line, cells)
        row = len(learners)

        def problem(col: int, where: tuple[str | int, ...], message: str, hint: str | None = None,
                    *, number: int = number, row: int = row) -> Problem:
            return Problem(str(path), number, col, format_path((row, *where)), message, hint)

        name = cells[0].strip() if cells else ""
        if not LEARNER.match(name):
            problems.append(problem(
                columns[0], ("name",), f"{name!r} is not a learner name",
                "lower-case letters, digits and '-', at most 24 characters (alice, bob-2)"))
        elif name in seen:
            problems.append(problem(columns[0], ("name",),
                                    f"learner {name!r} is already on line {seen[name]}"))
        seen.setdefault(name, number)
        learner_vars: dict[str, Any] = {}
        gpus: int | None = None
        for cell, col in zip(cells[1:], columns[1:], strict=True):
            key, sep, value = cell.strip().partition("=")
            key = key.strip()
            if not sep or not VAR.match(key):
                problems.append(problem(col, (), f"{cell.strip()!r} is not key=value",
                                        "write the extra cells as key=value, e.g. team=red"))
                continue
            if key == "gpus":
                if not value.strip().isdigit() or int(value) > 16:
                    problems.append(problem(col, ("gpus",), f"gpus={value} is not 0..16"))
                    continue
                gpus = int(value)
            elif key == "learner":
                problems.append(problem(col, ("vars", key), "learner is the name itself",
                                        "the first cell is the learner's name"))
            else:
                learner_vars[key] = value.strip()
        learners.append(Learner(name, learner_vars, gpus))
    if not learners and not problems:
        problems.append(Problem(str(path), 0, 0, "$", "the roster names no learner",
                                "one learner per line: name[,key=value...]"))
    if len(learners) > MAX_LEARNERS:
        problems.append(Problem(str(path), 0, 0, "$",
                                f"{len(learners)} learners; a class has at most {MAX_LEARNERS}"))
    if problems:
        raise SpecError(problems)
    return tuple(learners)


def _columns(line: str, cells: list[str]) -> list[int]:
    """The 1-based column where each cell starts (for located problems)."""
    columns = []
    pos = 0
    for cell in cells:
        found = line.find(cell, pos) if cell else pos
        start = found if found >= 0 else pos
        columns.append(start + 1)
        pos = start + len(cell)
    return columns


def resolve_class(
    *,
    name: str,
    document: str | Path | None = None,
    learners: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ClassSpec:
    """The class ``labup class up`` makes: the document (if any), then the command line's
    ``--learners N|roster.csv`` and the sandbox overrides (``memory``, ``cpus``, ...: values
    already parsed, None for "not given"). Raises SpecError or UserInputError."""
    if not NAME.match(name):
        raise UserInputError(
            f"{name!r} is not a class name",
            hint="lower-case letters, digits and '-', at most 20 characters (docker-101)",
        )
    spec = load_class(document) if document is not None else ClassSpec()
    if spec.name is not None and spec.name != name:
        raise UserInputError(f"the class document names the class {spec.name!r}, not {name!r}",
                             hint="give the same name on the command line, or drop `name:`")
    spec = replace(spec, name=name)
    if learners is not None:
        text = learners.strip()
        if text.isdigit():
            count = int(text)
            if not 1 <= count <= MAX_LEARNERS:
                raise UserInputError(f"--learners {count}: a class has 1..{MAX_LEARNERS} learners")
            spec = replace(spec, learners=numbered(count))
        else:
            spec = replace(spec, learners=load_roster(Path(text).expanduser()))
    if not spec.learners:
        raise UserInputError("the class has no learners",
                             hint="give --learners N, --learners roster.csv, or a Class document")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given:
        sandbox = replace(spec.sandbox, **given)
        bad = limit_problems(sandbox)
        if bad:
            raise UserInputError(bad[0][0])
        spec = replace(spec, sandbox=sandbox)
    return spec
