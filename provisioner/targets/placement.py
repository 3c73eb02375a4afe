"""GPU placement: a lab whose containers need GPUs runs only on hosts that have enough.

A host's GPU count comes from the inventory (``gpus: N``) when given, else from a probe:
``nvidia-smi`` over the host's SSH connection (or on this machine for a local engine). A host
without enough GPUs is skipped with the reason, or refused (a failure) with ``refuse=True``.
Requests marked ``optional: true`` never decide placement: those containers start without a GPU
where there is none (the provisioner says so).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from labspec.errors import EngineError, LabupError
from labspec.model import Lab
from provisioner.engine.protocol import CommandResult
from provisioner.targets.runner import HostContext, HostSkipped

NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader")


class PlacementRefused(LabupError):
    """The host lacks the GPUs the lab needs and the user asked to refuse such hosts."""


@dataclass(frozen=True)
class GpuProbe:
    """What a host has: GPU count and names, where the figure came from, any probe error."""

    count: int
    names: tuple[str, ...] = ()
    source: str = "probe"  # "inventory" | "probe"
    error: str = ""  # why the probe found nothing (no nvidia-smi, driver error, ...)

    def text(self) -> str:
        if self.count == 0:
            why = f" ({self.error})" if self.error else ""
            return f"no GPU{why}"
        names = f": {', '.join(sorted(set(self.names)))}" if self.names else ""
        return f"{self.count} GPU(s){names} [{self.source}]"


def gpus_needed(lab: Lab) -> int:
    """GPUs a host must have for the lab: the largest non-optional request (``all`` counts 1)."""
    need = 0
    for c in lab.containers:
        if c.gpus is None or c.gpus.optional:
            continue
        need = max(need, 1 if c.gpus.count == "all" else int(c.gpus.count))
    return need


def parse_nvidia_smi(result: CommandResult) -> GpuProbe:
    """GPUs from ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader``."""
    if result.rc != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        reason = said[-1] if said else f"exit code {result.rc}"
        if result.rc == 127 or "not found" in reason:
            reason = "nvidia-smi not found"
        return GpuProbe(0, error=reason)
    names = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0].isdigit():
            names.append(parts[1])
    return GpuProbe(len(names), tuple(names), "probe")


def probe_gpus(ssh: Any | None, *, timeout: float = 15.0) -> GpuProbe:
    """Run nvidia-smi on the host: over its SSH connection, or here for a local engine."""
    argv = list(NVIDIA_SMI)
    if ssh is not None:
        try:
            result = ssh.run(["sh", "-c", 'exec "$@" 2>&1', "sh", *argv], timeout=timeout)
        except EngineError as e:
            return GpuProbe(0, error=e.message)
        return parse_nvidia_smi(result)
    if shutil.which(argv[0]) is None:
        return GpuProbe(0, error="nvidia-smi not found")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return GpuProbe(0, error=str(e))
    return parse_nvidia_smi(CommandResult(done.returncode, done.stdout, done.stderr))


def host_gpus(ctx: HostContext) -> GpuProbe:
    """The inventory's ``gpus`` when set, else a probe (cached on the context)."""
    if ctx.host.gpus is not None:
        return GpuProbe(ctx.host.gpus, source="inventory")
    cached = ctx.data.get("gpu_probe")
    if isinstance(cached, GpuProbe):
        return cached
    found = probe_gpus(ctx.ssh)
    ctx.data["gpu_probe"] = found
    return found


def ensure_placement(ctx: HostContext, lab: Lab, *, refuse: bool = False) -> GpuProbe | None:
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
