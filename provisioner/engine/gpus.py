"""GPUs of a host: what a lab needs, and what ``nvidia-smi`` says the host has.

``probe_gpus`` runs ``nvidia-smi`` over the host's SSH connection, or here for a local engine;
an engine elsewhere (``tcp://``) cannot be probed and is judged by its runtimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from labspec.errors import EngineError
from labspec.model import Lab
from provisioner.engine.protocol import CommandResult

if TYPE_CHECKING:
    from provisioner.engine.protocol import HostShell

NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader")


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


def probe_gpus(ssh: HostShell | None, *, timeout: float = 15.0) -> GpuProbe:
    """Run nvidia-smi on the host: over its SSH connection, or here for a local engine."""
    argv = list(NVIDIA_SMI)
    if ssh is not None:
        try:
            result = ssh.run(["sh", "-c", 'exec "$@" 2>&1', "sh", *argv], timeout=timeout)
        except EngineError as e:
            return GpuProbe(0, error=e.message)
        return parse_nvidia_smi(result)
    import shutil
    import subprocess

    if shutil.which(argv[0]) is None:
        return GpuProbe(0, error="nvidia-smi not found")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return GpuProbe(0, error=str(e))
    return parse_nvidia_smi(CommandResult(done.returncode, done.stdout, done.stderr))
