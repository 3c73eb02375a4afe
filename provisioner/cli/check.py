"""``labup check LAB``: run a lab's checks and report (table, --json, --junit, --report).

Exit codes: 0 when every check passes (or is skipped), 1 when any fails or is blocked,
2 for bad input (spec, arguments), 3 when no engine answers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labspec.errors import EXIT_FAILED, EXIT_OK, UserInputError
from provisioner.cli import options as opt
from provisioner.cli.options import parse_sets

if TYPE_CHECKING:
    from labspec.model import Lab
    from provisioner.checks.results import CheckRun
    from provisioner.engine.protocol import Engine

STAGES = {"env": ("env",), "task": ("task",), "all": ("env", "task")}

STAGE = typer.Option(
    "all", "--stage", help="Which checks: env (environment), task (the learner's work) or all."
)
ONLY = typer.Option(None, "--only", help="Run only this check id (repeatable); needs come along.")
JUNIT = typer.Option(None, "--junit", help="Also write JUnit XML (for CI) to FILE.", metavar="FILE")
REPORT = typer.Option(
    None, "--report", help="Also write a self-contained HTML report to FILE.", metavar="FILE.html"
)
PARALLEL = typer.Option(
    None,
    "--parallel",
    min=1,
    max=256,
    help="Checks running at once (default 16); with -i, hosts driven at once.",
)
LIMIT = typer.Option(
    None, "--limit", "-l", help="With -i: only these hosts or groups (names, groups or globs)."
)
ONLY_FAILED = typer.Option(
    False, "--only-failed", help="With -i: only the hosts that failed in the last fleet run."
)




def load(lab: str, sets: list[str] | None, instance: str) -> Lab:
    import labspec
    from labspec.catalog import resolve_lab_path

    return labspec.load_lab(
        resolve_lab_path(lab, workspace=True), params=parse_sets(sets), instance=instance
    )


def write_outputs(
    run: CheckRun, *, json_out: bool, junit: Path | None, report: Path | None
) -> None:
    """Print the table (or JSON on stdout) and write the requested files."""
    from provisioner.report import render_table, to_json, write_html, write_junit

    if json_out:
        sys.stdout.write(json.dumps(to_json(run), indent=2) + "\n")
    else:
        render_table(run, file=sys.stdout)
    for path, writer in ((junit, "junit"), (report, "html")):
        if path is None:
            continue
        try:
            if writer == "junit":
                write_junit(run, path)
            else:
                write_html({run.host: run}, path)
        except OSError as e:
            raise UserInputError(f"cannot write {path}: {e.strerror or e}") from e
        if not json_out:
            print(f"wrote {path}", file=sys.stderr)


def lab_not_up(engine: Engine, lab: Lab, instance: str) -> str:
    """A note when none of the lab's containers exists (the checks will all fail), else ""."""
    from provisioner.engine.labels import resource_name

    names = [resource_name(lab.key, instance, c.name) for c in lab.containers]
    if not names or any(engine.inspect_container(n) is not None for n in names):
        return ""
    where = "" if instance == "default" else f" --instance {instance}"
    return (
        f"{lab.key} is not up on {engine.host_label} (none of its containers exists); "
        f"bring it up first: labup up {lab.id if lab.id is not None else lab.path}{where}"
    )


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        stage: str = STAGE,
        only: list[str] | None = ONLY,
        json_out: bool = opt.JSON,
        junit: Path | None = JUNIT,
        report: Path | None = REPORT,
        parallel: int | None = PARALLEL,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = LIMIT,
        only_failed: bool = ONLY_FAILED,
    ) -> None:
        """Run the lab's checks on a running lab: pass / fail / blocked / skipped, hints, score.

        With -i, on every host of the inventory, and --report writes the class report."""
        from provisioner.checks import run_checks
        from provisioner.engine.connect import connect

        if stage not in STAGES:
            raise UserInputError(f"--stage {stage!r}: expected env, task or all")
        name = instance or "default"
        if inventory:
            if junit is not None:
                raise UserInputError("--junit is for one engine; with -i use --report FILE")
            from provisioner.cli.fleet import fleet_check

            fleet_check(
                inventory,
                lab,
                sets=sets,
                instance=name,
                stages=STAGES[stage],
                only=tuple(only or ()),
                reports=[report] if report is not None else [],
                limit=limit,
                parallel=parallel,
                only_failed=only_failed,
                json_out=json_out,
            )
            return
        if limit or only_failed:
            raise UserInputError("--limit and --only-failed go with -i INVENTORY")
        the_lab = load(lab, sets, name)
        engine = connect(host)
        try:
            not_up = lab_not_up(engine, the_lab, name)
            if not_up:  # nothing will settle: answer now instead of waiting out every `wait`
                quick = tuple(dataclasses.replace(c, wait=0.0) for c in the_lab.checks)
                the_lab = dataclasses.replace(the_lab, checks=quick)
            run = run_checks(
                engine,
                the_lab,
                instance=name,
                stages=STAGES[stage],
                parallel=parallel or 16,
                only=tuple(only or ()),
            )
        finally:
            engine.close()
        write_outputs(run, json_out=json_out, junit=junit, report=report)
        if not_up and not run.ok:
            print(f"labup: {not_up}", file=sys.stderr)
        raise typer.Exit(EXIT_OK if run.ok else EXIT_FAILED)
