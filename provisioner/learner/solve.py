"""``labup solve LAB [--to CHECK]``: the reference solution, up to an objective.

A solution in steps (``solution: [{check, run}, ...]``) runs step by step, in order, up to and
including the step whose checks name ``--to`` (every step without it). A step whose checks all
pass already is skipped, so a learner who did the first steps by hand is not made to redo them
(and a command such as ``docker network connect`` is not run twice). After a step ran, its
checks run (with their ``wait``) and must pass; those are marked *solved by labup* in the
learner's state, so ``check``, ``--json`` and the reports can tell them from the learner's own.
A solution that is one script (or argv steps) runs whole; ``--to`` needs steps.

Commands run where the engine's learner works: on this machine for a local engine, with the lab
folder as working directory and the same environment ``labup test`` gives a solution
(``LABUP_LAB``, ``LABUP_INSTANCE``, ``LABUP_LAB_PATH``, ``LABUP_CLI``, ``DOCKER_HOST``,
``LABUP_PARAM_<NAME>``); on an SSH host, on that host, in labup's copy of the lab folder there.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from labspec.catalog import origin_of
from labspec.errors import UserInputError
from labspec.model import Lab
from provisioner.engine.protocol import CommandResult

STEP_TIMEOUT = 300.0


class Step(NamedTuple):
    """One step as ``solve`` runs it: its index (1-based), objectives and commands."""

    number: int
    checks: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]

    @property
    def label(self) -> str:
        return ", ".join(self.checks)


def script_argv(script: Path) -> tuple[str, ...]:
    """How a solution script runs: ``sh`` for shell scripts, Python for ``.py``."""
    if script.suffix == ".py":
        return ("python3", str(script))
    if script.suffix == ".sh" or not os.access(script, os.X_OK):
        return ("sh", str(script))
    return (str(script),)


def steps_of(lab: Lab) -> list[Step]:
    """Every step of the lab's solution (one step for a solution that is one script)."""
    solution = lab.solution
    if solution is None or not (solution.script or solution.steps or solution.keyed):
        raise UserInputError(f"{lab.key} has no reference solution",
                             hint="a lab's `solution:` names its script or its steps")
    if solution.keyed:
        return [Step(i, s.checks, (script_argv(s.script),) if s.script is not None else (s.argv,))
                for i, s in enumerate(solution.keyed, 1)]
    commands = ((script_argv(solution.script),) if solution.script is not None else ())
    task = tuple(c.id for c in lab.checks if c.stage == "task")
    return [Step(1, task, commands + tuple(tuple(s) for s in solution.steps))]


def steps_to(lab: Lab, to: str | None) -> list[Step]:
    """The steps ``solve --to`` runs: up to the one that makes ``to`` pass."""
    steps = steps_of(lab)
    if to is None:
        return steps
    solution = lab.solution
    if solution is None or not solution.keyed:
        raise UserInputError(
            f"--to {to}: the solution of {lab.key} is one script, not steps",
            hint="run `labup solve` without --to, or give the lab a solution in steps "
            "(docs/checks.md: catch up)")
    for step in steps:
        if to in step.checks:
            return steps[: step.number]
    keyed = ", ".join(c for s in steps for c in s.checks)
    if to not in {c.id for c in lab.checks}:
        raise UserInputError(f"--to {to}: no check {to!r} in {lab.key}",
                             hint=f"objectives of the solution steps: {keyed}")
    raise UserInputError(f"--to {to}: no solution step of {lab.key} makes {to!r} pass",
                         hint=f"objectives of the solution steps: {keyed}")


def environment(lab: Lab, instance: str, docker_host: str, cli: str) -> dict[str, str]:
    """What a solution finds in its environment (the same as under ``labup test``)."""
    env = {
        "LABUP_LAB": lab.key,
        "LABUP_INSTANCE": instance,
        "LABUP_LAB_PATH": str(lab.path),
        # whose lab it is: a labup the solution runs on that spec works on this lab's resources
        "LABUP_LAB_ORIGIN": origin_of(lab),
        "LABUP_CLI": cli,
        "DOCKER_HOST": docker_host,
    }
    for name, value in lab.values.items():
        env[f"LABUP_PARAM_{name.upper()}"] = (str(value).lower() if isinstance(value, bool)
                                              else str(value))
    return env


class Runner(Protocol):
    """Runs one solution command where the learner works."""

    def run(self, argv: Sequence[str], *, env: dict[str, str]) -> CommandResult: ...


class LocalRunner:
    """This machine, the lab folder as working directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, argv: Sequence[str], *, env: dict[str, str]) -> CommandResult:
        import sys

        args = list(argv)
        if args and args[0] == "python3":
            args[0] = sys.executable
        try:
            proc = subprocess.run(args, cwd=self.folder, env={**os.environ, **env},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace",
                                  timeout=STEP_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return CommandResult(124, f"timed out after {STEP_TIMEOUT:g}s")
        except OSError as e:
            return CommandResult(127, f"cannot run {args[0]}: {e}")
        return CommandResult(proc.returncode, proc.stdout or "")


class StepResult(NamedTuple):
    step: Step
    status: str  # "ran", "skipped" (its checks passed already), "failed"
    seconds: float
    detail: str = ""
    solved: tuple[str, ...] = ()  # checks that pass because this step ran

    def as_dict(self) -> dict[str, object]:
        return {"step": self.step.number, "checks": list(self.step.checks), "status": self.status,
                "seconds": round(self.seconds, 2), "detail": self.detail,
                "solved": list(self.solved)}


def run_step(runner: Runner, step: Step, env: dict[str, str]) -> tuple[bool, str, float]:
    """Run a step's commands in order; (ok, what it printed last, seconds)."""
    start = time.monotonic()
    for argv in step.commands:
        result = runner.run(argv, env=env)
        if result.rc != 0:
            tail = "\n".join(result.stdout.strip().splitlines()[-15:])
            return False, f"`{' '.join(argv)}` exited {result.rc}:\n{tail}", \
                time.monotonic() - start
    return True, "", time.monotonic() - start
