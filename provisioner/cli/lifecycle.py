"""Lifecycle commands: up, plan, down, reset, status. A thin layer over provisioner.lifecycle.verbs.

Progress goes to stderr (one line per resource); stdout carries the plan, the instructions,
the status table, or with ``--json`` one JSON document (documented in docs/provisioning.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from labspec.errors import LabupError, UserInputError
from provisioner.cli import fleet
from provisioner.cli import options as opt
from provisioner.cli.bundle import BUNDLE
from provisioner.cli.options import parse_sets

if TYPE_CHECKING:
    from labspec.model import Lab
    from provisioner.engine.docker_engine import DockerEngine
    from provisioner.lifecycle.progress import Reporter

DEFAULT_INSTANCE = "default"

KEEP_ON_FAILURE = typer.Option(
    False, "--keep-on-failure", help="When up fails, keep what it created (for inspection)."
)
NO_CHECK = typer.Option(False, "--no-check", help="Skip the lab's environment checks after up.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines and no instructions.")
PARALLEL = typer.Option(16, "--parallel", min=1, max=64, help="Engine calls in flight at once.")
TIMEOUT = typer.Option(
    120.0, "--timeout", min=1.0, help="Longest wait (s) for a container to be healthy or complete."
)
VOLUMES = typer.Option(False, "--volumes", "-v", help="Also remove the lab's named volumes.")




def load(lab: str, sets: list[str] | None, instance: str, allow_unsafe: bool) -> Lab:
    """Resolve LAB (number, folder, spec file) and load it with labspec.load_lab."""
    from labspec import load_lab
    from labspec.catalog import resolve_lab_path

    path = resolve_lab_path(lab, workspace=True)
    return load_lab(path, params=parse_sets(sets), instance=instance, allow_unsafe=allow_unsafe)


def engine_for(host: str | None) -> DockerEngine:
    from provisioner.engine.connect import connect

    return connect(host)


def reporter_for(json_out: bool, quiet: bool) -> Reporter:
    from provisioner.lifecycle.progress import ConsoleReporter, QuietReporter

    return QuietReporter() if (json_out or quiet) else ConsoleReporter()


def emit_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def lab_key_for(lab: str, engine: DockerEngine) -> str:
    """The lab key for down/status: from the spec when LAB names one, else a key on the engine
    (``lab5``, a slug) so an instance whose spec is gone can still be removed."""
    from labspec.catalog import resolve_lab_path
    from provisioner.lifecycle.instances import status

    try:
        path = resolve_lab_path(lab)
    except UserInputError:
        keys = {s.lab for s in status(engine)}
        if lab in keys:
            return lab
        raise
    return _key_from_spec(path)


def _key_from_spec(path: Path) -> str:
    """The key (``lab{id}`` or the name) read from the spec's top level, without rendering."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserInputError(f"{path}: cannot read the lab's id and name ({e})") from e
    if not isinstance(doc, dict) or not (doc.get("id") is not None or doc.get("name")):
        raise UserInputError(f"{path}: the spec has neither an id nor a name")
    if isinstance(doc.get("id"), int):
        return f"lab{doc['id']}"
    return str(doc["name"])


def show_checks(run: Any) -> None:
    failures = run.failures() if callable(getattr(run, "failures", None)) else []
    for r in failures:
        print(f"FAIL {r.id}: {r.message}", file=sys.stderr)
        if getattr(r, "hint", ""):
            print(f"  hint: {r.hint}", file=sys.stderr)


def _load_bundle(engine: Any, bundle: Path, *, quiet: bool) -> None:
    """`up --bundle` on one engine: load the images it lacks (verified first) before `up`."""
    from provisioner.offline.bundle_load import load_bundle_into

    result = load_bundle_into(engine.client, bundle, host=engine.host_label)
    if not quiet:
        print(f"bundle {bundle.name}: {result.summary()}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add up, plan, down, reset and status to the labup app."""

    @app.command("up")
    def up_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        keep_on_failure: bool = KEEP_ON_FAILURE,
        no_check: bool = NO_CHECK,
        quiet: bool = QUIET,
        parallel: int = PARALLEL,
        timeout: float = TIMEOUT,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = fleet.LIMIT,
        only_failed: bool = fleet.ONLY_FAILED,
        refuse_no_gpu: bool = fleet.REFUSE_NO_GPU,
        bundle: Path | None = BUNDLE,
    ) -> None:
        """Bring a lab up (create what is missing, replace what changed); `labup 5` means this.

        With -i, on every host of the inventory (--parallel: hosts at once). With --bundle,
        each engine first receives the images it lacks from an offline bundle."""
        from provisioner.lifecycle.verbs import UpFailed, up

        name = instance or DEFAULT_INSTANCE
        if fleet.wants_fleet(inventory, limit, only_failed, host):
            fleet.fleet_up(
                str(inventory), lab, sets=sets, instance=name, allow_unsafe=allow_unsafe,
                keep_on_failure=keep_on_failure, checks=not no_check, timeout=timeout,
                limit=limit, parallel=parallel if fleet.explicit("parallel") else None,
                only_failed=only_failed, json_out=json_out, refuse_no_gpu=refuse_no_gpu,
                bundle=bundle,
            )
            return
        the_lab = load(lab, sets, name, allow_unsafe)
        engine = engine_for(host)
        if bundle is not None:
            _load_bundle(engine, bundle, quiet=quiet or json_out)
        reporter = reporter_for(json_out, quiet)
        if engine.url.startswith("ssh://"):  # (on_engine imports paramiko and docker)
            the_lab = fleet.on_engine(engine, the_lab, instance=name, reporter=reporter)
        _announce(reporter, the_lab, name, engine)
        try:
            result = up(engine, the_lab, instance=name, reporter=reporter,
                        keep_on_failure=keep_on_failure, parallel=parallel, timeout=timeout,
                        checks=not no_check)
        except UpFailed as e:
            if json_out:
                emit_json(e.result.as_dict())
            raise
        if json_out:
            emit_json(result.as_dict())
        if result.checks is not None and not result.ok:
            show_checks(result.checks)
            from labspec.errors import CheckFailed

            raise CheckFailed(f"{the_lab.key}: the lab is up but its environment checks failed")
        if not result.noop:
            reporter.info(f"{the_lab.key} is up ({result.seconds:.1f}s)")
        if not (json_out or quiet):
            from provisioner.catalog.instructions import print_instructions

            if print_instructions(the_lab, instance=name):
                reporter.info(f"lab folder: {the_lab.folder}")

    @app.command("plan")
    def plan_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        parallel: int | None = fleet.HOSTS_PARALLEL,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = fleet.LIMIT,
        only_failed: bool = fleet.ONLY_FAILED,
        refuse_no_gpu: bool = fleet.REFUSE_NO_GPU,
    ) -> None:
        """Show what `up` would do per resource: create / replace (what changed) / keep / remove."""
        from provisioner.lifecycle.verbs import plan

        name = instance or DEFAULT_INSTANCE
        if fleet.wants_fleet(inventory, limit, only_failed, host):
            fleet.fleet_plan(
                str(inventory), lab, sets=sets, instance=name, allow_unsafe=allow_unsafe,
                limit=limit, parallel=parallel, only_failed=only_failed, json_out=json_out,
                refuse_no_gpu=refuse_no_gpu,
            )
            return
        the_lab = load(lab, sets, name, allow_unsafe)
        engine = engine_for(host)
        if engine.url.startswith("ssh://"):  # (on_engine imports paramiko and docker)
            the_lab = fleet.on_engine(engine, the_lab, instance=name, copy=False)
        result = plan(engine, the_lab, instance=name)
        if json_out:
            emit_json(result.as_dict())
            return
        for step in result.steps:
            print(step.text())
        counts = result.counts()
        summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n and a != "keep")
        print(summary + f", {counts['keep']} to keep" if summary else "nothing to do: up to date")

    @app.command("down")
    def down_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        volumes: bool = VOLUMES,
        json_out: bool = opt.JSON,
        quiet: bool = QUIET,
        parallel: int | None = fleet.HOSTS_PARALLEL,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = fleet.LIMIT,
        only_failed: bool = fleet.ONLY_FAILED,
    ) -> None:
        """Remove a lab instance's containers and networks (volumes too with --volumes)."""
        from provisioner.lifecycle.verbs import down

        if fleet.wants_fleet(inventory, limit, only_failed, host):
            fleet.fleet_down(
                str(inventory), lab, instance=instance or DEFAULT_INSTANCE, volumes=volumes,
                limit=limit, parallel=parallel, only_failed=only_failed, json_out=json_out,
            )
            return
        engine = engine_for(host)
        key = lab_key_for(lab, engine)
        reporter = reporter_for(json_out, quiet)
        result = down(engine, key, instance or DEFAULT_INSTANCE, volumes=volumes,
                      reporter=reporter)
        if json_out:
            emit_json(result.as_dict())
        if not result.ok:
            names = ", ".join(f"{k} {n}" for k, n, _ in result.left)
            raise LabupError(
                f"could not remove {names}",
                hint="dockerd 20.10 can keep a network stuck with 'active endpoints'; only a "
                "daemon restart clears it (it is labelled, so a later down retries)",
            )
        if not json_out:
            what = f"{len(result.removed)} resource(s) removed" if result.removed else "nothing"
            reporter.info(f"{key}: {what}" + ("" if result.removed else " to remove"))

    @app.command("reset")
    def reset_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        keep_on_failure: bool = KEEP_ON_FAILURE,
        no_check: bool = NO_CHECK,
        quiet: bool = QUIET,
        timeout: float = TIMEOUT,
        parallel: int | None = fleet.HOSTS_PARALLEL,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = fleet.LIMIT,
        only_failed: bool = fleet.ONLY_FAILED,
        refuse_no_gpu: bool = fleet.REFUSE_NO_GPU,
    ) -> None:
        """Return a lab instance to the clean state of a fresh up (volumes emptied)."""
        from provisioner.lifecycle.verbs import UpFailed, reset

        name = instance or DEFAULT_INSTANCE
        if fleet.wants_fleet(inventory, limit, only_failed, host):
            fleet.fleet_up(
                str(inventory), lab, sets=sets, instance=name, allow_unsafe=allow_unsafe,
                keep_on_failure=keep_on_failure, checks=not no_check, timeout=timeout,
                limit=limit, parallel=parallel, only_failed=only_failed, json_out=json_out,
                refuse_no_gpu=refuse_no_gpu, reset=True,
            )
            return
        the_lab = load(lab, sets, name, allow_unsafe)
        engine = engine_for(host)
        reporter = reporter_for(json_out, quiet)
        if engine.url.startswith("ssh://"):  # (on_engine imports paramiko and docker)
            the_lab = fleet.on_engine(engine, the_lab, instance=name, reporter=reporter)
        try:
            removed, result = reset(engine, the_lab, instance=name, reporter=reporter,
                                    keep_on_failure=keep_on_failure, timeout=timeout,
                                    checks=not no_check)
        except UpFailed as e:
            if json_out:
                emit_json({"down": None, "up": e.result.as_dict()})
            raise
        if json_out:
            emit_json({"down": removed.as_dict(), "up": result.as_dict()})
        if result.checks is not None and not result.ok:
            show_checks(result.checks)
            from labspec.errors import CheckFailed

            raise CheckFailed(f"{the_lab.key}: the lab is reset but its environment checks failed")
        reporter.info(f"{the_lab.key} is reset ({result.seconds:.1f}s)")

    @app.command("status")
    def status_cmd(
        lab: str | None = typer.Argument(None, help="Only this lab (number, folder, spec, key)."),
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        json_out: bool = opt.JSON,
        parallel: int | None = fleet.HOSTS_PARALLEL,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = fleet.LIMIT,
        only_failed: bool = fleet.ONLY_FAILED,
    ) -> None:
        """List lab instances on the engine with each container's state and health."""
        from provisioner.lifecycle.verbs import status

        if fleet.wants_fleet(inventory, limit, only_failed, host):
            fleet.fleet_status(
                str(inventory), lab, instance=instance, limit=limit, parallel=parallel,
                only_failed=only_failed, json_out=json_out,
            )
            return
        engine = engine_for(host)
        key = lab_key_for(lab, engine) if lab else None
        found = status(engine, key, instance)
        if json_out:
            emit_json({"host": engine.host_label, "instances": [s.as_dict() for s in found]})
            return
        if not found:
            print("no lab instances on " + engine.url)
            return
        for st in found:
            print(f"{st.lab} [{st.instance}] {st.state}"
                  f"  ({len(st.networks)} networks, {len(st.volumes)} volumes)")
            for c in st.containers:
                health = f" ({c.health})" if c.health else ""
                print(f"  {c.name:<32} {c.state}{health}  {c.status}")


def _announce(reporter: Reporter, lab: Lab, instance: str, engine: DockerEngine) -> None:
    where = "" if engine.host_label == "local" else f" on {engine.host_label}"
    inst = "" if instance == DEFAULT_INSTANCE else f" (instance {instance})"
    reporter.info(f"{lab.key}: {lab.title}{inst}{where}")
