"""Where a learner works on a lab: the lab folder on the learner's machine, and a shell there.

``labup test`` runs a lab's reference solution as a learner at that machine would: in a copy
of the lab folder, with that machine's own ``docker`` (and compose). :class:`LocalWorkplace`
is this machine (a temporary copy, ``subprocess``); the remote one
(:class:`provisioner.targets.remote_workplace.RemoteWorkplace`) copies the folder to the host
over SFTP and runs there over the same SSH connection as the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from labspec.model import Lab
from provisioner.engine.protocol import CommandResult


class Workplace(Protocol):
    """The learner's machine, as the self-test needs it."""

    @property
    def where(self) -> str:
        """For messages: ``this machine`` or the host's name."""
        ...

    def engine_lab(self, lab: Lab) -> Lab:
        """``lab`` (loaded from the local copy) as the engine must realize it: binds pointing
        at the learner's copy on that machine."""
        ...

    def run(self, argv: Sequence[str], env: Mapping[str, str], *, timeout: float) -> CommandResult:
        """Run argv in the learner's copy of the lab folder; rc 124 when it ran out of time,
        127 when it could not be started. stdout holds stdout and stderr, as a terminal shows."""
        ...

    def path_of(self, rel: str) -> str:
        """The absolute path, on that machine, of the lab-folder file ``rel`` (POSIX)."""
        ...

    def refresh(self) -> None:
        """Bring what the learner's commands wrote back into the local copy (checks that read
        lab files read the learner's)."""
        ...

    def python(self) -> str:
        """The Python a ``.py`` solution runs with there."""
        ...

    def labup(self) -> str:
        """The ``labup`` command there, for solutions that call it."""
        ...

    def docker_host(self) -> str | None:
        """DOCKER_HOST for the solution, or None to keep that machine's own."""
        ...

    def close(self, *, keep: bool) -> str | None:
        """Remove the learner's copy (unless ``keep``); where it was kept, if it was."""
        ...


class LocalWorkplace:
    """This machine: the copy is the local one itself."""

    def __init__(self, folder: Path, engine_url: str) -> None:
        self.folder = folder
        self._engine_url = engine_url

    @property
    def where(self) -> str:
        return "this machine"

    def engine_lab(self, lab: Lab) -> Lab:
        return lab

    def run(self, argv: Sequence[str], env: Mapping[str, str], *, timeout: float) -> CommandResult:
        try:
            proc = subprocess.run(
                list(argv), cwd=self.folder, env={**os.environ, **env},
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, errors="replace", timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else ""
            return CommandResult(124, out + f"\n(timed out after {timeout:g}s)")
        except OSError as e:
            return CommandResult(127, f"cannot run {argv[0]}: {e}")
        return CommandResult(proc.returncode, proc.stdout or "")

    def path_of(self, rel: str) -> str:
        return str(self.folder / rel)

    def refresh(self) -> None:
        """The solution wrote into this very folder."""

    def python(self) -> str:
        return sys.executable

    def labup(self) -> str:
        return labup_cli()

    def docker_host(self) -> str | None:
        return self._engine_url

    def close(self, *, keep: bool) -> str | None:
        return None  # the local copy is the self-test's own temporary folder


def labup_cli() -> str:
    """The ``labup`` of this Python (beside it in the venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "labup"
    if beside.is_file():
        return str(beside)
    return shutil.which("labup") or "labup"


def script_argv(script: Path, folder: Path, workplace: Workplace) -> list[str]:
    """How to run a solution or cleanup script of the lab folder, relative to the folder (so
    the same argv works in the learner's copy on any machine)."""
    rel = script.relative_to(folder).as_posix()
    if script.suffix == ".py":
        return [workplace.python(), rel]
    if script.suffix == ".sh" or not os.access(script, os.X_OK):
        return ["sh", rel]
    return [f"./{rel}"]
