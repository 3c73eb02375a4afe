"""``labup doctor [LAB]``: is the engine (or every host of an inventory) ready? Changes nothing.

Exit 0 when ready, 1 when something is missing, 3 when no engine answers (one engine).
"""

from __future__ import annotations

import typer

from labspec.errors import EXIT_ENGINE, EXIT_FAILED
from provisioner.cli import options as opt
from provisioner.cli.run import choose, run


def register(app: typer.Typer) -> None:
    """Add ``doctor``."""

    @app.command("doctor")
    def doctor_cmd(
        lab: str | None = typer.Argument(
            None, help="Also check what this lab needs (images, GPUs, ports).", metavar="[LAB]",
            autocompletion=opt.complete_lab,
        ),
        host: str | None = opt.HOST,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        parallel: int | None = opt.PARALLEL,
        only_failed: bool = opt.ONLY_FAILED,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        json_out: bool = opt.JSON,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
    ) -> None:
        """Is the engine (or every host with -i) ready? Version, disk, images, GPUs, ports.

        Changes nothing. Exit 0 when ready, 1 when something is missing, 3 without an engine.
        """
        from provisioner.catalog.lab_source import LabSource
        from provisioner.targets.doctor import (
            DoctorOptions,
            doctor_action,
            render_table,
            reports_of,
        )
        from provisioner.targets.runner import emit_json, finish

        where = opt.where(host, inventory, limit, only_failed, parallel)
        source = None
        if lab is not None:
            source = LabSource.resolve(lab, sets=sets, instance=instance,
                                       allow_unsafe=allow_unsafe)
        command = f"doctor {lab or ''}".strip()
        targets = choose(where, command, source)
        if targets is None:
            return
        result = run(targets, doctor_action(DoctorOptions(source)), command=command,
                     json_out=json_out and targets.fleet, summary=False, raise_errors=False,
                     finish=False)
        reports = reports_of(result.outcomes)
        if json_out and not targets.fleet:
            emit_json({"hosts": [r.as_dict() for r in reports]})
        elif not json_out:
            render_table(reports)
        if targets.fleet:
            finish(result)
            return
        outcome = result.outcomes[0]
        if outcome.status == "unreachable":
            raise typer.Exit(outcome.exit_code or EXIT_ENGINE)
        if not outcome.ok:
            raise typer.Exit(EXIT_FAILED)
