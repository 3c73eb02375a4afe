"""The lifecycle verbs as actions on one engine: up, reset, plan, down, status.

Each ``*_action(options)`` returns an :data:`~provisioner.targets.runner.Action` that the one
runner runs on ``--host`` inline or on every host of an inventory. The options are frozen
objects the CLI builds once; the lab is rendered per target, placed, and its files copied,
then :mod:`provisioner.lifecycle` does the work on that target's engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from labspec.errors import CheckFailed, LabupError, UserInputError
from labspec.model import Lab
from provisioner import lifecycle
from provisioner.catalog.lab_source import LabKey, LabSource
from provisioner.engine.capabilities import ensure_can_run
from provisioner.engine.labels import DEFAULT_INSTANCE
from provisioner.engine.protocol import DEFAULT_PARALLEL
from provisioner.targets.outcome import ActionFailed, Done
from provisioner.targets.prepare import lab_on_target

if TYPE_CHECKING:  # a no-op up imports neither destroy nor status
    from provisioner.lifecycle.destroy import DownResult
    from provisioner.lifecycle.instances import InstanceStatus
    from provisioner.lifecycle.planner import Plan
    from provisioner.lifecycle.verbs import UpResult
    from provisioner.targets.runner import Action, TargetContext


class UpOptions(NamedTuple):
    """``up`` and ``reset`` as the command line said them."""

    source: LabSource
    keep_on_failure: bool = False
    checks: bool = True  # run the lab's environment checks after up
    timeout: float = 120.0  # longest wait for one container to be healthy or complete
    engine_calls: int = DEFAULT_PARALLEL
    refuse_no_gpu: bool = False
    bundle: Path | None = None  # load the images the engine lacks from it first
    reset: bool = False  # down --volumes first


class Brought(NamedTuple):
    """What ``up`` / ``reset`` did on one target, with the lab as that target saw it."""

    lab: Lab
    result: UpResult
    removed: DownResult | None = None  # reset: what its down removed


def up_action(opts: UpOptions) -> Action[Brought]:
    def action(ctx: TargetContext) -> Done[Brought]:
        # reset over SSH: the copy is restored once the lab's containers are gone (prepare)
        restore_later = opts.reset and ctx.ssh is not None
        lab = lab_on_target(ctx, opts.source, files="locate" if restore_later else "copy",
                            refuse_no_gpu=opts.refuse_no_gpu)
        # an engine that lacks what the lab needs (overlay, swarm) refuses it before anything
        ensure_can_run(ctx.engine, lab,
                       host=None if ctx.target.name == "local" else ctx.target.name)
        if opts.bundle is not None:
            from provisioner.targets.bundle_action import load_bundle_on

            load_bundle_on(ctx, opts.bundle)
        instance = opts.source.instance
        where = "" if ctx.target.name == "local" else f" on {ctx.target.name}"
        inst = "" if instance == DEFAULT_INSTANCE else f" (instance {instance})"
        ctx.reporter.info(f"{lab.key}: {lab.title}{inst}{where}")
        removed: DownResult | None = None
        try:
            if opts.reset:
                removed, result = lifecycle.reset(
                    ctx.engine, lab, instance=instance, reporter=ctx.reporter,
                    keep_on_failure=opts.keep_on_failure, parallel=opts.engine_calls,
                    timeout=opts.timeout, checks=opts.checks, interrupt=ctx.cancel,
                    prepare=(lambda: lab_on_target(ctx, opts.source, files="restore",
                                                   placement=False))
                    if restore_later else None)
            else:
                result = lifecycle.up(
                    ctx.engine, lab, instance=instance, reporter=ctx.reporter,
                    keep_on_failure=opts.keep_on_failure, parallel=opts.engine_calls,
                    timeout=opts.timeout, checks=opts.checks, interrupt=ctx.cancel)
        except lifecycle.UpFailed as e:  # keep what up did (and cleaned up) for --json
            doc = {"down": None, "up": e.result.as_dict()} if opts.reset else e.result.as_dict()
            raise ActionFailed(e, Done(Brought(lab, e.result), e.message, doc)) from e
        if opts.reset:  # back to a fresh lab: nothing in it is labup's solve any more
            from provisioner.targets.learner_state import forget_solved

            forget_solved(ctx, lab.key, instance)
        doc = ({"down": removed.as_dict() if removed else None, "up": result.as_dict()}
               if opts.reset else result.as_dict())
        brought = Brought(lab, result, removed)
        verb = "reset" if opts.reset else "up"
        if not result.ok:
            raise ActionFailed(env_checks_failed(lab, result, verb), Done(brought, "", doc))
        if not result.noop or opts.reset:
            ctx.reporter.info(f"{lab.key} is {verb} ({result.seconds:.1f}s)")
        what = "up to date" if result.noop and not opts.reset else verb
        return Done(brought, f"{lab.key} {what} ({result.seconds:.1f}s)", doc)

    return action


def env_checks_failed(lab: Lab, result: UpResult, verb: str) -> CheckFailed:
    """``lab5 is up but env check web fails: GET ...: refused``, then one line per failing
    check with its hint: the same words on one engine and in a fleet's summary."""
    failures = result.checks.failures() if result.checks is not None else []
    if not failures:
        return CheckFailed(f"{lab.key} is {verb} but its environment checks failed")
    first = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    lines = [f"{lab.key} is {verb} but env check {first.id} fails: {first.message}{more}"]
    for r in failures:
        lines.append(f"  FAIL {r.id}: {r.message}")
        if r.hint:
            lines.append(f"    hint: {r.hint}")
    return CheckFailed("\n".join(lines))


class PlanOptions(NamedTuple):
    source: LabSource
    refuse_no_gpu: bool = False


def plan_action(opts: PlanOptions) -> Action[Plan]:
    def action(ctx: TargetContext) -> Done[Plan]:
        lab = lab_on_target(ctx, opts.source, files="locate", refuse_no_gpu=opts.refuse_no_gpu)
        ctx.step("planning")
        the_plan = lifecycle.plan(ctx.engine, lab, instance=opts.source.instance)
        counts = the_plan.counts()
        text = ", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "nothing"
        return Done(the_plan, text, the_plan.as_dict())

    return action


class DownOptions(NamedTuple):
    key: LabKey
    instance: str | None = DEFAULT_INSTANCE
    volumes: bool = False
    engine_calls: int = DEFAULT_PARALLEL


STUCK_HINT = ("dockerd 20.10 can keep a network stuck with 'active endpoints'; only a daemon "
              "restart clears it (it is labelled, so a later down retries)")


def down_action(opts: DownOptions) -> Action[DownResult]:
    def action(ctx: TargetContext) -> Done[DownResult]:
        result = lifecycle.down(ctx.engine, opts.key.key, opts.instance, volumes=opts.volumes,
                                reporter=ctx.reporter, parallel=opts.engine_calls,
                                origin=opts.key.origin)
        doc = result.as_dict()
        if not result.ok:
            names = ", ".join(f"{k} {n}" for k, n, _ in result.left)
            error = LabupError(f"could not remove {names}", hint=STUCK_HINT)
            raise ActionFailed(error, Done(result, str(error), doc))
        if not result.removed and not opts.key.from_spec:
            raise unknown_lab(opts.key.key, ctx)
        text = f"{len(result.removed)} removed" if result.removed else "nothing to remove"
        ctx.reporter.info(f"{opts.key.key}: " + (f"{len(result.removed)} resource(s) removed"
                                                 if result.removed else "nothing to remove"))
        return Done(result, text, doc)

    return action


def unknown_lab(key: str, ctx: TargetContext) -> UserInputError:
    """LAB named no spec, and no lab instance on this target carries it as a key."""
    return UserInputError(
        f"{key}: no such lab file or folder, and no lab instance {key!r} on {ctx.target.name}",
        hint="give a lab number, folder or spec file; `labup status` lists the instances",
    )


class StatusOptions(NamedTuple):
    key: LabKey | None = None  # None: every lab instance
    instance: str | None = None


def status_action(opts: StatusOptions) -> Action[list[InstanceStatus]]:
    def action(ctx: TargetContext) -> Done[list[InstanceStatus]]:
        ctx.step("listing")
        key = opts.key.key if opts.key is not None else None
        found = lifecycle.status(ctx.engine, key, opts.instance)
        if opts.key is not None and not opts.key.from_spec and not found:
            raise unknown_lab(opts.key.key, ctx)
        if not found:
            text = "no lab instances"
        else:
            text = "; ".join(
                f"{s.lab}[{s.instance}] {s.state} "
                f"({sum(1 for c in s.containers if c.state == 'running')}/{len(s.containers)} "
                "running)"
                for s in found
            )
        doc = {"host": ctx.target.name, "instances": [s.as_dict() for s in found]}
        return Done(found, text, doc)

    return action
