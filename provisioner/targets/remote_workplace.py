"""The learner's machine behind an SSH engine, for ``labup test``: the lab folder copied there
and the reference solution run there, over the engine's own SSH connection.

The copy is a scratch folder of its own (``<labup_dir or ~/.labup>/test/<lab key>-<instance>``),
never the learner's copy of ``up``: a self-test must not undo a learner's work. The solution
runs with that machine's ``docker`` and compose, its own DOCKER_HOST (or the inventory's
``docker_host``), and ``labup`` from its PATH, as a learner typing there would.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence

from labspec.errors import EngineError
from labspec.model import Lab
from provisioner.catalog.workplace import Workplace
from provisioner.engine.protocol import CommandResult, HostShell
from provisioner.targets.file_sync import forget_copy, remote_base, remote_lab, sync_lab
from provisioner.targets.remote_files import mirror_here
from provisioner.targets.target import Target


class RemoteWorkplace:
    """The self-test's copy of a lab on a remote host."""

    def __init__(self, shell: HostShell, target: Target, lab: Lab, instance: str) -> None:
        self.shell = shell
        self.target = target
        self.local = lab.folder
        sftp = shell.sftp()
        self.remote = posixpath.join(remote_base(sftp, target.labup_dir), "test",
                                     f"{lab.key}-{instance}")
        try:
            forget_copy(sftp, self.remote)  # what an earlier, interrupted test left
        except OSError as e:
            raise EngineError(f"cannot clear {self.remote} over SFTP: {e}",
                              host=target.name) from e
        sync_lab(sftp, lab, instance=instance, host=target.name, restore=True,
                 remote=self.remote)

    @property
    def where(self) -> str:
        return self.target.name

    def engine_lab(self, lab: Lab) -> Lab:
        # binds on that machine; the folder stays the local copy, which refresh() keeps equal
        return remote_lab(lab, self.remote, move_folder=False)

    def run(self, argv: Sequence[str], env: Mapping[str, str], *, timeout: float) -> CommandResult:
        merged = ["sh", "-c", 'exec "$@" 2>&1', "sh", *argv]  # one stream, as a terminal shows
        try:
            result = self.shell.run(merged, timeout=timeout, cwd=self.remote, env=dict(env))
        except EngineError as e:
            return CommandResult(124 if "did not finish" in e.message else 127, e.message)
        return CommandResult(result.rc, result.stdout + result.stderr)

    def path_of(self, rel: str) -> str:
        return posixpath.join(self.remote, rel)

    def refresh(self) -> None:
        mirror_here(self.shell.sftp(), self.remote, self.local, host=self.target.name)

    def python(self) -> str:
        return "python3"

    def labup(self) -> str:
        return "labup"

    def docker_host(self) -> str | None:
        return self.target.docker_host

    def close(self, *, keep: bool) -> str | None:
        if keep:
            return f"{self.target.name}:{self.remote}"
        try:
            forget_copy(self.shell.sftp(), self.remote)
        except OSError:
            return f"{self.target.name}:{self.remote} (could not be removed)"
        return None


def workplace_for(shell: HostShell, target: Target, instance: str) -> Callable[[Lab], Workplace]:
    """The factory ``run_selftest`` takes for a remote target."""

    def make(lab: Lab) -> Workplace:
        return RemoteWorkplace(shell, target, lab, instance)

    return make
