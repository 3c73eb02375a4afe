"""``labup lint``: every labup Dockerfile rule on a lab's Dockerfiles (or one file), with
hadolint's findings beside them as a second opinion.

labup's rules (``dockerfile.py``, read by buildkit's parser) give the verdict; hadolint
(``hadolint.py``) is shown, never counted. No engine is needed: only files are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from provisioner.checks.context import CheckError
from provisioner.checks.dockerfile import RULE_HINTS, RULES, apply_rule, parsed
from provisioner.checks.dockerfile_parser import parser_version
from provisioner.checks.hadolint import HadolintResult, run_hadolint

if TYPE_CHECKING:
    from labspec.model import Lab


class RuleResult(NamedTuple):
    rule: str
    status: str  # pass, fail, skipped
    message: str
    hint: str  # the lab check's hint when the lab grades this rule, else labup's advice
    check: str  # the id of the lab's check on this rule and file, or ""


class Target(NamedTuple):
    """One Dockerfile to lint and the build context its ``.dockerignore`` belongs to."""

    path: Path
    context: Path
    shown: str  # the path as reports show it (relative to the lab folder when inside)
    checks: dict[str, tuple[str, str]]  # rule -> (id, hint) of the lab's checks on this file


class FileLint(NamedTuple):
    target: Target
    rules: tuple[RuleResult, ...]
    hadolint: HadolintResult | None  # None: not asked for (--no-hadolint) or no file
    error: str = ""  # the file cannot be read at all (missing, not UTF-8): no rule ran

    @property
    def ok(self) -> bool:
        return not self.error and all(r.status != "fail" for r in self.rules)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.target.shown,
            "context": str(self.target.context),
            "ok": self.ok,
            "error": self.error,
            "labup": [r._asdict() for r in self.rules],
            "hadolint": self.hadolint.to_dict() if self.hadolint is not None else None,
        }


def lint_file(target: Target, *, hadolint: bool = True) -> FileLint:
    """Every labup rule on ``target`` (the file parsed once), then hadolint when asked."""
    results = []
    try:
        df = parsed(target.path)
    except CheckError as e:  # no such file, not UTF-8
        return FileLint(target, (), None, e.message)
    for rule in RULES:
        outcome = apply_rule(rule, target.path, target.context, df)
        results.append(RuleResult(rule, outcome.status, outcome.message, *_hint(target, rule)))
    second = run_hadolint(target.path) if hadolint else None
    return FileLint(target, tuple(results), second)


def _hint(target: Target, rule: str) -> tuple[str, str]:
    check_id, hint = target.checks.get(rule, ("", ""))
    return hint or RULE_HINTS[rule], check_id


def _shown(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder.resolve())) or "."
    except ValueError:
        return str(path)


def file_target(path: Path) -> Target:
    """A Dockerfile named on the command line; its folder is the build context."""
    path = path.resolve()
    return Target(path, path.parent, _shown(path, Path.cwd()), {})


def lab_targets(lab: Lab) -> list[Target]:
    """The Dockerfiles a lab builds its images from, those its checks name, and the others in
    its folder (a Compose file builds them), once each; the reference solution's are left out."""
    folder = lab.folder.resolve()
    found: dict[Path, Target] = {}

    def add(path: Path, context: Path) -> Target:
        path = path.resolve()
        if path not in found:
            found[path] = Target(path, context.resolve(), _shown(path, folder), {})
        return found[path]

    for image in lab.images:
        if image.build is not None:
            add(image.build.context / image.build.dockerfile, image.build.context)
    for check in lab.checks:
        spec = check.spec
        if check.type == "dockerfile":
            path = _check_path(lab, spec)
            if path is None:
                continue
            context = folder / str(spec["context"]) if spec.get("context") else path.parent
            target = add(path, context)
            target.checks.setdefault(str(spec["rule"]), (check.id, check.hint))
        elif check.type == "image" and spec.get("dockerfile"):
            add(folder / str(spec["dockerfile"]), (folder / str(spec["dockerfile"])).parent)
    for path in _dockerfiles_in(folder, _solution_folders(lab)):  # built by compose, by hand
        add(path, path.parent)
    return list(found.values())


def _solution_folders(lab: Lab) -> set[Path]:
    """The reference solution's folders: its Dockerfiles are not the learner's work."""
    out = {lab.folder.resolve() / "solution"}
    script = lab.solution.script if lab.solution is not None else None
    if script is not None and script.resolve().parent != lab.folder.resolve():
        out.add(script.resolve().parent)
    return out


def _dockerfiles_in(folder: Path, skip: set[Path]) -> list[Path]:
    """``Dockerfile``, ``Dockerfile.NAME`` and ``NAME.Dockerfile`` files under ``folder``."""
    out = []
    for path in sorted(folder.rglob("*Dockerfile*")):
        name = path.name
        named = name == "Dockerfile" or name.endswith(".Dockerfile")
        named = named or (name.startswith("Dockerfile.") and not name.endswith(".dockerignore"))
        parts = path.relative_to(folder).parts
        hidden = any(p.startswith(".") or p == "__pycache__" for p in parts)
        skipped = any(path.is_relative_to(s) for s in skip)
        if named and not hidden and not skipped and path.is_file():
            out.append(path)
    return out


def _check_path(lab: Lab, spec: Mapping[str, Any]) -> Path | None:
    if spec.get("image"):
        for image in lab.images:
            if image.name == spec["image"] and image.build is not None:
                return image.build.context / image.build.dockerfile
        return None
    return lab.folder / str(spec.get("path", "Dockerfile"))


__all__ = ["FileLint", "RuleResult", "Target", "file_target", "lab_targets", "lint_file",
           "parser_version"]
