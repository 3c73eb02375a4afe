"""GPU placement: a lab whose containers need GPUs runs only on targets that have enough.

A target's GPU count comes from the inventory (``gpus: N``) when given, else from a probe
(:func:`provisioner.engine.gpus.probe_gpus`: ``nvidia-smi`` over the host's SSH connection, or
on this machine for a local engine; a ``tcp://`` engine is judged by its nvidia runtime). A
target without enough GPUs is skipped with the reason (one engine: that is the error), or
refused (a failure in a fleet) with ``refuse=True``. Requests marked ``optional: true`` never
decide placement: those containers start without a GPU where there is none.
"""

from __future__ import annotations

from labspec.errors import LabupError
from labspec.model import Lab
from provisioner.engine.gpus import GpuProbe, gpus_needed, probe_gpus
from provisioner.targets.runner import HostSkipped, TargetContext


class PlacementRefused(LabupError):
    """The host lacks the GPUs the lab needs and the user asked to refuse such hosts."""


def host_gpus(ctx: TargetContext) -> GpuProbe:
    """The inventory's ``gpus`` when set, else a probe (asked once per run)."""
    if ctx.target.gpus is not None:
        return GpuProbe(ctx.target.gpus, source="inventory")
    if ctx.gpu_probe is None:
        ctx.gpu_probe = _probe(ctx)
    return ctx.gpu_probe


def _probe(ctx: TargetContext) -> GpuProbe:
    if ctx.ssh is not None or ctx.engine.is_local:
        return probe_gpus(ctx.ssh)
    # an engine elsewhere without SSH (tcp://): only its runtimes can tell
    from provisioner.lifecycle.apply import engine_has_gpu

    if engine_has_gpu(ctx.engine.info()):
        return GpuProbe(1, source="engine runtime")
    return GpuProbe(0, error="the engine has no nvidia runtime")


def ensure_placement(ctx: TargetContext, lab: Lab, *, refuse: bool = False) -> GpuProbe | None:
    """Raise :class:`HostSkipped` (or :class:`PlacementRefused`) unless the host has the GPUs
    the lab needs; returns what the host has (None when the lab needs no GPU)."""
    need = gpus_needed(lab)
    if need == 0:
        return None
    ctx.step("checking GPUs")
    have = host_gpus(ctx)
    if have.count >= need:
        return have
    wanting = ", ".join(
        c.name for c in lab.containers if c.gpus is not None and not c.gpus.optional
    )
    reason = f"{lab.key} needs {need} GPU(s) (for {wanting}); this host has {have.text()}"
    if refuse:
        raise PlacementRefused(
            reason, hint="run it with --limit on GPU hosts, or without --refuse-no-gpu to skip"
        )
    raise HostSkipped(reason)
