"""Spec commands: ``labup validate PATH|ID`` and ``labup schema [KIND]``.

``validate`` prints each problem as ``FILE:LINE:COL: $.path: message`` (plus a hint line) and
exits 2, or prints ``FILE: valid (N containers, M checks)`` and exits 0. With ``--json`` it
prints a JSON list of problems (``[]`` when valid) and keeps the same exit codes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from labspec.errors import EXIT_BAD_INPUT, LabupError, Problem, SpecError, UserInputError
from provisioner.catalog.lab_source import parse_sets
from provisioner.cli import options as opt

SCHEMA_KINDS = ("lab", "inventory", "checks", "class")




def _relative(path: Path) -> Path:
    """The spec path as problems show it: relative to the current folder when inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _problems_json(problems: list[Problem]) -> str:
    return json.dumps([asdict(p) for p in problems], indent=2)


def validate_command(
    lab: str = opt.LAB_ARG,
    sets: list[str] | None = opt.SET,
    allow_unsafe: bool = opt.ALLOW_UNSAFE,
    json_out: bool = opt.JSON,
) -> None:
    """Check a lab spec: YAML, schema, templates and semantic rules. Exit 0 valid, 2 invalid."""
    from labspec.build import check_instructions, load_lab
    from labspec.catalog import resolve_lab_path

    try:
        path = _relative(resolve_lab_path(lab, workspace=True))
        spec = load_lab(path, params=parse_sets(sets), allow_unsafe=allow_unsafe)
        problems = check_instructions(spec)
        if problems:
            raise SpecError(problems)
    except SpecError as e:
        if json_out:
            print(_problems_json(list(e.problems)))
        else:
            for problem in e.problems:
                print(problem)
            count = len(e.problems)
            print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except LabupError as e:
        if not json_out:
            raise
        print(_problems_json([Problem(lab, 0, 0, "$", e.message, e.hint)]))
        raise typer.Exit(e.exit_code) from None
    if json_out:
        print("[]")
        return
    containers = len(spec.containers)
    checks = len(spec.checks)
    print(
        f"{path}: valid ({containers} container{'s' if containers != 1 else ''}, "
        f"{checks} check{'s' if checks != 1 else ''})"
    )


def schema_command(
    kind: str = typer.Argument(
        "lab", help="Which schema: lab, inventory, checks or class.",
        metavar="[lab|inventory|checks|class]",
    ),
) -> None:
    """Print a JSON Schema (Draft 2020-12) of labup's documents, for editors and tools."""
    if kind not in SCHEMA_KINDS:
        raise UserInputError(f"unknown schema {kind!r}", hint=f"one of: {', '.join(SCHEMA_KINDS)}")
    from labspec.resources import schemas_dir

    text = (schemas_dir() / f"{kind}.schema.json").read_text(encoding="utf-8")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def register(app: typer.Typer) -> None:
    """Add validate and schema."""
    app.command("validate")(validate_command)
    app.command("schema")(schema_command)
