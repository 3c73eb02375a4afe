"""The per-host actions of fleet commands: up, down, reset, status, plan, check, doctor.

Each ``*_action(...)`` returns a callable for :func:`provisioner.targets.runner.run_fleet`.
The lab is
loaded per host (``host.name`` and ``host.vars`` are rendered into the spec), GPU placement is
decided, bind files are copied over SFTP, and then the provisioner's own lifecycle function
runs on that host's engine, with its progress routed to the host's line in the live view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labspec.errors import LabupError
from labspec.model import Host, Lab
from provisioner.engine import labels as L
from provisioner.targets.runner import HostContext

Action = Callable[[HostContext], Any]


def load_lab_for_host(
    spec: Path,
    host: Host,
    *,
    params: Mapping[str, str] | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    allow_unsafe: bool = False,
) -> Lab:
    """The lab as this host sees it: per-host vars rendered (``host.vars.learner``...)."""
    from labspec.build import load_lab

    return load_lab(
        spec,
        params=dict(params or {}),
        host={"name": host.name, "vars": dict(host.vars)},
        instance=None if instance == L.DEFAULT_INSTANCE else instance,
        allow_unsafe=allow_unsafe,
    )


def step_reporter(ctx: HostContext) -> Any:
    """A provisioner Reporter whose events become the host's current step in the live view."""
    from provisioner.lifecycle.progress import CallbackReporter

    def show(event: Any) -> None:
        if event.kind == "message":
            ctx.step(str(event.detail or event.action))
        elif event.kind == "progress":
            ctx.step(f"{event.name}: {event.action}")
        else:
            ctx.step(event.text())

    return CallbackReporter(show)


def prepare(
    ctx: HostContext,
    lab: Lab,
    *,
    instance: str,
    refuse_no_gpu: bool = False,
) -> Lab:
    """Placement, then the lab files: returns the lab to realize on this host."""
    from provisioner.targets.file_sync import bind_sources, remote_lab, sync_lab
    from provisioner.targets.placement import ensure_placement

    ensure_placement(ctx, lab, refuse=refuse_no_gpu)
    ssh = ctx.ssh
    if ssh is None or not bind_sources(lab):
        return lab
    ctx.step("copying lab files")
    base = ctx.host.vars.get("labup_dir")
    result = sync_lab(
        ssh.sftp(), lab, instance=instance, base=str(base) if base else None,
        host=ctx.host.name,
    )
    ctx.data["sync"] = result
    ctx.step(f"lab files: {result.summary()}")
    return remote_lab(lab, result.remote_folder)


@dataclass(frozen=True)
class HostDone:
    """What an action returns: a one-line summary for the table and the full result."""

    text: str
    result: Any = None
    document: Mapping[str, Any] | None = None

    def summary(self) -> str:
        return self.text


def up_action(
    spec: Path,
    *,
    params: Mapping[str, str] | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    allow_unsafe: bool = False,
    keep_on_failure: bool = False,
    checks: bool = True,
    timeout: float = 120.0,
    refuse_no_gpu: bool = False,
    reset: bool = False,
) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner import lifecycle

        ctx.step("loading spec")
        lab = load_lab_for_host(spec, ctx.host, params=params, instance=instance,
                                allow_unsafe=allow_unsafe)
        lab = prepare(ctx, lab, instance=instance, refuse_no_gpu=refuse_no_gpu)
        reporter = step_reporter(ctx)
        engine: Any = ctx.engine
        try:
            return _up_or_reset(engine, lab, reporter)
        except lifecycle.UpFailed as e:  # keep what up did (and cleaned) for --json
            e.partial = HostDone(e.message, e.result, e.result.as_dict())  # type: ignore[attr-defined]
            raise

    def _up_or_reset(engine: Any, lab: Lab, reporter: Any) -> HostDone:
        from provisioner import lifecycle

        if reset:
            removed, result = lifecycle.reset(
                engine, lab, instance=instance, reporter=reporter,
                keep_on_failure=keep_on_failure, timeout=timeout, checks=checks,
            )
            doc: dict[str, Any] = {"down": removed.as_dict(), "up": result.as_dict()}
        else:
            result = lifecycle.up(
                engine, lab, instance=instance, reporter=reporter,
                keep_on_failure=keep_on_failure, timeout=timeout, checks=checks,
            )
            doc = result.as_dict()
        if not result.ok:
            raise LabupError(f"{lab.key} is up but its environment checks failed")
        what = "reset" if reset else ("up to date" if result.noop else "up")
        return HostDone(f"{lab.key} {what} ({result.seconds:.1f}s)", result, doc)

    return action


def down_action(
    lab_key: str, *, instance: str | None = L.DEFAULT_INSTANCE, volumes: bool = False
) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner import lifecycle

        engine: Any = ctx.engine
        result = lifecycle.down(engine, lab_key, instance, volumes=volumes,
                                reporter=step_reporter(ctx))
        if not result.ok:
            names = ", ".join(f"{k} {n}" for k, n, _ in result.left)
            raise LabupError(f"could not remove {names}")
        text = f"{len(result.removed)} removed" if result.removed else "nothing to remove"
        return HostDone(text, result, result.as_dict())

    return action


def status_action(lab_key: str | None, *, instance: str | None = None) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner import lifecycle

        ctx.step("listing")
        found = lifecycle.status(ctx.engine, lab_key, instance)  # type: ignore[arg-type]
        if not found:
            text = "no lab instances"
        else:
            text = "; ".join(
                f"{s.lab}[{s.instance}] {s.state} "
                f"({sum(1 for c in s.containers if c.state == 'running')}/{len(s.containers)} "
                "running)"
                for s in found
            )
        doc = {"host": ctx.host.name, "instances": [s.as_dict() for s in found]}
        return HostDone(text, found, doc)

    return action


def plan_action(
    spec: Path,
    *,
    params: Mapping[str, str] | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    allow_unsafe: bool = False,
    refuse_no_gpu: bool = False,
) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner import lifecycle
        from provisioner.targets.file_sync import remote_folder_for, remote_lab
        from provisioner.targets.placement import ensure_placement

        ctx.step("loading spec")
        lab = load_lab_for_host(spec, ctx.host, params=params, instance=instance,
                                allow_unsafe=allow_unsafe)
        ensure_placement(ctx, lab, refuse=refuse_no_gpu)
        ssh = ctx.ssh
        if ssh is not None:  # plan against the binds as up would make them, copying nothing
            base = ctx.host.vars.get("labup_dir")
            lab = remote_lab(
                lab, remote_folder_for(ssh.sftp(), lab, instance, str(base) if base else None)
            )
        ctx.step("planning")
        the_plan = lifecycle.plan(ctx.engine, lab, instance=instance)  # type: ignore[arg-type]
        counts = the_plan.counts()
        text = ", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "nothing"
        return HostDone(text, the_plan, the_plan.as_dict())

    return action


def check_action(
    spec: Path,
    *,
    params: Mapping[str, str] | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    allow_unsafe: bool = False,
    stages: Sequence[str] = ("env", "task"),
    only: Sequence[str] = (),
) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner.checks import run_checks
        from provisioner.targets.file_sync import remote_folder_for, remote_lab

        ctx.step("loading spec")
        lab = load_lab_for_host(spec, ctx.host, params=params, instance=instance,
                                allow_unsafe=allow_unsafe)
        ssh = ctx.ssh
        if ssh is not None and any(m.type == "bind" for c in lab.containers for m in c.mounts):
            base = ctx.host.vars.get("labup_dir")
            lab = remote_lab(
                lab, remote_folder_for(ssh.sftp(), lab, instance, str(base) if base else None),
                move_folder=False,  # the dockerfile lint reads the lab folder on this machine
            )
        ctx.step(f"running {len(lab.checks)} check(s)")
        run = run_checks(ctx.engine, lab, instance=instance, stages=tuple(stages), only=only)
        ctx.data["lab"] = lab
        text = f"{run.score:g}/{run.total:g} points, {run.counts().get('fail', 0)} failing"
        return HostDone(text, run, run.to_dict())

    return action


def doctor_action(
    spec: Path | None,
    *,
    params: Mapping[str, str] | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    allow_unsafe: bool = False,
) -> Action:
    def action(ctx: HostContext) -> HostDone:
        from provisioner.targets.doctor import diagnose

        lab = None
        if spec is not None:
            ctx.step("loading spec")
            lab = load_lab_for_host(spec, ctx.host, params=params, instance=instance,
                                    allow_unsafe=allow_unsafe)
        ctx.step("diagnosing")
        report = diagnose(ctx.engine, lab, ssh=ctx.ssh, instance=instance,
                          inventory_gpus=ctx.host.gpus)
        report.host = ctx.host.name
        if not report.ok:  # a failure for the exit code; the report is kept
            raise _NotReady(report)
        return HostDone(report.summary(), report, report.as_dict())

    return action


class _NotReady(LabupError):
    """The host answered but is not ready; the report rides along as ``partial``."""

    def __init__(self, report: Any) -> None:
        self.partial = HostDone(report.summary(), report, report.as_dict())
        super().__init__(report.summary())
