"""The learner's state as an action on one target sees it: which store, and a run graded with it.

One engine (``--host`` or the default): the state folder of this machine, where the learner runs
labup. An inventory host: the state folder on that host, over the target's SFTP channel (the
learner runs labup there; ``vars.labup_state_dir`` names it when it is not the default).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NamedTuple

from labspec.errors import UserInputError
from labspec.model import Lab
from provisioner.catalog.lab_source import LabSource
from provisioner.checks.results import CheckRun
from provisioner.learner.state import LabRecord, LocalStore, RemoteStore, Store
from provisioner.targets.prepare import learner_of

if TYPE_CHECKING:
    from provisioner.targets.runner import TargetContext


class LearnerOptions(NamedTuple):
    """How a check run meets the learner's state."""

    advance: bool = True  # the learner's own check: failing checks move on to their next hint
    record: bool = True  # write the run into the learner's state (progress, hints, solved)


OWN = LearnerOptions()  # a learner checking their own work
READ_ONLY = LearnerOptions(advance=False, record=False)  # an instructor looking (check -i)


def store_for(ctx: TargetContext) -> Store:
    ssh = ctx.ssh
    if ctx.target.from_inventory and ssh is not None:
        base = ctx.target.vars.get("labup_state_dir")
        return RemoteStore(ssh.sftp(), str(base) if base else None, host=ctx.target.name)
    return LocalStore()


def graded(
    ctx: TargetContext, source: LabSource, lab: Lab, run: CheckRun, opts: LearnerOptions
) -> CheckRun:
    """``run`` with the learner's hint levels, hint costs and solved marks; recorded unless
    ``opts.record`` is off. A state folder that cannot be read or written is said on stderr,
    and the run is graded as if the learner had none: it never stops a check."""
    from provisioner.learner.grading import apply

    store = store_for(ctx)
    learner = learner_of(source, ctx.target)
    out: list[CheckRun] = []

    def change(record: LabRecord) -> None:
        out.append(apply(run, lab, record, advance=opts.advance, learner=learner))

    try:
        if not opts.record:
            return apply(run, lab, store.read(lab.key, source.instance), advance=False,
                         learner=learner)
        store.update(lab.key, source.instance, change)
    except UserInputError as e:  # grading goes on without the state; say why once
        print(f"labup: {e}", file=sys.stderr)
        return apply(run, lab, LabRecord(lab.key, source.instance), advance=opts.advance,
                     learner=learner)
    return out[0]


def forget_solved(ctx: TargetContext, lab_key: str, instance: str) -> None:
    """After a reset: the lab is fresh, so no check passes because `labup solve` ran (hints
    seen stay seen). Nothing is written when the learner has no record of this lab."""
    store = store_for(ctx)
    if not any(c.solved for c in store.read(lab_key, instance).checks.values()):
        return

    def change(record: LabRecord) -> None:
        for state in record.checks.values():
            state.solved = False

    store.update(lab_key, instance, change)
