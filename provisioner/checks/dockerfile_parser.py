"""Dockerfiles as Docker reads them: buildkit's own parser, in the terms labup's rules use.

The parsing is done by moby/buildkit's parser itself, through the PyPI package
``dockerfile`` (a compiled binding; docs/decisions.md, item 22): continuations, the
``# escape=`` directive, comments, JSON forms, flags, heredocs and a UTF-8 BOM are exactly
what ``docker build`` sees. This module only turns its commands into :class:`Instruction`
and :class:`Stage` records, and adds what ``docker build`` refuses after parsing (an unknown
instruction, ``ONBUILD FROM``). Where the binding has no wheel, :class:`ParserUnavailable`
says so; nothing falls back to a parser of labup's own.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from typing import Any

_DIRECTIVE = re.compile(r"^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_ONBUILD = re.compile(r"^\s*onbuild\s+", re.IGNORECASE)
# what buildkit refuses behind ONBUILD (its instructions parser, after the parse)
_NOT_TRIGGERS = ("ONBUILD", "FROM", "MAINTAINER")
WHEELS = "Linux x86_64 (glibc), macOS 13+ Intel, macOS 14+ Apple silicon, Windows x64"


class DockerfileError(Exception):
    """The file is not a Dockerfile ``docker build`` accepts; ``line`` when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ParserUnavailable(Exception):
    """buildkit's parser (PyPI ``dockerfile``) cannot be imported on this machine."""

    def __init__(self, reason: str) -> None:
        platform = f"{sys.platform}/{_machine()}"
        super().__init__(
            f"buildkit's Dockerfile parser (the Python package `dockerfile`) is not installed "
            f"here ({reason}); it ships wheels for {WHEELS}, not for {platform}. "
            "`pip install dockerfile` builds it from source with Go"
        )


def _machine() -> str:
    import platform

    return platform.machine() or "unknown"


def buildkit() -> Any:
    """The ``dockerfile`` module, or :class:`ParserUnavailable`."""
    try:
        import dockerfile
    except ImportError as e:
        raise ParserUnavailable(str(e) or "no module named 'dockerfile'") from None
    return dockerfile


def parser_version() -> str:
    """``buildkit v0.12.5 (dockerfile 3.4.0)``, or why there is none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        buildkit()
        binding = version("dockerfile")
    except (ParserUnavailable, PackageNotFoundError) as e:
        return f"unavailable: {e}"
    return f"buildkit {BUILDKIT_BY_BINDING.get(binding, '(unknown)')} (dockerfile {binding})"


# the moby/buildkit module each binding release is built with (its go.mod)
BUILDKIT_BY_BINDING = {"3.4.0": "v0.12.5"}


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line of the keyword
    keyword: str  # upper case: FROM, RUN, COPY, ...; for ``ONBUILD RUN ...``: RUN
    flags: tuple[str, ...] = ()  # as written: ("--from=build",)
    words: tuple[str, ...] = ()  # buildkit's arguments: JSON form unpacked, ENV as key, value
    json: bool = False
    heredocs: tuple[str, ...] = ()  # the bodies of ``<<EOF`` heredocs, in order
    onbuild: bool = False  # an ONBUILD trigger: runs in images built FROM this one
    original: str = ""

    @property
    def options(self) -> dict[str, str]:
        """The flags by name: ``{"from": "build", "mount": "type=cache,..."}`` (last wins)."""
        out: dict[str, str] = {}
        for flag in self.flags:
            name, _, value = flag.lstrip("-").partition("=")
            out[name.lower()] = value
        return out

    @property
    def mounts(self) -> list[dict[str, str]]:
        """Every ``RUN --mount=...`` as its key=value fields."""
        out = []
        for flag in self.flags:
            name, _, value = flag.lstrip("-").partition("=")
            if name.lower() == "mount":
                fields = dict(p.partition("=")[::2] for p in value.split(",") if p)
                out.append({k.strip().lower(): v.strip() for k, v in fields.items()})
        return out

    @property
    def script(self) -> str:
        """What the instruction runs or writes: its arguments and its heredoc bodies."""
        return "\n".join((" ".join(self.words), *self.heredocs))

    @property
    def shown(self) -> str:
        return f"ONBUILD {self.keyword}" if self.onbuild else self.keyword


@dataclass
class Stage:
    index: int
    from_: Instruction
    base: str  # the image reference as written
    name: str | None  # the AS name
    instructions: list[Instruction] = field(default_factory=list)  # this image's own
    triggers: list[Instruction] = field(default_factory=list)  # its ONBUILD instructions


@dataclass
class Dockerfile:
    instructions: list[Instruction]  # every instruction in order, ONBUILD triggers included
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage | None:
        return self.stages[-1] if self.stages else None


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse ``text`` with buildkit's parser; :class:`DockerfileError` where Docker refuses it."""
    if "\x00" in text:  # the binding passes a C string: a NUL would end the file silently
        line = text[: text.index("\x00")].count("\n") + 1
        raise DockerfileError("a NUL byte: this is not a text file", line)
    lines = text.splitlines(keepends=True)
    escape = _escape(lines)
    commands = _parse(text)
    instructions: list[Instruction] = []
    previous = ""
    for cmd in commands:
        keyword = cmd.cmd.upper()
        if keyword.lower() not in _known():
            hint = ""
            if "<<" in previous:
                hint = " (the line above has `<<` glued to a word: a heredoc needs `cmd <<EOF`)"
            raise DockerfileError(f"unknown instruction {cmd.cmd}{hint}", cmd.start_line)
        previous = cmd.original
        if keyword == "ONBUILD":
            instructions.append(_trigger(cmd, lines, escape))
            continue
        instructions.append(
            Instruction(
                line=cmd.start_line,
                keyword=keyword,
                flags=tuple(cmd.flags),
                words=tuple(cmd.value),
                json=bool(cmd.json),
                heredocs=tuple(h.content for h in cmd.heredocs),
                original=cmd.original,
            )
        )
    return _stages(instructions)


@cache
def _known() -> frozenset[str]:
    return frozenset(buildkit().all_cmds())


def _parse(text: str) -> tuple[Any, ...]:
    module = buildkit()
    try:
        return tuple(module.parse_string(text))
    except module.GoParseError as e:
        message = str(e)
        raise DockerfileError(message, _error_line(module, text, message)) from None


def _error_line(module: Any, text: str, message: str) -> int | None:
    """Where a parse error starts: the binding gives buildkit's message without its line.
    The first line after the longest prefix of the file that still parses."""
    if message != "unterminated heredoc":
        return None
    lines = text.splitlines(keepends=True)
    if len(lines) > 5000:
        return None
    good = 0
    for n in range(1, len(lines) + 1):
        try:
            module.parse_string("".join(lines[:n]))
            good = n
        except module.GoParseError:
            pass
    for n in range(good, len(lines)):  # skip blank lines and comments to the instruction
        stripped = lines[n].strip()
        if stripped and not stripped.startswith("#"):
            return n + 1
    return good + 1


def _escape(lines: list[str]) -> str:
    """The ``# escape=`` directive's character (buildkit honours it only at the very top)."""
    for n, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.lstrip("\ufeff") if n == 0 else raw)
        if not m:
            break
        if m.group(1).lower() == "escape":
            return m.group(2)
    return "\\"


def _trigger(cmd: Any, lines: list[str], escape: str) -> Instruction:
    """An ONBUILD instruction, parsed again on its own: the binding drops a trigger's flags
    and heredocs (``ONBUILD RUN --mount=... <<EOF``), buildkit's parser keeps them."""
    sub = (cmd.sub_cmd or "").upper()
    if not sub:
        raise DockerfileError("ONBUILD needs an instruction after it", cmd.start_line)
    if sub in _NOT_TRIGGERS:
        raise DockerfileError(f"ONBUILD {sub} is not allowed", cmd.start_line)
    chunk = lines[cmd.start_line - 1 : cmd.end_line]
    chunk[0] = _ONBUILD.sub("", chunk[0].lstrip("\ufeff"), count=1)
    prefix = f"# escape={escape}\n" if escape != "\\" else ""
    inner = _parse(prefix + "".join(chunk))[0]
    return Instruction(
        line=cmd.start_line,
        keyword=sub,
        flags=tuple(inner.flags),
        words=tuple(inner.value),
        json=bool(inner.json),
        heredocs=tuple(h.content for h in inner.heredocs),
        onbuild=True,
        original=cmd.original,
    )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _stages(instructions: list[Instruction]) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM" and not ins.onbuild:
            words = ins.words
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), ins, base, name))
        elif not stages:
            if ins.keyword == "ARG":
                for word in ins.words:
                    key, _, value = word.partition("=")
                    global_args[key] = _unquote(value)
        elif ins.onbuild:
            stages[-1].triggers.append(ins)
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(instructions, global_args, stages)


def assignments(ins: Instruction) -> list[tuple[str, str]]:
    """(name, value) pairs an ENV or ARG sets, quotes removed (``ARG X``: value "")."""
    if ins.keyword == "ENV":
        pairs = zip(ins.words[0::2], ins.words[1::2], strict=False)
        return [(k, _unquote(v)) for k, v in pairs]
    if ins.keyword == "ARG":
        out = []
        for word in ins.words:
            key, _, value = word.partition("=")
            out.append((key, _unquote(value)))
        return out
    return []


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
