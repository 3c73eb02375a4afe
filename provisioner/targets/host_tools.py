"""The commands a learner types on a machine, as ``labup doctor`` reports them: the ``docker``
CLI, Docker Compose (v2 ``docker compose`` preferred, v1 ``docker-compose``) and ``labup``.

Asked over the host's SSH connection for a remote engine (the machine the learner sits at), or
on this machine for a local one. A lab that ``requires: [docker-compose]`` cannot have its
reference solution run, nor be done by a learner, where neither Compose answers.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from labspec.errors import LabupError
from provisioner.engine.protocol import CommandResult, HostShell

PROBES: dict[str, tuple[str, ...]] = {
    "docker": ("docker", "version", "--format", "{{.Client.Version}}"),
    "compose v2": ("docker", "compose", "version", "--short"),
    "compose v1": ("docker-compose", "version", "--short"),
    "labup": ("labup", "--help"),
}
_VERSION = re.compile(r"v?(\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class Tools:
    """What answered: tool name -> its version ("" when it answers without one), else absent."""

    found: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.found

    @property
    def compose(self) -> str | None:
        """``docker compose 2.x`` or ``docker-compose 1.x``: the one a solution will use."""
        if self.has("compose v2"):
            return f"docker compose {self.found['compose v2']}".strip()
        if self.has("compose v1"):
            return f"docker-compose {self.found['compose v1']}".strip()
        return None

    def text(self) -> str:
        parts = []
        if self.has("docker"):
            parts.append(f"docker CLI {self.found['docker']}".strip())
        else:
            parts.append("no docker CLI")
        parts.append(self.compose or "no Docker Compose")
        parts.append("labup" if self.has("labup") else "no labup")
        return ", ".join(parts)


def probe_tools(ssh: HostShell | None, *, timeout: float = 15.0) -> Tools:
    found: dict[str, str] = {}
    for name, argv in PROBES.items():
        result = _run(ssh, list(argv), timeout)
        if result is None or result.rc != 0:
            continue
        match = _VERSION.search(result.stdout)
        found[name] = match.group(1) if match and name != "labup" else ""
    return Tools(found)


def _run(ssh: HostShell | None, argv: list[str], timeout: float) -> CommandResult | None:
    if ssh is not None:
        try:
            return ssh.run(argv, timeout=timeout)
        except LabupError:
            return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return CommandResult(done.returncode, done.stdout, done.stderr)
