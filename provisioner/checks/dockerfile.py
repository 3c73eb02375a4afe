"""``dockerfile``: one lint rule over a Dockerfile of the lab folder, per check.

```yaml
- id: pinned-base
  dockerfile: {path: app/Dockerfile, rule: pinned-base}
  hint: Use a tag such as python:3.11-slim, never latest.
```
Rules: ``pinned-base``, ``user``, ``no-secrets-in-env``, ``apt-lists-cleaned``,
``deps-before-source``, ``dockerignore``. Each is its own check so each has its own hint
and points. Secret values are never printed, only the variable names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provisioner.checks.context import CheckContext, CheckError
from provisioner.checks.dockerfile_parser import (
    Dockerfile,
    Instruction,
    parse_dockerfile,
    unpinned_bases,
)
from provisioner.checks.results import Outcome, failed, passed

SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)"
)
SAFE_SECRET_SUFFIXES = ("_FILE", "_PATH", "_DIR")
APT_INSTALL = re.compile(r"\bapt(-get)?\s+(?:[^;&|]*\s)?install\b")
APT_CLEAN = re.compile(r"\brm\s+(-[a-zA-Z]+\s+)*[^;&|]*/var/lib/apt/lists")
DEPS_INSTALL = re.compile(
    r"\b(pip3?\s+install|python3?\s+-m\s+pip\s+install|uv\s+(pip\s+install|sync)|poetry\s+install"
    r"|pipenv\s+install|npm\s+(ci|install|i)\b|yarn(\s+install)?\b|pnpm\s+install"
    r"|bundle\s+install|go\s+mod\s+download|composer\s+install|cargo\s+fetch|mvn\b.*dependency)"
)
DEPENDENCY_FILES = re.compile(
    r"^(requirements[\w.-]*\.(txt|in)|constraints[\w.-]*\.txt|pyproject\.toml|poetry\.lock|"
    r"uv\.lock|setup\.(py|cfg)|Pipfile(\.lock)?|package(-lock)?\.json|yarn\.lock|"
    r"pnpm-lock\.yaml|npm-shrinkwrap\.json|go\.(mod|sum)|Gemfile(\.lock)?|composer\.(json|lock)|"
    r"Cargo\.(toml|lock)|pom\.xml|build\.gradle(\.kts)?|[\w.-]+\.csproj)$"
)
RULES = (
    "pinned-base",
    "user",
    "no-secrets-in-env",
    "apt-lists-cleaned",
    "deps-before-source",
    "dockerignore",
)


def _inside(folder: Path, relative: str) -> Path:
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise CheckError(f"{relative} is outside the lab folder")
    return path


def dockerfile_path(ctx: CheckContext, spec: Mapping[str, Any]) -> Path:
    """The Dockerfile a check means: ``path`` in the lab folder, or the build of ``image``."""
    if spec.get("image"):
        key = str(spec["image"])
        for image in ctx.lab.images:
            if image.name == key and image.build is not None:
                return _inside(ctx.lab.folder, str(image.build.context / image.build.dockerfile))
        raise CheckError(f"image {key!r} is not built by this lab: give `path` to its Dockerfile")
    return _inside(ctx.lab.folder, str(spec.get("path", "Dockerfile")))


def load(path: Path, shown: str | None = None) -> Dockerfile:
    """``shown``: how messages name the file (relative to the lab folder)."""
    try:
        return parse_dockerfile(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckError(f"no Dockerfile at {shown or path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise CheckError(f"cannot read {path}: {e}") from e


def _pinned_base(df: Dockerfile, path: Path) -> Outcome:
    bad = unpinned_bases(df)
    if not df.stages:
        return failed(f"{path.name} has no FROM")
    if bad:
        shown = ", ".join(f"line {line}: FROM {ref}" for line, ref in bad)
        return failed(f"base image not pinned to a tag ({shown})")
    return passed("every base image is pinned: " + ", ".join(s.base for s in df.stages))


def _user(df: Dockerfile, path: Path) -> Outcome:
    final = df.final
    if final is None:
        return failed(f"{path.name} has no FROM")
    users = [i for i in final.instructions if i.keyword == "USER"]
    if not users:
        return failed(f"no USER in the final stage (FROM line {final.from_.line}): it runs as root")
    last = users[-1]
    name = (last.words or [""])[0].split(":")[0]
    if name in ("root", "0"):
        return failed(f"line {last.line}: USER {name} runs as root")
    return passed(f"line {last.line}: USER {last.args}")


def _assignments(ins: Instruction) -> list[str]:
    """Variable names given a non-empty value by ENV/ARG (values are never returned)."""
    try:
        words = shlex.split(ins.args)
    except ValueError:
        words = ins.args.split()
    names: list[str] = []
    if ins.keyword == "ENV" and words and "=" not in words[0]:
        return [words[0]] if len(words) > 1 else []  # legacy `ENV KEY value`
    for word in words:
        key, eq, value = word.partition("=")
        if eq and value:
            names.append(key)
    return names


def _no_secrets(df: Dockerfile, path: Path) -> Outcome:
    found = []
    for ins in df.instructions:
        if ins.keyword not in ("ENV", "ARG"):
            continue
        for name in _assignments(ins):
            if SECRET_NAME.search(name) and not name.upper().endswith(SAFE_SECRET_SUFFIXES):
                found.append(f"line {ins.line}: {ins.keyword} {name}")
    if found:
        return failed(
            "secret baked into the image (value not shown): "
            + ", ".join(found)
            + "; anyone with the image can read it (docker history / inspect)"
        )
    return passed("no secret-looking ENV or ARG values")


def _apt_lists(df: Dockerfile, path: Path) -> Outcome:
    installs = [i for i in df.instructions if i.keyword == "RUN" and APT_INSTALL.search(i.args)]
    bad = [i for i in installs if not APT_CLEAN.search(i.args)]
    if bad:
        lines = ", ".join(str(i.line) for i in bad)
        return failed(
            f"apt install without `rm -rf /var/lib/apt/lists/*` in the same RUN (line {lines}): "
            "the package lists stay in the layer"
        )
    if not installs:
        return passed("no apt install")
    return passed(f"apt lists cleaned in the same RUN ({len(installs)} install(s))")


def _copy_sources(ins: Instruction) -> list[str]:
    words = ins.words
    return words[:-1] if len(words) > 1 else []


def _is_dependency_file(source: str) -> bool:
    name = source.rstrip("/").rsplit("/", 1)[-1]
    return bool(DEPENDENCY_FILES.match(name))


def _deps_before_source(df: Dockerfile, path: Path) -> Outcome:
    for stage in df.stages:
        installs = [
            i for i in stage.instructions if i.keyword == "RUN" and DEPS_INSTALL.search(i.args)
        ]
        if not installs:
            continue
        install = installs[0]
        before = [
            i
            for i in stage.instructions
            if i.keyword in ("COPY", "ADD") and i.line < install.line and "from" not in i.flags
        ]
        for copy in before:
            sources = _copy_sources(copy)
            if any(not _is_dependency_file(s) for s in sources):
                return failed(
                    f"line {copy.line}: {copy.keyword} {' '.join(copy.words)} comes before the "
                    f"dependency install on line {install.line}: every source change reinstalls "
                    "the dependencies"
                )
        after = [
            i
            for i in stage.instructions
            if i.keyword in ("COPY", "ADD") and i.line > install.line and "from" not in i.flags
        ]
        deps = [s for c in before for s in _copy_sources(c)]
        shown = ", ".join(deps) or "none"
        facts = f"dependency files ({shown}) before the install on line {install.line}"
        if after:
            facts += f", source after (line {after[0].line})"
        return passed(facts)
    return passed("no dependency install step found")


def _dockerignore(df: Dockerfile, path: Path, context: Path, shown: str) -> Outcome:
    candidates = [context / ".dockerignore", path.with_name(path.name + ".dockerignore")]
    for candidate in candidates:
        if candidate.is_file():
            entries = [
                line.strip()
                for line in candidate.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip() and not line.strip().startswith("#")
            ]
            if not entries:
                return failed(f"{candidate.name} in {shown} is empty")
            return passed(f"{candidate.name} with {len(entries)} pattern(s)")
    return failed(f"no .dockerignore in the build context {shown}")


Rule = Callable[[Dockerfile, Path], Outcome]
_RULES: dict[str, Rule] = {
    "pinned-base": _pinned_base,
    "user": _user,
    "no-secrets-in-env": _no_secrets,
    "apt-lists-cleaned": _apt_lists,
    "deps-before-source": _deps_before_source,
}


def check_dockerfile(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    rule = str(spec["rule"])
    path = dockerfile_path(ctx, spec)
    relative = path.relative_to(ctx.lab.folder.resolve())
    if rule == "dockerignore":
        context = (
            _inside(ctx.lab.folder, str(spec["context"])) if spec.get("context") else path.parent
        )
        shown = context.resolve().relative_to(ctx.lab.folder.resolve()).as_posix()
        shown = "the lab folder" if shown in ("", ".") else shown
        outcome = _dockerignore(
            load(path, str(relative)) if path.is_file() else Dockerfile([], {}, []), path,
            context, shown,
        )
    elif rule in _RULES:
        outcome = _RULES[rule](load(path, str(relative)), path)
    else:
        raise CheckError(f"unknown Dockerfile rule {rule!r}; known: {', '.join(RULES)}")
    return type(outcome)(outcome.status, f"{relative}: {outcome.message}")
