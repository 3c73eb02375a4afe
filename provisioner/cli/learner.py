"""The learner's commands: ``labup hint LAB [CHECK]``, ``labup solve LAB [--to CHECK]`` and
``labup progress [--reset LAB]``. (``labup check --watch`` is in :mod:`provisioner.cli.check`.)

``hint`` and ``solve`` are actions of the one runner (``--host``, ``-i``); ``progress`` reads
this machine's learner state folder and contacts no engine. Exit codes: 0 done, 1 a solution
step failed (or its check still fails), 2 bad input, 3 no engine.
"""

from __future__ import annotations

import sys

import typer

from labspec.errors import EXIT_FAILED, UserInputError
from provisioner.cli import options as opt
from provisioner.cli.run import choose, run

TO = typer.Option(
    None, "--to", metavar="CHECK",
    help="Run the solution's steps up to the one that makes CHECK pass (default: every step).",
)
CHECK_ARG = typer.Argument(
    None, help="The check to get the next hint for (default: the first one failing).",
    metavar="CHECK",
)
RESET = typer.Option(
    None, "--reset", metavar="LAB",
    help="Forget LAB's progress (hints, solved marks, scores; all its instances unless "
    "--instance).",
)
CHECK_JOBS = typer.Option(16, "--check-jobs", min=1, max=256, help="Checks running at once.")


def register(app: typer.Typer) -> None:
    @app.command("hint")
    def hint_cmd(
        lab: str = opt.LAB_ARG,
        check: str | None = CHECK_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        check_jobs: int = CHECK_JOBS,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
    ) -> None:
        """Show the next hint level of a failing check (remembered per lab instance).

        Hints go from a nudge to the full command; each one seen is counted, and the lab's
        `points` may say what a hint costs. With -i, on every host (in each host's state)."""
        from provisioner.catalog.lab_source import LabSource
        from provisioner.targets.learner_actions import HintOptions, HintShown, hint_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        source = LabSource.resolve(lab, sets=sets, instance=instance, learner=learner,
                                   workspace=where.inventory is None)
        command = f"hint {lab}"
        targets = choose(where, command, source)
        if targets is None:
            return
        result = run(targets, hint_action(HintOptions(source, check, check_jobs)),
                     command=command, json_out=json_out, quiet=True)
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, HintShown)
        shown = done.value.hint
        if shown is None:
            print(f"{done.value.lab.key}: no task check fails, no hint needed")
            return
        if shown.passes:
            print(f"{shown.check} passes already: no hint needed")
            return
        print(f"{shown.check}: hint {shown.level}/{shown.levels}")
        print(f"  {shown.text}")
        if shown.cost:
            print(f"(the hints seen for {shown.check} cost {shown.cost:g} point(s) when it "
                  "passes)", file=sys.stderr)
        if shown.level >= shown.levels and shown.levels > 1:
            print("(that is the last level)", file=sys.stderr)

    @app.command("solve")
    def solve_cmd(
        lab: str = opt.LAB_ARG,
        to: str | None = TO,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        check_jobs: int = CHECK_JOBS,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
    ) -> None:
        """Run the reference solution up to an objective (--to CHECK), to catch up.

        Steps whose checks pass already are skipped; the checks a step makes pass are marked
        "solved by labup" in check, --json and the reports."""
        from provisioner.catalog.lab_source import LabSource
        from provisioner.report import render_table
        from provisioner.targets.learner_actions import Solved, SolveOptions, solve_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        source = LabSource.resolve(lab, sets=sets, instance=instance, learner=learner,
                                   workspace=where.inventory is None)
        if to is not None:  # a bad --to fails now, before any engine is contacted
            from provisioner.learner.solve import steps_to

            steps_to(source.load(), to)
        command = f"solve {lab}"
        targets = choose(where, command, source)
        if targets is None:
            return
        result = run(targets, solve_action(SolveOptions(source, to, check_jobs)),
                     command=command, json_out=json_out)
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, Solved)
        render_table(done.value.run, file=sys.stdout)

    @app.command("progress")
    def progress_cmd(
        json_out: bool = opt.JSON,
        reset: str | None = RESET,
        instance: str | None = opt.INSTANCE,
    ) -> None:
        """Your progress across the course: objectives passed, score, last check, hints used.

        Kept in your learner state folder (LABUP_STATE_DIR, else $XDG_STATE_HOME/labup, else
        ~/.local/state/labup)."""
        from provisioner.cli.catalog import catalog_labs, emit_json, table
        from provisioner.learner import progress
        from provisioner.learner.state import LocalStore

        store = LocalStore()
        if reset is not None:
            from labspec.catalog import resolve_lab_path, spec_key
            from labspec.templating import check_instance

            check_instance(instance)
            try:
                key = spec_key(resolve_lab_path(reset))
            except UserInputError:
                if reset.isdigit() or "/" in reset:
                    raise
                key = reset
            removed = store.remove(key, instance)
            if json_out:
                emit_json({"reset": key, "instances": removed})
            elif removed:
                print(f"{key}: progress forgotten ({', '.join(removed)})")
            else:
                print(f"{key}: nothing recorded", file=sys.stderr)
            return
        rows = progress.rows(catalog_labs(), store)
        doc = progress.document(rows, store)
        if json_out:
            emit_json(doc)
            return
        print(table(progress.text_rows(rows),
                    ["LAB", "TITLE", "PASSED", "SCORE", "LAST CHECKED", "HINTS", ""]),
              flush=True)
        print(f"{doc['passed']}/{doc['objectives']} objectives passed, {doc['complete']} of "
              f"{len(rows)} labs complete (state: {store.where})", file=sys.stderr)
        if doc["started"] == 0:
            print("nothing checked yet: `labup 1`, then `labup check 1`", file=sys.stderr)


__all__ = ["EXIT_FAILED", "register"]
