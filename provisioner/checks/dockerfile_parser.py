"""A small Dockerfile parser: instructions with line numbers, continuations, heredocs.

Enough for lint rules: it keeps each instruction's first line number, joins escaped line
continuations (honouring a ``# escape=`` directive), drops comment lines inside them, and
folds heredoc bodies (``RUN <<EOF``) into the instruction's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line of the keyword
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest, continuations joined with a space

    @property
    def flags(self) -> dict[str, str]:
        """Leading ``--name=value`` flags (``COPY --from=build``, ``FROM --platform=...``)."""
        out: dict[str, str] = {}
        for word in self.args.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            out[name.lower()] = value
        return out

    @property
    def words(self) -> list[str]:
        """Arguments after the flags, split on whitespace (JSON form unpacked)."""
        rest = [w for w in self.args.split()]
        while rest and rest[0].startswith("--"):
            rest.pop(0)
        text = " ".join(rest)
        if text.startswith("["):
            return re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        return rest


@dataclass
class Stage:
    index: int
    from_: Instruction
    base: str  # the image reference as written
    name: str | None  # the AS name
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None


def parse_dockerfile(text: str) -> Dockerfile:
    lines = text.splitlines()
    escape = "\\"
    # Parser directives: only at the very top, before any other line.
    for raw in lines:
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
    instructions: list[Instruction] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        current = lines[i].rstrip()
        while True:
            if current.endswith(escape):
                parts.append(current[: -len(escape)].strip())
                i += 1
                while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1  # empty and comment lines inside a continuation are dropped
                if i >= len(lines):
                    break
                current = lines[i].rstrip()
                continue
            parts.append(current.strip())
            break
        i += 1
        joined = " ".join(p for p in parts if p)
        keyword, _, args = joined.partition(" ")
        heredocs = _HEREDOC.findall(args) if keyword.upper() in ("RUN", "COPY", "ADD") else []
        for word in heredocs:
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != word:
                body.append(lines[i])
                i += 1
            i += 1  # the terminator
            args += "\n" + "\n".join(body)
        instructions.append(Instruction(start + 1, keyword.upper(), args.strip()))
    return _stages(instructions)


def _stages(instructions: list[Instruction]) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.words
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), ins, base, name))
        elif not stages:
            if ins.keyword == "ARG":
                for word in ins.words:
                    key, _, value = word.partition("=")
                    global_args[key] = value.strip("\"'")
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(instructions, global_args, stages)


def expand(text: str, args: dict[str, str]) -> str:
    """Substitute ``$NAME`` / ``${NAME}`` / ``${NAME:-default}`` from ARG defaults."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2) or ""
        return args.get(name, default) or default

    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text
    )


def reference_is_pinned(ref: str) -> bool:
    """A tag other than ``latest``, or a digest."""
    if "@sha256:" in ref:
        return True
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


def unpinned_bases(dockerfile: Dockerfile) -> list[tuple[int, str]]:
    """(line, reference) of every FROM that pulls an external image without a pinned tag."""
    out: list[tuple[int, str]] = []
    names: set[str] = set()
    for stage in dockerfile.stages:
        ref = expand(stage.base, dockerfile.global_args)
        if ref.lower() == "scratch" or ref.lower() in names:
            pass
        elif not reference_is_pinned(ref):
            out.append((stage.from_.line, stage.base))
        if stage.name:
            names.add(stage.name.lower())
    return out
