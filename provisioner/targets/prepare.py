"""The lab as one target must see it: rendered for that host, placed, its files on that host.

The same steps for ``--host`` and for every host of an inventory: render the spec with the
target's host vars, check GPU placement, and for an engine over SSH give that machine the
learner's copy of the lab folder (only what changed; the learner's edits kept, see
:mod:`provisioner.targets.file_sync`) and point the binds at that copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from labspec.model import Lab
from provisioner.catalog.lab_source import LabSource

if TYPE_CHECKING:
    from provisioner.targets.runner import TargetContext
    from provisioner.targets.target import Target

# copy: bring the learner's copy of the lab folder on the far side up to date, keeping the
#       learner's edits; the lab lives there (up)
# restore: the same, but the copy is made exactly the lab's again (reset: a fresh up)
# locate: where the copy is, nothing sent (plan)
# binds: binds point at the copy, the lab folder stays this machine's (check: files the checks
#        read are brought back from the copy first, see check_action)
Files = Literal["copy", "restore", "locate", "binds"]


def learner_of(source: LabSource, target: Target) -> str:
    """Who works on ``target``: its inventory ``learner`` var (or name), else ``--learner``,
    else the user name (:mod:`provisioner.learner.identity`)."""
    from provisioner.learner.identity import learner_for

    return learner_for(source.learner, vars=target.vars, name=target.name,
                       from_inventory=target.from_inventory)


def render_for(source: LabSource, target: Target) -> Lab:
    """The lab as ``target``'s templates and learner see it."""
    return source.load(target.template_host(), learner=learner_of(source, target))


def lab_on_target(
    ctx: TargetContext,
    source: LabSource,
    *,
    files: Files,
    placement: bool = True,
    refuse_no_gpu: bool = False,
) -> Lab:
    """Render, place (unless ``placement=False``), then the lab files per ``files``."""
    ctx.step("loading spec")
    lab = render_for(source, ctx.target)
    if placement and any(c.gpus is not None for c in lab.containers):
        from provisioner.targets.placement import ensure_placement

        ensure_placement(ctx, lab, refuse=refuse_no_gpu)
    ssh = ctx.ssh
    if ssh is None:
        return lab
    from provisioner.targets.file_sync import remote_folder_for, remote_lab, sync_lab

    sftp = ssh.sftp()
    if files in ("locate", "binds"):
        folder = remote_folder_for(sftp, lab, source.instance, ctx.target.labup_dir)
        return remote_lab(lab, folder, move_folder=files == "locate")
    ctx.step("copying lab files")
    result = sync_lab(sftp, lab, instance=source.instance, base=ctx.target.labup_dir,
                      host=ctx.target.name, restore=files == "restore")
    ctx.reporter.info(f"lab files on {ctx.target.name}: {result.summary()}")
    return remote_lab(lab, result.remote_folder)
