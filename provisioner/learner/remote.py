"""Solution commands on an SSH host: the lab folder sent there, the commands run there.

The far side's copy of the lab lives where ``up`` puts the files its binds need
(``<labup_dir>/labs/<lab>-<instance>``, :mod:`provisioner.targets.file_sync`); ``solve`` sends
the rest of the lab folder beside them (a file whose size and time match is not sent again),
then runs each command there over the target's SSH connection, as argv, with the solution's
environment. The far side's ``docker`` talks to its own engine, as the learner's would.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from labspec.errors import EngineError
from provisioner.engine.protocol import CommandResult, HostShell
from provisioner.learner.solve import STEP_TIMEOUT

if TYPE_CHECKING:
    from paramiko import SFTPClient

SKIP = frozenset({"__pycache__", ".git", ".pytest_cache"})
# cd to the folder given as $1, then run the rest as argv: a fixed script, never built from input
_IN_FOLDER = 'cd "$1" && shift && exec env "$@"'


def send_folder(sftp: SFTPClient, local: Path, remote: str, *, host: str) -> int:
    """Make ``remote`` hold every file of ``local`` (by size and time); files sent."""
    sent = 0
    try:
        _mkdirs(sftp, remote)
        for root, dirs, files in os.walk(local):
            dirs[:] = sorted(d for d in dirs if d not in SKIP)
            rel = Path(root).relative_to(local).as_posix()
            target_dir = remote if rel == "." else posixpath.join(remote, rel)
            _mkdirs(sftp, target_dir)
            for name in sorted(files):
                path = Path(root) / name
                info = path.stat()
                target = posixpath.join(target_dir, name)
                try:
                    there = sftp.stat(target)
                    if there.st_size == info.st_size and int(there.st_mtime or 0) == int(
                            info.st_mtime):
                        continue
                except FileNotFoundError:
                    pass
                sftp.put(str(path), target + ".labup-tmp")
                sftp.chmod(target + ".labup-tmp", stat.S_IMODE(info.st_mode))
                sftp.utime(target + ".labup-tmp", (int(info.st_atime), int(info.st_mtime)))
                sftp.posix_rename(target + ".labup-tmp", target)
                sent += 1
    except OSError as e:
        raise EngineError(f"sending the lab folder to {remote} failed: {e}", host=host) from e
    return sent


def _mkdirs(sftp: SFTPClient, folder: str) -> None:
    parents = []
    current = folder
    while current not in ("", "/", "."):
        parents.append(current)
        current = posixpath.dirname(current)
    for path in reversed(parents):
        try:
            sftp.stat(path)
        except FileNotFoundError:
            sftp.mkdir(path)


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
