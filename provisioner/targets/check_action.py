"""``check`` as an action on one engine: the lab's checks on a target, graded.

The same on ``--host`` and on every host of an inventory: the lab rendered for that host, its
binds pointed where ``up`` put them, and when none of its containers exists the checks answer
at once (nothing will settle) with a note that says to bring the lab up first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from labspec.model import Lab
from provisioner.catalog.lab_source import LabSource
from provisioner.checks.results import CheckRun
from provisioner.engine.labels import DEFAULT_INSTANCE, resource_name
from provisioner.engine.protocol import CheckEngine
from provisioner.targets.prepare import lab_on_target
from provisioner.targets.runner import Action, Done, TargetContext

if TYPE_CHECKING:
    from provisioner.targets.learner_state import LearnerOptions
    from provisioner.targets.select import Targets

DEFAULT_CHECK_WORKERS = 16


class CheckOptions(NamedTuple):
    source: LabSource
    stages: tuple[str, ...] = ("env", "task")
    only: tuple[str, ...] = ()
    workers: int = DEFAULT_CHECK_WORKERS  # checks running at once
    learner: LearnerOptions | None = None  # grade with the learner's state (hints, solved)


class Graded(NamedTuple):
    """The checks of one target, the lab as it saw it, and why nothing could pass (if so)."""

    lab: Lab
    run: CheckRun
    not_up: str = ""


def check_action(opts: CheckOptions) -> Action[Graded]:
    def action(ctx: TargetContext) -> Done[Graded]:
        lab = lab_on_target(ctx, opts.source, files="binds", placement=False)
        with learner_files(ctx, lab, opts) as lab:
            return _graded(ctx, lab, opts)

    return action


@contextlib.contextmanager
def learner_files(ctx: TargetContext, lab: Lab, opts: CheckOptions) -> Iterator[Lab]:
    """On an engine over SSH, checks that read lab files (the Dockerfile lint) read the
    learner's copy on that machine: it is brought into a temporary folder here first."""
    from provisioner.checks.registry import READS_LAB_FILES
    from provisioner.checks.runner import select_checks

    ssh = ctx.ssh
    wanted = select_checks(lab, stages=opts.stages, only=opts.only)
    if ssh is None or not any(c.type in READS_LAB_FILES for c in wanted):
        yield lab
        return
    from provisioner.targets.file_sync import remote_folder_for, rerooted
    from provisioner.targets.remote_files import mirror_here

    ctx.step("reading the learner's lab files")
    sftp = ssh.sftp()
    with tempfile.TemporaryDirectory(prefix=f"labup-{lab.key}-{ctx.target.name}-") as tmp:
        remote = remote_folder_for(sftp, lab, opts.source.instance, ctx.target.labup_dir)
        mirror_here(sftp, remote, Path(tmp), host=ctx.target.name)
        yield rerooted(lab, Path(tmp))


def _graded(ctx: TargetContext, lab: Lab, opts: CheckOptions) -> Done[Graded]:
    from provisioner.checks import run_checks

    instance = opts.source.instance
    not_up = lab_not_up(ctx.engine, lab, instance, ctx.target.name)
    if not_up:  # nothing will settle: answer now instead of waiting out every `wait`
        quick = tuple(dataclasses.replace(c, wait=0.0) for c in lab.checks)
        lab = dataclasses.replace(lab, checks=quick)
    ctx.step(f"running {len(lab.checks)} check(s)")
    run = run_checks(ctx.engine, lab, instance=instance, stages=opts.stages,
                     parallel=opts.workers, only=opts.only)
    if opts.learner is not None:
        from provisioner.targets.learner_state import graded

        run = graded(ctx, opts.source, lab, run, opts.learner)
    failing = run.counts().get("fail", 0) + run.counts().get("blocked", 0)
    text = f"{run.score:g}/{run.total:g} points, {failing} failing"
    if failing:
        first = run.failures()[0]
        text += f" (first: {first.id}: {first.message})"
    return Done(Graded(lab, run, not_up), text, run.to_dict())


def lab_not_up(engine: CheckEngine, lab: Lab, instance: str, where: str) -> str:
    """A note when none of the lab's containers exists (the checks will all fail), else ""."""
    names = [resource_name(lab.key, instance, c.name) for c in lab.containers]
    if not names or any(engine.inspect_container(n) is not None for n in names):
        return ""
    flag = "" if instance == DEFAULT_INSTANCE else f" --instance {instance}"
    return (
        f"{lab.key} is not up on {where} (none of its containers exists); "
        f"bring it up first: labup up {lab.id if lab.id is not None else lab.path}{flag}"
    )


def stages_for(stage: str) -> Sequence[str]:
    from labspec.errors import UserInputError

    stages = {"env": ("env",), "task": ("task",), "all": ("env", "task")}
    if stage not in stages:
        raise UserInputError(f"--stage {stage!r}: expected env, task or all")
    return stages[stage]


def wants_probes(
    source: LabSource, targets: Targets, stages: Sequence[str], only: Sequence[str]
) -> bool:
    """Whether a check run on ``targets`` should start the probe agent as it connects: some
    target is over SSH and the checks selected probe a network."""
    if not any(t.is_remote for t in targets.items):
        return False
    from provisioner.checks.runner import PROBE_TYPES, select_checks
    from provisioner.targets.prepare import render_for

    lab = render_for(source, targets.first)
    return any(c.type in PROBE_TYPES for c in select_checks(lab, stages=stages, only=only))
