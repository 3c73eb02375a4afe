"""``gpu``: a GPU is visible inside a container.

```yaml
gpu: {container: trainer}
```
Runs ``nvidia-smi -L`` in the container, then looks for ``/dev/nvidia*`` devices. When none is
visible and the container's GPU request is ``optional`` (so the lab came up without one on an
engine that has none), the check is *skipped* with the reason instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, shorten
from provisioner.checks.results import Outcome, failed, passed, skipped

_LIST_DEVICES = "ls /dev/nvidia[0-9]* 2>/dev/null"


def _engine_has_gpu_runtime(ctx: CheckContext) -> bool:
    try:
        runtimes = ctx.engine.info().get("Runtimes") or {}
    except Exception:  # info is advisory here; the container itself is the proof
        return False
    return "nvidia" in runtimes


def check_gpu(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    key = str(spec["container"])
    name = ctx.name(key)
    smi = ctx.exec(key, ["nvidia-smi", "-L"])
    if smi.rc == 0 and "GPU" in smi.stdout:
        first = smi.stdout.strip().splitlines()[0]
        return passed(f"{name}: {shorten(first, 120)}")
    devices = ctx.exec(key, ["sh", "-c", _LIST_DEVICES])
    if devices.rc == 0 and devices.stdout.strip():
        found = devices.stdout.split()
        return passed(f"{name}: {len(found)} NVIDIA device(s) ({', '.join(found[:4])})")
    why = "nvidia-smi " + (shorten(smi.stderr or smi.stdout, 80) or f"exited {smi.rc}")
    try:
        request = ctx.lab.container(key).gpus
    except KeyError:
        request = None
    if request is not None and request.optional:
        runtime = "" if _engine_has_gpu_runtime(ctx) else ", and it has no nvidia runtime"
        return skipped(
            f"no GPU visible in {name}; its GPU request is optional and the engine "
            f"offered none{runtime}"
        )
    return failed(f"no GPU visible in {name} ({why}; no /dev/nvidia* devices)")
