"""Solution commands on an SSH host, in the learner's copy of the lab folder.

The copy lives where ``up`` puts it (``<labup_dir>/labs/<lab>-<instance>``,
:mod:`provisioner.targets.file_sync`, which ``solve`` brings up to date first: the learner's
edits stay); each command runs there over the target's SSH connection, as argv, with the
solution's environment. The far side's ``docker`` talks to its own engine, as the learner's
would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from labspec.errors import EngineError
from provisioner.engine.protocol import CommandResult, HostShell
from provisioner.learner.solve import STEP_TIMEOUT

if TYPE_CHECKING:
    pass

SKIP = frozenset({"__pycache__", ".git", ".pytest_cache"})
# cd to the folder given as $1, then run the rest as argv: a fixed script, never built from input
_IN_FOLDER = 'cd "$1" && shift && exec env "$@"'


class RemoteRunner:
    """Commands on the SSH host, in its copy of the lab folder."""

    def __init__(self, ssh: HostShell, folder: str) -> None:
        self.ssh = ssh
        self.folder = folder

    def run(self, argv: Sequence[str], *, env: dict[str, str]) -> CommandResult:
        assignments = [f"{k}={v}" for k, v in env.items()]
        command = ["sh", "-c", _IN_FOLDER, "labup-solve", self.folder, *assignments, *argv]
        try:
            result = self.ssh.run(command, timeout=STEP_TIMEOUT)
        except EngineError as e:
            return CommandResult(125, e.message)
        return CommandResult(result.rc, (result.stdout + result.stderr))
