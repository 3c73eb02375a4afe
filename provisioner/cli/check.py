"""``labup check LAB``: run a lab's checks and report (table, --json, --junit, --report).

On one engine: the table, or JSON, and the files asked for. With ``-i``: the same checks on
every host, a live line each, and ``--report`` writes the class report (.html, .json, .csv).
Exit codes: 0 when every check passes (or is skipped), 1 when any fails or is blocked (or a
host could not be checked), 2 for bad input (spec, arguments), 3 when no engine answers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labspec.errors import EXIT_FAILED, EXIT_OK, UserInputError
from provisioner.cli import options as opt
from provisioner.cli.run import choose, run

if TYPE_CHECKING:
    from labspec.model import Lab
    from provisioner.checks.results import CheckRun
    from provisioner.targets.check_action import CheckOptions
    from provisioner.targets.runner import FleetResult
    from provisioner.targets.select import Targets

STAGE = typer.Option(
    "all", "--stage", help="Which checks: env (environment), task (the learner's work) or all."
)
ONLY = typer.Option(
    None, "--only", help="Run only this check id (repeatable); needs come along.",
    autocompletion=opt.complete_check_id,
)
JUNIT = typer.Option(None, "--junit", help="Also write JUnit XML (for CI) to FILE.", metavar="FILE")
REPORT = typer.Option(
    None, "--report",
    help="Also write an HTML report to FILE; with -i the class report (.html, .json or .csv).",
    metavar="FILE",
)
CHECK_JOBS = typer.Option(16, "--check-jobs", min=1, max=256, help="Checks running at once.")
WATCH = typer.Option(
    False, "--watch", "-w",
    help="Keep the table on screen and check again whenever the lab changes (Ctrl-C stops).",
)
UNTIL_PASS = typer.Option(False, "--until-pass", help="With --watch: stop (exit 0) once all pass.")
INTERVAL = typer.Option(
    30.0, "--interval", min=1.0, help="With --watch: check again after this many seconds anyway.",
)


def write_outputs(
    run: CheckRun, *, json_out: bool, junit: Path | None, report: Path | None
) -> None:
    """Print the table (unless JSON went out already) and write the requested files."""
    from provisioner.report import render_table, write_html, write_junit

    if not json_out:
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


def class_report(
    result: FleetResult, targets: Targets, lab: Lab, reports: list[Path]
) -> list[str]:
    """Write the class report files; the learners whose checks do not all pass."""
    from provisioner.report.class_report import HostRun, build_report
    from provisioner.targets.check_action import Graded

    learners = {t.name: t.learner for t in targets.items}
    hosts = []
    for o in result.outcomes:
        graded = o.done.value if o.done is not None else None
        run = graded.run if isinstance(graded, Graded) else None
        hosts.append(HostRun(o.host, learners.get(o.host, o.host), run, o.status, o.message))
    report = build_report(lab.key, lab.title, hosts, checks=lab.checks)
    for path in reports:
        report.write(path)
        print(f"wrote the class report {path}", file=sys.stderr)
    return [r.learner for r in report.rows if r.status == "graded" and r.score < r.total]


def _watch(targets: Targets, options: CheckOptions, lab: str, *, json_out: bool,
           junit: Path | None, report: Path | None, until_pass: bool, interval: float) -> None:
    """``check --watch``: the watch loop as the action (so ``--host ssh://`` works), the files
    of the last run written at the end; exit 0 when the last run passed, else 1."""
    from provisioner.learner.watch import WatchOptions
    from provisioner.targets.check_action import Graded, wants_probes
    from provisioner.targets.learner_actions import WatchActionOptions, watch_action

    opts = WatchActionOptions(options, WatchOptions(until_pass, interval, json_lines=json_out))
    result = run(targets, watch_action(opts), command=f"check {lab} --watch", quiet=True,
                 probes=wants_probes(options.source, targets, options.stages, options.only))
    done = result.outcomes[0].done
    assert done is not None and isinstance(done.value, Graded)
    graded = done.value
    if not sys.stdout.isatty() and not json_out:
        write_outputs(graded.run, json_out=False, junit=junit, report=report)
    else:
        write_outputs(graded.run, json_out=True, junit=junit, report=report)
    raise typer.Exit(EXIT_OK if graded.run.ok else EXIT_FAILED)


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
        check_jobs: int = CHECK_JOBS,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
        learner: str | None = opt.LEARNER,
        watch: bool = WATCH,
        until_pass: bool = UNTIL_PASS,
        interval: float = INTERVAL,
    ) -> None:
        """Run the lab's checks on a running lab: pass / fail / blocked / skipped, hints, score.

        A check that still fails shows its next hint level. --watch keeps the table on screen
        and checks again on every change. With -i, on every host of the inventory, and
        --report writes the class report (with each learner's hints and variant)."""
        from provisioner.catalog.lab_source import LabSource
        from provisioner.report.class_report import FORMATS
        from provisioner.targets.check_action import (
            CheckOptions,
            Graded,
            check_action,
            stages_for,
            wants_probes,
        )
        from provisioner.targets.learner_state import OWN, READ_ONLY

        where = opt.where(host, inventory, limit, only_failed, parallel)
        stages = tuple(stages_for(stage))
        if where.inventory is not None:
            if junit is not None:
                raise UserInputError("--junit is for one engine; with -i use --report FILE")
            if report is not None and report.suffix.lower() not in FORMATS:
                raise UserInputError(f"--report {report}: name the file .html, .json or .csv")
            if watch:
                raise UserInputError("--watch is for one engine (a learner's terminal)",
                                     hint="for a classroom, rerun `labup check -i` or use the "
                                     "instructor's dashboard")
        if until_pass and not watch:
            raise UserInputError("--until-pass goes with --watch")
        source = LabSource.resolve(lab, sets=sets, instance=instance, learner=learner,
                                   workspace=where.inventory is None)
        targets = choose(where, f"check {lab}", source)
        if targets is None:
            return
        options = CheckOptions(source, stages, tuple(only or ()), check_jobs,
                               learner=READ_ONLY if targets.fleet else OWN)
        if watch:
            _watch(targets, options, lab, json_out=json_out, junit=junit, report=report,
                   until_pass=until_pass, interval=interval)
            return
        result = run(targets, check_action(options), command=f"check {lab}",
                     json_out=json_out, finish=False,
                     probes=wants_probes(source, targets, stages, tuple(only or ())))
        if targets.fleet:
            from provisioner.targets.prepare import render_for
            from provisioner.targets.runner import FleetFailed, finish

            first = render_for(source, targets.first)  # the report's columns
            failing = class_report(result, targets, first,
                                   [report] if report is not None else [])
            finish(result)
            if failing:
                raise FleetFailed(
                    f"checks fail for {len(failing)} learner(s): {', '.join(failing)}")
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, Graded)
        graded = done.value
        write_outputs(graded.run, json_out=json_out, junit=junit, report=report)
        if graded.not_up and not graded.run.ok:
            print(f"labup: {graded.not_up}", file=sys.stderr)
        raise typer.Exit(EXIT_OK if graded.run.ok else EXIT_FAILED)
