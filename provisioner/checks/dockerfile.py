"""``dockerfile``: one lint rule over a Dockerfile of the lab folder, per check.

```yaml
- id: pinned-base
  dockerfile: {path: app/Dockerfile, rule: pinned-base}
  hint: Use a tag such as python:3.11-slim, never latest.
```
Rules: ``pinned-base``, ``user``, ``no-secrets-in-env``, ``apt-lists-cleaned``,
``deps-before-source``, ``dockerignore``. Each is its own check so each has its own hint
and points. Secret values are never printed, only the variable names. The file is read by
buildkit's own parser (``dockerfile_parser``); a file ``docker build`` would refuse fails
every rule with buildkit's reason, and where that parser is not installed the rules are
skipped with the reason (``dockerignore`` needs no parser and always runs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provisioner.checks.context import CheckContext, CheckError
from provisioner.checks.dockerfile_parser import (
    Dockerfile,
    DockerfileError,
    Instruction,
    ParserUnavailable,
    assignments,
    parse_dockerfile,
    unpinned_bases,
)
from provisioner.checks.results import Outcome, failed, passed, skipped

SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)"
)
SAFE_SECRET_SUFFIXES = ("_FILE", "_PATH", "_DIR")
APT_INSTALL = re.compile(r"\bapt(-get)?\s+(?:[^;&|]*\s)?install\b")
APT_CLEAN = re.compile(
    r"\brm\s+(-[a-zA-Z]+\s+)*[^;&|]*/var/lib/apt/lists"
    r"|\bapt(-get)?\s+(?:[^;&|]*\s)?dist-clean\b"  # apt >= 2.7 removes the lists too
)
APT_LISTS = "/var/lib/apt/lists"
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
# What to do about a failing rule, for `labup lint` (a lab's check has its own hint).
RULE_HINTS = {
    "pinned-base": "FROM a tag (python:3.11-slim) or a digest, never latest or no tag",
    "user": "create a user and end the final stage with USER it (a name or a UID)",
    "no-secrets-in-env": "pass secrets at run time (docker run -e, --env-file, "
    "RUN --mount=type=secret), never in ENV or ARG",
    "apt-lists-cleaned": "end the RUN that installs with `&& rm -rf /var/lib/apt/lists/*`",
    "deps-before-source": "COPY the dependency files, RUN the install, then COPY the rest",
    "dockerignore": "list .git, caches and secrets in a .dockerignore next to the Dockerfile",
}


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
    """``path`` parsed by buildkit's parser. Raises CheckError (no such file, not UTF-8),
    :class:`DockerfileError` (docker build refuses it) or :class:`ParserUnavailable`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise CheckError(f"no Dockerfile at {shown or path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise CheckError(f"cannot read {path}: {e}") from e
    return parse_dockerfile(text)


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
    name = (last.words or ("",))[0].split(":")[0]
    if name in ("root", "0"):
        return failed(f"line {last.line}: USER {name} runs as root")
    return passed(f"line {last.line}: USER {' '.join(last.words)}")


def _no_secrets(df: Dockerfile, path: Path) -> Outcome:
    found = []
    for ins in df.instructions:
        for name, value in assignments(ins):
            if not value or not SECRET_NAME.search(name):
                continue
            if not name.upper().endswith(SAFE_SECRET_SUFFIXES):
                found.append(f"line {ins.line}: {ins.shown} {name}")
    if found:
        return failed(
            "secret baked into the image (value not shown): "
            + ", ".join(found)
            + "; anyone with the image can read it (docker history / inspect)"
        )
    return passed("no secret-looking ENV or ARG values")


def _lists_mounted(ins: Instruction) -> bool:
    """A cache or tmpfs mount at /var/lib/apt/lists (or above it): nothing stays in the layer."""
    for mount in ins.mounts:
        if mount.get("type", "bind") not in ("cache", "tmpfs"):
            continue
        target = mount.get("target") or mount.get("dst") or mount.get("destination") or ""
        target = "/" + target.strip("/")
        if target != "/" and (target == APT_LISTS or APT_LISTS.startswith(target + "/")):
            return True
    return False


def _apt_lists(df: Dockerfile, path: Path) -> Outcome:
    installs = [
        i for i in df.instructions if i.keyword == "RUN" and APT_INSTALL.search(i.script)
    ]
    bad = [i for i in installs if not APT_CLEAN.search(i.script) and not _lists_mounted(i)]
    if bad:
        lines = ", ".join(f"{i.line} ({i.shown})" if i.onbuild else str(i.line) for i in bad)
        return failed(
            f"apt install without `rm -rf /var/lib/apt/lists/*` in the same RUN (line {lines}): "
            "the package lists stay in the layer (`apt-get dist-clean` or a cache mount on "
            "/var/lib/apt/lists do as well)"
        )
    if not installs:
        return passed("no apt install")
    return passed(f"apt lists cleaned in the same RUN ({len(installs)} install(s))")


def _copy_sources(ins: Instruction) -> list[str]:
    words = list(ins.words[:-1]) if len(ins.words) > 1 else []
    if ins.heredocs:  # `COPY <<EOF /app/x` writes an inline file, not a source of the context
        words = [w for w in words if not w.lstrip("0123456789").startswith("<<")]
    return words


def _is_dependency_file(source: str) -> bool:
    name = source.rstrip("/").rsplit("/", 1)[-1]
    return bool(DEPENDENCY_FILES.match(name))


def _deps_in(instructions: list[Instruction]) -> Outcome | None:
    """The rule over one sequence (a stage's own instructions, or its ONBUILD triggers)."""
    installs = [i for i in instructions if i.keyword == "RUN" and DEPS_INSTALL.search(i.script)]
    if not installs:
        return None
    install = installs[0]
    copies = [i for i in instructions if i.keyword in ("COPY", "ADD") and "from" not in i.options]
    before = [i for i in copies if i.line < install.line]
    for copy in before:
        if any(not _is_dependency_file(s) for s in _copy_sources(copy)):
            return failed(
                f"line {copy.line}: {copy.shown} {' '.join(copy.words)} comes before the "
                f"dependency install on line {install.line}: every source change reinstalls "
                "the dependencies"
            )
    after = [i for i in copies if i.line > install.line]
    deps = [s for c in before for s in _copy_sources(c)]
    shown = ", ".join(deps) or "none"
    facts = f"dependency files ({shown}) before the install on line {install.line}"
    if after:
        facts += f", source after (line {after[0].line})"
    return passed(facts)


def _deps_before_source(df: Dockerfile, path: Path) -> Outcome:
    first: Outcome | None = None
    for stage in df.stages:
        for sequence in (stage.instructions, stage.triggers):
            outcome = _deps_in(sequence)
            if outcome is not None and outcome.status == "fail":
                return outcome
            first = first or outcome
    return first or passed("no dependency install step found")


def _dockerignore(path: Path, context: Path, shown: str | None = None) -> Outcome:
    """``shown``: how messages name the context (relative to the lab folder)."""
    shown = shown or str(context)
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


def unreadable(error: DockerfileError | ParserUnavailable) -> Outcome:
    """The outcome of every parsing rule when the file cannot be parsed."""
    if isinstance(error, ParserUnavailable):
        return skipped(f"not checked: {error}")
    return failed(f"docker build cannot read it: {error}")


def apply_rule(
    rule: str, path: Path, context: Path, df: Dockerfile | DockerfileError | ParserUnavailable
) -> Outcome:
    """One rule on one file: ``df`` is the parsed file, or why it could not be parsed."""
    if rule == "dockerignore":
        return _dockerignore(path, context)
    if rule not in _RULES:
        raise CheckError(f"unknown Dockerfile rule {rule!r}; known: {', '.join(RULES)}")
    if isinstance(df, Dockerfile):
        return _RULES[rule](df, path)
    return unreadable(df)


def parsed(
    path: Path, shown: str | None = None
) -> Dockerfile | DockerfileError | ParserUnavailable:
    """``load(path)``, with the reasons it cannot parse as values (CheckError still raises)."""
    try:
        return load(path, shown)
    except (DockerfileError, ParserUnavailable) as e:
        return e


def check_dockerfile(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    rule = str(spec["rule"])
    path = dockerfile_path(ctx, spec)
    relative = path.relative_to(ctx.lab.folder.resolve())
    if rule == "dockerignore":
        context = (
            _inside(ctx.lab.folder, str(spec["context"])) if spec.get("context") else path.parent
        )
        # named relative to the lab folder: the same words wherever the lab's copy is
        shown = context.resolve().relative_to(ctx.lab.folder.resolve()).as_posix()
        outcome = _dockerignore(path, context, "the lab folder" if shown in ("", ".") else shown)
    else:
        outcome = apply_rule(rule, path, path.parent, parsed(path, str(relative)))
    return type(outcome)(outcome.status, f"{relative}: {outcome.message}")
