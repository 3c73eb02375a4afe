"""``labup lint LAB|DOCKERFILE``: labup's Dockerfile rules, with hadolint beside them.

For a lab: every Dockerfile it builds an image from or names in a check, each with every
rule (the lab's own check hint where it grades the rule). For a file (or a folder holding a
Dockerfile and no lab spec): that file, its folder as the build context. hadolint's findings
follow as a second opinion when it is installed; its absence or its parse failure is a note.
Exit 0 when no labup rule fails, 1 when one does, 2 for bad input. hadolint never changes it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labspec.errors import EXIT_FAILED
from provisioner.cli import options as opt

if TYPE_CHECKING:
    from provisioner.checks.lint import FileLint, Target

LINT_ARG = typer.Argument(
    ...,
    help="Lab number, lab folder or spec file; or a Dockerfile (or a folder with one).",
    metavar="LAB|DOCKERFILE",
    autocompletion=opt.complete_lab,
)
HADOLINT = typer.Option(
    True, "--hadolint/--no-hadolint", help="Show hadolint's findings too, when it is installed."
)


def _targets(ref: str, sets: list[str] | None) -> tuple[str, list[Target]]:
    """What LAB|DOCKERFILE names: (a title, the files to lint)."""
    from labspec.catalog import SPEC_FILENAME
    from provisioner.catalog.lab_source import LabSource
    from provisioner.checks.lint import file_target, lab_targets

    path = Path(ref).expanduser()
    if not ref.isdigit():
        if path.is_file() and path.suffix.lower() not in (".yaml", ".yml"):
            return str(path), [file_target(path)]
        plain = path.is_dir() and not (path / SPEC_FILENAME).is_file()
        if plain and (path / "Dockerfile").is_file():
            return str(path / "Dockerfile"), [file_target(path / "Dockerfile")]
    lab = LabSource.resolve(ref, sets=sets, workspace=True).load()
    return f"{lab.key}: {lab.title}", lab_targets(lab)


def _near(path: Path) -> str:
    """``path`` relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def _render(title: str, parser: str, results: list[FileLint]) -> None:
    out = sys.stdout
    print(f"{title} (parser: {parser})", file=out)
    if not results:
        print("  builds no image and names no Dockerfile: nothing to lint", file=out)
    for result in results:
        target = result.target
        print(f"\n{target.shown}  (build context {_near(target.context)})", file=out)
        if result.error:
            print(f"  FAIL    {result.error}", file=out)
            hints = dict.fromkeys(h for h in target.checks.values())
            for check_id, hint in hints:
                if hint:
                    print(f"  {'':7} hint ({check_id}): {hint}", file=out)
        for rule in result.rules:
            graded = f"  [check {rule.check}]" if rule.check else ""
            message = rule.message
            if rule.status == "skipped" and parser.endswith(message.removeprefix("not checked: ")):
                message = "not checked: buildkit's parser is not installed (see the first line)"
            print(f"  {rule.status.upper():7} {rule.rule:19} {message}{graded}", file=out)
            if rule.status == "fail":
                print(f"  {'':7} {'':19} hint: {rule.hint}", file=out)
        second = result.hadolint
        if second is None:
            continue
        name = f"hadolint {second.version}" if second.version else "hadolint"
        if second.status != "ok":
            print(f"  {name}: {second.note}", file=out)
            continue
        print(f"  {name} (a second opinion, not graded): "
              f"{len(second.findings) or 'no'} finding(s)", file=out)
        for f in second.findings:
            print(f"    line {f.line:<4} {f.code:7} {f.level:8} {f.message}", file=out)
    failing = sum(1 for r in results for rule in r.rules if rule.status == "fail")
    failing += sum(1 for r in results if r.error)
    files = f"{len(results)} Dockerfile{'s' if len(results) != 1 else ''}"
    verdict = f"{failing} problem(s) found by labup" if failing else "every labup rule passes"
    print(f"\n{files}: {verdict}", file=out)


def lint_command(
    target: str = LINT_ARG,
    sets: list[str] | None = opt.SET,
    hadolint: bool = HADOLINT,
    json_out: bool = opt.JSON,
) -> None:
    """Lint Dockerfiles: labup's rules (Docker's own parser), hadolint's findings beside them.

    Exit 0 when every labup rule passes (or is skipped), 1 when one fails, 2 for bad input."""
    from provisioner.checks.lint import lint_file, parser_version

    title, targets = _targets(target, sets)
    results = [lint_file(t, hadolint=hadolint) for t in targets]
    parser = parser_version()
    ok = all(r.ok for r in results)
    if json_out:
        document = {"version": 1, "target": title, "parser": parser, "ok": ok,
                    "files": [r.to_dict() for r in results]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _render(title, parser, results)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``lint``."""
    app.command("lint")(lint_command)
