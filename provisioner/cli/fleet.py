"""Fleet commands: ``labup doctor``, and the ``-i/--inventory`` form of up, down, reset,
status, plan and check (those commands call the ``fleet_*`` functions below when ``-i`` is given).

A fleet run shows one live line per host (in place on a terminal, plain lines otherwise), ends
with a summary table per host, remembers the hosts that failed next to the inventory (for
``--only-failed``) and exits 1 naming them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from labspec.errors import EXIT_FAILED, LabupError, UserInputError
from provisioner.cli import options as opt
from provisioner.cli.options import parse_sets

if TYPE_CHECKING:
    from labspec.model import Host, Inventory
    from provisioner.targets.runner import FleetResult, HostContext

LIMIT = typer.Option(
    None, "--limit", "-l",
    help="With -i: only these hosts or groups (names, groups or globs; comma-separated or "
    "repeated).",
)
ONLY_FAILED = typer.Option(
    False, "--only-failed",
    help="With -i: only the hosts that failed in the last fleet run on this inventory.",
)
HOSTS_PARALLEL = typer.Option(
    None, "--parallel", min=1, max=256,
    help="With -i: hosts driven at once (default: the inventory's parallelism, 10).",
)
REFUSE_NO_GPU = typer.Option(
    False, "--refuse-no-gpu",
    help="With -i: a host without the GPUs the lab needs is a failure, not skipped.",
)


class FleetFailed(LabupError):
    """Some hosts of a fleet run failed; the message names them."""

    exit_code = EXIT_FAILED




def explicit(param: str) -> bool:
    """Whether the user gave ``param`` on the command line (not its default)."""
    try:  # typer vendors click; its context knows where each value came from
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - another typer layout: treat as default
        return False
    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    source = ctx.get_parameter_source(param)
    return source is not None and source.name == "COMMANDLINE"


def wants_fleet(
    inventory: str | None, limit: Sequence[str] | None, only_failed: bool, host: str | None = None
) -> bool:
    """Whether a command runs on an inventory; the fleet-only options without -i are an error."""
    if inventory:
        if host:
            raise UserInputError("--host and -i/--inventory: give one or the other")
        return True
    if limit or only_failed:
        raise UserInputError("--limit and --only-failed go with -i INVENTORY")
    return False


def on_engine(
    engine: Any, lab: Any, *, instance: str, reporter: Any = None, copy: bool = True
) -> Any:
    """The lab as ``engine`` must see it: over SSH, the bind files copied to the host first
    (only what changed) and the binds pointed at that copy; locally, the lab unchanged."""
    from provisioner.targets.file_sync import prepare_for_engine

    return prepare_for_engine(engine, lab, instance=instance, reporter=reporter, copy=copy)


def load_inventory(path: str | Path) -> Inventory:
    import labspec

    inv_path = Path(path).expanduser()
    if not inv_path.is_file():
        raise UserInputError(f"inventory {inv_path} does not exist")
    inventory: Inventory = labspec.load_inventory(inv_path)
    return inventory


def choose_hosts(
    inventory: Inventory, limit: Sequence[str] | None, only_failed: bool, command: str = ""
) -> tuple[Host, ...] | None:
    """The hosts to run on; None when --only-failed finds nothing to rerun (said on stderr)."""
    from provisioner.targets.runner import load_failed, select_hosts

    only = None
    if only_failed:
        command, failed = load_failed(inventory.path, command or None)
        if not failed:
            print(f"nothing to rerun: no host failed in the last run ({command})", file=sys.stderr)
            return None
        print(f"rerunning the hosts that failed in the last run ({command}): "
              f"{', '.join(failed)}", file=sys.stderr)
        only = failed
    hosts = select_hosts(inventory, limit, only=only)
    if not hosts:
        raise UserInputError(f"no host of {inventory.path} is selected", hint="check --limit")
    return hosts


def run_on_inventory(
    command: str,
    inventory_path: str | Path,
    action: Callable[[HostContext], Any],
    *,
    limit: Sequence[str] | None,
    parallel: int | None,
    only_failed: bool,
    json_out: bool,
    summary: bool = True,
) -> FleetResult | None:
    """Select hosts, run the action with the live view, record failures, print the summary."""
    from provisioner.targets.live_view import make_view, print_summary
    from provisioner.targets.runner import record_failed, run_fleet

    inventory = load_inventory(inventory_path)
    hosts = choose_hosts(inventory, limit, only_failed, command)
    if hosts is None:
        return None
    stream = sys.stderr if json_out else sys.stdout
    with make_view([h.name for h in hosts], title=command, stream=stream) as view:
        result = run_fleet(hosts, action, parallel=parallel or inventory.parallelism, view=view)
    record_failed(inventory.path, command, result)
    if json_out:
        doc = result.as_dict()
        doc["command"] = command
        for entry, outcome in zip(doc["hosts"], result.outcomes, strict=True):
            entry["result"] = getattr(outcome.result, "document", None)
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    elif summary:
        print_summary(result, command=command, stream=sys.stdout)
    return result


def finish(result: FleetResult | None) -> None:
    """Exit 1 naming the failed hosts (after the summary was printed)."""
    if result is not None and result.failed:
        raise FleetFailed(
            f"{len(result.failed)} of {len(result.outcomes)} host(s) failed: "
            f"{', '.join(result.failed)}",
            hint="fix them and rerun just those with --only-failed",
        )


def _spec(lab: str) -> Path:
    from labspec.catalog import resolve_lab_path

    return resolve_lab_path(lab)


def _key(lab: str) -> str:
    """The lab key for down/status from its spec (``lab5`` / slug), or LAB itself as a key."""
    from provisioner.cli.lifecycle import _key_from_spec

    try:
        return _key_from_spec(_spec(lab))
    except UserInputError:
        if lab.isdigit():
            raise
        return lab


# -- the -i form of the lifecycle and check commands -------------------------------------------


def fleet_up(
    inventory: str, lab: str, *, sets: Sequence[str] | None, instance: str, allow_unsafe: bool,
    keep_on_failure: bool, checks: bool, timeout: float, limit: Sequence[str] | None,
    parallel: int | None, only_failed: bool, json_out: bool, refuse_no_gpu: bool = False,
    reset: bool = False, bundle: Path | None = None,
) -> None:
    from provisioner.targets.actions import up_action

    action = up_action(
        _spec(lab), params=parse_sets(sets), instance=instance, allow_unsafe=allow_unsafe,
        keep_on_failure=keep_on_failure, checks=checks, timeout=timeout,
        refuse_no_gpu=refuse_no_gpu, reset=reset,
    )
    if bundle is not None:  # offline bundle: each host first gets the images it lacks
        from provisioner.offline.bundle_load import with_bundle

        action = with_bundle(action, bundle)
    command = f"{'reset' if reset else 'up'} {lab}"
    finish(run_on_inventory(command, inventory, action, limit=limit, parallel=parallel,
                            only_failed=only_failed, json_out=json_out))


def fleet_down(
    inventory: str, lab: str, *, instance: str | None, volumes: bool,
    limit: Sequence[str] | None, parallel: int | None, only_failed: bool, json_out: bool,
) -> None:
    from provisioner.targets.actions import down_action

    action = down_action(_key(lab), instance=instance, volumes=volumes)
    finish(run_on_inventory(f"down {lab}", inventory, action, limit=limit, parallel=parallel,
                            only_failed=only_failed, json_out=json_out))


def fleet_status(
    inventory: str, lab: str | None, *, instance: str | None, limit: Sequence[str] | None,
    parallel: int | None, only_failed: bool, json_out: bool,
) -> None:
    from provisioner.targets.actions import status_action

    action = status_action(_key(lab) if lab else None, instance=instance)
    finish(run_on_inventory(f"status {lab or ''}".strip(), inventory, action, limit=limit,
                            parallel=parallel, only_failed=only_failed, json_out=json_out))


def fleet_plan(
    inventory: str, lab: str, *, sets: Sequence[str] | None, instance: str, allow_unsafe: bool,
    limit: Sequence[str] | None, parallel: int | None, only_failed: bool, json_out: bool,
    refuse_no_gpu: bool = False,
) -> None:
    from provisioner.targets.actions import plan_action

    action = plan_action(_spec(lab), params=parse_sets(sets), instance=instance,
                         allow_unsafe=allow_unsafe, refuse_no_gpu=refuse_no_gpu)
    finish(run_on_inventory(f"plan {lab}", inventory, action, limit=limit, parallel=parallel,
                            only_failed=only_failed, json_out=json_out))


def fleet_check(
    inventory: str, lab: str, *, sets: Sequence[str] | None, instance: str,
    stages: Sequence[str], only: Sequence[str], reports: Sequence[Path],
    limit: Sequence[str] | None, parallel: int | None, only_failed: bool, json_out: bool,
) -> None:
    """Checks on every host; ``reports`` (.html/.json/.csv) get the class report."""
    from provisioner.report.class_report import FORMATS, build_report
    from provisioner.targets.actions import check_action, load_lab_for_host

    for path in reports:
        if path.suffix.lower() not in FORMATS:
            raise UserInputError(f"--report {path}: name the file .html, .json or .csv")
    spec = _spec(lab)
    action = check_action(spec, params=parse_sets(sets), instance=instance, stages=stages,
                          only=only)
    result = run_on_inventory(f"check {lab}", inventory, action, limit=limit,
                              parallel=parallel, only_failed=only_failed, json_out=json_out)
    if result is None:
        return
    inv = load_inventory(inventory)
    learners = {h.name: str(h.vars.get("learner", h.name)) for h in inv.hosts}
    # column order from the spec as the first host renders it (checks may use host vars)
    first = inv.hosts[0]
    the_lab = load_lab_for_host(spec, first, params=parse_sets(sets), instance=instance)
    report = build_report(the_lab.key, the_lab.title, result.outcomes, learners,
                          checks=the_lab.checks)
    for path in reports:
        report.write(path)
        print(f"wrote the class report {path}", file=sys.stderr)
    finish(result)
    failing = [r.learner for r in report.rows if r.status == "graded" and r.score < r.total]
    if failing:
        raise FleetFailed(f"checks fail for {len(failing)} learner(s): {', '.join(failing)}")


# -- doctor --------------------------------------------------------------------------------------


def _doctor_reports(result: FleetResult) -> list[Any]:
    from provisioner.targets.doctor import DoctorReport

    reports = []
    for o in result.outcomes:
        found = getattr(o.result, "result", None)
        if isinstance(found, DoctorReport):
            reports.append(found)
            continue
        bad = DoctorReport(o.host)
        first = o.message.splitlines()[0] if o.message else o.status
        bad.add("engine", "fail", first)
        reports.append(bad)
    return reports


def doctor(
    lab: str | None, *, host: str | None, inventory: str | None, sets: Sequence[str] | None,
    instance: str, allow_unsafe: bool, limit: Sequence[str] | None, parallel: int | None,
    only_failed: bool, json_out: bool,
) -> None:
    from provisioner.targets.doctor import DoctorReport, diagnose, render_table

    spec = _spec(lab) if lab else None
    params = parse_sets(sets)
    if inventory:
        from provisioner.targets.actions import doctor_action

        action = doctor_action(spec, params=params, instance=instance, allow_unsafe=allow_unsafe)
        result = run_on_inventory(
            f"doctor {lab or ''}".strip(), inventory, action, limit=limit, parallel=parallel,
            only_failed=only_failed, json_out=json_out, summary=False,
        )
        if result is None:
            return
        if not json_out:
            render_table(_doctor_reports(result))
        finish(result)
        return
    import labspec
    from provisioner.engine.connect import connect
    from provisioner.engine.ssh import ssh_session_of

    the_lab = labspec.load_lab(spec, params=params, allow_unsafe=allow_unsafe) if spec else None
    try:
        engine = connect(host)
    except LabupError as e:
        report = DoctorReport(host or "local")
        report.add("engine", "fail", e.message + (f" (hint: {e.hint})" if e.hint else ""))
        _print_doctor([report], json_out)
        raise typer.Exit(e.exit_code) from e
    try:
        ssh = ssh_session_of(getattr(engine, "client", None)) if engine.url.startswith(
            "ssh://") else None
        report = diagnose(engine, the_lab, ssh=ssh, instance=instance)
    finally:
        engine.close()
    _print_doctor([report], json_out)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _print_doctor(reports: Sequence[Any], json_out: bool) -> None:
    from provisioner.targets.doctor import render_table

    if json_out:
        sys.stdout.write(json.dumps({"hosts": [r.as_dict() for r in reports]}, indent=2) + "\n")
    else:
        render_table(reports)


def register(app: typer.Typer) -> None:
    """Add ``doctor``."""

    @app.command("doctor")
    def doctor_cmd(
        lab: str | None = typer.Argument(
            None, help="Also check what this lab needs (images, GPUs, ports).", metavar="[LAB]"
        ),
        host: str | None = opt.HOST,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = LIMIT,
        parallel: int | None = HOSTS_PARALLEL,
        only_failed: bool = ONLY_FAILED,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
    ) -> None:
        """Is the engine (or every host with -i) ready? Version, disk, images, GPUs, ports.

        Changes nothing. Exit 0 when ready, 1 when something is missing, 3 without an engine.
        """
        doctor(lab, host=host, inventory=inventory, sets=sets, instance=instance or "default",
               allow_unsafe=allow_unsafe, limit=limit, parallel=parallel,
               only_failed=only_failed, json_out=json_out)


def documents(result: FleetResult) -> Mapping[str, Any]:
    """Per-host documents of a fleet run (what ``--json`` prints under each host)."""
    return {o.host: getattr(o.result, "document", None) for o in result.outcomes}
