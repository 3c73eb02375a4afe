"""Lifecycle commands: up, plan, down, reset, status. Parse, build the options, run the action.

On one engine progress goes to stderr (one line per resource) and stdout carries the plan,
the instructions, the status table, or with ``--json`` one JSON document (documented in
docs/provisioning.md); with ``-i`` the same action runs on every host with a live line each.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from provisioner.cli import options as opt
from provisioner.cli.run import choose, run

if TYPE_CHECKING:
    from provisioner.targets.select import TargetOptions


def _verified(bundle: Path | None) -> Path | None:
    """A bundle is verified once, before any engine is contacted: a bad one changes nothing."""
    if bundle is not None:
        from provisioner.offline.bundle_format import Bundle

        with Bundle.open(bundle) as opened:
            opened.verify()
    return bundle


def register(app: typer.Typer) -> None:
    """Add up, plan, down, reset and status to the labup app."""

    @app.command("up")
    def up_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        keep_on_failure: bool = opt.KEEP_ON_FAILURE,
        no_check: bool = opt.NO_CHECK,
        quiet: bool = opt.QUIET,
        engine_calls: int = opt.ENGINE_CALLS,
        timeout: float = opt.TIMEOUT,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
        refuse_no_gpu: bool = opt.REFUSE_NO_GPU,
        bundle: Path | None = opt.BUNDLE,
    ) -> None:
        """Bring a lab up (create what is missing, replace what changed); `labup 5` means this.

        With -i, on every host of the inventory. With --bundle, each engine first receives
        the images it lacks from an offline bundle."""
        _up_or_reset(
            "up", lab, opt.where(host, inventory, limit, only_failed, parallel), sets=sets,
            instance=instance, allow_unsafe=allow_unsafe, keep_on_failure=keep_on_failure,
            checks=not no_check, timeout=timeout, engine_calls=engine_calls,
            refuse_no_gpu=refuse_no_gpu, bundle=bundle, json_out=json_out, quiet=quiet,
            learner=learner,
        )

    @app.command("reset")
    def reset_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        keep_on_failure: bool = opt.KEEP_ON_FAILURE,
        no_check: bool = opt.NO_CHECK,
        quiet: bool = opt.QUIET,
        engine_calls: int = opt.ENGINE_CALLS,
        timeout: float = opt.TIMEOUT,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
        refuse_no_gpu: bool = opt.REFUSE_NO_GPU,
    ) -> None:
        """Return a lab instance to the clean state of a fresh up (volumes emptied)."""
        _up_or_reset(
            "reset", lab, opt.where(host, inventory, limit, only_failed, parallel), sets=sets,
            instance=instance, allow_unsafe=allow_unsafe, keep_on_failure=keep_on_failure,
            checks=not no_check, timeout=timeout, engine_calls=engine_calls,
            refuse_no_gpu=refuse_no_gpu, bundle=None, json_out=json_out, quiet=quiet,
            learner=learner,
        )

    @app.command("plan")
    def plan_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
        refuse_no_gpu: bool = opt.REFUSE_NO_GPU,
    ) -> None:
        """Show what `up` would do per resource: create / replace (what changed) / keep / remove."""
        from provisioner.catalog.lab_source import LabSource
        from provisioner.lifecycle.planner import Plan
        from provisioner.targets.actions import PlanOptions, plan_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        source = LabSource.resolve(lab, sets=sets, instance=instance, learner=learner,
                                   allow_unsafe=allow_unsafe, workspace=where.inventory is None)
        targets = choose(where, f"plan {lab}", source)
        if targets is None:
            return
        result = run(targets, plan_action(PlanOptions(source, refuse_no_gpu)),
                     command=f"plan {lab}", json_out=json_out)
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, Plan)
        for step in done.value.steps:
            print(step.text())
        counts = done.value.counts()
        summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n and a != "keep")
        print(summary + f", {counts['keep']} to keep" if summary else "nothing to do: up to date")

    @app.command("down")
    def down_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        volumes: bool = opt.VOLUMES,
        json_out: bool = opt.JSON,
        quiet: bool = opt.QUIET,
        engine_calls: int = opt.ENGINE_CALLS,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
    ) -> None:
        """Remove a lab instance's containers and networks (volumes too with --volumes)."""
        from labspec.templating import check_instance
        from provisioner.catalog.lab_source import lab_key
        from provisioner.targets.actions import DownOptions, down_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        check_instance(instance)
        options = DownOptions(lab_key(lab), instance or opt.DEFAULT_INSTANCE, volumes,
                              engine_calls)
        targets = choose(where, f"down {lab}")
        if targets is not None:
            run(targets, down_action(options), command=f"down {lab}", json_out=json_out,
                quiet=quiet)

    @app.command("status")
    def status_cmd(
        lab: str | None = typer.Argument(
            None, help="Only this lab (number, folder, spec, key).", autocompletion=opt.complete_lab
        ),
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        json_out: bool = opt.JSON,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
    ) -> None:
        """List lab instances on the engine with each container's state and health."""
        from labspec.templating import check_instance
        from provisioner.catalog.lab_source import lab_key
        from provisioner.targets.actions import StatusOptions, status_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        check_instance(instance)
        command = f"status {lab or ''}".strip()
        targets = choose(where, command)
        if targets is None:
            return
        options = StatusOptions(lab_key(lab) if lab else None, instance)
        result = run(targets, status_action(options), command=command, json_out=json_out)
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None
        found = done.value
        if not found:
            print(f"no lab instances on {targets.first.url}")
            return
        for st in found:
            print(f"{st.lab} [{st.instance}] {st.state}"
                  f"  ({len(st.networks)} networks, {len(st.volumes)} volumes)")
            for c in st.containers:
                health = f" ({c.health})" if c.health else ""
                print(f"  {c.name:<32} {c.state}{health}  {c.status}")


def _up_or_reset(
    verb: str,
    lab: str,
    where: TargetOptions,
    *,
    sets: list[str] | None,
    instance: str | None,
    allow_unsafe: bool,
    keep_on_failure: bool,
    checks: bool,
    timeout: float,
    engine_calls: int,
    refuse_no_gpu: bool,
    bundle: Path | None,
    json_out: bool,
    quiet: bool,
    learner: str | None = None,
) -> None:
    from provisioner.catalog.lab_source import LabSource
    from provisioner.targets.actions import Brought, UpOptions, up_action

    source = LabSource.resolve(lab, sets=sets, instance=instance, allow_unsafe=allow_unsafe,
                               workspace=where.inventory is None, learner=learner)
    command = f"{verb} {lab}"
    targets = choose(where, command, source)
    if targets is None:
        return
    options = UpOptions(source, keep_on_failure=keep_on_failure, checks=checks,
                        timeout=timeout, engine_calls=engine_calls,
                        refuse_no_gpu=refuse_no_gpu, bundle=_verified(bundle),
                        reset=verb == "reset")
    result = run(targets, up_action(options), command=command, json_out=json_out, quiet=quiet)
    if targets.fleet or json_out or quiet or verb != "up":
        return
    done = result.outcomes[0].done
    assert done is not None and isinstance(done.value, Brought)
    from provisioner.catalog.instructions import print_instructions

    brought = done.value
    if brought.lab.variant:
        from provisioner.learner.identity import local_user

        shown = ", ".join(f"{k}={v}" for k, v in brought.lab.variant.items())
        print(f"your variant ({brought.lab.learner or local_user()}): {shown}", file=sys.stderr)
    if print_instructions(brought.lab, instance=source.instance):
        print(f"lab folder: {brought.lab.folder}", file=sys.stderr)
