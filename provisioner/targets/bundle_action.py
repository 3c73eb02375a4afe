"""``bundle load`` as an action on one engine, and the step ``up --bundle`` takes first.

The bundle is verified once, before any target is contacted (the CLI does it); each target
then receives only the images its engine lacks, over its own connection, with progress on its
line (a bar on one engine's terminal, the live view in a fleet).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from provisioner.offline.bundle_load import LoadProgress, LoadResult, load_bundle_into
from provisioner.targets.runner import Action, Done, TargetContext


@dataclass(frozen=True)
class BundleLoadOptions:
    path: Path
    only_missing: bool = True  # False: send every image of the bundle (--all)


def bundle_load_action(opts: BundleLoadOptions) -> Action[LoadResult]:
    def action(ctx: TargetContext) -> Done[LoadResult]:
        result = load_bundle_on(ctx, opts.path, only_missing=opts.only_missing)
        return Done(result, result.summary(), result.as_dict())

    return action


def load_bundle_on(ctx: TargetContext, path: Path, *, only_missing: bool = True) -> LoadResult:
    """Load what this target's engine lacks from an already verified bundle."""
    ctx.step("comparing image IDs")
    result = load_bundle_into(
        ctx.engine.sdk_client(),
        path,
        host=ctx.target.name,
        verify=False,
        only_missing=only_missing,
        progress=step_progress(ctx),
    )
    ctx.reporter.info(f"bundle {path.name}: {result.summary()}")
    return result


def step_progress(ctx: TargetContext) -> LoadProgress:
    """``loading [####------]  40% 1.2/3.0 MB`` as the target's progress line, a few times a
    second."""
    state = {"shown": -1, "at": 0.0}
    lock = threading.Lock()

    def show(sent: int, total: int) -> None:
        pct = int(100 * sent / total) if total else 100
        now = time.monotonic()
        with lock:
            if pct == state["shown"] or (now - state["at"] < 0.2 and pct < 100):
                return
            state["shown"], state["at"] = pct, now
        bar = "#" * (pct // 10) + "-" * (10 - pct // 10)
        ctx.progress(f"loading [{bar}] {pct:3d}% {sent / 1e6:.1f}/{total / 1e6:.1f} MB")

    return show
