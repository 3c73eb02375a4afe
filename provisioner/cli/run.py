"""How every command runs its action: choose the targets, run them, end a fleet run's exit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.catalog.lab_source import LabSource
    from provisioner.targets.runner import Action, FleetResult
    from provisioner.targets.select import TargetOptions, Targets


def choose(
    where: TargetOptions, command: str, source: LabSource | None = None
) -> Targets | None:
    """The targets for ``command``; None when ``--only-failed`` finds nothing to rerun. With a
    lab ``source``, the spec is rendered for the first target now: a bad spec fails once,
    before any engine is contacted."""
    from provisioner.targets.select import choose_targets

    targets = choose_targets(where, command)
    if targets is not None and source is not None:
        from provisioner.targets.prepare import render_for

        render_for(source, targets.first)
    return targets


def run(
    targets: Targets,
    action: Action[Any],
    *,
    command: str,
    json_out: bool = False,
    quiet: bool = False,
    summary: bool = True,
    raise_errors: bool = True,
    finish: bool = True,
    probes: bool = False,
) -> FleetResult:
    """Run ``action`` on ``targets`` (see :func:`provisioner.targets.runner.run_targets`); a
    fleet run with failed hosts then exits 1 naming them, unless ``finish=False``."""
    from provisioner.targets import runner

    result = runner.run_targets(targets, action, command=command, json_out=json_out,
                                quiet=quiet, summary=summary, raise_errors=raise_errors,
                                probes=probes)
    if finish and targets.fleet:
        runner.finish(result)
    return result
