"""The SSH a lab's reference solution uses to reach a remote engine.

``labup test`` runs a solution on this machine with ``DOCKER_HOST=ssh://user@host:port``; the
docker CLI then runs OpenSSH, which knows only ``~/.ssh``. When the target names its own key
and known_hosts (an inventory host, a class's sandbox), :func:`solution_ssh` puts an ``ssh``
first on the solution's PATH that adds them (``-F`` with a config that pins the known_hosts
file, ``StrictHostKeyChecking yes``, ``BatchMode yes``, then includes the user's own
``~/.ssh/config``), so host keys are verified exactly as labup verifies them. Nothing is
written outside a temporary folder, removed afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _quoted(path: Path) -> str:
    return '"' + str(path).replace('"', '\\"') + '"'


@contextmanager
def solution_ssh(key: Path | None, known_hosts: Path | None) -> Iterator[dict[str, str]]:
    """Environment overrides for a solution's commands (``{}`` when nothing is to add). Without
    a key or known_hosts of the target's own, ``LABUP_SSH_KEY`` and ``LABUP_KNOWN_HOSTS``
    (what labup's own connection falls back to) are used."""
    if key is None and os.environ.get("LABUP_SSH_KEY"):
        key = Path(os.environ["LABUP_SSH_KEY"])
    if known_hosts is None and os.environ.get("LABUP_KNOWN_HOSTS"):
        known_hosts = Path(os.environ["LABUP_KNOWN_HOSTS"])
    real = shutil.which("ssh")
    if real is None or (key is None and known_hosts is None):
        yield {}
        return
    folder = Path(tempfile.mkdtemp(prefix="labup-ssh-"))
    try:
        lines = ["Host *"]
        if key is not None:
            lines += [f"  IdentityFile {_quoted(key.expanduser())}", "  IdentitiesOnly yes"]
        if known_hosts is not None:
            lines += [f"  UserKnownHostsFile {_quoted(known_hosts.expanduser())}",
                      "  StrictHostKeyChecking yes"]
        lines += ["  BatchMode yes"]
        user_config = Path("~/.ssh/config").expanduser()
        if user_config.is_file():
            lines += [f"  Include {_quoted(user_config)}"]
        config = folder / "ssh_config"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        config.chmod(0o600)
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "ssh"
        wrapper.write_text(
            f'#!/bin/sh\nexec {shlex.quote(real)} -F {shlex.quote(str(config))} "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
        yield {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
