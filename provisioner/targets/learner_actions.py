"""The learner's verbs as actions on one engine: ``check --watch``, ``hint`` and ``solve``.

Like every verb they run through the one runner, on ``--host`` (or the default engine) inline
and on every host of an inventory in the pool; the learner's state is this machine's for one
engine and the host's own for an inventory host (:mod:`provisioner.targets.learner_state`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from labspec.errors import CheckFailed, UserInputError
from labspec.model import Check, Lab
from provisioner.catalog.lab_source import LabSource
from provisioner.checks.results import CheckRun
from provisioner.engine.protocol import CheckEngine
from provisioner.learner.grading import NextHint
from provisioner.learner.solve import StepResult
from provisioner.learner.state import LabRecord
from provisioner.learner.watch import SETTLE, WatchOptions
from provisioner.targets.check_action import DEFAULT_CHECK_WORKERS, CheckOptions, Graded
from provisioner.targets.learner_state import OWN, LearnerOptions, graded, store_for
from provisioner.targets.outcome import ActionFailed
from provisioner.targets.prepare import lab_on_target, learner_of
from provisioner.targets.runner import Action, Done, TargetContext


def _run(ctx: TargetContext, lab: Lab, instance: str, *, workers: int,
         stages: tuple[str, ...] = ("env", "task"), only: tuple[str, ...] = ()) -> CheckRun:
    from provisioner.checks import run_checks

    return run_checks(ctx.engine, lab, instance=instance, stages=stages, parallel=workers,
                      only=only)


def _quick(lab: Lab) -> Lab:
    """Each check's ``wait`` cut to a moment: to see what passes now, not what will."""
    return dataclasses.replace(
        lab, checks=tuple(dataclasses.replace(c, wait=min(c.wait, SETTLE)) for c in lab.checks))


# -- check --watch --------------------------------------------------------------------------


class WatchActionOptions(NamedTuple):
    check: CheckOptions
    watch: WatchOptions


def watch_action(opts: WatchActionOptions) -> Action[Graded]:
    def action(ctx: TargetContext) -> Done[Graded]:
        from provisioner.learner.watch import watch

        source = opts.check.source
        lab = lab_on_target(ctx, source, files="binds", placement=False)

        def run_once(engine: CheckEngine, quick: Lab, advance: bool) -> CheckRun:
            from provisioner.checks import run_checks

            run = run_checks(engine, quick, instance=source.instance, stages=opts.check.stages,
                             parallel=opts.check.workers, only=opts.check.only)
            return graded(ctx, source, lab, run, LearnerOptions(advance=advance, record=True))

        watched = watch(ctx.engine, lab, source.instance, run_once, opts.watch)
        run = watched.run
        text = (f"{run.score:g}/{run.total:g} points after {watched.runs} check run(s) "
                f"({watched.reason})")
        return Done(Graded(lab, run), text, run.to_dict())

    return action


# -- hint -----------------------------------------------------------------------------------


class HintOptions(NamedTuple):
    source: LabSource
    check: str | None = None  # None: the first failing task check that has a hint
    workers: int = DEFAULT_CHECK_WORKERS


class HintShown(NamedTuple):
    lab: Lab
    hint: NextHint | None  # None: nothing fails, no hint to give
    run: CheckRun

    def as_dict(self) -> dict[str, Any]:
        h = self.hint
        return {
            "lab": self.lab.key,
            "learner": self.run.learner,
            "check": h.check if h else None,
            "passes": h.passes if h else True,
            "level": h.level if h else 0,
            "levels": h.levels if h else 0,
            "hint": h.text if h and not h.passes else "",
            "cost": h.cost if h else 0.0,
            "hints_used": self.run.hints_used,
        }


def _pick(lab: Lab, run: CheckRun, record: LabRecord, wanted: str | None) -> Check | None:
    """The check to give a hint for: the one asked, else the first failing one (in spec order)
    whose levels are not all seen, else the first failing one with a hint."""
    by_id = {c.id: c for c in lab.checks}
    if wanted is not None:
        return by_id[wanted]
    failing = [by_id[r.id] for r in run.results
               if r.status in ("fail", "blocked") and r.stage == "task" and by_id[r.id].hint]
    for check in failing:
        if record.check(check.id).hints < len(check.hints):
            return check
    return failing[0] if failing else None


def hint_action(opts: HintOptions) -> Action[HintShown]:
    def action(ctx: TargetContext) -> Done[HintShown]:
        from labspec.redact import redactor
        from provisioner.learner.grading import apply, next_hint

        source = opts.source
        lab = lab_on_target(ctx, source, files="binds", placement=False)
        by_id = {c.id: c for c in lab.checks}
        if opts.check is not None:
            if opts.check not in by_id:
                raise UserInputError(f"no check {opts.check!r} in {lab.key}",
                                     hint="checks of this lab: " + ", ".join(by_id))
            if not by_id[opts.check].hint:
                raise UserInputError(f"check {opts.check} of {lab.key} has no hint")
        ctx.step("running the checks")
        only = (opts.check,) if opts.check else ()
        run = _run(ctx, _quick(lab), source.instance, workers=opts.workers,
                   stages=("env", "task") if only else ("task",), only=only)
        learner = learner_of(source, ctx.target)
        shown: list[HintShown] = []

        def change(record: LabRecord) -> None:
            check = _pick(lab, run, record, opts.check)
            hint = None
            if check is not None:
                status = next(r.status for r in run.results if r.id == check.id)
                hint = next_hint(record, check, passes=status == "pass", secret=redactor(lab))
            seen = apply(run, lab, record, advance=False, learner=learner)
            shown.append(HintShown(lab, hint, seen))

        store_for(ctx).update(lab.key, source.instance, change)
        result = shown[0]
        h = result.hint
        if h is None:
            text = "no task check fails: no hint needed"
        elif h.passes:
            text = f"{h.check} passes already: no hint needed"
        else:
            text = f"{h.check}: hint {h.level}/{h.levels}: {h.text}"
        return Done(result, text, result.as_dict())

    return action


# -- solve ----------------------------------------------------------------------------------


class SolveOptions(NamedTuple):
    source: LabSource
    to: str | None = None  # run the steps up to the one that makes this check pass
    workers: int = DEFAULT_CHECK_WORKERS


class Solved(NamedTuple):
    lab: Lab
    steps: tuple[StepResult, ...]
    run: CheckRun  # every check, after the steps

    def as_dict(self) -> dict[str, Any]:
        return {"lab": self.lab.key, "to": None, "steps": [s.as_dict() for s in self.steps],
                "solved": [c for s in self.steps for c in s.solved], "run": self.run.to_dict()}


def solve_action(opts: SolveOptions) -> Action[Solved]:
    def action(ctx: TargetContext) -> Done[Solved]:
        from provisioner.learner.solve import run_step, steps_to

        source = opts.source
        lab = lab_on_target(ctx, source, files="copy", placement=False)
        steps = steps_to(lab, opts.to)
        runner, env = _runner(ctx, lab, source)
        ctx.step("running the checks")
        before = _run(ctx, _quick(lab), source.instance, workers=opts.workers)
        passing = {r.id for r in before.results if r.status == "pass"}
        done: list[StepResult] = []
        for step in steps:
            if all(c in passing for c in step.checks):
                done.append(StepResult(step, "skipped", 0.0, "its checks pass already"))
                ctx.reporter.info(f"step {step.number} ({step.label}): passes already, skipped")
                continue
            ctx.step(f"step {step.number}: {step.label}")
            ok, detail, seconds = run_step(runner, step, env)
            if not ok:
                done.append(StepResult(step, "failed", seconds, detail))
                raise _failed(ctx, lab, source, done,
                              f"solution step {step.number} ({step.label}) failed: {detail}")
            after = _run(ctx, lab, source.instance, workers=opts.workers, only=step.checks)
            status = {r.id: r for r in after.results}
            still = [c for c in step.checks if status[c].status != "pass"]
            solved = tuple(c for c in step.checks if c not in passing and c not in still)
            passing.update(solved)
            done.append(StepResult(step, "failed" if still else "ran", seconds,
                                   "" if not still else f"{still[0]}: {status[still[0]].message}",
                                   solved))
            _mark(ctx, lab, source, solved)
            if still:
                raise _failed(ctx, lab, source, done,
                              f"solution step {step.number} ran, but {', '.join(still)} still "
                              f"fails: {status[still[0]].message}")
            ctx.reporter.info(f"step {step.number} ({step.label}): done in {seconds:.1f}s")
        final = _graded_run(ctx, lab, source, opts.workers)
        result = Solved(lab, tuple(done), final)
        doc = {**result.as_dict(), "to": opts.to}
        ran = sum(1 for s in done if s.status == "ran")
        text = (f"{ran} step(s) run, {len(done) - ran} skipped; "
                f"{final.score:g}/{final.total:g} points")
        return Done(result, text, doc)

    return action


def _runner(ctx: TargetContext, lab: Lab, source: LabSource) -> tuple[Any, dict[str, str]]:
    from provisioner.catalog.workplace import labup_cli
    from provisioner.learner.solve import LocalRunner, environment

    ssh = ctx.ssh
    if ssh is None or ctx.engine.is_local:
        return LocalRunner(lab.folder), environment(lab, source.instance, ctx.engine.url,
                                                    labup_cli())
    from provisioner.learner.remote import RemoteRunner
    from provisioner.targets.file_sync import sync_lab

    sftp = ssh.sftp()
    local = source.load(ctx.target.template_host(), learner=learner_of(source, ctx.target))
    ctx.step("bringing the lab folder up to date")
    # the learner's copy, as `up` keeps it: what is missing is sent, the learner's edits stay
    folder = sync_lab(sftp, local, instance=source.instance, base=ctx.target.labup_dir,
                      host=ctx.target.name).remote_folder
    remote = dataclasses.replace(lab, path=type(lab.path)(folder) / lab.path.name)
    env = environment(remote, source.instance, ctx.target.docker_host or "", "labup")
    if not ctx.target.docker_host:
        env.pop("DOCKER_HOST")  # the far side's own engine, as its login has it
    return RemoteRunner(ssh, folder), env


def _mark(ctx: TargetContext, lab: Lab, source: LabSource, solved: tuple[str, ...]) -> None:
    if not solved:
        return

    def change(record: LabRecord) -> None:
        for check in solved:
            record.check(check).solved = True

    store_for(ctx).update(lab.key, source.instance, change)


def _graded_run(ctx: TargetContext, lab: Lab, source: LabSource, workers: int) -> CheckRun:
    run = _run(ctx, _quick(lab), source.instance, workers=workers)
    return graded(ctx, source, lab, run, LearnerOptions(advance=False, record=OWN.record))


def _failed(ctx: TargetContext, lab: Lab, source: LabSource, done: list[StepResult],
            message: str) -> ActionFailed:
    final = _graded_run(ctx, lab, source, DEFAULT_CHECK_WORKERS)
    result = Solved(lab, tuple(done), final)
    return ActionFailed(CheckFailed(message), Done(result, message, result.as_dict()))
