"""``labup test``: prove that a lab works, on a real engine, from a clean slate.

The sequence (``TEST_STEPS``, data at the end of this module) runs in a throwaway copy of the
lab folder, so a solution that writes files (a Dockerfile, a backup) never changes the lab:

1. clean: what an earlier run may have left (the solution's cleanup script, ``down --volumes``);
2. up: the lab's images, networks, volumes and containers;
3. env checks: every ``stage: env`` check passes;
4. task checks fail: every ``stage: task`` check fails before the solution (one that passes
   tests nothing: an error of the lab), run once without waiting;
5. solution: the lab's reference solution runs on the host (script or argv steps), with the
   lab copy as working directory and ``LABUP_LAB``, ``LABUP_INSTANCE``, ``DOCKER_HOST``,
   ``LABUP_LAB_PATH``, ``LABUP_CLI`` and ``LABUP_PARAM_<NAME>`` in its environment; a
   solution in steps (``{check, run}``) runs step by step, and each step must turn its
   checks from not passing to passing;
6. all checks: env and task checks all pass;
7. replace: containers named by ``volume`` checks are recreated and those checks run again
   (data written before the replacement must still be there);
8. down: the solution's ``cleanup.sh`` (beside the solution script, optional) and
   ``down --volumes``, always, even after a failure;
9. leftovers: nothing carrying the lab instance's labels remains on the engine.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labspec.catalog import origin_of
from labspec.errors import LabupError
from labspec.model import Lab
from provisioner.catalog.workplace import LocalWorkplace, Workplace, script_argv
from provisioner.engine import labels as L
from provisioner.engine.protocol import CommandResult

if TYPE_CHECKING:
    from provisioner.catalog.lab_source import LabSource
    from provisioner.checks.results import CheckRun
    from provisioner.engine.protocol import Engine
    from provisioner.lifecycle.progress import Reporter

CLEANUP_SCRIPT = "cleanup.sh"
SOLUTION_TIMEOUT = 300.0
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".git")

Say = Callable[[str], None]


class SelfTestFailed(LabupError):
    """``labup test`` found problems; carries the result for the report and ``--json``."""

    def __init__(self, result: SelfTestResult) -> None:
        self.result = result
        listed = "\n".join(f"  - {p}" for p in result.problems)
        super().__init__(f"{result.lab}: self-test FAILED\n{listed}")


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 2),
                "detail": self.detail}


@dataclass
class SelfTestResult:
    lab: str
    title: str
    instance: str
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    runs: dict[str, CheckRun] = field(default_factory=dict)  # step name -> its checks
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "title": self.title,
            "instance": self.instance,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "steps": [s.as_dict() for s in self.steps],
            "problems": list(self.problems),
            "checks": {name: run.to_dict() for name, run in self.runs.items()},
        }


class _StepFailed(Exception):
    """Ends the sequence early: the rest of it cannot mean anything."""


# ---------------------------------------------------------------------------------------


WorkplaceFor = Callable[[Lab], Workplace]


def run_selftest(
    engine: Engine,
    source: LabSource,
    *,
    reporter: Reporter,
    say: Say = lambda text: None,
    keep_workspace: bool = False,
    workplace: WorkplaceFor | None = None,
) -> SelfTestResult:
    """Run ``TEST_STEPS`` for the lab of ``source``; never raises for a lab that fails its test
    (the result says why), only for bad input (an invalid spec). ``workplace`` makes the
    learner's machine for the lab loaded from the local copy (default: this machine, for a
    local engine); a remote one gets its own copy of the folder and runs the solution there."""
    original = source.load()
    from provisioner.engine.capabilities import ensure_can_run

    # an engine that lacks what the lab needs (overlay, swarm) refuses it, as `up` does
    ensure_can_run(engine, original,
                   host=None if engine.host_label == "local" else engine.host_label)
    result = SelfTestResult(original.key, original.title, source.instance)
    t0 = time.monotonic()
    with _workspace(original, keep=keep_workspace, say=say) as folder:
        spec = folder / original.path.relative_to(original.folder)
        # the copy is the same lab on the engine: it keeps the original's origin
        lab = dataclasses.replace(source, path=spec, origin=original.origin).load()
        from labspec.redact import redactor

        secret = redactor(lab)  # the solution's output may echo a secret: never shown
        place = (workplace or (lambda lab: LocalWorkplace(lab.folder, engine.url)))(lab)
        try:
            runner = _Runner(engine, lab, place, source.instance, reporter,
                             lambda t: say(secret(t)), result)
            runner.run()
        finally:
            kept = place.close(keep=keep_workspace)
            if kept:
                say(f"workspace on {place.where} kept: {kept}")
        result.problems[:] = [secret(p) for p in result.problems]
    result.seconds = time.monotonic() - t0
    return result


@contextmanager
def _workspace(lab: Lab, *, keep: bool, say: Say) -> Iterator[Path]:
    """A copy of the lab folder in a temporary directory (binds and builds use the copy)."""
    base = Path(tempfile.mkdtemp(prefix=f"labup-test-{lab.key}-"))
    folder = base / lab.folder.name
    shutil.copytree(lab.folder, folder, symlinks=True, ignore=_COPY_IGNORE)
    try:
        yield folder
    finally:
        if keep:
            say(f"workspace kept: {folder}")
        else:
            shutil.rmtree(base, ignore_errors=True)


class _Runner:
    def __init__(
        self,
        engine: Engine,
        local: Lab,
        place: Workplace,
        instance: str,
        reporter: Reporter,
        say: Say,
        result: SelfTestResult,
    ) -> None:
        self.engine = engine
        self.local = local  # loaded from the local copy: its paths are this machine's
        self.place = place
        self.lab = place.engine_lab(local)  # as the engine realizes it on the learner's machine
        self.instance = instance
        self.reporter = reporter
        self.say = say
        self.result = result

    # -- the sequence ------------------------------------------------------------------
    def run(self) -> None:
        try:
            for name, action in TEST_STEPS[:-ALWAYS]:
                self.step(name, partial(action, self))
        except _StepFailed:
            pass
        except KeyboardInterrupt:
            self.result.problems.append("interrupted")
            raise
        finally:
            for name, action in TEST_STEPS[-ALWAYS:]:
                self.step(name, partial(action, self), stop=False)

    def step(self, name: str, action: Callable[[], str], *, stop: bool = True) -> None:
        self.say(f"== {name}")
        start = time.monotonic()
        before = len(self.result.problems)
        try:
            detail = action()
        except LabupError as err:
            self.result.problems.append(f"{name}: {err}")
            detail = err.message
        ok = len(self.result.problems) == before
        took = time.monotonic() - start
        self.result.steps.append(Step(name, ok, took, detail))
        self.say(f"   {'ok' if ok else 'FAILED'} ({took:.1f}s){': ' + detail if detail else ''}")
        if not ok and stop:
            raise _StepFailed(name)

    # -- steps -------------------------------------------------------------------------
    def clean(self) -> str:
        self.cleanup_script(quiet=True)
        from provisioner.lifecycle.verbs import down

        removed = down(self.engine, self.lab.key, self.instance, volumes=True,
                       reporter=self.reporter)
        count = len(removed.removed)
        return f"removed {count} leftover resources" if count else "nothing left from before"

    def up(self) -> str:
        from provisioner.lifecycle.verbs import up

        outcome = up(self.engine, self.lab, instance=self.instance, reporter=self.reporter,
                     checks=False)
        return "nothing to create" if outcome.noop else f"ready in {outcome.seconds:.1f}s"

    def env_checks(self) -> str:
        run = self.checks("env checks", ("env",))
        for r in run.results:
            if not r.ok:
                self.result.problems.append(f"env check {r.id} failed: {r.message}")
        return f"{len(run.results)} env checks"

    def task_checks_fail(self) -> str:
        no_wait = dataclasses.replace(
            self.lab, checks=tuple(dataclasses.replace(c, wait=0.0) for c in self.lab.checks)
        )
        run = self.checks("task checks fail", ("task",), lab=no_wait)
        passing = [r for r in run.results if r.status == "pass"]
        for r in passing:
            self.result.problems.append(
                f"task check {r.id} passes before the solution ran, so it tests nothing "
                f"({r.message})"
            )
        if not run.results:
            self.result.problems.append("the lab has no task checks: nothing grades the learner")
        return f"{len(run.results) - len(passing)}/{len(run.results)} fail as they should"

    def solution(self) -> str:
        solution = self.lab.solution
        if solution is not None and solution.keyed:
            return self.solution_steps()
        if solution is None or (solution.script is None and not solution.steps):
            self.result.problems.append("the lab has no solution: nothing proves its task checks")
            return "none"
        commands: list[list[str]] = []
        if solution.script is not None:
            commands.append(script_argv(solution.script, self.local.folder, self.place))
        commands.extend(list(step) for step in solution.steps)
        for argv in commands:
            if not self.solution_command(argv, "solution"):
                return f"failed: {argv[0]}"
        return f"{len(commands)} command{'s' if len(commands) != 1 else ''}"

    def solution_command(self, argv: list[str], name: str) -> bool:
        """Run one command of the solution on the learner's machine; False (and the problem
        said, with the end of its output) when it fails."""
        proc = self.host_command(argv, timeout=SOLUTION_TIMEOUT)
        if proc.rc == 0:
            return True
        tail = "\n      ".join(proc.stdout.strip().splitlines()[-15:])
        self.result.problems.append(
            f"{name} `{' '.join(argv)}` exited {proc.rc} on {self.place.where}:\n      {tail}"
        )
        return False

    def solution_steps(self) -> str:
        """A solution in steps, proved one by one: before a step its checks do not all pass
        yet (else the step is keyed to the wrong checks), it runs, then they pass."""
        from provisioner.checks import run_checks

        assert self.lab.solution is not None
        steps = self.lab.solution.keyed
        no_wait = dataclasses.replace(
            self.lab, checks=tuple(dataclasses.replace(c, wait=0.0) for c in self.lab.checks)
        )
        problems = len(self.result.problems)
        for number, step in enumerate(steps, 1):
            name = f"solution step {number} ({', '.join(step.checks)})"
            self.say(f"   -- {name}")
            self.place.refresh()
            before = run_checks(self.engine, no_wait, instance=self.instance, only=step.checks)
            wanted = [r for r in before.results if r.id in step.checks]
            if wanted and all(r.status == "pass" for r in wanted):
                self.result.problems.append(
                    f"{name}: its checks pass before it ran, so it proves nothing "
                    "(key the check to the step that makes it pass)"
                )
                return f"step {number} proves nothing"
            argv = (script_argv(step.script, self.local.folder, self.place)
                    if step.script is not None else list(step.argv))
            if not self.solution_command(argv, f"{name}:"):
                return f"step {number} failed"
            self.place.refresh()  # checks that read lab files read what the step wrote
            after = run_checks(self.engine, self.lab, instance=self.instance, only=step.checks)
            self.result.runs[f"solution step {number}"] = after
            for r in after.results:
                self.say(f"   {r.status:7} {r.id}: {r.message}")
                if r.id in step.checks and r.status != "pass":
                    self.result.problems.append(
                        f"{name} ran, but {r.id} does not pass: {r.message}"
                    )
            if len(self.result.problems) > problems:
                return f"step {number} did not make its checks pass"
        return f"{len(steps)} steps, each made its checks pass"

    def all_checks(self) -> str:
        run = self.checks("all checks", ("env", "task"))
        for r in run.results:
            if not r.ok:
                hint = f" (hint: {r.hint})" if r.hint else ""
                self.result.problems.append(
                    f"{r.stage} check {r.id} fails after the solution: {r.message}{hint}"
                )
        passed = sum(1 for r in run.results if r.status == "pass")
        skipped = sum(1 for r in run.results if r.status == "skipped")
        extra = f", {skipped} skipped" if skipped else ""
        return f"{passed}/{len(run.results)} pass{extra}, score {run.score:g}/{run.total:g}"

    def replace(self) -> str:
        volume_checks = [c for c in self.lab.checks if c.type == "volume"]
        keys = sorted({str(c.spec["container"]) for c in volume_checks if c.spec.get("container")})
        if not keys:
            return "no volume checks"
        for key in keys:
            self.engine.remove_container(L.resource_name(self.lab.key, self.instance, key))
        from provisioner.lifecycle.verbs import up

        up(self.engine, self.lab, instance=self.instance, reporter=self.reporter, checks=False)
        from provisioner.checks import run_checks

        run = run_checks(self.engine, self.lab, instance=self.instance,
                         only=[c.id for c in volume_checks])
        self.result.runs["replace"] = run
        for r in run.results:
            if not r.ok:
                self.result.problems.append(
                    f"volume check {r.id} fails after its container was replaced: {r.message}"
                )
        return f"recreated {', '.join(keys)}; {len(run.results)} volume checks again"

    def down(self) -> str:
        self.cleanup_script(quiet=False)
        from provisioner.lifecycle.verbs import down

        down(self.engine, self.lab.key, self.instance, volumes=True, reporter=self.reporter)
        return ""

    def leftovers(self) -> str:
        selector = L.selector(self.lab.key, self.instance)
        left: list[str] = []
        for kind in ("container", "network", "volume"):
            for item in self.engine.list_resources(kind, selector):
                left.append(f"{kind} {item.name}")
                if kind == "container":
                    self.engine.remove_container(item.name)
                elif kind == "network":
                    self.engine.remove_network(item.name)
                else:
                    self.engine.remove_volume(item.name)
        if left:
            self.result.problems.append(
                "left on the engine after down (now removed): " + ", ".join(left)
            )
            return f"{len(left)} left behind"
        return "nothing left"

    # -- helpers -----------------------------------------------------------------------
    def checks(self, name: str, stages: tuple[str, ...], *, lab: Lab | None = None) -> CheckRun:
        from provisioner.checks import run_checks

        self.place.refresh()  # checks that read lab files read what the learner's side has
        run = run_checks(self.engine, lab or self.lab, instance=self.instance, stages=stages)
        self.result.runs[name] = run
        for r in run.results:
            self.say(f"   {r.status:7} {r.id}: {r.message}")
        return run

    def cleanup_script(self, *, quiet: bool) -> None:
        script = self.cleanup_path()
        if script is None:
            return
        proc = self.host_command(script_argv(script, self.local.folder, self.place),
                                 timeout=120.0)
        if proc.rc != 0 and not quiet:
            tail = proc.stdout.strip().splitlines()[-5:]
            self.result.problems.append(f"{script.name} exited {proc.rc}: " + " / ".join(tail))

    def cleanup_path(self) -> Path | None:
        solution = self.local.solution
        folder = (
            solution.script.parent
            if solution is not None and solution.script is not None
            else self.local.folder / "solution"
        )
        script = folder / CLEANUP_SCRIPT
        return script if script.is_file() else None

    def host_command(self, argv: list[str], *, timeout: float) -> CommandResult:
        self.say(f"   $ {' '.join(argv)}")
        proc = self.place.run(argv, self.environment(), timeout=timeout)
        for line in proc.stdout.splitlines()[-40:]:
            self.say(f"     {line}")
        return proc

    def environment(self) -> dict[str, str]:
        """What a solution finds in its environment, on whichever machine it runs."""
        env = {
            "LABUP_LAB": self.lab.key,
            "LABUP_INSTANCE": self.instance,
            # the copy's spec there, and whose lab it is: a labup the solution runs on exactly
            # that spec works on the original lab's resources (labspec.catalog.lab_origin)
            "LABUP_LAB_PATH": self.place.path_of(
                self.local.path.relative_to(self.local.folder).as_posix()),
            "LABUP_LAB_ORIGIN": origin_of(self.lab),
            "LABUP_CLI": self.place.labup(),
        }
        docker_host = self.place.docker_host()
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        for name, value in self.lab.values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[f"LABUP_PARAM_{name.upper()}"] = text
        return env


# The sequence of ``labup test``, as data; the last ALWAYS steps run after a failure too.
TEST_STEPS: tuple[tuple[str, Callable[[_Runner], str]], ...] = (
    ("clean", _Runner.clean),
    ("up", _Runner.up),
    ("env checks", _Runner.env_checks),
    ("task checks fail", _Runner.task_checks_fail),
    ("solution", _Runner.solution),
    ("all checks", _Runner.all_checks),
    ("replace", _Runner.replace),
    ("down", _Runner.down),
    ("leftovers", _Runner.leftovers),
)
ALWAYS = 2
